'use strict'
// Clean exit: connections end with a Terminate message (the server counts no abandoned
// session) on natural exit, process.exit(), SIGINT and SIGTERM, and exit is not held up.

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

function run(mode, lib = 'onepool', signal) {
  const app = uniqueName()
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'exit-modes.js')], {
    env: { ...process.env, URL: TEST_URL, APP: app, MODE: mode, LIB: lib },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const guard = setTimeout(() => child.kill('SIGKILL'), 20000)
  let signalledAt = 0
  child.stdout.on('data', (d) => {
    if (signal && String(d).includes('ready')) {
      signalledAt = Date.now()
      child.kill(signal)
    }
  })
  return new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      clearTimeout(guard)
      resolve({ app, code, sig, afterSignalMs: signalledAt ? Date.now() - signalledAt : null })
    }),
  )
}

async function abandonedBy(fn) {
  const before = await abandoned()
  const out = await fn()
  await waitFor(async () => (await countConnections(out.app)) === 0)
  // Session statistics are reported as each backend exits; give them a moment to land.
  await new Promise((r) => setTimeout(r, 300))
  return { ...out, abandoned: (await abandoned()) - before }
}

test('control: node-postgres leaving at process.exit abandons its sessions (the counter works)', async () => {
  const r = await abandonedBy(() => run('natural', 'pg'))
  assert.equal(r.abandoned, 3)
})

for (const [mode, signal] of [['natural'], ['process.exit'], ['signal', 'SIGTERM'], ['signal', 'SIGINT']]) {
  test(`onepool closes its connections with Terminate on ${signal || mode}`, async () => {
    const r = await abandonedBy(() => run(mode, 'onepool', signal))
    assert.equal(r.abandoned, 0, 'no session was abandoned')
    if (signal) {
      assert.equal(r.sig, signal, 'the process still dies of the signal')
      assert.ok(r.afterSignalMs < 5000)
    } else {
      assert.equal(r.code, 0)
    }
  })
}
