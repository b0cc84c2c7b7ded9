'use strict'
// Issue #20, point 6: a large result is decoded in slices with turns of the event loop between
// them, so timers, I/O and other requests run while a million rows become objects. Observed as
// ordering (a callback scheduled when decoding starts runs before the query resolves), never as
// a timing threshold. Also: the rows are still exactly node-postgres's, a client's queries still
// settle in the order they were sent, and an abort stops a long decode.

const test = require('node:test')
const assert = require('node:assert/strict')
const pg = require('pg')
const pgTypes = require('pg-types')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const LIMIT = { timeout: 120000 }

let pool
test.before(() => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('large'), applicationName: uniqueName('large'), max: 2 })
})
test.after(async () => {
  await pool.end()
})

/**
 * pg's own type parsers (so the fast readers stay in use), calling `onStart` when the first
 * decode begins: the parsers are looked up before the first row is read.
 */
function typesCalling(onStart, parsers = {}) {
  let started = false
  return {
    getTypeParser(oid, format) {
      if (!started) {
        started = true
        onStart()
      }
      return parsers[oid] || pgTypes.getTypeParser(oid, format)
    },
  }
}

/** Schedules a setImmediate and a 0 ms timer, each recording its name in `order`. */
const scheduleBoth = (order) => () => {
  setImmediate(() => order.push('immediate'))
  setTimeout(() => order.push('timeout'), 0)
}

const MILLION = `select i as id, 'row ' || i as label, i % 2 = 0 as even, i * 0.5::float8 as half
  from generate_series(1, 1000000) i`

test('while a 1,000,000-row result decodes, a setImmediate and a timer callback run before the query resolves', LIMIT, async () => {
  const order = []
  const result = await pool.query({ text: MILLION, types: typesCalling(scheduleBoth(order)) })
  order.push('resolved')
  assert.deepEqual([...order.slice(0, 2)].sort(), ['immediate', 'timeout'])
  assert.equal(order[2], 'resolved')
  assert.equal(result.rows.length, 1000000)
  assert.equal(result.rowCount, 1000000)
  assert.deepEqual(result.rows[0], { id: 1, label: 'row 1', even: false, half: 0.5 })
  assert.deepEqual(result.rows[999999], { id: 1000000, label: 'row 1000000', even: true, half: 500000 })
})

test('rowMode array with custom types inside a transaction takes the same sliced path', LIMIT, async () => {
  const order = []
  const tenfold = (s) => Number(s) * 10
  const rows = await pool.transaction(async (tx) => {
    const r = await tx.query({
      text: 'select i, md5(i::text) as h from generate_series(1, 200000) i',
      rowMode: 'array',
      types: typesCalling(scheduleBoth(order), { 23: tenfold }),
    })
    order.push('resolved')
    return r.rows
  })
  assert.equal(order[2], 'resolved', `order: ${order}`)
  assert.equal(rows.length, 200000)
  assert.deepEqual(rows[0], [10, 'c4ca4238a0b923820dcc509a6f75849b'])
  assert.deepEqual(rows[199999][0], 2000000)
})

test('a small result keeps the synchronous path: it resolves before a callback scheduled as it decodes', LIMIT, async () => {
  const order = []
  const r = await pool.query({ text: 'select i from generate_series(1, 1000) i', types: typesCalling(scheduleBoth(order)) })
  order.push('resolved')
  assert.equal(order[0], 'resolved', `order: ${order}`)
  assert.equal(r.rows.length, 1000)
})

test('large results decoded in slices are exactly node-postgres rows: objects, arrays, several statements', LIMIT, async () => {
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  // json in chunks of 1,024 rows, NULLs, numbers the I/O thread pre-parses, dates, unicode.
  const sql = `select i, i::int8 * 1000003 as big, case when i % 7 = 0 then null else 'héllo ' || i end as t,
      i / 3.0::float8 as f, (i * 1.25)::numeric(12, 2) as n, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' as ts,
      case when i % 5 = 0 then null else jsonb_build_object('i', i, 'a', array[i, -i]) end as j, array[i, i + 1] as a
    from generate_series(1, 30000) i`
  try {
    const expected = await client.query(sql)
    assert.deepStrictEqual((await pool.query(sql)).rows, expected.rows)
    const asArrays = await client.query({ text: sql, rowMode: 'array' })
    assert.deepStrictEqual((await pool.query({ text: sql, rowMode: 'array' })).rows, asArrays.rows)
    const several = await pool.query(`select 1 as one; ${sql}; select 'two' as two; ${sql}`)
    assert.equal(several.length, 4)
    assert.deepStrictEqual(several[0].rows, [{ one: 1 }])
    assert.deepStrictEqual(several[1].rows, expected.rows)
    assert.deepStrictEqual(several[2].rows, [{ two: 'two' }])
    assert.deepStrictEqual(several[3].rows, expected.rows)
    assert.equal(several[3].rowCount, 30000)
  } finally {
    await client.end()
  }
})

