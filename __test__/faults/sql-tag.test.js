'use strict'
// Issue #20, point 4: the tagged-template API never turns a value into SQL text. Property-based
// (fast-check): whatever goes through ${} (hostile strings, objects, arrays, Symbols, objects
// shaped like a fragment), compile() gives exactly the templates' own strings joined by $1..$n,
// with the values untouched, and against the real server a hostile value comes back as data.
// sql, sql.fragment and sql.compile refuse anything but a tagged template (or one fragment),
// ident() names exactly the object it was given, and inList([], type) keeps IN / NOT IN's meaning.

const test = require('node:test')
const assert = require('node:assert/strict')
const fc = require('fast-check')
const { createPool, isOnepoolError } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
const RUNS = Number(process.env.ONEPOOL_PROPERTY_RUNS || 150)
const SEED = process.env.ONEPOOL_PROPERTY_SEED === undefined ? undefined : Number(process.env.ONEPOOL_PROPERTY_SEED)
const params = (extra = {}) => ({ numRuns: RUNS, seed: SEED, endOnFailure: false, ...extra })

let pool
let sql
test.before(() => {
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('sqltag'), applicationName: uniqueName('sqltag'), max: 2 })
  sql = pool.sql
})
test.after(async () => {
  await pool.end()
})

const paramInvalid = (e) => isOnepoolError(e) && e.code === 'PARAM_INVALID'

/** What a tag receives for a template with these strings (a real one is also frozen). */
const template = (strings) => Object.freeze(Object.assign([...strings], { raw: Object.freeze([...strings]) }))

// Pieces of SQL an attacker would try to get into the text.
const hostilePiece = fc.constantFrom(
  "'", '"', ';', '$1', '$2', '$$', '$tag$', '--', '/*', '*/', '\\', '(', ')', ',', '\n', 'E\'', 'U&"',
  ' union select rolname from pg_roles', "'; drop table pg_class; --", ' or 1=1', '::text', '\0', '\uD800', '😀',
)
const hostileString = fc.oneof(
  fc.string({ unit: hostilePiece, maxLength: 6 }),
  fc.string({ unit: fc.oneof(hostilePiece, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })), maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 16 }),
)

const realFragment = () => sql.fragment`1 = ${1}`
const fragmentProto = () => Object.getPrototypeOf(sql.ident('x'))

// Objects that look like a fragment to anything that checks shape, prototype or a marker.
const lookAlike = fc.oneof(
  hostileString.map((s) => ({ strings: [s], values: [] })),
  hostileString.map((s) => JSON.parse(JSON.stringify({ strings: [s, ''], values: [1] }))),
  hostileString.map((s) => Object.create(fragmentProto(), { strings: { value: [s] }, values: { value: [] } })),
  hostileString.map((s) => ({ [Symbol.for('onepool.sql.fragment')]: true, [Symbol('onepool.sql.fragment')]: true, strings: [s], values: [] })),
  hostileString.map((s) => new Proxy(realFragment(), { get: (t, k) => (k === 'strings' ? [s] : k === 'values' ? [] : true), has: () => true })),
  hostileString.map((s) => Object.assign([s], { raw: [s] })),
  fc.constant(null).map(() => ({ ...realFragment() })),
  fc.constant(null).map(() => Object.assign(Object.create(fragmentProto()), realFragment())),
)

const anyValue = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 2 }) },
  { weight: 2, arbitrary: lookAlike },
  { weight: 1, arbitrary: fc.array(fc.oneof(hostileString, lookAlike), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.oneof(fc.string().map((d) => Symbol(d)), fc.constant(() => 'x'), fc.bigInt(), fc.date(), fc.constant(undefined)) },
)

