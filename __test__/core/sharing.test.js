'use strict'
// How pool.query shares connections: concurrent fast queries are pipelined onto few connections
// (few busy backends), and none is queued behind a connection that is running something slow.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

/** A pool with `n` idle connections, all open. */
async function warmPool(n) {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: n })
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()))
  await Promise.all(clients.map((c) => c.release()))
  assert.equal(pool.stats().idle, n)
  return pool
}

test('concurrent fast queries are pipelined onto a few connections, not spread over all', async () => {
  const pool = await warmPool(10)
  try {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.query('select pg_backend_pid() as pid, $1::int as i', [i])))
    assert.deepEqual(results.map((r) => r.rows[0].i), Array.from({ length: 40 }, (_, i) => i))
    const backends = new Set(results.map((r) => r.rows[0].pid))
    // 40 requests, 16 per connection: 3 backends; spreading them used all 10. A connection
    // whose first answer takes over 1 ms (a loaded machine) is passed over, hence the margin.
    assert.ok(backends.size <= 7, `40 concurrent queries used ${backends.size} of 10 connections`)
  } finally {
    await pool.end()
  }
})

test('no query is queued behind a connection busy with a slow one while another is free', async () => {
  const pool = await warmPool(4)
  try {
    let slowDone = false
    const slow = pool.query('select pg_backend_pid() as pid, pg_sleep(0.4)').then((r) => {
      slowDone = true
      return r.rows[0].pid
    })
    await new Promise((resolve) => setTimeout(resolve, 30))
    const fast = await Promise.all(Array.from({ length: 6 }, () => pool.query('select pg_backend_pid() as pid')))
    assert.equal(slowDone, false, 'the fast queries waited for the slow one')
    const slowPid = await slow
    assert.ok(fast.every((r) => r.rows[0].pid !== slowPid), 'a fast query ran on the slow query’s connection')
  } finally {
    await pool.end()
  }
})
