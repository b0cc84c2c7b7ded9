'use strict'
// The machine-wide budget serves waiting processes first come, first served: processes that keep
// their connections busy hand a slot over when another process has waited longer, so no process
// starves while others work (the Jest-workers case: 4 processes, machineMax 3).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { TEST_URL, uniqueName, watchPeak } = require('../helpers/db')

const ROOT = path.join(__dirname, '..', '..')

// One process: 4 queries in flight for `ms`, each waits for a connection as a test would.
const WORKER = `
  const { createPool } = require(${JSON.stringify(ROOT)})
  const pool = createPool({ connectionString: process.env.URL, applicationName: process.env.APP, machineMax: 3, acquireTimeoutMs: 3000 })
  const until = Date.now() + Number(process.env.MS)
  const codes = {}
  let done = 0
  async function loop() {
    while (Date.now() < until) {
      try {
        await pool.query('select pg_sleep(0.02)')
        done++
      } catch (e) {
        codes[e.code] = (codes[e.code] || 0) + 1
      }
    }
  }
  Promise.all([loop(), loop(), loop(), loop()]).then(async () => {
    console.log(JSON.stringify({ done, codes }))
    await pool.end()
  })
`

test('4 busy processes with machineMax 3: none waits out its acquire timeout, all make progress, at most 3 connections', async () => {
  const app = uniqueName('fair')
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-fair-'))
  const watch = watchPeak(app, 20)
  try {
    const outs = await Promise.all(
      [1, 2, 3, 4].map(
        () =>
          new Promise((resolve, reject) => {
            const child = spawn(process.execPath, ['-e', WORKER], {
              env: { ...process.env, URL: TEST_URL, APP: app, MS: '4000', ONEPOOL_RUNTIME_DIR: runtimeDir },
              stdio: ['ignore', 'pipe', 'inherit'],
            })
            let out = ''
            child.stdout.on('data', (d) => (out += d))
            const timer = setTimeout(() => child.kill('SIGKILL'), 30000)
            child.on('exit', (code) => {
              clearTimeout(timer)
              code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker exited with ${code}: ${out}`))
            })
          }),
      ),
    )
    const peak = await watch.stop()
    for (const [i, o] of outs.entries()) {
      assert.deepEqual(o.codes, {}, `process ${i + 1} failed queries: ${JSON.stringify(o.codes)}`)
      assert.ok(o.done > 0, `process ${i + 1} made no progress`)
    }
    assert.ok(peak <= 3, `peak ${peak} ≤ machineMax 3`)
  } finally {
    await watch.stop()
    fs.rmSync(runtimeDir, { recursive: true, force: true })
  }
})
