'use strict'
// The per-connection prepared-statement cache: statements are prepared once and reused, survive
// DDL and DISCARD ALL by falling back transparently, and can be turned off.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const preparedOnConnection = (client) =>
  client.query("select statement from pg_prepared_statements where name like 'onepool_%' order by statement").then((r) => r.rows.map((x) => x.statement))

test('queries with parameters are prepared once per connection and then only bound', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  for (let i = 0; i < 5; i++) assert.equal((await pool.query('select $1::int + 1 as n', [i])).rows[0].n, i + 1)
  const c = await pool.connect()
  assert.deepEqual(await preparedOnConnection(c), ['select $1::int + 1 as n'])
  const r = await c.query('select $1::int + 1 as n, $2::text as t', [1, 'x'])
  assert.deepEqual(r.fields.map((f) => [f.name, f.dataTypeID]), [['n', 23], ['t', 25]])
  const again = await c.query('select $1::int + 1 as n, $2::text as t', [2, 'y'])
  assert.deepEqual(again.fields.map((f) => [f.name, f.dataTypeID]), [['n', 23], ['t', 25]], 'fields come from the cache')
  assert.deepEqual(again.rows, [{ n: 3, t: 'y' }])
  await c.release()
  await pool.end()
})

test('a table changed under a cached statement, and DISCARD ALL, are survived', async () => {
  const table = uniqueName('cache')
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  await pool.query(`create table ${table} (id int, a text)`)
  await pool.query(`insert into ${table} values (1, 'x')`)
  const sql = `select * from ${table} where id = $1`
  assert.deepEqual((await pool.query(sql, [1])).rows, [{ id: 1, a: 'x' }])
  assert.deepEqual((await pool.query(sql, [1])).rows, [{ id: 1, a: 'x' }])
  await pool.query(`alter table ${table} add column b int default 7`)
  assert.deepEqual((await pool.query(sql, [1])).rows, [{ id: 1, a: 'x', b: 7 }], 'cached plan must not change result type: retried')
  await pool.query('discard all')
  assert.deepEqual((await pool.query(sql, [1])).rows, [{ id: 1, a: 'x', b: 7 }], 'prepared statement does not exist: retried')
  assert.deepEqual((await pool.query(sql, [1])).rows, [{ id: 1, a: 'x', b: 7 }])
  await pool.query(`drop table ${table}`)
  await pool.end()
})

test('a failing first use does not poison the cache', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  await assert.rejects(pool.query('select $1::int as n', ['not a number']), (e) => e.code === '22P02')
  assert.equal((await pool.query('select $1::int as n', ['5'])).rows[0].n, 5)
  await assert.rejects(pool.query('select nope($1)', [1]), (e) => e.code === '42883')
  assert.equal((await pool.query('select $1::int as n', ['6'])).rows[0].n, 6)
  await pool.end()
})

test('statementCacheSize: 0 keeps every statement unnamed', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1, statementCacheSize: 0 })
  for (let i = 0; i < 3; i++) await pool.query('select $1::int as n', [i])
  const c = await pool.connect()
  assert.deepEqual(await preparedOnConnection(c), [])
  await c.release()
  await pool.end()
})
