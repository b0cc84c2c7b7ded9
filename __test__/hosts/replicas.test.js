'use strict'
// Read replicas against a real primary and two real streaming standbys: pool.replica sends reads
// to the standbys and the pool's own requests to the primary, each server has its own `max` (and
// machine budget), the replicas' lag shows in stats(), a replica that goes down is taken out of
// rotation and used again once it is back, and with no standby up reads go to the primary.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Kysely, sql } = require('kysely')
const { createPool } = require('../..')
const { onepoolDialect } = require('../../adapters/kysely')
const { startReplication, caughtUp } = require('../helpers/replication')
const { uniqueName, waitFor } = require('../helpers/db')

describe('read replicas', () => {
  let repl
  let primary
  let r1
  let r2
  const pools = []

  before(async () => {
    repl = await startReplication({ standbys: 2 })
    ;[primary, r1, r2] = repl.servers
    await primary.query('create table items (id int primary key, name text)')
    await primary.query("insert into items select i, 'item ' || i from generate_series(1, 100) i")
    await Promise.all([caughtUp(primary, r1), caughtUp(primary, r2)])
  })

  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})))
    await repl.stop()
  })

  function pool(options = {}) {
    const p = createPool({
      connectionString: primary.url(),
      replicas: [`127.0.0.1:${r1.port}`, r2.url()],
      name: uniqueName('replicas'),
      applicationName: options.applicationName || uniqueName('app'),
      ...options,
    })
    pools.push(p)
    return p
  }

  const portOf = async (q) => (await q.query('select inet_server_port() as port')).rows[0].port

  test('reads go to the replicas, the pool itself to the primary', async () => {
    const p = pool()
    // Until a server was heard from it takes no reads (the first request has them all checked).
    await portOf(p.replica)
    await waitFor(() => p.stats().hosts.every((h) => h.state === 'up'))
    const seen = new Map()
    for (let i = 0; i < 60; i++) {
      const port = await portOf(p.replica)
      seen.set(port, (seen.get(port) || 0) + 1)
    }
    assert.deepEqual([...seen.keys()].sort(), [r1.port, r2.port].sort(), `reads per server: ${JSON.stringify([...seen])}`)
    for (let i = 0; i < 5; i++) assert.equal(await portOf(p), primary.port)
    const { rows } = await p.replica.query('select count(*)::int as n from items')
    assert.equal(rows[0].n, 100)
    const err = await p.replica.query("insert into items values (1000, 'x')").catch((e) => e)
    assert.equal(err.code, '25006', 'a write through pool.replica fails on the standby: read-only transaction')

    const client = await p.replica.connect()
    try {
      assert.ok([r1.port, r2.port].includes(client.port))
      assert.equal(await portOf(client), client.port)
    } finally {
      client.release()
    }
    const inTx = await p.replica.transaction(async (tx) => [await portOf(tx), (await tx.query('select pg_is_in_recovery() as r')).rows[0].r])
    assert.ok([r1.port, r2.port].includes(inTx[0]))
    assert.equal(inTx[1], true)
    assert.equal(p.replica.replica, p.replica)
    // An ORM on pool.replica reads from the replicas too (as Prisma's $replicas()).
    const kysely = new Kysely({ dialect: onepoolDialect(p.replica) })
    const viaKysely = await sql`select inet_server_port() as port`.execute(kysely)
    assert.ok([r1.port, r2.port].includes(viaKysely.rows[0].port))
  })

  test('stats() shows each server: role, connections, and the replicas lag', async () => {
    const p = pool()
    await Promise.all(Array.from({ length: 20 }, () => portOf(p.replica)))
    await portOf(p)
    const hosts = await waitFor(
      () => {
        const h = p.stats().hosts
        return h.filter((x) => x.replica).every((x) => typeof x.lagMs === 'number') && h
      },
      { timeoutMs: 5000 },
    )
    assert.ok(hosts, `lag measured: ${JSON.stringify(p.stats().hosts)}`)
    assert.deepEqual(
      hosts.map((h) => [h.port, h.replica, h.role, h.state]),
      [
        [primary.port, false, 'primary', 'up'],
        [r1.port, true, 'standby', 'up'],
        [r2.port, true, 'standby', 'up'],
      ],
    )
    for (const h of hosts.filter((x) => x.replica)) assert.ok(h.lagMs >= 0 && h.lagMs < 60000, `lag ${h.lagMs}`)
    assert.equal(hosts[0].lagMs, null)
    assert.equal(p.stats().size, hosts.reduce((n, h) => n + h.size, 0))
  })

  test('max applies per server', async () => {
    const app = uniqueName('perhost')
    const p = pool({ max: 2, applicationName: app })
    await Promise.all([
      ...Array.from({ length: 12 }, () => p.replica.query('select pg_sleep(0.1)')),
      ...Array.from({ length: 6 }, () => p.query('begin; select pg_sleep(0.1); commit')),
    ])
    const { hosts } = p.stats()
    for (const h of hosts) assert.ok(h.size <= 2, `${h.port}: ${h.size} connections`)
    assert.deepEqual(
      hosts.map((h) => h.size > 0),
      [true, true, true],
      `each server was used: ${JSON.stringify(hosts)}`,
    )
  })

  test('machineMax counts per server, shared with every pool on this machine that names the server', async () => {
    // Room to wait for a slot a check of the first request still holds (the reaper frees it).
    const p = pool({ machineMax: 1, acquireTimeoutMs: 3000 })
    const onPrimary = createPool({ connectionString: primary.url(), name: uniqueName('single'), machineMax: 1, acquireTimeoutMs: 300 })
    pools.push(onPrimary)
    const held = await p.connect()
    let onReplica
    try {
      assert.equal(held.port, primary.port)
      const err = await onPrimary.connect().catch((e) => e)
      assert.equal(err.code, 'POOL_TIMEOUT', err.message)
      assert.equal(err.timeoutKind, 'machineBudget')
      // The primary's one slot is taken; a replica's is its own.
      onReplica = await p.replica.connect()
      const replica = [r1, r2].find((r) => r.port === onReplica.port)
      assert.ok(replica, `on a replica: ${onReplica.port}`)
      const sameReplica = createPool({ connectionString: replica.url(), name: uniqueName('single'), machineMax: 1, acquireTimeoutMs: 300 })
      pools.push(sameReplica)
      const err2 = await sameReplica.connect().catch((e) => e)
      assert.equal(err2.timeoutKind, 'machineBudget', err2.message)
    } finally {
      held.release()
      if (onReplica) onReplica.release()
    }
    // Once p's connection is idle, the other pool gets the slot (p closes it for a waiter).
    const later = createPool({ connectionString: primary.url(), name: uniqueName('single'), machineMax: 1, acquireTimeoutMs: 3000 })
    pools.push(later)
    const c = await later.connect()
    assert.equal(c.port, primary.port)
    c.release()
  })

  test('a replica that goes down is taken out of rotation, and used again once back', async () => {
    const p = pool({ connectTimeoutMs: 2000 })
    for (let i = 0; i < 10; i++) await portOf(p.replica)
    await r1.stop()
    try {
      // In-flight reads on it may fail; those sent after it is known to be down do not.
      await waitFor(async () => (await portOf(p.replica).catch(() => 0)) === r2.port && p.stats().hosts[1].state === 'down', {
        timeoutMs: 10000,
      })
      const ports = []
      for (let i = 0; i < 30; i++) ports.push(await portOf(p.replica))
      assert.deepEqual([...new Set(ports)], [r2.port])
      assert.match(p.stats().hosts[1].error, new RegExp(`could not connect to .*:${r1.port}/`))
    } finally {
      await r1.start()
    }
    const again = await waitFor(async () => (await portOf(p.replica)) === r1.port, { timeoutMs: 15000, everyMs: 20 })
    assert.equal(again, true, `r1 back in rotation: ${JSON.stringify(p.stats().hosts)}`)
  })

  test('with no standby up, reads go to the primary', async () => {
    const p = pool()
    await portOf(p.replica)
    await Promise.all([r1.stop(), r2.stop()])
    try {
      const ports = []
      for (let i = 0; i < 10; i++) ports.push(await portOf(p.replica).catch((e) => e.code))
      // The reads sent before both standbys were known to be down may fail (CONNECTION_LOST,
      // or CONNECT_FAILED while being sent elsewhere); the rest reach the primary.
      assert.equal(ports.at(-1), primary.port, JSON.stringify(ports))
      assert.ok(ports.filter((x) => x === primary.port).length >= 8, JSON.stringify(ports))
    } finally {
      await Promise.all([r1.start(), r2.start()])
    }
  })
})
