'use strict'
// onepool/prisma against a real Prisma 7 client: `prisma generate` (Rust-free `prisma-client`
// generator, offline) for prisma-fixture/prisma/schema.prisma, tables from schema.sql in a schema
// of this run, and the README's lib/prisma.ts (prisma-fixture/lib/prisma.ts) evaluated the way a
// dev server evaluates it after each edit. Connection counts come from pg_stat_activity.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const Module = require('node:module')
const { spawnSync } = require('node:child_process')
const pg = require('pg')
const { createPool, processStats, closeAll } = require('../..')
const { PrismaOnepool, DriverAdapterError, isDriverAdapterError, ColumnTypeEnum } = require('onepool/prisma')
const { TEST_URL, admin, countConnections, watchPeak, createRole, dropRole, uniqueName, waitFor } = require('../helpers/db')
const { freePort } = require('../../scripts/embedded-server')
const fixture = require('./prisma-fixture/setup')

const FIXTURE = path.join(__dirname, 'prisma-fixture')
const SNIPPET = path.join(FIXTURE, 'lib', 'prisma.ts')
const GENERATED = path.join(FIXTURE, 'generated') + path.sep

const schema = uniqueName('prisma')
const app = uniqueName('prisma') // application_name of the tests' own pools
const snippetApp = uniqueName('snippet') // application_name of the snippet's pool (DATABASE_URL)
const base = new URL(TEST_URL)
/** pool.stats().target of the test server's superuser pools */
const TARGET = `${decodeURIComponent(base.username)}@${base.hostname}:${base.port}${base.pathname}`

/** TEST_URL (or another user's URL) with Prisma's `schema` parameter and an application_name. */
function databaseUrl({ from = TEST_URL, schema: s = schema, appName = app } = {}) {
  const u = new URL(from)
  u.searchParams.set('schema', s)
  u.searchParams.set('application_name', appName)
  return u.toString()
}

/**
 * Evaluates lib/prisma.ts as a dev server does after an edit: a new module instance, importing a
 * freshly evaluated generated client (bundled code is re-evaluated too; onepool is external).
 */
function evaluateSnippet() {
  for (const key of Object.keys(require.cache)) if (key.startsWith(GENERATED)) delete require.cache[key]
  const m = new Module(SNIPPET, module)
  m.filename = SNIPPET
  m.paths = Module._nodeModulePaths(path.dirname(SNIPPET))
  m._compile(fixture.transpile(fs.readFileSync(SNIPPET, 'utf8'), SNIPPET), SNIPPET)
  return m.exports
}

/** The generated client's module (PrismaClient, Prisma namespace with Decimal and error classes). */
const generated = () => require(path.join(fixture.outDir, 'client.js'))

/** The native pools of the snippet's identity (name "default" + the test server's superuser). */
const snippetPools = () => processStats().pools.filter((p) => p.name === 'default' && p.target === TARGET && !p.closed)

/** A PrismaClient on its own pool (own name), for tests that need special pool settings. */
function client(poolOptions, adapterOptions) {
  const { PrismaClient } = generated()
  const adapter = new PrismaOnepool({ name: uniqueName('p'), applicationName: app, ...poolOptions }, adapterOptions)
  return { prisma: new PrismaClient({ adapter }), adapter }
}

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.fail('expected a rejection')
}

let prisma // the snippet's client
let Prisma // the generated Prisma namespace
const cleanup = []

test.before(async () => {
  fixture.generate()
  const ddl = fs.readFileSync(path.join(FIXTURE, 'prisma', 'schema.sql'), 'utf8')
  await admin(`create schema ${schema}; set search_path to ${schema}; ${ddl}`)
  process.env.DATABASE_URL = databaseUrl({ appName: snippetApp })
  ;({ prisma } = evaluateSnippet())
  ;({ Prisma } = generated())
})

test.after(async () => {
  await prisma.$disconnect()
  for (const fn of cleanup.reverse()) await fn()
  await closeAll() // every pool of this process is this file's
  await admin(`drop schema ${schema} cascade`)
})

