'use strict'
// Shared by the tests of onepool evaluated again in one process, as a dev server's hot reload or
// a test runner's fresh module registry does: onepool's JS layer (and, on request, the addon)
// forgotten and required again.

const path = require('node:path')
const { TEST_URL, watchPeak } = require('./db')

const root = path.join(__dirname, '..', '..')

/**
 * Clears onepool's JS layer from the require cache, so the next require evaluates it again. With
 * `addon`, also the addon's cache entry and its globalThis pin: the loader then registers the
 * addon again, a new JS environment for it on this thread.
 */
function forgetOnepool({ addon = false } = {}) {
  for (const key of Object.keys(require.cache)) {
    const inPackage = key.startsWith(root + path.sep) && !key.includes('node_modules') && !key.includes('__test__')
    if (inPackage && (addon || !key.endsWith('.node'))) delete require.cache[key]
  }
  if (addon) {
    for (const sym of Object.getOwnPropertySymbols(globalThis)) {
      if (String(sym).startsWith('Symbol(onepool.binding')) delete globalThis[sym]
    }
  }
}

/** onepool, evaluated again (see forgetOnepool). */
function freshOnepool({ addon = false } = {}) {
  forgetOnepool({ addon })
  return require(root)
}

/**
 * 100 pools of one application name, each made by a fresh onepool, with 5 queries each in
 * flight (at most 50 at once); returns the peak of server connections, the failed queries and
 * the pools.
 */
async function queryThroughFreshCopies(app, { addon }) {
  const watch = watchPeak(app, 10)
  const pools = []
  let failed = 0
  const inflight = []
  for (let i = 0; i < 100; i++) {
    const { createPool } = freshOnepool({ addon })
    const pool = createPool({ connectionString: TEST_URL, applicationName: app, max: 4 })
    pools.push(pool)
    for (let j = 0; j < 5; j++) {
      inflight.push(pool.query('select pg_sleep(0.002), $1::int as n', [j]).catch(() => failed++))
    }
    if (i % 10 === 9) await Promise.all(inflight.splice(0))
  }
  await Promise.all(inflight)
  const peak = await watch.stop()
  return { peak, failed, pools }
}

module.exports = { forgetOnepool, freshOnepool, queryThroughFreshCopies }
