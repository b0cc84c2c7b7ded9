'use strict'
// COPY in and out (src/conn/copy.rs) on a connection held for its length: a client's, or one
// checked out of the pool and given back after. Data crosses untouched (text, csv, binary),
// with backpressure both ways: a write resolves only once little enough waits to be sent, and
// data out is read one chunk at a time (the server waits while the consumer does).

const { Readable, Writable } = require('node:stream')
const { fromNative, clientError } = require('./errors')
const { decode } = require('./result')
const { resultNotices, errorNotices, tellNotices } = require('./notices')
const { checkSignal, checkText, iterateUntilClosed } = require('./stream')

/** Small writes are gathered into one crossing of about this size. */
const WRITE_CHUNK = 64 * 1024
// A COPY TO read's answer starts with one of these bytes (src/napi/stream.rs).
const DATA = 0x44
const END = 0x45

const noop = () => {}

const abortedError = () => clientError('ABORTED', 'the COPY was aborted')

/** Destroys `stream` with ABORTED when `options.signal` aborts (at once if it already has). */
function destroyOnAbort(stream, options) {
  const signal = checkSignal(options && options.signal)
  if (!signal) return
  if (signal.aborted) process.nextTick(() => stream.destroy(abortedError()))
  else signal.addEventListener('abort', () => stream.destroy(abortedError()), { once: true })
}

/** One COPY statement on a connection from `source` (lib/stream.js's clientSource/poolSource). */
class CopyRun {
  #source
  #text
  #toClient
  #client = null
  #native = null
  #addon = null
  #released = false
  #stopping = null
  /** While this COPY holds its client's connection: its token (`client._startStream()`). */
  #holding = null
  #ended = false

  constructor(source, text, toClient) {
    this.#source = source
    this.#text = checkText(text)
    this.#toClient = toClient
  }

