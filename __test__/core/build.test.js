'use strict'
// Which build is running, and what is pinned with it. `npm test` runs the core suite twice: with
// the native addon, then with ONEPOOL_FORCE_WASM=1 against the WebAssembly build.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { TEST_URL, uniqueName } = require('../helpers/db')

const root = path.join(__dirname, '..', '..')
const wasm = process.env.ONEPOOL_FORCE_WASM === '1'
const KEY = Symbol.for(`onepool.binding@${require('../../package.json').version}`)

test(`processStats().build is '${wasm ? 'wasm' : 'native'}' in this run`, async () => {
  const { processStats, createPool } = require(root)
  assert.equal(processStats().build, wasm ? 'wasm' : 'native')
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
  assert.equal((await pool.query('select 1 as x')).rows[0].x, 1)
  await pool.end()
})

test('the binding is pinned with its socket registry (WebAssembly) or none (native)', () => {
  require(root)
  const pinned = globalThis[KEY]
  assert.ok(pinned && pinned.binding && pinned.dispatcher)
  if (!wasm) {
    assert.equal(pinned.transport, null, 'the native addon owns its sockets')
    return
  }
  assert.ok(pinned.transport.sockets instanceof Map)
  // Re-evaluating the JS layer (hot reload) must find the same instance and registry.
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(root + path.sep) && !key.includes('node_modules') && !key.includes('__test__')) delete require.cache[key]
  }
  require(root)
  assert.equal(globalThis[KEY], pinned)
})
