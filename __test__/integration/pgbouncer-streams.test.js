'use strict'
// Issue #17, point 4: streams and COPY behind a real PgBouncer in transaction mode. A row stream
// is a portal whose Sync is held back until it ends, and PgBouncer hands a server connection
// back only at a ReadyForQuery that says idle: so a stream keeps its server connection, inside a
// transaction or not, while other clients' traffic goes through the other server connections.
// COPY in and out pass through. What does not work is what keeps state across transactions: an
// SQL-level cursor declared WITH HOLD and fetched later may be on another server connection.

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { createPool } = require('../..')
const { startPgbouncer } = require('../helpers/pgbouncer')
const { SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { admin, uniqueName } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
let bouncer
let pool
const table = uniqueName('bouncer_copy')

test.before(async () => {
  // Two server connections: one for a stream, one for everyone else.
  bouncer = await startPgbouncer({ serverPort: Number(process.env.ONEPOOL_TEST_PORT), user: SUPERUSER, password: PASSWORD, poolSize: 2 })
  pool = createPool({ connectionString: bouncer.url() + '?pgbouncer=true', name: uniqueName('bouncer'), max: 4 })
  await admin(`create table ${table} (id int primary key, label text)`)
})
test.after(async () => {
  await pool.end()
  await admin(`drop table if exists ${table}`)
  await bouncer.stop()
})

async function collect(readable) {
  const chunks = []
  for await (const chunk of readable) chunks.push(chunk)
  return Buffer.concat(chunks)
}

test('a stream outside a transaction keeps its server connection while other traffic goes on', LIMIT, async () => {
  const other = createPool({ connectionString: bouncer.url() + '?pgbouncer=true', name: uniqueName('bouncer-other'), max: 4 })
  try {
    let n = 0
    let sum = 0
    let during = null
    for await (const row of pool.stream('select g from generate_series(1, 20000) g', [], { batchSize: 500 })) {
      n++
      sum += row.g
      if (n === 1000) {
        // 40 statements of another pool, through PgBouncer's other server connection, while
        // the portal waits for its next Execute.
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => other.query('select $1::int as i', [i])))
        during = results.map((r) => r.rows[0].i)
      }
    }
    assert.equal(n, 20000)
    assert.equal(sum, (20000 * 20001) / 2)
    assert.deepEqual(during, Array.from({ length: 40 }, (_, i) => i))
  } finally {
    await other.end()
  }
})

test('streams inside a transaction, and cursors, through PgBouncer', async () => {
  const [count, first] = await pool.transaction(async (tx) => {
    await tx.query('create temporary table t_tmp on commit drop as select g from generate_series(1, 3000) g')
    let n = 0
    for await (const row of tx.stream('select g from t_tmp order by g', [], { batchSize: 256 })) {
      n++
      if (n === 2500) break
    }
    const cursor = tx.cursor('select g from t_tmp order by g')
    const rows = await cursor.read(3)
    await cursor.close()
    return [n, rows.map((r) => r.g)]
  })
  assert.equal(count, 2500)
  assert.deepEqual(first, [1, 2, 3])
  const cursor = pool.cursor('select g from generate_series(1, 10) g')
  assert.equal((await cursor.read(4)).length, 4)
  assert.equal((await cursor.read(100)).length, 6)
  assert.deepEqual(await cursor.read(1), [])
})

test('COPY in and out through PgBouncer, byte-identical', LIMIT, async () => {
  const data = Buffer.from(Array.from({ length: 50000 }, (_, i) => `${i + 1}\tlabel ${i + 1} ü🚀\n`).join(''))
  assert.deepEqual(await pool.copyFrom(`copy ${table} from stdin`, [data.subarray(0, 100001), data.subarray(100001)]), { rowCount: 50000 })
  const back = await collect(pool.copyTo(`copy (select * from ${table} order by id) to stdout`))
  assert.equal(crypto.createHash('sha256').update(back).digest('hex'), crypto.createHash('sha256').update(data).digest('hex'))
  // A bad row: its error, and none of the rows.
  await assert.rejects(pool.copyFrom(`copy ${table} from stdin`, ['900000\tx\n', 'bad\n']), (e) => e.code === '22P02')
  assert.equal((await pool.query(`select count(*)::int as n from ${table}`)).rows[0].n, 50000)
  // Inside a transaction.
  await pool.transaction(async (tx) => {
    await tx.copyFrom(`copy ${table} from stdin`, ['900001\tin tx\n'])
  })
  assert.equal((await pool.query(`select label from ${table} where id = 900001`)).rows[0].label, 'in tx')
})

test('what does not work: an SQL cursor WITH HOLD fetched in a later transaction may be on another server connection', async () => {
  // Directly, a client's connection is its own: the cursor is there for the FETCH.
  const direct = createPool({ connectionString: process.env.ONEPOOL_TEST_URL, name: uniqueName('direct'), max: 2 })
  const mine = await direct.connect()
  try {
    await mine.query('declare held cursor with hold for select g from generate_series(1, 5) g')
    assert.deepEqual((await mine.query('fetch 2 from held')).rows, [{ g: 1 }, { g: 2 }])
  } finally {
    mine.release()
    await direct.end()
  }
  // Through PgBouncer the DECLARE's transaction ends and its server connection goes back to
  // PgBouncer's pool; another client takes it (PgBouncer reuses the most recent one first), so the
  // client's FETCH runs on the other server connection, which has no such cursor.
  const client = await pool.connect()
  const other = await pool.connect()
  try {
    await client.query('declare held cursor with hold for select g from generate_series(1, 5) g')
    await other.query('begin')
    await other.query('select 1')
    await assert.rejects(client.query('fetch 2 from held'), (e) => e.code === '34000')
    await other.query('commit')
    // Without WITH HOLD, DECLARE needs a transaction block anyway.
    await assert.rejects(client.query('declare plain cursor for select 1'), (e) => e.code === '25P01')
    await client.query('close all')
  } finally {
    client.release()
    other.release()
  }
})
