'use strict'
// A subscription does not keep the process alive (sub.ref() does), and at exit the listening
// connection ends with a Terminate message like the pool's others: the server counts no
// abandoned session.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { TEST_URL, admin, uniqueName, waitFor, countConnections } = require('../helpers/db')

async function abandoned() {
  await admin('select pg_stat_clear_snapshot()')
  const r = await admin('select sessions_abandoned::int as n from pg_stat_database where datname = current_database()')
  return r.rows[0].n
}

/** Runs the fixture; `whenReady(child)` is called once it listens. */
function run(env, whenReady = () => {}) {
  const app = uniqueName()
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'listen-exit.js')], {
    env: { ...process.env, URL: TEST_URL, APP: app, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const guard = setTimeout(() => child.kill('SIGKILL'), 20000)
  let ready = false
  child.stdout.on('data', (d) => {
    if (String(d).includes('ready') && !ready) {
      ready = true
      whenReady(child, app)
    }
  })
  return new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      clearTimeout(guard)
      resolve({ app, code, sig, ready })
    }),
  )
}

test('a process whose only work is a subscription exits by itself, and its listening connection says goodbye', async () => {
  const before = await abandoned()
  const out = await run({})
  assert.deepEqual([out.ready, out.code, out.sig], [true, 0, null], 'it listened, then exited on its own')
  assert.ok(await waitFor(async () => (await countConnections(out.app)) === 0))
  await new Promise((r) => setTimeout(r, 300))
  assert.equal((await abandoned()) - before, 0, 'no session was abandoned')
})

test('sub.ref() keeps the process alive until it is told to stop', async () => {
  const before = await abandoned()
  let aliveAfterReady = null
  const out = await run({ REF: '1' }, (child, app) => {
    setTimeout(async () => {
      aliveAfterReady = child.exitCode === null && (await countConnections(app)) === 1
      child.kill('SIGTERM')
    }, 500)
  })
  assert.equal(aliveAfterReady, true, 'still running and listening 500 ms after it listened')
  assert.equal(out.sig, 'SIGTERM')
  assert.ok(await waitFor(async () => (await countConnections(out.app)) === 0))
  await new Promise((r) => setTimeout(r, 300))
  assert.equal((await abandoned()) - before, 0, 'no session was abandoned')
})
