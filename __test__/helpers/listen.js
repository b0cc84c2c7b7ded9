'use strict'
// Shared by the LISTEN/NOTIFY tests of __test__/core: the modules that subscribe at module scope
// and their state, the app's listening backends as pg_stat_activity shows them, and waiting for
// delivery.

const assert = require('node:assert/strict')
const path = require('node:path')
const { TEST_URL, APP_NAME, admin, waitFor } = require('./db')

const root = path.join(__dirname, '..', '..')

/** A CommonJS module that subscribes at module scope, with the state fixtureState() sets. */
const LISTEN_MODULE = path.join(__dirname, '..', 'fixtures', 'listen-module.js')

/**
 * Sets the state the listen-module fixtures read (globalThis.__onepoolListenFixture): the app and
 * channel to subscribe with; they count their evaluations and record which one handled each
 * notification. The test deletes it when done.
 */
function fixtureState(app, channel) {
  const state = { root, url: TEST_URL, app, channel, evaluations: 0, handled: [] }
  globalThis.__onepoolListenFixture = state
  return state
}

/** The app's backends that LISTEN (their last statement was a LISTEN or UNLISTEN). */
async function listeningBackends(app) {
  const r = await admin(`select pid from pg_stat_activity where ${APP_NAME} = $1 and query ~ '^(UN)?LISTEN ' order by pid`, [app])
  return r.rows.map((row) => row.pid)
}

/** Waits until `predicate` holds; fails the test, saying `what`, after `timeoutMs`. */
async function eventually(what, predicate, timeoutMs = 10000) {
  assert.ok(await waitFor(predicate, { timeoutMs, everyMs: 10 }), `timed out waiting until ${what}`)
}

module.exports = { LISTEN_MODULE, fixtureState, listeningBackends, eventually }
