'use strict'
// Shared by the tests: the test server started by scripts/test.js, an admin client (node-postgres,
// independent of onepool) to observe the server, and unique application names so each test counts
// only its own connections in pg_stat_activity.

const crypto = require('node:crypto')
const pg = require('pg')

const TEST_URL = process.env.ONEPOOL_TEST_URL
if (!TEST_URL) {
  throw new Error('ONEPOOL_TEST_URL is not set: run the tests with `npm test` (or `node scripts/test.js <file>`)')
}

/**
 * SQL for the configured part of application_name: onepool appends " [pid@host]" so that
 * `onepool doctor` can attribute connections.
 */
const APP_NAME = "regexp_replace(application_name, ' \\[[0-9]+@[^]]*\\]$', '')"

function uniqueName(prefix = 't') {
  return `${prefix}_${crypto.randomBytes(4).toString('hex')}`
}

/** Runs one statement as the superuser through node-postgres. */
async function admin(sql, values) {
  const client = new pg.Client({ connectionString: TEST_URL, application_name: 'onepool-test-admin' })
  await client.connect()
  try {
    return await client.query(sql, values)
  } finally {
    await client.end()
  }
}

/** Server connections whose application_name is `appName`. */
async function countConnections(appName) {
  const r = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1`, [appName])
  return r.rows[0].n
}

/**
 * Samples countConnections every `everyMs` until stop() is called (or `maxMs` passed, so a
 * failing test can never leave it running); returns the peak.
 */
function watchPeak(appName, everyMs = 25, maxMs = 180000) {
  const client = new pg.Client({ connectionString: TEST_URL, application_name: 'onepool-test-watch' })
  let peak = 0
  let running = true
  const ready = client.connect()
  const deadline = Date.now() + maxMs
  const loop = (async () => {
    await ready
    while (running && Date.now() < deadline) {
      const r = await client.query(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1`, [appName])
      peak = Math.max(peak, r.rows[0].n)
      await new Promise((res) => setTimeout(res, everyMs))
    }
  })()
  return {
    async stop() {
      running = false
      await loop.catch(() => {})
      // One sample after the work, too: on a busy machine the work can be over before this
      // client has even connected, and what it left open (PgBouncer's server connections, a
      // pool's idle ones) still counts.
      try {
        const r = await client.query(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1`, [appName])
        peak = Math.max(peak, r.rows[0].n)
      } catch {
        // the server is going away: the samples taken stand
      }
      await client.end().catch(() => {})
      return peak
    },
    get peak() {
      return peak
    },
  }
}

/** Creates a login role with a password (and optional connection limit); returns its URL. */
async function createRole({ name = uniqueName('role'), password = 'pw-' + crypto.randomBytes(6).toString('hex'), connectionLimit = -1 } = {}) {
  await admin(`create role ${name} login password '${password}' connection limit ${connectionLimit}`)
  await admin(`grant all on schema public to ${name}`)
  const u = new URL(TEST_URL)
  u.username = name
  u.password = password
  return { name, password, url: u.toString() }
}

/** Drops a role made by createRole(), with its privileges; ends its sessions first. */
async function dropRole(name) {
  await admin('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [name])
  await admin(`drop owned by ${name}; drop role ${name}`)
}

async function waitFor(predicate, { timeoutMs = 10000, everyMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() > deadline) return value
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

module.exports = { APP_NAME, TEST_URL, admin, countConnections, watchPeak, createRole, dropRole, uniqueName, waitFor }
