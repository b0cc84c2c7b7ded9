'use strict'
// Vercel's attachDatabasePool (the real @vercel/functions package) recognises a onepool pool as
// node-postgres's: it reads `options.idleTimeoutMillis` and listens for 'release', then keeps
// the function alive (waitUntil) for the idle timeout after each release, so idle connections
// are closed before the instance is suspended. The request context is the one Vercel's runtime
// installs (a global symbol), given a waitUntil that records what it is handed.

const test = require('node:test')
const assert = require('node:assert/strict')
const { attachDatabasePool } = require('@vercel/functions')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const CONTEXT = Symbol.for('@vercel/request-context')

test('attachDatabasePool accepts a onepool pool without warnings and keeps the function alive after each release', async (t) => {
  const app = uniqueName('vercel')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, idleTimeoutMillis: 300 })
  const warnings = []
  const warn = console.warn
  console.warn = (...args) => warnings.push(args.join(' '))
  const env = { VERCEL_URL: process.env.VERCEL_URL, VERCEL_REGION: process.env.VERCEL_REGION }
  process.env.VERCEL_URL = 'onepool-test.vercel.app'
  process.env.VERCEL_REGION = 'iad1'
  const waited = []
  globalThis[CONTEXT] = { get: () => ({ waitUntil: (p) => waited.push(p) }) }
  t.after(async () => {
    console.warn = warn
    delete globalThis[CONTEXT]
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await pool.end()
  })
  assert.equal(pool.options.idleTimeoutMillis, 300)
  attachDatabasePool(pool)
  assert.equal((await pool.query('select 1 as n')).rows[0].n, 1)
  const client = await pool.connect()
  await client.query('select 2')
  client.release()
  assert.equal(waited.length, 2, 'waitUntil after pool.query and after client.release()')
  const started = Date.now()
  await waited[1]
  const held = Date.now() - started
  // Vercel waits the pool's idle timeout plus 100 ms.
  assert.ok(held >= 350, `waitUntil's promise settled after ${held} ms, before the idle timeout`)
  assert.deepEqual(warnings, [])
})
