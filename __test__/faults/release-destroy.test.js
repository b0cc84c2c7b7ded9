'use strict'
// release(true) (pg's release(err)) while a statement runs: the connection is closed, and the
// statement is cancelled on the server instead of running to its end there.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, APP_NAME, admin, uniqueName } = require('../helpers/db')

test('release(true) mid-query cancels the statement on the server and closes the connection', async () => {
  const app = uniqueName('destroy')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 1 })
  try {
    const client = await pool.connect()
    const pid = client.processID
    const running = client.query('select pg_sleep(60)').then(
      () => 'resolved',
      (e) => e.code,
    )
    // The statement is running on the server.
    for (let i = 0; i < 100; i++) {
      const r = await admin("select state from pg_stat_activity where pid = $1 and query like '%pg_sleep(60)%'", [pid])
      if (r.rows[0]?.state === 'active') break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await client.release(true)
    assert.equal(await running, 'CONNECTION_LOST')
    // Gone from the server within a few seconds, not after the 60 s statement.
    let left = 1
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      left = (await admin(`select count(*)::int as n from pg_stat_activity where pid = $1 or ${APP_NAME} = $2`, [pid, app])).rows[0].n
    }
    assert.equal(left, 0, 'the backend still runs the statement')
    assert.equal(pool.stats().size, 0)
    assert.equal((await pool.query('select 1 as n')).rows[0].n, 1)
  } finally {
    await pool.end()
  }
})
