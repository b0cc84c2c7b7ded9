'use strict'
// Issue 4, bad input from a careless or hostile caller: malformed connection strings, unknown
// options, wrong types for every option, parameters that cannot be converted, SQL with the
// wrong parameter count, queries after end(). Each gets a clear error with a stable code
// (CONFIG_INVALID at createPool(), a rejected promise from query()), the process never crashes,
// and a good pool keeps serving: a good query runs after every bad one.

const test = require('node:test')
const assert = require('node:assert/strict')
const onepool = require('../..')
const { OPTIONS } = require('../../lib/options')
const { TEST_URL, countConnections, uniqueName } = require('../helpers/db')
const { recordProcessErrors, poll } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const { createPool, closeAll, isOnepoolError } = onepool
const SQLSTATE = /^[0-9A-Z]{5}$/

let good
let rec
test.before(() => {
  rec = recordProcessErrors()
})
// A fresh good pool per test, so a connection leaked by one test does not fail the next ones.
test.beforeEach(() => {
  good = createPool({ connectionString: TEST_URL, name: uniqueName('good'), applicationName: uniqueName('good'), max: 2 })
})
test.afterEach(async () => {
  await good.end({ timeoutMs: 1000 })
})
test.after(async () => {
  await closeAll({ timeoutMs: 5000 })
  const { unhandled, uncaught } = rec.stop()
  assert.deepEqual(unhandled, [], 'unhandled rejections')
  assert.deepEqual(uncaught, [], 'uncaught exceptions')
})

/** The good pool still answers, with nothing left checked out or waiting. */
async function stillServing(label) {
  const r = await good.query('select $1::text as v', [label])
  assert.equal(r.rows[0].v, label)
  const s = good.stats()
  assert.equal(s.inUse, 0, `${label}: inUse ${s.inUse} with nothing running (a connection did not come back to the pool)`)
  assert.equal(s.waiting, 0, `${label}: waiters left`)
}

/** createPool(input) throws CONFIG_INVALID synchronously, an OnepoolError; returns it. */
function configInvalid(input, label) {
  let pool
  try {
    pool = createPool(input)
  } catch (e) {
    assert.ok(isOnepoolError(e), `${label}: threw a non-onepool error: ${e && e.name}: ${e && e.message}`)
    assert.equal(e.code, 'CONFIG_INVALID', `${label}: ${e.code} ${e.message}`)
    assert.equal(typeof e.message, 'string')
    assert.ok(e.message.length > 10, `${label}: message too short: ${e.message}`)
    return e
  }
  pool.end().catch(() => {})
  assert.fail(`${label}: createPool() accepted it (pool ${pool.stats().name})`)
}

/** query() returns a rejected promise (never throws synchronously) with an OnepoolError. */
async function rejects(fn, label) {
  let p
  try {
    p = fn()
  } catch (e) {
    assert.fail(`${label}: threw synchronously instead of rejecting: ${e && e.message}`)
  }
  assert.ok(p && typeof p.then === 'function', `${label}: did not return a promise`)
  try {
    await p
  } catch (e) {
    return e
  }
  assert.fail(`${label}: resolved`)
}