const quoted = (name) => '"' + name.replace(/"/g, '""') + '"'
const okIdent = fc.string({ unit: fc.oneof(hostilePiece, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 8 })
  .filter((s) => !s.includes('\0') && s.isWellFormed() && Buffer.byteLength(s) <= 63)

/**
 * A tree of what goes into `${}`: plain values and the three helpers, nested. Each node knows
 * how to build its argument and the text and parameters it must compile to, independently of
 * compile() itself.
 */
const { fragment } = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyValue.map((v) => ({ kind: 'value', v })),
    fc.record({ kind: fc.constant('ident'), names: fc.array(okIdent, { minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('inList'), values: fc.array(anyValue, { minLength: 1, maxLength: 4 }), type: fc.constantFrom(undefined, 'int8', 'text', 'public.t[]') }),
    fc.record({ kind: fc.constant('inList'), values: fc.constant([]), type: fc.constantFrom('int4', 'uuid') }),
    tie('fragment'),
  ),
  fragment: fc
    .array(tie('node'), { maxLength: 3 })
    .chain((children) => fc.array(hostileString, { minLength: children.length + 1, maxLength: children.length + 1 }).map((strings) => ({ kind: 'fragment', strings, children }))),
}))

function build(n) {
  switch (n.kind) {
    case 'value':
      return n.v
    case 'ident':
      return sql.ident(...n.names)
    case 'inList':
      return sql.inList(n.values, n.type)
    case 'fragment':
      return sql.fragment(template(n.strings), ...n.children.map(build))
  }
}

function expected(n, values) {
  const param = (v, cast = '') => {
    values.push(v)
    return `$${values.length}${cast}`
  }
  switch (n.kind) {
    case 'value':
      return param(n.v)
    case 'ident':
      return n.names.map(quoted).join('.')
    case 'inList': {
      const cast = n.type === undefined ? '' : `::${n.type}`
      if (n.values.length === 0) return `(SELECT NULL${cast} WHERE FALSE)`
      return '(' + n.values.map((v) => param(v, cast)).join(', ') + ')'
    }
    case 'fragment':
      return n.strings.map((s, i) => (i === 0 ? s : expected(n.children[i - 1], values) + s)).join('')
  }
}

function assertSameValues(actual, wanted) {
  assert.equal(actual.length, wanted.length)
  for (let i = 0; i < wanted.length; i++) assert.ok(Object.is(actual[i], wanted[i]), `value ${i + 1} is not the one interpolated`)
}

test('whatever goes through ${}, compile() gives the template strings joined by $n and the values untouched', LIMIT, () => {
  fc.assert(
    fc.property(fc.array(hostileString, { minLength: 1, maxLength: 5 }), fc.array(anyValue, { minLength: 3, maxLength: 5 }), (strings, choices) => {
      const values = strings.slice(1).map((_, i) => choices[i])
      const out = sql.compile(template(strings), ...values)
      assert.equal(out.text, strings.map((s, i) => (i === 0 ? s : `$${i}${s}`)).join(''))
      assertSameValues(out.values, values)
      // A real tagged template, the same.
      const real = sql.compile`select ${choices[0]} where ${choices[1]} = ${choices[2]}`
      assert.equal(real.text, 'select $1 where $2 = $3')
      assertSameValues(real.values, choices.slice(0, 3))
    }),
    params({ numRuns: RUNS * 4 }),
  )
})

test('nested fragments, idents and inLists compile to exactly their own text; everything else is a parameter', LIMIT, () => {
  fc.assert(
    fc.property(fragment, (top) => {
      const values = []
      const text = expected(top, values)
      const out = sql.compile(template(top.strings), ...top.children.map(build))
      assert.equal(out.text, text)
      assertSameValues(out.values, values)
      // The same tree as one fragment: sql.compile(fragment) is the same.
      assert.deepEqual(sql.compile(sql.fragment(template(top.strings), ...top.children.map(build))).text, text)
    }),
    params({ numRuns: RUNS * 4 }),
  )
})

