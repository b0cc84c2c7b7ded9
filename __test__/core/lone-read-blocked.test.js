'use strict'
// A request alone in flight has its reply read on its own JS thread (lone-read.test.js); when
// that thread is blocked, a request queued on another thread for the same connection must still
// be answered: the I/O thread reads the reply. Native addon only (scripts/test.js): it needs the
// main thread and a worker on one connection, and in the WebAssembly build a worker's pools are
// its own.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { TEST_URL, uniqueName } = require('../helpers/db')
const { createPool } = require('../..')

const ROOT = path.join(__dirname, '..', '..')

test('a request waiting for the connection a blocked JS thread watches is answered while that thread is blocked', async () => {
  const app = uniqueName()
  const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  const pid = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid
  // [go, answered]: the worker queries on `go`; it sets `answered` once its result is in.
  const flags = new Int32Array(new SharedArrayBuffer(8))
  const source = `
    const { workerData, parentPort } = require('node:worker_threads')
    const { createPool } = require(workerData.root)
    const flags = workerData.flags
    const pool = createPool({ connectionString: workerData.url, applicationName: workerData.app, max: 1 })
    parentPort.postMessage('ready')
    const poll = setInterval(async () => {
      if (Atomics.load(flags, 0) === 0) return
      clearInterval(poll)
      const r = await pool.query('select pg_backend_pid() as pid')
      Atomics.store(flags, 1, r.rows[0].pid)
      Atomics.notify(flags, 1)
    }, 1)
  `
  // The worker reads nothing itself, so only the main thread's watch is in play.
  const env = { ...process.env, ONEPOOL_READ_ON_JS_THREAD: '0' }
  const worker = new Worker(source, { eval: true, env, workerData: { root: ROOT, url: TEST_URL, app, flags } })
  await new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  // This thread's lone query is on the pool's only connection; the worker's query waits for that
  // connection. This thread then blocks: it cannot read the socket, so the I/O thread must.
  const sleeping = pool.query('select pg_sleep(0.3) as s')
  Atomics.store(flags, 0, 1)
  const outcome = Atomics.wait(flags, 1, 0, 5000)
  assert.equal(outcome, 'ok', 'the worker got its result while this thread was blocked')
  assert.equal(Atomics.load(flags, 1), pid, 'on the same connection')
  assert.equal((await sleeping).rows[0].s, '')
  await worker.terminate()
  await pool.end()
})
