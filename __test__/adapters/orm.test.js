'use strict'
// Tagged templates, Kysely and Drizzle through onepool, with real queries and transactions. The
// Kysely and Drizzle setups are the README's snippets (examples/snippets/), run as they are.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { sql: ksql } = require('kysely')
const { eq, sql: dsql } = require('drizzle-orm')
const { pgTable, serial, text, integer, timestamp } = require('drizzle-orm/pg-core')
const { createPool } = require('../..')
const { TEST_URL, uniqueName, countConnections } = require('../helpers/db')

const root = path.join(__dirname, '..', '..')
const table = uniqueName('people')
const app = uniqueName()
process.env.DATABASE_URL = TEST_URL

let pool
test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('own'), applicationName: app, max: 3 })
  await pool.query(`create table ${table} (id serial primary key, name text not null, age int, born timestamptz default now())`)
})
test.after(async () => {
  await pool.query(`drop table if exists ${table}`)
  await pool.end()
})

test('sql tag: values are always parameters, never spliced into the text', async () => {
  const evil = "x'); drop table pg_class; --"
  const compiled = pool.sql.compile`select ${evil}::text as v, ${42} as n`
  assert.deepEqual(compiled, { text: 'select $1::text as v, $2 as n', values: [evil, 42] })
  const rows = await pool.sql`select ${evil}::text as v`
  assert.deepEqual(rows, [{ v: evil }])
  await pool.sql`insert into ${pool.sql.ident(table)} (name, age) values (${'ann'}, ${31}), (${'bob'}, ${42}), (${'cy'}, ${null})`
  const some = await pool.sql`select name from ${pool.sql.ident('public', table)} where name in ${pool.sql.inList(['ann', 'cy', 'zed'])} order by name`
  assert.deepEqual(some.map((r) => r.name), ['ann', 'cy'])
  assert.equal(some.rowCount, 2)
  assert.deepEqual(await pool.sql`select 1 from ${pool.sql.ident(table)} where id in ${pool.sql.inList([], 'int4')}`, [])
  const older = pool.sql.fragment`age > ${40}`
  assert.deepEqual((await pool.sql`select name from ${pool.sql.ident(table)} where ${older}`).map((r) => r.name), ['bob'])
  assert.equal(pool.sql.compile`${pool.sql.ident('we"ird')}`.text, '"we""ird"')
  await assert.rejects(pool.sql('select 1'), (e) => e.code === 'PARAM_INVALID')
  const inTx = await pool.transaction((tx) => tx.sql`select count(*)::int as n from ${tx.sql.ident(table)}`)
  assert.equal(inTx[0].n, 3)
})

test('Kysely with PostgresDialect over onepool: queries and transactions', async () => {
  const { db } = require(path.join(root, 'examples', 'snippets', 'kysely.js'))
  const rows = await db.selectFrom(table).select(['name', 'age']).where('age', '>', 30).orderBy('name').execute()
  assert.deepEqual(rows, [{ name: 'ann', age: 31 }, { name: 'bob', age: 42 }])
  const inserted = await db.insertInto(table).values({ name: 'dee', age: 7 }).returning('id').executeTakeFirstOrThrow()
  assert.equal(typeof inserted.id, 'number')
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.insertInto(table).values({ name: 'eve', age: 1 }).execute()
      throw new Error('roll back')
    }),
    /roll back/,
  )
  await db.transaction().execute(async (trx) => {
    await trx.updateTable(table).set({ age: 8 }).where('name', '=', 'dee').execute()
  })
  const { rows: check } = await ksql`select count(*)::int as n, max(age) filter (where name = 'dee') as dee from ${ksql.table(table)}`.execute(db)
  assert.deepEqual(check[0], { n: 4, dee: 8 })
  assert.ok((await countConnections('onepool')) <= 5)
  await db.destroy()
})

test('Drizzle node-postgres driver over onepool: queries, types and transactions', async () => {
  const { db } = require(path.join(root, 'examples', 'snippets', 'drizzle.js'))
  const people = pgTable(table, { id: serial('id').primaryKey(), name: text('name').notNull(), age: integer('age'), born: timestamp('born', { withTimezone: true }) })
  const adults = await db.select({ name: people.name, age: people.age, born: people.born }).from(people).where(dsql`${people.age} > 30`).orderBy(people.name)
  assert.deepEqual(adults.map((r) => [r.name, r.age]), [['ann', 31], ['bob', 42]])
  assert.ok(adults[0].born instanceof Date)
  const [{ id }] = await db.insert(people).values({ name: 'fay', age: 50 }).returning({ id: people.id })
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.update(people).set({ age: 51 }).where(eq(people.id, id))
      throw new Error('nope')
    }),
    /nope/,
  )
  await db.transaction(async (tx) => {
    await tx.update(people).set({ age: 52 }).where(eq(people.id, id))
    await tx.transaction(async (inner) => inner.update(people).set({ name: 'fay2' }).where(eq(people.id, id)))
  })
  const [fay] = await db.select().from(people).where(eq(people.id, id))
  assert.deepEqual([fay.name, fay.age], ['fay2', 52])
})

test('the README shows the snippets exactly as tested', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  for (const name of ['kysely.js', 'drizzle.js']) {
    const code = fs.readFileSync(path.join(root, 'examples', 'snippets', name), 'utf8').replace(/\nmodule\.exports.*\n$/, '\n')
    assert.ok(readme.includes(code.trim()), `README contains examples/snippets/${name}`)
  }
})
