'use strict'
// A cursor in pg-cursor's shape, on onepool's row streams (lib/stream.js): `read(n)` gives the
// next n rows (fewer only at the end, then []), `close()` ends it. Each read asks the server
// for exactly its rows. `client.query(new Cursor(text, values))` returns it attached to that
// client, as with pg (Kysely's PostgresDialect `cursor` option does this); `client.cursor()` and
// `pool.cursor()` make one directly (the pool's holds a connection from the first read until
// the end or close()).

const { EventEmitter } = require('node:events')
const { clientError } = require('./errors')
const { prepareValues } = require('./params')
const { Batches, SUBMIT, checkBatchSize, checkRowMode, checkText } = require('./stream')

const noop = () => {}

/** pg-cursor's callbacks run outside the promise chain. */
function settle(promise, callback) {
  if (typeof callback !== 'function') return promise
  promise.then(
    (v) => process.nextTick(callback, undefined, v),
    (e) => process.nextTick(callback, e),
  )
  return undefined
}

class Cursor extends EventEmitter {
  #batches = null
  #reads = Promise.resolve()
  #config

  /**
   * @param {string} text
   * @param {unknown[]} [values]
   * @param {{ rowMode?: 'array', types?: object }} [config]
   */
  constructor(text, values, config = {}) {
    super()
    this.text = checkText(text)
    this.values = values === undefined ? [] : values
    this.#config = config || {}
    checkRowMode(this.#config.rowMode)
  }

  /** @internal Attaches the cursor to a connection source (lib/stream.js). */
  [SUBMIT](source) {
    if (this.#batches !== null) throw clientError('PARAM_INVALID', 'this cursor was already submitted')
    this.#batches = new Batches(source, this.text, prepareValues(this.values), {
      prefetch: false,
      rowAsArray: checkRowMode(this.#config.rowMode),
      types: this.#config.types,
    })
    return this
  }

  /** The next `rows` rows; fewer only at the end, then `[]`. With a callback: `(err, rows, result)`. */
  read(rows, callback) {
    const p = this.#reads.then(() => this.#read(rows))
    this.#reads = p.catch(noop)
    return settle(
      p.then((r) => r.rows),
      callback && ((err, rows) => callback(err, rows, this._result)),
    )
  }

  async #read(rows) {
    if (this.#batches === null) {
      throw clientError('PARAM_INVALID', 'the cursor was not submitted: pass it to client.query(), or use client.cursor() / pool.cursor()')
    }
    checkBatchSize(rows, 'read() row count')
    let batch
    try {
      batch = await this.#batches.next(rows)
    } catch (e) {
      if (this.listenerCount('error') > 0) this.emit('error', e)
      throw e
    }
    if (batch.result) this._result = batch.result
    if (batch.done && batch.result) this.emit('end', batch.result)
    return batch
  }

  /** Ends the cursor early; the connection is clean (a pool's given back) once it resolves. */
  close(callback) {
    const p = this.#batches === null ? Promise.resolve() : this.#batches.close(false)
    if (typeof callback !== 'function') return p
    p.then(
      () => process.nextTick(callback),
      (e) => process.nextTick(callback, e),
    )
    return undefined
  }
}

module.exports = { Cursor }
