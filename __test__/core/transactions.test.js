'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { APP_NAME, TEST_URL, admin, countConnections, uniqueName } = require('../helpers/db')

const app = uniqueName()
const table = uniqueName('tx')
let pool

test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 2 })
  await pool.query(`create table ${table} (id int primary key, v text)`)
})

test.after(async () => {
  await pool.query(`drop table ${table}`)
  await pool.end()
})

async function ids() {
  return (await pool.query(`select id from ${table} order by id`)).rows.map((r) => r.id)
}

test('commits when the callback resolves and returns its value', async () => {
  const out = await pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} values (1, 'a')`)
    return 'done'
  })
  assert.equal(out, 'done')
  assert.deepEqual(await ids(), [1])
})

test('rolls back when the callback throws, rethrows, and releases the client', async () => {
  await assert.rejects(
    pool.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (2, 'b')`)
      throw new Error('boom')
    }),
    /boom/,
  )
  assert.deepEqual(await ids(), [1])
  assert.equal(pool.stats().inUse, 0)
})

test('a server error inside rolls back and the connection is reused clean', async () => {
  await assert.rejects(
    pool.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (3, 'c')`)
      await tx.query(`insert into ${table} values (1, 'dup')`)
    }),
    (e) => e.code === '23505',
  )
  assert.deepEqual(await ids(), [1])
  const status = await pool.query("select current_setting('transaction_isolation') as i, now() = statement_timestamp() as fresh")
  assert.equal(status.rows[0].fresh, true, 'not inside a leftover transaction')
})

test('a caught error inside the callback still aborts: TRANSACTION_ABORTED, nothing committed', async () => {
  await assert.rejects(
    pool.transaction(async (tx) => {
      await tx.query(`insert into ${table} values (4, 'd')`)
      await tx.query('select nope').catch(() => {})
    }),
    (e) => e.code === 'TRANSACTION_ABORTED',
  )
  assert.deepEqual(await ids(), [1])
})

test('nested transactions use savepoints', async () => {
  await pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} values (10, 'outer')`)
    await assert.rejects(
      tx.transaction(async (inner) => {
        await inner.query(`insert into ${table} values (11, 'inner')`)
        throw new Error('inner fails')
      }),
      /inner fails/,
    )
    await tx.transaction(async (inner) => {
      await inner.query(`insert into ${table} values (12, 'inner ok')`)
      await inner.transaction((deeper) => deeper.query(`insert into ${table} values (13, 'deeper')`))
    })
  })
  assert.deepEqual(await ids(), [1, 10, 12, 13])
})

test('isolation level and read only are applied', async () => {
  const r = await pool.transaction(
    (tx) => tx.query("select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro"),
    { isolationLevel: 'serializable', readOnly: true },
  )
  assert.deepEqual(r.rows[0], { iso: 'serializable', ro: 'on' })
  await assert.rejects(
    pool.transaction((tx) => tx.query(`insert into ${table} values (99, 'x')`), { readOnly: true }),
    (e) => e.code === '25006',
  )
})

test('a client released inside an open transaction is rolled back, never handed out dirty', async () => {
  const c = await pool.connect()
  await c.query('begin')
  await c.query(`insert into ${table} values (50, 'left open')`)
  await c.release()
  assert.deepEqual(await ids(), [1, 10, 12, 13])
  for (let i = 0; i < 4; i++) {
    const r = await pool.query("select now() = statement_timestamp() as fresh")
    assert.equal(r.rows[0].fresh, true)
  }
  // pool.query('begin') cannot leak a transaction either.
  await pool.query('begin')
  assert.equal((await pool.query('select now() = statement_timestamp() as fresh')).rows[0].fresh, true)
})

test('a thousand failing transactions never leak a connection', async () => {
  const runs = []
  for (let i = 0; i < 1000; i++) {
    runs.push(
      pool
        .transaction(async (tx) => {
          await tx.query('select 1')
          if (i % 2) throw new Error('x')
          await tx.query('select nope')
        })
        .catch((e) => e),
    )
  }
  const errors = await Promise.all(runs)
  assert.equal(errors.filter((e) => e instanceof Error).length, 1000)
  const s = pool.stats()
  assert.equal(s.inUse, 0)
  assert.ok(s.size <= 2)
  assert.ok((await countConnections(app)) <= 2)
  const st = await admin(`select count(*)::int n from pg_stat_activity where ${APP_NAME} = $1 and state <> 'idle'`, [app])
  assert.equal(st.rows[0].n, 0, 'no session idle in transaction')
})
