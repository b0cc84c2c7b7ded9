'use strict'
// Multi-host targets, libpq-compatible, against a real primary and a real streaming standby:
// each target_session_attrs lands on the server it names whatever the order of the host list,
// load_balance_hosts=random spreads connections, a host that is down is skipped, a connection
// on the wrong kind of server is closed, and stats() shows which server each connection is on.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { startReplication } = require('../helpers/replication')
const { freePort, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { uniqueName, waitFor } = require('../helpers/db')

describe('multi-host targets', () => {
  let repl
  let primary
  let standby
  const pools = []

  before(async () => {
    repl = await startReplication({ standbys: 1 })
    primary = repl.primary
    standby = repl.standbys[0]
  })

  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})))
    await repl.stop()
  })

  /** A pool on `postgres://...@127.0.0.1:<port>,.../postgres?<query>`. */
  function pool(ports, query = '', options = {}) {
    const hosts = ports.map((p) => `127.0.0.1:${p}`).join(',')
    const p = createPool({
      connectionString: `postgres://${SUPERUSER}:${PASSWORD}@${hosts}/postgres${query ? `?${query}` : ''}`,
      name: uniqueName('hosts'),
      applicationName: options.applicationName || uniqueName('app'),
      ...options,
    })
    pools.push(p)
    return p
  }

  async function serverPort(p) {
    const { rows } = await p.query('select inet_server_port() as port, pg_is_in_recovery() as standby')
    return rows[0]
  }

  test('each target_session_attrs lands on the server it names, in either order of the host list', async () => {
    const cases = [
      ['read-write', primary],
      ['primary', primary],
      ['read-only', standby],
      ['standby', standby],
      ['prefer-standby', standby],
    ]
    for (const [attrs, expected] of cases) {
      for (const order of [
        [primary.port, standby.port],
        [standby.port, primary.port],
      ]) {
        const p = pool(order, `target_session_attrs=${attrs}`)
        for (let i = 0; i < 3; i++) {
          const { port, standby: inRecovery } = await serverPort(p)
          assert.equal(port, expected.port, `${attrs} over ${order}`)
          assert.equal(inRecovery, expected === standby)
        }
      }
    }
    // any: the first host that accepts, as libpq.
    assert.equal((await serverPort(pool([standby.port, primary.port], 'target_session_attrs=any'))).port, standby.port)
    assert.equal((await serverPort(pool([primary.port, standby.port]))).port, primary.port)
  })

  test('host and port lists in the options, and a client knows its server', async () => {
    const p = createPool({
      host: ['127.0.0.1', '127.0.0.1'],
      port: [standby.port, primary.port],
      user: SUPERUSER,
      password: PASSWORD,
      database: 'postgres',
      name: uniqueName('hosts'),
      targetSessionAttrs: 'read-write',
    })
    pools.push(p)
    const client = await p.connect()
    try {
      assert.equal(client.port, primary.port)
      assert.equal(client.host, '127.0.0.1')
      const { rows } = await client.query('select inet_server_port() as port')
      assert.equal(rows[0].port, primary.port)
    } finally {
      client.release()
    }
  })

  test('load_balance_hosts=random spreads connections over the servers that fit', async () => {
    const p = pool([primary.port, standby.port], 'load_balance_hosts=random', { max: 2 })
    const seen = new Set()
    // Until a server was heard from it takes no connection; then each is picked at random.
    for (let i = 0; i < 400 && seen.size < 2; i++) {
      const client = await p.connect()
      seen.add(client.port)
      client.release()
      await new Promise((r) => setTimeout(r, 5))
    }
    assert.deepEqual([...seen].sort(), [primary.port, standby.port].sort())
  })

  test('a host that is down is skipped, and stats() says so', async () => {
    const dead = await freePort()
    const p = pool([dead, primary.port], 'target_session_attrs=read-write')
    assert.equal((await serverPort(p)).port, primary.port)
    const { hosts, target } = p.stats()
    assert.equal(target, `${SUPERUSER}@127.0.0.1:${dead},127.0.0.1:${primary.port}/postgres`)
    assert.equal(hosts[0].port, dead)
    assert.equal(hosts[0].state, 'down')
    assert.match(hosts[0].error, /ECONNREFUSED/)
    assert.equal(hosts[1].state, 'up')
    assert.equal(hosts[1].role, 'primary')
  })

  test('every host down: CONNECT_FAILED at once, naming each host', async () => {
    const [a, b] = [await freePort(), await freePort()]
    const p = pool([a, b], 'target_session_attrs=read-write', { connectTimeoutMs: 5000 })
    const started = Date.now()
    const err = await p.query('select 1').catch((e) => e)
    assert.equal(err.code, 'CONNECT_FAILED')
    assert.equal(err.cause.code, 'ECONNREFUSED')
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${a}: .*ECONNREFUSED.*127\\.0\\.0\\.1:${b}: .*ECONNREFUSED`))
    assert.ok(Date.now() - started < 4000, 'it did not wait for a server to come up')
  })

  test('no server of the wanted kind: CONNECT_FAILED after connectTimeoutMs, saying what each server is', async () => {
    const p = pool([standby.port], 'target_session_attrs=read-write', { connectTimeoutMs: 300 })
    const err = await p.query('select 1').catch((e) => e)
    assert.equal(err.code, 'CONNECT_FAILED')
    assert.match(err.message, new RegExp(`target_session_attrs=read-write .*127\\.0\\.0\\.1:${standby.port}: a standby`))
  })

  test('a connection on the wrong kind of server is closed; stats() shows where each connection is', async () => {
    const app = uniqueName('wrongkind')
    const p = pool([standby.port, primary.port], 'target_session_attrs=read-write', { applicationName: app, max: 3 })
    await Promise.all([1, 2, 3].map(() => p.query('select pg_sleep(0.05)')))
    const count = async (server) =>
      Number((await server.query("select count(*) as n from pg_stat_activity where application_name like $1 || ' [%'", [app])).rows[0].n)
    assert.equal(await waitFor(async () => (await count(standby)) === 0), true, 'no connection left on the standby')
    const onPrimary = await count(primary)
    assert.ok(onPrimary >= 1 && onPrimary <= 3, `${onPrimary} on the primary`)
    const { hosts, size } = p.stats()
    assert.deepEqual(
      hosts.map((h) => [h.port, h.role, h.size]),
      [
        [standby.port, 'standby', 0],
        [primary.port, 'primary', onPrimary],
      ],
    )
    assert.equal(size, onPrimary)
  })

  test('a primary turned read-only takes no more writes (25006 sends the write on, writes nothing); turned back, it does', async () => {
    const p = pool([primary.port, standby.port], 'target_session_attrs=read-write', { connectTimeoutMs: 500 })
    await p.query('create table rw_probe (v int)')
    await p.query('insert into rw_probe values (1)')
    // What some HA managers do to fence a primary.
    await primary.query('alter system set default_transaction_read_only = on')
    await primary.query('select pg_reload_conf()')
    // A reload is asynchronous: once a new session sees it, every backend has been signalled.
    const applied = async () => (await primary.query('show default_transaction_read_only')).rows[0].default_transaction_read_only === 'on'
    assert.equal(await waitFor(applied), true)
    try {
      const err = await p.query('insert into rw_probe values (2)').catch((e) => e)
      assert.equal(err.code, 'CONNECT_FAILED', err.message)
      assert.match(err.message, new RegExp(`target_session_attrs=read-write .*127\\.0\\.0\\.1:${primary.port}: a read-only primary`))
      assert.equal(p.stats().hosts[0].readOnly, true)
    } finally {
      await primary.query('alter system reset default_transaction_read_only')
      await primary.query('select pg_reload_conf()')
    }
    const resumed = await waitFor(() => p.query('insert into rw_probe values (3)').then(() => true, () => false), { timeoutMs: 5000 })
    assert.equal(resumed, true)
    const { rows } = await primary.query('select array_agg(distinct v order by v) as v from rw_probe')
    assert.deepEqual(rows[0].v, [1, 3])
  })

  test('a single-host pool reports its server too', async () => {
    const p = pool([primary.port])
    await p.query('select 1')
    const [host] = p.stats().hosts
    assert.deepEqual([host.port, host.role, host.state, host.replica], [primary.port, 'primary', 'up', false])
  })
})
