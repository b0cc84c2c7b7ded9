'use strict'
// Connecting once with given options, for the tests of how a connection is made (TLS modes,
// client certificates, channel binding): one query on a fresh pool of one connection, and what
// a refused connection must look like.

const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { uniqueName } = require('./db')

/** The first row of `text` on a fresh pool of one connection made with `options`; the pool ends. */
async function firstRow(options, text) {
  const pool = createPool({ name: uniqueName(), max: 1, ...options })
  try {
    return (await pool.query(text)).rows[0]
  } finally {
    await pool.end()
  }
}

/**
 * `attempt` rejects with CONNECT_FAILED whose cause has `causeCode`, whose message matches
 * `reason` and contains none of `secrets`.
 */
async function rejectsConnect(attempt, causeCode, reason, secrets = []) {
  await assert.rejects(attempt, (e) => {
    assert.equal(e.code, 'CONNECT_FAILED', e.message)
    assert.equal(e.cause.code, causeCode, e.message)
    assert.match(e.message, reason)
    for (const secret of secrets) assert.doesNotMatch(e.message, new RegExp(secret))
    return true
  })
}

module.exports = { firstRow, rejectsConnect }
