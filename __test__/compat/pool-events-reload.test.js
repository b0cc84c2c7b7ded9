'use strict'
// pg-pool's events under hot reload (README, "Events under hot reload"): a module evaluated N
// times holds N Pool objects of one native pool; the native pool's events (remove, error) reach
// only the newest object per creating file, so stale listeners never pile up, while a pool
// created in another file hears them too. Checkout events stay with the object that checked out.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { createPool } = require('../..')
const { TEST_URL, admin, uniqueName, waitFor } = require('../helpers/db')

const FIXTURE = path.join(__dirname, 'fixtures', 'db-module.js')

/** Evaluates the fixture module again, as a hot reload does; returns its pool. */
function evaluate() {
  delete require.cache[require.resolve(FIXTURE)]
  return require(FIXTURE)
}

test('native events reach the newest Pool object of a re-evaluated module, and pools made elsewhere', async () => {
  const keepAlive = setInterval(() => {}, 1000)
  process.env.ONEPOOL_COMPAT_RELOAD_NAME = uniqueName('reload')
  const evaluations = []
  const heard = []
  try {
    for (let i = 0; i < 5; i++) {
      const pool = evaluate()
      const counts = { remove: 0, error: 0 }
      pool.on('remove', () => counts.remove++)
      pool.on('error', () => counts.error++)
      evaluations.push(pool)
      heard.push(counts)
    }
    assert.equal(new Set(evaluations.map((p) => p.stats().name)).size, 1)
    assert.equal(evaluations[0].stats().handles, 5)
    // The same native pool, created from this file: another creation site.
    const elsewhere = createPool({ connectionString: TEST_URL, name: process.env.ONEPOOL_COMPAT_RELOAD_NAME, max: 2 })
    const elsewhereCounts = { remove: 0, error: 0 }
    elsewhere.on('remove', () => elsewhereCounts.remove++)
    elsewhere.on('error', () => elsewhereCounts.error++)

    // A connection closed on purpose: 'remove'.
    const client = await evaluations[4].connect()
    await client.release(true)
    await waitFor(() => heard[4].remove === 1 && elsewhereCounts.remove === 1)

    // An idle connection the server ends: 'error', then 'remove'.
    const idle = await evaluations[4].connect()
    const pid = idle.processID
    idle.release()
    await admin('select pg_terminate_backend($1)', [pid])
    await waitFor(() => heard[4].error === 1 && heard[4].remove === 2 && elsewhereCounts.remove === 2)

    assert.deepEqual(heard, [
      { remove: 0, error: 0 },
      { remove: 0, error: 0 },
      { remove: 0, error: 0 },
      { remove: 0, error: 0 },
      { remove: 2, error: 1 },
    ])
    assert.deepEqual(elsewhereCounts, { remove: 2, error: 1 })

    // A stale object still works, and its own checkouts raise its own events.
    let staleAcquires = 0
    evaluations[0].on('acquire', () => staleAcquires++)
    const stale = await evaluations[0].connect()
    assert.deepEqual((await stale.query('select 1 as one')).rows, [{ one: 1 }])
    stale.release()
    assert.equal(staleAcquires, 1)
    await evaluations[4].end()
  } finally {
    clearInterval(keepAlive)
  }
})
