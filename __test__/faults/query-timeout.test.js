'use strict'
// Issue 20, point 9: a client-side query timeout (node-postgres's `query_timeout`, and a
// per-query `timeout`). A request against a stalled server is bounded without an AbortSignal:
// it fails with QUERY_TIMEOUT at its deadline, the statement is cancelled (the connection closed
// if the server does not wind it down), the connection never comes back dirty, and the pool
// keeps serving. The stall comes from the loopback proxy (__test__/helpers/proxy.js).

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { APP_NAME, TEST_URL, admin, uniqueName } = require('../helpers/db')
const { startProxy, viaProxy } = require('../helpers/proxy')
const { countAt, recordProcessErrors, settle, sleep, poll } = require('../helpers/faults')

const LIMIT = { timeout: 120000 }
const port = Number(new URL(TEST_URL).port)

let rec
test.beforeEach(() => {
  rec = recordProcessErrors()
})
test.afterEach(() => {
  const { unhandled, uncaught } = rec.stop()
  assert.deepEqual(unhandled, [], 'unhandled rejections')
  assert.deepEqual(uncaught, [], 'uncaught exceptions')
})

async function setup(t, options) {
  const proxy = await startProxy(port)
  const app = uniqueName('qt')
  const pool = createPool({ connectionString: viaProxy(TEST_URL, proxy), name: app, applicationName: app, ...options })
  t.after(async () => {
    proxy.setMode('forward')
    await pool.end({ timeoutMs: 5000 }).catch(() => {})
    await proxy.close()
  })
  return { proxy, app, pool }
}

async function countActive(app) {
  const r = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and state = 'active'`, [app])
  return r.rows[0].n
}

/** The pool counts exactly the connections the server has for it. */
async function assertBooks(pool, app, label) {
  let last
  await poll(async () => {
    last = { size: pool.stats().size, server: await countAt(TEST_URL, app) }
    return last.size === last.server
  })
  assert.equal(last.size, last.server, `${label}: pool size ${last.size} but the server has ${last.server} backends`)
}

test('query_timeout bounds a pool.query on a stalled network: QUERY_TIMEOUT at the deadline, the connection is not reused dirty, the pool keeps serving', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, query_timeout: 400, connectTimeoutMs: 3000 })
  assert.equal((await pool.query('select 1 as n')).rows[0].n, 1)
  proxy.setMode('stall')
  const started = Date.now()
  const out = await settle(pool.query('select 2 as n'), 20000)
  const took = Date.now() - started
  assert.equal(out.hung, undefined, 'a query on a stalled network never settled despite query_timeout')
  assert.equal(out.ok, false, 'the stalled query succeeded')
  assert.equal(out.error.code, 'QUERY_TIMEOUT', `${out.error.code}: ${out.error.message}`)
  t.diagnostic(`QUERY_TIMEOUT after ${took} ms (timeout 400 ms)`)
  // The network comes back: the stalled statement's reply is delivered late. The one
  // connection must not hand that reply to the next query, nor be in a transaction.
  proxy.setMode('forward')
  const next = await settle(pool.query('select 3 as n'), 20000)
  assert.equal(next.ok, true, next.error && next.error.message)
  assert.equal(next.value.rows[0].n, 3, 'the next query got the timed-out query\'s result')
  const tx = await pool.query("select current_setting('transaction_isolation') is not null as ok, now() = statement_timestamp() as outside")
  assert.equal(tx.rows[0].outside, true, 'the connection came back inside a transaction')
  const many = await Promise.all(Array.from({ length: 10 }, (_, i) => pool.query('select $1::int as i', [i])))
  assert.deepEqual(many.map((r) => r.rows[0].i), [...Array(10).keys()])
  await assertBooks(pool, app, 'after the timeout')
})

test('a per-query timeout on a running statement cancels it on the server: QUERY_TIMEOUT, the client stays usable', LIMIT, async (t) => {
  const { app, pool } = await setup(t, { max: 2 })
  const client = await pool.connect()
  try {
    const out = await settle(client.query('select pg_sleep(30)', [], { timeout: 300 }), 20000)
    assert.equal(out.ok, false)
    assert.equal(out.error.code, 'QUERY_TIMEOUT', `${out.error.code}: ${out.error.message}`)
    assert.equal(await poll(async () => (await countActive(app)) === 0, { timeoutMs: 6000, everyMs: 50 }), true, 'the statement still runs on the server')
    assert.equal((await client.query('select 7 as n')).rows[0].n, 7)
    // pg's query config spelling.
    const cfg = await settle(client.query({ text: 'select pg_sleep(30)', query_timeout: 200 }), 20000)
    assert.equal(cfg.ok, false)
    assert.equal(cfg.error.code, 'QUERY_TIMEOUT')
  } finally {
    await client.release()
  }
  // Off by default: a query slower than any timeout above still completes.
  assert.equal((await pool.query('select pg_sleep(0.5), 8 as n')).rows[0].n, 8)
  await sleep(50)
  await assertBooks(pool, app, 'after per-query timeouts')
})
