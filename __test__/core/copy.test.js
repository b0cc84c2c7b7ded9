'use strict'
// Issue #17: COPY in and out. Data round-trips byte-identical (hashed on both sides) in text,
// csv and binary format, with NULLs and unicode; a bad row or a constraint gives its SQLSTATE
// and line, and the table gets none of that COPY's rows; a failing source, an abort or a
// consumer that stops early end the COPY and leave the connection clean; backpressure holds
// both ways (the server waits in ClientWrite for a slow reader; a blocked server stops the
// source from being read ahead).

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Readable } = require('node:stream')
const { pipeline } = require('node:stream/promises')
const { createPool } = require('../..')
const { TEST_URL, APP_NAME, admin, uniqueName, waitFor } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
const app = uniqueName('copy')
const t = uniqueName('copy_t')
const bin = uniqueName('copy_bin')
let pool

test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('copy'), applicationName: app, max: 3 })
  await admin(`create table ${t} (id int primary key, label text, note text)`)
  await admin(`create table ${bin} (id int primary key, i8 int8, n numeric, f float8, ok bool, s text, b bytea, ts timestamptz, j jsonb, a int[])`)
})
test.after(async () => {
  await admin(`drop table if exists ${t}; drop table if exists ${bin}`)
  await pool.end()
})

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex')

