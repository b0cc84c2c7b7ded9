'use strict'
// Issue 4: pg_terminate_backend() of every pooled backend, repeatedly, while the pool is under
// load (plain queries, transactions, checked-out clients). Same guarantees as a restart: every
// operation settles with its own result or a documented code, none hangs, the pool serves again
// at once, and the books match pg_stat_activity.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool, processStats } = require('../..')
const { APP_NAME, TEST_URL, admin, uniqueName } = require('../helpers/db')
const { LOST_CODES, countAt, recordProcessErrors, settle, tally, sizesInProcess, sleep, poll } = require('../helpers/faults')

// A hung test fails instead of blocking the run.
const LIMIT = { timeout: 120000 }

const HANG_MS = 60000

async function terminateAll(app) {
  const r = await admin(
    `select count(*)::int as n from (select pg_terminate_backend(pid) from pg_stat_activity where ${APP_NAME} = $1) t`,
    [app],
  )
  return r.rows[0].n
}

async function assertBooks(pool, app, label) {
  let last
  await poll(
    async () => {
      last = {
        size: pool.stats().size,
        server: await countAt(TEST_URL, app),
        used: processStats().budget.used,
        sizes: sizesInProcess(processStats),
      }
      return last.size === last.server && last.used === last.sizes
    },
    { timeoutMs: 10000, everyMs: 100 },
  )
  assert.equal(last.size, last.server, `${label}: pool size ${last.size} but the server has ${last.server} backends`)
  assert.equal(last.used, last.sizes, `${label}: budget.used ${last.used} but the pools hold ${last.sizes}`)
  return last
}

test('pg_terminate_backend of every pooled backend under load: every operation settles, the pool recovers', LIMIT, async (t) => {
  const rec = recordProcessErrors()
  const app = uniqueName('term')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 8, acquireTimeoutMs: 30000 })
  const table = `term_${app}`
  await admin(`create table ${table} (id int primary key)`)
  try {
    const N = 3000
    const outcomes = new Array(N)
    let next = 0
    let stop = false
    // 150 concurrent callers: 80% plain queries, 10% transactions, 10% checked-out clients.
    async function caller() {
      while (next < N) {
        const i = next++
        const kind = i % 10
        let p
        if (kind < 8) {
          p = pool.query('select $1::int as n, pg_sleep(0.002)', [i]).then((r) => {
            assert.equal(r.rows[0].n, i)
            return r
          })
        } else if (kind === 8) {
          p = pool.transaction(async (c) => {
            await c.query(`insert into ${table} values ($1)`, [i])
            await c.query('select pg_sleep(0.005)')
            return i
          })
        } else {
          p = (async () => {
            const c = await pool.connect()
            try {
              const r = await c.query('select $1::int as n', [i])
              assert.equal(r.rows[0].n, i)
              await c.query('select pg_sleep(0.003)')
              return r
            } finally {
              await c.release()
            }
          })()
        }
        outcomes[i] = await settle(p, HANG_MS)
      }
    }
    const callers = Promise.all(Array.from({ length: 150 }, caller))
    let rounds = 0
    let terminated = 0
    const killer = (async () => {
      while (!stop && rounds < 8) {
        await sleep(120)
        terminated += await terminateAll(app)
        rounds++
      }
    })()
    await callers
    stop = true
    await killer
    const tl = tally(outcomes)
    t.diagnostic(`${N} operations, ${rounds} termination rounds (${terminated} backends): ${tl.ok} ok, ${tl.hung} hung, codes ${JSON.stringify(tl.codes)}`)
    assert.equal(tl.hung, 0)
    assert.deepEqual(tl.unexpected.map((e) => `${e && e.code}: ${e && e.message}`), [])
    assert.ok(terminated > 0)
    assert.ok(Object.keys(tl.codes).length > 0, 'terminating busy backends should have failed some operations')

    // Every transaction that reported success is in the table (none lost); any other row belongs
    // to a transaction whose COMMIT was in doubt (its connection died): never to one that
    // reported a rollback, never twice (primary key).
    const committed = outcomes.filter((o, i) => i % 10 === 8 && o.ok).map((o) => o.value)
    const rows = new Set((await admin(`select id from ${table}`)).rows.map((r) => r.id))
    for (const id of committed) assert.ok(rows.has(id), `committed transaction ${id} is missing`)
    const inDoubt = [...rows].filter((id) => !outcomes[id].ok)
    // A transaction that committed although its caller heard of a failure must have been told
    // COMMIT_UNKNOWN: never CONNECTION_LOST, which would invite a blind retry.
    for (const id of inDoubt) assert.equal(outcomes[id].error.code, 'COMMIT_UNKNOWN', `row ${id} from a transaction that failed with ${outcomes[id].error.code}`)
    t.diagnostic(`transactions: ${committed.length} committed, ${inDoubt.length} in doubt (connection lost at COMMIT)`)

    // The pool serves at once: the terminated idle connections are not handed out.
    await sleep(100)
    const after = tally(await Promise.all(Array.from({ length: 50 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS))))
    assert.equal(after.ok, 50, `queries after the terminations failed: ${JSON.stringify(after.codes)}`)
    const books = await assertBooks(pool, app, 'after terminations')
    t.diagnostic(`books: ${JSON.stringify(books)}, stats ${JSON.stringify(pool.stats())}`)
  } finally {
    await pool.end({ timeoutMs: 5000 })
    await admin(`drop table if exists ${table}`)
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})

