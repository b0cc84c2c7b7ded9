'use strict'
// LISTEN/NOTIFY (README, "LISTEN/NOTIFY"): one listening connection per pool, subscriptions that
// survive module re-evaluation (replaced, never doubled; a re-registered addon:
// listen-reregister.test.js), reconnects, ordered delivery of bursts without blocking the event
// loop, handlers that throw. What the server sees comes from pg_stat_activity.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const vm = require('node:vm')
const { pathToFileURL } = require('node:url')
const { TEST_URL, APP_NAME, admin, uniqueName, waitFor } = require('../helpers/db')
const { LISTEN_MODULE, fixtureState, listeningBackends, eventually } = require('../helpers/listen')
const { forgetOnepool } = require('../helpers/reload')

const root = path.join(__dirname, '..', '..')
const { createPool, processStats } = require(root)

async function backends(app) {
  const r = await admin(`select pid from pg_stat_activity where ${APP_NAME} = $1 order by pid`, [app])
  return r.rows.map((row) => row.pid)
}

/** A pool of its own (its own name): a test's subscriptions never share another test's pool. */
function pool(app, options = {}) {
  return createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 3, ...options })
}

/** Clears the require cache of the fixture and, with `onepool`, of onepool's JS layer (not the addon). */
function forget({ onepool = false } = {}) {
  delete require.cache[LISTEN_MODULE]
  if (onepool) forgetOnepool()
}

test('listen and notify: the handler gets channel, payload and the notifier pid; one listening connection, counted in size', async () => {
  const app = uniqueName()
  const db = pool(app)
  const got = []
  const sub = db.listen('orders', (n) => got.push(n))
  assert.equal(sub.channel, 'orders')
  await sub.ready
  const s = db.stats()
  assert.deepEqual([s.listening, s.size, s.inUse, s.idle], [1, 1, 0, 0])
  assert.equal(processStats().pools.find((p) => p.name === s.name && p.target === s.target).listening, 1)
  const notifier = await admin("select pg_notify('orders', 'from psql') is null, pg_backend_pid() as pid")
  await db.notify('orders', '{"id":1}')
  await db.notify('orders')
  await eventually('three notifications arrived', () => got.length === 3)
  assert.deepEqual(got[0], { channel: 'orders', payload: 'from psql', processId: notifier.rows[0].pid })
  assert.deepEqual(got.slice(1).map((n) => n.payload), ['{"id":1}', ''])
  assert.equal(typeof got[1].processId, 'number')
  assert.equal((await listeningBackends(app)).length, 1)
  sub.unlisten()
  await db.end()
})

test('channel names are quoted, exact and case-sensitive; a 7999-byte payload arrives intact, 8000 bytes is PARAM_INVALID', async () => {
  const app = uniqueName()
  const db = pool(app)
  const names = ['Mixed Case', 'mixed case', 'with "quotes"', 'semi; drop table x; --', 'ünïcødé', 'x'.repeat(63)]
  const got = new Map(names.map((n) => [n, []]))
  const subs = names.map((name) => db.listen(name, (n) => got.get(name).push(n.payload)))
  await Promise.all(subs.map((s) => s.ready))
  for (const name of names) await db.notify(name, `to ${name}`)
  const big = 'é'.repeat(3999) + 'a' // 7999 bytes
  await db.notify('Mixed Case', big)
  await eventually('every channel got its notifications', () => names.every((n) => got.get(n).length >= 1) && got.get('Mixed Case').length === 2)
  for (const name of names) assert.deepEqual(got.get(name).slice(0, 1), [`to ${name}`], name)
  assert.equal(got.get('Mixed Case')[1], big)
  await assert.rejects(db.notify('Mixed Case', big + 'a'), (e) => e.code === 'PARAM_INVALID' && /8000 bytes.*at most 7999/.test(e.message))
  await assert.rejects(db.notify('Mixed Case', 'é'.repeat(4000)), (e) => e.code === 'PARAM_INVALID')
  assert.equal((await listeningBackends(app)).length, 1, 'one connection listens to every channel')
  for (const s of subs) s.unlisten()
  await db.end()
})

