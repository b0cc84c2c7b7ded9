'use strict'

const { loadBinding } = require('./lib/native')
const { normalizeOptions, publicOptions } = require('./lib/options')
const { Pool, PoolClient, withNulls } = require('./lib/pool')
const { creationSite } = require('./lib/events')
const { askPassword } = require('./lib/password')
const telemetry = require('./lib/otel')
const { OnepoolError, isOnepoolError, fromNative, CODES } = require('./lib/errors')
const { Result } = require('./lib/result')
const { Cursor } = require('./lib/cursor')
const { QueryStream } = require('./lib/query-stream')
const { defaults } = require('./lib/types')

const { binding, dispatcher } = loadBinding()

/**
 * Attaches to the process-global pool for these options (or `DATABASE_URL`). Every call with
 * the same `name` and database target, from any module evaluation or worker thread, shares one
 * native pool; changed options apply live.
 */
function createPool(options) {
  const site = creationSite(new Error().stack)
  const { native, js, passwordFunction } = normalizeOptions(options)
  const handle = binding.createPool(native, passwordFunction && askPassword(binding, passwordFunction))
  // Duck-typed: after the addon is re-registered, its classes are new objects.
  if (typeof handle.submit !== 'function') throw fromNative(handle)
  js.telemetry = telemetry.forPool(handle, native)
  return new Pool(handle, js, binding, dispatcher, publicOptions(options), site)
}

/** Every pool in this process, the process budget, and which build is running. */
function processStats() {
  const stats = binding.processStats()
  stats.budget.limit = stats.budget.limit ?? null
  stats.pools.forEach(withNulls)
  return stats
}

/** Caps the connections of all pools in the process together; `null` removes the cap. */
function setProcessMaxConnections(limit) {
  if (limit !== null && limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new OnepoolError('CONFIG_INVALID', `setProcessMaxConnections() takes a non-negative integer or null, got ${limit}`)
  }
  binding.setProcessMaxConnections(limit || null)
}

/** Ends every pool in the process. */
async function closeAll(options = {}) {
  await binding.closeAll(options.timeoutMs === undefined ? 30000 : options.timeoutMs)
}

module.exports = {
  createPool,
  processStats,
  setProcessMaxConnections,
  closeAll,
  OnepoolError,
  isOnepoolError,
  errorCodes: CODES,
  Pool,
  PoolClient,
  Result,
  Cursor,
  QueryStream,
  types: require('pg-types'),
  defaults,
}
