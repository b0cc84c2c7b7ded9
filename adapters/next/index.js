'use strict'
// onepool/next: wraps a route handler (Next.js App Router, or anything of the shape
// `(request, context) => Response`) so that what it checks out of the pool is always given
// back, and database errors become HTTP responses instead of stack traces:
//
//   export const GET = withPool(db, async (req, ctx, db) => Response.json((await db.query('select 1')).rows))
//
// - Clients checked out through the request's `db` handle (its `connect()`) are released when
//   the handler settles, even when it throws or forgot to call `release()`.
// - POOL_TIMEOUT (the pool stayed busy for `acquireTimeoutMs`) becomes 503 with `Retry-After`.
// - Any other onepool error becomes a JSON 500 that says only which code failed: no SQL, no
//   parameters, no server message (which can quote values), no connection details.
// - Any other error is rethrown unchanged, for Next.js (or the caller) to handle.
// It uses only the web-standard `Response`, so it does not depend on Next.js.

const { AsyncLocalStorage } = require('node:async_hooks')
const { isOnepoolError, OnepoolError } = require('../..')

const clientError = (code, message) => new OnepoolError(code, message)

/**
 * @typedef {import('../..').Pool} Pool
 * @typedef {import('../..').PoolClient} PoolClient
 */

/**
 * @typedef {object} WithPoolOptions
 * @property {number} [retryAfterSeconds] `Retry-After` of the 503 sent for POOL_TIMEOUT (default 1).
 * @property {(error: Error, request: Request) => void} [onError] Called with every database
 *   error turned into a response (default: `console.error`). Not called for rethrown errors.
 */

const scopes = new AsyncLocalStorage()

const SAFE_CODE = /^[A-Z0-9_]{1,40}$/

/** The database handle of one request: the pool's API, with checkouts tied to the request. */
class RequestDb {
  /** @type {Pool} */
  #pool
  /** @type {Set<PoolClient>} */
  #clients = new Set()
  #open = true

  /** @param {Pool} pool */
  constructor(pool) {
    this.#pool = pool
    /** The pool's tagged template (`db.sql\`select ...\``). */
    this.sql = pool.sql
  }

  /** Same as `pool.query()`: runs on any free connection and gives it back at once. */
  query(textOrConfig, values, callback) {
    return this.#pool.query(textOrConfig, values, callback)
  }

  /**
   * Checks out a client; it is released when the handler settles if the handler has not
   * released it itself. A checkout that completes after the handler settled is released at
   * once (using that client then fails with CLIENT_RELEASED).
   * @returns {Promise<PoolClient>}
   */
  async connect() {
    if (!this.#open) {
      throw clientError('CLIENT_RELEASED', 'withPool: connect() was called after the route handler settled')
    }
    const client = await this.#pool.connect()
    if (this.#open) {
      this.#clients.add(client)
    } else {
      await client.release().catch(() => {})
    }
    return client
  }

  /** Same as `pool.transaction()`: COMMIT on success, ROLLBACK on throw, always released. */
  transaction(fn, options) {
    return this.#pool.transaction(fn, options)
  }

  /** Pool statistics (`pool.stats()`). */
  stats() {
    return this.#pool.stats()
  }

  /** Clients this request still holds. */
  get checkedOut() {
    let n = 0
    for (const c of this.#clients) if (!c.released) n++
    return n
  }

  /**
   * @internal Releases whatever the handler left checked out; never throws. The pool rolls
   * back an open transaction and waits for a statement still running before reusing it.
   */
  async _close() {
    this.#open = false
    const clients = [...this.#clients]
    this.#clients.clear()
    await Promise.all(clients.map((c) => (c.released ? undefined : c.release().catch(() => {}))))
  }
}

function jsonResponse(status, body, headers) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  })
}

function defaultOnError(err, request) {
  let where = ''
  try {
    where = `${request.method} ${new URL(request.url).pathname}`
  } catch {
    // not a standard Request: log the error alone
  }
  console.error(`onepool/next: ${where ? where + ' ' : ''}failed with ${err.code}:`, err)
}

/**
 * The response for a database error, or `null` when `err` is not a database error.
 * @param {unknown} err
 * @param {{ retryAfterSeconds?: number }} [options]
 * @returns {Response | null}
 */
function errorResponse(err, options = {}) {
  if (!isOnepoolError(err)) return null
  const code = SAFE_CODE.test(err.code) ? err.code : 'DATABASE_ERROR'
  if (code === 'POOL_TIMEOUT') {
    const retryAfter = options.retryAfterSeconds === undefined ? 1 : options.retryAfterSeconds
    return jsonResponse(
      503,
      { error: 'The database is busy. Retry shortly.', code },
      { 'retry-after': String(Math.max(0, Math.ceil(retryAfter))) },
    )
  }
  return jsonResponse(500, { error: 'A database error occurred.', code })
}

/**
 * Wraps a route handler: `handler(request, context, db)` gets a per-request `db` whose
 * checkouts are released when the handler settles; database errors become responses.
 * @template {Request} Req
 * @template Ctx
 * @template {Response} Res
 * @param {Pool} pool The pool, usually the module-scope `createPool()` of `lib/db`.
 * @param {(request: Req, context: Ctx, db: RequestDb) => Res | Promise<Res>} handler
 * @param {WithPoolOptions} [options]
 * @returns {(request: Req, context: Ctx) => Promise<Res | Response>}
 */
function withPool(pool, handler, options = {}) {
  if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function' || typeof pool.query !== 'function') {
    throw clientError('CONFIG_INVALID', 'withPool() takes a pool from createPool() as its first argument')
  }
  if (typeof handler !== 'function') {
    throw clientError('CONFIG_INVALID', 'withPool() takes the route handler function as its second argument')
  }
  if (options === null || typeof options !== 'object') {
    throw clientError('CONFIG_INVALID', 'withPool() options must be an object')
  }
  const { retryAfterSeconds, onError = defaultOnError } = options
  if (retryAfterSeconds !== undefined && !(typeof retryAfterSeconds === 'number' && retryAfterSeconds >= 0)) {
    throw clientError('CONFIG_INVALID', 'withPool() option retryAfterSeconds must be a non-negative number')
  }
  return async function onepoolRoute(request, context) {
    const db = new RequestDb(pool)
    let result
    try {
      result = await scopes.run(db, () => handler(request, context, db))
    } catch (err) {
      await db._close()
      const response = errorResponse(err, { retryAfterSeconds })
      if (!response) throw err
      try {
        onError(err, request)
      } catch {
        // a failing logger must not turn a 503 into a 500
      }
      return response
    }
    await db._close()
    return result
  }
}

/** The `db` of the `withPool()` handler running in this async context, if any. */
function requestDb() {
  return scopes.getStore()
}

module.exports = { withPool, requestDb, errorResponse, RequestDb }