async function collect(readable) {
  const chunks = []
  for await (const chunk of readable) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function count(table) {
  return (await pool.query(`select count(*)::int as n from ${table}`)).rows[0].n
}

/** This pool's backends as pg_stat_activity shows them. */
async function backends() {
  const r = await admin(`select pid, state, wait_event_type, wait_event, query from pg_stat_activity where ${APP_NAME} = $1`, [app])
  return r.rows
}

async function settled() {
  let rows = []
  await waitFor(async () => {
    rows = await backends()
    return rows.every((b) => b.state === 'idle')
  })
  return rows
}

// What the server itself writes for these values in COPY's text format, so that the data read
// back must be the very same bytes.
const escapeText = (s) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
const LABELS = ['plain', 'ünïcödé 🚀 中文', 'tab\there', 'new\nline', 'back\\slash', 'quote "x" \'y\'', '', 'ﬁ ligature é\u0301']
function textRows(n) {
  const lines = []
  for (let i = 1; i <= n; i++) {
    const label = `${LABELS[i % LABELS.length]} ${i}`
    const note = i % 5 === 0 ? '\\N' : escapeText(`note ${i % 7 === 0 ? '' : i}`)
    lines.push(`${i}\t${escapeText(label)}\t${note}\n`)
  }
  return Buffer.from(lines.join(''))
}

/** `buf` cut at random places (also inside rows and inside multi-byte characters). */
function* pieces(buf, seed = 7) {
  let at = 0
  let x = seed
  while (at < buf.length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    const n = 1 + (x % 70000)
    yield buf.subarray(at, at + n)
    at += n
  }
}

test('text format: 20,000 rows with NULLs and unicode round-trip byte-identical', LIMIT, async () => {
  await pool.query(`truncate ${t}`)
  const data = textRows(20000)
  const { rowCount } = await pool.copyFrom(`copy ${t} from stdin`, pieces(data))
  assert.equal(rowCount, 20000)
  const back = await collect(pool.copyTo(`copy (select * from ${t} order by id) to stdout`))
  assert.equal(back.length, data.length)
  assert.equal(sha(back), sha(data))
  const r = await pool.query(`select count(*)::int as n, count(note)::int as notes, max(label) filter (where id = 1) as one from ${t}`)
  assert.deepEqual(r.rows[0], { n: 20000, notes: 16000, one: 'ünïcödé 🚀 中文 1' })
  // rowCount on the readable, strings as a source, a Node Readable as a source.
  const out = pool.copyTo(`copy (select id from ${t} where id <= 3 order by id) to stdout`)
  assert.equal((await collect(out)).toString(), '1\n2\n3\n')
  assert.equal(out.rowCount, 3)
  await pool.query(`truncate ${t}`)
  assert.deepEqual(await pool.copyFrom(`copy ${t} (id, label) from stdin`, ['1\tone\n', '2\ttwo\n']), { rowCount: 2 })
  assert.deepEqual(await pool.copyFrom(`copy ${t} (id, label) from stdin`, Readable.from([Buffer.from('3\tthree\n')])), { rowCount: 1 })
  assert.deepEqual(await pool.copyFrom(`copy ${t} (id) from stdin`, []), { rowCount: 0 })
  assert.equal(await count(t), 3)
  assert.equal(pool.stats().inUse, 0)
})

test('csv with a header, and binary format with every type, round-trip byte-identical', LIMIT, async () => {
  await pool.query(`truncate ${t}`)
  await pool.query(`insert into ${t} select g, 'ü,"q"' || g, case when g % 3 = 0 then null else E'multi\\nline' end from generate_series(1, 5000) g`)
  const csv = await collect(pool.copyTo(`copy (select * from ${t} order by id) to stdout (format csv, header)`))
  await pool.query(`truncate ${t}`)
  assert.deepEqual(await pool.copyFrom(`copy ${t} from stdin (format csv, header)`, pieces(csv, 3)), { rowCount: 5000 })
  const csv2 = await collect(pool.copyTo(`copy (select * from ${t} order by id) to stdout (format csv, header)`))
  assert.equal(sha(csv2), sha(csv))

  await pool.query(`truncate ${bin}`)
  await pool.query(`insert into ${bin}
    select g, g * 10000000000, g / 7.0, case when g = 1 then 'NaN'::float8 else g / 3.0 end, g % 2 = 0,
      case when g % 4 = 0 then null else 'ü🚀' || repeat('x', g % 50) end,
      (select string_agg(set_byte('\\x00'::bytea, 0, (g + k) % 256), ''::bytea) from generate_series(0, 255) k),
      timestamptz '2001-02-03 04:05:06.789+00' + g * interval '1 hour', jsonb_build_object('g', g, 'u', 'é'), array[g, null, -g]
    from generate_series(1, 3000) g`)
  const binary = await collect(pool.copyTo(`copy (select * from ${bin} order by id) to stdout (format binary)`))
  assert.equal(binary.subarray(0, 11).toString('latin1'), 'PGCOPY\n\xff\r\n\0')
  await pool.query(`truncate ${bin}`)
  assert.deepEqual(await pool.copyFrom(`copy ${bin} from stdin (format binary)`, pieces(binary, 11)), { rowCount: 3000 })
  const binary2 = await collect(pool.copyTo(`copy (select * from ${bin} order by id) to stdout (format binary)`))
  assert.equal(sha(binary2), sha(binary))
  const nulls = await pool.query(`select count(*) filter (where s is null)::int as n, min(length(b))::int as len from ${bin}`)
  assert.deepEqual(nulls.rows[0], { n: 750, len: 256 })
})

test('a bad row gives 22P02 with its line, a duplicate 23505; the table gets none of the rows; the connection is clean', async () => {
  await pool.query(`truncate ${t}`)
  await assert.rejects(pool.copyFrom(`copy ${t} (id, label) from stdin`, ['1\ta\n2\tb\n', 'x\tc\n4\td\n']), (e) => {
    assert.equal(e.code, '22P02')
    assert.match(e.where, /line 3/)
    return true
  })
  assert.equal(await count(t), 0)
  const rows = Array.from({ length: 2000 }, (_, i) => `${i + 1}\trow ${i + 1}\n`).join('')
  await assert.rejects(pool.copyFrom(`copy ${t} (id, label) from stdin`, rows + '17\tdup\n'), (e) => {
    assert.equal(e.code, '23505')
    assert.match(e.where, /line 2001/)
    assert.ok(e.constraint)
    return true
  })
  assert.equal(await count(t), 0)
  // The error comes while data is still being sent: the rest is dropped, the COPY rolled back.
  await assert.rejects(
    pool.copyFrom(`copy ${t} (id, label) from stdin`, (function* () {
      yield '1\tok\n'
      yield 'oops\n'
      for (let i = 0; i < 2000; i++) yield `${i + 10}\t${'x'.repeat(1000)}\n`
    })()),
    (e) => e.code === '22P02',
  )
  assert.equal(await count(t), 0)
  const client = await pool.connect()
  try {
    await assert.rejects(client.copyFrom(`copy ${t} (id) from stdin`, ['1\n', '1\n']), (e) => e.code === '23505')
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1)
  } finally {
    client.release()
  }
  await settled()
  assert.equal(pool.stats().inUse, 0)
})

