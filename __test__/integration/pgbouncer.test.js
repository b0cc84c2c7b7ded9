'use strict'
// Behind a real PgBouncer in transaction mode: onepool uses only unnamed statements and no session
// state, so concurrent queries, transactions and custom types work with no "prepared statement
// does not exist" errors.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { startPgbouncer } = require('../helpers/pgbouncer')
const { SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { APP_NAME, TEST_URL, admin, uniqueName, waitFor, watchPeak } = require('../helpers/db')

let bouncer
const mood = uniqueName('mood')
const table = uniqueName('bouncer')

test.before(async () => {
  bouncer = await startPgbouncer({ serverPort: Number(process.env.ONEPOOL_TEST_PORT), user: SUPERUSER, password: PASSWORD, poolSize: 3 })
  await admin(`create type ${mood} as enum ('sad', 'ok', 'happy')`)
  await admin(`create table ${table} (id int primary key, m ${mood}, tags ${mood}[])`)
})

test.after(async () => {
  await admin(`drop table if exists ${table}; drop type if exists ${mood}`)
  await bouncer.stop()
})

test('many concurrent parameterised queries through PgBouncer (transaction mode)', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: bouncer.url() + '?pgbouncer=true', applicationName: app, max: 20 })
  const watch = watchPeak(app, 10)
  const results = await Promise.all(
    Array.from({ length: 2000 }, (_, i) => pool.query('select $1::int as n, $2::text as s', [i, `v${i}`])),
  )
  const peak = await watch.stop()
  results.forEach((r, i) => assert.deepEqual(r.rows[0], { n: i, s: `v${i}` }))
  assert.ok(peak >= 1 && peak <= 3, `PgBouncer's pool of 3 server connections is what the server sees (${peak})`)
  await pool.end()
})

test('transactions, enums with custom OIDs, and errors through PgBouncer', async () => {
  const pool = createPool({ connectionString: bouncer.url() + '?pgbouncer=true', name: uniqueName(), max: 10 })
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      pool.transaction(async (tx) => {
        await tx.query(`insert into ${table} values ($1, $2, $3)`, [i, ['sad', 'ok', 'happy'][i % 3], ['ok', 'happy']])
        if (i % 5 === 0) throw new Error('roll back this one')
      }).catch((e) => assert.match(e.message, /roll back/)),
    ),
  )
  const count = await pool.query(`select count(*)::int as n from ${table}`)
  assert.equal(count.rows[0].n, 40)
  const r = await pool.query(`select m, tags, m::text as t from ${table} where id = $1`, [1])
  assert.deepEqual(r.rows[0], { m: 'ok', tags: '{ok,happy}', t: 'ok' })
  const byEnum = await pool.query(`select count(*)::int as n from ${table} where m = $1`, ['happy'])
  assert.equal(byEnum.rows[0].n, 13)
  await assert.rejects(pool.query(`insert into ${table} values (1, 'ok', null)`), (e) => e.code === '23505')
  await assert.rejects(pool.query('select $1::nope', [1]), (e) => e.code === '42704')
  // Same text, many times, on different server connections: no statement-name collisions.
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 30 }, () => pool.query(`select count(*) from ${table} where m = $1`, ['sad'])))
  }
  await pool.end()
})

test('session settings are refused clearly behind PgBouncer', () => {
  assert.throws(
    () => createPool({ connectionString: bouncer.url() + '?pgbouncer=true', name: uniqueName(), searchPath: 'app' }),
    (e) => e.code === 'CONFIG_INVALID' && /ALTER ROLE/.test(e.message),
  )
})

test('listen() behind PgBouncer is CONFIG_INVALID naming listenUrl; with a direct URL it listens, and notify() goes through PgBouncer', async () => {
  const url = bouncer.url() + '?pgbouncer=true'
  const bounced = createPool({ connectionString: url, name: uniqueName() })
  assert.throws(
    () => bounced.listen('c', () => {}),
    (e) => e.code === 'CONFIG_INVALID' && /PgBouncer/.test(e.message) && /listenUrl/.test(e.message),
  )
  await bounced.end()

  const app = uniqueName()
  const channel = uniqueName('bounced')
  const pool = createPool({ connectionString: url, name: uniqueName(), applicationName: app, directUrl: TEST_URL })
  const got = []
  const sub = pool.listen(channel, (n) => got.push(n.payload))
  await sub.ready
  await pool.notify(channel, 'through the bouncer')
  assert.ok(await waitFor(() => got.length === 1), 'delivered')
  assert.deepEqual(got, ['through the bouncer'])
  // The listening connection is the direct one: it counts in neither the bouncer pool's size
  // nor its max, and the server shows it LISTENing under the app's name.
  const s = pool.stats()
  assert.equal(s.listening, 1)
  assert.equal(s.size, s.idle + s.inUse)
  const listening = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and query ~ '^LISTEN '`, [app])
  assert.equal(listening.rows[0].n, 1)
  sub.unlisten()
  await pool.end()
})