test('malformed connection strings: CONFIG_INVALID, never the password in the message', LIMIT, async () => {
  const secret = 'hunter2-Secret'
  const bad = [
    '',
    '   ',
    'not a url',
    'localhost:5432',
    `mysql://u:${secret}@h/d`,
    `http://u:${secret}@h/d`,
    `postgres://u:${secret}@h:99999/d`,
    `postgres://u:${secret}@h:-1/d`,
    `postgres://u:${secret}@h:port/d`,
    `postgres://u:${secret}@[::1/d`,
    `postgres://u:${secret}@h h/d`,
    `postgres://u:${secret}@h/d?sslmode=bogus`,
    `postgres://u:${secret}@h/d?ssl=maybe`,
    `postgres://u:${secret}@h/d?connection_limit=-1`,
    `postgres://u:${secret}@h/d?connection_limit=lots`,
    `postgres://u:${secret}@h/d?connect_timeout=NaN`,
    `postgres://u:${secret}@h/d?pool_timeout=-5`,
    `postgres://u:${secret}@h/d?pgbouncer=perhaps`,
    `postgres://u:${secret}@h/d?port=abc`,
    `postgres://u:${secret}@h/d?connection_limit=0`,
    // The password as a query parameter, with an error elsewhere in the string.
    `postgres://h/d?password=${secret}&port=abc`,
    `postgres://h/d?password=${secret}&sslmode=bogus`,
    `postgres://u@h:99999/d?password=${secret}`,
    `postgres://[::1/d?password=${secret}`,
    // A slash missing or misplaced: not a URL with a host, must not become a database name.
    `postgres:/u:${secret}@h/d`,
    `postgres:u:${secret}@h/d`,
    `postgres//u:${secret}@h/d`,
    `://u:${secret}@h/d`,
  ]
  const problems = []
  for (const s of bad) {
    for (const input of [s, { connectionString: s, name: uniqueName('cs') }]) {
      let pool
      try {
        pool = createPool(input)
      } catch (e) {
        if (!isOnepoolError(e) || e.code !== 'CONFIG_INVALID') problems.push(`${s} → ${e.name} ${e.code}: ${e.message}`)
        else if (e.message.includes(secret) || String(e.stack).includes(secret)) problems.push(`${s} → password in the message: ${e.message}`)
        continue
      }
      const target = pool.stats().target
      problems.push(`${s} → accepted (target ${target})${target.includes(secret) ? ': password in stats().target' : ''}`)
      await pool.end()
    }
  }
  assert.deepEqual(problems, [], 'malformed connection strings')
  await stillServing('connection strings')
})

test('not an options object: CONFIG_INVALID', LIMIT, async () => {
  for (const input of [42, true, [], [TEST_URL], () => TEST_URL, Symbol('x'), 10n, new Date()]) {
    if (input instanceof Date) {
      // A Date is an object with no own options: accepted as {} (defaults). Must not crash.
      const p = createPool(input)
      await p.end()
      continue
    }
    configInvalid(input, String(typeof input === 'symbol' ? 'symbol' : input))
  }
  await stillServing('not an object')
})

test('unknown options: CONFIG_INVALID naming the option and the closest known one', LIMIT, async () => {
  const cases = [
    ['maxConnections', null],
    ['connectionTimeout', null],
    ['idleTimeout', 'idleTimeoutMs'],
    ['conectionString', 'connectionString'],
    ['applicationname', 'applicationName'],
    ['MAX', 'max'],
    ['__proto__', null],
    // Names every object inherits (Object.prototype): must not be mistaken for known options.
    ['constructor', null],
    ['toString', null],
    ['hasOwnProperty', null],
    ['valueOf', null],
    ['', null],
  ]
  const wrong = []
  for (const [key, hint] of cases) {
    const input = key === '__proto__' ? JSON.parse('{"__proto__": 5}') : { connectionString: TEST_URL, [key]: 5 }
    try {
      const e = configInvalid(input, `option ${JSON.stringify(key)}`)
      assert.match(e.message, /unknown option/)
      assert.ok(e.message.includes(JSON.stringify(key)), `${key}: ${e.message}`)
      if (hint) assert.ok(e.message.includes(`"${hint}"`), `no hint "${hint}" for ${key}: ${e.message}`)
    } catch (e) {
      wrong.push(e.message)
    }
  }
  assert.deepEqual(wrong, [])
  configInvalid({ idleTimeoutMs: 1000, idleTimeoutMillis: 2000 }, 'conflicting aliases')
  await stillServing('unknown options')
})

