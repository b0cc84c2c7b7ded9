'use strict'
// One worker thread of the soak test (__test__/faults/soak.test.js): mixed queries,
// transactions (with a rolled-back savepoint), checked-out clients, aborts, server errors and
// module re-evaluations, against one shared native pool, until told to stop. Answers
// { cmd: 'measure' } with its JS heap after a full GC.

const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const { parentPort, workerData } = require('node:worker_threads')

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

const ROOT = path.resolve(__dirname, '../..')
const { options, table, id, lanes, reevalEvery } = workerData

const counts = {
  ops: 0,
  queries: 0,
  transactions: 0,
  clients: 0,
  aborts: 0,
  abortedOk: 0,
  abortedCompleted: 0,
  serverErrors: 0,
  bigResults: 0,
  reevals: 0,
  unexpected: {},
}
const committed = []
const unexpectedSamples = []
let stopping = false

process.on('unhandledRejection', (e) => note('unhandledRejection', e))
process.on('uncaughtException', (e) => note('uncaughtException', e))

function note(kind, e) {
  const key = `${kind}:${(e && e.code) || (e && e.name) || typeof e}`
  counts.unexpected[key] = (counts.unexpected[key] || 0) + 1
  if (unexpectedSamples.length < 5) unexpectedSamples.push(`${key}: ${e && e.message}`)
}

/** Re-evaluates onepool's JS (as a hot reload does) and attaches to the same native pool. */
function freshPool() {
  for (const key of Object.keys(require.cache)) {
    if (key === path.join(ROOT, 'index.js') || (key.startsWith(path.join(ROOT, 'lib') + path.sep) && key.endsWith('.js'))) {
      delete require.cache[key]
    }
  }
  // Node also lists every evaluation in the requiring module's `children`: drop the old one
  // there too, or this harness (not onepool) would keep every old module graph alive.
  module.children = module.children.filter((m) => m.id !== path.join(ROOT, 'index.js'))
  const onepool = require(path.join(ROOT, 'index.js'))
  return onepool.createPool(options)
}

let pool = freshPool()
let seq = 0

const expect = (cond, what) => {
  if (!cond) throw Object.assign(new Error(`wrong result: ${what}`), { code: 'WRONG_RESULT' })
}

async function op() {
  const r = Math.random()
  const n = ++seq
  if (r < 0.4) {
    const res = await pool.query('select $1::int as n', [n])
    expect(res.rows[0].n === n, 'query')
    counts.queries++
  } else if (r < 0.55) {
    const got = await pool.transaction(async (c) => {
      await c.query(`insert into ${table} (w, seq) values ($1, $2)`, [id, n])
      const marker = new Error('roll back the savepoint')
      await c
        .transaction(async (c2) => {
          await c2.query(`insert into ${table} (w, seq) values ($1, $2)`, [id, -n])
          throw marker
        })
        .catch((e) => {
          if (e !== marker) throw e
        })
      return n
    })
    expect(got === n, 'transaction')
    committed.push(n)
    counts.transactions++
  } else if (r < 0.65) {
    const c = await pool.connect()
    try {
      const a = await c.query('select $1::int as n', [n])
      const b = await c.query({ text: 'select $1::text as t', values: [String(n)], rowMode: 'array' })
      expect(a.rows[0].n === n && b.rows[0][0] === String(n), 'client')
    } finally {
      await c.release()
    }
    counts.clients++
  } else if (r < 0.8) {
    // Abort a running (or still waiting) pool query at a random moment.
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), Math.random() * 40)
    counts.aborts++
    try {
      const res = await pool.query({ text: 'select $1::int as n, pg_sleep(0.03)', values: [n], signal: ac.signal })
      expect(res.rows[0].n === n, 'abortable query')
      counts.abortedCompleted++
    } catch (e) {
      if (e.code !== 'ABORTED') throw e
      counts.abortedOk++
    } finally {
      clearTimeout(timer)
    }
  } else if (r < 0.85) {
    // Abort on a checked-out client; the client stays usable.
    const c = await pool.connect()
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), Math.random() * 40)
    counts.aborts++
    try {
      try {
        await c.query('select pg_sleep(0.03)', [], { signal: ac.signal })
        counts.abortedCompleted++
      } catch (e) {
        if (e.code !== 'ABORTED') throw e
        counts.abortedOk++
      }
      const after = await c.query('select $1::int as n', [n])
      expect(after.rows[0].n === n, 'client after abort')
    } finally {
      clearTimeout(timer)
      await c.release()
    }
  } else if (r < 0.9) {
    try {
      await pool.query('select 1 / (0 * $1::int)', [n])
      expect(false, 'division by zero succeeded')
    } catch (e) {
      if (e.code !== '22012') throw e
      counts.serverErrors++
    }
  } else {
    const res = await pool.query('select generate_series(1, 500) as n, repeat($1::text, 20) as pad', ['x'])
    expect(res.rows.length === 500 && res.rows[499].n === 500, 'big result')
    counts.bigResults++
  }
  counts.ops++
  if (counts.ops % reevalEvery === 0) {
    pool = freshPool()
    counts.reevals++
  }
}

async function lane() {
  while (!stopping) {
    try {
      await op()
    } catch (e) {
      note('op', e)
    }
  }
}

let running = null
parentPort.on('message', async (msg) => {
  if (msg.cmd === 'start') {
    running = Promise.all(Array.from({ length: lanes }, lane))
  } else if (msg.cmd === 'measure') {
    gc()
    gc()
    parentPort.postMessage({ cmd: 'measured', heap: v8.getHeapStatistics().used_heap_size })
  } else if (msg.cmd === 'stop') {
    stopping = true
    await running
    pool = null
    parentPort.postMessage({ cmd: 'stopped', counts, committed, unexpectedSamples })
  }
})
parentPort.postMessage({ cmd: 'ready' })
