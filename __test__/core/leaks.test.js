'use strict'
// Leak detection: a client held past leakDetectionMs is reported with the stack that checked it
// out, and again when it comes back; with the option off nothing is reported.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, uniqueName } = require('../helpers/db')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function checkOutHere(pool) {
  return pool.connect()
}

test('a client held too long is reported with its borrower stack, then when returned', async () => {
  const events = []
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 2, leakDetectionMs: 100, onLeak: (e) => events.push(e) })
  // Warm up: the first checkout opens the connection, which may itself outlast 100 ms (the
  // WebAssembly build starts its threads then); only what follows is measured.
  const quick = await pool.connect()
  await quick.release()
  events.length = 0
  const client = await checkOutHere(pool)
  await sleep(300)
  assert.equal(events.length, 1)
  assert.equal(events[0].kind, 'leak')
  assert.equal(events[0].pool, pool.stats().name)
  assert.ok(events[0].heldMs >= 100)
  assert.match(events[0].stack, /checkOutHere/)
  assert.match(events[0].stack, /leaks\.test\.js/)
  await client.release()
  assert.equal(events.length, 2)
  assert.equal(events[1].kind, 'returned')
  assert.ok(events[1].heldMs >= events[0].heldMs)
  await pool.end()
})

test('off by default: nothing is reported', async () => {
  const warnings = []
  const original = console.warn
  console.warn = (...args) => warnings.push(args.join(' '))
  try {
    const pool = createPool({ connectionString: TEST_URL, name: uniqueName(), max: 1 })
    const client = await pool.connect()
    await sleep(150)
    await client.release()
    await pool.end()
  } finally {
    console.warn = original
  }
  assert.deepEqual(warnings, [])
})
