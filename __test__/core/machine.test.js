'use strict'
// The machine-wide budget with several real Node processes: together they never exceed
// machineMax server connections, a SIGKILLed process frees its slots at once, and a process
// waiting for a slot gets one or POOL_TIMEOUT.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const os = require('node:os')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { TEST_URL, APP_NAME, admin, watchPeak, uniqueName, waitFor } = require('../helpers/db')

const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-machine-'))
test.after(() => fs.rmSync(runtimeDir, { recursive: true, force: true }))

function startWorker(env) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'machine-worker.js')], {
    env: { ...process.env, URL: TEST_URL, ONEPOOL_RUNTIME_DIR: runtimeDir, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const waiting = new Map()
  let ready
  const readyP = new Promise((r) => (ready = r))
  let buf = ''
  child.stdout.on('data', (d) => {
    buf += d
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
      if (msg.ready) ready()
      else waiting.get(msg.id)?.(msg)
    }
  })
  let next = 1
  return {
    child,
    ready: readyP,
    burst(n, sleep) {
      const id = next++
      return new Promise((resolve) => {
        waiting.set(id, resolve)
        child.stdin.write(JSON.stringify({ op: 'burst', id, n, sleep }) + '\n')
      })
    },
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

async function connectionsOf(app) {
  const r = await admin(`select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1`, [app])
  return r.rows[0].n
}

test('4 processes × max 5 with machineMax 5 never hold more than 5 connections together', async () => {
  const app = uniqueName()
  const workers = [1, 2, 3, 4].map(() => startWorker({ APP: app, MACHINE_MAX: '5' }))
  try {
    await Promise.all(workers.map((w) => w.ready))
    const watch = watchPeak(app, 10)
    const results = await Promise.all(workers.map((w) => w.burst(25, 0.02)))
    const peak = await watch.stop()
    for (const r of results) assert.deepEqual(r.counts, { ok: 25 })
    assert.ok(peak >= 2 && peak <= 5, `peak ${peak} ≤ machineMax 5 across 4 processes`)
  } finally {
    workers.forEach((w) => w.stop())
  }
})

test('a process killed mid-query frees its slots; a waiting process gets one or POOL_TIMEOUT', async () => {
  const app = uniqueName()
  const holder = startWorker({ APP: app, MACHINE_MAX: '3' })
  const waiter = startWorker({ APP: app, MACHINE_MAX: '3', ACQUIRE_MS: '8000' })
  const impatient = startWorker({ APP: app, MACHINE_MAX: '3', ACQUIRE_MS: '300' })
  try {
    await Promise.all([holder.ready, waiter.ready, impatient.ready])
    // The holder takes all 3 machine slots with long queries...
    holder.burst(3, 30)
    assert.equal(await waitFor(async () => (await connectionsOf(app)) === 3), true)
    // ...so a process with a short acquire timeout gets POOL_TIMEOUT, with the machine budget named.
    const timedOut = await impatient.burst(1, 0)
    assert.deepEqual(timedOut.counts, { POOL_TIMEOUT: 1 })
    // Another one waits; killing the holder with SIGKILL frees the slots within a second.
    const waited = waiter.burst(2, 0)
    await new Promise((r) => setTimeout(r, 300))
    const killedAt = Date.now()
    holder.child.kill('SIGKILL')
    const got = await waited
    assert.deepEqual(got.counts, { ok: 2 })
    assert.ok(Date.now() - killedAt < 5000)
  } finally {
    ;[holder, waiter, impatient].forEach((w) => w.stop())
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where ${APP_NAME} = $1`, [app])
  }
})

test('idle connections in one process make room for a process that waits', async () => {
  const app = uniqueName()
  const a = startWorker({ APP: app, MACHINE_MAX: '2' })
  const b = startWorker({ APP: app, MACHINE_MAX: '2', ACQUIRE_MS: '8000' })
  try {
    await Promise.all([a.ready, b.ready])
    await a.burst(2, 0.01) // a now holds 2 idle connections (idleTimeoutMs: 0 keeps them)
    assert.equal(await connectionsOf(app), 2)
    const r = await b.burst(2, 0.01)
    assert.deepEqual(r.counts, { ok: 2 }, 'b got slots because a closed idle connections for it')
    assert.ok((await connectionsOf(app)) <= 2)
  } finally {
    a.stop()
    b.stop()
  }
})
