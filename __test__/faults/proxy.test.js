'use strict'
// Issue 4: network faults between the pool and the server, injected by a loopback TCP proxy
// (__test__/helpers/proxy.js): a stalled network, a connection cut in the middle of a result,
// a peer that accepts but never answers, a peer that resets. The right timeout fires with the
// right code, nothing hangs, and afterwards the pool and the process budget count exactly the
// connections that are alive on the server (pg_stat_activity).

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool, processStats } = require('../..')
const { APP_NAME, TEST_URL, admin, uniqueName } = require('../helpers/db')
const { startProxy, viaProxy } = require('../helpers/proxy')
const { LOST_CODES, countAt, recordProcessErrors, settle, sizesInProcess, sleep, poll } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const port = Number(new URL(TEST_URL).port)
const HANG_MS = 30000

let rec
test.beforeEach(() => {
  rec = recordProcessErrors()
})
test.afterEach(() => {
  const { unhandled, uncaught } = rec.stop()
  assert.deepEqual(unhandled, [], 'unhandled rejections')
  assert.deepEqual(uncaught, [], 'uncaught exceptions')
})

/** Pool size, process budget, pg_stat_activity and the proxy's live links all agree. */
async function assertBooks(pool, app, proxy, label) {
  let last
  await poll(
    async () => {
      last = {
        size: pool.stats().size,
        server: await countAt(TEST_URL, app),
        used: processStats().budget.used,
        sizes: sizesInProcess(processStats),
        proxied: proxy.open + proxy.blackholed,
      }
      return last.size === last.server && last.used === last.sizes && last.proxied === last.size
    },
    { timeoutMs: 10000, everyMs: 100 },
  )
  assert.equal(last.size, last.server, `${label}: pool size ${last.size} but the server has ${last.server} backends`)
  assert.equal(last.used, last.sizes, `${label}: budget.used ${last.used} but the pools hold ${last.sizes}`)
  assert.equal(last.proxied, last.size, `${label}: ${last.proxied} sockets open through the proxy for ${last.size} pooled connections`)
  return last
}

async function setup(t, options = {}) {
  const proxy = await startProxy(port)
  const app = uniqueName('px')
  const pool = createPool({ connectionString: viaProxy(TEST_URL, proxy), name: app, applicationName: app, ...options })
  t.after(async () => {
    proxy.setMode('forward')
    await pool.end({ timeoutMs: 5000 })
    await proxy.close()
  })
  return { proxy, app, pool }
}