test('a failing source or an abort stops the COPY (CopyFail): no rows, the connection clean', async () => {
  await pool.query(`truncate ${t}`)
  await assert.rejects(
    pool.copyFrom(`copy ${t} (id) from stdin`, (async function* () {
      for (let i = 1; i <= 100; i++) yield `${i}\n`
      throw new Error('the source broke')
    })()),
    /the source broke/,
  )
  assert.equal(await count(t), 0)
  const controller = new AbortController()
  await assert.rejects(
    pool.copyFrom(
      `copy ${t} (id) from stdin`,
      (async function* () {
        for (let i = 1; i <= 100000; i++) {
          if (i === 5000) controller.abort()
          yield `${i}\n`
        }
      })(),
      { signal: controller.signal },
    ),
    (e) => e.code === 'ABORTED',
  )
  assert.equal(await count(t), 0)
  // The Writable form through pipeline: finished, then a failing source.
  const sink = pool.copyFrom(`copy ${t} (id, label) from stdin`)
  await pipeline(Readable.from(['1\ta\n', '2\tb\n', Buffer.from('3\tc\n')]), sink)
  assert.equal(sink.rowCount, 3)
  await pool.query(`truncate ${t}`)
  const failing = pool.copyFrom(`copy ${t} (id) from stdin`)
  await assert.rejects(
    pipeline(
      Readable.from((async function* () {
        yield '1\n2\n'
        throw new Error('upstream failed')
      })()),
      failing,
    ),
    /upstream failed/,
  )
  await waitFor(() => pool.stats().inUse === 0)
  assert.equal(await count(t), 0)
  await settled()
  assert.equal(pool.stats().inUse, 0)
})

test('a COPY TO consumer that stops early cancels it: no running COPY, the connection back clean', LIMIT, async () => {
  const big = `copy (select g, repeat('y', 200) from generate_series(1, 5000000) g) to stdout`
  let got = 0
  for await (const chunk of pool.copyTo(big)) {
    got += chunk.length
    break
  }
  assert.ok(got > 0)
  assert.equal(pool.stats().inUse, 0)
  const rows = await settled()
  assert.ok(rows.every((b) => b.state === 'idle'), JSON.stringify(rows))
  // destroy() mid-way, on a client: the client goes on at once.
  const client = await pool.connect()
  try {
    const out = client.copyTo(big)
    await new Promise((resolve) => out.once('data', resolve))
    out.destroy()
    await new Promise((resolve) => out.once('close', resolve))
    assert.equal((await client.query('select 5 as five')).rows[0].five, 5)
  } finally {
    client.release()
  }
})

test('a slow COPY TO reaches its reader while it runs, not only at its end', LIMIT, async () => {
  // The server sends a message's worth of rows (8 kB) at a time; rows of 5 kB, one per 200 ms.
  const out = pool.copyTo(`copy (select g, repeat('s', 5000), pg_sleep(0.2) from generate_series(1, 15) g) to stdout`)
  const it = out[Symbol.asyncIterator]()
  const { value } = await it.next()
  assert.ok(value.length >= 5000)
  const running = await backends()
  assert.ok(running.some((b) => b.state === 'active' && /pg_sleep/.test(b.query)), `the COPY still runs: ${JSON.stringify(running)}`)
  await it.return()
  await settled()
})

test('backpressure out: a reader that stops leaves the server waiting to write (ClientWrite)', LIMIT, async () => {
  const out = pool.copyTo(`copy (select g, repeat('z', 500) from generate_series(1, 2000000) g) to stdout`)
  const it = out[Symbol.asyncIterator]()
  await it.next()
  const waiting = await waitFor(async () => (await backends()).find((b) => b.wait_event === 'ClientWrite'))
  assert.ok(waiting, `the backend waits to write: ${JSON.stringify(await backends())}`)
  // What the stream holds is a chunk or two, not the COPY (about 1 GB).
  assert.ok(out.readableLength < 4 << 20, `buffered ${out.readableLength}`)
  await it.return()
  await settled()
  assert.equal(pool.stats().inUse, 0)
})

