'use strict'
// A server (or role) that refuses more connections (53300) while the pool already has one: the
// pool stops opening for a while and serves its callers with the connections it has, instead of
// failing them with CONNECT_FAILED. With no connection at all, 53300 is still CONNECT_FAILED.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, admin, uniqueName } = require('../helpers/db')

async function limitedRole(limit) {
  const name = uniqueName('full')
  await admin(`create role ${name} login password 'pw' connection limit ${limit}`)
  const url = new URL(TEST_URL)
  url.username = name
  url.password = 'pw'
  return { name, url: url.toString() }
}

test('role limit 1, max 8, 200 concurrent queries: all succeed on the one connection', async () => {
  const role = await limitedRole(1)
  const pool = createPool({ connectionString: role.url, name: uniqueName('storm'), max: 8, acquireTimeoutMs: 10000 })
  try {
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        pool.query('select $1::int as n, pg_sleep(0.001)', [i]).then(
          (r) => r.rows[0].n,
          (e) => `${e.code}${e.cause ? ` ${e.cause.code}` : ''}`,
        ),
      ),
    )
    const failed = outcomes.filter((o) => typeof o !== 'number')
    assert.deepEqual(failed, [], `${failed.length} of 200 failed`)
    assert.equal(pool.stats().size, 1)
    // Checkouts too wait for the connection instead of failing.
    const clients = await Promise.all([1, 2, 3].map(() => pool.connect().then((c) => (c.release(), 'ok'), (e) => e.code)))
    assert.deepEqual(clients, ['ok', 'ok', 'ok'])
  } finally {
    await pool.end()
    await admin(`drop role ${role.name}`)
  }
})

test('role limit 0: with no connection to wait for, 53300 is CONNECT_FAILED at once', async () => {
  const role = await limitedRole(0)
  const pool = createPool({ connectionString: role.url, name: uniqueName('none'), max: 4 })
  try {
    const e = await pool.query('select 1').then(() => null, (err) => err)
    assert.equal(e.code, 'CONNECT_FAILED')
    assert.equal(e.cause.code, '53300')
  } finally {
    await pool.end()
    await admin(`drop role ${role.name}`)
  }
})