test('lib/prisma.ts (the README snippet) type-checks against the generated client and onepool/prisma', () => {
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(FIXTURE, 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('the factory is a postgres SqlDriverAdapterFactory; schemaName comes from the URL', async () => {
  // Own names here: attaching to the snippet's identity with other options would resize its pool.
  const adapter = new PrismaOnepool({ connectionString: databaseUrl(), name: uniqueName('f') })
  assert.equal(adapter.provider, 'postgres')
  assert.equal(adapter.adapterName, 'onepool/prisma')
  const driver = await adapter.connect()
  assert.deepEqual(driver.getConnectionInfo(), { schemaName: schema, supportsRelationJoins: true })
  assert.equal(driver.underlyingDriver(), adapter.pool)
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName('ext') })
  cleanup.push(() => pool.end())
  const withPool = await new PrismaOnepool(pool, { schema: 'app' }).connect()
  assert.equal(withPool.getConnectionInfo().schemaName, 'app')
  assert.equal((await new PrismaOnepool(pool).connect()).getConnectionInfo().schemaName, undefined)
  assert.throws(() => new PrismaOnepool({ connectionString: TEST_URL, maxx: 3 }), { code: 'CONFIG_INVALID' })
  assert.throws(() => new PrismaOnepool(TEST_URL, { max: 3 }), /unknown adapter option "max"/)
})

test('CRUD round-trips every scalar type: enum and enum list, Decimal, DateTime, Json, Bytes', async () => {
  const createdAt = new Date('2021-03-04T05:06:07.089Z')
  const profile = { nested: [1, 'two', null, { deep: true }], quote: 'it\'s "json"', n: 1.5 }
  const avatar = Buffer.from([0, 1, 2, 253, 254, 255])
  const created = await prisma.user.create({
    data: { email: 'crud@example.com', name: 'Ada', role: 'ADMIN', roles: ['USER', 'ADMIN'], balance: '1234.56', createdAt, profile, avatar },
  })
  const found = await prisma.user.findUniqueOrThrow({ where: { email: 'crud@example.com' } })
  for (const u of [created, found]) {
    assert.equal(u.name, 'Ada')
    assert.equal(u.role, 'ADMIN')
    assert.deepEqual(u.roles, ['USER', 'ADMIN'])
    assert.ok(Prisma.Decimal.isDecimal(u.balance))
    assert.equal(u.balance.toFixed(2), '1234.56')
    assert.equal(u.createdAt.toISOString(), createdAt.toISOString())
    assert.deepEqual(u.profile, profile)
    assert.deepEqual(Buffer.from(u.avatar), avatar)
  }
  const updated = await prisma.user.update({
    where: { id: created.id },
    data: { balance: { increment: '0.44' }, name: null, roles: { push: 'USER' } },
  })
  assert.equal(updated.balance.toFixed(2), '1235.00')
  assert.equal(updated.name, null)
  assert.deepEqual(updated.roles, ['USER', 'ADMIN', 'USER'])
  assert.equal(await prisma.user.count({ where: { roles: { has: 'ADMIN' }, balance: { gt: '1000' } } }), 1)
  const { count } = await prisma.user.updateMany({ where: { email: { endsWith: '@example.com' } }, data: { profile: Prisma.DbNull } })
  assert.equal(count, 1)
  await prisma.user.delete({ where: { id: created.id } })
  assert.equal(await prisma.user.findUnique({ where: { id: created.id } }), null)
})

test('relations: nested create, include and select with the join and the query strategies', async () => {
  const publishedAt = new Date('2022-01-02T03:04:05.678Z')
  const tags = ['a', 'b,c', '"quoted"', 'NULL', '', 'back\\slash', 'ünï']
  const user = await prisma.user.create({
    data: {
      email: 'rel@example.com',
      balance: '0.10',
      avatar: Buffer.from('hi'),
      posts: { create: [{ title: 'first', tags, publishedAt }, { title: 'second' }] },
    },
    include: { posts: { orderBy: { id: 'asc' } } },
  })
  assert.deepEqual(
    user.posts.map((p) => [p.title, p.tags, p.publishedAt && p.publishedAt.toISOString(), p.authorId]),
    [
      ['first', tags, publishedAt.toISOString(), user.id],
      ['second', [], null, user.id],
    ],
  )
  for (const relationLoadStrategy of ['join', 'query']) {
    const [u] = await prisma.user.findMany({
      relationLoadStrategy,
      where: { email: 'rel@example.com' },
      include: { posts: { orderBy: { id: 'asc' }, select: { title: true, tags: true, publishedAt: true } } },
    })
    assert.deepEqual(u.posts, user.posts.map(({ title, tags: t, publishedAt: at }) => ({ title, tags: t, publishedAt: at })), relationLoadStrategy)
    const posts = await prisma.post.findMany({ relationLoadStrategy, where: { authorId: user.id }, include: { author: true }, orderBy: { id: 'asc' } })
    assert.equal(posts.length, 2)
    const a = posts[0].author
    assert.equal(a.balance.toFixed(2), '0.10', relationLoadStrategy)
    assert.equal(a.createdAt.getTime(), user.createdAt.getTime(), relationLoadStrategy)
    assert.equal(Buffer.from(a.avatar).toString(), 'hi', relationLoadStrategy)
    const counted = await prisma.user.findUniqueOrThrow({ relationLoadStrategy, where: { id: user.id }, select: { _count: { select: { posts: true } } } })
    assert.equal(counted._count.posts, 2)
  }
  await prisma.user.delete({ where: { id: user.id } }) // cascades to the posts
  assert.equal(await prisma.post.count({ where: { authorId: user.id } }), 0)
})

test('$transaction([...]) commits together, and a failing statement rolls the batch back', async () => {
  const [a, b] = await prisma.$transaction([
    prisma.user.create({ data: { email: 'batch-a@example.com' } }),
    prisma.user.create({ data: { email: 'batch-b@example.com' } }),
  ])
  assert.ok(a.id < b.id)
  const e = await rejection(
    prisma.$transaction([
      prisma.user.create({ data: { email: 'batch-c@example.com' } }),
      prisma.user.create({ data: { email: 'batch-a@example.com' } }), // duplicate
    ]),
  )
  assert.equal(e.code, 'P2002')
  assert.equal(await prisma.user.count({ where: { email: 'batch-c@example.com' } }), 0)
  await prisma.user.deleteMany({ where: { email: { startsWith: 'batch-' } } })
})

test('interactive transactions commit, roll back when the callback throws, and nest with savepoints', async () => {
  const out = await prisma.$transaction(async (tx) => {
    const u = await tx.user.create({ data: { email: 'itx-1@example.com' } })
    await tx.post.create({ data: { title: 'in tx', authorId: u.id } })
    return tx.post.count({ where: { authorId: u.id } })
  })
  assert.equal(out, 1)
  assert.equal(await prisma.user.count({ where: { email: 'itx-1@example.com' } }), 1)

  const e = await rejection(
    prisma.$transaction(async (tx) => {
      await tx.user.create({ data: { email: 'itx-2@example.com' } })
      throw new Error('changed my mind')
    }),
  )
  assert.equal(e.message, 'changed my mind')
  assert.equal(await prisma.user.count({ where: { email: 'itx-2@example.com' } }), 0)

  await prisma.$transaction(async (tx) => {
    await tx.user.create({ data: { email: 'itx-3@example.com' } })
    await assert.rejects(
      tx.$transaction(async (inner) => {
        await inner.user.create({ data: { email: 'itx-4@example.com' } })
        throw new Error('inner only')
      }),
      /inner only/,
    )
    await tx.$transaction((inner) => inner.user.create({ data: { email: 'itx-5@example.com' } }))
  })
  const emails = (await prisma.user.findMany({ where: { email: { startsWith: 'itx-' } }, orderBy: { email: 'asc' } })).map((u) => u.email)
  assert.deepEqual(emails, ['itx-1@example.com', 'itx-3@example.com', 'itx-5@example.com'])
  await prisma.user.deleteMany({ where: { email: { startsWith: 'itx-' } } })
})

test('the isolation level reaches the server', async () => {
  const level = (tx) => tx.$queryRaw`select current_setting('transaction_isolation') as level`.then((r) => r[0].level)
  assert.equal(await prisma.$transaction(level), 'read committed')
  assert.equal(await prisma.$transaction(level, { isolationLevel: Prisma.TransactionIsolationLevel.Serializable }), 'serializable')
  assert.equal(await prisma.$transaction(level, { isolationLevel: 'RepeatableRead' }), 'repeatable read')
  assert.equal(await prisma.$transaction(level, { isolationLevel: 'ReadUncommitted' }), 'read uncommitted')
})

test('a duplicate email is P2002 on User_email_key', async () => {
  await prisma.user.create({ data: { email: 'dup@example.com' } })
  const e = await rejection(prisma.user.create({ data: { email: 'dup@example.com' } }))
  assert.ok(e instanceof Prisma.PrismaClientKnownRequestError, String(e))
  assert.equal(e.code, 'P2002')
  assert.equal(e.meta.modelName, 'User')
  // Prisma 7 with driver adapters reports the target as the constraint, not `meta.target`.
  const cause = e.meta.driverAdapterError.cause
  assert.equal(cause.kind, 'UniqueConstraintViolation')
  assert.deepEqual(cause.constraint, { index: 'User_email_key' })
  assert.equal(cause.table, 'User')
  assert.equal(cause.originalCode, '23505')
  assert.match(e.message, /Unique constraint failed on the constraint: `User_email_key`/)
  await prisma.user.delete({ where: { email: 'dup@example.com' } })
})

test('server errors map to Prisma error codes', async () => {
  const user = await prisma.user.create({ data: { email: 'errors@example.com', posts: { create: { title: 'p' } } }, include: { posts: true } })
  const cases = [
    ['P2003', prisma.post.create({ data: { title: 'orphan', authorId: 2 ** 31 - 1 } }), { kind: 'ForeignKeyConstraintViolation', constraint: { index: 'Post_authorId_fkey' } }],
    ['P2011', prisma.post.update({ where: { id: user.posts[0].id }, data: { body: null } }), { kind: 'NullConstraintViolation', constraint: { fields: ['body'] } }],
    ['P2020', prisma.user.update({ where: { id: user.id }, data: { balance: '12345678901234.5' } }), { kind: 'ValueOutOfRange' }],
  ]
  // A schema with a User table that lacks most columns, and no Post table.
  const other = uniqueName('prisma_other')
  await admin(`create schema ${other}; create table ${other}."User" (id serial primary key)`)
  cleanup.push(() => admin(`drop schema ${other} cascade`))
  const { prisma: elsewhere } = client({ connectionString: databaseUrl({ schema: other }) })
  cases.push(
    ['P2021', elsewhere.post.findMany(), { kind: 'TableDoesNotExist', table: `${other}.Post` }],
    ['P2022', elsewhere.user.findMany(), { kind: 'ColumnNotFound' }],
  )
  for (const [code, promise, cause] of cases) {
    const e = await rejection(promise)
    assert.equal(e.code, code, `${code}: ${e.message}`)
    const actual = e.meta.driverAdapterError.cause
    for (const [key, value] of Object.entries(cause)) assert.deepEqual(actual[key], value, `${code} ${key}`)
  }
  // Raw queries: P2010 with the mapped error, e.g. a column type Prisma cannot read.
  const raw = await rejection(prisma.$queryRaw`select '1 day'::interval as i`)
  assert.equal(raw.code, 'P2010')
  assert.deepEqual(raw.meta.driverAdapterError.cause, { kind: 'UnsupportedNativeDataType', type: 'interval' })
  const sqlstate = await rejection(prisma.$executeRawUnsafe(`select 1/0`))
  assert.equal(sqlstate.code, 'P2010')
  assert.equal(sqlstate.meta.driverAdapterError.cause.kind, 'postgres')
  assert.equal(sqlstate.meta.driverAdapterError.cause.code, '22012')
  await prisma.user.delete({ where: { id: user.id } })
})

test('a serialization failure at COMMIT rejects with TransactionWriteConflict (as with adapter-pg)', async () => {
  let arrived = 0
  let bothRead
  const barrier = new Promise((resolve) => (bothRead = resolve))
  const writeSkew = (email) =>
    prisma.$transaction(
      async (tx) => {
        await tx.user.count({ where: { email: { startsWith: 'ser-' } } })
        if (++arrived === 2) bothRead()
        await barrier
        await tx.user.create({ data: { email } })
      },
      { isolationLevel: 'Serializable', maxWait: 10_000 },
    )
  const results = await Promise.allSettled([writeSkew('ser-1@example.com'), writeSkew('ser-2@example.com')])
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason)
  assert.equal(failed.length, 1, 'exactly one of two write-skewed serializable transactions fails')
  const e = failed[0]
  // Prisma's engine hands errors of its own COMMIT back as they are (no P2034 wrapper).
  const cause = e.code === 'P2034' ? e.meta.driverAdapterError.cause : e.cause
  assert.ok(e.code === 'P2034' || isDriverAdapterError(e), String(e))
  assert.equal(cause.kind, 'TransactionWriteConflict')
  assert.equal(cause.originalCode, '40001')
  await prisma.user.deleteMany({ where: { email: { startsWith: 'ser-' } } })
})

