'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const { createPool, setProcessMaxConnections, processStats } = require('../..')
const { TEST_URL, watchPeak, uniqueName, countConnections } = require('../helpers/db')

test('the process budget bounds two differently named pools together, FIFO, without failures', async () => {
  const app = uniqueName()
  setProcessMaxConnections(3)
  try {
    const a = createPool({ connectionString: TEST_URL, name: uniqueName('a'), applicationName: app, max: 3 })
    const b = createPool({ connectionString: TEST_URL, name: uniqueName('b'), applicationName: app, max: 3 })
    const watch = watchPeak(app, 10)
    const queries = []
    for (let i = 0; i < 30; i++) {
      const p = i % 2 ? a : b
      queries.push(p.query('select pg_sleep(0.01), $1::int as n', [i]))
    }
    const rows = await Promise.all(queries)
    const peak = await watch.stop()
    assert.deepEqual(rows.map((r) => r.rows[0].n), Array.from({ length: 30 }, (_, i) => i))
    assert.ok(peak <= 3, `peak ${peak} ≤ budget 3`)
    assert.equal(processStats().budget.limit, 3)
    assert.ok(processStats().budget.used <= 3)

    // Pool a holds idle connections; pool b needs one: a gives up an idle connection.
    await Promise.all([1, 2, 3].map(() => a.query('select pg_sleep(0.01)')))
    const clients = await Promise.all([1, 2, 3].map(() => b.connect()))
    assert.equal(b.stats().inUse, 3)
    assert.ok((await countConnections(app)) <= 3)
    for (const c of clients) await c.release()
    await a.end()
    await b.end()
  } finally {
    setProcessMaxConnections(null)
  }
  assert.equal(processStats().budget.limit, null)
})

test('ONEPOOL_MAX_CONNECTIONS sets the budget for the process', () => {
  const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(path.join(__dirname, '..', '..'))}).processStats().budget))`], {
    env: { ...process.env, ONEPOOL_MAX_CONNECTIONS: '7' },
  })
  assert.deepEqual(JSON.parse(out), { limit: 7, used: 0, waiting: 0 })
})
