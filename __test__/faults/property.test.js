'use strict'
// Issue 4, property-based (fast-check): parameter conversion is node-postgres's — random
// JSON-able values, unicode strings, arrays, dates, numbers and buffers round-trip through the
// server exactly as they do through pg (same value back, or the same SQLSTATE) — and
// connection-string parsing never crashes: random URL parts give a pool or CONFIG_INVALID,
// never another error, and never the password in any message.

const test = require('node:test')
const assert = require('node:assert/strict')
const fc = require('fast-check')
const pg = require('pg')
const { prepareValue } = require('pg/lib/utils')
const { createPool, closeAll, isOnepoolError } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')
const { recordProcessErrors } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const RUNS = Number(process.env.ONEPOOL_PROPERTY_RUNS || 150)
const SEED = process.env.ONEPOOL_PROPERTY_SEED === undefined ? undefined : Number(process.env.ONEPOOL_PROPERTY_SEED)
const params = (extra = {}) => ({ numRuns: RUNS, seed: SEED, endOnFailure: false, ...extra })

let pool
let client
let rec
test.before(async () => {
  rec = recordProcessErrors()
  pool = createPool({ connectionString: TEST_URL, name: uniqueName('prop'), applicationName: uniqueName('prop'), max: 3 })
  client = new pg.Client({ connectionString: TEST_URL, application_name: 'onepool-test-pg' })
  await client.connect()
})
test.after(async () => {
  await client.end()
  await closeAll({ timeoutMs: 5000 })
  const { unhandled, uncaught } = rec.stop()
  assert.deepEqual(unhandled, [])
  assert.deepEqual(uncaught, [])
})

const outcome = (p) =>
  p.then(
    (r) => ({ ok: true, rows: r.rows }),
    (e) => ({ ok: false, code: e.code, message: e.message, onepool: isOnepoolError(e) }),
  )

/** Does what pg sends for `value` hold a NUL character (text the server can never accept)? */
function sendsNul(value) {
  try {
    const v = prepareValue(value)
    return typeof v === 'string' && v.includes('\0')
  } catch {
    return false
  }
}

/**
 * Runs `text` with [value] through onepool and through pg and compares: the same rows (deep,
 * with pg's own type parsers on both sides), or both failing with the same SQLSTATE. The one
 * documented divergence: a NUL in a text parameter is PARAM_INVALID in onepool before anything
 * is sent, where pg lets the server refuse it (22021).
 */
async function sameAsPg(text, value) {
  const [mine, theirs] = await Promise.all([outcome(pool.query(text, [value])), outcome(client.query(text, [value]))])
  if (sendsNul(value)) {
    assert.equal(mine.ok, false, 'a NUL in a text parameter was accepted')
    assert.equal(mine.code, 'PARAM_INVALID')
    return
  }
  if (theirs.ok) {
    assert.ok(mine.ok, `pg succeeded, onepool failed with ${mine.code}: ${mine.message}`)
    assert.deepStrictEqual(mine.rows, theirs.rows)
  } else {
    assert.equal(mine.ok, false, `pg failed with ${theirs.code} (${theirs.message}), onepool succeeded: ${JSON.stringify(mine.rows)}`)
    assert.ok(mine.onepool)
    assert.equal(mine.code, theirs.code, `pg: ${theirs.message} / onepool: ${mine.message}`)
  }
}

// Strings that stress the text and array-literal encodings: quotes, backslashes, braces,
// commas, NULL, whitespace, NUL, lone surrogates, astral characters and combining marks.
const nasty = fc.constantFrom('"', '\\', '{', '}', ',', ' ', 'NULL', 'null', "'", '\n', '\t', '\0', '\uD800', '\uDFFF', '😀', 'é', 'e\u0301', '\u202E', '\uFEFF', '$1')
const anyString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: nasty, maxLength: 12 }),
  fc.string({ unit: fc.oneof(nasty, fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })), maxLength: 20 }),
)
const scalar = fc.oneof(anyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null))

test('JSON-able values as $1::text and $1::jsonb: the same as node-postgres', LIMIT, async () => {
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.dictionary(anyString, fc.oneof(scalar, fc.array(scalar, { maxLength: 4 })), { maxKeys: 5 }),
  )
  await fc.assert(
    fc.asyncProperty(value, async (v) => {
      await sameAsPg('select $1::text as t', v)
      await sameAsPg('select $1::jsonb as j', v)
    }),
    params(),
  )
})