test('backpressure in: while the server is blocked, the source is not read ahead', LIMIT, async () => {
  const lock = 717171
  const blocked = uniqueName('copy_blocked')
  await admin(`create table ${blocked} (id int, pad text)`)
  await admin(`create function ${blocked}_wait() returns trigger language plpgsql as $$ begin perform pg_advisory_xact_lock_shared(${lock}); return new; end $$`)
  await admin(`create trigger w before insert on ${blocked} for each row execute function ${blocked}_wait()`)
  const holder = new (require('pg').Client)({ connectionString: TEST_URL })
  await holder.connect()
  await holder.query('select pg_advisory_lock($1)', [lock])
  let produced = 0
  const controller = new AbortController()
  const line = `1\t${'p'.repeat(1000)}\n`
  const source = (async function* () {
    for (let i = 0; i < 1000000 && !controller.signal.aborted; i++) {
      produced += line.length
      yield line
    }
  })()
  const copying = pool.copyFrom(`copy ${blocked} from stdin`, source, { signal: controller.signal })
  copying.catch(() => {})
  try {
    await waitFor(async () => (await backends()).some((b) => b.wait_event_type === 'Lock'))
    // Wait until the source is no longer read (it stops once the buffers on the way are full).
    let last = -1
    await waitFor(async () => {
      const now = produced
      const still = now === last
      last = now
      return still && now > 0
    }, { everyMs: 200 })
    assert.ok(produced < 64 << 20, `read ${(produced / 1048576).toFixed(1)} MB of the source ahead of a blocked server`)
  } finally {
    controller.abort()
    await holder.query('select pg_advisory_unlock($1)', [lock])
    await holder.end()
  }
  await assert.rejects(copying, (e) => e.code === 'ABORTED')
  assert.equal((await pool.query(`select count(*)::int as n from ${blocked}`)).rows[0].n, 0)
  await admin(`drop table ${blocked}; drop function ${blocked}_wait()`)
  await settled()
  assert.equal(pool.stats().inUse, 0)
})

test('the wrong kind of statement is PARAM_INVALID and leaves the connection usable; COPY inside a transaction', async () => {
  await assert.rejects(pool.copyFrom(`copy ${t} to stdout`, ['x']), (e) => e.code === 'PARAM_INVALID' && /copyTo/.test(e.message))
  await assert.rejects(collect(pool.copyTo(`copy ${t} from stdin`)), (e) => e.code === 'PARAM_INVALID' && /copyFrom/.test(e.message))
  await assert.rejects(pool.copyFrom('select 1', ['x']), (e) => e.code === 'PARAM_INVALID')
  await assert.rejects(collect(pool.copyTo('select 1')), (e) => e.code === 'PARAM_INVALID')
  await assert.rejects(pool.copyFrom('copy nowhere from stdin', ['1\n']), (e) => e.code === '42P01')
  await assert.rejects(pool.copyFrom(`copy ${t} from stdin`, 42), (e) => e.code === 'PARAM_INVALID')
  // query() cannot run a COPY: the connection is closed, the pool goes on.
  await assert.rejects(pool.query(`copy ${t} to stdout`), (e) => e.code === 'PROTOCOL_ERROR' && /copyTo/.test(e.message))
  await pool.query(`truncate ${t}`)
  await assert.rejects(
    pool.transaction(async (tx) => {
      assert.deepEqual(await tx.copyFrom(`copy ${t} (id) from stdin`, ['1\n2\n']), { rowCount: 2 })
      assert.equal((await tx.query(`select count(*)::int as n from ${t}`)).rows[0].n, 2)
      assert.equal((await collect(tx.copyTo(`copy (select id from ${t} order by id) to stdout`))).toString(), '1\n2\n')
      throw new Error('roll back')
    }),
    /roll back/,
  )
  assert.equal(await count(t), 0)
  await settled()
  assert.equal(pool.stats().inUse, 0)
})
