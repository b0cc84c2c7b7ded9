'use strict'
// Checkouts queued behind a full pool wait without a native task: a release hands the connection
// to the oldest one, and the time limit and pool.end() are handled without losing a slot. A
// checkout queued on another thread: checkout-workers.test.js.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool, isOnepoolError } = require('../..')
const { TEST_URL, uniqueName, waitFor } = require('../helpers/db')

const expectCode = (code) => (e) => {
  assert.ok(isOnepoolError(e), `expected an OnepoolError, got ${e}`)
  assert.equal(e.code, code, e.message)
  return true
}

test('releases hand the connection to queued connect() calls in order, on the same thread', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const held = await pool.connect()
  const order = []
  const waiters = [1, 2, 3].map((n) =>
    pool.connect().then((c) => {
      order.push(n)
      return c
    }),
  )
  await waitFor(() => pool.stats().waiting === 3)
  let client = held
  for (const next of waiters) {
    await client.release()
    const c = await next
    assert.equal(c.processID, held.processID, 'the same connection, handed over')
    assert.equal((await c.query('select 41 + 1 as x')).rows[0].x, 42)
    client = c
  }
  assert.deepEqual(order, [1, 2, 3])
  await client.release()
  assert.deepEqual(
    (({ size, idle, waiting, created }) => ({ size, idle, waiting, created }))(pool.stats()),
    { size: 1, idle: 1, waiting: 0, created: 1 },
  )
  await pool.end()
})

test('a queued connect() gets POOL_TIMEOUT after acquireTimeoutMs and no longer counts as waiting', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1, acquireTimeoutMs: 150 })
  const held = await pool.connect()
  await assert.rejects(pool.connect(), (e) => {
    expectCode('POOL_TIMEOUT')(e)
    assert.match(e.message, /timeout exceeded after 150 ms .* size 1, idle 0, in use 1, max 1, 0 other checkouts waiting$/)
    return true
  })
  assert.equal(pool.stats().acquireTimeouts, 1)
  assert.equal(pool.stats().waiting, 0)
  await held.release()
  // The slot is intact: the next checkout gets the same connection at once.
  const again = await pool.connect()
  assert.equal(again.processID, held.processID)
  await again.release()
  await pool.end()
})

test('pool.end() fails queued connect() calls with POOL_CLOSED', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  const held = await pool.connect()
  const waiter = pool.connect()
  await waitFor(() => pool.stats().waiting === 1)
  const ended = pool.end({ timeoutMs: 2000 })
  await assert.rejects(waiter, expectCode('POOL_CLOSED'))
  await held.release()
  assert.equal(await ended, undefined)
  assert.equal(pool.stats().size, 0)
})