// What each option accepts, written independently of lib/options.js; the test fails if an
// option is added without an entry here.
const stringOpt = (v) => typeof v === 'string'
const boolOpt = (v) => typeof v === 'boolean'
const msOpt = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0
const onePortOpt = (v) => (Number.isInteger(v) && v >= 1 && v <= 65535) || (typeof v === 'string' && /^\d+$/.test(v) && +v >= 1 && +v <= 65535)
const SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']
const ACCEPTS = {
  name: stringOpt,
  connectionString: stringOpt,
  host: (v) => stringOpt(v) || (Array.isArray(v) && v.length > 0 && v.every((h) => typeof h === 'string' && h !== '' && !h.includes(','))),
  port: (v) =>
    onePortOpt(v) ||
    (Array.isArray(v) && v.length > 0 && v.every(onePortOpt)) ||
    (typeof v === 'string' && v.includes(',') && v.split(',').every((p) => p.trim() === '' || onePortOpt(p.trim()))),
  user: stringOpt,
  password: (v) => stringOpt(v) || typeof v === 'function',
  database: stringOpt,
  applicationName: stringOpt,
  application_name: stringOpt,
  ssl: (v) => boolOpt(v) || stringOpt(v) || (typeof v === 'object' && v !== null),
  sslmode: stringOpt,
  channelBinding: (v) => ['disable', 'prefer', 'require'].includes(v),
  channel_binding: (v) => ['disable', 'prefer', 'require'].includes(v),
  sslNegotiation: (v) => ['postgres', 'direct'].includes(v),
  sslnegotiation: (v) => ['postgres', 'direct'].includes(v),
  max: (v) => Number.isInteger(v) && v >= 1,
  acquireTimeoutMs: msOpt,
  connectTimeoutMs: msOpt,
  connectionTimeoutMillis: msOpt,
  idleTimeoutMs: msOpt,
  idleTimeoutMillis: msOpt,
  maxLifetimeSec: msOpt,
  maxLifetimeSeconds: msOpt,
  statementTimeoutMs: msOpt,
  statement_timeout: msOpt,
  searchPath: stringOpt,
  pgbouncer: boolOpt,
  listenUrl: stringOpt,
  directUrl: stringOpt,
  keepAlive: boolOpt,
  types: (v) => typeof v === 'object' && v !== null && typeof v.getTypeParser === 'function',
  leakDetectionMs: msOpt,
  onLeak: (v) => typeof v === 'function',
  statementCacheSize: (v) => Number.isInteger(v) && v >= 0,
  maxMessageBytes: (v) => Number.isInteger(v) && v >= 1024,
  machineMax: (v) => Number.isInteger(v) && v >= 0,
  min: (v) => Number.isInteger(v) && v >= 0,
  allowExitOnIdle: boolOpt,
  poolSize: (v) => Number.isInteger(v) && v >= 1,
  queryTimeoutMs: msOpt,
  query_timeout: msOpt,
  lock_timeout: msOpt,
  idle_in_transaction_session_timeout: msOpt,
  options: stringOpt,
  fallback_application_name: stringOpt,
  client_encoding: (v) => typeof v === 'string' && /^utf-?8$/i.test(v),
  maxUses: (v) => v === Infinity || (Number.isInteger(v) && v >= 1),
  onConnect: (v) => typeof v === 'function',
  verify: (v) => typeof v === 'function',
  log: (v) => typeof v === 'function',
  pipeline: boolOpt,
  targetSessionAttrs: (v) => SESSION_ATTRS.includes(v),
  target_session_attrs: (v) => SESSION_ATTRS.includes(v),
  loadBalanceHosts: (v) => v === 'disable' || v === 'random',
  load_balance_hosts: (v) => v === 'disable' || v === 'random',
  replicas: (v) =>
    Array.isArray(v) &&
    v.every((r) => (typeof r === 'string' && r.trim() !== '') || (r !== null && typeof r === 'object' && typeof r.host === 'string' && (r.port === undefined || onePortOpt(r.port)))),
  binary: (v) => v === false,
  parseInputDatesAsUTC: (v) => v === false,
  enableChannelBinding: boolOpt,
  // Accepted whatever they are, and ignored with a warning.
  Client: () => true,
  Promise: () => true,
  keepAliveInitialDelayMillis: msOpt,
}