  async open() {
    const client = await this.#source.acquire()
    this.#client = client
    try {
      const { session, addon, token } = client._startStream()
      this.#holding = token
      this.#addon = addon
      const [text] = addon.dispatcher.crossing(this.#text, [])
      const native = session.copy(text, this.#toClient)
      if (typeof native.read !== 'function') throw fromNative(native)
      this.#native = native
    } catch (e) {
      this.release()
      throw e
    }
  }

  /** The COPY is over, or being stopped: statements sent on the client may queue behind it again. */
  #over() {
    this.#ended = true
    if (this.#holding !== null) {
      this.#client._endStream(this.#holding)
      this.#holding = null
    }
  }

  /** One native step; resolves with its outcome, rejects with its error (which ends the COPY). */
  async #call(start) {
    const out = await this.#addon.dispatcher.request((env, id) => start({ env, id, lone: false }))
    if (!Buffer.isBuffer(out)) {
      this.#over()
      if (out.notices) tellNotices(this.#client, errorNotices(out))
      throw fromNative(out)
    }
    return out
  }

  started() {
    return this.#call((tag) => this.#native.started(tag))
  }

  /** Sends `buf`; resolves at once while little waits to be sent, else once it was taken. */
  async write(buf) {
    const out = await this.#addon.dispatcher.requestOrNow((env, id) => this.#native.write(buf, { env, id, lone: false }))
    if (out === true || Buffer.isBuffer(out)) return
    this.#over()
    if (out.notices) tellNotices(this.#client, errorNotices(out))
    throw fromNative(out)
  }

  /** Ends the data; resolves with the number of rows copied. */
  async finish() {
    const out = await this.#call((tag) => this.#native.finish(tag))
    this.#over()
    tellNotices(this.#client, resultNotices(out))
    return decode(out).rowCount
  }

  /** The next chunk of data out, or `null` at the end (`rowCount` then set). */
  async read() {
    const out = await this.#call((tag) => this.#native.read(tag))
    if (out[0] === DATA) return out.subarray(1)
    if (out[0] !== END) throw clientError('INTERNAL', 'onepool: corrupt COPY chunk')
    this.#over()
    const end = out.subarray(1)
    tellNotices(this.#client, resultNotices(end))
    this.rowCount = decode(end).rowCount
    return null
  }

  /** Stops a COPY still running (CopyFail, or a cancel for COPY TO); resolves once the connection is clean. */
  stop(reason) {
    if (this.#stopping === null) {
      this.#stopping =
        this.#native === null || this.#ended
          ? Promise.resolve()
          : this.#addon.dispatcher.request((env, id) => this.#native.close(String(reason), { env, id, lone: false })).then(noop)
      this.#over()
    }
    return this.#stopping
  }

  release() {
    this.#over()
    if (this.#released || this.#client === null) return
    this.#released = true
    this.#source.release(this.#client)
  }
}

function toBuffer(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8')
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw clientError('PARAM_INVALID', `COPY data must be Buffers, Uint8Arrays or strings, got ${chunk === null ? 'null' : typeof chunk}`)
}

/** Gathers small chunks into crossings of about WRITE_CHUNK bytes. */
class Gatherer {
  #run
  #parts = []
  #size = 0

  constructor(run) {
    this.#run = run
  }

  async add(buf) {
    if (buf.length === 0) return
    // A chunk large enough on its own crosses as it is, without a copy.
    if (this.#size === 0 && buf.length >= WRITE_CHUNK / 2) return this.#run.write(buf)
    this.#parts.push(buf)
    this.#size += buf.length
    if (this.#size >= WRITE_CHUNK) await this.flush()
  }

  async flush() {
    if (this.#size === 0) return
    const buf = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, this.#size)
    this.#parts = []
    this.#size = 0
    await this.#run.write(buf)
  }
}

function isIterable(x) {
  return x != null && (typeof x[Symbol.asyncIterator] === 'function' || typeof x[Symbol.iterator] === 'function')
}

/**
 * `copyFrom(text, data)`: sends `data` (a Readable, or any iterable or async iterable of
 * Buffers/strings) through `COPY ... FROM STDIN`; resolves with `{ rowCount }`. A server error
 * (a bad row, a constraint) rejects with its SQLSTATE and destroys a Readable source; a failing
 * source or the abort signal stops the COPY (CopyFail), so the table gets none of its rows.
 * Without `data`: a Writable to pipe into (`rowCount` set once it finished).
 */
function copyFrom(source, text, data, options = {}) {
  if (data === undefined) return new CopyFromStream(source, text, options)
  if (typeof data === 'string' || Buffer.isBuffer(data) || data instanceof Uint8Array) data = [data]
  if (!isIterable(data)) {
    return Promise.reject(clientError('PARAM_INVALID', 'copyFrom() takes a Readable, or an iterable or async iterable of Buffers or strings'))
  }
  return sendAll(source, text, data, options)
}

async function sendAll(source, text, data, options) {
  const signal = checkSignal(options && options.signal)
  if (signal && signal.aborted) throw abortedError()
  const run = new CopyRun(source, text, false)
  await run.open()
  const onAbort = () => run.stop('the COPY was aborted').catch(noop)
  if (signal) signal.addEventListener('abort', onAbort, { once: true })
  try {
    await run.started()
    const gather = new Gatherer(run)
    for await (const chunk of data) {
      if (signal && signal.aborted) throw abortedError()
      await gather.add(toBuffer(chunk))
    }
    await gather.flush()
    if (signal && signal.aborted) throw abortedError()
    return { rowCount: await run.finish() }
  } catch (e) {
    // The source failed or the caller gave up: the server drops the COPY (CopyFail).
    await run.stop(e && e.message ? `the data source failed: ${e.message}` : 'the data source failed').catch(noop)
    throw signal && signal.aborted ? abortedError() : e
  } finally {
    if (signal) signal.removeEventListener('abort', onAbort)
    run.release()
  }
}

/** The Writable `copyFrom(text)` returns. */
class CopyFromStream extends Writable {
  #run

  constructor(source, text, options) {
    super({ highWaterMark: WRITE_CHUNK, decodeStrings: true })
    this.#run = new CopyRun(source, text, false)
    /** Rows copied, once the stream finished. */
    this.rowCount = null
    destroyOnAbort(this, options)
  }

  _construct(callback) {
    this.#run
      .open()
      .then(() => this.#run.started())
      .then(() => callback(), callback)
  }

  _write(chunk, _encoding, callback) {
    this.#run.write(toBuffer(chunk)).then(() => callback(), callback)
  }

  _writev(chunks, callback) {
    const bufs = chunks.map((c) => toBuffer(c.chunk))
    this.#run.write(bufs.length === 1 ? bufs[0] : Buffer.concat(bufs)).then(() => callback(), callback)
  }

  _final(callback) {
    this.#run.finish().then(
      (rowCount) => {
        this.rowCount = rowCount
        this.#run.release()
        callback()
      },
      callback,
    )
  }

  _destroy(err, callback) {
    this.#run
      .stop(err && err.message ? err.message : 'the COPY was stopped')
      .catch(noop)
      .then(() => {
        this.#run.release()
        callback(err)
      })
  }
}

/**
 * `copyTo(text)`: the data of `COPY ... TO STDOUT` as a Readable of Buffers (`rowCount` set at
 * its end). Destroying it early cancels the COPY; the connection comes back clean.
 */
class CopyToStream extends Readable {
  #run
  #reading = false

  constructor(source, text, options) {
    super()
    this.#run = new CopyRun(source, text, true)
    /** Rows copied, once the stream ended. */
    this.rowCount = null
    destroyOnAbort(this, options)
  }

  _construct(callback) {
    this.#run.open().then(() => callback(), callback)
  }

  /** `for await`: leaving the loop resolves once the COPY stopped and the connection is back. */
  [Symbol.asyncIterator]() {
    return iterateUntilClosed(this, super[Symbol.asyncIterator]())
  }

  _read() {
    if (this.#reading) return
    this.#reading = true
    this.#run.read().then(
      (chunk) => {
        this.#reading = false
        if (chunk === null) {
          this.rowCount = this.#run.rowCount
          this.#run.release()
          this.push(null)
        } else {
          this.push(chunk)
        }
      },
      (e) => {
        this.#reading = false
        this.destroy(e)
      },
    )
  }

  _destroy(err, callback) {
    this.#run
      .stop('')
      .catch(noop)
      .then(() => {
        this.#run.release()
        callback(err)
      })
  }
}

function copyTo(source, text, options = {}) {
  return new CopyToStream(source, text, options)
}

module.exports = { copyFrom, copyTo }
