'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { createPool } = require('../..')
const { TEST_URL, admin, countConnections, uniqueName, waitFor } = require('../helpers/db')

test('pg_terminate_backend on a pooled connection: the next query succeeds', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  const before = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid
  await admin('select pg_terminate_backend($1)', [before])
  await waitFor(async () => (await countConnections(app)) === 0)
  const r = await pool.query('select pg_backend_pid() as pid')
  assert.notEqual(r.rows[0].pid, before)
  await pool.end()
})

test('idle connections close after idleTimeoutMs; connections open lazily', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 3, idleTimeoutMs: 300 })
  assert.equal(await countConnections(app), 0, 'nothing opens before the first query')
  await Promise.all([1, 2, 3].map(() => pool.query('select pg_sleep(0.05)')))
  assert.equal(await countConnections(app), 3)
  assert.equal(await waitFor(async () => (await countConnections(app)) === 0, { timeoutMs: 5000 }), true)
  assert.equal(pool.stats().size, 0)
  await pool.end()
})

test('maxLifetimeSec retires connections (staggered) and the pool replaces them', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1, maxLifetimeSec: 0.3 })
  const first = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid
  await new Promise((r) => setTimeout(r, 500))
  const second = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid
  assert.notEqual(second, first)
  assert.equal(pool.stats().created, 2)
  await pool.end()
})

test('the process exits by itself after use, without end(), and its connections go away', async () => {
  const app = uniqueName()
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'exit-after-use.js')], {
    env: { ...process.env, URL: TEST_URL, APP: app },
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const guard = setTimeout(() => child.kill('SIGKILL'), 20000)
  const [code, signal] = await new Promise((r) => child.on('exit', (c, s) => r([c, s])))
  clearTimeout(guard)
  assert.equal(signal, null, 'it was not killed by the guard: it exited on its own')
  assert.equal(code, 0)
  assert.equal(out.trim(), '[1,2,3]')
  assert.equal(await waitFor(async () => (await countConnections(app)) === 0), true)
})

test('pool.query supports pg shapes: rowMode array, config objects, callbacks, multi-statement text', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 2 })
  const arr = await pool.query({ text: 'select 1 as a, $1::text as b', values: ['x'], rowMode: 'array' })
  assert.deepEqual(arr.rows, [[1, 'x']])
  assert.deepEqual(arr.fields.map((f) => f.name), ['a', 'b'])
  const multi = await pool.query('select 1 as a; select 2 as b')
  assert.equal(multi.length, 2)
  assert.deepEqual(multi[1].rows, [{ b: 2 }])
  const viaCallback = await new Promise((resolve, reject) =>
    pool.query('select $1::int as n', [5], (err, res) => (err ? reject(err) : resolve(res))),
  )
  assert.equal(viaCallback.rows[0].n, 5)
  const table = uniqueName('t')
  const created = await pool.query(`create temp table ${table} (x int)`)
  assert.equal(created.command, 'CREATE')
  assert.equal(created.rowCount, null)
  await pool.query(`drop table if exists ${table}`)
  const ins = await pool.query(`create table ${table} (x int); insert into ${table} values (1), (2)`)
  assert.equal(ins[1].command, 'INSERT')
  assert.equal(ins[1].rowCount, 2)
  const upd = await pool.query(`update ${table} set x = x + $1`, [1])
  assert.equal(upd.rowCount, 2)
  await pool.query(`drop table ${table}`)
  const empty = await pool.query('')
  assert.deepEqual(empty.rows, [])
  await pool.end()
})

test('application_name is onepool by default and configurable, tagged with pid and host', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName() })
  assert.equal((await pool.query("select current_setting('application_name') as a")).rows[0].a, `onepool [${process.pid}@${os.hostname().split('.')[0].slice(0, 20)}]`)
  await pool.end()
  const named = createPool({ connectionString: TEST_URL, name: uniqueName(), application_name: app })
  assert.match((await named.query("select current_setting('application_name') as a")).rows[0].a, new RegExp(`^${app} \\[${process.pid}@`))
  await named.end()
})

test('over a unix socket: pipelined, large requests and results, transactions, all in order', async () => {
  const dir = (await admin('show unix_socket_directories')).rows[0].unix_socket_directories.split(',')[0].trim()
  const url = new URL(TEST_URL)
  const app = uniqueName()
  const pool = createPool({
    connectionString: `postgres://${url.username}:${url.password}@localhost${url.pathname}?host=${encodeURIComponent(dir)}&port=${url.port}`,
    applicationName: app,
    max: 2,
  })
  const big = 'x'.repeat(3 << 20) // larger than a socket buffer: part of it goes through the writer task
  const echoed = await pool.query('select length($1::text) as n, repeat($2, 100000) as out', [big, 'ab'])
  assert.equal(echoed.rows[0].n, big.length)
  assert.equal(echoed.rows[0].out.length, 200000)
  const many = await Promise.all(Array.from({ length: 300 }, (_, i) => pool.query('select $1::int as i', [i])))
  assert.deepEqual(many.map((r) => r.rows[0].i), Array.from({ length: 300 }, (_, i) => i))
  const inTx = await pool.transaction(async (c) => {
    await c.query('create temp table t (v int)')
    await c.query('insert into t select generate_series(1, 5)')
    return (await c.query('select sum(v)::int as s from t')).rows[0].s
  })
  assert.equal(inTx, 15)
  const over = await admin(
    `select count(*)::int as n, count(client_addr)::int as tcp from pg_stat_activity where application_name like $1`,
    [`${app} [%`],
  )
  assert.deepEqual(over.rows[0], { n: 2, tcp: 0 }, 'both connections are unix-socket connections')
  await pool.end()
})
