'use strict'
// A request alone in flight has its reply read on its own JS thread, off the socket (libuv polls
// it; src/napi/watch.rs). These tests cover what that adds: a poll handle tied to a worker's
// event loop, which must be closed before the worker's loop is, and replies of every kind read on
// the JS thread. A reply that either thread may read: lone-read-blocked.test.js.

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { TEST_URL, admin, APP_NAME, uniqueName } = require('../helpers/db')
const { createPool } = require('../..')

const ROOT = path.join(__dirname, '..', '..')

/** Runs `body` (the source of an async function of `pool`) in a worker; resolves with its exit code. */
function runWorker(app, body) {
  const source = `
    const { workerData } = require('node:worker_threads')
    const { createPool } = require(workerData.root)
    const pool = createPool({ connectionString: workerData.url, applicationName: workerData.app, max: 2 })
    ;(${body})(pool)
  `
  return new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData: { root: ROOT, url: TEST_URL, app } })
    w.once('error', reject)
    w.once('exit', resolve)
  })
}

async function sessions(app) {
  const r = await admin(`select state from pg_stat_activity where ${APP_NAME} = $1 order by state`, [app])
  return r.rows.map((row) => row.state)
}

test('a worker that exits while its lone query runs leaves the process and the pool healthy', async () => {
  const app = uniqueName()
  for (let i = 0; i < 5; i++) {
    const code = await runWorker(
      app,
      `async (pool) => {
        pool.query('select pg_sleep(0.3)').catch(() => {})
        setTimeout(() => process.exit(7), 50)
      }`,
    )
    assert.equal(code, 7, `worker ${i} exited by itself, not by a crash`)
  }
  // The abandoned queries finish on the server and their connections go back to the pool.
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 2 })
  await new Promise((r) => setTimeout(r, 500))
  const rows = await Promise.all([1, 2].map((n) => pool.query('select $1::int as n, pg_sleep(0.05)', [n])))
  assert.deepEqual(
    rows.map((r) => r.rows[0].n),
    [1, 2],
  )
  const states = await sessions(app)
  assert.ok(states.length >= 1 && states.length <= 2, `connections: ${states.length} (max 2)`)
  assert.ok(
    states.every((s) => s === 'idle'),
    `every connection idle: ${states}`,
  )
  await pool.end()
})

test('a worker that ends right after its last lone query exits cleanly', async () => {
  const app = uniqueName()
  for (let i = 0; i < 5; i++) {
    const code = await runWorker(
      app,
      `async (pool) => {
        let sum = 0
        for (let k = 0; k < 20; k++) sum += (await pool.query('select $1::int as k', [k])).rows[0].k
        if (sum !== 190) process.exit(3)
      }`,
    )
    assert.equal(code, 0, `worker ${i}`)
  }
})

test('lone queries read on this thread: results, server errors and a lost connection', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  // One at a time, so each reply is read here: small and large results come back whole.
  for (let i = 0; i < 50; i++) {
    const r = await pool.query('select $1::int as i, repeat($2, $1) as s', [i, 'x'])
    assert.equal(r.rows[0].i, i)
    assert.equal(r.rows[0].s, 'x'.repeat(i))
  }
  const big = await pool.query('select g, md5(g::text) as h from generate_series(1, 20000) g')
  assert.equal(big.rows.length, 20000)
  assert.equal(big.rows[19999].h, crypto.createHash('md5').update('20000').digest('hex'))
  assert.equal(big.rows.reduce((s, r) => s + r.g, 0), (20000 * 20001) / 2)

  // A server error keeps its SQLSTATE and the connection.
  const err = await pool.query('select 1/0').catch((e) => e)
  assert.equal(err.code, '22012')
  const pid = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid

  // The backend dies during a lone query: the FATAL message or the end of the stream is read
  // here, and the query fails with CONNECTION_LOST.
  const running = pool.query('select pg_sleep(5)').catch((e) => e)
  await new Promise((r) => setTimeout(r, 200))
  await admin('select pg_terminate_backend($1)', [pid])
  const lost = await running
  assert.equal(lost.code, 'CONNECTION_LOST')
  const after = await pool.query('select pg_backend_pid() as pid')
  assert.notEqual(after.rows[0].pid, pid, 'a new connection replaced the lost one')
  await pool.end()
})
