'use strict'
// A listening connection cut without a word (the network stalls: no FIN, no RST) would listen to
// nothing, silently. The pool checks a quiet listening connection (every ONEPOOL_LISTEN_CHECK_MS,
// 30 s by default; 300 ms here) and replaces one that does not answer within connectTimeoutMs.

process.env.ONEPOOL_LISTEN_CHECK_MS = '300'

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, admin, uniqueName, waitFor } = require('../helpers/db')
const { startProxy, viaProxy } = require('../helpers/proxy')

test('a stalled listening connection is found, replaced once the network is back, and onReconnect says so', { timeout: 60000 }, async () => {
  const proxy = await startProxy(Number(new URL(TEST_URL).port))
  const app = uniqueName('stall')
  const db = createPool({ connectionString: viaProxy(TEST_URL, proxy), applicationName: app, connectTimeoutMs: 500, acquireTimeoutMs: 1000 })
  const channel = uniqueName('ch')
  const got = []
  const reconnects = []
  const sub = db.listen(channel, (n) => got.push(n.payload), { onReconnect: (info) => reconnects.push(info) })
  await sub.ready
  await admin('select pg_notify($1, $2)', [channel, 'before'])
  assert.ok(await waitFor(() => got.length === 1))
  proxy.setMode('stall')
  // The check times out; attempts to reconnect stall too (connect timeout) while it lasts.
  assert.ok(await waitFor(() => db.stats().listening === 0, { timeoutMs: 10000 }), 'the stalled connection was dropped')
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(reconnects.length, 0, 'no reconnect while the network is down')
  proxy.setMode('forward')
  assert.ok(await waitFor(() => reconnects.length === 1, { timeoutMs: 20000 }), 'onReconnect after the network came back')
  assert.match(reconnects[0].cause.message, /did not answer within 500 ms/)
  assert.ok(reconnects[0].attempts >= 2, `attempts ${reconnects[0].attempts}`)
  await admin('select pg_notify($1, $2)', [channel, 'after'])
  assert.ok(await waitFor(() => got.length === 2))
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(got, ['before', 'after'])
  sub.unlisten()
  await db.end()
  await proxy.close()
})