test('connection failures map to P1000, P1001, P1003 and P2037', async () => {
  const port = await freePort() // nothing listens there
  const wrongPassword = new URL(TEST_URL)
  wrongPassword.password = 'wrong'
  const noDatabase = new URL(TEST_URL)
  noDatabase.pathname = `/${uniqueName('nodb')}`
  const fast = { acquireTimeoutMs: 2000, connectTimeoutMs: 1000 }
  const cases = [
    ['P1000', wrongPassword.toString(), { kind: 'AuthenticationFailed', user: decodeURIComponent(base.username), originalCode: '28P01' }],
    ['P1001', `postgres://nobody:x@127.0.0.1:${port}/db`, { kind: 'DatabaseNotReachable', host: '127.0.0.1', port, originalCode: 'ECONNREFUSED' }],
    ['P1003', noDatabase.toString(), { kind: 'DatabaseDoesNotExist', db: noDatabase.pathname.slice(1), originalCode: '3D000' }],
  ]
  for (const [code, connectionString, cause] of cases) {
    const { prisma: p } = client({ connectionString, ...fast })
    const e = await rejection(p.user.count())
    assert.ok(e instanceof Prisma.PrismaClientKnownRequestError, String(e))
    assert.equal(e.code, code, e.message)
    const actual = e.meta.driverAdapterError.cause
    for (const [key, value] of Object.entries(cause)) assert.deepEqual(actual[key], value, `${code} ${key}`)
  }
  // A role allowed one connection, held by another client: the pool's connection is refused
  // (53300). (A pool that holds a connection of its own waits for it instead: server-full.test.js.)
  const role = await createRole({ connectionLimit: 1 })
  cleanup.push(() => dropRole(role.name))
  await admin(`grant usage on schema ${schema} to ${role.name}; grant select on all tables in schema ${schema} to ${role.name}`)
  const { prisma: limited } = client({ connectionString: databaseUrl({ from: role.url }), max: 2, ...fast })
  const other = new pg.Client({ connectionString: role.url })
  await other.connect()
  try {
    const e = await rejection(limited.user.count())
    assert.equal(e.code, 'P2037', e.message)
    assert.equal(e.meta.driverAdapterError.cause.originalCode, '53300')
  } finally {
    await other.end()
  }
  assert.equal(await limited.user.count({ where: { id: -1 } }), 0, 'with the slot free, the next query is served')
})

