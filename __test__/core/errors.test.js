'use strict'
// Every documented error code, produced for real against the test server.

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { createPool, isOnepoolError, OnepoolError } = require('../..')
const { APP_NAME, TEST_URL, admin, createRole, dropRole, uniqueName, waitFor } = require('../helpers/db')

function expectCode(code) {
  return (err) => {
    assert.ok(isOnepoolError(err), `expected an OnepoolError, got ${err}`)
    assert.ok(err instanceof OnepoolError && err instanceof Error)
    assert.equal(err.code, code, err.message)
    return true
  }
}

test('CONFIG_INVALID: thrown synchronously, naming the option and its closest known name', () => {
  assert.throws(() => createPool({ connectionString: TEST_URL, maxx: 3 }), (e) => {
    expectCode('CONFIG_INVALID')(e)
    assert.match(e.message, /unknown option "maxx".*did you mean "max"/)
    return true
  })
  assert.throws(() => createPool({ connectionString: TEST_URL, max: 'ten' }), expectCode('CONFIG_INVALID'))
  assert.throws(() => createPool({ connectionString: TEST_URL, max: 0 }), expectCode('CONFIG_INVALID'))
  assert.throws(() => createPool({ connectionString: TEST_URL, idleTimeoutMs: -1 }), expectCode('CONFIG_INVALID'))
  assert.throws(() => createPool(42), expectCode('CONFIG_INVALID'))
  assert.throws(() => createPool('mysql://u:hunter2@h/d'), (e) => {
    expectCode('CONFIG_INVALID')(e)
    assert.doesNotMatch(e.message, /hunter2/)
    return true
  })
  assert.throws(() => createPool('postgres://u:hunter2@h:99999/d'), (e) => {
    expectCode('CONFIG_INVALID')(e)
    assert.doesNotMatch(e.message, /hunter2/)
    return true
  })
})

test('CONNECT_FAILED with the OS cause when nothing listens', async () => {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address()
  await new Promise((r) => srv.close(r))
  const pool = createPool({ connectionString: `postgres://u:hunter2@127.0.0.1:${port}/db`, name: uniqueName() })
  await assert.rejects(pool.query('select 1'), (e) => {
    expectCode('CONNECT_FAILED')(e)
    assert.equal(e.cause.code, 'ECONNREFUSED')
    assert.doesNotMatch(e.message, /hunter2/)
    return true
  })
  assert.equal(pool.stats().size, 0, 'a failed connect frees its slot')
  await pool.end()
})

test('CONNECT_FAILED with the server SQLSTATE for a wrong password, never leaking it', async () => {
  const role = await createRole()
  const url = new URL(role.url)
  url.password = 'wrong-secret-123'
  const pool = createPool({ connectionString: url.toString(), name: uniqueName() })
  await assert.rejects(pool.query('select 1'), (e) => {
    expectCode('CONNECT_FAILED')(e)
    assert.equal(e.cause.code, '28P01')
    assert.doesNotMatch(e.message + e.stack, /wrong-secret-123/)
    return true
  })
  await pool.end()
  await dropRole(role.name)
})

test('CONNECT_FAILED carries 53300 when the role is out of connections', async () => {
  const role = await createRole({ connectionLimit: 1 })
  const blocker = createPool({ connectionString: role.url, name: uniqueName(), max: 1 })
  const held = await blocker.connect()
  const pool = createPool({ connectionString: role.url, name: uniqueName(), max: 1 })
  await assert.rejects(pool.query('select 1'), (e) => {
    expectCode('CONNECT_FAILED')(e)
    assert.equal(e.cause.code, '53300')
    return true
  })
  await held.release()
  await blocker.end()
  await pool.end()
  await dropRole(role.name)
})

test('POOL_TIMEOUT when every connection stays busy, with stats in the message', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1, acquireTimeoutMs: 200 })
  const held = await pool.connect()
  // The query times out 100 ms before the checkout queued after it: one other waiter, then none.
  const query = pool.query('select 1').catch((e) => e)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const checkout = pool.connect().catch((e) => e)
  for (const [e, others] of [[await query, '1 other checkout'], [await checkout, '0 other checkouts']]) {
    expectCode('POOL_TIMEOUT')(e)
    assert.equal(e.timeoutKind, 'acquire')
    assert.match(e.message, new RegExp(`: size 1, idle 0, in use 1, max 1, ${others} waiting$`))
  }
  assert.equal(pool.stats().acquireTimeouts, 2)
  await held.release()
  assert.equal((await pool.query('select 1 as x')).rows[0].x, 1)
  await pool.end()
})

test('POOL_CLOSED after end(), also for waiters', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const held = await pool.connect()
  const waiter = pool.query('select 1')
  await waitFor(() => pool.stats().waiting === 1)
  const ended = pool.end({ timeoutMs: 2000 })
  await assert.rejects(waiter, expectCode('POOL_CLOSED'))
  await held.release()
  await ended
  await assert.rejects(pool.query('select 1'), expectCode('POOL_CLOSED'))
})