test('bad arguments are PARAM_INVALID, thrown by listen() itself', async () => {
  const db = pool(uniqueName())
  const bad = [
    () => db.listen('', () => {}),
    () => db.listen('x'.repeat(64), () => {}),
    () => db.listen(42, () => {}),
    () => db.listen('c'),
    () => db.listen('c', () => {}, { keey: 'x' }),
    () => db.listen('c', () => {}, { key: '' }),
    () => db.listen('c', () => {}, { onReconnect: 'no' }),
  ]
  for (const call of bad) assert.throws(call, (e) => e.code === 'PARAM_INVALID', String(call))
  await assert.rejects(db.notify('c', { id: 1 }), (e) => e.code === 'PARAM_INVALID' && /JSON\.stringify/.test(e.message))
  await assert.rejects(db.notify('', 'x'), (e) => e.code === 'PARAM_INVALID')
  assert.equal(db.stats().size, 0, 'nothing was opened')
  await db.end()
})

test('listenUrl (alias directUrl) is checked by createPool: CONFIG_INVALID naming it, without the password', () => {
  for (const [option, url] of [
    ['listenUrl', 'mysql://u:s3cret-pw@h/d'],
    ['directUrl', 'postgres://u:s3cret-pw@h/d#x'],
    ['listenUrl', ' '],
    // Its pool has one server: a host list would silently come down to the first host.
    ['listenUrl', 'postgres://u:s3cret-pw@h1,h2:5433/d'],
  ]) {
    assert.throws(
      () => createPool({ connectionString: TEST_URL, name: uniqueName(), [option]: url }),
      (e) => e.code === 'CONFIG_INVALID' && /listenUrl/.test(e.message) && !e.message.includes('s3cret'),
      `${option}=${url}`,
    )
  }
  assert.throws(
    () => createPool({ connectionString: TEST_URL, listenUrl: 'postgres://a@h/d', directUrl: 'postgres://b@h/d' }),
    (e) => e.code === 'CONFIG_INVALID' && /alias/.test(e.message),
  )
})

test('a module that subscribes at module scope, evaluated 50 times, handles each notification exactly once', async () => {
  const app = uniqueName()
  const channel = uniqueName('hot')
  const state = fixtureState(app, channel)
  let mod
  for (let i = 1; i <= 50; i++) {
    // Every tenth time onepool's own JS layer is evaluated again too (a cleared module registry).
    forget({ onepool: i % 10 === 0 })
    mod = require(LISTEN_MODULE)
    assert.equal(mod.evaluation, i)
    if (i === 1) await mod.sub.ready
    await mod.db.notify(channel, `n${i}`)
    await eventually(`notification ${i} was handled`, () => state.handled.length >= i)
  }
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(state.handled.length, 50, 'no notification was handled twice')
  state.handled.forEach((h, i) => assert.deepEqual(h, { evaluation: i + 1, payload: `n${i + 1}` }, 'each by the evaluation live when it was sent'))
  assert.deepEqual(await listeningBackends(app), [await waitFor(async () => (await listeningBackends(app))[0])])
  const s = mod.db.stats()
  assert.equal(s.listening, 1)
  assert.equal(s.handles, 50)
  await mod.db.end()
  delete globalThis.__onepoolListenFixture
})

test('a module evaluated in a fresh realm (node:vm) 20 times replaces its subscription each time', async () => {
  const app = uniqueName()
  const channel = uniqueName('realm')
  const state = fixtureState(app, channel)
  const source = fs.readFileSync(LISTEN_MODULE, 'utf8')
  let exported
  for (let i = 1; i <= 20; i++) {
    const context = vm.createContext({ __onepoolListenFixture: state, require, process, console, module: { exports: {} } })
    vm.runInContext(source, context, { filename: LISTEN_MODULE })
    exported = context.module.exports
    if (i === 1) await exported.sub.ready
    await exported.db.notify(channel, `r${i}`)
    await eventually(`notification ${i} was handled`, () => state.handled.length >= i)
  }
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(
    state.handled.map((h) => [h.evaluation, h.payload]),
    Array.from({ length: 20 }, (_, i) => [i + 1, `r${i + 1}`]),
  )
  assert.equal((await listeningBackends(app)).length, 1)
  await exported.db.end()
  delete globalThis.__onepoolListenFixture
})