const WRONG = [
  ['a symbol', Symbol('s')],
  ['a function', () => 1],
  ['an object', {}],
  ['an array', []],
  ['NaN', NaN],
  ['-1', -1],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['1.5', 1.5],
  ['0', 0],
  ['2^53', 2 ** 53],
  ['the empty string', ''],
  ['a numeric string', '42'],
  ['a word', 'yes'],
  ['true', true],
  ['false', false],
  ['null', null],
  ['a bigint', 10n],
  ['a Date', new Date()],
  ['a boxed string', new String('x')], // eslint-disable-line no-new-wrappers
  ['a boxed number', new Number(5)], // eslint-disable-line no-new-wrappers
  ['an object with toString', { toString: () => 'postgres://u:p@h/d' }],
]

test('wrong types for every option: CONFIG_INVALID naming the option, synchronously', LIMIT, async () => {
  let rejected = 0
  let accepted = 0
  for (const key of Object.keys(ACCEPTS).filter((k) => k in OPTIONS)) {
    for (const [what, value] of WRONG) {
      const input = { connectionString: TEST_URL, name: uniqueName('opt'), [key]: value }
      const label = `${key}: ${what}`
      if (!ACCEPTS[key](value)) {
        const e = configInvalid(input, label)
        assert.ok(e.message.includes(`"${key}"`), `${label}: the message does not name the option: ${e.message}`)
        rejected++
      } else {
        // A value of the right type may still be refused by the native validation (empty
        // name, sslmode needing TLS, ...), but only ever with CONFIG_INVALID.
        try {
          const p = createPool(input)
          await p.end()
          accepted++
        } catch (e) {
          assert.ok(isOnepoolError(e), `${label}: ${e && e.stack}`)
          assert.equal(e.code, 'CONFIG_INVALID', `${label}: ${e.message}`)
          rejected++
        }
      }
    }
  }
  assert.ok(rejected > 400, `only ${rejected} rejections`)
  await stillServing(`option types (${rejected} rejected, ${accepted} accepted)`)
  // Last, so that the checks above still run: every option has an entry in ACCEPTS.
  assert.deepEqual(Object.keys(OPTIONS).sort(), Object.keys(ACCEPTS).sort(), 'options changed: update ACCEPTS')
})

test('hostile option objects (throwing getters, proxies) throw synchronously without crashing', LIMIT, async () => {
  const hostile = [
    {
      get max() {
        throw new Error('getter boom')
      },
    },
    new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('ownKeys boom')
        },
      },
    ),
    Object.create({ max: 'inherited, ignored' }),
  ]
  for (const input of hostile) {
    try {
      const p = createPool(input)
      await p.end()
    } catch (e) {
      assert.ok(e instanceof Error)
    }
  }
  await stillServing('hostile options')
})

