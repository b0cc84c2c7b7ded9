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

function decodeResult(buf, pos, rowAsArray, types) {
  const commandLen = buf.readUInt32BE(pos)
  pos += 4
  const tag = buf.utf8Slice(pos, pos + commandLen)
  pos += commandLen
  const nfields = buf.readUInt32BE(pos)
  pos += 4
  const fields = new Array(nfields)
  const parsers = new Array(nfields)
  const names = new Array(nfields)
  for (let i = 0; i < nfields; i++) {
    const oid = buf.readUInt32BE(pos)
    const nameLen = buf.readUInt32BE(pos + 4)
    pos += 8
    const name = buf.utf8Slice(pos, pos + nameLen)
    pos += nameLen
    names[i] = name
    fields[i] = { name, dataTypeID: oid, format: 'text' }
    parsers[i] = readerFor(oid, types.getTypeParser(oid, 'text'))
  }
  const nrows = buf.readUInt32BE(pos)
  const rowsLen = buf.readUInt32BE(pos + 4)
  pos += 8
  const end = pos + rowsLen
  const rows = new Array(nrows)
  for (let r = 0; r < nrows; r++) {
    const row = rowAsArray ? new Array(nfields) : {}
    for (let i = 0; i < nfields; i++) {
      const len = (buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
      pos += 4
      let value = null
      if (len >= 0) {
        value = parsers[i](buf, pos, pos + len)
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
  return [new Result(command, rowCount, oid, fields, rows, rowAsArray), end]
}

/** One Result, or an array of Results when the text held several statements (as pg). */
function decode(buf, rowAsArray = false, types = defaultTypes) {
  const n = buf.readUInt32BE(0)
  let pos = 4
  const results = new Array(n)
  for (let i = 0; i < n; i++) {
    ;[results[i], pos] = decodeResult(buf, pos, rowAsArray, types)
  }
  if (n === 1) return results[0]
  if (n === 0) return new Result(null, null, null, [], [], rowAsArray)
  return results
}

module.exports = { decode, Result, defaultTypes }