test('an ES module that subscribes after a top-level await, imported again 10 times, replaces its subscription each time', async () => {
  const app = uniqueName()
  const channel = uniqueName('tla')
  const state = fixtureState(app, channel)
  const url = pathToFileURL(path.join(__dirname, '..', 'fixtures', 'listen-module-tla.mjs'))
  let mod
  for (let i = 1; i <= 10; i++) {
    mod = await import(`${url}?evaluation=${i}`)
    if (i === 1) await mod.sub.ready
    await mod.db.notify(channel, `t${i}`)
    await eventually(`notification ${i} was handled`, () => state.handled.length >= i)
  }
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(
    state.handled.map((h) => [h.evaluation, h.payload]),
    Array.from({ length: 10 }, (_, i) => [i + 1, `t${i + 1}`]),
  )
  assert.equal((await listeningBackends(app)).length, 1)
  await mod.db.end()
  delete globalThis.__onepoolListenFixture
})

test("webpack's async module in development (a module with an ESM external: onepool) is module scope after its await", async () => {
  // What webpack's dev build evaluates for such a module: its source in an eval, the module body
  // in an async wrapper on the first line, run on after the dependencies resolved.
  const db = pool(uniqueName())
  const channel = uniqueName('webpack')
  const got = []
  const scope = { db, channel, got, evaluate: (fn) => fn() }
  globalThis.__onepoolWebpackScope = scope
  try {
    for (let i = 1; i <= 3; i++) {
      const source =
        `__onepoolWebpackScope.evaluate(async () => { await null\n` +
        `  const s = __onepoolWebpackScope\n` +
        `  s.sub = s.db.listen(s.channel, (n) => s.got.push([${i}, n.payload]))\n` +
        `})\n//# sourceURL=webpack-internal:///(rsc)/./app/api/listen/route.ts`
      ;(0, eval)(source)
      await new Promise((r) => setImmediate(r))
      await scope.sub.ready
      await db.notify(channel, `w${i}`)
      await eventually(`notification ${i} was handled`, () => got.length >= i)
    }
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(got, [[1, 'w1'], [2, 'w2'], [3, 'w3']])
  } finally {
    delete globalThis.__onepoolWebpackScope
  }
  await db.end()
})

test('two subscriptions to one channel at module scope in one evaluation: the second replaces the first, with a warning', async () => {
  const db = pool(uniqueName())
  const channel = uniqueName('twice')
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  const got = []
  let ready
  try {
    const context = vm.createContext({ db, channel, got })
    ready = vm.runInContext(
      `db.listen(channel, (n) => got.push(['first', n.payload]))
      db.listen(channel, (n) => got.push(['second', n.payload])).ready`,
      context,
      { filename: 'two-subscriptions.js' },
    )
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('warning', onWarning)
  }
  const warning = warnings.find((w) => w.code === 'ONEPOOL_LISTEN_KEY')
  assert.ok(warning, 'warned')
  assert.match(warning.message, new RegExp(`"${channel}".*Give each its own \\{ key \\}`))
  await ready
  await db.notify(channel, 'x')
  await eventually('delivered', () => got.length === 1)
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(got.map((g) => [...g]), [['second', 'x']]) // arrays of the vm realm, copied
  await db.end()
})

test('subscriptions made after module evaluation (a request handler) have no key: they coexist until unlisten()', async () => {
  const app = uniqueName()
  const db = pool(app)
  const channel = uniqueName('sse')
  const got = [[], [], []]
  // As an SSE route would: one subscription per request, from the same line.
  const onRequest = (i) => db.listen(channel, (n) => got[i].push(n.payload))
  const subs = await new Promise((resolve) => setImmediate(() => resolve([0, 1, 2].map(onRequest))))
  await Promise.all(subs.map((s) => s.ready))
  await db.notify(channel, 'all')
  await eventually('all three got it', () => got.every((g) => g.length === 1))
  subs[1].unlisten()
  subs[1].unlisten()
  await db.notify(channel, 'two')
  await eventually('the other two got it', () => got[0].length === 2 && got[2].length === 2)
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(got, [['all', 'two'], ['all'], ['all', 'two']])
  subs[0].unlisten()
  subs[2].unlisten()
  await db.end()
})

