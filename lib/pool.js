'use strict'

const { EventEmitter } = require('node:events')
const { fromNative, clientError } = require('./errors')
const { prepareValues } = require('./params')
const { decode, decodeInSlices, isLarge, defaultTypes } = require('./result')
const { watchCheckout } = require('./leaks')
const { makeSql } = require('./sql')
const listening = require('./listen')
const { TypeOverrides } = require('./types')
const { resultNotices, errorNotices, tellNotices } = require('./notices')
const events = require('./events')
const streams = require('./stream')
const { Cursor } = require('./cursor')
const copy = require('./copy')

/**
 * node-postgres's named statements (`{ name, text, values }`): a name given with its text once
 * may be used without it afterwards, and a name may not stand for two texts (pg's wording). The
 * statement itself is prepared by onepool's own statement cache, keyed by text, so the name is
 * only this bookkeeping: `names` maps each name used through one Pool object (and its clients)
 * to its text, where pg keeps one map per connection.
 */
function namedText(name, text, names) {
  const known = names.get(name)
  if (text === undefined || text === null) {
    if (known === undefined) {
      throw clientError('PARAM_INVALID', `no statement named '${name}' was prepared through this pool: give its text with its first use`)
    }
    return known
  }
  if (known === undefined) {
    if (typeof text === 'string') names.set(name, text)
  } else if (known !== text) {
    throw clientError('PARAM_INVALID', `Prepared statements must be unique - '${name}' was used for a different statement`)
  }
  return text
}

/**
 * Splits pg's overloads: (text, values?, cb?) and ({ text, values, rowMode, types, signal }, values?, cb?),
 * plus onepool's (text, values, { signal }).
 */
function normalizeQuery(textOrConfig, values, options, names) {
  let callback
  if (typeof values === 'function') {
    callback = values
    values = undefined
  } else if (typeof options === 'function') {
    callback = options
  }
  let signal
  let timeout
  if (options && typeof options === 'object') {
    signal = options.signal
    timeout = options.timeout
  }
  let text = textOrConfig
  let rowMode
  let types
  let name
  if (textOrConfig !== null && typeof textOrConfig === 'object') {
    text = textOrConfig.text
    rowMode = textOrConfig.rowMode
    types = textOrConfig.types
    name = textOrConfig.name
    if (textOrConfig.signal !== undefined) signal = textOrConfig.signal
    // node-postgres's per-query `query_timeout`, or onepool's `timeout`.
    if (textOrConfig.query_timeout !== undefined) timeout = textOrConfig.query_timeout
    if (textOrConfig.timeout !== undefined) timeout = textOrConfig.timeout
    if (values === undefined) values = textOrConfig.values
  }
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && Number.isFinite(timeout))) {
    throw clientError('PARAM_INVALID', 'timeout must be a non-negative number of milliseconds')
  }
  if (signal !== undefined && !(signal && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function')) {
    throw clientError('PARAM_INVALID', 'signal must be an AbortSignal')
  }
  if (name !== undefined && name !== null && name !== '') {
    if (typeof name !== 'string') throw clientError('PARAM_INVALID', `a statement's name must be a string, got ${typeof name}`)
    text = namedText(name, text, names)
  }
  if (typeof text !== 'string') {
    throw clientError('PARAM_INVALID', `query text must be a string, got ${text === null ? 'null' : typeof text}`)
  }
  if (rowMode !== undefined && rowMode !== 'array') {
    throw clientError('PARAM_INVALID', `rowMode must be 'array' when given, got ${JSON.stringify(rowMode)}`)
  }
  return { text, values: prepareValues(values), rowAsArray: rowMode === 'array', types, signal, timeout, callback }
}

function aborted() {
  return clientError('ABORTED', 'the query was aborted')
}

