'use strict'
// onepool/drizzle: Drizzle's node-postgres driver on onepool's process-global pool. The driver
// runs on any pg-compatible pool; this entry spares users a cast to pg's Pool type.

const { drizzle: nodePostgres } = require('drizzle-orm/node-postgres')
const { createPool } = require('../..')

function isPool(value) {
  return value !== null && typeof value === 'object' && typeof value.connect === 'function' && typeof value.stats === 'function'
}

/**
 * A Drizzle database on `pool`, or on the pool `createPool(options)` attaches to (default:
 * DATABASE_URL). `config` is Drizzle's (`schema`, `logger`, `casing`, ...).
 */
function drizzle(poolOrOptions, config = {}) {
  const pool = isPool(poolOrOptions) ? poolOrOptions : createPool(poolOrOptions)
  return nodePostgres({ ...config, client: pool })
}

module.exports = { drizzle }
