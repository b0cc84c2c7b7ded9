'use strict'
// The compatibility gate: the same pg-pool behaviours run against node-postgres's `pg.Pool` and
// against onepool, side by side, on the same server. Where onepool claims to behave as pg
// (README, "Coming from node-postgres"), `same()` asserts that both observed the same thing.
// Where it deliberately differs, `differs()` asserts each side does what the README says, so the
// list of differences cannot silently go stale.

const test = require('node:test')
const assert = require('node:assert/strict')
const pg = require('pg')
const { createPool, defaults } = require('../..')
const { TEST_URL, admin, uniqueName, waitFor } = require('../helpers/db')

const LIBRARIES = {
  pg: (options = {}) => new pg.Pool({ connectionString: TEST_URL, ...options }),
  onepool: (options = {}) => createPool({ connectionString: TEST_URL, name: uniqueName('compat'), ...options }),
}

/**
 * Runs `scenario(makePool, lib)` once per library and returns what each observed. The pools it
 * made are ended afterwards (unless the scenario ended them itself).
 */
async function observe(scenario) {
  // onepool never keeps the process alive for an idle pool, nor for its events: a scenario
  // awaiting an event ('remove', 'error') needs something else to hold the event loop open.
  const keepAlive = setInterval(() => {}, 1000)
  try {
    return await observeEach(scenario)
  } finally {
    clearInterval(keepAlive)
  }
}

async function observeEach(scenario) {
  const observed = {}
  for (const [lib, make] of Object.entries(LIBRARIES)) {
    const pools = []
    const makePool = (options) => {
      const pool = make(options)
      pools.push(pool)
      return pool
    }
    try {
      observed[lib] = await scenario(makePool, lib)
    } finally {
      for (const pool of pools) if (!pool.ending) await pool.end().catch(() => {})
    }
  }
  return observed
}

/** A behaviour onepool has as pg has it: both libraries must observe the same. */
function same(title, scenario) {
  test(`as pg: ${title}`, async () => {
    const observed = await observe(scenario)
    assert.deepStrictEqual(observed.onepool, observed.pg)
  })
}

/** A documented difference: each library observes what `expected[lib]` says. */
function differs(title, scenario, expected) {
  test(`differs from pg: ${title}`, async () => {
    const observed = await observe(scenario)
    assert.deepStrictEqual(observed, expected)
  })
}

const once = (emitter, event) => new Promise((resolve) => emitter.once(event, (...args) => resolve(args)))
const fieldsOf = (r) => r.fields.map((f) => [f.name, f.dataTypeID])
const shape = (r) => ({ command: r.command, rowCount: r.rowCount, rows: r.rows, fields: fieldsOf(r) })
const errorShape = (e) => ({
  code: e.code,
  message: e.message,
  severity: e.severity,
  detail: e.detail,
  schema: e.schema,
  table: e.table,
  constraint: e.constraint,
  position: e.position,
})
const noticeShape = (n) => ({ name: n.name, severity: n.severity, code: n.code, message: n.message, where: n.where, hint: n.hint, detail: n.detail })

// ---------------------------------------------------------------------------------------------
// Queries

same('pool.query: promise, callback, config object, rowMode, several statements', async (makePool) => {
  const pool = makePool({ max: 2 })
  const out = {}
  out.promise = shape(await pool.query('select $1::int as n, $2::text as t', [1, 'a']))
  out.callbackNoValues = await new Promise((resolve) => {
    const returned = pool.query('select 2 as n', (err, r) => resolve({ err, result: shape(r), returned }))
  })
  out.callbackValues = await new Promise((resolve) => pool.query('select $1::int as n', [3], (err, r) => resolve({ err, result: shape(r) })))
  out.config = shape(await pool.query({ text: 'select $1::int as a, $2::int as b', values: [4, 5], rowMode: 'array' }))
  out.several = (await pool.query('select 1 as x; select 2 as y')).map(shape)
  out.ddl = shape(await pool.query('create temp table t (id int)'))
  return out
})

same('pool.query(callback) calls back with an error, once', async (makePool) => {
  const pool = makePool()
  const calls = []
  await new Promise((resolve) => {
    pool.query((err, result) => {
      calls.push({ isError: err instanceof Error, result })
      setTimeout(resolve, 20)
    })
  })
  return calls
})