// Per pinned connection, the outcome of its latest query while one before it is still decoding
// a large result in slices: a client's queries settle in the order they were sent, as with pg,
// even when a small result arrives while a large one is being decoded.
const settling = new WeakMap()
const ignore = () => {}

// Per pinned connection, the native end of a query that timed out (QUERY_TIMEOUT rejects at once,
// before the statement's cancel has run its course).
const winding = new WeakMap()

/**
 * Runs `q` on `target` (a NativePool or NativeSession). `client`: the PoolClient it runs for,
 * which emits the request's notices before the request settles (none for a shared pool.query).
 */
async function run(target, q, poolTypes, native, client) {
  // A pinned connection whose earlier query timed out is still winding it down (its cancel may
  // be on its way): nothing new goes out on it before that, or the cancel could stop it instead.
  const draining = winding.get(target)
  if (draining !== undefined) await draining
  let out
  if (q.signal || q.timeout) {
    out = await submitAbortable(target, q, native)
  } else {
    out = await native.dispatcher.submit(target, q.text, q.values)
  }
  const types = q.types || poolTypes || defaultTypes
  const ahead = settling.get(target)
  if (ahead === undefined && !(Buffer.isBuffer(out) && isLarge(out))) {
    if (!Buffer.isBuffer(out)) throw failure(out, client)
    try {
      if (client !== undefined) tellNotices(client, resultNotices(out))
      return decode(out, q.rowAsArray, types)
    } finally {
      native.dispatcher.release(out)
    }
  }
  const outcome = decodeAfter(ahead, out, q, types, native, client)
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

/** The error of a failed request, its notices told first. */
function failure(native, client) {
  if (client !== undefined && native.notices) tellNotices(client, errorNotices(native))
  return fromNative(native)
}

function timedOut(ms) {
  return clientError('QUERY_TIMEOUT', `the query did not complete within its ${ms} ms timeout and was cancelled`)
}

/**
 * A request that can be stopped: by its AbortSignal (ABORTED) or by its timeout (QUERY_TIMEOUT).
 * Either way the native side cancels the statement on the server and, if the server does not
 * wind it down, closes the connection; it goes back to the pool only once it is clean. A timeout
 * rejects at once, without waiting for that: the caller is bounded even by a stalled server.
 */
function submitAbortable(target, q, native) {
  if (q.signal && q.signal.aborted) return Promise.reject(aborted())
  const handle = new native.binding.AbortHandle()
  const submitted = native.dispatcher.submit(target, q.text, q.values, handle)
  return new Promise((resolve, reject) => {
    let timer
    let settled = false
    const onAbort = () => handle.abort()
    const finish = () => {
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      if (q.signal) q.signal.removeEventListener('abort', onAbort)
    }
    if (q.signal) q.signal.addEventListener('abort', onAbort, { once: true })
    if (q.timeout) {
      timer = setTimeout(() => {
        if (settled) return
        finish()
        handle.abort()
        if (typeof target.releaseNow === 'function') {
          const wound = submitted.then(ignore, ignore)
          winding.set(target, wound)
          wound.then(() => {
            if (winding.get(target) === wound) winding.delete(target)
          })
        }
        reject(timedOut(q.timeout))
        // A result that still arrives is nobody's: give its memory back.
        submitted.then((out) => Buffer.isBuffer(out) && native.dispatcher.release(out), ignore)
      }, q.timeout)
    }
    submitted.then(
      (out) => {
        if (settled) return
        finish()
        resolve(out)
      },
      (e) => {
        if (settled) return
        finish()
        reject(e)
      },
    )
  })
}

/**
 * Once the query `ahead` on the same connection has settled, the result, a large one decoded in
 * slices (the event loop runs between them). An abort of the query's signal while it decodes
 * rejects with ABORTED at the next slice: the caller gave up waiting, although the statement
 * itself had completed.
 */
async function decodeAfter(ahead, out, q, types, native, client) {
  try {
    if (ahead !== undefined) await ahead
    if (!Buffer.isBuffer(out)) throw failure(out, client)
    if (client !== undefined) tellNotices(client, resultNotices(out))
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

function callbackOf(first, values, options) {
  if (typeof values === 'function') return values
  if (typeof options === 'function') return options
  // pg's pool.query(callback): the callback hears that a query is missing.
  return typeof first === 'function' ? first : undefined
}

/**
 * Supports pg's callback style next to promises. The callback runs outside the promise chain,
 * as in pg: an exception thrown inside it is an uncaught exception, not an unhandled rejection.
 */
function withCallback(promise, callback) {
  if (!callback) return promise
  promise.then(
    (r) => process.nextTick(callback, undefined, r),
    (e) => process.nextTick(callback, e),
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
  #owner
  #released = false
  /** end() closed the connection; the release() that follows, as pg code does, is a no-op. */
  #endedBeforeRelease = false
  #depth = 0
  #savepoints = 0
  /** This client's setTypeParser() parsers over the pool's (pg's per-client TypeOverrides). */
  #types = null
  /** The stream, cursor or COPY holding the connection, by its token (lib/stream.js, lib/copy.js). */
  #streaming = null
  /** Back in the pool, listening for its own 'error' as pg's pool does (#idleListener). */
  #idle = false
  /** Its connection is closed or closing (pg's `client._ending`, which pg code reads). */
  #ending = false
  /** The connection it stands for: one PoolClient per connection and Pool object. */
  #connectionId

  /**
   * pg's idle listener: an 'error' on a client that is back in the pool (emitted by the native
   * side for a lost idle connection, or by code that holds the client) closes its connection
   * and goes to the pool's 'error' listeners, with the client as `err.client`. Later errors on
   * a removed client are nobody's.
   */
  #idleListener = (err) => {
    if (this.#ending) return
    this.#ending = true
    this.#owner._idleError(this, err)
  }

  /**
   * @param owner the Pool object that checked it out: told of each release (pg's `release`
   *   event, maxUses). One PoolClient stands for one connection for that Pool object, as in pg.
   */
  constructor(session, js, addon, onRelease, owner) {
    super()
    this.#js = js
    this.#addon = addon
    this.#owner = owner
    /** Checkouts of this connection by its Pool object (pg's maxUses). */
    this._uses = 0
    this.pipeline = js.pipeline === true
    this._attach(session, onRelease)
    /** Tagged template: sql`select * from t where id = ${id}` → rows. */
    this.sql = makeSql(this)
  }

  /** @internal A new checkout of the same connection. */
  _attach(session, onRelease) {
    if (this.#idle) {
      this.#idle = false
      this.removeListener('error', this.#idleListener)
    }
    // Checked out, so live: an idle error seen while another Pool object held it closed nothing.
    this.#ending = false
    this.#session = session
    this.#connectionId = session.connectionId
    this.#onRelease = onRelease
    this.#released = false
    this.#depth = 0
    this.#streaming = null
    this.processID = session.processId
    /** The server this client's connection is on (one of a multi-host pool's hosts). */
    this.host = session.host
    this.port = session.port
  }

  query(textOrConfig, values, options) {
    if (streams.isSubmittable(textOrConfig)) return streams.submit(textOrConfig, streams.clientSource(this))
    let q
    try {
      q = normalizeQuery(textOrConfig, values, options, this.#owner._statementNames)
      if (this.#released) {
        throw clientError('CLIENT_RELEASED', this.#endedBeforeRelease ? 'the client was ended' : 'the client was already released to the pool')
      }
      if (this.#streaming) throw streams.busy()
    } catch (e) {
      return withCallback(Promise.reject(e), callbackOf(textOrConfig, values, options))
    }
    if (q.timeout === undefined && this.#js.queryTimeoutMs) q.timeout = this.#js.queryTimeoutMs
    return withCallback(run(this.#session, q, this.#types || this.#js.types, this.#addon, this), q.callback)
  }

  /**
   * node-postgres's `client.setTypeParser(oid, [format], parser)`: this client's queries parse
   * type `oid` with `parser` (a query's own `types` still wins). It stays with the client, and
   * so with its connection, across checkouts. onepool receives text, so a 'binary' parser is
   * kept (getTypeParser shows it) but never used, as in pg without `binary: true`.
   */
  setTypeParser(oid, format, parser) {
    if (typeof format === 'function') {
      parser = format
      format = 'text'
    }
    if (typeof parser !== 'function') throw clientError('PARAM_INVALID', 'setTypeParser(oid, [format], parser) takes a parser function')
    if (format !== 'text' && format !== 'binary') throw clientError('PARAM_INVALID', `format must be 'text' or 'binary', got ${JSON.stringify(format)}`)
    if (this.#types === null) this.#types = new TypeOverrides(this.#js.types || defaultTypes)
    this.#types.setTypeParser(oid, format, parser)
  }

  /** The parser this client's queries use for type `oid`. */
  getTypeParser(oid, format = 'text') {
    return (this.#types || this.#js.types || defaultTypes).getTypeParser(oid, format)
  }

  /**
   * Returns the client to the pool; a truthy argument (pg's `release(err)`) closes it instead,
   * and so does reaching `maxUses`.
   */
  release(destroy) {
    if (this.#endedBeforeRelease) {
      // pg code ends a pooled client and then releases it; end() already did.
      this.#endedBeforeRelease = false
      return Promise.resolve()
    }
    return this._release(destroy, destroy)
  }

  /**
   * @internal Releases the client; `reason` is what the pool's `release` event carries (pg's
   * pool.query passes its query's error there without closing the connection here).
   */
  _release(destroy, reason) {
    if (this.#released) {
      throw clientError('CLIENT_RELEASED', 'release() was called on a client that was already released')
    }
    this.#released = true
    if (this.#onRelease) this.#onRelease()
    this._uses++
    if (this.#owner._released(this, reason)) destroy = true
    if (destroy) this.#ending = true
    else this.#goIdle()
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

  #goIdle() {
    if (this.#idle) return
    this.#idle = true
    this.on('error', this.#idleListener)
  }

  get released() {
    return this.#released
  }

  /** @internal Back in the pool with its idle listener (pg's), not checked out by this object. */
  get _idle() {
    return this.#idle
  }

  /** pg's `client._ending`: true once the client's connection is closed or closing. */
  get _ending() {
    return this.#ending
  }

  /** The rows of one statement, a batch at a time: `for await (const row of client.stream(...))`. */
  stream(text, values, options) {
    return new streams.RowStream(streams.clientSource(this), text, values, options)
  }

  /** A pg-cursor-shaped cursor on this client: `read(n)`, `close()`. */
  cursor(text, values, config) {
    return streams.submit(new Cursor(text, values, config), streams.clientSource(this))
  }

  /** `COPY ... FROM STDIN` with `source`'s data → `{ rowCount }`; without `source`, a Writable. */
  copyFrom(text, source, options) {
    return copy.copyFrom(streams.clientSource(this), text, source, options)
  }

  /** `COPY ... TO STDOUT` as a Readable of Buffers. */
  copyTo(text, options) {
    return copy.copyTo(streams.clientSource(this), text, options)
  }

  /**
   * @internal A stream, cursor or COPY takes the connection until `_endStream()`: the pinned
   * session for it (lib/stream.js, lib/copy.js).
   */
  _startStream() {
    if (this.#released) throw clientError('CLIENT_RELEASED', 'the client was already released to the pool')
    if (this.#streaming) throw streams.busy()
    const token = {}
    this.#streaming = token
    return { session: this.#session, addon: this.#addon, types: this.#types || this.#js.types, token }
  }

  /**
   * @internal The stream ended or is closing: statements may queue behind it again. A stream of
   * an earlier checkout of this connection frees nothing.
   */
  _endStream(token) {
    if (this.#streaming === token) this.#streaming = null
  }

  /**
   * node-postgres's `client.end()` on a pooled client: closes its connection now. The client is
   * released with it; a `release()` called afterwards (as pg code does) is a no-op.
   */
  end(callback) {
    let p
    if (this.#released) {
      p = Promise.reject(clientError('CLIENT_RELEASED', 'end() was called on a client that was already released'))
    } else {
      p = this._release(true, undefined)
      this.#endedBeforeRelease = true
    }
    return withCallback(p, callback)
  }

  /**
   * @internal Passes the client on to a checkout waiting in the pool while its COMMIT is still
   * running (the waiter's statements queue behind it). False when nobody waits.
   */
  _passOn() {
    if (!this.#owner._mayPassOn(this)) return false
    const now = this.#session.passOn(this.#addon.dispatcher.envId)
    if (now === false) return false
    this.#released = true
    if (this.#onRelease) this.#onRelease()
    this._uses++
    this.#owner._released(this, undefined)
    this.#goIdle()
    if (now !== true) this.#addon.dispatcher.handOver(now[0], now[1])
    return true
  }

  /** @internal Runs an already normalised query (pool.query through a checkout). */
  _run(q) {
    return run(this.#session, q, this.#types || this.#js.types, this.#addon, this)
  }

  /** @internal The connection this client stands for (the pool's events name it). */
  get _connectionId() {
    return this.#connectionId
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
  let commit
  try {
    commit = await committing
  } catch (e) {
    // Lost after COMMIT went out: the server may have committed. Say so, rather than let a
    // caller retry work that may already be in.
    if (e && e.code === 'CONNECTION_LOST' && !e.notRun) {
      throw clientError('COMMIT_UNKNOWN', 'the connection was lost after COMMIT was sent: the transaction may or may not have committed', e)
    }
    throw e
  }
  if (commit.command === 'ROLLBACK') {
    throw clientError(
      'TRANSACTION_ABORTED',
      'the transaction was rolled back: a statement inside it failed and its error was caught in the callback',
    )
  }
  return result
}

const noRelease = () => {}

/** A pool's stats with `null` (not a missing property) where a server's value is unknown. */
function withNulls(stats) {
  for (const h of stats.hosts) {
    h.readOnly = h.readOnly ?? null
    h.lagMs = h.lagMs ?? null
    h.error = h.error ?? null
  }
  return stats
}

function closedError() {
  return clientError('POOL_CLOSED', 'the pool was ended: end() was called on it')
}

class Pool extends EventEmitter {
  #native
  #js
  #addon
  #site
  /** connection id → the PoolClient standing for it (pg hands out the same client again). */
  #clients = new Map()
  #watching = false
  /** pool.query goes through a checkout: something must see each new connection first. */
  #viaClient
  #ending = false
  #ended = false
  /** This object's requests and checkouts not yet settled (end() lets them finish). */
  #pending = 0
  #drained = null
  #telemetry
  /** @internal pg's named statements of this object and its clients: name → text. */
  _statementNames = new Map()
  /** `pool.replica`: this pool for reads on a standby (`null` on the replica view itself). */
  #replica

  /**
   * @param options node-postgres's `pool.options`: what was passed, defaults filled in
   * @param site where createPool was called (see lib/events.js)
   */
  constructor(native, js, binding, dispatcher, options, site) {
    super()
    this.#native = native
    this.#js = js
    this.#addon = { binding, dispatcher }
    this.#site = site || events.creationSite(new Error().stack)
    this.#viaClient = Boolean(js.onConnect || js.verify)
    this.#replica = js.replicaOf ? null : undefined
    this.#telemetry = js.telemetry || null
    this.options = options || {}
    /** Tagged template: sql`select * from t where id = ${id}` → rows. */
    this.sql = makeSql(this)
    this.on('newListener', (event) => {
      // Each 'connect' and 'acquire' event has a client: pool.query checks one out for them.
      if (event === 'connect' || event === 'acquire') this.#viaClient = true
      if (event === 'remove' || event === 'error' || event === 'connect') this.#watch()
    })
    if (this.#telemetry) {
      this.#telemetry.attach()
      // Connection create times come with the native events.
      this.#watch()
    }
  }

  /** Native events (opened, closed, idle error) reach this object from now on (lib/events.js). */
  #watch() {
    if (this.#watching) return
    this.#watching = true
    events.register(this.#native, this, this.#site)
  }

  /** @internal From lib/events.js. */
  _onNative(kind, connectionId, ms, message) {
    if (kind === events.OPENED) {
      if (this.#telemetry) this.#telemetry.created(ms)
    } else if (kind === events.CLOSED) {
      const client = this.#clients.get(connectionId)
      this.#clients.delete(connectionId)
      this.#log('remove client')
      this.emit('remove', client || { connectionId })
    } else if (kind === events.IDLE_ERROR) {
      const err = clientError('CONNECTION_LOST', message)
      const client = this.#clients.get(connectionId)
      err.client = client
      // As in pg, the client hears it first, and the pool through the client's idle listener.
      // An idle connection's error is an event; with nobody listening it is not an exception.
      if (client !== undefined && client._idle) client.emit('error', err)
      else this._idleError(client, err)
    }
  }

  /**
   * @internal An idle client (or, without one, an idle connection) failed: its connection closes
   * and the pool's 'error' listeners hear it, with the client.
   */
  _idleError(client, err) {
    if (client !== undefined) {
      this.#native.closeIdle(client._connectionId)
      if (err !== null && typeof err === 'object') err.client = client
    }
    if (this.listenerCount('error') > 0) this.emit('error', err, client)
  }

  #log(message) {
    if (this.#js.log) this.#js.log(message)
  }

  /** Counts a request or checkout until it settles, for end(). */
  #track(p) {
    this.#pending++
    p.then(this.#settle, this.#settle)
    return p
  }

  #settle = () => {
    if (--this.#pending === 0 && this.#drained) this.#drained()
  }

  query(textOrConfig, values, options) {
    if (streams.isSubmittable(textOrConfig)) return streams.submit(textOrConfig, streams.poolSource(this))
    let q
    try {
      q = normalizeQuery(textOrConfig, values, options, this._statementNames)
      if (this.#ending) throw closedError()
    } catch (e) {
      return withCallback(Promise.reject(e), callbackOf(textOrConfig, values, options))
    }
    if (q.timeout === undefined && this.#js.queryTimeoutMs) q.timeout = this.#js.queryTimeoutMs
    if (this.#js.log) this.#js.log('dispatching query')
    // pg's pool.query checks a client out and back in. onepool's shares connections instead,
    // unless a hook or a 'connect' or 'acquire' listener must see each connection.
    let p
    if (this.#telemetry) {
      p = this.#telemetry.query(q, this.#viaClient ? () => this.#queryOnClient(q) : () => run(this.#native, q, this.#js.types, this.#addon))
    } else {
      p = this.#viaClient ? this.#queryOnClient(q) : run(this.#native, q, this.#js.types, this.#addon)
    }
    // Shared, it has no client to show: its 'release' event carries none. (Checking one out for a
    // 'release' listener would triple a query's cost, and Vercel's attachDatabasePool listens for
    // 'release' on every pool.)
    if (!this.#viaClient && this.listenerCount('release') > 0) p = this.#announce(p)
    return withCallback(this.#track(p), q.callback)
  }

  #announce(p) {
    p.then(
      () => this.emit('release', null, undefined),
      (e) => this.emit('release', e, undefined),
    )
    return p
  }

  /**
   * pool.query through a checkout. Its `release` event carries the query's error, as in pg; the
   * connection is kept all the same, unless broken (README: a statement error keeps the connection).
   */
  async #queryOnClient(q) {
    const client = await this.#checkout()
    // pg releases with the query callback's error argument: null when it succeeded.
    let failure = null
    try {
      return await client._run(q)
    } catch (e) {
      failure = e
      throw e
    } finally {
      client._release(false, failure)
    }
  }

  /** Checks out a client for several statements; call `client.release()` when done. */
  connect(callback) {
    if (this.#ending) {
      if (!callback) return Promise.reject(closedError())
      process.nextTick(callback, closedError(), undefined, noRelease)
      return undefined
    }
    const p = this.#track(this.#checkout())
    if (!callback) return p
    p.then(
      (c) => process.nextTick(callback, undefined, c, (err) => c.release(err)),
      (e) => process.nextTick(callback, e, undefined, noRelease),
    )
    return undefined
  }

  #checkout() {
    // Closed connections must leave #clients: their events say when.
    this.#watch()
    const onRelease = watchCheckout(this.#js, () => this.#native.stats().name)
    const started = this.#telemetry ? performance.now() : 0
    // An idle connection is checked out synchronously; otherwise wait for one.
    const now = this.#native.tryConnect()
    const got = now ? Promise.resolve(now) : this.#addon.dispatcher.connect(this.#native)
    return got.then((s) => {
      if (typeof s.submit !== 'function') {
        if (onRelease) onRelease()
        const err = fromNative(s)
        if (this.#telemetry) this.#telemetry.failedCheckout(err)
        throw err
      }
      const client = this.#adopt(s, onRelease)
      if (this.#telemetry) {
        this.#telemetry.waited(performance.now() - started)
        if (client instanceof PoolClient) this.#telemetry.checkedOut(client)
      }
      return client
    })
  }

  /** The PoolClient for a checked-out connection: the same object again for the same connection. */
  #adopt(session, onRelease) {
    const id = session.connectionId
    let client = this.#clients.get(id)
    if (client !== undefined) {
      client._attach(session, onRelease)
      this.emit('acquire', client)
      return client
    }
    client = new PoolClient(session, this.#js, this.#addon, onRelease, this)
    this.#clients.set(id, client)
    const { onConnect, verify } = this.#js
    if (!onConnect && !verify) {
      this.#log('new client connected')
      this.emit('connect', client)
      this.emit('acquire', client)
      return client
    }
    return this.#prepare(client, id)
  }

  /** pg's onConnect (before first use) and verify hooks on a connection new to this pool. */
  async #prepare(client, id) {
    const { onConnect, verify } = this.#js
    try {
      if (onConnect) await onConnect(client)
      this.emit('connect', client)
      this.emit('acquire', client)
      if (verify) await new Promise((resolve, reject) => verify(client, (err) => (err ? reject(err) : resolve())))
      return client
    } catch (e) {
      this.#clients.delete(id)
      if (!client.released) client.release(e instanceof Error ? e : true)
      throw e
    }
  }

  /** @internal A client of this pool was released; true when it must be closed (maxUses). */
  _released(client, err) {
    this.emit('release', err, client)
    if (this.#telemetry) this.#telemetry.released(client)
    if (client._uses >= this.#js.maxUses) {
      this.#log('remove expended client')
      return true
    }
    return false
  }

  /** @internal Whether a client may be passed on with its COMMIT in flight (not when expended). */
  _mayPassOn(client) {
    return client._uses + 1 < this.#js.maxUses
  }

  /**
   * Runs `fn(client)` in a transaction: COMMIT when it resolves, ROLLBACK when it throws.
   * The client is always released.
   */
  async transaction(fn, options) {
    if (typeof fn !== 'function') throw clientError('PARAM_INVALID', 'transaction() takes a callback')
    if (this.#telemetry) return this.#telemetry.transaction(() => this.#transaction(fn, options))
    return this.#transaction(fn, options)
  }

  async #transaction(fn, options) {
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

  /**
   * `pg_notify(channel, payload)`; resolves once it ran. Through `pool.replica` too it goes where
   * the pool's writes go: a standby refuses NOTIFY.
   */
  notify(channel, payload) {
    return listening.notify(this.#js.replicaOf || this, channel, payload)
  }

  /**
   * The same pool for reads that may run on a standby: its queries, clients and transactions go
   * to a read replica or a standby of the host list (a random one of those up), and to the
   * pool's own server when no standby is up. Replication lag applies: read your own writes
   * through the pool itself.
   */
  get replica() {
    if (this.#replica === null) return this
    if (this.#replica === undefined) {
      const js = { ...this.#js, replicaOf: this }
      const { binding, dispatcher } = this.#addon
      // Its own creation site: its native events must not take over this object's (lib/events.js).
      this.#replica = new Pool(this.#native.replica(), js, binding, dispatcher, this.options, `${this.#site} (replica)`)
    }
    return this.#replica
  }

  /** The rows of one statement on a connection of its own, a batch at a time. */
  stream(text, values, options) {
    return new streams.RowStream(streams.poolSource(this), text, values, options)
  }

  /** A pg-cursor-shaped cursor holding a connection from its first read to its end or close(). */
  cursor(text, values, config) {
    return streams.submit(new Cursor(text, values, config), streams.poolSource(this))
  }

  /** `COPY ... FROM STDIN` on a connection of its own → `{ rowCount }`; without `source`, a Writable. */
  copyFrom(text, source, options) {
    return copy.copyFrom(streams.poolSource(this), text, source, options)
  }

  /** `COPY ... TO STDOUT` on a connection of its own, as a Readable of Buffers. */
  copyTo(text, options) {
    return copy.copyTo(streams.poolSource(this), text, options)
  }

  stats() {
    return withNulls(this.#native.stats())
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

  /** Connections past their lifetime still checked out: onepool closes them as they come back
   * and does not count them apart, so 0. */
  get expiredCount() {
    return 0
  }

  /** True once end() was called on this pool object, or the pool was ended through another. */
  get ending() {
    return this.#ending || this.#native.isClosed
  }

  /** True once the pool was ended and its last connection is gone, as in pg. */
  get ended() {
    return this.#ended || (this.#native.isClosed && this.#native.stats().size === 0)
  }

  /**
   * Ends the pool: no new requests through this object (POOL_CLOSED); those already made finish
   * (queued ones included), then the native pool closes for every handle in the process, waiting
   * up to `timeoutMs` (default 30 s) in all for checked-out clients. A second end() on the same
   * object rejects with POOL_CLOSED, as in pg.
   */
  end(options = {}, callback) {
    if (typeof options === 'function') {
      callback = options
      options = {}
    }
    if (this.#ending) {
      return withCallback(Promise.reject(clientError('POOL_CLOSED', 'end() was already called on this pool')), callback)
    }
    this.#ending = true
    const timeoutMs = options && options.timeoutMs !== undefined ? options.timeoutMs : 30000
    const deadline = Date.now() + timeoutMs
    // With nothing of this object's in flight the pool closes now, as pg's does.
    const closing = this.#pending === 0 ? this.#native.end(timeoutMs) : this.#settled(timeoutMs).then(() => this.#native.end(Math.max(0, deadline - Date.now())))
    const p = closing
      .then(() => {
        this.#ended = true
        if (this.#telemetry) this.#telemetry.detach()
      })
    return withCallback(p, callback)
  }

  /** Resolves when this object's requests and checkouts have settled, or after `timeoutMs`. */
  #settled(timeoutMs) {
    if (this.#pending === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      timer.unref()
      this.#drained = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

module.exports = { Pool, PoolClient, beginStatement, withNulls }