/** Backends of `app` currently running a statement. */
async function countActive(app) {
  const r = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and state = 'active'`, [app])
  return r.rows[0].n
}

function assertTimedOutConnect(out, label) {
  assert.equal(out.hung, undefined, `${label}: hung`)
  assert.equal(out.ok, false, `${label}: succeeded`)
  assert.equal(out.error.code, 'CONNECT_FAILED', `${label}: ${out.error.code} ${out.error.message}`)
  assert.equal(out.error.cause && out.error.cause.code, 'ETIMEDOUT', `${label}: cause ${out.error.cause && out.error.cause.code}`)
}

test('stalled network: new connections fail with CONNECT_FAILED / ETIMEDOUT, nothing stays counted', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 2, connectTimeoutMs: 400, acquireTimeoutMs: 20000 })
  proxy.setMode('stall')
  const outs = await Promise.all([1, 2, 3].map((i) => settle(pool.query('select $1::int as n', [i]), HANG_MS)))
  outs.forEach((o, i) => assertTimedOutConnect(o, `query ${i}`))
  assert.equal(pool.stats().size, 0)
  assert.equal(processStats().budget.used, sizesInProcess(processStats))
  // The timed-out sockets are really closed, not left stalled in the proxy.
  await poll(() => proxy.open === 0)
  assert.equal(proxy.open, 0)
  proxy.setMode('forward')
  assert.equal((await pool.query('select 7 as n')).rows[0].n, 7)
  await assertBooks(pool, app, proxy, 'after stall')
})

test('peer accepts but never answers: connect timeout → CONNECT_FAILED / ETIMEDOUT, waiters → POOL_TIMEOUT', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, connectTimeoutMs: 1500, acquireTimeoutMs: 300 })
  proxy.setMode('blackhole')
  const first = settle(pool.query('select 1'), HANG_MS)
  await sleep(50)
  const second = await settle(pool.query('select 2'), HANG_MS)
  assert.equal(second.ok, false)
  assert.equal(second.error.code, 'POOL_TIMEOUT', `${second.error.code}: ${second.error.message}`)
  assert.match(second.error.message, /size 1/)
  assert.match(second.error.message, /idle 0/)
  assert.match(second.error.message, /waiting/)
  assert.equal(pool.stats().acquireTimeouts, 1)
  assertTimedOutConnect(await first, 'connecting query')
  assert.equal(pool.stats().size, 0)
  assert.equal(pool.stats().waiting, 0)
  await poll(() => proxy.blackholed === 0)
  assert.equal(proxy.blackholed, 0, 'the timed-out socket is still open')
  proxy.setMode('forward')
  assert.equal((await pool.query('select 1 as n')).rows[0].n, 1)
  await assertBooks(pool, app, proxy, 'after blackhole')
})

test('peer resets at once: CONNECT_FAILED with a socket cause, the pool recovers', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 3 })
  proxy.setMode('reset')
  const outs = await Promise.all([1, 2, 3, 4].map(() => settle(pool.query('select 1'), HANG_MS)))
  for (const o of outs) {
    assert.equal(o.ok, false)
    assert.equal(o.error.code, 'CONNECT_FAILED', o.error.message)
    assert.ok(['ECONNRESET', 'EPIPE'].includes(o.error.cause.code), `cause ${o.error.cause.code}`)
  }
  assert.equal(pool.stats().size, 0)
  proxy.setMode('forward')
  await pool.query('select 1')
  await assertBooks(pool, app, proxy, 'after reset')
})

test('stall under a checked-out client: waiters get POOL_TIMEOUT, the server-side statement timeout arrives as 57014 once unstalled', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, statementTimeoutMs: 300, acquireTimeoutMs: 400, connectTimeoutMs: 2000 })
  const client = await pool.connect()
  proxy.setMode('stall')
  const running = settle(client.query('select pg_sleep(5)'), HANG_MS)
  await sleep(20)
  for (const [label, call] of [
    ['pool.query', () => pool.query('select 1')],
    ['pool.connect', () => pool.connect()],
    ['pool.transaction', () => pool.transaction(async () => 1)],
  ]) {
    const waiter = await settle(call(), 10000)
    assert.equal(waiter.hung, undefined, `${label}: still waiting after 10 s with acquireTimeoutMs 400`)
    assert.equal(waiter.ok, false, label)
    assert.equal(waiter.error.code, 'POOL_TIMEOUT', `${label}: ${waiter.error.message}`)
    assert.match(waiter.error.message, /in use 1/)
  }
  assert.equal(pool.stats().acquireTimeouts, 3)
  await sleep(700) // the server's statement timeout (300 ms) cannot fire before the query gets through
  proxy.setMode('forward')
  const out = await running
  assert.equal(out.ok, false)
  assert.equal(out.error.code, '57014', `${out.error.code}: ${out.error.message}`)
  assert.match(out.error.message, /statement timeout/)
  assert.equal((await client.query('select 2 as n')).rows[0].n, 2, 'the client is usable after the timeout')
  await client.release()
  assert.equal((await pool.query('select 3 as n')).rows[0].n, 3)
  const books = await assertBooks(pool, app, proxy, 'after stalled statement')
  assert.equal(books.size, 1)
})

test('stall under a running pool.query: another pool.query is still bounded by acquireTimeoutMs (POOL_TIMEOUT), not queued behind it without limit', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, acquireTimeoutMs: 400, connectTimeoutMs: 2000 })
  await pool.query('select 1') // a fresh idle connection (no ping before hand-out)
  proxy.setMode('stall')
  const running = settle(pool.query('select 1 as n, pg_sleep(0.2)'), HANG_MS)
  await sleep(20)
  const second = await settle(pool.query('select 2 as n'), 8000)
  t.diagnostic(`second pool.query while the first is stalled: ${second.hung ? 'still pending after 8 s' : second.ok ? 'ok' : second.error.code}`)
  proxy.setMode('forward')
  const first = await running
  assert.equal(first.ok, true, first.error && first.error.message)
  assert.equal(first.value.rows[0].n, 1)
  assert.equal(second.hung, undefined, 'a pool.query queued behind a stalled one has no time bound (acquireTimeoutMs 400 did not apply)')
  assert.equal(second.ok, false)
  assert.equal(second.error.code, 'POOL_TIMEOUT', second.error.message)
  await assertBooks(pool, app, proxy, 'after stalled pool.query')
})

test('connection cut with queries queued or pipelined behind a large result: each gets its own result or CONNECTION_LOST, none hangs', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, acquireTimeoutMs: 20000 })
  await pool.query('select 1')
  proxy.dropAfter(1024 * 1024)
  const big = settle(pool.query('select generate_series(1, 1000000) as n'), HANG_MS)
  const small = Array.from({ length: 40 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS))
  const bigOut = await big
  const outs = await Promise.all(small)
  assert.equal(bigOut.ok, false)
  assert.equal(bigOut.error.code, 'CONNECTION_LOST')
  const codes = {}
  outs.forEach((o, i) => {
    assert.equal(o.hung, undefined, `query ${i} hung`)
    if (o.ok) assert.equal(o.value.rows[0].n, i, 'a query got another query\'s result')
    else {
      codes[o.error.code] = (codes[o.error.code] || 0) + 1
      assert.equal(o.error.code, 'CONNECTION_LOST', `query ${i}: ${o.error.code} ${o.error.message}`)
    }
  })
  t.diagnostic(`40 small queries behind the cut one: ${outs.filter((o) => o.ok).length} ok, ${JSON.stringify(codes)}`)
  assert.equal(proxy.drops, 1)
  await assertBooks(pool, app, proxy, 'after cut with queue')
})

for (const how of ['rst', 'fin']) {
  test(`connection cut (${how}) in the middle of a 1e6-row result: CONNECTION_LOST, the dead connection leaves the books`, LIMIT, async (t) => {
    const { proxy, app, pool } = await setup(t, { max: 2 })
    await Promise.all([pool.query('select pg_sleep(0.05)'), pool.query('select pg_sleep(0.05)')])
    assert.equal(pool.stats().size, 2)
    proxy.dropAfter(1024 * 1024, { how })
    const out = await settle(pool.query('select generate_series(1, 1000000) as n'), HANG_MS)
    assert.equal(out.ok, false, 'the cut query succeeded')
    assert.equal(out.error.code, 'CONNECTION_LOST', `${out.error.code}: ${out.error.message}`)
    assert.equal(proxy.drops, 1)
    assert.equal(pool.stats().size, 1, 'the cut connection is still counted')
    const r = await pool.query('select count(*)::int as n from generate_series(1, 1000)')
    assert.equal(r.rows[0].n, 1000)
    // A full large result through the same proxy still works.
    const big = await pool.query('select generate_series(1, 200000) as n')
    assert.equal(big.rows.length, 200000)
    assert.equal(big.rows[199999].n, 200000)
    await assertBooks(pool, app, proxy, `after cut (${how})`)
  })
}

test('connection cut under a checked-out client inside a transaction: CONNECTION_LOST, release() resolves, slot freed', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1 })
  const client = await pool.connect()
  await client.query('begin')
  proxy.dropAfter(256 * 1024)
  const out = await settle(client.query('select generate_series(1, 1000000)'), HANG_MS)
  assert.equal(out.ok, false)
  assert.equal(out.error.code, 'CONNECTION_LOST')
  const after = await settle(client.query('select 1'), HANG_MS)
  assert.equal(after.ok, false)
  assert.ok(LOST_CODES.has(after.error.code), after.error.code)
  await client.release()
  assert.equal(pool.stats().size, 0)
  assert.equal((await pool.query('select 3 as n')).rows[0].n, 3)
  await assertBooks(pool, app, proxy, 'after client cut')
})

test('every connection cut while idle: none is handed out dead, the counts drop to zero on their own', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 5 })
  await Promise.all(Array.from({ length: 5 }, () => pool.query('select pg_sleep(0.05)')))
  assert.equal(pool.stats().size, 5)
  proxy.dropAll('rst')
  // Without any query, the reaper must notice the dead connections.
  const gone = await poll(() => pool.stats().size === 0 && processStats().budget.used === sizesInProcess(processStats), { timeoutMs: 5000 })
  assert.ok(gone, `still counted after 5 s: ${JSON.stringify(pool.stats())}`)
  await poll(async () => (await countAt(TEST_URL, app)) === 0)
  const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS)))
  outs.forEach((o, i) => {
    assert.equal(o.ok, true, `query ${i}: ${o.error && o.error.code}`)
    assert.equal(o.value.rows[0].n, i)
  })
  await assertBooks(pool, app, proxy, 'after idle cut')
})

test('dead idle connections are found before hand-out even before the reaper runs', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 3 })
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 3 }, () => pool.query('select pg_sleep(0.02)')))
    proxy.dropAll(round % 2 ? 'fin' : 'rst')
    await sleep(20) // the FIN/RST reaches the pool's socket; the reaper (500 ms tick) has likely not run
    const outs = await Promise.all(Array.from({ length: 6 }, () => settle(pool.query('select 1 as one'), HANG_MS)))
    for (const o of outs) assert.equal(o.ok, true, `round ${round}: ${o.error && o.error.code} ${o.error && o.error.message}`)
  }
  await assertBooks(pool, app, proxy, 'after rounds')
})

test('abort (signal) of a query running on the server while the network stalls: the cancel arrives once it is back, ABORTED, nothing dirty', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 2, connectTimeoutMs: 3000 })
  await pool.query('select 1')
  const ac = new AbortController()
  const running = settle(pool.query({ text: 'select pg_sleep(8)', signal: ac.signal }), 7000)
  // The query is running on the server before the network stalls.
  await poll(async () => (await countActive(app)) === 1, { timeoutMs: 3000, everyMs: 20 })
  proxy.setMode('stall')
  ac.abort()
  await sleep(300)
  proxy.setMode('forward')
  const out = await running
  assert.equal(out.hung, undefined, 'the aborted query did not settle')
  assert.equal(out.ok, false, 'the aborted query succeeded')
  assert.equal(out.error.code, 'ABORTED', `${out.error.code}: ${out.error.message}`)
  assert.equal(await countActive(app), 0, 'the cancelled statement still runs on the server')
  const next = await settle(pool.query('select 5 as n'), 6000)
  assert.equal(next.ok, true, next.error && next.error.message)
  assert.equal(next.value.rows[0].n, 5)
  await assertBooks(pool, app, proxy, 'after abort')
})

test('abort (signal) while waiting for a connection held by a stalled query: ABORTED at once, the waiter is gone', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 1, acquireTimeoutMs: 20000 })
  await pool.query('select 1')
  proxy.setMode('stall')
  const stuck = settle(pool.query('select 1 as n'), HANG_MS)
  // Let the stuck query take the connection first (two calls issued in one tick race for it).
  await poll(() => pool.stats().inUse === 1, { timeoutMs: 2000, everyMs: 5 })
  const ac = new AbortController()
  const waiting = settle(pool.query('select 2', [], { signal: ac.signal }), HANG_MS)
  await poll(() => pool.stats().waiting === 1, { timeoutMs: 2000, everyMs: 10 })
  assert.equal(pool.stats().waiting, 1)
  ac.abort()
  const out = await waiting
  assert.equal(out.ok, false)
  assert.equal(out.error.code, 'ABORTED')
  assert.equal(pool.stats().waiting, 0)
  proxy.setMode('forward')
  const s = await stuck
  assert.equal(s.ok, true)
  assert.equal(s.value.rows[0].n, 1)
  await assertBooks(pool, app, proxy, 'after waiter abort')
})

test('abort (signal) during a stall that does not end: the aborted query still settles, its connection is dropped', LIMIT, async (t) => {
  const { proxy, app, pool } = await setup(t, { max: 2, connectTimeoutMs: 2000 })
  await pool.query('select 1')
  const ac = new AbortController()
  const running = settle(pool.query({ text: 'select pg_sleep(3)', signal: ac.signal }), 20000)
  await poll(async () => (await countActive(app)) === 1, { timeoutMs: 3000, everyMs: 20 })
  proxy.setMode('stall')
  ac.abort()
  // The network never comes back for this query: neither its answer nor the CancelRequest gets
  // through. Aborting must still give control back to the caller (after the cancel timeout).
  const out = await running
  t.diagnostic(`aborted query during a permanent stall: ${out.hung ? 'still pending after 20 s' : out.ok ? 'succeeded' : out.error.code}`)
  assert.equal(out.hung, undefined, 'an aborted query never settles while the network is stalled')
  assert.equal(out.ok, false)
  assert.equal(out.error.code, 'ABORTED')
  proxy.setMode('forward')
  await assertBooks(pool, app, proxy, 'after abort in a permanent stall')
})
