'use strict'
// Decodes the native result buffer (layout in src/wire.rs) into node-postgres-shaped results.
// Values arrive in Postgres's text format and go through node-postgres's own type parsers
// (pg-types), so every built-in type comes back exactly as with pg.

const pgTypes = require('pg-types')
const { readerFor } = require('./readers')

const defaultTypes = { getTypeParser: (oid, format) => pgTypes.getTypeParser(oid, format) }

// pg's Result.addCommandComplete
const COMMAND = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/

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

/** The statement whose cells start at `pos` and whose description starts at `desc`. */
function decodeResult(buf, pos, desc, rowAsArray, types) {
  const nrows = buf.readUInt32BE(desc)
  let extraAt = pos + buf.readUInt32BE(desc + 4)
  const end = extraAt
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
  const tag = buf.utf8Slice(at + 4, at + 4 + commandLen)
  const rows = new Array(nrows)
  for (let r = 0; r < nrows; r++) {
    const row = rowAsArray ? new Array(nfields) : {}
    for (let i = 0; i < nfields; i++) {
      const len = (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
      pos += 4
      let value = null
      if (len >= 0) {
        value = parsers[i](buf, pos, pos + len, r)
        pos += len
      }
      if (rowAsArray) row[i] = value
      else row[names[i]] = value
    }
    rows[r] = row
  }
  if (pos !== end) throw new Error('onepool: corrupt result buffer')
  const m = COMMAND.exec(tag)
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
  return new Result(command, rowCount, oid, fields, rows, rowAsArray)
}

/** One Result, or an array of Results when the text held several statements (as pg). */
function decode(buf, rowAsArray = false, types = defaultTypes) {
  let end = buf.length - 4
  const n = buf.readUInt32BE(end)
  if (n === 0) return new Result(null, null, null, [], [], rowAsArray)
  // Each description ends with its own length: walk back from the end to every result's start.
  const starts = new Array(n)
  const descs = new Array(n)
  for (let i = n - 1; i >= 0; i--) {
    const desc = end - 4 - buf.readUInt32BE(end - 4)
    descs[i] = desc
    starts[i] = desc - buf.readUInt32BE(desc + 8) - buf.readUInt32BE(desc + 4)
    end = starts[i]
  }
  if (end !== 0) throw new Error('onepool: corrupt result buffer')
  if (n === 1) return decodeResult(buf, starts[0], descs[0], rowAsArray, types)
  const results = new Array(n)
  for (let i = 0; i < n; i++) results[i] = decodeResult(buf, starts[i], descs[i], rowAsArray, types)
  return results
}

module.exports = { decode, Result, defaultTypes }
