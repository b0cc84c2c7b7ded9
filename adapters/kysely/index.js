'use strict'
// onepool/kysely: Kysely's own PostgresDialect on onepool's process-global pool, typed the way
// Kysely expects its pool (onepool's result type is pg's, whose `command` is any string).

const { PostgresDialect } = require('kysely')
const { createPool, Cursor } = require('../..')

/** An onepool Pool from any copy of the package (instanceof fails across copies). */
function isPool(value) {
  return value !== null && typeof value === 'object' && typeof value.connect === 'function' && typeof value.stats === 'function'
}

/**
 * A Kysely dialect on `pool`, or on the pool `createPool(options)` attaches to (default:
 * DATABASE_URL). `config` takes PostgresDialect's other options (`onCreateConnection`, ...);
 * its `cursor` is onepool's Cursor unless given, so `.stream()` works.
 */
function onepoolDialect(poolOrOptions, config = {}) {
  const pool = isPool(poolOrOptions) ? poolOrOptions : createPool(poolOrOptions)
  return new PostgresDialect({ cursor: Cursor, ...config, pool })
}

module.exports = { onepoolDialect }