same('server errors carry the SQLSTATE and the server fields', async (makePool) => {
  const pool = makePool()
  const table = uniqueName('compat_t')
  await pool.query(`create table ${table} (id int primary key)`)
  try {
    await pool.query(`insert into ${table} values (1)`)
    const unique = await pool.query(`insert into ${table} values (1)`).catch(errorShape)
    const syntax = await pool.query('select 1 frm nowhere').catch(errorShape)
    unique.table = unique.table === table
    unique.constraint = unique.constraint === `${table}_pkey`
    unique.message = unique.message === `duplicate key value violates unique constraint "${table}_pkey"`
    return { unique, syntax }
  } finally {
    await pool.query(`drop table ${table}`)
  }
})

same('a failed statement inside a transaction leaves it aborted until ROLLBACK', async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const out = []
  await client.query('begin')
  out.push(await client.query('select 1/0').catch((e) => e.code))
  out.push(await client.query('select 1').catch((e) => e.code))
  out.push((await client.query('rollback')).command)
  out.push((await client.query('select 1 as one')).rows)
  client.release()
  return out
})

// ---------------------------------------------------------------------------------------------
// Checkouts, counts and events

same('connect(): counts while checked out, idle after release, and waiting when full', async (makePool) => {
  const pool = makePool({ max: 2 })
  const counts = () => [pool.totalCount, pool.idleCount, pool.waitingCount]
  const out = { start: counts() }
  const a = await pool.connect()
  const b = await pool.connect()
  out.bothOut = counts()
  const third = pool.connect()
  const fourth = pool.connect()
  out.twoWaiting = counts()
  a.release()
  const c = await third
  out.oneWaiting = counts()
  b.release()
  const d = await fourth
  c.release()
  d.release()
  out.allIdle = counts()
  out.sameClientAgain = c === a
  out.expiredCount = pool.expiredCount
  return out
})

same('connect(callback): arguments, no promise returned, done() releases', async (makePool) => {
  const pool = makePool()
  return new Promise((resolve) => {
    const returned = pool.connect((err, client, done) => {
      const out = { returned, err, hasClient: typeof client.query === 'function', doneIsFunction: typeof done === 'function' }
      done()
      out.idleAfterDone = pool.idleCount
      let threw = 0
      for (let i = 0; i < 2; i++) {
        try {
          done()
        } catch {
          threw++
        }
      }
      out.secondAndThirdDoneThrew = threw
      resolve(out)
    })
  })
})

same('release() twice throws; a released client is not usable', async (makePool) => {
  const pool = makePool()
  const client = await pool.connect()
  client.release()
  let threw = false
  try {
    client.release()
  } catch (e) {
    threw = e instanceof Error
  }
  return { threw }
})

same("events: 'connect' once per new connection before the callback, 'acquire' per checkout, 'release' with (err, client)", async (makePool) => {
  const pool = makePool({ max: 1 })
  const log = []
  const seen = new Set()
  const id = (client) => {
    if (!seen.has(client)) seen.add(client)
    return [...seen].indexOf(client)
  }
  pool.on('connect', (client) => log.push(['connect', id(client)]))
  pool.on('acquire', (client) => log.push(['acquire', id(client)]))
  pool.on('release', (err, client) => log.push(['release', err === undefined ? 'no error' : err.message, id(client)]))
  for (let i = 0; i < 2; i++) {
    const client = await pool.connect()
    log.push(['resolved', id(client)])
    client.release()
  }
  const client = await pool.connect()
  const problem = new Error('problem')
  const removed = once(pool, 'remove')
  client.release(problem)
  const [removedClient] = await removed
  log.push(['remove', id(removedClient)])
  log.push(['counts', pool.totalCount, pool.idleCount])
  return log
})

same('onConnect and verify run on each new connection, before its first use', async (makePool) => {
  const log = []
  const pool = makePool({
    max: 1,
    onConnect: async (client) => {
      log.push('onConnect')
      await client.query('set application_name = \'compat-hooked\'')
    },
    verify: (client, done) => {
      log.push('verify')
      done()
    },
  })
  pool.on('connect', () => log.push('connect event'))
  const first = await pool.query('select current_setting(\'application_name\') as app')
  const second = await pool.query('select 1')
  log.push(first.rows[0].app, second.rowCount)
  return log
})

