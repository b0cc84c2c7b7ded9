'use strict'
// onepool/prisma: a Prisma 7 driver adapter (`SqlDriverAdapterFactory`) on onepool's native pool.
//
//   const adapter = new PrismaOnepool({ connectionString: process.env.DATABASE_URL, max: 5 })
//   export const prisma = new PrismaClient({ adapter })
//
// Every factory attaches to the process-global native pool of its identity (name + target), so
// the PrismaClients that hot reload creates, and any createPool() of the same identity, share one
// bounded set of connections. Nothing here owns a pool: dispose() ($disconnect) releases this
// adapter's transactions and leaves the pool to the other handles of the process.
//
// Values, argument conversion and error mapping follow @prisma/adapter-pg 7.10 (conversion.ts,
// errors.ts), so switching adapters changes no result. Differences, all deliberate:
// - timestamptz/timetz: adapter-pg sends UTC wall time without an offset and relabels what the
//   server returns as +00:00, which is right only in a UTC session. Here arguments carry +00:00
//   and results are converted to UTC, so any server TimeZone works (identical in UTC sessions).
// - executeScript sends the script as one simple-protocol query instead of splitting it on ';'.
// - the schema Prisma qualifies tables with also comes from the URL's `schema` parameter.
// - BEGIN and the isolation level are one statement.
// It does not depend on @prisma/driver-adapter-utils: Prisma's engine recognises adapter errors by
// shape (`name === 'DriverAdapterError'` and an object `cause`), which DriverAdapterError below has.

const { createPool } = require('../..')
const { ColumnTypeEnum } = require('./conversion')
const { DriverAdapterError, isDriverAdapterError } = require('./errors')
const { OnepoolAdapter, ADAPTER_NAME } = require('./queryable')


const ADAPTER_OPTIONS = ['schema', 'userDefinedTypeParser']

/** True for an onepool Pool from any copy of the package (instanceof fails across copies). */
function isPool(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.query === 'function' &&
    typeof value.connect === 'function' &&
    typeof value.stats === 'function' &&
    typeof value.end === 'function'
  )
}

/** The `schema` parameter of a Prisma-style connection string. */
function schemaOf(connectionString) {
  if (typeof connectionString !== 'string') return undefined
  const query = connectionString.split('?')[1]
  if (!query) return undefined
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    if (eq > 0 && pair.slice(0, eq) === 'schema') {
      const raw = pair.slice(eq + 1).replace(/\+/g, ' ')
      let value = raw
      try {
        value = decodeURIComponent(raw)
      } catch {} // a stray '%': keep it as written
      return value || undefined
    }
  }
  return undefined
}

class PrismaOnepool {
  #pool
  /** The createPool() argument when this factory attached the pool itself. */
  #attach
  #options

  /**
   * @param {import('../..').Pool | import('../..').PoolOptions | string} [poolOrOptions] an onepool Pool,
   *   createPool() options, or a connection string; default: DATABASE_URL, as createPool().
   * @param {{ schema?: string, userDefinedTypeParser?: Function }} [options]
   */
  constructor(poolOrOptions, options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('PrismaOnepool: the second argument must be an options object')
    }
    for (const key of Object.keys(options)) {
      if (!ADAPTER_OPTIONS.includes(key)) {
        throw new TypeError(`PrismaOnepool: unknown adapter option "${key}" (known: ${ADAPTER_OPTIONS.join(', ')}); pool options go in the first argument`)
      }
    }
    this.provider = 'postgres'
    this.adapterName = ADAPTER_NAME
    let schema = options.schema
    if (isPool(poolOrOptions)) {
      this.#pool = poolOrOptions
    } else {
      this.#attach = { options: poolOrOptions }
      // Attaching here makes a bad configuration throw CONFIG_INVALID where the adapter is made.
      this.#pool = createPool(poolOrOptions)
      // createPool()'s own fallback: DATABASE_URL when neither a URL nor a host is given.
      const o = typeof poolOrOptions === 'string' ? { connectionString: poolOrOptions } : poolOrOptions || {}
      const url = o.connectionString ?? (o.host === undefined ? process.env.DATABASE_URL : undefined)
      if (schema === undefined) schema = schemaOf(url)
    }
    const pool = () => this.#pool
    this.#options = Object.freeze({
      schema,
      userDefinedTypeParser: options.userDefinedTypeParser,
      address: () => {
        try {
          return pool().stats().target
        } catch {
          return undefined
        }
      },
    })
  }

  /** The onepool Pool (shared, process-global) that this factory's adapters use. */
  get pool() {
    return this.#pool
  }

  async connect() {
    // A pool ended by pool.end()/closeAll() is replaced by a fresh one of the same identity, as
    // a new createPool() would be; a pool that was passed in is the caller's to replace.
    if (this.#attach && this.#pool.ended) this.#pool = createPool(this.#attach.options)
    return new OnepoolAdapter(this.#pool, this.#options)
  }
}

module.exports = {
  PrismaOnepool,
  DriverAdapterError,
  isDriverAdapterError,
  ColumnTypeEnum,
}
