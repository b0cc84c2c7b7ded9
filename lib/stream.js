'use strict'
// Row streams: a statement's rows a batch at a time, on a connection held for the stream's
// length (src/conn/portal.rs). A batch crosses as a result buffer and decodes exactly as a
// pool.query result does (lib/result.js). One batch is asked for at a time (with prefetch, the
// next while this one is consumed): a slow consumer slows the server, not the heap.
//
// `Batches` is the one engine; `pool.stream()` (an async iterable of rows, below), the
// pg-cursor-shaped `Cursor` (lib/cursor.js) and the pg-query-stream-shaped `QueryStream`
// (lib/query-stream.js) are its faces.

const { decode, defaultTypes } = require('./result')
const { resultNotices, errorNotices, tellNotices } = require('./notices')
const { fromNative, clientError } = require('./errors')
const { prepareValues } = require('./params')

/** Rows per batch of `pool.stream()` unless `batchSize` says otherwise. */
const DEFAULT_BATCH_SIZE = 1000
const MAX_BATCH_SIZE = 0x7fffffff

/**
 * How `client.query(x)` and `pool.query(x)` recognise onepool's cursors and query streams
 * (pg's Submittable, in onepool's terms): `x[SUBMIT](source)` attaches it and returns it.
 * A registered symbol, so that it works across copies of the package.
 */
const SUBMIT = Symbol.for('onepool.submit')

const noop = () => {}

/** Whether `client.query(x)` / `pool.query(x)` got a cursor or query stream rather than a query. */
function isSubmittable(x) {
  return x !== null && typeof x === 'object' && (typeof x[SUBMIT] === 'function' || typeof x.submit === 'function')
}

/**
 * Attaches onepool's cursor or query stream `x` to `source` and returns it, as pg's
 * `client.query(submittable)` does. pg's own (pg-cursor, pg-query-stream) drive pg's client
 * internals, which onepool does not have: they throw, naming the onepool class to use.
 */
function submit(x, source) {
  if (typeof x[SUBMIT] !== 'function') {
    throw invalid(
      "pg's cursors and query streams (pg-cursor, pg-query-stream) need pg's own client: use onepool's Cursor or QueryStream (require('onepool').Cursor), or client.stream()",
    )
  }
  return x[SUBMIT](source)
}

/** A stream on a client the caller holds: the connection stays the caller's. */
function clientSource(client) {
  return { acquire: () => client, release: noop }
}

/** A stream on the pool: a connection checked out for the stream's length, released after. */
function poolSource(pool) {
  return { acquire: () => pool.connect(), release: (client) => client.release() }
}

function invalid(message) {
  return clientError('PARAM_INVALID', message)
}

function checkBatchSize(n, name = 'batchSize') {
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_BATCH_SIZE)) {
    throw invalid(`${name} must be a positive integer, got ${typeof n === 'number' ? n : typeof n}`)
  }
  return n
}