same('an onConnect that throws fails the checkout; the pool still serves', async (makePool) => {
  let calls = 0
  const pool = makePool({
    max: 1,
    onConnect: async () => {
      if (++calls === 1) throw new Error('hook failed')
    },
  })
  const first = await pool.connect().then(
    () => 'connected',
    (e) => e.message,
  )
  const second = (await pool.query('select 1 as one')).rows
  return { first, second, calls }
})

same('maxUses: the same client until used up, then a new one (and a remove event)', async (makePool) => {
  const pool = makePool({ maxUses: 2 })
  let removes = 0
  pool.on('remove', () => removes++)
  const a = await pool.connect()
  a.release()
  const b = await pool.connect()
  const sameSecondTime = a === b
  const removed = once(pool, 'remove')
  b.release()
  await removed
  const c = await pool.connect()
  c.release()
  return { sameSecondTime, newThirdTime: c !== a, removes }
})

same('client._ending (read by pg code): false while usable, true once release() used it up', async (makePool) => {
  const pool = makePool({ maxUses: 2 })
  const a = await pool.connect()
  const log = [a._ending]
  a.release()
  log.push(a._ending)
  const b = await pool.connect()
  log.push(b === a, b._ending)
  const removed = once(pool, 'remove')
  b.release()
  log.push(b._ending)
  await removed
  const c = await pool.connect()
  log.push(c._ending)
  c.release(new Error('broken'))
  log.push(c._ending)
  return log
})

same('client.end() on a checked-out client closes it; the release() after it removes it', async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const removed = once(pool, 'remove')
  client.end()
  client.release()
  await removed
  const counts = [pool.totalCount, pool.idleCount]
  const again = (await pool.query('select 1 as one')).rows
  return { counts, again }
})

same('idleTimeoutMillis: the counts drop to 0 once the timeout has passed, the next query opens one', async (makePool) => {
  const pool = makePool({ idleTimeoutMillis: 5 })
  const log = []
  for (let i = 0; i < 3; i++) {
    const query = pool.query('select 1')
    log.push(['querying', pool.totalCount, pool.idleCount])
    await query
    await new Promise((resolve) => setTimeout(resolve, 30))
    log.push(['idle past the timeout', pool.totalCount, pool.idleCount])
  }
  return log
})

same('idleTimeoutMillis: an idle connection is removed and the counts drop to 0', async (makePool) => {
  const pool = makePool({ idleTimeoutMillis: 50 })
  const removed = once(pool, 'remove')
  await pool.query('select 1')
  await removed
  return [pool.totalCount, pool.idleCount]
})

same("connectionTimeoutMillis bounds the wait for a busy pool; the error mentions 'timeout'", async (makePool) => {
  const pool = makePool({ max: 1, connectionTimeoutMillis: 100 })
  const held = await pool.connect()
  const waited = await pool.connect().then(
    () => 'connected',
    (e) => ({ isError: e instanceof Error, mentionsTimeout: /timeout/i.test(e.message) }),
  )
  const waitingAfter = pool.waitingCount
  held.release()
  const after = (await pool.query('select 1 as one')).rows
  return { waited, waitingAfter, after }
})

same("an idle connection closed by the server: the client, then the pool, emit 'error'; it is removed", async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const pid = client.processID
  const log = []
  // Listening on a client while it is checked out, as pg code does (pg's pool adds its own
  // listener at release, so this one hears the error first).
  client.on('error', (err) => log.push(['client error', err instanceof Error]))
  client.release()
  const poolError = once(pool, 'error')
  const removed = once(pool, 'remove')
  pool.on('error', (err, errClient) => log.push(['pool error', errClient === client, err.client === client]))
  await admin('select pg_terminate_backend($1)', [pid])
  await poolError
  const [removedClient] = await removed
  log.push(['removed the same client', removedClient === client])
  await waitFor(() => pool.totalCount === 0)
  log.push(['counts', pool.totalCount, pool.idleCount])
  log.push(['still serves', (await pool.query('select 1 as one')).rows])
  return log
})

