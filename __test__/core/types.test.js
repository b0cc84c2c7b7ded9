'use strict'
// Differential: the same queries through node-postgres and onepool must give the same JS values.

const test = require('node:test')
const assert = require('node:assert/strict')
const pg = require('pg')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const EXPRESSIONS = [
  "null::int",
  "true", "false", "'t'::bool",
  "32767::int2", "(-2147483648)::int4", "9223372036854775807::int8", "-42::int8",
  "1.1::float4", "3.14159265358979::float8", "'NaN'::float8", "'Infinity'::float8", "'-Infinity'::float4",
  "123456789012345678901234567890.123456789::numeric", "'NaN'::numeric", "0.000001::numeric",
  "12.34::money",
  "'hello'::text", "'héllo wörld ✓ 😀'::text", "'x'::varchar(5)", "'ab'::char(4)", "'name'::name", "''::text",
  "'\\x00ff10'::bytea", "''::bytea",
  "'2024-02-29'::date", "'0001-01-01'::date", "'infinity'::date", "'-infinity'::date", "'1999-12-31 BC'::date",
  "'2024-02-29 13:14:15.123456'::timestamp", "'2024-02-29 13:14:15.123456+02'::timestamptz",
  "'infinity'::timestamptz", "'-infinity'::timestamp", "'0099-06-01 00:00:00'::timestamp",
  "'13:14:15.5'::time", "'13:14:15+05:30'::timetz",
  "'1 year 2 mons 3 days 04:05:06.789'::interval", "'-1 day'::interval", "'P1Y2M'::interval",
  "'{\"a\": [1, 2, {\"b\": null}], \"c\": \"✓\"}'::json", "'{\"a\": 1}'::jsonb", "'[1,\"x\",true]'::jsonb", "'\"str\"'::jsonb", "'null'::jsonb",
  "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
  "'192.168.0.1/24'::inet", "'10.0.0.0/8'::cidr", "'08:00:2b:01:02:03'::macaddr",
  "'(1.5,2)'::point", "'<(1,2),3>'::circle", "'[(0,0),(1,1)]'::lseg", "'((0,0),(1,1))'::box",
  "B'1011'::bit(4)", "B'10'::varbit",
  "'fat & rat'::tsquery", "'a fat cat'::tsvector",
  "'[1,10)'::int4range", "'empty'::numrange",
  "123::oid", "'pg_class'::regclass", "'xyz'::xml",
  "array[1,2,null,4]::int[]", "array[array[1,2],array[3,4]]::int4[]", "array[1,2]::int8[]",
  "array['a','b c','d\"e','f\\\\g',null]::text[]", "'{}'::text[]",
  "array[1.5,2.25]::numeric[]", "array[1.1,2.2]::float4[]", "array[true,false]::bool[]",
  "array['2024-01-01'::date]", "array['2024-01-01 10:00:00+00'::timestamptz]", "array['2024-01-01 10:00:00'::timestamp]",
  "array['{\"a\":1}'::jsonb]", "array['{\"a\":1}'::json]", "array['\\x0102'::bytea]",
  "array['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", "array['1 day'::interval]",
  "array['(1,2)'::point]", "array['1.2.3.4'::inet]", "array[1::int2]", "array[1.5::float8]",
  "row(1,'a')", "row(2,'x y',null)",
]

test('every built-in type decodes to the same JS value as node-postgres', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 2, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  try {
    for (const expr of EXPRESSIONS) {
      for (const [label, sql, values] of [
        ['simple', `select ${expr} as v`, undefined],
        ['extended', `select ${expr} as v, $1::int as p`, [1]],
      ]) {
        const expected = await client.query(sql, values)
        const actual = await pool.query(sql, values)
        assert.deepStrictEqual(actual.rows, expected.rows, `${label}: ${expr}`)
        assert.deepStrictEqual(
          actual.fields.map((f) => [f.name, f.dataTypeID]),
          expected.fields.map((f) => [f.name, f.dataTypeID]),
          `${label} fields: ${expr}`,
        )
      }
    }
  } finally {
    await client.end()
    await pool.end()
  }
})

test('enums and domains come back as node-postgres returns them', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, max: 1, applicationName: app })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  const mood = uniqueName('mood')
  const dom = uniqueName('posint')
  try {
    await client.query(`create type ${mood} as enum ('sad', 'ok', 'happy')`)
    await client.query(`create domain ${dom} as int check (value > 0)`)
    for (const sql of [
      `select 'happy'::${mood} as v`,
      `select array['sad','ok']::${mood}[] as v`,
      `select 5::${dom} as v`,
    ]) {
      assert.deepStrictEqual((await pool.query(sql)).rows, (await client.query(sql)).rows, sql)
    }
  } finally {
    await client.query(`drop type if exists ${mood}; drop domain if exists ${dom}`)
    await client.end()
    await pool.end()
  }
})

