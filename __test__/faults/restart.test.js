'use strict'
// Issue 4: the server restarts (fast shutdown: every backend gets FATAL 57P01, new connections
// get 57P03 and then ECONNREFUSED) while queries are in flight. Every query settles with its own
// result or a documented code, none hangs, the pool serves again once the server is back, and
// the books (pool size, process budget) match what the server sees. Runs on its own server.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startServer } = require('../../scripts/embedded-server')
const { createPool, processStats } = require('../..')
const { uniqueName } = require('../helpers/db')
const { LOST_CODES, countAt, recordProcessErrors, settle, tally, sizesInProcess, sleep, poll } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const HANG_MS = 60000

let srv
test.before(async () => {
  srv = await startServer()
})
test.after(async () => {
  if (srv) await srv.stop()
})

/** Pool size, process budget and pg_stat_activity agree (after the server has caught up). */
async function assertBooks(pool, app, label) {
  let last
  await poll(
    async () => {
      const size = pool.stats().size
      const server = await countAt(srv.superuserUrl, app)
      const ps = processStats()
      last = { size, server, used: ps.budget.used, sizes: sizesInProcess(processStats) }
      return last.size === last.server && last.used === last.sizes
    },
    { timeoutMs: 10000, everyMs: 100 },
  )
  assert.equal(last.size, last.server, `${label}: pool size ${last.size} but the server has ${last.server} backends`)
  assert.equal(last.used, last.sizes, `${label}: budget.used ${last.used} but the pools hold ${last.sizes}`)
  return last
}

/** Runs batches of `n` new queries until one batch fully succeeds; returns ms from `since` to that batch's start. */
async function recover(pool, since, n = 50, withinMs = 5000) {
  let attempt = 0
  let last
  for (;;) {
    const started = Date.now()
    const outcomes = await Promise.all(
      Array.from({ length: n }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS)),
    )
    last = tally(outcomes)
    outcomes.forEach((o, i) => o.ok && assert.equal(o.value.rows[0].n, i))
    attempt++
    if (last.ok === n) return { afterMs: started - since, attempts: attempt }
    assert.equal(last.hung, 0, 'a query after the restart hung')
    if (Date.now() - since > withinMs) {
      assert.fail(`the pool did not recover within ${withinMs} ms of the server being back: ${JSON.stringify(last.codes)}`)
    }
    await sleep(100)
  }
}

test('server restart with 200 queries in flight: each succeeds or fails with a documented code, none hangs', LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('restart')
  const pool = createPool({
    connectionString: srv.superuserUrl,
    name: app,
    applicationName: app,
    max: 20,
    connectTimeoutMs: 3000,
    acquireTimeoutMs: 60000,
  })
  try {
    await Promise.all(Array.from({ length: 20 }, () => pool.query('select pg_sleep(0.02)')))

    const inflight = Array.from({ length: 200 }, (_, i) =>
      settle(pool.query('select $1::int as n, pg_sleep($2)', [i, 0.05 + (i % 10) * 0.03]), HANG_MS),
    )
    await sleep(200)
    const before = pool.stats()
    const restartedAt = Date.now()
    await srv.restart()
    const backAt = Date.now()

    const outcomes = await Promise.all(inflight)
    const tl = tally(outcomes)
    outcomes.forEach((o, i) => o.ok && assert.equal(o.value.rows[0].n, i, 'a query got another query\'s result'))
    t.diagnostic(`before restart: ${JSON.stringify(before)}; restart took ${backAt - restartedAt} ms`)
    const causes = {}
    for (const o of outcomes) if (!o.ok && o.error.cause) causes[o.error.cause.code] = (causes[o.error.cause.code] || 0) + 1
    t.diagnostic(`200 in flight: ${tl.ok} ok, ${tl.hung} hung, codes ${JSON.stringify(tl.codes)}, CONNECT_FAILED causes ${JSON.stringify(causes)}`)
    assert.equal(tl.hung, 0, 'queries hung across the restart')
    assert.deepEqual(tl.unexpected.map((e) => `${e && e.code}: ${e && e.message}`), [])
    assert.ok(tl.ok + Object.values(tl.codes).reduce((a, b) => a + b, 0) === 200)
    assert.ok(Object.keys(tl.codes).length > 0, 'the restart should have failed at least the queries running on the server')
    for (const o of outcomes) {
      if (!o.ok && o.error.code === 'CONNECT_FAILED') {
        assert.ok(o.error.cause && typeof o.error.cause.code === 'string', 'CONNECT_FAILED without cause.code')
      }
    }

    const r = await recover(pool, backAt)
    t.diagnostic(`all new queries succeeded ${r.afterMs} ms after the server was back (attempt ${r.attempts})`)
    const again = tally(await Promise.all(Array.from({ length: 100 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS))))
    assert.equal(again.ok, 100)
    const books = await assertBooks(pool, app, 'after restart')
    t.diagnostic(`books after restart: ${JSON.stringify(books)}`)
    assert.ok(books.size <= 20)
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [], 'unhandled rejections')
    assert.deepEqual(uncaught, [], 'uncaught exceptions')
  }
})

