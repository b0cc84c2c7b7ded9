'use strict'
// Worker threads subscribing to the same channel share the pool's one listening connection, and
// each receives each notification once. A worker that exits drops its subscriptions. This file
// must not load onepool on the main thread before the workers are subscribed.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { TEST_URL, APP_NAME, admin, uniqueName, waitFor } = require('../helpers/db')

async function listeningBackends(app) {
  const r = await admin(`select pid from pg_stat_activity where ${APP_NAME} = $1 and query ~ '^(UN)?LISTEN '`, [app])
  return r.rows.length
}

function startWorker(workerData) {
  const w = new Worker(path.join(__dirname, '..', 'fixtures', 'listen-worker.js'), { workerData })
  const got = []
  let ready
  const readyP = new Promise((resolve, reject) => {
    ready = resolve
    w.once('error', reject)
  })
  w.on('message', (m) => {
    if (m.ready) ready()
    else if (m.error) ready(Promise.reject(new Error(m.error)))
    else got.push(m.payload)
  })
  const exited = new Promise((resolve) => w.once('exit', resolve))
  return { worker: w, got, ready: readyP, exited }
}

test('worker threads and the main thread on one channel: one listening connection, each gets each notification once', async (t) => {
  const app = uniqueName()
  const channel = uniqueName('workers')
  const workers = [1, 2, 3].map(() => startWorker({ url: TEST_URL, app, channel, max: 3 }))
  // A failed assertion must not leave the workers (and so this test file) running.
  t.after(() => Promise.all(workers.map((w) => w.worker.terminate())))
  await Promise.all(workers.map((w) => w.ready))
  const { createPool } = require('../..')
  const db = createPool({ connectionString: TEST_URL, applicationName: app, max: 3 })
  const mine = []
  const sub = db.listen(channel, (n) => mine.push(n.payload))
  await sub.ready
  assert.equal(await listeningBackends(app), 1, 'one listening connection for four threads')
  const sent = Array.from({ length: 20 }, (_, i) => `p${i}`)
  for (const p of sent) await db.notify(channel, p)
  const everyone = () => [mine, ...workers.map((w) => w.got)]
  assert.ok(await waitFor(() => everyone().every((g) => g.length >= 20), { timeoutMs: 10000 }), 'all threads got all notifications')
  await new Promise((r) => setTimeout(r, 100))
  for (const g of everyone()) assert.deepEqual(g, sent, 'each once, in order')

  // A worker that exits with its subscription live drops it; one that unlistens first, too.
  workers[0].worker.postMessage('exit')
  workers[1].worker.postMessage('unlisten')
  await Promise.all([workers[0].exited, workers[1].exited])
  await db.notify(channel, 'after')
  assert.ok(await waitFor(() => mine.length === 21 && workers[2].got.length === 21))
  assert.deepEqual([mine[20], workers[2].got[20]], ['after', 'after'])
  assert.equal(await listeningBackends(app), 1)
  workers[2].worker.postMessage('exit')
  await workers[2].exited
  sub.unlisten()
  assert.ok(await waitFor(async () => (await listeningBackends(app)) === 0), 'the last subscription gone, the connection closes')
  assert.equal(db.stats().listening, 0)
  await db.end()
})