test('a connection killed inside a transaction is P1017, and the pool carries on', async () => {
  const { prisma: p, adapter } = client({ connectionString: databaseUrl(), max: 2 })
  const e = await rejection(
    p.$transaction(async (tx) => {
      const [{ pid }] = await tx.$queryRaw`select pg_backend_pid() as pid`
      await admin('select pg_terminate_backend($1)', [pid])
      await tx.user.count()
    }),
  )
  assert.equal(e.code, 'P1017', e.message)
  assert.equal(e.meta.driverAdapterError.cause.originalCode, 'CONNECTION_LOST')
  assert.equal(typeof (await p.user.count()), 'number')
  assert.ok(await waitFor(() => adapter.pool.stats().inUse === 0))
})

test('POOL_TIMEOUT keeps onepool\'s code and message', async () => {
  const { prisma: p, adapter } = client({ connectionString: databaseUrl(), max: 1, acquireTimeoutMs: 200 })
  const held = await adapter.pool.connect()
  try {
    const e = await rejection(p.user.count())
    assert.equal(e.code, 'POOL_TIMEOUT', String(e))
    assert.match(e.message, /max/)
  } finally {
    await held.release()
  }
  assert.equal(typeof (await p.user.count()), 'number')
})

test('a transaction Prisma gave up on (maxWait) is rolled back and its connection given back', async () => {
  const { prisma: p, adapter } = client({ connectionString: databaseUrl(), max: 1, acquireTimeoutMs: 5000 })
  const held = await adapter.pool.connect()
  setTimeout(() => held.release(), 300)
  const e = await rejection(p.$transaction((tx) => tx.user.create({ data: { email: 'late@example.com' } }), { maxWait: 50 }))
  assert.equal(e.code, 'P2028', e.message)
  // The connection arrives after Prisma stopped waiting: Prisma rolls back what it was given.
  assert.ok(await waitFor(() => adapter.pool.stats().inUse === 0 && adapter.pool.stats().size === 1), JSON.stringify(adapter.pool.stats()))
  assert.equal(await p.user.count({ where: { email: 'late@example.com' } }), 0)
})

