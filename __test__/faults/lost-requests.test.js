'use strict'
// What a lost connection does to the requests on it: those that never ran are retried on another
// connection (shared pool.query requests) or marked as never run; a COMMIT that was sent is
// reported as COMMIT_UNKNOWN, because the transaction may have committed.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { TEST_URL, admin, uniqueName } = require('../helpers/db')
const { startProxy, viaProxy } = require('../helpers/proxy')

test('a terminated backend: the query it ran fails, the queries pipelined behind it are retried and succeed', async () => {
  const pool = createPool({ connectionString: TEST_URL, name: uniqueName('lost'), max: 1 })
  try {
    // Both statements are known to be fast, so requests pipeline behind the sleeping one.
    for (let i = 0; i < 3; i++) {
      await pool.query('select pg_sleep($1)', [0])
      await pool.query('select $1::int as n', [i])
    }
    const pid = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid
    const head = pool.query('select pg_sleep($1)', [5]).then(
      () => 'resolved',
      (e) => e.code,
    )
    const behind = Array.from({ length: 10 }, (_, i) =>
      pool.query('select $1::int as n', [i]).then(
        (r) => r.rows[0].n,
        (e) => e.code,
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    await admin('select pg_terminate_backend($1)', [pid])
    assert.equal(await head, 'CONNECTION_LOST')
    // Before: every one failed with CONNECTION_LOST although none had run.
    assert.deepEqual(await Promise.all(behind), Array.from({ length: 10 }, (_, i) => i))
  } finally {
    await pool.end()
  }
})

test('the connection lost after COMMIT was sent: COMMIT_UNKNOWN (the transaction did commit here)', async () => {
  const table = uniqueName('commit_unknown')
  await admin(`create table ${table} (id int primary key)`)
  const proxy = await startProxy(Number(new URL(TEST_URL).port))
  const pool = createPool({ connectionString: viaProxy(TEST_URL, proxy), name: uniqueName('cu'), max: 1 })
  try {
    const outcome = await pool
      .transaction(async (tx) => {
        await tx.query(`insert into ${table} values (1)`)
        // The next bytes from the server (COMMIT's reply) cut the connection.
        proxy.dropAfter(1)
      })
      .then(
        () => 'committed',
        (e) => ({ code: e.code, cause: e.cause && e.cause.code }),
      )
    assert.deepEqual(outcome, { code: 'COMMIT_UNKNOWN', cause: 'CONNECTION_LOST' })
    const rows = (await admin(`select count(*)::int as n from ${table}`)).rows[0].n
    assert.equal(rows, 1, 'it had committed')
    proxy.dropAfter(Infinity)
    assert.equal((await pool.query('select 1 as n')).rows[0].n, 1)
  } finally {
    await pool.end()
    await proxy.close()
    await admin(`drop table ${table}`)
  }
})