same("an 'error' emitted on an idle client: the client, then the pool, hear it; it is removed at once", async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  client.release()
  const log = []
  const removed = once(pool, 'remove')
  pool.on('error', (err, errClient) => log.push(['pool error', err.message, errClient === client, err.client === client]))
  client.on('error', (err) => log.push(['client error', err.message]))
  client.emit('error', new Error('expected'))
  log.push(['counts at once', pool.totalCount, pool.idleCount, client._ending])
  const [removedClient] = await removed
  log.push(['removed the same client', removedClient === client])
  client.emit('error', new Error('again'))
  log.push(['a second error is not the pool\'s', log.filter((l) => l[0] === 'pool error').length])
  const again = await pool.connect()
  log.push(['a new client', again !== client, (await again.query('select 1 as one')).rows])
  again.release()
  return log
})


same('query_timeout: the query fails with a timeout error; the pool keeps serving', async (makePool) => {
  const pool = makePool({ max: 1, query_timeout: 100 })
  const timedOut = await pool.query('select pg_sleep(2)').then(
    () => 'completed',
    (e) => ({ isError: e instanceof Error, mentionsTimeout: /timeout/i.test(e.message) }),
  )
  const after = (await pool.query('select 1 as one')).rows
  return { timedOut, after }
})

same('log receives messages', async (makePool) => {
  const messages = []
  const pool = makePool({ log: (m) => messages.push(m) })
  await pool.query('select 1')
  const client = await pool.connect()
  client.release()
  return messages.length > 0
})

// ---------------------------------------------------------------------------------------------
// Ending

same('end(): ending and ended, later requests rejected, a second end() rejected', async (makePool) => {
  const pool = makePool()
  await pool.query('select 1')
  const before = [pool.ending, pool.ended]
  const ending = pool.end()
  const during = [pool.ending, pool.ended]
  await ending
  const after = [pool.ending, pool.ended]
  const rejected = await Promise.all([
    pool.query('select 1').then(() => 'ran', (e) => e instanceof Error),
    pool.connect().then(() => 'connected', (e) => e instanceof Error),
    pool.end().then(() => 'ended again', (e) => e instanceof Error),
  ])
  const callback = await new Promise((resolve) => pool.query('select 1', (err) => resolve(err instanceof Error)))
  return { before, during, after, rejected, callback, counts: [pool.totalCount, pool.idleCount] }
})

same('end() lets a checked-out client finish its work first', async (makePool) => {
  const pool = makePool()
  const client = await pool.connect()
  const ended = pool.end()
  const rows = (await client.query('select 1 as one')).rows
  client.release()
  await ended
  return { rows, ended: pool.ended }
})

same('pool.options shows the options with their defaults', async (makePool) => {
  const given = { max: 3, idleTimeoutMillis: 1234 }
  const pool = makePool(given)
  const { max, min, idleTimeoutMillis, maxUses, allowExitOnIdle } = pool.options
  return { max, min, idleTimeoutMillis, maxUses, allowExitOnIdle, given }
})

// ---------------------------------------------------------------------------------------------
// Types, notices, named statements

same('client.setTypeParser: this client parses the type with it, across checkouts; a query\'s own types win', async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const parser = (v) => `int8:${v}`
  client.setTypeParser(20, parser)
  client.setTypeParser(1700, 'text', (v) => Number(v))
  const out = {}
  out.overridden = (await client.query('select 5::int8 as a, 1.5::numeric as b, 6::int4 as c')).rows
  out.getTypeParser = client.getTypeParser(20) === parser
  out.defaultStill = client.getTypeParser(23)('7')
  out.queryTypes = (await client.query({ text: 'select 5::int8 as a', types: { getTypeParser: () => (v) => `query:${v}` } })).rows
  client.release()
  const again = await pool.connect()
  out.sameClient = again === client
  out.afterCheckout = (await again.query('select 5::int8 as a')).rows
  again.release()
  return out
})

same('defaults.parseInt8 makes int8 and int8[] numbers (pg.defaults.parseInt8)', async (makePool, lib) => {
  const pool = makePool()
  const flip = (on) => {
    if (lib === 'pg') pg.defaults.parseInt8 = on
    else defaults.parseInt8 = on
  }
  const sql = 'select 9007199254740991::int8 as a, array[1,2]::int8[] as b, count(*) as c from generate_series(1, 3)'
  flip(true)
  try {
    const on = (await pool.query(sql)).rows
    flip(false)
    const off = (await pool.query(sql)).rows
    return { on, off }
  } finally {
    flip(false)
  }
})