test('raw queries: Prisma\'s column types and argument conversions', async () => {
  const [row] = await prisma.$queryRaw`select
    1::int2 as a, 2::int4 as b, 9007199254740993::int8 as c, 1.5::float4 as d, 2.25::float8 as e,
    12345678901234567890.123456789::numeric as f, true as g, 'x'::varchar as h, '2020-01-02'::date as i,
    '03:04:05.5'::time as j, '2020-01-02 03:04:05.678'::timestamp as k, '2020-01-02 03:04:05.678+00'::timestamptz as l,
    '{"a":[1,"b"]}'::jsonb as m, '\\x00ff'::bytea as n, array[1,2]::int4[] as o, array['a',null,'c,d']::text[] as p,
    '00000000-0000-4000-8000-000000000001'::uuid as q, 'ADMIN'::"Role" as r, array[1.5,2.25]::numeric[] as s,
    array[1,2]::int8[] as t, '$1.50'::money as u, array['2020-01-02 03:04:05+00']::timestamptz[] as v`
  assert.equal(row.a, 1)
  assert.equal(row.b, 2)
  assert.equal(row.c, 9007199254740993n)
  assert.equal(row.d, 1.5)
  assert.equal(row.e, 2.25)
  assert.equal(row.f.toFixed(), '12345678901234567890.123456789')
  assert.equal(row.g, true)
  assert.equal(row.h, 'x')
  assert.equal(row.i.toISOString(), '2020-01-02T00:00:00.000Z')
  assert.equal(row.j.toISOString(), '1970-01-01T03:04:05.500Z')
  assert.equal(row.k.toISOString(), '2020-01-02T03:04:05.678Z')
  assert.equal(row.l.toISOString(), '2020-01-02T03:04:05.678Z')
  assert.deepEqual(row.m, { a: [1, 'b'] })
  assert.deepEqual(Buffer.from(row.n), Buffer.from([0, 255]))
  assert.deepEqual(row.o, [1, 2])
  assert.deepEqual(row.p, ['a', null, 'c,d'])
  assert.equal(row.q, '00000000-0000-4000-8000-000000000001')
  assert.equal(row.r, 'ADMIN')
  assert.deepEqual(row.s.map(String), ['1.5', '2.25'])
  assert.deepEqual(row.t, [1n, 2n])
  assert.equal(String(row.u), '1.5')
  assert.deepEqual(row.v.map((d) => d.toISOString()), ['2020-01-02T03:04:05.000Z'])

  const when = new Date('2024-02-29T23:59:58.5Z')
  const [args] = await prisma.$queryRaw`select ${when}::timestamptz as a, ${when}::timestamp as b, ${Buffer.from([7, 8])}::bytea as c,
    ${new Prisma.Decimal('0.1')}::numeric + 0.2 as d, ${2n ** 62n}::int8 as e, ${['x', 'y"z']}::text[] as f, ${{ k: [1] }}::jsonb as g`
  assert.equal(args.a.toISOString(), when.toISOString())
  assert.equal(args.b.toISOString(), when.toISOString())
  assert.deepEqual(Buffer.from(args.c), Buffer.from([7, 8]))
  assert.equal(args.d.toString(), '0.3')
  assert.equal(args.e, 2n ** 62n)
  assert.deepEqual(args.f, ['x', 'y"z'])
  assert.deepEqual(args.g, { k: [1] })
  assert.equal(await prisma.$executeRaw`update "User" set name = name where false`, 0)
})

