'use strict'
// Checkouts queued behind a full pool wait without a native task: a release hands the connection
// to the oldest one (on the same thread directly, on another thread through its queue), and the
// time limit, pool.end() and a waiter's thread going away are handled without losing a slot.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
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

function startWorker(workerData) {
  const w = new Worker(path.join(__dirname, '..', 'fixtures', 'worker-checkout.js'), { workerData })
  const messages = []
  const exited = new Promise((resolve, reject) => {
    w.on('message', (m) => messages.push(m))
    w.once('error', reject)
    w.once('exit', resolve)
  })
  return { w, messages, exited }
}

/** A pool of one whose connection the main thread holds, and a worker whose connect() waits for it. */
async function workerQueuedBehindHeldConnection() {
  const name = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, name, applicationName: name, max: 1 })
  const held = await pool.connect()
  const worker = startWorker({ url: TEST_URL, name, app: name })
  await waitFor(() => pool.stats().waiting === 1)
  return { pool, held, worker }
}

test('a connection released on the main thread reaches a connect() queued by a worker thread', async () => {
  const { pool, held, worker } = await workerQueuedBehindHeldConnection()
  await held.release()
  await worker.exited
  const report = worker.messages.find((m) => m.pid || m.error)
  assert.equal(report.error, undefined, report.error)
  assert.equal(report.pid, held.processID, 'the worker ran on the connection the main thread released')
  assert.deepEqual(
    (({ size, idle, waiting, created }) => ({ size, idle, waiting, created }))(pool.stats()),
    { size: 1, idle: 1, waiting: 0, created: 1 },
  )
  await pool.end()
})

test('a worker that exits while its connect() is queued leaves no waiter behind and loses no slot', async () => {
  const { pool, held, worker } = await workerQueuedBehindHeldConnection()
  await worker.w.terminate()
  await worker.exited
  assert.equal(pool.stats().waiting, 0, 'a checkout whose thread is gone is not waiting')
  await held.release()
  assert.equal(pool.stats().idle, 1, 'the released connection went back idle, not to the gone waiter')
  const again = await pool.connect()
  assert.equal(again.processID, held.processID)
  await again.release()
  await pool.end()
})
