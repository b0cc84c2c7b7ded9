'use strict'
// Issue #17: row streams and cursors. Rows decode exactly as pool.query's; the server produces
// only the batches asked for (observed through a sequence the statement advances per row);
// breaking out, close(), an abort signal and errors end the statement and give the connection
// back clean (pg_stat_activity, stats()); streams work on a client, inside transactions, and
// through pg's client.query(submittable) shape.

const test = require('node:test')
const assert = require('node:assert/strict')
const { pipeline } = require('node:stream/promises')
const { Writable } = require('node:stream')
const { createPool, Cursor, QueryStream } = require('../..')
const { TEST_URL, APP_NAME, admin, uniqueName, waitFor } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
const app = uniqueName('streams')
const seq = uniqueName('seq')
const table = uniqueName('stream_rows')
let pool

test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('streams'), applicationName: app, max: 3 })
  await admin(`create sequence ${seq}`)
  await admin(`create table ${table} (id int primary key, label text)`)
})
test.after(async () => {
  await admin(`drop sequence if exists ${seq}; drop table if exists ${table}`)
  await pool.end()
})

/** A statement that advances the sequence once per row it produces: its value is how far the server got. */
const counted = (n) => `select g, nextval('${seq}') as n, repeat('x', 50) as pad from generate_series(1, ${n}) g`
async function resetSequence() {
  await admin(`alter sequence ${seq} restart with 1`)
}
async function produced() {
  const r = await admin(`select case when is_called then last_value else 0 end::int as n from ${seq}`)
  return r.rows[0].n
}

/** This pool's backends as pg_stat_activity shows them. */
async function backends() {
  const r = await admin(`select pid, state, wait_event, query from pg_stat_activity where ${APP_NAME} = $1`, [app])
  return r.rows
}

/** Waits until none of this pool's backends runs a statement, and returns them. */
async function settled() {
  let rows = []
  await waitFor(async () => {
    rows = await backends()
    return rows.every((b) => b.state === 'idle')
  })
  return rows
}

const TYPES = `select g as int4, g::int8 as int8, g * 1.5 as numeric, g / 3.0::float8 as float8, g % 2 = 0 as bool,
  'ünï ' || g || ' 🚀' as text, json_build_object('g', g, 'a', array[g, g]) as json, jsonb_build_array(g, 'x') as jsonb,
  timestamptz '2024-05-06 07:08:09.123+02' + g * interval '1 day' as ts, date '2020-01-01' + g as date,
  decode(lpad(to_hex(g), 4, '0'), 'hex') as bytea, array[g, null, 3] as arr, case when g % 3 = 0 then null else g end as maybe,
  make_interval(days => g, secs => 1.5) as iv
  from generate_series(1, 23) g`

test('rows stream exactly as pool.query returns them, in batches, objects and arrays', async () => {
  const whole = await pool.query(TYPES)
  const streamed = []
  for await (const row of pool.stream(TYPES, [], { batchSize: 5 })) streamed.push(row)
  assert.deepEqual(streamed, whole.rows)
  const arrays = []
  for await (const row of pool.stream(TYPES, [], { batchSize: 7, rowMode: 'array' })) arrays.push(row)
  assert.deepEqual(arrays, (await pool.query({ text: TYPES, rowMode: 'array' })).rows)
  // Parameters, custom type parsers, and a statement with no rows.
  const types = { getTypeParser: (oid) => (oid === 23 ? (v) => `int:${v}` : (v) => v) }
  const custom = []
  for await (const row of pool.stream('select $1::int as a, $2::text as b', [7, 'seven'], { types })) custom.push(row)
  assert.deepEqual(custom, [{ a: 'int:7', b: 'seven' }])
  const none = []
  for await (const row of pool.stream('select 1 as x where false')) none.push(row)
  assert.deepEqual(none, [])
  const stream = pool.stream('select g from generate_series(1, 5) g', [], { batchSize: 2 })
  for await (const row of stream) void row
  assert.equal(stream.rowCount, 5)
  assert.deepEqual(stream.fields.map((f) => [f.name, f.dataTypeID]), [['g', 23]])
  assert.equal(pool.stats().inUse, 0)
})

