'use strict'
// Issue 4, load: 20,000 queries with 500 in flight on `max: 5`. Every query completes with its
// own result (none lost, none duplicated, none swapped), the server never sees more than 5
// connections for the pool's application_name, and the pool ends empty.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool, processStats } = require('../..')
const { TEST_URL, countConnections, uniqueName } = require('../helpers/db')
const { recordProcessErrors, settle, tally, poll, samplePeakInWorker } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const TOTAL = Number(process.env.ONEPOOL_LOAD_QUERIES || 20000)
const IN_FLIGHT = 500
const MAX = 5

async function runLoad(t, label, pool, app, makeQuery) {
  // pg_stat_activity is sampled from a worker thread: the load keeps this thread's event loop
  // busy, which would starve a sampler running here.
  const watch = samplePeakInWorker(TEST_URL, app, 10)
  await watch.ready
  // How long this thread's timers wait under the load (reported, not asserted).
  let ticks = 0
  let lastTick = Date.now()
  let maxGap = 0
  const ticker = setInterval(() => {
    const now = Date.now()
    maxGap = Math.max(maxGap, now - lastTick)
    lastTick = now
    ticks++
  }, 10)
  const seen = new Uint8Array(TOTAL)
  const wrong = []
  let statsPeak = { size: 0, inUse: 0, waiting: 0, used: 0 }
  let next = 0
  let done = 0
  const failures = []
  const started = process.hrtime.bigint()
  async function lane() {
    while (next < TOTAL) {
      const i = next++
      const o = await settle(makeQuery(i), 60000)
      if (!o.ok) {
        failures.push(o)
        continue
      }
      const n = o.value
      if (n !== i) wrong.push([i, n])
      else seen[i]++
      done++
      if ((done & 63) === 0) {
        const s = pool.stats()
        statsPeak = {
          size: Math.max(statsPeak.size, s.size),
          inUse: Math.max(statsPeak.inUse, s.inUse),
          waiting: Math.max(statsPeak.waiting, s.waiting),
          used: Math.max(statsPeak.used, processStats().budget.used),
        }
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  clearInterval(ticker)
  const { peak, samples } = await watch.stop()
  const tl = tally(failures)
  t.diagnostic(
    `${label}: ${TOTAL} queries, ${IN_FLIGHT} in flight, max ${MAX}: ${ms.toFixed(0)} ms, ${Math.round((TOTAL / ms) * 1000)} queries/s; ` +
      `server peak ${peak} connections (${samples} samples of pg_stat_activity); event loop: ${ticks} ticks of a 10 ms timer, longest gap ${maxGap} ms; stats peak ${JSON.stringify(statsPeak)}; created ${pool.stats().created}`,
  )
  assert.equal(failures.length, 0, `failures: ${JSON.stringify(tl.codes)} hung ${tl.hung} ${failures.slice(0, 3).map((f) => f.error && f.error.message)}`)
  assert.deepEqual(wrong.slice(0, 10), [], 'queries got another query\'s result')
  let missing = 0
  let duplicated = 0
  for (let i = 0; i < TOTAL; i++) {
    if (seen[i] === 0) missing++
    if (seen[i] > 1) duplicated++
  }
  assert.equal(missing, 0, 'lost results')
  assert.equal(duplicated, 0, 'duplicated results')
  assert.ok(samples >= 10, `only ${samples} samples of pg_stat_activity during the load`)
  assert.ok(peak >= 1 && peak <= MAX, `the server saw ${peak} connections for max ${MAX}`)
  assert.ok(statsPeak.size <= MAX, `pool size reached ${statsPeak.size}`)
  assert.ok(statsPeak.waiting <= IN_FLIGHT)
  assert.ok(pool.stats().created <= MAX, `created ${pool.stats().created} connections for max ${MAX} on a healthy server`)
  return { ms, peak }
}

test(`load: ${TOTAL} queries, ${IN_FLIGHT} in flight, max ${MAX}: all complete with their own result, never more than ${MAX} connections`, LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('load')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: MAX, acquireTimeoutMs: 60000 })
  try {
    await runLoad(t, 'pool.query', pool, app, (i) => pool.query('select $1::int as n', [i]).then((r) => r.rows[0].n))
    const s = pool.stats()
    assert.equal(s.inUse, 0)
    assert.equal(s.waiting, 0)
    assert.equal(s.acquireTimeouts, 0)
  } finally {
    await pool.end({ timeoutMs: 5000 })
    assert.equal(await poll(async () => (await countConnections(app)) === 0), true, 'connections left after end()')
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})

test(`load: ${TOTAL} connect/query/release cycles, ${IN_FLIGHT} in flight, max ${MAX}, mixed with transactions`, LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('load_cx')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: MAX, acquireTimeoutMs: 60000 })
  try {
    await runLoad(t, 'connect()+transaction()', pool, app, async (i) => {
      if (i % 2) {
        return pool.transaction(async (c) => (await c.query('select $1::int as n', [i])).rows[0].n)
      }
      const c = await pool.connect()
      try {
        return (await c.query({ text: 'select $1::int as n', values: [i], rowMode: 'array' })).rows[0][0]
      } finally {
        await c.release()
      }
    })
    assert.equal(pool.stats().inUse, 0)
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})