test('options that pass the type check but can never connect are refused by createPool(), naming the option', LIMIT, async () => {
  // NUL bytes cannot go into the startup packet, and a statement_timeout beyond the server's int
  // range is refused by the server: createPool() says so (CONFIG_INVALID) instead of letting
  // every query fail with CONNECT_FAILED.
  const u = new URL(TEST_URL)
  const base = { host: u.hostname, port: Number(u.port), user: 'postgres', password: decodeURIComponent(u.password), database: 'postgres' }
  const cases = [
    ['applicationName', { applicationName: 'a\0b' }],
    ['user', { user: 'post\0gres' }],
    ['database', { database: 'post\0gres' }],
    ['searchPath', { searchPath: 'a\0b' }],
    ['user', { connectionString: `postgres://post%00gres@${u.host}/postgres` }],
    ['statementTimeoutMs', { statementTimeoutMs: 1e12 }],
    ['statementTimeoutMs', { statementTimeoutMs: 2 ** 31 }],
  ]
  for (const [option, extra] of cases) {
    assert.throws(
      () => createPool({ ...base, name: uniqueName('never'), ...extra }),
      (e) => e.code === 'CONFIG_INVALID' && e.message.includes(option),
      `${option}: ${JSON.stringify(extra)}`,
    )
  }
  // The largest timeout the server takes is accepted, and it works.
  const ok = createPool({ ...base, name: uniqueName('maxtimeout'), statementTimeoutMs: 2 ** 31 - 1 })
  assert.equal((await ok.query("select current_setting('statement_timeout') as st")).rows[0].st, '2147483647ms')
  await ok.end()
  // The options travel in the startup packet's `options` field: a search path cannot smuggle
  // in other settings.
  const pool = createPool({ ...base, name: uniqueName('inject'), searchPath: 'public -c statement_timeout=1' })
  try {
    const r = await pool.query("select current_setting('statement_timeout') as st").then(
      (res) => res.rows[0].st,
      (e) => e.code,
    )
    assert.notEqual(r, '1ms', 'searchPath injected a setting')
  } finally {
    await pool.end()
  }
  await stillServing('never-connecting options')
})

test('parameters that cannot be converted: PARAM_INVALID (a rejected promise naming the parameter); the pool keeps serving', LIMIT, async () => {
  const circular = { a: 1 }
  circular.self = circular
  const circularArray = [1]
  circularArray.push(circularArray)
  const selfPg = {
    toPostgres() {
      return this
    },
  }
  const cases = [
    ['a symbol', [Symbol('s')]],
    ['a function', [() => 1]],
    ['a class', [class {}]],
    ['a circular object', [circular]],
    ['a circular array', [circularArray]],
    ['a circular object inside an array', [[circular]]],
    ['a toPostgres() returning itself', [selfPg]],
    ['an invalid Date', [new Date('not a date')]],
    ['an invalid Date in an array', [[new Date(NaN)]]],
    ['a symbol in an array', [[1, Symbol('s')]]],
    ['a toJSON that throws', [{ toJSON: () => { throw new Error('nope') } }]],
    ['a getter that throws', [{ get x() { throw new Error('nope') } }]],
    ['a BigInt inside an object', [{ n: 1n }]],
    ['a string with NUL', ['a\0b']],
    ['a NUL in an array element', [['a\0b']]],
    ['too many parameters (65536)', new Array(65536).fill(1)],
    ['the second of two', [1, Symbol('two')]],
  ]
  for (const [label, values] of cases) {
    const e = await rejects(() => good.query('select $1::text as v', values), label)
    assert.ok(isOnepoolError(e), `${label}: ${e && e.stack}`)
    assert.equal(e.code, 'PARAM_INVALID', `${label}: ${e.code} ${e.message}`)
    if (label === 'the second of two') assert.match(e.message, /\$2/)
    await stillServing(label)
  }
  // The client form and the callback form report the same.
  const client = await good.connect()
  try {
    const e = await rejects(() => client.query('select $1::text', [Symbol('s')]), 'client')
    assert.equal(e.code, 'PARAM_INVALID')
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1)
  } finally {
    await client.release()
  }
  const viaCallback = await new Promise((resolve) => good.query('select $1::text', [() => 1], (err, res) => resolve({ err, res })))
  assert.equal(viaCallback.err.code, 'PARAM_INVALID')
  await stillServing('client and callback')
})

test('user code that throws while converting (toPostgres, proxy traps) rejects the query with that error', LIMIT, async () => {
  const boom = new Error('toPostgres boom')
  const throwing = [
    ['toPostgres throws', [{ toPostgres: () => { throw boom } }]],
    ['a proxy whose traps throw', [new Proxy({}, { getPrototypeOf() { throw boom }, get() { throw boom }, ownKeys() { throw boom } })]],
  ]
  for (const [label, values] of throwing) {
    const e = await rejects(() => good.query('select $1::text', values), label)
    assert.ok(e === boom || (isOnepoolError(e) && e.code === 'PARAM_INVALID'), `${label}: ${e && e.message}`)
    await stillServing(label)
  }
})

