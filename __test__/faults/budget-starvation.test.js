'use strict'
// The process budget must not starve waiters: a connection that goes idle while another pool
// waits for the budget is closed so that pool gets the slot (not held until its idle timeout).

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool, setProcessMaxConnections, processStats } = require('../..')
const { TEST_URL, uniqueName, countConnections } = require('../helpers/db')

test('budget 1, two pools: a query on B waiting while A is busy runs as soon as A is done', async () => {
  setProcessMaxConnections(1)
  try {
    const a = createPool({ connectionString: TEST_URL, name: uniqueName('a'), max: 1, acquireTimeoutMs: 5000 })
    const b = createPool({ connectionString: TEST_URL, name: uniqueName('b'), max: 1, acquireTimeoutMs: 5000 })
    await a.query('select 1')
    const busy = a.query('select pg_sleep(0.15)')
    const waiting = b.query('select 2 as n').then((r) => r.rows[0].n, (e) => e.code)
    await busy
    // A's connection is idle now; B must get the slot, not wait 5 s for POOL_TIMEOUT.
    const outcome = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000))])
    assert.equal(outcome, 2)
    assert.equal(b.stats().acquireTimeouts, 0)
    assert.equal(processStats().budget.used, 1)
    await a.end()
    await b.end()
  } finally {
    setProcessMaxConnections(null)
  }
})

test('budget 20, 200 pools querying at once: every query succeeds within the budget', async () => {
  const app = uniqueName('many')
  setProcessMaxConnections(20)
  try {
    const pools = Array.from({ length: 200 }, () =>
      createPool({ connectionString: TEST_URL, name: uniqueName('p'), applicationName: app, max: 1, acquireTimeoutMs: 5000 }),
    )
    const outcomes = await Promise.all(
      pools.map((p, i) => p.query('select pg_sleep(0.01), $1::int as n', [i]).then((r) => r.rows[0].n, (e) => e.code)),
    )
    assert.deepEqual(outcomes, Array.from({ length: 200 }, (_, i) => i))
    assert.ok(processStats().budget.used <= 20)
    assert.ok((await countConnections(app)) <= 20)
    await Promise.all(pools.map((p) => p.end()))
  } finally {
    setProcessMaxConnections(null)
  }
})