test('CONNECTION_LOST when the backend is terminated mid-query; the pool heals', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  const running = pool.query('select pg_sleep(30)')
  running.catch(() => {})
  await waitFor(async () => (await admin(`select 1 from pg_stat_activity where ${APP_NAME} = $1 and state = 'active'`, [app])).rowCount)
  await admin(`select pg_terminate_backend(pid) from pg_stat_activity where ${APP_NAME} = $1`, [app])
  await assert.rejects(running, expectCode('CONNECTION_LOST'))
  assert.equal((await pool.query('select 7 as x')).rows[0].x, 7)
  await pool.end()
})

test('PARAM_INVALID for values that have no database representation', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const circular = {}
  circular.self = circular
  for (const bad of [Symbol('x'), () => 1, circular, new Date('nope')]) {
    await assert.rejects(pool.query('select $1::text', [bad]), expectCode('PARAM_INVALID'))
  }
  await assert.rejects(pool.query('select $1::text', 'not-an-array'), expectCode('PARAM_INVALID'))
  await assert.rejects(pool.query(42), expectCode('PARAM_INVALID'))
  await assert.rejects(pool.query('select $1::text', ['nul\u0000byte']), expectCode('PARAM_INVALID'))
  assert.equal((await pool.query('select 1 as x')).rows[0].x, 1, 'the pool keeps serving')
  await pool.end()
})

test('server errors carry SQLSTATE and every field', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const table = uniqueName('tbl')
  await pool.query(`create table ${table} (id int primary key, name text not null)`)
  try {
    await pool.query(`insert into ${table} values (1, 'a')`)
    await assert.rejects(pool.query(`insert into ${table} values (1, 'b')`), (e) => {
      expectCode('23505')(e)
      assert.equal(e.severity, 'ERROR')
      assert.equal(e.table, table)
      assert.equal(e.constraint, `${table}_pkey`)
      assert.match(e.detail, /Key \(id\)=\(1\) already exists/)
      return true
    })
    await assert.rejects(pool.query(`insert into ${table} values (2, null)`), (e) => {
      expectCode('23502')(e)
      assert.equal(e.column, 'name')
      return true
    })
    await assert.rejects(pool.query('select nope from nowhere'), (e) => {
      expectCode('42P01')(e)
      assert.equal(e.position, '18')
      return true
    })
    await assert.rejects(pool.query('select $1::int, $2::int', [1]), expectCode('08P01'))
    await assert.rejects(pool.query("select 'x'::int"), (e) => e.code === '22P02')
  } finally {
    await pool.query(`drop table ${table}`)
    await pool.end()
  }
})

test('ABORTED: an aborted query is cancelled on the server and the connection comes back clean', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  const ac = new AbortController()
  const running = pool.query('select pg_sleep(30)', [], { signal: ac.signal })
  await waitFor(async () => (await admin(`select 1 from pg_stat_activity where ${APP_NAME} = $1 and state = 'active'`, [app])).rowCount)
  ac.abort()
  await assert.rejects(running, expectCode('ABORTED'))
  const state = await admin(`select state from pg_stat_activity where ${APP_NAME} = $1`, [app])
  assert.deepEqual(state.rows.map((r) => r.state), ['idle'], 'the backend stopped working and is idle')
  assert.equal(pool.stats().idle, 1)
  // Aborting while waiting for a connection removes the waiter.
  const held = await pool.connect()
  const ac2 = new AbortController()
  const waiting = pool.query('select 1', [], { signal: ac2.signal })
  await waitFor(() => pool.stats().waiting === 1)
  ac2.abort()
  await assert.rejects(waiting, expectCode('ABORTED'))
  assert.equal(pool.stats().waiting, 0)
  await assert.rejects(pool.query('select 1', [], { signal: AbortSignal.abort() }), expectCode('ABORTED'))
  await held.release()
  assert.equal((await pool.query('select 3 as x')).rows[0].x, 3)
  await pool.end()
})

test('CLIENT_RELEASED: using a client after release()', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const client = await pool.connect()
  await client.release()
  await assert.rejects(client.query('select 1'), expectCode('CLIENT_RELEASED'))
  assert.throws(() => client.release(), expectCode('CLIENT_RELEASED'))
  await pool.end()
})

test('RUNTIME_UNSUPPORTED (the Edge runtime entry) is an OnepoolError like every other', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `try { require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'edge.js'))}) } catch (e) {
         const { OnepoolError, isOnepoolError } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'errors.js'))})
         console.log(JSON.stringify({ code: e.code, name: e.name, instance: e instanceof OnepoolError, is: isOnepoolError(e) }))
       }`,
    ],
    { encoding: 'utf8' },
  )
  assert.deepEqual(JSON.parse(out), { code: 'RUNTIME_UNSUPPORTED', name: 'OnepoolError', instance: true, is: true })
})
