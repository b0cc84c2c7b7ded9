'use strict'
// LISTEN with a host list, against a real primary and a real streaming standby: the listening
// connection goes to the primary whatever target_session_attrs says (NOTIFY runs only on a
// primary, and a standby refuses LISTEN), it counts in that server's size, not in inUse, and
// after a failover it reconnects to the promoted standby and calls onReconnect.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { startReplication } = require('../helpers/replication')
const { SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { uniqueName, waitFor } = require('../helpers/db')

describe('LISTEN with a host list', () => {
  let repl
  const pools = []

  before(async () => {
    repl = await startReplication({ standbys: 1 })
  })

  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})))
    await repl.stop()
  })

  function pool(ports, query, options = {}) {
    const hosts = ports.map((p) => `127.0.0.1:${p}`).join(',')
    const p = createPool({
      connectionString: `postgres://${SUPERUSER}:${PASSWORD}@${hosts}/postgres?${query}`,
      name: uniqueName('hosts-listen'),
      applicationName: uniqueName('app'),
      max: 3,
      ...options,
    })
    pools.push(p)
    return p
  }

  /** Where the pool's listening connection is: the server with a connection neither idle nor in use. */
  function listeningOn(db) {
    const s = db.stats()
    return s.hosts.filter((h) => h.size - h.idle - h.inUse === 1).map((h) => h.port)
  }

  for (const attrs of ['read-write', 'any', 'standby', 'prefer-standby']) {
    test(`target_session_attrs=${attrs}, standby first in the host list: the listening connection is on the primary`, async () => {
      const { primary, standbys } = repl
      const db = pool([standbys[0].port, primary.port], `target_session_attrs=${attrs}`)
      const channel = uniqueName('ch')
      const got = []
      const sub = db.listen(channel, (n) => got.push(n.payload))
      await sub.ready
      // Sent on the primary by another client: the only place a NOTIFY can run.
      await primary.query('select pg_notify($1, $2)', [channel, 'from the primary'])
      // pool.replica.notify() goes where the pool's writes go, not to a standby (which refuses it).
      if (attrs === 'read-write') await db.replica.notify(channel, 'through pool.replica')
      const expected = attrs === 'read-write' ? ['from the primary', 'through pool.replica'] : ['from the primary']
      assert.ok(await waitFor(() => got.length === expected.length), `delivered: ${JSON.stringify(got)}`)
      assert.deepEqual(got, expected)
      const s = db.stats()
      assert.equal(s.listening, 1)
      assert.deepEqual(listeningOn(db), [primary.port], JSON.stringify(s.hosts))
      assert.equal(s.hosts.find((h) => h.port === primary.port).role, 'primary')
      assert.equal(s.inUse, 0, 'the listening connection is not in use')
      sub.unlisten()
      assert.ok(await waitFor(() => db.stats().listening === 0 && listeningOn(db).length === 0), JSON.stringify(db.stats()))
    })
  }

  test('no primary in the host list: ready rejects, saying why', async () => {
    const { standbys } = repl
    // One server and target_session_attrs=any: nothing to pick, the standby itself refuses.
    const direct = pool([standbys[0].port], 'target_session_attrs=any', { connectTimeoutMs: 2000 })
    const refused = direct.listen(uniqueName('ch'), () => {})
    await assert.rejects(refused.ready, (e) => e.code === '25006' && /LISTEN during recovery/.test(e.message))
    refused.unlisten()
    // Servers to pick from: the pool waits connectTimeoutMs for a primary (one may be promoted).
    const picking = pool([standbys[0].port], 'target_session_attrs=read-only', { connectTimeoutMs: 1000 })
    const waited = picking.listen(uniqueName('ch'), () => {})
    await assert.rejects(waited.ready, (e) => e.code === 'CONNECT_FAILED' && /no primary to LISTEN on/.test(e.message) && /a standby/.test(e.message))
    waited.unlisten()
    for (const db of [direct, picking]) {
      assert.ok(await waitFor(() => db.stats().listening === 0 && db.stats().size === db.stats().idle), JSON.stringify(db.stats()))
    }
  })

  // Last: the failover leaves the old primary stopped.
  test('failover: the listening connection moves to the promoted standby, onReconnect is called, notifications arrive there', async () => {
    const [oldPrimary, newPrimary] = [repl.primary, repl.standbys[0]]
    const app = uniqueName('app')
    const db = pool([oldPrimary.port, newPrimary.port], 'target_session_attrs=read-write', { connectTimeoutMs: 10000, applicationName: app })
    const channel = uniqueName('ch')
    const got = []
    const reconnects = []
    const sub = db.listen(channel, (n) => got.push(n.payload), { onReconnect: (info) => reconnects.push(info) })
    await sub.ready
    assert.deepEqual(listeningOn(db), [oldPrimary.port])
    await db.notify(channel, 'before')
    assert.ok(await waitFor(() => got.length === 1))

    const stoppedAt = new Date()
    await oldPrimary.stop()
    await newPrimary.promote()
    assert.ok(await waitFor(() => reconnects.length === 1, { timeoutMs: 20000 }), 'onReconnect was called')
    const [info] = reconnects
    assert.equal(info.channel, channel)
    assert.equal(info.cause.code, 'CONNECTION_LOST')
    assert.match(info.cause.message, /57P01/)
    assert.ok(info.since >= new Date(stoppedAt.getTime() - 1000) && info.since <= new Date(), String(info.since))
    assert.ok(info.attempts >= 1)
    assert.deepEqual(listeningOn(db), [newPrimary.port], JSON.stringify(db.stats().hosts))

    await db.notify(channel, 'after')
    assert.ok(await waitFor(() => got.length === 2), `delivered: ${JSON.stringify(got)}`)
    assert.deepEqual(got, ['before', 'after'])
    const { rows } = await newPrimary.query(
      "select count(*)::int as n from pg_stat_activity where application_name like $1 || '%' and query ilike 'LISTEN %'",
      [app],
    )
    assert.equal(rows[0].n, 1, 'one listening connection on the new primary')
    sub.unlisten()
    assert.ok(await waitFor(() => db.stats().listening === 0))
  })
})
