'use strict'
// Query parameters → what the native layer sends: text (string), binary (Buffer) or null.
// The conversions are node-postgres's (`prepareValue`), so values mean the same thing; what pg
// would send as garbage (symbols, functions, invalid dates, circular objects) is PARAM_INVALID.

const { clientError } = require('./errors')

const pad = (n, width = 2) => String(n).padStart(width, '0')

// Local time with its UTC offset, as node-postgres formats Dates.
function dateToString(date) {
  let offset = -date.getTimezoneOffset()
  let year = date.getFullYear()
  const bc = year < 1
  if (bc) year = Math.abs(year) + 1
  let out =
    pad(year, 4) +
    '-' +
    pad(date.getMonth() + 1) +
    '-' +
    pad(date.getDate()) +
    'T' +
    pad(date.getHours()) +
    ':' +
    pad(date.getMinutes()) +
    ':' +
    pad(date.getSeconds()) +
    '.' +
    pad(date.getMilliseconds(), 3)
  if (offset < 0) {
    out += '-'
    offset *= -1
  } else {
    out += '+'
  }
  out += pad(Math.floor(offset / 60)) + ':' + pad(offset % 60)
  return bc ? out + ' BC' : out
}

function escapeElement(text) {
  return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'
}

function arrayString(arr, index, seen) {
  if (seen.includes(arr)) throw invalid(index, 'contains a circular reference')
  seen.push(arr)
  let out = '{'
  for (let i = 0; i < arr.length; i++) {
    if (i > 0) out += ','
    const v = arr[i]
    if (v === null || v === undefined) out += 'NULL'
    else if (Array.isArray(v)) out += arrayString(v, index, seen)
    else if (v instanceof Uint8Array) out += '\\\\x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')
    else out += escapeElement(String(prepare(v, index, seen)))
  }
  seen.pop()
  return out + '}'
}

function invalid(index, why) {
  return clientError('PARAM_INVALID', `parameter $${index + 1} ${why}`)
}

function prepare(v, index, seen) {
  switch (typeof v) {
    case 'string':
      return v
    case 'number':
      return String(v)
    case 'boolean':
      return v ? 'true' : 'false'
    case 'bigint':
      return v.toString()
    case 'undefined':
      return null
    case 'symbol':
      throw invalid(index, 'is a Symbol, which has no database representation')
    case 'function':
      throw invalid(index, 'is a function, which has no database representation')
  }
  if (v === null) return null
  if (Buffer.isBuffer(v)) return v
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw invalid(index, 'is an invalid Date')
    return dateToString(v)
  }
  if (Array.isArray(v)) return arrayString(v, index, seen)
  if (typeof v.toPostgres === 'function') {
    if (seen.includes(v)) throw invalid(index, 'has a toPostgres() that returns itself')
    seen.push(v)
    const out = prepare(v.toPostgres((x) => prepare(x, index, seen)), index, seen)
    seen.pop()
    return out
  }
  try {
    return JSON.stringify(v)
  } catch (e) {
    throw invalid(index, `cannot be serialised to JSON: ${e.message}`)
  }
}

/** Converts a values array; throws PARAM_INVALID naming the parameter. */
function prepareValues(values) {
  if (values === undefined || values === null) return []
  if (!Array.isArray(values)) {
    throw clientError('PARAM_INVALID', `query values must be an array, got ${typeof values}`)
  }
  const out = new Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    out[i] = typeof v === 'string' ? v : prepare(v, i, [])
  }
  return out
}

module.exports = { prepareValues, dateToString }
