'use strict'
// Shared by the fault-injection tests: observers for any server (not only the shared test
// server), a recorder for process-level errors, and a way to settle many queries with a
// per-query hang detector.

const pg = require('pg')
const { APP_NAME } = require('./db')

/** Codes a query may fail with when the server goes away under it. */
const LOST_CODES = new Set(['CONNECTION_LOST', 'COMMIT_UNKNOWN', 'CONNECT_FAILED', '57P01', '57P02', '57P03'])

/** Runs one statement through node-postgres on `url` (independent of onepool). */
async function adminAt(url, sql, values) {
  const client = new pg.Client({ connectionString: url, application_name: 'onepool-test-admin' })
  await client.connect()
  try {
    return await client.query(sql, values)
  } finally {
    await client.end()
  }
}

/** Backends on the server at `url` whose configured application_name is `appName` (onepool appends " [pid@host]"). */
async function countAt(url, appName) {
  const r = await adminAt(url, `select count(*)::int as n from pg_stat_activity where ${APP_NAME} = $1`, [appName])
  return r.rows[0].n
}

/**
 * Samples how many backends carry `appName` every `everyMs` from a worker thread (one kept
 * connection, reopened if the server goes away), so a load that keeps the main event loop busy
 * cannot starve the sampling. `await ready` before starting the load; stop() resolves to
 * { peak, samples, errors }.
 */
function samplePeakInWorker(url, appName, everyMs = 10) {
  const { Worker } = require('node:worker_threads')
  const path = require('node:path')
  const worker = new Worker(path.join(__dirname, 'peak-sampler.js'), {
    workerData: { url, appName, everyMs, appNameSql: APP_NAME },
  })
  const ready = new Promise((resolve, reject) => {
    worker.once('error', reject)
    worker.on('message', (m) => m.cmd === 'ready' && resolve())
  })
  return {
    ready,
    stop() {
      return new Promise((resolve, reject) => {
        worker.on('message', (m) => {
          if (m.cmd === 'stopped') {
            worker.terminate().then(() => resolve({ peak: m.peak, samples: m.samples, errors: m.errors }))
          }
        })
        worker.once('error', reject)
        worker.postMessage({ cmd: 'stop' })
      })
    },
  }
}

/**
 * Records 'unhandledRejection' and 'uncaughtException' while installed; stop() removes the
 * listeners and returns what was recorded.
 */
function recordProcessErrors() {
  const unhandled = []
  const uncaught = []
  const onRejection = (reason) => unhandled.push(reason)
  const onException = (err) => uncaught.push(err)
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  return {
    unhandled,
    uncaught,
    stop() {
      process.off('unhandledRejection', onRejection)
      process.off('uncaughtException', onException)
      return { unhandled, uncaught }
    },
  }
}

/**
 * Settles `promise` into `{ ok, value }`, `{ ok: false, error }` or, if it has not settled after
 * `hangMs`, `{ hung: true }` (the hang detector that fails a test instead of hanging it).
 */
function settle(promise, hangMs) {
  let timer
  const hang = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, hung: true }), hangMs)
  })
  return Promise.race([
    promise.then(
      (value) => ({ ok: true, value }),
      (error) => ({ ok: false, error }),
    ),
    hang,
  ]).finally(() => clearTimeout(timer))
}

/** Tallies settled outcomes by code: { ok, hung, codes: { CODE: n }, unexpected: [errors] }. */
function tally(outcomes, allowed = LOST_CODES) {
  const out = { ok: 0, hung: 0, codes: {}, unexpected: [] }
  for (const o of outcomes) {
    if (o.ok) out.ok++
    else if (o.hung) out.hung++
    else {
      const code = o.error && o.error.code
      out.codes[code] = (out.codes[code] || 0) + 1
      if (!allowed.has(code) || !o.error || o.error.name !== 'OnepoolError') out.unexpected.push(o.error)
    }
  }
  return out
}

/** Sum of `size` over every pool in the process (what the process budget should count). */
function sizesInProcess(processStats) {
  return processStats().pools.reduce((n, p) => n + p.size, 0)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns the last value. */
async function poll(fn, { timeoutMs = 10000, everyMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v || Date.now() > deadline) return v
    await sleep(everyMs)
  }
}

module.exports = { LOST_CODES, adminAt, countAt, samplePeakInWorker, recordProcessErrors, settle, tally, sizesInProcess, sleep, poll }
