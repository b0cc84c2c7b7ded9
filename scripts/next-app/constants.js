'use strict'
// Where the Next.js example lives, the database role its storms run as, and the log every
// driver line goes through (the example's end-to-end test and its baseline benchmark share them).

const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const APP = path.join(ROOT, 'examples', 'nextjs')
const PACK_DIR = path.join(APP, '.onepool')
const LOG_DIR = path.join(APP, '.e2e')
const NEXT_BIN = path.join(APP, 'node_modules', 'next', 'dist', 'bin', 'next')
const DB_FILE = path.join(APP, 'lib', 'db.ts')
const ROUTES = Array.from({ length: 30 }, (_, i) => `r${String(i + 1).padStart(2, '0')}`)
const ROLE = 'app'
const ROLE_PASSWORD = 'app-e2e-password'
const ROLE_LIMIT = 5
const SAMPLE_MS = 100
const BASELINES = ['pg-naive', 'pg-global', 'postgres-naive', 'prisma-naive']
const VARIANTS = ['onepool', ...BASELINES]

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const started = Date.now()
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`
const log = (...args) => console.log(`[next ${elapsed()}]`, ...args)

module.exports = { ROOT, APP, PACK_DIR, LOG_DIR, NEXT_BIN, DB_FILE, ROUTES, ROLE, ROLE_PASSWORD, ROLE_LIMIT, SAMPLE_MS, BASELINES, VARIANTS, sleep, elapsed, log }