function checkSignal(signal) {
  if (signal !== undefined && !(signal && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function')) {
    throw invalid('signal must be an AbortSignal')
  }
  return signal
}

function checkRowMode(rowMode) {
  if (rowMode !== undefined && rowMode !== 'array') {
    throw invalid(`rowMode must be 'array' when given, got ${JSON.stringify(rowMode)}`)
  }
  return rowMode === 'array'
}

function checkText(text) {
  if (typeof text !== 'string') throw invalid(`query text must be a string, got ${text === null ? 'null' : typeof text}`)
  return text
}

const aborted = () => clientError('ABORTED', 'the stream was aborted')

/**
 * A statement (or another stream) sent on a client while its stream is open would wait for the
 * stream to end, and the stream waits for its consumer: when the consumer awaits that statement,
 * neither ever moves. So it fails at once instead. Once the stream ended, or close() was called,
 * statements queue behind it as usual.
 */
function busy() {
  return clientError(
    'CLIENT_BUSY',
    "this client's connection is held by an open stream, cursor or COPY: a statement sent on it now would wait for that to end, which waits for you. End or close() it first, or run the statement on the pool or another client",
  )
}

/**
 * A Readable's async iterator whose return() (a `break` out of `for await`) resolves only once
 * the stream is destroyed: its statement ended and its connection is back. Node's own iterator
 * starts the destroy and returns at once.
 */
function iterateUntilClosed(readable, iterator) {
  const closed = () =>
    readable.closed ? Promise.resolve() : new Promise((resolve) => readable.once('close', resolve))
  return {
    next: () => iterator.next(),
    async return(value) {
      const r = await iterator.return(value)
      await closed()
      return r
    },
    async throw(err) {
      await iterator.return()
      await closed()
      throw err
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/**
 * The batches of one statement's rows, on a connection from `source`, opened at the first
 * `next()`. `close()` may come at any time, also while a batch is awaited (that read then
 * rejects with ABORTED); the connection is clean, and a pool's connection released, once the
 * stream ended or `close()` resolved.
 */
class Batches {
  #source
  #text
  #values
  #batchSize
  #prefetch
  #rowAsArray
  #types
  #client = null
  #native = null
  #addon = null
  #opening = null
  #ended = false
  #closing = null
  #released = false
  /** While this stream holds its client's connection: its token (`client._startStream()`). */
  #streaming = null

  /**
   * @param {{ batchSize?: number, prefetch: boolean, rowAsArray: boolean, types?: object }} options
   *   batchSize: rows per batch (default: the first `next(rows)`)
   */
  constructor(source, text, values, options) {
    this.#source = source
    this.#text = text
    this.#values = values
    this.#batchSize = options.batchSize
    this.#prefetch = options.prefetch
    this.#rowAsArray = options.rowAsArray
    this.#types = options.types
  }

  get ended() {
    return this.#ended
  }

  async #open(rows) {
    const client = await this.#source.acquire()
    this.#client = client
    try {
      const { session, addon, types, token } = client._startStream()
      this.#streaming = token
      this.#addon = addon
      if (!this.#types) this.#types = types || defaultTypes
      const [text, values] = addon.dispatcher.crossing(this.#text, this.#values)
      const native = session.stream(text, values, undefined, this.#batchSize || rows, this.#prefetch)
      if (typeof native.read !== 'function') throw fromNative(native)
      this.#native = native
    } catch (e) {
      this.#release()
      throw e
    }
  }

  #call(start) {
    return this.#addon.dispatcher.request((env, id) => start({ env, id, lone: false }))
  }

  /**
   * The next batch of at most `rows` rows (default: the batch size): `{ rows, done, result }`,
   * `done` on the last one (which may have no rows); `result` has pg's `fields`, and on the
   * last batch `command` and `rowCount`.
   */
  async next(rows = this.#batchSize || DEFAULT_BATCH_SIZE) {
    if (this.#ended) return { rows: [], done: true, result: null }
    if (this.#client !== null && this.#client.released) {
      throw clientError('CLIENT_RELEASED', 'the client was released: its stream ended with it')
    }
    if (this.#native === null) {
      if (this.#opening === null) this.#opening = this.#open(rows)
      try {
        await this.#opening
      } catch (e) {
        this.#ended = true
        throw e
      }
      if (this.#ended) throw aborted()
    }
    const out = await this.#call((tag) => this.#native.read(rows, tag))
    if (!Buffer.isBuffer(out)) {
      // The statement failed (or the connection did): the stream is over.
      if (out.notices) tellNotices(this.#client, errorNotices(out))
      const err = fromNative(out)
      this.#end()
      throw err
    }
    // The notices that came before these rows, on the stream's client (pg's 'notice' events).
    tellNotices(this.#client, resultNotices(out))
    let result
    try {
      result = decode(out, this.#rowAsArray, this.#types)
    } finally {
      this.#addon.dispatcher.release(out)
    }
    // A batch with more to come has rows and no command tag (src/conn/portal.rs).
    const done = result.command !== null || result.rows.length === 0
    if (done) this.#end()
    return { rows: result.rows, done, result }
  }

  /**
   * Ends the stream early (the portal is closed; `abort` also cancels a batch the server is
   * still computing). Resolves once the connection is clean and a pool's connection released.
   */
  close(abort = false) {
    if (this.#closing === null) this.#closing = this.#close(abort)
    return this.#closing
  }

  async #close(abort) {
    const wasEnded = this.#ended
    this.#ended = true
    // Closing: statements sent on the client from now on queue behind the close.
    this.#unhold()
    if (this.#opening !== null) await this.#opening.catch(noop)
    if (this.#native !== null && !wasEnded) {
      const out = await this.#call((tag) => this.#native.close(abort, tag))
      // A failure here means the connection broke: releasing it discards it.
      void out
    }
    this.#release()
  }

  /** The stream ended by itself (its last batch, or an error): the connection is clean. */
  #end() {
    this.#ended = true
    this.#unhold()
    // A close() under way releases once the server has answered it.
    if (this.#closing === null) this.#release()
  }

  #unhold() {
    if (this.#streaming !== null) {
      this.#client._endStream(this.#streaming)
      this.#streaming = null
    }
  }

  #release() {
    this.#unhold()
    if (this.#released || this.#client === null) return
    this.#released = true
    this.#source.release(this.#client)
  }
}

/**
 * `pool.stream()` / `client.stream()`: the rows of one statement, as an async iterable, a batch
 * at a time. Breaking out of the loop, `close()`, the abort signal or an error ends it and gives
 * the connection back clean.
 */
class RowStream {
  #batches
  #rows = []
  #i = 0
  #done = false
  #signal
  #onAbort = null
  #aborted = false
  #result = null

  constructor(source, text, values, options = {}) {
    if (options === null || typeof options !== 'object') throw invalid('stream options must be an object')
    const batchSize = options.batchSize === undefined ? DEFAULT_BATCH_SIZE : checkBatchSize(options.batchSize)
    this.#signal = checkSignal(options.signal)
    this.#batches = new Batches(source, checkText(text), prepareValues(values), {
      batchSize,
      prefetch: true,
      rowAsArray: checkRowMode(options.rowMode),
      types: options.types,
    })
    if (this.#signal && this.#signal.aborted) {
      this.#aborted = true
    } else if (this.#signal) {
      this.#onAbort = () => {
        this.#aborted = true
        this.#batches.close(true).catch(noop)
      }
      this.#signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  [Symbol.asyncIterator]() {
    return this
  }

  /** The columns (pg's `fields`), once the first batch came. */
  get fields() {
    return this.#result ? this.#result.fields : undefined
  }

  /** The statement's row count (pg's `rowCount`), once the stream ended by itself. */
  get rowCount() {
    return this.#result && this.#result.command !== null ? this.#result.rowCount : null
  }

  async next() {
    if (this.#i < this.#rows.length) return { value: this.#rows[this.#i++], done: false }
    return this.#nextBatch()
  }

  async #nextBatch() {
    this.#rows = []
    this.#i = 0
    for (;;) {
      if (this.#aborted) {
        this.#finish()
        await this.#batches.close(true)
        throw aborted()
      }
      if (this.#done) return { value: undefined, done: true }
      let batch
      try {
        batch = await this.#batches.next()
      } catch (e) {
        this.#finish()
        throw this.#aborted ? aborted() : e
      }
      if (batch.result) this.#result = batch.result
      if (batch.done) this.#finish()
      if (batch.rows.length > 0) {
        this.#rows = batch.rows
        this.#i = 1
        return { value: batch.rows[0], done: false }
      }
    }
  }

  /** Called by `for await` when the loop is left early: closes the stream. */
  async return() {
    this.#finish()
    this.#rows = []
    await this.#batches.close(false)
    return { value: undefined, done: true }
  }

  async throw(err) {
    await this.return()
    throw err
  }

  /** Ends the stream now; resolves once the connection is clean (and a pool's released). */
  async close() {
    await this.return()
  }

  #finish() {
    this.#done = true
    if (this.#onAbort) {
      this.#signal.removeEventListener('abort', this.#onAbort)
      this.#onAbort = null
    }
  }
}

module.exports = {
  checkSignal,
  Batches,
  RowStream,
  SUBMIT,
  isSubmittable,
  submit,
  busy,
  iterateUntilClosed,
  clientSource,
  poolSource,
  checkBatchSize,
  checkRowMode,
  checkText,
  DEFAULT_BATCH_SIZE,
}