test('the server produces only the batches asked for: two ready, one being decoded', LIMIT, async () => {
  await resetSequence()
  const it = pool.stream(counted(100000), [], { batchSize: 100 })[Symbol.asyncIterator]()
  assert.equal((await it.next()).value.g, 1)
  // A consumer that stops: the server has made the batch it took and the two fetched ahead, and
  // waits for the next Execute (the backend is active, reading from the client).
  const waiting = await waitFor(async () => (await backends()).find((b) => b.state === 'active' && b.wait_event === 'ClientRead'))
  assert.ok(waiting, `the backend waits for the client: ${JSON.stringify(await backends())}`)
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(await produced(), 300)
  for (let i = 2; i <= 250; i++) assert.equal((await it.next()).value.g, i)
  await new Promise((r) => setTimeout(r, 100))
  assert.ok((await produced()) <= 500, `produced ${await produced()} for 250 consumed`)
  await it.return()
  assert.ok((await produced()) <= 500)
  const rows = await settled()
  assert.deepEqual(rows.map((b) => b.state), ['idle'])
  assert.equal(pool.stats().inUse, 0)
})

test('a consumer that breaks after 10 rows leaves no running query and no checked-out connection', async () => {
  await resetSequence()
  let seen = 0
  for await (const row of pool.stream(counted(1000000), [], { batchSize: 100 })) {
    if (++seen === 10) break
    void row
  }
  assert.equal(seen, 10)
  // for-await waited for return(): the statement is over and the connection back.
  const stats = pool.stats()
  assert.equal(stats.inUse, 0)
  assert.ok(stats.idle >= 1)
  const rows = await backends()
  assert.ok(rows.length >= 1 && rows.every((b) => b.state === 'idle'), JSON.stringify(rows))
  assert.ok((await produced()) <= 300, `produced ${await produced()}`)
  // The connection is clean: it runs the next statement outside any transaction.
  const r = await pool.query('select now() = statement_timestamp() as fresh, count(*)::int as n from pg_prepared_xacts')
  assert.equal(r.rows[0].fresh, true)
})

test('close(), a thrown error and an abort signal end the statement and give the connection back', LIMIT, async () => {
  const stream = pool.stream(counted(100000), [], { batchSize: 50 })
  const it = stream[Symbol.asyncIterator]()
  await it.next()
  await stream.close()
  assert.deepEqual(await it.next(), { value: undefined, done: true })
  assert.equal(pool.stats().inUse, 0)

  await assert.rejects(
    (async () => {
      for await (const row of pool.stream(counted(100000))) if (row.g === 3) throw new Error('consumer failed')
    })(),
    /consumer failed/,
  )
  assert.equal(pool.stats().inUse, 0)

  // Each batch of 5 takes the server 5 s: an abort cancels the one being computed (without the
  // cancel the server would finish the batch, 5 rows, before it reads the Close).
  await resetSequence()
  const controller = new AbortController()
  const slow = pool.stream(`select g, pg_sleep(1), nextval('${seq}') from generate_series(1, 100) g`, [], { batchSize: 5, signal: controller.signal })
  const started = Date.now()
  const failed = assert.rejects(
    (async () => {
      for await (const row of slow) void row
    })(),
    (e) => e.code === 'ABORTED',
  )
  await waitFor(async () => (await backends()).some((b) => b.state === 'active' && /pg_sleep/.test(b.query)))
  controller.abort()
  await failed
  assert.ok(Date.now() - started < 4500, 'the cancel stopped the batch being computed')
  const rows = await settled()
  assert.ok(rows.every((b) => !/pg_sleep/.test(b.query) || b.state === 'idle'), JSON.stringify(rows))
  assert.ok((await produced()) < 5, `the server made ${await produced()} of the batch's 5 rows`)
  assert.equal(pool.stats().inUse, 0)
  // An already aborted signal: nothing runs.
  await assert.rejects(
    (async () => {
      for await (const row of pool.stream('select 1', [], { signal: AbortSignal.abort() })) void row
    })(),
    (e) => e.code === 'ABORTED',
  )
  assert.equal((await pool.query('select 1 as one')).rows[0].one, 1)
})