test('unicode strings as $1::text: the same string back (as node-postgres)', LIMIT, async () => {
  await fc.assert(
    fc.asyncProperty(anyString, async (s) => {
      await sameAsPg('select $1::text as t, length($1::text) as n, octet_length($1::text) as b', s)
      if (!s.includes('\0') && s.isWellFormed()) {
        const r = await pool.query('select $1::text as t', [s])
        assert.equal(r.rows[0].t, s)
      }
    }),
    params({ numRuns: RUNS * 2 }),
  )
})

test('arrays (nested, with nulls, quotes and unicode) as $1::text and $1::text[]: the same as node-postgres', LIMIT, async () => {
  const flat = fc.array(fc.oneof(anyString, fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined)), { maxLength: 8 })
  const nested = fc.array(fc.array(anyString, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 4 })
  const ragged = fc.array(fc.array(fc.integer(), { maxLength: 3 }), { maxLength: 3 })
  await fc.assert(
    fc.asyncProperty(fc.oneof(flat, nested, ragged), async (a) => {
      await sameAsPg('select $1::text as t', a)
      await sameAsPg('select $1::text[] as a', a)
    }),
    params(),
  )
})

test('numbers, bigints, dates and buffers: the same as node-postgres', LIMIT, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.double().map((d) => ['select $1::float8 as v', d]),
        fc.integer().map((n) => ['select $1::int4 as v', n]),
        fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => ['select $1::int8 as v', n]),
        fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map((n) => ['select $1::numeric::text as v', n]),
        fc.date({ noInvalidDate: true }).map((d) => ['select $1::timestamptz as v', d]),
        fc.date({ noInvalidDate: true }).map((d) => ['select $1::timestamptz::text as v', d]),
        fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => ['select $1::date::text as v', d]),
        fc.uint8Array({ maxLength: 64 }).map((b) => ['select $1::bytea as v', Buffer.from(b)]),
        fc.uint8Array({ maxLength: 64 }).map((b) => ['select $1::text as v', Buffer.from(b)]),
      ),
      async ([text, v]) => {
        await sameAsPg(text, v)
      },
    ),
    params({ numRuns: RUNS * 2 }),
  )
})

// ---- connection strings ----

const SECRET_CORE = 'Zq7secretXk'

const urlPart = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: fc.constantFrom('@', ':', '/', '?', '#', '%', '[', ']', '&', '=', ' ', '%2F', '%40', '%zz', '\\', '\0', 'a', '1'), maxLength: 8 }),
)
const encodeMaybe = (s, how) => (how === 'raw' ? s : how === 'component' ? encodeURIComponent(s) : encodeURI(s))
const anyEncoding = fc.constantFrom('raw', 'uri', 'component')

/** Builds a connection string from random parts; the password always contains SECRET_CORE. */
function connectionStrings({ schemes, slashes, pwIn, encoding = fc.constant('component') }) {
  return fc
    .record({
      scheme: schemes,
      slashes,
      user: fc.option(urlPart),
      pwPrefix: urlPart,
      pwSuffix: urlPart,
      pwIn,
      pwEncoding: encoding,
      host: fc.oneof(fc.constantFrom('127.0.0.1', 'localhost', '[::1]', '[::1', '%2Ftmp', 'db.example.com', ''), urlPart),
      port: fc.option(fc.oneof(fc.integer({ min: -10, max: 70000 }).map(String), urlPart)),
      database: fc.option(urlPart),
      query: fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('sslmode', 'ssl', 'port', 'host', 'user', 'dbname', 'application_name', 'connect_timeout', 'connection_limit', 'pool_timeout', 'schema', 'pgbouncer', 'sslrootcert', 'options'),
            urlPart,
          ),
          urlPart,
        ),
        { maxLength: 4 },
      ),
      partEncoding: encoding,
    })
    .map((r) => {
      const password = `${r.pwPrefix}${SECRET_CORE}${r.pwSuffix}`
      const pw = encodeMaybe(password, r.pwEncoding)
      let s = `${r.scheme}${r.slashes}`
      const inUserinfo = r.pwIn === 'userinfo' || r.pwIn === 'both'
      if (r.user !== null || inUserinfo) s += encodeMaybe(r.user || '', r.partEncoding) + (inUserinfo ? `:${pw}` : '') + '@'
      s += r.host
      if (r.port !== null) s += `:${r.port}`
      if (r.database !== null) s += `/${encodeMaybe(r.database, r.partEncoding)}`
      const q = r.query.map(([k, v]) => `${encodeMaybe(k, r.partEncoding)}=${encodeMaybe(v, r.partEncoding)}`)
      if (r.pwIn === 'query' || r.pwIn === 'both') q.splice(Math.min(1, q.length), 0, `password=${pw}`)
      if (q.length) s += `?${q.join('&')}`
      return s
    })
}

