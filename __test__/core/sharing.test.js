'use strict'
// How pool.query shares connections (README, "How it works"): a query takes an idle connection
// or a new one within max before it is pipelined behind another; with every connection busy it
// is pipelined only behind statements known to be fast, never behind a slow one.

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

test('concurrent queries take idle connections before any is pipelined', async () => {
  const pool = await warmPool(10)
  try {
    // Each runs long enough that none is answered before the last one is sent.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => pool.query('select pg_backend_pid() as pid, $1::int as i, pg_sleep(0.1)', [i])),
    )
    assert.deepEqual(results.map((r) => r.rows[0].i), Array.from({ length: 10 }, (_, i) => i))
    assert.equal(new Set(results.map((r) => r.rows[0].pid)).size, 10, 'each query had an idle connection of its own')
  } finally {
    await pool.end()
  }
})

test('with every connection busy, fast queries are pipelined behind fast work only, never behind a slow query', async () => {
  const pool = await warmPool(2)
  try {
    // Known fast: the pool has seen it run.
    for (let i = 0; i < 3; i++) await pool.query('select pg_backend_pid() as pid')
    let slowDone = false
    const slow = pool.query('select pg_backend_pid() as pid, pg_sleep(0.5)').then((r) => {
      slowDone = true
      return r.rows[0].pid
    })
    const fast = await Promise.all(Array.from({ length: 40 }, () => pool.query('select pg_backend_pid() as pid')))
    assert.equal(slowDone, false, 'the fast queries waited for the slow one')
    const slowPid = await slow
    assert.ok(fast.every((r) => r.rows[0].pid !== slowPid), 'a fast query ran on the slow query’s connection')
    assert.ok(pool.stats().size <= 2)
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
    // The burst arrives with the slow query, before anything shows that it is slow.
    const fast = await Promise.all(Array.from({ length: 6 }, () => pool.query('select pg_backend_pid() as pid')))
    assert.equal(slowDone, false, 'the fast queries waited for the slow one')
    const slowPid = await slow
    assert.ok(fast.every((r) => r.rows[0].pid !== slowPid), 'a fast query ran on the slow query’s connection')
  } finally {
    await pool.end()
  }
})