test('timestamptz values are exact whatever the session TimeZone (here +05:30)', async () => {
  const role = await createRole()
  cleanup.push(() => dropRole(role.name))
  await admin(
    `alter role ${role.name} set timezone = 'Asia/Kolkata'; grant usage on schema ${schema} to ${role.name};
     grant all on all tables in schema ${schema} to ${role.name}; grant all on all sequences in schema ${schema} to ${role.name}`,
  )
  const { prisma: p } = client({ connectionString: databaseUrl({ from: role.url }) })
  assert.equal((await p.$queryRaw`select current_setting('TimeZone') as tz`)[0].tz, 'Asia/Kolkata')
  const publishedAt = new Date('2021-06-01T23:50:56.789Z') // the next day in Kolkata
  const createdAt = new Date('2021-06-01T12:00:00.001Z')
  const user = await p.user.create({ data: { email: 'tz@example.com', createdAt, posts: { create: { title: 'tz', publishedAt } } } })
  const stored = await admin(`select (extract(epoch from "publishedAt") * 1000)::bigint as ms from ${schema}."Post" where "authorId" = $1`, [user.id])
  assert.equal(Number(stored.rows[0].ms), publishedAt.getTime(), 'the server stored the same instant')
  for (const relationLoadStrategy of ['join', 'query']) {
    const u = await p.user.findUniqueOrThrow({ relationLoadStrategy, where: { id: user.id }, include: { posts: true } })
    assert.equal(u.posts[0].publishedAt.toISOString(), publishedAt.toISOString(), relationLoadStrategy)
    assert.equal(u.createdAt.toISOString(), createdAt.toISOString(), relationLoadStrategy)
  }
  assert.equal(await p.post.count({ where: { publishedAt: { gte: publishedAt, lt: new Date(publishedAt.getTime() + 1) } } }), 1)
  const [raw] = await p.$queryRaw`select "publishedAt" from "Post" where "authorId" = ${user.id}`
  assert.equal(raw.publishedAt.toISOString(), publishedAt.toISOString())
  await p.user.delete({ where: { id: user.id } })
})

