'use strict'
// Fast readers for the hottest types, straight from the result buffer. Each gives exactly what
// node-postgres's default parser (pg-types) gives, and is used only while that default parser is
// the one in effect for the type; anything unusual falls back to the parser itself. Some use
// what the I/O thread already worked out for their column (src/columns.rs).

const pgTypes = require('pg-types')

const BOOL = 16
const INT8 = 20
const INT2 = 21
const INT4 = 23
const OID = 26
const JSON_OID = 114
const FLOAT4 = 700
const FLOAT8 = 701
const NUMERIC = 1700
const TIMESTAMP = 1114
const TIMESTAMPTZ = 1184
const JSONB = 3802
const TEXT = 25
const VARCHAR = 1043
const BPCHAR = 1042
const NAME = 19

const DEFAULTS = new Map(
  [BOOL, INT8, INT2, INT4, OID, JSON_OID, FLOAT4, FLOAT8, NUMERIC, TIMESTAMP, TIMESTAMPTZ, JSONB, TEXT, VARCHAR, BPCHAR, NAME].map(
    (oid) => [oid, pgTypes.getTypeParser(oid, 'text')],
  ),
)

const utf8 = (parse) => (buf, start, end) => parse(buf.utf8Slice(start, end))
const ascii = (parse) => (buf, start, end) => parse(buf.latin1Slice(start, end))

function readInt(buf, start, end) {
  let i = start
  let negative = false
  if (buf[i] === 45) {
    negative = true
    i++
  }
  let n = 0
  for (; i < end; i++) n = n * 10 + (buf[i] - 48)
  return negative ? -n : n
}

const readBool = (buf, start) => buf[start] === 116
// pg-types returns these as the text itself (int8 and numeric are ASCII).
const readLatin1 = (buf, start, end) => buf.latin1Slice(start, end)
const readUtf8 = (buf, start, end) => buf.utf8Slice(start, end)

const digits = (buf, at, count) => {
  let n = 0
  for (let i = at; i < at + count; i++) {
    const d = buf[i] - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]

/**
 * `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]]` with a 4-digit year ≥ 1000 and no BC; anything
 * else (infinity, BC, 5-digit years) goes to postgres-date. Milliseconds are computed as
 * postgres-date does (1000 × the fraction, truncated by Date), so values are identical.
 */
function timestampReader(withZone, fallback) {
  return (buf, start, end) => {
    const len = end - start
    if (
      len < 19 ||
      buf[start + 4] !== 45 ||
      buf[start + 7] !== 45 ||
      buf[start + 10] !== 32 ||
      buf[start + 13] !== 58 ||
      buf[start + 16] !== 58 ||
      buf[start] === 48
    ) {
      return fallback(buf.utf8Slice(start, end))
    }
    const year = digits(buf, start, 4)
    const month = digits(buf, start + 5, 2)
    const day = digits(buf, start + 8, 2)
    const hour = digits(buf, start + 11, 2)
    const minute = digits(buf, start + 14, 2)
    const second = digits(buf, start + 17, 2)
    if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return fallback(buf.utf8Slice(start, end))
    let i = start + 19
    let ms = 0
    if (buf[i] === 46) {
      let frac = 0
      let n = 0
      for (i++; i < end && buf[i] >= 48 && buf[i] <= 57; i++) {
        if (n < 9) {
          frac = frac * 10 + (buf[i] - 48)
          n++
        }
      }
      if (n === 0) return fallback(buf.utf8Slice(start, end))
      ms = 1000 * (frac / POW10[n])
    }
    if (!withZone) {
      if (i !== end) return fallback(buf.utf8Slice(start, end))
      return new Date(year, month - 1, day, hour, minute, second, ms)
    }
    const sign = buf[i] === 43 ? 1 : buf[i] === 45 ? -1 : 0
    if (sign === 0) return fallback(buf.utf8Slice(start, end))
    let offset = digits(buf, i + 1, 2) * 3600
    i += 3
    if (i < end && buf[i] === 58) {
      offset += digits(buf, i + 1, 2) * 60
      i += 3
      if (i < end && buf[i] === 58) {
        offset += digits(buf, i + 1, 2)
        i += 3
      }
    }
    if (i !== end || offset < 0) return fallback(buf.utf8Slice(start, end))
    return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - sign * offset * 1000)
  }
}

const FAST = new Map([
  [BOOL, () => readBool],
  [INT2, () => readInt],
  [INT4, () => readInt],
  [OID, () => readInt],
  [INT8, () => readLatin1],
  [NUMERIC, () => readLatin1],
  [TEXT, () => readUtf8],
  [VARCHAR, () => readUtf8],
  [BPCHAR, () => readUtf8],
  [NAME, () => readUtf8],
  [FLOAT4, (p) => ascii(p)],
  [FLOAT8, (p) => ascii(p)],
  [TIMESTAMPTZ, (p) => timestampReader(true, p)],
  [TIMESTAMP, (p) => timestampReader(false, p)],
])

// Column flags from src/columns.rs.
const ASCII = 1
const NUMBERS = 2
const JSON_ARRAY = 4

/** float4/8 and timestamptz: the I/O thread's number for the row (at `at`), or NaN to read the text. */
function numberReader(oid, parser, at) {
  if (oid === TIMESTAMPTZ) {
    const text = timestampReader(true, parser)
    return (buf, start, end, row) => {
      const ms = buf.readDoubleLE(at + 8 * row)
      return ms === ms ? new Date(ms) : text(buf, start, end)
    }
  }
  const text = ascii(parser)
  return (buf, start, end, row) => {
    const n = buf.readDoubleLE(at + 8 * row)
    return n === n ? n : text(buf, start, end)
  }
}

/** Rows per JSON array (JSON_CHUNK in src/columns.rs). */
const JSON_CHUNK_BITS = 10

/** json and jsonb: the column as JSON arrays of 1,024 rows (from `at`), each parsed in one call when reached. */
function jsonReader(at, flags) {
  let chunk = -1
  let values = null
  return (buf, start, end, row) => {
    // Rows come in order; a chunk of only NULLs is never asked for, so skip to this row's.
    for (const want = row >> JSON_CHUNK_BITS; chunk < want; chunk++) {
      const len = buf.readUInt32LE(at)
      if (chunk + 1 === want) {
        const text = flags & ASCII ? buf.latin1Slice(at + 4, at + 4 + len) : buf.utf8Slice(at + 4, at + 4 + len)
        values = JSON.parse(text)
      }
      at += 4 + len
    }
    return values[row & ((1 << JSON_CHUNK_BITS) - 1)]
  }
}

/**
 * A reader `(buf, start, end, row) → value` for one column. `flags` and the extra bytes at
 * `extraAt` (in the same buffer) are what the I/O thread worked out for the column.
 */
function readerFor(oid, parser, flags = 0, extraAt = 0) {
  const isDefault = DEFAULTS.get(oid) === parser
  if (isDefault && flags & NUMBERS) return numberReader(oid, parser, extraAt)
  if (isDefault && flags & JSON_ARRAY) return jsonReader(extraAt, flags)
  const fast = FAST.get(oid)
  if (fast !== undefined && isDefault) {
    const reader = fast(parser)
    return reader === readUtf8 && flags & ASCII ? readLatin1 : reader
  }
  return flags & ASCII ? ascii(parser) : utf8(parser)
}

module.exports = { readerFor, timestampReader }