test('values the server refuses come back as its SQLSTATE; NaN, Infinity, huge BigInt, bad binary data', LIMIT, async () => {
  const r = await good.query('select $1::float8 as a, $2::float8 as b, $3::float8 as c', [NaN, Infinity, -Infinity])
  assert.ok(Number.isNaN(r.rows[0].a))
  assert.equal(r.rows[0].b, Infinity)
  assert.equal(r.rows[0].c, -Infinity)
  const cases = [
    ['NaN as int', 'select $1::int', [NaN], '22P02'],
    ['Infinity as int', 'select $1::int', [Infinity], '22P02'],
    ['2^70 as int8', 'select $1::int8', [2n ** 70n], '22003'],
    ['a 2-byte Buffer as int4', 'select $1::int4', [Buffer.from([1, 2])], null],
    ['an object as int', 'select $1::int', [{ a: 1 }], '22P02'],
    ['an array as int', 'select $1::int', [[1, 2]], '22P02'],
    ['a ragged array', 'select $1::int[]', [[[1], [1, 2]]], null],
  ]
  for (const [label, text, values, code] of cases) {
    const e = await rejects(() => good.query(text, values), label)
    assert.ok(isOnepoolError(e), label)
    assert.match(e.code, SQLSTATE, `${label}: ${e.code} ${e.message}`)
    if (code) assert.equal(e.code, code, `${label}: ${e.message}`)
    assert.equal(e.severity, 'ERROR')
    await stillServing(label)
  }
})

test('huge values: a 50 MB string parameter, a 50 MB JSON object, a 50 MB query text', LIMIT, async () => {
  const big = 'é'.repeat(25 * 1024 * 1024) // 50 MB of UTF-8
  let r = await good.query('select length($1::text) as n, octet_length($1::text) as b', [big])
  assert.equal(r.rows[0].n, big.length)
  assert.equal(r.rows[0].b, 50 * 1024 * 1024)
  r = await good.query("select length($1::jsonb ->> 'k') as n", [{ k: big }])
  assert.equal(r.rows[0].n, big.length)
  r = await good.query(`select 1 as one -- ${'x'.repeat(50 * 1024 * 1024)}`)
  assert.equal(r.rows[0].one, 1)
  r = await good.query('select $1::text as v', [big])
  assert.equal(r.rows[0].v.length, big.length)
  assert.ok(r.rows[0].v === big)
  await stillServing('huge values')
})

test('SQL with the wrong parameter count: a server SQLSTATE, the connection stays usable', LIMIT, async () => {
  const cases = [
    ['too few', 'select $1::int, $2::int', [1], '08P01'],
    ['none for a parameter', 'select $1::int', [], '42P02'], // no values: a simple query, as with pg
    ['too many', 'select $1::int', [1, 2, 3], null],
    ['values for no parameter', 'select 1', [1], null],
    ['a gap', 'select $2::int', [1, 2], null],
    ['several statements with values', 'select $1::int; select 2', [1], '42601'],
    ['$0', 'select $0::int', [1], null],
    ['65535 values', 'select 1', new Array(65535).fill(1), null],
  ]
  for (const [label, text, values, code] of cases) {
    const p = good.query(text, values)
    const out = await p.then(
      (res) => ({ ok: true, res }),
      (e) => ({ ok: false, e }),
    )
    if (out.ok) {
      // Postgres accepts a few of these (an unused $2 is allowed when its type is known).
      await stillServing(label)
      continue
    }
    assert.ok(isOnepoolError(out.e), `${label}: ${out.e && out.e.stack}`)
    assert.match(out.e.code, SQLSTATE, `${label}: ${out.e.code} ${out.e.message}`)
    if (code) assert.equal(out.e.code, code, `${label}: ${out.e.message}`)
    await stillServing(label)
  }
  // The same on a checked-out client: the session survives the error.
  const client = await good.connect()
  try {
    const e = await rejects(() => client.query('select $1::int, $2::int', [1]), 'client too few')
    assert.equal(e.code, '08P01')
    assert.equal((await client.query('select $1::int as n', [4])).rows[0].n, 4)
  } finally {
    await client.release()
  }
  await stillServing('parameter counts')
})