test('a statement that fails mid-stream rejects with its SQLSTATE after the rows before it', async () => {
  const rows = []
  await assert.rejects(
    (async () => {
      for await (const row of pool.stream('select 1 / (150 - g) as q, g from generate_series(1, 300) g', [], { batchSize: 100 })) rows.push(row)
    })(),
    (e) => e.code === '22012',
  )
  assert.equal(rows.length, 100)
  await assert.rejects(
    (async () => {
      for await (const row of pool.stream('select nope from nowhere')) void row
    })(),
    (e) => e.code === '42P01',
  )
  // A COPY cannot be streamed as rows; the connection stays usable.
  await assert.rejects(
    (async () => {
      for await (const row of pool.stream('copy (select 1) to stdout')) void row
    })(),
    (e) => e.code === 'PARAM_INVALID' && /copyTo/.test(e.message),
  )
  await assert.rejects(
    (async () => {
      for await (const row of pool.stream(`copy ${table} from stdin`)) void row
    })(),
    (e) => e.code === 'PARAM_INVALID' && /copyFrom/.test(e.message),
  )
  assert.throws(() => pool.stream('select 1', [], { batchSize: 0 }), (e) => e.code === 'PARAM_INVALID')
  assert.equal(pool.stats().inUse, 0)
  assert.deepEqual((await settled()).map((b) => b.state).every((s) => s === 'idle'), true)
})