test('parameters: every JS type is sent as node-postgres sends it', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 1, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  const date = new Date(Date.UTC(2024, 1, 29, 13, 14, 15, 123))
  const cases = [
    ['$1::text', [null]],
    ['$1::text', [undefined]],
    ['$1::bool', [true]],
    ['$1::int', [42]],
    ['$1::float8', [1.5]],
    ['$1::float8', [NaN]],
    ['$1::int8', [9007199254740993n]],
    ['$1::text', ['unicode ✓ 😀 \u00e9']],
    ['$1::timestamptz', [date]],
    ['$1::timestamp', [date]],
    ['$1::date', [date]],
    ['$1::bytea', [Buffer.from([0, 1, 2, 255])]],
    ['$1::bytea', [new Uint8Array([7, 8, 9])]],
    ['$1::int[]', [[1, 2, null, 3]]],
    ['$1::text[]', [['a', 'b"c', 'd\\e', null, 'f,g']]],
    ['$1::int[][]', [[[1, 2], [3, 4]]]],
    ['$1::jsonb', [{ a: [1, 'x', null], b: { c: true } }]],
    ['$1::int[]', [[]]],
    ['$1::text', [{ toPostgres: () => 'custom' }]],
    ['$1::numeric', ['12345678901234567890.5']],
    ['$1::uuid', ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']],
  ]
  try {
    for (const [cast, values] of cases) {
      const sql = `select ${cast} as v`
      const expected = await client.query(sql, values)
      const actual = await pool.query(sql, values)
      assert.deepStrictEqual(actual.rows, expected.rows, `${sql} ${String(values[0])}`)
    }
  } finally {
    await client.end()
    await pool.end()
  }
})

test('timestamps decode exactly as node-postgres in many time zones, fractions and eras', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 1, name: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  const ours = await pool.connect()
  const sql = `
    select ts, ts::timestamp as local, array[ts] as arr from (
      select timestamptz '2024-03-10 01:59:59.999999+00' + (i * interval '7 hours 13 minutes 17.123457 seconds') as ts
      from generate_series(-3000, 3000) i
      union all select v::timestamptz from unnest(array[
        '0099-01-01 00:00:00+00', '0001-01-01 00:00:00.5+00', '1000-06-15 12:00:00+00', '1969-12-31 23:59:59.9995+00',
        '10000-01-01 00:00:00+00', '0044-03-15 12:00:00+00 BC', 'infinity', '-infinity', '2038-01-19 03:14:07.1+00',
        '2024-01-01 00:00:00.000001+00', '2024-01-01 00:00:00.1449+00', '2024-01-01 00:00:00.145+00'
      ]) v
    ) t`
  try {
    for (const tz of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Europe/Paris', 'Pacific/Chatham', 'America/Los_Angeles']) {
      await client.query(`set timezone = '${tz}'`)
      await ours.query(`set timezone = '${tz}'`)
      const expected = await client.query(sql)
      const actual = await ours.query(sql)
      assert.equal(actual.rows.length, expected.rows.length)
      for (let i = 0; i < expected.rows.length; i++) {
        assert.deepStrictEqual(actual.rows[i], expected.rows[i], `${tz} row ${i}`)
      }
    }
  } finally {
    await ours.release(true)
    await client.end()
    await pool.end()
  }
})

test('a large result decodes intact and hands its native memory back right after decoding', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 1, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  // ~10 MB of cells: far above the 16 KiB below which results are copied instead of lent.
  const sql = `select i, repeat(md5(i::text), 8) as t, decode(repeat(md5(i::text), 4), 'hex') as b,
      jsonb_build_object('i', i, 's', 'héllo') as j, array[i, -i]::int8[] as a, (i * 1.5)::numeric as n
    from generate_series(1, 20000) i`
  try {
    const expected = await client.query(sql)
    await pool.query('select 1') // the pool's connection, prepared statements and code paths warmed
    await new Promise((resolve) => setImmediate(resolve))
    const before = process.memoryUsage().external
    const actual = await pool.query(sql)
    await new Promise((resolve) => setImmediate(resolve))
    const grew = process.memoryUsage().external - before
    assert.equal(actual.rows.length, 20000)
    assert.deepStrictEqual(actual.rows, expected.rows)
    // The bytea values are copies: they survive the result buffer being released.
    assert.equal(actual.rows[41].b.length, 64)
    assert.ok(grew < 4 * 1024 * 1024, `external memory grew by ${grew} bytes after the query`)
  } finally {
    await client.end()
    await pool.end()
  }
})

