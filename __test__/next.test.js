'use strict'
// adapters/next (onepool/next): the route wrapper, without Next.js — plain Request/Response.
// __test__/e2e/next.js runs it inside a real Next.js app.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('..')
const { withPool, requestDb, errorResponse } = require('../adapters/next')
const { APP_NAME, TEST_URL, admin, uniqueName } = require('./helpers/db')

const request = (path = '/api/x') => new Request(`http://localhost${path}`)
const quiet = { onError: () => {} }

function pool(options = {}) {
  return createPool({ connectionString: TEST_URL, name: uniqueName('next'), max: 2, ...options })
}

test('the handler gets (request, context, db); its response passes through', async () => {
  const p = pool()
  const ctx = { params: Promise.resolve({ id: '7' }) }
  const GET = withPool(p, async (req, context, db) => {
    assert.equal(new URL(req.url).pathname, '/api/x')
    assert.equal(context, ctx)
    assert.equal(requestDb(), db, 'requestDb() finds the same handle in the async context')
    const { rows } = await db.query('select $1::int + 1 as n', [41])
    return Response.json(rows[0], { status: 201 })
  })
  const res = await GET(request(), ctx)
  assert.equal(res.status, 201)
  assert.deepEqual(await res.json(), { n: 42 })
  assert.equal(requestDb(), undefined)
  await p.end()
})

test('a client the handler did not release is released when the handler settles', async () => {
  const p = pool()
  let held
  const GET = withPool(p, async (_req, _ctx, db) => {
    held = await db.connect()
    await held.query('select 1')
    assert.equal(db.checkedOut, 1)
    assert.equal(p.stats().inUse, 1)
    return new Response('ok')
  })
  assert.equal((await GET(request(), {})).status, 200)
  assert.equal(held.released, true)
  assert.equal(p.stats().inUse, 0)
  await p.end()
})

test('a non-database error is rethrown, after the client (and its open transaction) is released', async () => {
  const appName = uniqueName('app')
  const p = pool({ applicationName: appName })
  const bug = new TypeError('a bug in the route')
  const GET = withPool(p, async (_req, _ctx, db) => {
    const c = await db.connect()
    await c.query('begin')
    await c.query('create temp table t (x int)')
    throw bug
  })
  await assert.rejects(GET(request(), {}), (e) => e === bug)
  assert.equal(p.stats().inUse, 0)
  const r = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and state like 'idle in transaction%'`, [appName])
  assert.equal(r.rows[0].n, 0, 'the transaction was rolled back')
  await p.end()
})

test('POOL_TIMEOUT becomes 503 with Retry-After; the held client still comes back', async () => {
  const p = pool({ max: 1, acquireTimeoutMs: 150 })
  const hold = await p.connect()
  const errors = []
  const GET = withPool(p, async (_req, _ctx, db) => Response.json((await db.query('select 1 as one')).rows), {
    retryAfterSeconds: 3,
    onError: (e) => errors.push(e.code),
  })
  const res = await GET(request(), {})
  assert.equal(res.status, 503)
  assert.equal(res.headers.get('retry-after'), '3')
  assert.deepEqual(await res.json(), { error: 'The database is busy. Retry shortly.', code: 'POOL_TIMEOUT' })
  assert.deepEqual(errors, ['POOL_TIMEOUT'])
  await hold.release()
  assert.equal((await GET(request(), {})).status, 200)
  await p.end()
})

test('a server error becomes a JSON 500 carrying only its SQLSTATE: no SQL, value, message or credentials', async () => {
  const p = pool()
  const GET = withPool(p, async (_req, _ctx, db) => {
    await db.query("select $1::int as n, 'sql-text-marker' as m", ['secret-value-123'])
    return new Response('unreachable')
  }, quiet)
  const res = await GET(request(), {})
  assert.equal(res.status, 500)
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8')
  const text = await res.text()
  assert.deepEqual(JSON.parse(text), { error: 'A database error occurred.', code: '22P02' })
  const password = new URL(TEST_URL).password
  for (const secret of ['secret-value-123', 'sql-text-marker', 'invalid input', password, '127.0.0.1']) {
    assert.ok(!text.includes(secret), `the body leaks ${secret}`)
  }
  await p.end()
})

test('CONNECT_FAILED becomes a JSON 500 without the connection details', async () => {
  const p = createPool({ connectionString: 'postgres://someone:hunter2@127.0.0.1:1/db', name: uniqueName('next'), connectTimeoutMs: 500 })
  const GET = withPool(p, async (_req, _ctx, db) => Response.json((await db.query('select 1')).rows), quiet)
  const res = await GET(request(), {})
  assert.equal(res.status, 500)
  const text = await res.text()
  assert.deepEqual(JSON.parse(text), { error: 'A database error occurred.', code: 'CONNECT_FAILED' })
  assert.ok(!/hunter2|someone|127\.0\.0\.1/.test(text))
  await p.end()
})

test('a checkout that completes after the handler settled is released at once', async () => {
  const p = pool({ max: 1 })
  const hold = await p.connect()
  let late
  const GET = withPool(p, async (_req, _ctx, db) => {
    late = db.connect() // not awaited: the handler returns while it waits
    return new Response('early')
  })
  assert.equal((await GET(request(), {})).status, 200)
  await hold.release()
  const client = await late
  assert.equal(client.released, true)
  assert.equal(p.stats().inUse, 0)
  await p.end()
})

test('errorResponse() maps only onepool errors; withPool() validates its arguments', async () => {
  assert.equal(errorResponse(new Error('x')), null)
  assert.equal(errorResponse(Object.assign(new Error('x'), { code: 'POOL_TIMEOUT' })), null, 'a look-alike without the OnepoolError name')
  const p = pool()
  assert.throws(() => withPool(null, () => {}), { code: 'CONFIG_INVALID' })
  assert.throws(() => withPool(p, 'nope'), { code: 'CONFIG_INVALID' })
  assert.throws(() => withPool(p, () => {}, { retryAfterSeconds: -1 }), { code: 'CONFIG_INVALID' })
  await p.end()
})