test('idle connections killed by a restart are never handed out: the first queries after it all succeed', LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('restart_idle')
  const pool = createPool({ connectionString: srv.superuserUrl, name: app, applicationName: app, max: 8 })
  try {
    await Promise.all(Array.from({ length: 8 }, () => pool.query('select pg_sleep(0.05)')))
    assert.equal(pool.stats().idle, 8)
    await srv.restart()
    // No sleep: the pool must already know that its 8 idle connections are dead.
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS)))
    const tl = tally(outcomes)
    t.diagnostic(`first 40 queries after restart: ${tl.ok} ok, codes ${JSON.stringify(tl.codes)}`)
    assert.equal(tl.ok, 40, `queries failed on connections that died in the restart: ${JSON.stringify(tl.codes)}`)
    await assertBooks(pool, app, 'after idle restart')
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})

test('server down for a while: queries fail fast with CONNECT_FAILED (a cause code), none hangs, then it serves again', LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('down')
  const pool = createPool({
    connectionString: srv.superuserUrl,
    name: app,
    applicationName: app,
    max: 5,
    connectTimeoutMs: 2000,
    acquireTimeoutMs: 30000,
  })
  let stopped = false
  try {
    await pool.query('select 1')
    await srv.stopOnly()
    stopped = true
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS)))
    const tl = tally(outcomes)
    t.diagnostic(`while down: ${JSON.stringify(tl.codes)}`)
    assert.equal(tl.hung, 0)
    assert.equal(tl.ok, 0)
    assert.deepEqual(Object.keys(tl.codes), ['CONNECT_FAILED'])
    const causes = new Set(outcomes.map((o) => o.error.cause && o.error.cause.code))
    assert.deepEqual([...causes], ['ECONNREFUSED'])
    assert.equal(pool.stats().size, 0, 'failed connects must not stay counted')
    assert.equal(processStats().budget.used, sizesInProcess(processStats), `budget.used counts connections no pool holds: ${JSON.stringify(processStats())}`)
    await srv.startOnly()
    stopped = false
    await recover(pool, Date.now())
    await assertBooks(pool, app, 'after start')
  } finally {
    if (stopped) await srv.startOnly() // the next tests need the server
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})

test('a checked-out client and a transaction across a restart: CONNECTION_LOST, release() still works', LIMIT, async () => {
  const rec = recordProcessErrors()
  const app = uniqueName('restart_client')
  const pool = createPool({ connectionString: srv.superuserUrl, name: app, applicationName: app, max: 3 })
  try {
    const client = await pool.connect()
    await client.query('begin')
    const tx = settle(
      pool.transaction(async (c) => {
        await c.query('select 1')
        await c.query('select pg_sleep(30)')
      }),
      HANG_MS,
    )
    await sleep(200)
    await srv.restart()
    const lost = await settle(client.query('select 1'), HANG_MS)
    assert.equal(lost.ok, false)
    assert.ok(LOST_CODES.has(lost.error.code), `got ${lost.error.code}`)
    await client.release()
    const txOut = await tx
    assert.equal(txOut.ok, false)
    assert.ok(LOST_CODES.has(txOut.error.code), `transaction failed with ${txOut.error.code}`)
    const r = await pool.query('select 1 as one')
    assert.equal(r.rows[0].one, 1)
    await assertBooks(pool, app, 'after client restart')
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})
