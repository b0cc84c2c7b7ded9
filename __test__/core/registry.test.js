'use strict'
// One native pool per identity, whatever JavaScript does: re-evaluated modules, ESM and CJS
// copies (a re-registered addon: registry-addon.test.js). Connection counts come from
// pg_stat_activity.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { TEST_URL, countConnections, uniqueName, waitFor } = require('../helpers/db')
const { queryThroughFreshCopies } = require('../helpers/reload')

const root = path.join(__dirname, '..', '..')

test('re-evaluating the JS layer 100× with concurrent queries keeps one bounded pool', async () => {
  const app = uniqueName()
  const { peak, failed, pools } = await queryThroughFreshCopies(app, { addon: false })
  assert.equal(failed, 0)
  assert.ok(peak >= 1 && peak <= 4, `peak ${peak} must be ≤ max 4`)
  assert.equal(pools[0].stats().handles, 100)
  assert.deepEqual(
    new Set(pools.map((p) => p.stats().created)).size,
    1,
    'every handle sees the same native pool',
  )
  await pools[0].end()
})

test('ESM and CJS entry points share the pool', async () => {
  const app = uniqueName()
  const cjs = require(root)
  const esm = await import(path.join(root, 'index.mjs'))
  const a = cjs.createPool({ connectionString: TEST_URL, applicationName: app, max: 3 })
  const b = esm.createPool({ connectionString: TEST_URL, applicationName: app, max: 3 })
  await Promise.all([a.query('select 1'), b.query('select 1')])
  assert.equal(a.stats().handles, 2)
  assert.equal(b.stats().handles, 2)
  await a.end()
})

test('different names are different pools; same name and target is one pool', async () => {
  const { createPool, processStats } = require(root)
  const a = createPool({ connectionString: TEST_URL, name: uniqueName('a'), max: 2 })
  const b = createPool({ connectionString: TEST_URL, name: uniqueName('b'), max: 2 })
  assert.notEqual(a.stats().name, b.stats().name)
  const names = processStats().pools.map((p) => p.name)
  assert.ok(names.includes(a.stats().name) && names.includes(b.stats().name))
  await a.end()
  await b.end()
})

test('live resize: shrinking closes idle connections first and in-use ones on release; growing serves waiters', async () => {
  const app = uniqueName()
  const { createPool } = require(root)
  const name = uniqueName('resize')
  const opts = { connectionString: TEST_URL, applicationName: app, name, idleTimeoutMs: 0 }
  const pool = createPool({ ...opts, max: 5 })
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => pool.connect()))
  for (const c of clients.slice(0, 3)) await c.release()
  assert.equal(await countConnections(app), 5)
  // Edited lib/db.ts: max 5 → 2 with 2 clients checked out and 3 idle.
  createPool({ ...opts, max: 2 })
  assert.equal(pool.stats().max, 2)
  assert.equal(await waitFor(async () => (await countConnections(app)) === 2), true, 'idle ones closed at once')
  await clients[3].release()
  await clients[4].release()
  assert.equal(pool.stats().size, 2)
  assert.equal(await countConnections(app), 2)
  // Grow back while a waiter queues at max 1.
  createPool({ ...opts, max: 1 })
  await waitFor(async () => (await countConnections(app)) === 1)
  const held = await pool.connect()
  const waiter = pool.query('select 1 as x')
  await waitFor(() => pool.stats().waiting === 1)
  createPool({ ...opts, max: 3 })
  assert.equal((await waiter).rows[0].x, 1, 'the waiter got a new slot')
  await held.release()
  await pool.end()
})

test('a changed target makes a new pool and the old one drains', async () => {
  const { createPool } = require(root)
  const name = uniqueName('target')
  const appOld = uniqueName()
  const old = createPool({ connectionString: TEST_URL, name, applicationName: appOld, max: 2 })
  await old.query('select 1')
  assert.equal(await countConnections(appOld), 1)
  const u = new URL(TEST_URL)
  u.pathname = '/template1'
  const fresh = createPool({ connectionString: u.toString(), name, max: 2 })
  assert.equal((await fresh.query('select current_database() as db')).rows[0].db, 'template1')
  assert.equal(await waitFor(async () => (await countConnections(appOld)) === 0), true, 'the old pool closed')
  await assert.rejects(old.query('select 1'), (e) => e.code === 'POOL_CLOSED')
  await fresh.end()
})

test('invalid options on an existing identity leave the live pool untouched', async () => {
  const { createPool } = require(root)
  const name = uniqueName('keep')
  const pool = createPool({ connectionString: TEST_URL, name, max: 3 })
  assert.throws(() => createPool({ connectionString: TEST_URL, name, max: -1 }), (e) => e.code === 'CONFIG_INVALID')
  assert.equal(pool.stats().max, 3)
  await pool.end()
})

test('end() closes the pool for every handle; createPool then gives a fresh pool', async () => {
  const { createPool } = require(root)
  const name = uniqueName('end')
  const app = uniqueName()
  const a = createPool({ connectionString: TEST_URL, name, applicationName: app })
  const b = createPool({ connectionString: TEST_URL, name, applicationName: app })
  await a.query('select 1')
  await b.end()
  await assert.rejects(a.query('select 1'), (e) => e.code === 'POOL_CLOSED')
  // The connection is closed when end() resolves; its backend leaves pg_stat_activity a moment later.
  let left
  await waitFor(async () => (left = await countConnections(app)) === 0)
  assert.equal(left, 0)
  const c = createPool({ connectionString: TEST_URL, name, applicationName: app })
  assert.equal((await c.query('select 2 as x')).rows[0].x, 2)
  assert.equal(c.stats().handles, 1)
  await c.end()
})