test('inside a transaction: the stream sees the transaction, and the transaction goes on after it', async () => {
  await pool.query(`truncate ${table}`)
  const count = await pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} select g, 'row ' || g from generate_series(1, 500) g`)
    let n = 0
    for await (const row of tx.stream(`select id from ${table} order by id`, [], { batchSize: 64 })) {
      assert.equal(row.id, ++n)
      if (n === 300) break
    }
    // Straight after the loop: the transaction goes on, on the same connection.
    const r = await tx.query(`select count(*)::int as n from ${table}`)
    return [n, r.rows[0].n]
  })
  assert.deepEqual(count, [300, 500])
  assert.equal((await pool.query(`select count(*)::int as n from ${table}`)).rows[0].n, 500)
  // A stream that fails aborts the transaction, which then rolls back.
  await assert.rejects(
    pool.transaction(async (tx) => {
      await tx.query(`delete from ${table}`)
      for await (const row of tx.stream('select 1 / 0 as boom')) void row
    }),
    (e) => e.code === '22012',
  )
  assert.equal((await pool.query(`select count(*)::int as n from ${table}`)).rows[0].n, 500)
  assert.equal(pool.stats().inUse, 0)
})

test("a statement on a client whose stream is open fails at once (CLIENT_BUSY) instead of waiting for itself", async () => {
  await resetSequence()
  const client = await pool.connect()
  try {
    // The loop awaits a statement on the stream's own client: with pg this never returns.
    await assert.rejects(
      (async () => {
        for await (const row of client.stream(counted(1000), [], { batchSize: 100 })) await client.query('select $1::int', [row.g])
      })(),
      (e) => e.code === 'CLIENT_BUSY' && /close\(\) it first/.test(e.message),
    )
    // The error left the loop, which closed the stream: the client works again.
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1)
    await resetSequence()
    const cursor = client.cursor(counted(1000))
    await cursor.read(10)
    await assert.rejects(client.query('select 1'), (e) => e.code === 'CLIENT_BUSY')
    await assert.rejects(
      (async () => {
        for await (const chunk of client.copyTo('copy (select 1) to stdout')) void chunk
      })(),
      (e) => e.code === 'CLIENT_BUSY',
    )
    await assert.rejects(client.cursor('select 1').read(1), (e) => e.code === 'CLIENT_BUSY')
    // Once close() was called (even without awaiting it), statements queue behind the close.
    const closing = cursor.close()
    const later = client.query(`select nextval('${seq}')::int as n`)
    await closing
    assert.equal((await later).rows[0].n, 11)
    // A stream that ended by itself frees the client too.
    const again = []
    for await (const row of client.stream('select 1 as a union all select 2')) again.push(row.a)
    assert.deepEqual(again, [1, 2])
    assert.equal((await client.query('select 2 as two')).rows[0].two, 2)
  } finally {
    client.release()
  }
})

test('cursors in pg-cursor shape: exact reads, then []; on a client, on the pool, through client.query(cursor)', async () => {
  await resetSequence()
  const cursor = pool.cursor(counted(25))
  assert.equal((await cursor.read(10)).length, 10)
  // Each read asks the server for exactly its rows.
  assert.equal(await produced(), 10)
  assert.deepEqual((await cursor.read(10)).map((r) => r.g), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
  assert.deepEqual((await cursor.read(10)).map((r) => r.g), [21, 22, 23, 24, 25])
  assert.deepEqual(await cursor.read(10), [])
  assert.deepEqual(await cursor.read(10), [])
  await cursor.close()
  assert.equal(pool.stats().inUse, 0)

  const client = await pool.connect()
  try {
    const submitted = client.query(new Cursor('select $1::int + g as v from generate_series(1, 3) g', [10], { rowMode: 'array' }))
    assert.ok(submitted instanceof Cursor)
    const rows = await new Promise((resolve, reject) => submitted.read(5, (err, r) => (err ? reject(err) : resolve(r))))
    assert.deepEqual(rows, [[11], [12], [13]])
    await submitted.close()
    // Closed halfway: the client runs its next statement at once.
    const half = client.cursor('select g from generate_series(1, 100000) g')
    assert.equal((await half.read(2)).length, 2)
    await half.close()
    assert.equal((await client.query('select 2 as two')).rows[0].two, 2)
    await assert.rejects(new Cursor('select 1').read(1), (e) => e.code === 'PARAM_INVALID')
    // pg's own cursor needs pg's client: a clear error, not a hang.
    const PgCursor = require('pg-cursor')
    assert.throws(() => client.query(new PgCursor('select 1')), (e) => e.code === 'PARAM_INVALID' && /onepool's Cursor/.test(e.message))
  } finally {
    client.release()
  }
})

test('a client released with its cursor open goes back clean', async () => {
  const client = await pool.connect()
  const pid = client.processID
  const cursor = client.cursor(counted(100000))
  assert.equal((await cursor.read(5)).length, 5)
  await client.release()
  // The same connection (and PoolClient object) checked out again is free of that cursor.
  const next = await pool.connect()
  assert.equal((await next.query('select 1 as one')).rows[0].one, 1)
  next.release()
  await waitFor(() => pool.stats().inUse === 0)
  assert.equal(pool.stats().inUse, 0)
  const rows = await settled()
  assert.ok(rows.some((b) => b.pid === pid && b.state === 'idle'), JSON.stringify(rows))
  await assert.rejects(cursor.read(5), (e) => e.code === 'CLIENT_RELEASED')
  const r = await pool.query('select 1 as one')
  assert.equal(r.rows[0].one, 1)
})

test('QueryStream in pg-query-stream shape: client.query(stream) returns a Readable of rows; pipeline and destroy', async () => {
  const client = await pool.connect()
  try {
    const stream = client.query(new QueryStream('select g, md5(g::text) as h from generate_series(1, 2500) g', [], { batchSize: 100 }))
    let n = 0
    let sum = 0
    await pipeline(
      stream,
      new Writable({
        objectMode: true,
        highWaterMark: 10,
        write(row, _enc, cb) {
          n++
          sum += row.g
          setImmediate(cb)
        },
      }),
    )
    assert.equal(n, 2500)
    assert.equal(sum, (2500 * 2501) / 2)
    // Destroyed after a few rows: the statement ends and the client is usable at once.
    const early = client.query(new QueryStream('select g from generate_series(1, 1000000) g'))
    for await (const row of early) if (row.g === 5) break
    assert.equal((await client.query('select 3 as three')).rows[0].three, 3)
  } finally {
    client.release()
  }
  // On the pool, as pool.query(stream): a connection for the stream's length.
  const rows = []
  for await (const row of pool.query(new QueryStream('select 1 as a'))) rows.push(row)
  assert.deepEqual(rows, [{ a: 1 }])
  await waitFor(() => pool.stats().inUse === 0)
  assert.equal(pool.stats().inUse, 0)
})

test("a stream's notices reach its client ('notice' events) before the rows they came with, and no later request's", async () => {
  const fn = uniqueName('noisy')
  await admin(`create function ${fn}(g int) returns int language plpgsql as $$ begin raise notice 'row %', g; return g; end $$`)
  const client = await pool.connect()
  try {
    const seen = []
    const onNotice = (n) => seen.push(n.message)
    client.on('notice', onNotice)
    let rows = 0
    for await (const row of client.stream(`select ${fn}(g) as g from generate_series(1, 250) g`, [], { batchSize: 100 })) {
      rows++
      assert.ok(seen.length >= row.g, `row ${row.g} came after its notice (${seen.length} seen)`)
    }
    assert.equal(rows, 250)
    assert.deepEqual(seen, Array.from({ length: 250 }, (_, i) => `row ${i + 1}`))
    await client.query('select 1')
    const chunks = []
    for await (const chunk of client.copyTo(`copy (select ${fn}(g) from generate_series(1, 3) g) to stdout`)) chunks.push(chunk)
    assert.equal(Buffer.concat(chunks).toString(), '1\n2\n3\n')
    assert.deepEqual(seen.slice(250), ['row 1', 'row 2', 'row 3'])
    client.off('notice', onNotice)
  } finally {
    client.release()
    await admin(`drop function ${fn}(int)`)
  }
})

test("a NOTIFY for the client's session (its own LISTEN) arriving mid-stream or mid-COPY is not the stream's: both finish, the client stays usable", async () => {
  const channel = uniqueName('mid')
  const client = await pool.connect()
  try {
    await client.query(`listen ${channel}`)
    const pid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid
    let rows = 0
    for await (const row of client.stream('select g from generate_series(1, 2000) g', [], { batchSize: 100 })) {
      rows++
      // The server sends it between the stream's DataRows (the session is busy, not idle).
      if (row.g === 150) await admin('select pg_notify($1, $2)', [channel, 'during the stream'])
    }
    assert.equal(rows, 2000)
    // Big enough that the server is still sending (held back by the paused reader) when the
    // NOTIFY comes: it then arrives between the COPY's CommandComplete and its ReadyForQuery.
    let lines = 0
    let sent = false
    for await (const chunk of client.copyTo('copy (select g from generate_series(1, 1000000) g) to stdout')) {
      for (const byte of chunk) if (byte === 10) lines++
      if (!sent) {
        sent = true
        await admin('select pg_notify($1, $2)', [channel, 'during the COPY'])
      }
    }
    assert.equal(lines, 1000000)
    assert.deepEqual((await client.query('select pg_backend_pid() as pid')).rows, [{ pid }], 'the same session, still usable')
  } finally {
    await client.query(`unlisten ${channel}`).catch(() => {})
    client.release()
  }
})

test('streaming 1,000,000 rows keeps memory bounded', LIMIT, async () => {
  const text = (rows) => `select g as id, 'row ' || g as label, g % 2 = 0 as even, md5(g::text) as hash from generate_series(1, ${rows}) g`
  // A warm-up of the same shape first: the WebAssembly build's memory grows once (its linear
  // memory, the allocator arenas of its threads) and never shrinks; that is not streaming's cost.
  for await (const row of pool.stream(text(300000), [], { batchSize: 1000 })) void row
  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  let n = 0
  let sum = 0
  for await (const row of pool.stream(text(1000000), [], { batchSize: 1000 })) {
    n++
    sum += row.id
    if (n % 10000 === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  assert.equal(n, 1000000)
  assert.equal(sum, 500000500000)
  const grown = (peak - before) / 1048576
  console.log(`# RSS grew by ${grown.toFixed(1)} MB streaming 1,000,000 rows`)
  // The same rows as one result take ~300 MB; a stream holds two batches of 1,000.
  assert.ok(grown < 96, `RSS grew by ${grown.toFixed(1)} MB while streaming`)
  assert.equal(pool.stats().inUse, 0)
})