test('an explicit key replaces the subscription holding it; key: null never replaces', async () => {
  const db = pool(uniqueName())
  const channel = uniqueName('key')
  const got = []
  const first = db.listen(channel, (n) => got.push(['first', n.payload]), { key: 'orders-cache' })
  await first.ready
  const second = db.listen(channel, (n) => got.push(['second', n.payload]), { key: 'orders-cache' })
  const third = db.listen(channel, (n) => got.push(['third', n.payload]), { key: null })
  const fourth = db.listen(channel, (n) => got.push(['fourth', n.payload]), { key: null })
  await Promise.all([second.ready, third.ready, fourth.ready])
  await db.notify(channel, 'x')
  await eventually('three handlers ran', () => got.length === 3)
  await new Promise((r) => setTimeout(r, 50))
  assert.deepEqual(got.sort(), [['fourth', 'x'], ['second', 'x'], ['third', 'x']])
  // The replaced one's handle reaches nothing any more.
  first.unlisten()
  await db.notify(channel, 'y')
  await eventually('the live ones still run', () => got.length === 6)
  for (const s of [second, third, fourth]) s.unlisten()
  await db.end()
})

test('pg_terminate_backend of the listening connection: it reconnects, LISTENs again, calls onReconnect, delivers what comes next', async () => {
  const app = uniqueName()
  const db = pool(app)
  const channel = uniqueName('term')
  const got = []
  const reconnects = []
  const sub = db.listen(channel, (n) => got.push(n.payload), { onReconnect: (info) => reconnects.push(info) })
  await sub.ready
  await db.notify(channel, 'before')
  const [pid] = await listeningBackends(app)
  const lostAt = Date.now()
  await admin('select pg_terminate_backend($1)', [pid])
  await eventually('onReconnect was called', () => reconnects.length === 1)
  const info = reconnects[0]
  assert.equal(info.channel, channel)
  assert.equal(info.cause.code, 'CONNECTION_LOST')
  assert.match(info.cause.message, /terminating connection due to administrator command \(57P01\)/)
  assert.ok(info.since instanceof Date && info.since.getTime() >= lostAt - 1000 && info.since.getTime() <= Date.now())
  assert.equal(info.attempts, 1)
  const now = await listeningBackends(app)
  assert.equal(now.length, 1)
  assert.notEqual(now[0], pid, 'a new backend listens')
  await db.notify(channel, 'after')
  await eventually('the notification after the reconnect arrived', () => got.includes('after'))
  assert.deepEqual(got, ['before', 'after'])
  assert.equal(db.stats().listening, 1)
  sub.unlisten()
  await db.end()
})

test('unlisten() of the last subscription closes the listening connection', async () => {
  const app = uniqueName()
  const db = pool(app)
  const a = db.listen(uniqueName('a'), () => {})
  const b = db.listen(uniqueName('b'), () => {})
  await Promise.all([a.ready, b.ready])
  const [pid] = await listeningBackends(app)
  assert.deepEqual(await backends(app), [pid])
  a.unlisten()
  await db.query('select 1') // on another connection: the listening one is out of circulation
  await new Promise((r) => setTimeout(r, 100))
  assert.ok((await backends(app)).includes(pid), 'still listening to b')
  b.unlisten()
  await eventually('the listening backend is gone from pg_stat_activity', async () => !(await backends(app)).includes(pid))
  assert.equal(db.stats().listening, 0)
  assert.equal(db.stats().size, db.stats().idle, 'only the idle query connection is left')
  await db.end()
})

test('the listening connection counts in max: with max 2 one client can be checked out, not two', async () => {
  const db = pool(uniqueName(), { max: 2, acquireTimeoutMs: 300 })
  const sub = db.listen(uniqueName('m'), () => {})
  await sub.ready
  const client = await db.connect()
  assert.deepEqual([db.stats().size, db.stats().inUse, db.stats().listening], [2, 1, 1])
  await assert.rejects(db.connect(), (e) => e.code === 'POOL_TIMEOUT')
  await client.release()
  sub.unlisten()
  await db.end()
})

