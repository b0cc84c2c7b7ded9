'use strict'
// A checkout queued by a worker thread behind the connection the main thread holds: the release
// reaches it through its thread's queue, and a worker that goes away while waiting leaves no
// waiter behind and loses no slot. Native addon only (scripts/test.js): in the WebAssembly build
// a worker's pools are its own.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { createPool } = require('../..')
const { TEST_URL, uniqueName, waitFor } = require('../helpers/db')

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