test('malformed query calls: PARAM_INVALID, as a rejected promise', LIMIT, async () => {
  const calls = [
    ['no arguments', () => good.query()],
    ['null', () => good.query(null)],
    ['a number', () => good.query(42)],
    ['an object without text', () => good.query({})],
    ['text with NUL', () => good.query('select 1\0')],
    ['values as a string', () => good.query('select $1::text', 'abc')],
    ['values as an array-like', () => good.query('select $1::text', { 0: 'a', length: 1 })],
    ['rowMode other than array', () => good.query({ text: 'select 1', rowMode: 'object' })],
    ['signal that is not an AbortSignal', () => good.query('select 1', [], { signal: {} })],
    ['signal as a string', () => good.query({ text: 'select 1', signal: 'abort' })],
    ['transaction without a callback', () => good.transaction('select 1')],
    ['transaction with a bogus isolation level', () => good.transaction(async () => 1, { isolationLevel: 'chaotic' })],
  ]
  for (const [label, call] of calls) {
    const e = await rejects(call, label)
    assert.ok(isOnepoolError(e), `${label}: ${e && e.stack}`)
    assert.equal(e.code, 'PARAM_INVALID', `${label}: ${e.code} ${e.message}`)
    await stillServing(label)
  }
  // An already aborted signal: ABORTED, nothing runs.
  const ac = new AbortController()
  ac.abort()
  const e = await rejects(() => good.query('select pg_sleep(10)', [], { signal: ac.signal }), 'pre-aborted')
  assert.equal(e.code, 'ABORTED')
  await stillServing('malformed calls')
})

test('misuse of clients: CLIENT_RELEASED for use after release and double release', LIMIT, async () => {
  const client = await good.connect()
  await client.release()
  const e = await rejects(() => client.query('select 1'), 'query after release')
  assert.equal(e.code, 'CLIENT_RELEASED')
  assert.throws(
    () => client.release(),
    (err) => isOnepoolError(err) && err.code === 'CLIENT_RELEASED',
  )
  await stillServing('client misuse')
})

test('queries after end(): POOL_CLOSED for query, connect and transaction; a second end() rejects with POOL_CLOSED, as in pg', LIMIT, async () => {
  const app = uniqueName('ended')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 2 })
  await pool.query('select 1')
  const held = await pool.connect()
  const ending = pool.end({ timeoutMs: 2000 })
  // Waiting and new callers fail at once while end() waits for the held client.
  for (const [label, call] of [
    ['query', () => pool.query('select 1')],
    ['connect', () => pool.connect()],
    ['transaction', () => pool.transaction(async () => 1)],
  ]) {
    const e = await rejects(call, `${label} after end()`)
    assert.equal(e.code, 'POOL_CLOSED', `${label}: ${e.code} ${e.message}`)
  }
  assert.equal((await held.query('select 1 as one')).rows[0].one, 1, 'a client held across end() still works until released')
  await held.release()
  await ending
  assert.equal((await rejects(() => pool.end(), 'second end()')).code, 'POOL_CLOSED')
  assert.equal(pool.ended, true)
  const e = await rejects(() => pool.query('select 1'), 'after end resolved')
  assert.equal(e.code, 'POOL_CLOSED')
  assert.equal(await poll(async () => (await countConnections(app)) === 0), true)
  await stillServing('after end')
})
