'use strict'
// Re-registering the addon (its require cache entry and globalThis pin cleared, so the loader
// registers it again) still reaches the process's one native pool. Native addon only
// (scripts/test.js): in the WebAssembly build each evaluation of the loader starts a new
// instance with pools of its own. Connection counts come from pg_stat_activity.

const test = require('node:test')
const assert = require('node:assert/strict')
const { uniqueName } = require('../helpers/db')
const { queryThroughFreshCopies } = require('../helpers/reload')

test('re-registering the .node addon 100× still reaches the same native pool', async () => {
  const app = uniqueName()
  const { peak, failed, pools } = await queryThroughFreshCopies(app, { addon: true })
  assert.equal(failed, 0)
  assert.ok(peak <= 4, `peak ${peak} must be ≤ max 4`)
  assert.equal(pools[99].stats().handles, 100)
  await pools[99].end()
})