test('sql, sql.fragment and sql.compile refuse anything but a tagged template or one fragment (PARAM_INVALID)', LIMIT, async () => {
  // The reported injection: a string handed to sql.fragment was spliced into the statement.
  const injected = "true union select rolname::text from pg_roles"
  assert.throws(() => sql.fragment(injected), paramInvalid)
  assert.throws(() => sql.compile(injected), paramInvalid)
  await assert.rejects(sql(injected), paramInvalid)
  class WrongCount {
    constructor(strings, count) {
      this.template = template(strings)
      this.count = count
    }
  }
  const notTemplates = fc.oneof(
    hostileString,
    fc.anything({ maxDepth: 2 }),
    // (An array with a raw array of the same length passes for a template: only code builds one.)
    lookAlike.filter((x) => !Array.isArray(x)),
    fc.array(hostileString, { minLength: 1, maxLength: 3 }),
    // A template object with the wrong number of values (one more or one fewer).
    fc.array(hostileString, { minLength: 1, maxLength: 3 }).map((s) => new WrongCount(s, s.length)),
    fc.array(hostileString, { minLength: 2, maxLength: 3 }).map((s) => new WrongCount(s, s.length - 2)),
  )
  await fc.assert(
    fc.asyncProperty(notTemplates, async (x) => {
      const [first, count] = x instanceof WrongCount ? [x.template, x.count] : [x, 0]
      const rest = new Array(count).fill('v')
      assert.throws(() => sql.fragment(first, ...rest), paramInvalid)
      assert.throws(() => sql.compile(first, ...rest), paramInvalid)
      await assert.rejects(sql(first, ...rest), paramInvalid)
    }),
    params(),
  )
  // A template with an invalid escape has no text for that part: refused, not sent as "undefined".
  assert.throws(() => sql.compile`select \unicode ${1}`, paramInvalid)
  // A fragment alone is accepted, and only alone.
  const f = sql.fragment`select ${7}::int as n`
  assert.deepEqual(sql.compile(f), { text: 'select $1::int as n', values: [7] })
  assert.equal(sql.fragment(f), f)
  assert.deepEqual([...(await sql(f))], [{ n: 7 }])
  assert.throws(() => sql.compile(f, 1), paramInvalid)
})

test('hostile values round-trip through the server as data, in ${} and in inList()', LIMIT, async () => {
  const sendable = (s) => !s.includes('\0') && s.isWellFormed()
  await fc.assert(
    fc.asyncProperty(hostileString.filter(sendable), fc.array(hostileString.filter(sendable), { maxLength: 5 }), async (s, list) => {
      const rows = await sql`select ${s}::text as s, ${s}::text = ${s}::text as same`
      assert.deepEqual([...rows], [{ s, same: true }])
      const [{ inside, outside }] = await sql`
        select count(*) filter (where x in ${sql.inList(list, 'text')})::int as inside,
               count(*) filter (where x not in ${sql.inList(list, 'text')})::int as outside
        from unnest(${list}::text[]) as u(x)`
      assert.deepEqual({ inside, outside }, { inside: list.length, outside: 0 })
    }),
    params(),
  )
  await fc.assert(
    fc.asyncProperty(lookAlike.filter((x) => !Array.isArray(x) && !(x instanceof Object.getPrototypeOf(realFragment()).constructor)), async (x) => {
      // Sent as a parameter: node-postgres's conversion of a plain object is its JSON.
      let json
      try {
        json = JSON.stringify(x)
      } catch {
        return
      }
      const [{ v }] = await sql`select ${x}::text as v`
      assert.equal(v, json)
    }),
    params({ numRuns: 40 }),
  )
  // Values with no database representation are refused, never spliced.
  await assert.rejects(sql`select ${Symbol('x; drop table t')}::text`, paramInvalid)
  await assert.rejects(sql`select ${() => 'x'}::text`, paramInvalid)
  // A genuine fragment used where a value is expected (query() parameters, inside an array) is an error, not {}.
  await assert.rejects(pool.query('select $1::text', [sql.fragment`x`]), paramInvalid)
  await assert.rejects(sql`select ${[sql.ident('x')]}::text[]`, paramInvalid)
})

