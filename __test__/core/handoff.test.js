'use strict'
// pool.transaction() passes its connection to a waiting checkout as soon as COMMIT is on the
// wire: the waiter's first statements queue behind the COMMIT instead of a round trip later.
// A slow COMMIT (a deferred constraint trigger that sleeps) makes the overlap observable.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { APP_NAME, TEST_URL, admin, countConnections, uniqueName } = require('../helpers/db')

const app = uniqueName()
const table = uniqueName('handoff')
const COMMIT_SLEEP_S = 0.4
let pool

test.before(async () => {
  pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 1 })
  await pool.query(`create table ${table} (id int, slow boolean default false)`)
  // Unique at COMMIT, so a duplicate fails the COMMIT itself.
  await pool.query(`alter table ${table} add constraint ${table}_id unique (id) deferrable initially deferred`)
  await pool.query(`create function ${table}_sleep() returns trigger language plpgsql as $$
    begin perform pg_sleep(${COMMIT_SLEEP_S}); return null; end $$`)
  await pool.query(`create constraint trigger ${table}_slow after insert on ${table}
    deferrable initially deferred for each row when (new.slow) execute function ${table}_sleep()`)
})

test.after(async () => {
  await pool.query(`drop table ${table}`)
  await pool.query(`drop function ${table}_sleep()`)
  await pool.end()
})

const ids = async () => (await pool.query(`select id from ${table} order by id`)).rows.map((r) => r.id)

/** Whether a COMMIT of this test's pool is running on the server right now. */
async function commitRunning() {
  const { rows } = await admin(
    `select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1 and state = 'active' and query = 'COMMIT'`,
    [app],
  )
  return rows[0].n === 1
}

test('a waiting transaction starts while the COMMIT ahead of it runs, and sees what it committed', async () => {
  await pool.query(`truncate ${table}`)
  let firstPid
  const first = pool.transaction(async (tx) => {
    firstPid = (await tx.query('select pg_backend_pid() as pid')).rows[0].pid
    await tx.query(`insert into ${table} (id, slow) values (1, true)`)
  })
  const second = pool.transaction(async (tx) => {
    const overlapped = await commitRunning()
    const pid = (await tx.query('select pg_backend_pid() as pid')).rows[0].pid
    const seen = (await tx.query(`select count(*)::int as n from ${table} where id = 1`)).rows[0].n
    await tx.query(`insert into ${table} (id) values (2)`)
    return { overlapped, pid, seen }
  })
  await first
  const out = await second
  assert.equal(out.overlapped, true, 'the second transaction began before the first COMMIT finished')
  assert.equal(out.pid, firstPid, 'the same connection (max 1)')
  assert.equal(out.seen, 1, 'statements behind the COMMIT see its writes')
  assert.deepEqual(await ids(), [1, 2])
  assert.equal(pool.stats().inUse, 0)
})

test('a COMMIT that fails rejects its transaction; the one queued behind it commits normally', async () => {
  await pool.query(`truncate ${table}`)
  await pool.query(`insert into ${table} (id) values (5)`)
  const first = pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} (id, slow) values (5, true)`)
  })
  const second = pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} (id) values (6)`)
    return (await tx.query("select current_setting('transaction_isolation') as i")).rows[0].i
  })
  await assert.rejects(first, (e) => e.code === '23505' && e.constraint === `${table}_id`)
  assert.equal(await second, 'read committed')
  assert.deepEqual(await ids(), [5, 6])
  const { rows } = await pool.query('select now() = statement_timestamp() as fresh')
  assert.equal(rows[0].fresh, true, 'the connection is not left inside a transaction')
  assert.equal(pool.stats().inUse, 0)
})

test("cancelling the waiter's first statement does not cancel the COMMIT still running ahead of it", async () => {
  await pool.query(`truncate ${table}`)
  const first = pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} (id, slow) values (7, true)`)
  })
  let overlapped
  let cancelled
  const second = pool.transaction(async (tx) => {
    overlapped = await commitRunning()
    cancelled = await tx.query('select pg_sleep(5)', [], { signal: AbortSignal.timeout(50) }).then(
      () => null,
      (e) => e.code,
    )
  })
  await first
  // The cancelled statement failed the second transaction, so its COMMIT rolled back.
  await assert.rejects(second, (e) => e.code === 'TRANSACTION_ABORTED')
  assert.equal(overlapped, true)
  assert.equal(cancelled, 'ABORTED')
  assert.deepEqual(await ids(), [7], 'the first transaction committed')
  assert.equal(pool.stats().inUse, 0)
})

test('a connection lost during the COMMIT fails both transactions on it; the pool recovers', async () => {
  await pool.query(`truncate ${table}`)
  const first = pool.transaction(async (tx) => {
    await tx.query(`insert into ${table} (id, slow) values (8, true)`)
  })
  const second = pool.transaction(async (tx) => {
    await admin(
      `select pg_terminate_backend(pid) from pg_stat_activity where ${APP_NAME} = $1 and query = 'COMMIT'`,
      [app],
    )
    await tx.query(`insert into ${table} (id) values (9)`)
  })
  const [a, b] = await Promise.allSettled([first, second])
  // The first sent its COMMIT: it cannot know whether it committed. The second never got as far.
  assert.equal(a.status === 'rejected' && a.reason.code, 'COMMIT_UNKNOWN')
  assert.equal(a.reason.cause.code, 'CONNECTION_LOST')
  assert.equal(b.status === 'rejected' && b.reason.code, 'CONNECTION_LOST')
  assert.deepEqual(await ids(), [], 'neither committed')
  await pool.transaction((tx) => tx.query(`insert into ${table} (id) values (10)`))
  assert.deepEqual(await ids(), [10])
  assert.equal(pool.stats().inUse, 0)
  assert.equal(await countConnections(app), 1)
})
