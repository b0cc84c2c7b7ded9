'use strict'
// A readable stream of rows in pg-query-stream's shape, on onepool's row streams
// (lib/stream.js): `client.query(new QueryStream(text, values, { batchSize }))` returns it, and
// it reads `batchSize` rows at a time (the next batch travels while this one is consumed). A
// project on pg-query-stream changes its `require` line and nothing else. Destroying it (or a
// failed pipeline) closes the statement and gives the connection back clean.

const { Readable } = require('node:stream')
const { clientError } = require('./errors')
const { prepareValues } = require('./params')
const { Batches, SUBMIT, checkBatchSize, checkRowMode, checkText, iterateUntilClosed } = require('./stream')

class QueryStream extends Readable {
  #batches = null
  #config
  #reading = false
  #wanted = false

  /**
   * @param {string} text
   * @param {unknown[]} [values]
   * @param {{ batchSize?: number, highWaterMark?: number, rowMode?: 'array', types?: object }} [config]
   *   as pg-query-stream's: `batchSize` defaults to `highWaterMark`, which defaults to 100
   */
  constructor(text, values, config = {}) {
    config = config || {}
    const batchSize = checkBatchSize(config.batchSize ?? config.highWaterMark ?? 100)
    super({ objectMode: true, autoDestroy: true, highWaterMark: config.highWaterMark ?? batchSize })
    this.text = checkText(text)
    this.values = values === undefined ? [] : values
    this.batchSize = batchSize
    this.#config = config
    checkRowMode(config.rowMode)
  }

  /** @internal Attaches the stream to a connection source (lib/stream.js). */
  [SUBMIT](source) {
    if (this.#batches !== null) throw clientError('PARAM_INVALID', 'this stream was already submitted')
    this.#batches = new Batches(source, this.text, prepareValues(this.values), {
      batchSize: this.batchSize,
      prefetch: true,
      rowAsArray: checkRowMode(this.#config.rowMode),
      types: this.#config.types,
    })
    if (this.#wanted) this._read()
    return this
  }

  _read() {
    if (this.#batches === null) {
      // Read before `client.query(stream)`: it starts once submitted.
      this.#wanted = true
      return
    }
    if (this.#reading) return
    this.#reading = true
    this.#batches.next().then(
      ({ rows, done, result }) => {
        this.#reading = false
        if (result) this._result = result
        for (const row of rows) this.push(row)
        if (done) this.push(null)
      },
      (e) => {
        this.#reading = false
        this.destroy(e)
      },
    )
  }

  /** `for await`: leaving the loop resolves once the statement ended and the connection is back. */
  [Symbol.asyncIterator]() {
    return iterateUntilClosed(this, super[Symbol.asyncIterator]())
  }

  _destroy(err, callback) {
    if (this.#batches === null) return callback(err)
    this.#batches.close(false).then(
      () => callback(err),
      (e) => callback(err || e),
    )
  }
}

module.exports = { QueryStream }