test('terminating idle backends: the next queries get fresh connections, nothing dead is counted', LIMIT, async () => {
  const rec = recordProcessErrors()
  const app = uniqueName('term_idle')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 6 })
  try {
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 6 }, () => pool.query('select pg_sleep(0.03)')))
      assert.equal(pool.stats().size, 6)
      assert.equal(await terminateAll(app), 6)
      // Wait until the server has really ended them (pg_terminate_backend only signals).
      await poll(async () => (await countAt(TEST_URL, app)) === 0)
      const tl = tally(await Promise.all(Array.from({ length: 30 }, (_, i) => settle(pool.query('select $1::int as n', [i]), HANG_MS))))
      assert.equal(tl.ok, 30, `round ${round}: ${JSON.stringify(tl.codes)}`)
      await assertBooks(pool, app, `round ${round}`)
    }
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})

test('terminating the backend of a checked-out client inside a transaction: CONNECTION_LOST, release() resolves, slot freed', LIMIT, async () => {
  const rec = recordProcessErrors()
  const app = uniqueName('term_client')
  const pool = createPool({ connectionString: TEST_URL, name: app, applicationName: app, max: 2 })
  try {
    const client = await pool.connect()
    await client.query('begin')
    await client.query('select 1')
    const pid = client.processID
    const running = settle(client.query('select pg_sleep(30)'), HANG_MS)
    await sleep(100)
    await admin('select pg_terminate_backend($1)', [pid])
    const out = await running
    assert.equal(out.ok, false)
    assert.ok(LOST_CODES.has(out.error.code), `got ${out.error.code}: ${out.error.message}`)
    const again = await settle(client.query('select 1'), HANG_MS)
    assert.equal(again.ok, false)
    assert.ok(LOST_CODES.has(again.error.code), `a query on the dead client: ${again.error.code}`)
    await client.release()
    assert.equal(pool.stats().size, 0)
    const r = await pool.query('select pg_backend_pid() as pid')
    assert.notEqual(r.rows[0].pid, pid)
    await assertBooks(pool, app, 'after client termination')
  } finally {
    await pool.end({ timeoutMs: 5000 })
    const { unhandled, uncaught } = rec.stop()
    assert.deepEqual(unhandled, [])
    assert.deepEqual(uncaught, [])
  }
})