test('many text parameters (sent joined) arrive exactly as node-postgres sends them', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 2, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  const values = ['a', '', null, 'héllo wörld', '😀 ✓', 'lone \uD800 high', 'lone \uDC00 low', 'x'.repeat(5000), '{1,2}', undefined, 42, true, new Date(Date.UTC(2024, 1, 29)), '\uD83D', '\uDE00']
  const sql = `select ${values.map((_, i) => `$${i + 1}::text as c${i}`).join(', ')}`
  const client2 = await pool.connect()
  try {
    const expected = await client.query(sql, values)
    assert.deepStrictEqual((await pool.query(sql, values)).rows, expected.rows)
    assert.deepStrictEqual((await client2.query(sql, values)).rows, expected.rows, 'on a checked-out client')
    // A Buffer among them takes the per-value path: same result.
    const withBytes = [...values, Buffer.from('\\x00ff')]
    const sql2 = `${sql}, $${withBytes.length}::bytea as b`
    assert.deepStrictEqual((await pool.query(sql2, withBytes)).rows, (await client.query(sql2, withBytes)).rows)
    assert.equal(expected.rows[0].c5, 'lone \uFFFD high')
  } finally {
    await client2.release()
    await client.end()
    await pool.end()
  }
})

test('columns decoded with the I/O thread’s help (floats, timestamptz, json, ASCII text) match node-postgres row by row', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 2, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  // NULLs, non-ASCII cells and the spellings JavaScript must parse itself, among ordinary rows.
  const sql = `select i,
      case when i % 7 = 0 then null when i % 11 = 0 then 'NaN' when i % 13 = 0 then '-Infinity'
           else (i / 7.0 * 10 ^ (i % 40 - 20))::text end::float8 as f8,
      case when i % 5 = 0 then null else (i / 3.0)::float4 end as f4,
      case when i % 9 = 0 then null when i % 17 = 0 then 'infinity'::timestamptz
           when i % 19 = 0 then '0500-01-01 00:00:00+00'::timestamptz
           else timestamptz '2024-03-10 01:59:59.999999+00' + i * interval '3 hours 17.1234 seconds' end as ts,
      case when i % 4 = 0 then null when i % 6 = 0 then 'null'::jsonb
           else jsonb_build_object('i', i, 'tag', case when i % 10 = 3 then 'é✓' else 't' end, 'a', array[i, -i]) end as jb,
      case when i % 8 = 0 then '{"x": "😀"}'::json else '[1, 2.50, "a"]'::json end as j,
      case when i = 500 then 'ünïcode' else 'label ' || i end as label
    from generate_series(1, 1000) i`
  try {
    await client.query(`set timezone = 'America/St_Johns'`)
    await pool.query(`select set_config('timezone', 'America/St_Johns', false)`)
    const expected = await client.query(sql)
    const ours = await pool.connect()
    try {
      await ours.query(`set timezone = 'America/St_Johns'`)
      const actual = await ours.query(sql)
      assert.equal(actual.rows.length, 1000)
      for (let i = 0; i < 1000; i++) assert.deepStrictEqual(actual.rows[i], expected.rows[i], `row ${i}`)
      const asArrays = await ours.query({ text: sql, rowMode: 'array' })
      assert.deepStrictEqual(asArrays.rows, expected.rows.map(Object.values))
      // Custom parsers get the text, never the I/O thread's values.
      const types = { getTypeParser: (oid, format) => ([701, 1184, 3802].includes(oid) ? (text) => `<${text}>` : pg.types.getTypeParser(oid, format)) }
      const custom = await ours.query({ text: sql, types })
      const expectedCustom = await client.query({ text: sql, types })
      assert.deepStrictEqual(custom.rows, expectedCustom.rows)
      assert.equal(custom.rows[1].f8, `<${expected.rows[1].f8}>`)
    } finally {
      ours.release()
    }
  } finally {
    await client.end()
    await pool.end()
  }
})

test('a json column too large for one array is decoded value by value, the same', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 1, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  // ~20 MB of json in one column: above the 16 MiB the I/O thread joins into one array.
  const sql = `select i, json_build_object('i', i, 'pad', repeat('x', 2000)) as j from generate_series(1, 10000) i`
  try {
    const expected = await client.query(sql)
    const actual = await pool.query(sql)
    assert.equal(actual.rows.length, 10000)
    assert.deepStrictEqual(actual.rows, expected.rows)
  } finally {
    await client.end()
    await pool.end()
  }
})

test('json columns longer than one chunk, with a whole chunk of NULLs, match node-postgres', async () => {
  const pool = createPool({ connectionString: TEST_URL, max: 1, applicationName: uniqueName() })
  const client = new pg.Client({ connectionString: TEST_URL })
  await client.connect()
  // The I/O thread sends json in arrays of 1,024 rows: rows 1,025–2,048 are all NULL here.
  const sql = `select i, case when i between 1025 and 2048 then null else jsonb_build_object('i', i, 'x', 'ü') end as j,
      case when i % 3 = 0 then null else json_build_array(i, 'a') end as k
    from generate_series(1, 3500) i`
  try {
    const expected = await client.query(sql)
    const actual = await pool.query(sql)
    assert.equal(actual.rows.length, 3500)
    for (let i = 0; i < 3500; i++) assert.deepStrictEqual(actual.rows[i], expected.rows[i], `row ${i}`)
    assert.deepStrictEqual((await pool.query({ text: sql, rowMode: 'array' })).rows, expected.rows.map(Object.values))
  } finally {
    await client.end()
    await pool.end()
  }
})
