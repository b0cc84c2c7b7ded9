'use strict'

const { EventEmitter } = require('node:events')
const { fromNative, clientError } = require('./errors')
const { prepareValues } = require('./params')
const { decode, decodeInSlices, isLarge, defaultTypes } = require('./result')
const { watchCheckout } = require('./leaks')
const { makeSql } = require('./sql')
const listening = require('./listen')

/**
 * Splits pg's overloads: (text, values?, cb?) and ({ text, values, rowMode, types, signal }, values?, cb?),
 * plus onepool's (text, values, { signal }).
 */
function normalizeQuery(textOrConfig, values, options) {
  let callback
  if (typeof values === 'function') {
    callback = values
    values = undefined
  } else if (typeof options === 'function') {
    callback = options
  }
  let signal = options && typeof options === 'object' ? options.signal : undefined
  let text = textOrConfig
  let rowMode
  let types
  if (textOrConfig !== null && typeof textOrConfig === 'object') {
    text = textOrConfig.text
    rowMode = textOrConfig.rowMode
    types = textOrConfig.types
    if (textOrConfig.signal !== undefined) signal = textOrConfig.signal
    if (values === undefined) values = textOrConfig.values
  }
  if (signal !== undefined && !(signal && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function')) {
    throw clientError('PARAM_INVALID', 'signal must be an AbortSignal')
  }
  if (typeof text !== 'string') {
    throw clientError('PARAM_INVALID', `query text must be a string, got ${text === null ? 'null' : typeof text}`)
  }
  if (rowMode !== undefined && rowMode !== 'array') {
    throw clientError('PARAM_INVALID', `rowMode must be 'array' when given, got ${JSON.stringify(rowMode)}`)
  }
  return { text, values: prepareValues(values), rowAsArray: rowMode === 'array', types, signal, callback }
}

function aborted() {
  return clientError('ABORTED', 'the query was aborted')
}

// Per pinned connection, the outcome of its latest query while one before it is still decoding
// a large result in slices: a client's queries settle in the order they were sent, as with pg,
// even when a small result arrives while a large one is being decoded.
const settling = new WeakMap()
const ignore = () => {}

async function run(target, q, poolTypes, native) {
  let out
  if (q.signal) {
    if (q.signal.aborted) throw aborted()
    const handle = new native.binding.AbortHandle()
    const onAbort = () => handle.abort()
    q.signal.addEventListener('abort', onAbort, { once: true })
    try {
      out = await native.dispatcher.submit(target, q.text, q.values, handle)
    } finally {
      q.signal.removeEventListener('abort', onAbort)
    }
  } else {
    out = await native.dispatcher.submit(target, q.text, q.values)
  }
  const types = q.types || poolTypes || defaultTypes
  const ahead = settling.get(target)
  if (ahead === undefined && !(Buffer.isBuffer(out) && isLarge(out))) {
    if (!Buffer.isBuffer(out)) throw fromNative(out)
    try {
      return decode(out, q.rowAsArray, types)
    } finally {
      native.dispatcher.release(out)
    }
  }
  const outcome = decodeAfter(ahead, out, q, types, native)
  // A pinned connection (a NativeSession; duck-typed, as its class changes when the addon is
  // registered again). A pool's queries run on different connections and keep no order.
  if (typeof target.releaseNow === 'function') {
    const settled = outcome.then(ignore, ignore)
    settling.set(target, settled)
    settled.then(() => {
      if (settling.get(target) === settled) settling.delete(target)
    })
  }
  return outcome
}

/**
 * Once the query `ahead` on the same connection has settled, the result, a large one decoded in
 * slices (the event loop runs between them). An abort of the query's signal while it decodes
 * rejects with ABORTED at the next slice: the caller gave up waiting, although the statement
 * itself had completed.
 */
async function decodeAfter(ahead, out, q, types, native) {
  try {
    if (ahead !== undefined) await ahead
    if (!Buffer.isBuffer(out)) throw fromNative(out)
    const stopped = () =>
      q.signal && q.signal.aborted
        ? clientError('ABORTED', 'the query was aborted while its result was being decoded (the statement had completed on the server)')
        : null
    return await decodeInSlices(out, q.rowAsArray, types, stopped)
  } finally {
    // Only now: every slice reads the buffer, and releasing it detaches it.
    native.dispatcher.release(out)
  }
}

function callbackOf(values, options) {
  if (typeof values === 'function') return values
  return typeof options === 'function' ? options : undefined
}

/** Supports pg's callback style next to promises. */
function withCallback(promise, callback) {
  if (!callback) return promise
  promise.then(
    (r) => callback(null, r),
    (e) => callback(e),
  )
  return undefined
}

function beginStatement(options = {}) {
  let sql = 'BEGIN'
  const { isolationLevel, readOnly, deferrable } = options
  if (isolationLevel !== undefined) {
    const level = String(isolationLevel).toUpperCase().replace(/_/g, ' ')
    if (!['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'].includes(level)) {
      throw clientError('PARAM_INVALID', `unknown isolationLevel ${JSON.stringify(isolationLevel)}`)
    }
    sql += ` ISOLATION LEVEL ${level}`
  }
  if (readOnly !== undefined) sql += readOnly ? ' READ ONLY' : ' READ WRITE'
  if (deferrable !== undefined) sql += deferrable ? ' DEFERRABLE' : ' NOT DEFERRABLE'
  return sql
}

class PoolClient extends EventEmitter {
  #session
  #js
  #addon
  #onRelease
  #released = false
  #depth = 0
  #savepoints = 0

  constructor(session, js, addon, onRelease) {
    super()
    this.#session = session
    this.#js = js
    this.#addon = addon
    this.#onRelease = onRelease
    this.processID = session.processId
    /** Tagged template: sql`select * from t where id = ${id}` → rows. */
    this.sql = makeSql(this)
  }

  query(textOrConfig, values, options) {
    let q
    try {
      q = normalizeQuery(textOrConfig, values, options)
      if (this.#released) throw clientError('CLIENT_RELEASED', 'the client was already released to the pool')
    } catch (e) {
      return withCallback(Promise.reject(e), callbackOf(values, options))
    }
    return withCallback(run(this.#session, q, this.#js.types, this.#addon), q.callback)
  }

  /** Returns the client to the pool; a truthy argument (pg's `release(err)`) closes it instead. */
  release(destroy) {
    if (this.#released) {
      throw clientError('CLIENT_RELEASED', 'release() was called on a client that was already released')
    }
    this.#released = true
    if (this.#onRelease) this.#onRelease()
    const now = this.#session.releaseNow(Boolean(destroy), this.#addon.dispatcher.envId)
    if (now === true) return Promise.resolve()
    if (now !== false) {
      // The connection went straight to a checkout waiting on this thread.
      this.#addon.dispatcher.handOver(now[0], now[1])
      return Promise.resolve()
    }
    const done = this.#session.release(Boolean(destroy))
    done.catch(() => {})
    return done.then(() => undefined)
  }

  get released() {
    return this.#released
  }

  /**
   * @internal Passes the client on to a checkout waiting in the pool while its COMMIT is still
   * running (the waiter's statements queue behind it). False when nobody waits.
   */
  _passOn() {
    const now = this.#session.passOn(this.#addon.dispatcher.envId)
    if (now === false) return false
    this.#released = true
    if (this.#onRelease) this.#onRelease()
    if (now !== true) this.#addon.dispatcher.handOver(now[0], now[1])
    return true
  }

  /** A nested transaction: a savepoint inside the current transaction. */
  async transaction(fn, options) {
    if (this.#depth === 0) return runTransaction(this, fn, options)
    const name = `onepool_sp_${++this.#savepoints}`
    await this.query(`SAVEPOINT ${name}`)
    this.#depth++
    try {
      const result = await fn(this)
      await this.query(`RELEASE SAVEPOINT ${name}`)
      return result
    } catch (e) {
      await this.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {})
      throw e
    } finally {
      this.#depth--
    }
  }

  /** @internal */
  _enter(delta) {
    this.#depth += delta
  }
}

async function runTransaction(client, fn, options, afterCommitSent) {
  // BEGIN is not awaited on its own: it goes out in the same write as the callback's first
  // statement (requests on one connection run in order), saving a round trip per transaction.
  // Its outcome is still awaited before COMMIT, and it can only fail if the connection does.
  const begun = client.query(beginStatement(options))
  begun.catch(() => {})
  client._enter(1)
  let result
  try {
    result = await fn(client)
    await begun
  } catch (e) {
    client._enter(-1)
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
  client._enter(-1)
  const committing = client.query('COMMIT')
  if (afterCommitSent) afterCommitSent()
  const commit = await committing
  if (commit.command === 'ROLLBACK') {
    throw clientError(
      'TRANSACTION_ABORTED',
      'the transaction was rolled back: a statement inside it failed and its error was caught in the callback',
    )
  }
  return result
}

class Pool extends EventEmitter {
  #native
  #js
  #addon

  constructor(native, js, binding, dispatcher) {
    super()
    this.#native = native
    this.#js = js
    this.#addon = { binding, dispatcher }
    /** Tagged template: sql`select * from t where id = ${id}` → rows. */
    this.sql = makeSql(this)
  }

  query(textOrConfig, values, options) {
    let q
    try {
      q = normalizeQuery(textOrConfig, values, options)
    } catch (e) {
      return withCallback(Promise.reject(e), callbackOf(values, options))
    }
    return withCallback(run(this.#native, q, this.#js.types, this.#addon), q.callback)
  }

  /** Checks out a client for several statements; call `client.release()` when done. */
  connect(callback) {
    const onRelease = watchCheckout(this.#js, () => this.#native.stats().name)
    // An idle connection is checked out synchronously; otherwise wait for one.
    const now = this.#native.tryConnect()
    const p = now
      ? Promise.resolve(new PoolClient(now, this.#js, this.#addon, onRelease))
      : this.#addon.dispatcher.connect(this.#native).then((s) => {
          if (typeof s.submit !== 'function') {
            if (onRelease) onRelease()
            throw fromNative(s)
          }
          return new PoolClient(s, this.#js, this.#addon, onRelease)
        })
    if (!callback) return p
    p.then(
      (c) => callback(null, c, (err) => c.release(err)),
      (e) => callback(e),
    )
    return undefined
  }

  /**
   * Runs `fn(client)` in a transaction: COMMIT when it resolves, ROLLBACK when it throws.
   * The client is always released.
   */
  async transaction(fn, options) {
    if (typeof fn !== 'function') throw clientError('PARAM_INVALID', 'transaction() takes a callback')
    const client = await this.connect()
    // A checkout waiting for a connection gets this one as soon as COMMIT is on the wire.
    let handedOn = false
    try {
      return await runTransaction(client, fn, options, () => {
        handedOn = client._passOn()
      })
    } finally {
      if (!handedOn) await client.release()
    }
  }

  /**
   * Subscribes `handler` to NOTIFYs on `channel` (lib/listen.js; README, "LISTEN/NOTIFY").
   * Returns `{ channel, ready, unlisten(), ref(), unref() }`.
   */
  listen(channel, handler, options) {
    return listening.listen(this.#native, this.#addon, channel, handler, options)
  }

  /** `pg_notify(channel, payload)`; resolves once it ran. */
  notify(channel, payload) {
    return listening.notify(this, channel, payload)
  }

  stats() {
    return this.#native.stats()
  }

  get totalCount() {
    return this.#native.stats().size
  }

  get idleCount() {
    return this.#native.stats().idle
  }

  get waitingCount() {
    return this.#native.stats().waiting
  }

  get ended() {
    return this.#native.isClosed
  }

  /**
   * Closes this native pool for every handle in the process: waits up to `timeoutMs` (default
   * 30 s) for checked-out clients, fails waiters with POOL_CLOSED.
   */
  async end(options = {}, callback) {
    if (typeof options === 'function') {
      callback = options
      options = {}
    }
    const timeoutMs = options && options.timeoutMs !== undefined ? options.timeoutMs : 30000
    const p = this.#native.end(timeoutMs).then(() => undefined)
    return withCallback(p, callback)
  }
}

module.exports = { Pool, PoolClient, beginStatement }