test("a client's queries settle in the order they were sent, also when small ones arrive while a large one decodes", LIMIT, async () => {
  const client = await pool.connect()
  try {
    const order = []
    const done = [
      client.query('select i from generate_series(1, 300000) i').then((r) => order.push(`large ${r.rows.length}`)),
      client.query('select 1 as n').then((r) => order.push(`small ${r.rows[0].n}`)),
      client.query('select 1 / 0').catch((e) => order.push(`error ${e.code}`)),
      client.query('select i from generate_series(1, 100000) i').then((r) => order.push(`large ${r.rows.length}`)),
      client.query('select 2 as n').then((r) => order.push(`small ${r.rows[0].n}`)),
    ]
    await Promise.all(done)
    assert.deepEqual(order, ['large 300000', 'small 1', 'error 22012', 'large 100000', 'small 2'])
  } finally {
    client.release()
  }
})

test('an abort while a large result decodes rejects with ABORTED at the next slice; the connection stays usable', LIMIT, async () => {
  const client = await pool.connect()
  try {
    const controller = new AbortController()
    let rowsRead = 0
    const types = typesCalling(() => controller.abort(), {
      23: (s) => {
        rowsRead++
        return Number(s)
      },
    })
    await assert.rejects(
      client.query({ text: 'select i from generate_series(1, 1000000) i', types, signal: controller.signal }),
      (e) => e.code === 'ABORTED' && /decoded/.test(e.message),
    )
    assert.ok(rowsRead > 0 && rowsRead < 1000000, `decoding stopped part-way (${rowsRead} rows read)`)
    assert.deepEqual((await client.query('select 1 as one')).rows, [{ one: 1 }])
  } finally {
    client.release()
  }
  assert.deepEqual((await pool.query('select 2 as two')).rows, [{ two: 2 }])
})

test('rows have pg\'s shape on both paths: a column named __proto__ is an own property, not the prototype', LIMIT, async () => {
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  try {
    for (const n of [1, 100000]) {
      const sql = `select '{"polluted": true}'::json as "__proto__", i as "constructor", i as "toString" from generate_series(1, ${n}) i`
      const [mine, theirs] = [(await pool.query(sql)).rows, (await client.query(sql)).rows]
      assert.equal(mine.length, n)
      for (const row of [mine[0], mine[n - 1]]) {
        assert.equal(Object.getPrototypeOf(row), Object.prototype)
        assert.deepEqual(Object.getOwnPropertyNames(row), Object.getOwnPropertyNames(theirs[0]))
        assert.deepEqual(Object.getOwnPropertyDescriptor(row, '__proto__').value, { polluted: true })
        assert.equal(row.polluted, undefined)
      }
      assert.deepStrictEqual(mine, theirs)
    }
  } finally {
    await client.end()
  }
})

test('column names become keys as in pg, whatever they hold (rows are built by generated code)', LIMIT, async () => {
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  const names = ['"}; globalThis.injected = 1; ({"', "it's", 'back\\slash', 'line\u2028separator', 'new\nline', '1', 'a', 'a', ' ']
  const columns = names.map((n, i) => `${i} as "${n.replaceAll('"', '""')}"`).join(', ')
  try {
    for (const n of [1, 3]) {
      const sql = `select ${columns} from generate_series(1, ${n})`
      const [mine, theirs] = [(await pool.query(sql)).rows, (await client.query(sql)).rows]
      assert.equal(mine.length, n)
      assert.deepStrictEqual(mine, theirs)
      assert.deepEqual(Object.keys(mine[0]), Object.keys(theirs[0]))
    }
    assert.equal(globalThis.injected, undefined)
  } finally {
    await client.end()
  }
})
