'use strict'
// Worker threads share the process-global pool, and its connections outlive every worker:
// the pool runs on onepool's own runtime, not on one that dies with the last JS environment.
// This file must not load onepool on the main thread before the workers are done.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { TEST_URL, countConnections, watchPeak, uniqueName } = require('../helpers/db')

function runWorker(workerData) {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, '..', 'fixtures', 'worker-queries.js'), { workerData })
    let message
    w.once('message', (m) => (message = m))
    w.once('error', reject)
    w.once('exit', () => resolve(message))
  })
}

test('four worker threads share one bounded pool that keeps its connections after they exit', async () => {
  const app = uniqueName()
  const watch = watchPeak(app, 10)
  const results = await Promise.all([1, 2, 3, 4].map(() => runWorker({ url: TEST_URL, app, max: 3, queries: 40 })))
  const peak = await watch.stop()
  for (const r of results) assert.equal(r.ok, true, r.error)
  assert.ok(peak <= 3, `peak ${peak} ≤ max 3 across 4 workers`)
  assert.equal(Math.max(...results.map((r) => r.stats.handles)), 4, 'all four workers attached to one pool')
  const created = Math.max(...results.map((r) => r.stats.created))

  // Every worker has exited. The connections are still open on the server...
  await new Promise((r) => setTimeout(r, 300))
  const open = await countConnections(app)
  assert.ok(open >= 1 && open <= 3, `connections kept after the workers exited: ${open}`)

  // ...and the main thread, loading the addon only now, finds the same pool and reuses them.
  const { createPool, processStats } = require('../..')
  const stats = processStats().pools.find((p) => p.target.includes('127.0.0.1') && p.handles === 4)
  assert.ok(stats, 'the pool created by the workers is in the registry')
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 3 })
  assert.equal((await pool.query('select 1 as x')).rows[0].x, 1)
  assert.equal(pool.stats().created, created, 'no reconnect was needed')
  await pool.end()
})