test('10,000 notifications in a burst arrive in order, and the event loop keeps turning', async (t) => {
  const db = pool(uniqueName())
  const channel = uniqueName('burst')
  const got = []
  // Which turn of the event loop each handler call ran in: how much work one turn did is how
  // long delivery blocked the loop.
  let turn = 0
  let running = true
  const spin = () => {
    turn++
    if (running) setImmediate(spin)
  }
  spin()
  const turns = new Map()
  const WORK_MS = 0.02
  const sub = db.listen(channel, (n) => {
    const now = performance.now()
    const s = turns.get(turn)
    if (s) {
      s.calls++
      s.last = now
    } else {
      turns.set(turn, { calls: 1, first: now, last: now })
    }
    // Some work per notification, as a real handler does: 10,000 of them take 200 ms.
    while (performance.now() - now < WORK_MS);
    got.push(Number(n.payload))
  })
  await sub.ready
  await db.query('select pg_notify($1, g::text) from generate_series(1, 10000) g', [channel])
  await eventually('all 10,000 arrived', () => got.length === 10000, 60000)
  running = false
  assert.deepEqual(got, Array.from({ length: 10000 }, (_, i) => i + 1), 'in the order they were sent')
  const most = Math.max(...[...turns.values()].map((s) => s.calls))
  const longest = Math.max(...[...turns.values()].map((s) => s.last - s.first))
  t.diagnostic(`delivered over ${turns.size} turns of the event loop; at most ${most} handler calls (${(most * WORK_MS).toFixed(1)} ms of their work) in one turn; longest turn ${longest.toFixed(1)} ms wall clock`)
  // Counted in handler work rather than wall-clock time, which a busy machine stretches.
  assert.ok(most * WORK_MS < 50, `one turn ran ${most} handlers: ${(most * WORK_MS).toFixed(1)} ms of work without yielding`)
  sub.unlisten()
  await db.end()
})

test('a handler that throws (or rejects) neither crashes the process nor stops other handlers or later notifications', async () => {
  const db = pool(uniqueName())
  const channel = uniqueName('throw')
  const errors = []
  const logged = []
  const uncaught = []
  const onUncaught = (e) => uncaught.push(e)
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  const consoleError = console.error
  console.error = (...args) => logged.push(args)
  const good = []
  try {
    const subs = [
      db.listen(channel, (n) => {
        throw new Error(`sync ${n.payload}`)
      }, { onError: (e, n) => errors.push([e.message, n.payload]) }),
      db.listen(channel, async (n) => {
        throw new Error(`async ${n.payload}`)
      }, { onError: (e, n) => errors.push([e.message, n.payload]) }),
      db.listen(channel, () => {
        throw new Error('no onError')
      }),
      db.listen(channel, (n) => good.push(n.payload)),
    ]
    await Promise.all(subs.map((s) => s.ready))
    for (const p of ['1', '2', '3']) await db.notify(channel, p)
    await eventually('the good handler got all three', () => good.length === 3)
    await eventually('every error was reported', () => errors.length === 6 && logged.length === 3)
    assert.deepEqual(good, ['1', '2', '3'])
    assert.deepEqual(errors.filter((e) => e[0].startsWith('sync')).map((e) => e[1]), ['1', '2', '3'])
    assert.deepEqual(errors.filter((e) => e[0].startsWith('async')).map((e) => e[1]), ['1', '2', '3'])
    assert.match(String(logged[0][0]), new RegExp(`listen\\(\\) handler for channel "${channel}" threw`))
    assert.equal(logged[0][1].message, 'no onError')
    assert.deepEqual(uncaught, [])
    for (const s of subs) s.unlisten()
  } finally {
    console.error = consoleError
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  }
  await db.end()
})

test('ready rejects when the first attempt cannot connect; the subscription keeps trying until unlisten()', async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
  const db = createPool({ host: '127.0.0.1', port, user: 'nobody', name: uniqueName(), connectTimeoutMs: 300, acquireTimeoutMs: 300 })
  const sub = db.listen('c', () => {})
  await assert.rejects(sub.ready, (e) => e.code === 'CONNECT_FAILED' && e.cause.code === 'ECONNREFUSED')
  // A later subscription hears that listening is down at once.
  const later = db.listen('c', () => {})
  await assert.rejects(later.ready, (e) => e.code === 'CONNECT_FAILED')
  sub.unlisten()
  later.unlisten()
  await db.end()
})

test('end() ends the subscriptions and closes the listening connection; listen() after it is POOL_CLOSED', async () => {
  const app = uniqueName()
  const db = pool(app)
  const sub = db.listen(uniqueName('end'), () => {})
  await sub.ready
  const [pid] = await listeningBackends(app)
  await db.end()
  await eventually('the listening backend is gone', async () => !(await backends(app)).includes(pid))
  assert.throws(() => db.listen('c', () => {}), (e) => e.code === 'POOL_CLOSED')
  sub.unlisten() // after end: a no-op
  // A subscription whose LISTEN never happened: its ready rejects with POOL_CLOSED.
  const other = pool(uniqueName())
  const pending = other.listen('c', () => {})
  const ended = other.end()
  await assert.rejects(pending.ready, (e) => e.code === 'POOL_CLOSED')
  await ended
})
