'use strict'
// end({ timeoutMs }) with a query that does not finish: past the deadline the busy connection is
// closed (its statement cancelled first), the query fails with POOL_CLOSED, and nothing keeps the
// process alive — it exits by itself, long before the statement would have ended.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { TEST_URL, uniqueName, countConnections } = require('../helpers/db')

const ROOT = path.join(__dirname, '..', '..')

test('end({ timeoutMs }) closes a connection still busy at the deadline: POOL_CLOSED, and the process exits', async () => {
  const app = uniqueName('end_deadline')
  const source = `
    const { createPool } = require(${JSON.stringify(ROOT)})
    const pool = createPool({ connectionString: process.env.URL, applicationName: ${JSON.stringify(app)}, max: 1 })
    ;(async () => {
      await pool.query('select 1')
      const stuck = pool.query('select pg_sleep(60)').then(() => 'resolved', (e) => e.code)
      // Let the statement reach the server before ending the pool.
      await new Promise((resolve) => setTimeout(resolve, 200))
      await pool.end({ timeoutMs: 300 })
      console.log(JSON.stringify({ stuck: await stuck }))
    })()
  `
  const child = spawn(process.execPath, ['-e', source], { env: { ...process.env, URL: TEST_URL }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  // A hang would be the bug: give up well before the 60 s statement, and say so.
  const exited = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running after 20 s'), 20000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
  if (exited !== 0) child.kill('SIGKILL')
  assert.equal(exited, 0, `the process did not exit by itself: ${exited}`)
  assert.deepEqual(JSON.parse(out), { stuck: 'POOL_CLOSED' })
  // The cancel sent before the close stopped the statement on the server.
  let left = await countConnections(app)
  for (let i = 0; i < 100 && left > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    left = await countConnections(app)
  }
  assert.equal(left, 0, 'the stuck backend is still on the server')
})
