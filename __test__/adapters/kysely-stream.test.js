'use strict'
// Issue #17: Kysely's PostgresDialect streams through onepool (`.stream()`, which needs the
// dialect's `cursor` option): onepoolDialect sets it to onepool's Cursor; a plain
// PostgresDialect takes it as `cursor: Cursor`. A large query streams in chunks on one
// connection, which goes back when the stream ends or the loop is left.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Kysely, PostgresDialect, sql } = require('kysely')
const { onepoolDialect } = require('../../adapters/kysely')
const { createPool, Cursor } = require('../..')
const { TEST_URL, APP_NAME, admin, uniqueName, waitFor } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
const app = uniqueName('kstream')
const table = uniqueName('kstream')
let pool

test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('kstream'), applicationName: app, max: 3 })
  await pool.query(`create table ${table} (id int primary key, label text, score float8)`)
  await pool.query(`insert into ${table} select g, 'item ' || g, g / 4.0 from generate_series(1, 500000) g`)
})
test.after(async () => {
  await pool.query(`drop table if exists ${table}`)
  await pool.end()
})

test('Kysely .stream() of a 500,000-row query through onepoolDialect', LIMIT, async () => {
  const db = new Kysely({ dialect: onepoolDialect(pool) })
  let n = 0
  let sum = 0
  let last = 0
  for await (const row of db.selectFrom(table).select(['id', 'label', 'score']).orderBy('id').stream(2000)) {
    n++
    sum += row.id
    assert.ok(row.id > last)
    last = row.id
    if (n === 1) assert.deepEqual(row, { id: 1, label: 'item 1', score: 0.25 })
  }
  assert.equal(n, 500000)
  assert.equal(sum, (500000 * 500001) / 2)
  assert.equal(pool.stats().inUse, 0)

  // Leaving the loop early ends the statement and gives the connection back.
  let seen = 0
  for await (const row of db.selectFrom(table).selectAll().stream(100)) {
    void row
    if (++seen === 10) break
  }
  await waitFor(() => pool.stats().inUse === 0)
  assert.equal(pool.stats().inUse, 0)
  const busy = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and state <> 'idle'`, [app])
  assert.equal(busy.rows[0].n, 0)

  // Inside a Kysely transaction, on the transaction's connection.
  const inTx = await db.transaction().execute(async (trx) => {
    await trx.updateTable(table).set({ label: 'changed' }).where('id', '<=', 5).execute()
    const labels = []
    for await (const row of trx.selectFrom(table).select('label').where('id', '<=', 5).orderBy('id').stream(2)) labels.push(row.label)
    return labels
  })
  assert.deepEqual(inTx, ['changed', 'changed', 'changed', 'changed', 'changed'])
})

test("a plain PostgresDialect streams with onepool's Cursor as its cursor option", async () => {
  const db = new Kysely({ dialect: new PostgresDialect({ pool, cursor: Cursor }) })
  const ids = []
  for await (const row of db.selectFrom(sql`generate_series(1, 7)`.as('g')).select(sql`g`.as('g')).stream(3)) ids.push(row.g)
  assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7])
  assert.equal(pool.stats().inUse, 0)
})