same("notice events: the client emits each notice before its query settles, failed queries' too", async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const log = []
  client.on('notice', (n) => log.push(noticeShape(n)))
  await client.query("do $$ begin raise notice 'first %', 1; raise warning 'second' using hint = 'a hint', detail = 'some detail'; end $$")
  log.push('settled')
  await client.query("do $$ begin raise notice 'before the error'; raise exception 'boom'; end $$").catch((e) => log.push(`failed: ${e.message}`))
  await client.query('drop table if exists compat_no_such_table')
  log.push('settled')
  client.release()
  return log
})

same("notice events reach a client set up in the 'connect' event from pool.query", async (makePool) => {
  const pool = makePool({ max: 1 })
  const log = []
  pool.on('connect', (client) => client.on('notice', (n) => log.push(n.message)))
  await pool.query("do $$ begin raise notice 'from pool.query'; end $$")
  log.push('settled')
  return log
})

same('named statements: prepared once, reused by name, a name stands for one text', async (makePool) => {
  const pool = makePool({ max: 1 })
  const client = await pool.connect()
  const out = {}
  out.first = (await client.query({ name: 'compat_fetch', text: 'select $1::int * 2 as n', values: [1] })).rows
  out.byName = (await client.query({ name: 'compat_fetch', values: [2] })).rows
  out.again = (await client.query({ name: 'compat_fetch', text: 'select $1::int * 2 as n', values: [3] })).rows
  out.otherText = await client
    .query({ name: 'compat_fetch', text: 'select $1::int * 3 as n', values: [4] })
    .then(() => 'ran', (e) => e.message)
  out.stillWorks = (await client.query({ name: 'compat_fetch', values: [5] })).rows
  client.release()
  out.poolQuery = (await pool.query({ name: 'compat_other', text: 'select $1::text as t', values: ['x'] })).rows
  return out
})

// ---------------------------------------------------------------------------------------------
// Deliberate differences (README, "Coming from node-postgres")

differs(
  'a statement error keeps its connection (pg closes it)',
  async (makePool) => {
    const pool = makePool({ max: 1 })
    let removes = 0
    pool.on('remove', () => removes++)
    await pool.query('select 1')
    const code = await pool.query('select 1/0').catch((e) => e.code)
    await new Promise((resolve) => setTimeout(resolve, 50))
    return { code, removes, counts: [pool.totalCount, pool.idleCount] }
  },
  {
    pg: { code: '22012', removes: 1, counts: [0, 0] },
    onepool: { code: '22012', removes: 0, counts: [1, 1] },
  },
)

differs(
  "a shared pool.query's 'release' event carries no client (pg checks one out for each)",
  async (makePool) => {
    const pool = makePool({ max: 1 })
    const log = []
    pool.on('release', (err, client) => log.push(['release', err == null ? err : err.code, typeof client]))
    await pool.query('select 1')
    await pool.query('select 1/0').catch(() => {})
    return log
  },
  {
    pg: [['release', null, 'object'], ['release', '22012', 'object']],
    onepool: [['release', null, 'undefined'], ['release', '22012', 'undefined']],
  },
)

same("pool.query with an 'acquire' listener checks a client out: 'acquire' and 'release' carry it", async (makePool) => {
  const pool = makePool({ max: 1 })
  const log = []
  pool.on('acquire', (client) => log.push(['acquire', typeof client.query]))
  pool.on('release', (err, client) => log.push(['release', err == null ? err : err.code, typeof client.query]))
  await pool.query('select 1')
  await pool.query('select 1/0').catch(() => {})
  return log
})

same("pool.query with a 'connect' listener checks a client out: 'acquire' and 'release' carry it, 'release' the query's error", async (makePool) => {
  const pool = makePool({ max: 1 })
  const log = []
  pool.on('connect', () => log.push(['connect']))
  pool.on('acquire', (client) => log.push(['acquire', typeof client.query]))
  pool.on('release', (err, client) => log.push(['release', err == null ? err : err.code, typeof client.query]))
  await pool.query('select 1')
  await pool.query('select 1/0').catch(() => {})
  return log
})