const postgresScheme = fc.constantFrom('postgres', 'postgresql')
const anyScheme = fc.oneof(fc.constantFrom('postgres', 'postgresql', 'mysql', 'http', 'Postgres', ''), fc.string({ unit: 'grapheme-ascii', maxLength: 6 }))
const FAMILIES = {
  // Every part percent-encoded: only the values are random.
  'postgres:// with the password in the user info': { schemes: postgresScheme, slashes: fc.constant('://'), pwIn: fc.constant('userinfo') },
  'postgres:// with the password as a ?password= parameter': { schemes: postgresScheme, slashes: fc.constant('://'), pwIn: fc.constantFrom('query', 'both') },
  'typos in the scheme and its slashes': { schemes: anyScheme, slashes: fc.constantFrom('://', ':/', ':', '//', ':///', ''), pwIn: fc.constantFrom('userinfo', 'query', 'both', 'none') },
  // The classic mistake: '/', '#', '?', '@' or '%' left unencoded in a password or user name.
  'postgres:// with unencoded special characters': { schemes: postgresScheme, slashes: fc.constant('://'), pwIn: fc.constantFrom('userinfo', 'query', 'both'), encoding: anyEncoding },
}

/** createPool(input): a pool whose stats() never show the password, or CONFIG_INVALID without it. */
async function poolOrConfigInvalid(input) {
  let p
  try {
    p = createPool(input)
  } catch (e) {
    assert.ok(isOnepoolError(e), `not an OnepoolError: ${e && e.name}: ${e && e.message}`)
    assert.equal(e.code, 'CONFIG_INVALID', e.message)
    assert.ok(!e.message.includes(SECRET_CORE), `the password is in the message: ${e.message}`)
    assert.ok(!String(e.stack).includes(SECRET_CORE), 'the password is in the stack')
    return 'invalid'
  }
  const st = p.stats()
  assert.ok(!JSON.stringify(st).includes(SECRET_CORE), `the password is in stats(): target ${st.target}`)
  await p.end({ timeoutMs: 0 })
  return 'pool'
}

for (const [family, parts] of Object.entries(FAMILIES)) {
  test(`random connection strings (${family}): a pool or CONFIG_INVALID, never a crash, never the password in a message or in stats()`, LIMIT, async (t) => {
    const seen = { pool: 0, invalid: 0 }
    await fc.assert(
      fc.asyncProperty(connectionStrings(parts), async (s) => {
        seen[await poolOrConfigInvalid({ connectionString: s, name: uniqueName('cs') })]++
      }),
      params({ numRuns: RUNS * 2 }),
    )
    t.diagnostic(`${seen.pool} pools, ${seen.invalid} CONFIG_INVALID`)
  })
}

test('random connection strings as the createPool() argument itself, and with random option objects: same guarantees', LIMIT, async () => {
  await fc.assert(
    fc.asyncProperty(
      connectionStrings(FAMILIES['postgres:// with the password in the user info']),
      fc.dictionary(
        fc.oneof(fc.constantFrom('host', 'port', 'user', 'password', 'database', 'max', 'ssl', 'sslmode', 'applicationName', 'connectTimeoutMs'), fc.string({ maxLength: 6 })),
        fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
        { maxKeys: 4 },
      ),
      async (s, extra) => {
        await poolOrConfigInvalid(s)
        await poolOrConfigInvalid({ ...extra, connectionString: s, name: uniqueName('cs'), password: `pw${SECRET_CORE}` })
      },
    ),
    params(),
  )
})
