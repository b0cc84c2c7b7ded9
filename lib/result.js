'use strict'
// Decodes the native result buffer (layout in src/wire.rs) into node-postgres-shaped results.
// Values arrive in Postgres's text format and go through node-postgres's own type parsers
// (pg-types), so every built-in type comes back exactly as with pg.
//
// A large result is decoded a slice at a time, yielding to the event loop between slices, so a
// million-row query does not stall every other request of the process while it is turned into
// objects. A small one is decoded in one synchronous call, as before.

const pgTypes = require('pg-types')
const { readerFor } = require('./readers')
const { rowMaker } = require('./row-maker')
const { clientError } = require('./errors')
const { HAS_NOTICES } = require('./notices')

const defaultTypes = { getTypeParser: (oid, format) => pgTypes.getTypeParser(oid, format) }

// pg's Result.addCommandComplete
const COMMAND = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/

// One slice: rows until this many bytes of cells or this many rows, whichever comes first (a
// row is never split). Either bound is a few milliseconds of decoding; the row bound matters for
// narrow rows, where building the row objects costs more than reading the bytes.
const SLICE_BYTES = 512 * 1024
const SLICE_ROWS = 8192

class Result {
  constructor(command, rowCount, oid, fields, rows, rowAsArray) {
    this.command = command
    this.rowCount = rowCount
    this.oid = oid
    this.rows = rows
    this.fields = fields
    this.rowAsArray = rowAsArray
  }
}

// The native side checks every row against its own bytes and its columns before keeping it
// (src/conn/io.rs), so a server's lie never gets here: a bad buffer is onepool's bug. The
// checks stay so that it fails at once instead of being read to a claimed end.
const corrupt = () => clientError('INTERNAL', 'onepool: corrupt result buffer')

/**
 * One statement of the buffer: its description (starting at `desc`) read, its rows (cells from
 * `pos`) still to decode. `row` and `pos` advance as decodeRows() goes.
 */
class Statement {
  constructor(buf, pos, desc, rowAsArray, types) {
    this.buf = buf
    this.rowAsArray = rowAsArray
    const nrows = buf.readUInt32BE(desc)
    let extraAt = pos + buf.readUInt32BE(desc + 4)
    this.end = extraAt
    let at = desc + 12
    const nfields = buf.readUInt32BE(at)
    at += 4
    const fields = new Array(nfields)
    const parsers = new Array(nfields)
    const names = new Array(nfields)
    for (let i = 0; i < nfields; i++) {
      const oid = buf.readUInt32BE(at)
      const flags = buf.readUInt32BE(at + 4)
      const extraLen = buf.readUInt32BE(at + 8)
      const nameLen = buf.readUInt32BE(at + 12)
      at += 16
      const name = buf.utf8Slice(at, at + nameLen)
      at += nameLen
      names[i] = name
      fields[i] = { name, dataTypeID: oid, format: 'text' }
      parsers[i] = readerFor(oid, types.getTypeParser(oid, 'text'), flags, extraAt)
      extraAt += extraLen
    }
    const commandLen = buf.readUInt32BE(at)
    this.tag = buf.utf8Slice(at + 4, at + 4 + commandLen)
    this.fields = fields
    this.parsers = parsers
    this.makeRow = rowAsArray ? null : rowMaker(names)
    this.rows = new Array(nrows)
    this.row = 0
    this.pos = pos
  }

  get done() {
    return this.row === this.rows.length
  }

