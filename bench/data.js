'use strict'
// Creates and fills the benchmark tables. Uses `pg` as a neutral loader (not a client under
// test). pgbench_accounts is reused when it already holds scale-10 data (a DATABASE_URL run
// against a database that was loaded before); the small tables are always recreated.

const { Client } = require('pg')
const { ACCOUNTS, WIDE_ROWS } = require('./workloads')

async function loadData(url, log = () => {}) {
  const db = new Client({ connectionString: url })
  await db.connect()
  try {
    await db.query('set client_min_messages = warning')
    const exists = (await db.query("select to_regclass('pgbench_accounts') is not null as e")).rows[0].e
    const rows = exists ? (await db.query('select count(*)::int as n from pgbench_accounts')).rows[0].n : 0
    if (rows === ACCOUNTS) {
      log(`pgbench_accounts: reusing ${ACCOUNTS.toLocaleString('en-US')} rows`)
    } else {
      const t = Date.now()
      await db.query('drop table if exists pgbench_accounts')
      // pgbench -i's layout; the primary key after the load is much faster than before it.
      await db.query(
        'create table pgbench_accounts (aid int not null, bid int, abalance int, filler char(84)) with (fillfactor = 100)',
      )
      await db.query(
        `insert into pgbench_accounts (aid, bid, abalance, filler)
         select aid, (aid - 1) / 100000 + 1, 0, '' from generate_series(1, ${ACCOUNTS}) aid`,
      )
      await db.query('alter table pgbench_accounts add primary key (aid)')
      await db.query('vacuum analyze pgbench_accounts')
      log(`pgbench_accounts: loaded ${ACCOUNTS.toLocaleString('en-US')} rows in ${((Date.now() - t) / 1000).toFixed(1)} s`)
    }

    await db.query('drop table if exists wide')
    await db.query(`create table wide (
      id int4 primary key, big int8, label text, score float8, flag bool,
      created timestamptz, amount numeric(12, 2), meta jsonb)`)
    await db.query(
      `insert into wide
       select i, i::int8 * 1000003, 'label ' || md5(i::text), i / 7.0::float8, i % 2 = 0,
              timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute',
              (i * 3.17)::numeric(12, 2), jsonb_build_object('i', i, 'tag', 't' || (i % 10), 'ok', true)
       from generate_series(1, ${WIDE_ROWS}) i`,
    )
    await db.query('vacuum analyze wide')

    for (const t of ['bench_insert_one', 'bench_insert_many']) {
      await db.query(`drop table if exists ${t}`)
      await db.query(`create table ${t} (a int4, b int8, c text, d float8, e bool, f timestamptz)`)
    }

    const v = await db.query('show server_version')
    return { serverVersion: v.rows[0].server_version }
  } finally {
    await db.end()
  }
}

module.exports = { loadData }