differs(
  "a connection failure is CONNECT_FAILED with the OS code in cause.code (pg: the OS code itself)",
  async (makePool) => {
    const pool = makePool({ host: '127.0.0.1', port: 1, connectionString: undefined })
    const e = await pool.query('select 1').catch((err) => err)
    return { code: e.code, causeCode: e.cause ? e.cause.code : undefined, counts: [pool.totalCount, pool.idleCount] }
  },
  {
    pg: { code: 'ECONNREFUSED', causeCode: undefined, counts: [0, 0] },
    onepool: { code: 'CONNECT_FAILED', causeCode: 'ECONNREFUSED', counts: [0, 0] },
  },
)

differs(
  "a checked-out client whose connection breaks fails its queries; it emits no 'error' (pg emits one, uncaught without a listener)",
  async (makePool) => {
    const pool = makePool({ max: 1 })
    const client = await pool.connect()
    const errors = []
    client.on('error', (e) => errors.push(e instanceof Error))
    await admin('select pg_terminate_backend($1)', [client.processID])
    // pg reports the server's goodbye as an 'error' once it reads it; give it a second to.
    await waitFor(() => errors.length > 0, { timeoutMs: 1000 })
    const failed = await client.query('select 1').then(() => 'ran', (e) => e instanceof Error)
    client.release()
    return { failed, errorEvents: errors.length > 0 }
  },
  {
    pg: { failed: true, errorEvents: true },
    onepool: { failed: true, errorEvents: false },
  },
)

differs(
  "an idle client's 'error' with no 'error' listener on the pool is not an exception (pg throws it from emit)",
  async (makePool) => {
    const pool = makePool({ max: 1 })
    const client = await pool.connect()
    client.release()
    const removed = once(pool, 'remove')
    let thrown = null
    try {
      client.emit('error', new Error('nobody listens'))
    } catch (e) {
      thrown = e.message
    }
    await removed
    return { thrown, totalCount: pool.totalCount, after: (await pool.query('select 1 as one')).rows }
  },
  {
    pg: { thrown: 'nobody listens', totalCount: 0, after: [{ one: 1 }] },
    onepool: { thrown: null, totalCount: 0, after: [{ one: 1 }] },
  },
)

differs(
  'a name never given a text is refused before it is sent (pg sends it and the server fails it)',
  async (makePool) => {
    const pool = makePool({ max: 1 })
    const e = await pool.query({ name: 'compat_never_prepared', values: [1] }).catch((err) => err)
    return e.code
  },
  { pg: '08P01', onepool: 'PARAM_INVALID' },
)

differs(
  'a request keeps at most 1 MiB of notices; pg delivers every one',
  async (makePool) => {
    const pool = makePool({ max: 1 })
    const client = await pool.connect()
    let count = 0
    let first
    client.on('notice', (n) => {
      if (count++ === 0) first = n.message
    })
    await client.query("do $$ begin for i in 1..20000 loop raise notice '% %', i, repeat('x', 100); end loop; end $$")
    client.release()
    return { all: count === 20000, some: count > 1000, first: first.split(' ')[0] }
  },
  {
    pg: { all: true, some: true, first: '1' },
    onepool: { all: false, some: true, first: '1' },
  },
)

differs(
  'maxLifetimeSeconds defaults to 1800 (pg: 0, never)',
  async (makePool) => makePool().options.maxLifetimeSeconds,
  { pg: 0, onepool: 1800 },
)

differs(
  'binary: true is refused (pg asks for binary results)',
  async (makePool) => {
    try {
      const pool = makePool({ binary: true })
      return pool.options.binary
    } catch (e) {
      return e.code
    }
  },
  { pg: true, onepool: 'CONFIG_INVALID' },
)

test("a 'release' listener (Vercel's attachDatabasePool adds one) leaves pool.query shared: no checkout, no use counted", async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName('compat'), max: 1, maxUses: 1 })
  try {
    const released = []
    pool.on('release', (err, client) => released.push([err, client]))
    const pids = []
    for (let i = 0; i < 3; i++) pids.push((await pool.query('select pg_backend_pid() as pid')).rows[0].pid)
    // Checked out, each query would have used the connection up (maxUses 1) and closed it.
    assert.equal(new Set(pids).size, 1)
    assert.deepEqual(released, [[null, undefined], [null, undefined], [null, undefined]])
  } finally {
    await pool.end()
  }
})