test('executeScript runs every statement of a script, semicolons inside literals included', async () => {
  const driver = await new PrismaOnepool({ connectionString: databaseUrl(), name: uniqueName('script') }).connect()
  const table = uniqueName('script')
  await driver.executeScript(`create table ${schema}.${table} (v text); insert into ${schema}.${table} values ('a;b'); insert into ${schema}.${table} values ('c');`)
  const r = await admin(`select v from ${schema}.${table} order by v`)
  assert.deepEqual(r.rows.map((x) => x.v), ['a;b', 'c'])
  const e = await rejection(driver.executeScript(`insert into ${schema}.${table} values ('d'); insert into ${schema}.nope values (1)`))
  assert.ok(e instanceof DriverAdapterError)
  assert.equal(e.cause.kind, 'TableDoesNotExist')
  assert.equal((await admin(`select count(*)::int as n from ${schema}.${table}`)).rows[0].n, 2, 'a failing script is one implicit transaction')
  const result = await driver.queryRaw({ sql: `select v, 1::int8 as n from ${schema}.${table} where v = $1`, args: ['c'], argTypes: [{ scalarType: 'string', arity: 'scalar' }] })
  assert.deepEqual(result, { columnNames: ['v', 'n'], columnTypes: [ColumnTypeEnum.Text, ColumnTypeEnum.Int64], rows: [['c', '1']] })
  await admin(`drop table ${schema}.${table}`)
})