test('ident() names exactly the object it was given (the server sees the same name), or is PARAM_INVALID', LIMIT, async () => {
  await fc.assert(
    fc.asyncProperty(okIdent, async (name) => {
      const rows = await sql`select 1 as ${sql.ident(name)}`
      assert.deepEqual(rows.fields.map((f) => f.name), [name])
    }),
    params(),
  )
  const refused = [[], [''], ['a\0b'], ['x\uD800'], ['é'.repeat(32)], [1], [null], [['a']], [Object('a')], ['a', '']]
  for (const names of refused) assert.throws(() => sql.ident(...names), paramInvalid, JSON.stringify(names))
  // 63 bytes is the limit Postgres keeps; one more would be truncated (and could name another table).
  assert.deepEqual([...(await sql`select 1 as ${sql.ident('é'.repeat(31) + 'x')}`)], [{ ['é'.repeat(31) + 'x']: 1 }])
})

test('inList([], type): x IN it is false and x NOT IN it is true for every row, for ints, text, uuid and a parameter', LIMIT, async () => {
  const sets = {
    int4: [1, 2, null],
    int8: ['1', '9007199254740993', null],
    numeric: ['1.5', '2', null],
    text: ['a', "b'c", null],
    uuid: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', null],
    timestamptz: [new Date(0), null],
  }
  for (const [type, values] of Object.entries(sets)) {
    const rows = (r) => [...r].map((x) => x.x)
    const source = sql.fragment`unnest(${values}::${sql.ident(type)}[]) as u(x)`
    assert.deepEqual(rows(await sql`select x from ${source} where x in ${sql.inList([], type)}`), [], type)
    const all = rows(await sql`select x from ${source} where x not in ${sql.inList([], type)}`)
    assert.equal(all.length, values.length, `${type}: NOT IN an empty list keeps every row, NULL included`)
    // Typed, non-empty: the usual SQL meaning (NULL is neither in nor not in).
    const first = rows(await sql`select x from ${source} where x in ${sql.inList(values.slice(0, 1), type)}`)
    assert.equal(first.length, 1, type)
    assert.equal((await sql`select x from ${source} where x not in ${sql.inList(values.slice(0, 1), type)}`).length, values.length - 2, type)
  }
  // The left side a parameter: the same, and its type resolves from the list's (int4: 'x' is
  // refused as an integer).
  const empty = sql.compile(sql.inList([], 'int4')).text
  assert.deepEqual((await pool.query(`select 1 as one where $1 in ${empty}`, [5])).rows, [])
  assert.deepEqual((await pool.query(`select 1 as one where $1 not in ${empty}`, [5])).rows, [{ one: 1 }])
  await assert.rejects(pool.query(`select 1 as one where $1 not in ${empty}`, ['x']), (e) => e.code === '22P02')
  // Without a type there is no empty list that works for every column type: refused, not guessed.
  assert.throws(() => sql.inList([]), paramInvalid)
  for (const type of ['int4; drop table t', 'int4)', 'int4 union select 1', '', ' int4', 'int4--', '"int4"', 5, null]) {
    assert.throws(() => sql.inList([1], type), paramInvalid, String(type))
  }
  assert.throws(() => sql.inList('abc'), paramInvalid)
  assert.throws(() => sql.inList(new Set([1])), paramInvalid)
  // The list is copied: changing the array afterwards changes nothing.
  const ids = [1, 2]
  const list = sql.inList(ids)
  ids.push(3)
  assert.deepEqual(sql.compile`${list}`, { text: '($1, $2)', values: [1, 2] })
  assert.ok(Object.isFrozen(list) && Object.isFrozen(list.values) && Object.isFrozen(list.strings))
})