  /** Decodes rows until `maxRows` more are done or the cells reach byte `stopAt`. */
  decodeRows(maxRows, stopAt) {
    const { buf, rows, parsers, makeRow, end } = this
    const nfields = parsers.length
    const last = Math.min(rows.length, this.row + maxRows)
    // An array row is filled in place; an object row is made from the values (lib/row-maker.js).
    const values = makeRow === null ? null : new Array(nfields)
    let pos = this.pos
    let r = this.row
    for (; r < last && pos < stopAt; r++) {
      const row = makeRow === null ? new Array(nfields) : values
      for (let i = 0; i < nfields; i++) {
        const len = (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
        pos += 4
        let value = null
        if (len >= 0) {
          if (len > end - pos) throw corrupt()
          value = parsers[i](buf, pos, pos + len, r)
          pos += len
        } else if (len !== -1) throw corrupt()
        row[i] = value
      }
      rows[r] = makeRow === null ? row : makeRow(values)
    }
    this.pos = pos
    this.row = r
  }

  result() {
    if (this.pos !== this.end) throw corrupt()
    const m = COMMAND.exec(this.tag)
    let command = null
    let rowCount = null
    let oid = null
    if (m) {
      command = m[1]
      if (m[3]) {
        oid = parseInt(m[2], 10)
        rowCount = parseInt(m[3], 10)
      } else if (m[2]) {
        rowCount = parseInt(m[2], 10)
      }
    }
    return new Result(command, rowCount, oid, this.fields, this.rows, this.rowAsArray)
  }
}

/** Where each statement's cells and description start: `[starts, descs]`, in order. */
function locate(buf) {
  let end = buf.length - 4
  let n = buf.readUInt32BE(end)
  // Notices (lib/notices.js) sit between the results and their count.
  if (n >= HAS_NOTICES) {
    n -= HAS_NOTICES
    end -= 4 + buf.readUInt32BE(end - 4)
  }
  // Each description ends with its own length: walk back from the end to every result's start.
  const starts = new Array(n)
  const descs = new Array(n)
  for (let i = n - 1; i >= 0; i--) {
    const desc = end - 4 - buf.readUInt32BE(end - 4)
    descs[i] = desc
    starts[i] = desc - buf.readUInt32BE(desc + 8) - buf.readUInt32BE(desc + 4)
    end = starts[i]
  }
  if (end !== 0) throw corrupt()
  return [starts, descs]
}

/** One Result, or an array of Results when the text held several statements (as pg). */
function decode(buf, rowAsArray = false, types = defaultTypes) {
  const [starts, descs] = locate(buf)
  const n = starts.length
  if (n === 0) return new Result(null, null, null, [], [], rowAsArray)
  const results = new Array(n)
  for (let i = 0; i < n; i++) {
    const st = new Statement(buf, starts[i], descs[i], rowAsArray, types)
    st.decodeRows(Infinity, Infinity)
    results[i] = st.result()
  }
  return n === 1 ? results[0] : results
}

/** Whether decode() of `buf` could hold up the event loop long enough to be sliced. */
const isLarge = (buf) => buf.length > SLICE_BYTES

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/**
 * decode(), a slice at a time, with a turn of the event loop (setImmediate: timers and I/O run)
 * between slices. `stopped()` is asked after each pause: when it returns an error, decoding
 * ends there and that error is thrown. Rows and the values in them never point into `buf`, so
 * the caller may release it as soon as this settles.
 */
async function decodeInSlices(buf, rowAsArray = false, types = defaultTypes, stopped = () => null) {
  const [starts, descs] = locate(buf)
  const n = starts.length
  if (n === 0) return new Result(null, null, null, [], [], rowAsArray)
  const results = new Array(n)
  let sliceEnd = SLICE_BYTES
  let sliceRows = SLICE_ROWS
  for (let i = 0; i < n; i++) {
    const st = new Statement(buf, starts[i], descs[i], rowAsArray, types)
    for (;;) {
      const row = st.row
      st.decodeRows(sliceRows, sliceEnd)
      sliceRows -= st.row - row
      if (st.done) break
      // The slice is used up: pause, then start the next one where this one stopped.
      await nextTurn()
      const error = stopped()
      if (error) throw error
      sliceEnd = st.pos + SLICE_BYTES
      sliceRows = SLICE_ROWS
    }
    results[i] = st.result()
  }
  return n === 1 ? results[0] : results
}

module.exports = { decode, decodeInSlices, isLarge, Result, defaultTypes }