test('a Pool created with createPool() is shared, not owned: $disconnect() leaves it open', async () => {
  const pool = createPool({ connectionString: databaseUrl(), name: uniqueName('shared'), max: 2 })
  const { PrismaClient } = generated()
  const p = new PrismaClient({ adapter: new PrismaOnepool(pool, { schema }) })
  assert.equal(await p.user.count({ where: { id: -1 } }), 0)
  await p.$transaction(async (tx) => tx.user.count())
  assert.equal(pool.stats().handles, 1, 'the adapter attached no handle of its own')
  await p.$disconnect()
  assert.equal(pool.ended, false)
  assert.equal((await pool.query('select 1 as one')).rows[0].one, 1)
  assert.equal(await p.user.count({ where: { id: -1 } }), 0, 'the client reconnects after $disconnect()')
  await pool.end()
})

test('$disconnect() rolls back what it interrupts, and only its own transactions', async () => {
  const { prisma: p, adapter } = client({ connectionString: databaseUrl(), max: 2 })
  let entered
  const inside = new Promise((resolve) => (entered = resolve))
  const open = p.$transaction(async (tx) => {
    await tx.user.create({ data: { email: 'interrupted@example.com' } })
    entered()
    await new Promise((resolve) => setTimeout(resolve, 300))
  }, { timeout: 10_000 })
  open.catch(() => {})
  await inside
  await p.$disconnect()
  await rejection(open)
  assert.ok(await waitFor(() => adapter.pool.stats().inUse === 0), JSON.stringify(adapter.pool.stats()))
  assert.equal(adapter.pool.ended, false)
  assert.equal(await prisma.user.count({ where: { email: 'interrupted@example.com' } }), 0)
})

test('20 PrismaClients from 20 hot reloads of lib/prisma.ts share one native pool of at most max connections', async () => {
  const before = snippetPools()
  assert.equal(before.length, 1, 'the snippet attached one pool')
  const clients = []
  for (let i = 0; i < 20; i++) clients.push(evaluateSnippet().prisma)
  assert.notEqual(clients[0].constructor, clients[1].constructor, 'each reload evaluated a new generated client')
  const after = snippetPools()
  assert.equal(after.length, 1, 'still one native pool for the identity')
  assert.equal(after[0].handles, before[0].handles + 20, 'each reload attached one handle to it')
  assert.equal(after[0].max, 5)

  const peak = watchPeak(snippetApp, 10)
  const work = clients.flatMap((c, i) => [
    c.user.findMany({ where: { email: { startsWith: 'reload-' } } }),
    c.user.count(),
    c.$transaction(async (tx) => {
      const u = await tx.user.create({ data: { email: `reload-${i}@example.com`, posts: { create: { title: `r${i}` } } } })
      return tx.post.count({ where: { authorId: u.id } })
    }, { maxWait: 20_000, timeout: 20_000 }),
    c.$transaction([c.post.count(), c.user.findFirst({ include: { posts: true } })]),
  ])
  const results = await Promise.all(work)
  const observed = await peak.stop()
  assert.equal(results.length, 80)
  assert.equal(await prisma.user.count({ where: { email: { startsWith: 'reload-' } } }), 20)
  assert.ok(observed >= 1 && observed <= 5, `peak ${observed} server connections, max 5`)
  const stats = snippetPools()[0]
  assert.ok(stats.size <= 5, JSON.stringify(stats))
  assert.ok((await countConnections(snippetApp)) <= 5)

  // An old client's $disconnect() (what a shutdown hook of a stale module does) ends nothing.
  await Promise.all(clients.slice(0, 19).map((c) => c.$disconnect()))
  assert.equal(snippetPools().length, 1)
  assert.equal(await clients[19].user.count({ where: { email: { startsWith: 'reload-' } } }), 20)
  assert.equal(await prisma.user.count({ where: { email: { startsWith: 'reload-' } } }), 20)
  await prisma.user.deleteMany({ where: { email: { startsWith: 'reload-' } } })
  await clients[19].$disconnect()
})
