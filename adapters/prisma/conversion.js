'use strict'
// Values between Prisma and onepool, as @prisma/adapter-pg 7.10 converts them (conversion.ts):
// result columns (OID → Prisma's ColumnType, and the text parsers Prisma expects) and arguments
// (mapArg), with explicit UTC offsets for the zoned types.

const { types: pgTypes } = require('../..')
const { DriverAdapterError } = require('./errors')

/** Prisma's column type codes (driver-adapter-utils `ColumnTypeEnum`). */
const ColumnTypeEnum = Object.freeze({
  Int32: 0,
  Int64: 1,
  Float: 2,
  Double: 3,
  Numeric: 4,
  Boolean: 5,
  Character: 6,
  Text: 7,
  Date: 8,
  Time: 9,
  DateTime: 10,
  Json: 11,
  Enum: 12,
  Bytes: 13,
  Set: 14,
  Uuid: 15,
  Int32Array: 64,
  Int64Array: 65,
  FloatArray: 66,
  DoubleArray: 67,
  NumericArray: 68,
  BooleanArray: 69,
  CharacterArray: 70,
  TextArray: 71,
  DateArray: 72,
  TimeArray: 73,
  DateTimeArray: 74,
  JsonArray: 75,
  EnumArray: 76,
  BytesArray: 77,
  UuidArray: 78,
  UnknownNumber: 128,
})

// ---------------------------------------------------------------------------------------------
// Result columns: OID → ColumnType, and the text parsers Prisma expects (adapter-pg's).

/** User-defined types (enums, extensions, domains) have OIDs from here on and come back as text. */
const FIRST_NORMAL_OBJECT_ID = 16384

const T = ColumnTypeEnum
const COLUMN_TYPES = new Map([
  [21, T.Int32], [23, T.Int32], // int2, int4
  [20, T.Int64], [26, T.Int64], // int8, oid
  [700, T.Float], [701, T.Double],
  [16, T.Boolean],
  [1082, T.Date],
  [1083, T.Time], [1266, T.Time], // time, timetz
  [1114, T.DateTime], [1184, T.DateTime], // timestamp, timestamptz
  [1700, T.Numeric], [790, T.Numeric], // numeric, money
  [114, T.Json], [3802, T.Json],
  [2950, T.Uuid],
  // bpchar, text, varchar, bit, varbit, inet, cidr, xml, name
  [1042, T.Text], [25, T.Text], [1043, T.Text], [1560, T.Text], [1562, T.Text], [869, T.Text], [650, T.Text], [142, T.Text], [19, T.Text],
  [17, T.Bytes],
  [1005, T.Int32Array], [1007, T.Int32Array],
  [1021, T.FloatArray], [1022, T.DoubleArray],
  [1231, T.NumericArray], [791, T.NumericArray],
  [1000, T.BooleanArray],
  [1002, T.CharacterArray],
  // bpchar[], text[], varchar[], varbit[], bit[], inet[], cidr[], xml[]
  [1014, T.TextArray], [1009, T.TextArray], [1015, T.TextArray], [1563, T.TextArray], [1561, T.TextArray], [1041, T.TextArray], [651, T.TextArray], [143, T.TextArray],
  [1182, T.DateArray],
  [1183, T.TimeArray],
  [1115, T.DateTimeArray], [1185, T.DateTimeArray],
  [199, T.JsonArray], [3807, T.JsonArray],
  [1001, T.BytesArray],
  [2951, T.UuidArray],
  [1016, T.Int64Array], [1028, T.Int64Array],
])

// Names for the error Prisma shows for a column it cannot read (adapter-pg's list, abridged to
// the types a query can actually return that are not mapped above).
const TYPE_NAMES = {
  18: 'char', 22: 'int2vector', 24: 'regproc', 27: 'tid', 28: 'xid', 29: 'cid', 30: 'oidvector',
  194: 'pg_node_tree', 600: 'point', 601: 'lseg', 602: 'path', 603: 'box', 604: 'polygon', 628: 'line',
  705: 'unknown', 718: 'circle', 774: 'macaddr8', 829: 'macaddr', 1033: 'aclitem', 1186: 'interval',
  1790: 'refcursor', 2202: 'regprocedure', 2203: 'regoper', 2204: 'regoperator', 2205: 'regclass',
  2206: 'regtype', 2249: 'record', 2275: 'cstring', 2278: 'void', 2970: 'txid_snapshot', 3220: 'pg_lsn',
  3614: 'tsvector', 3615: 'tsquery', 3734: 'regconfig', 3769: 'regdictionary', 3904: 'int4range',
  3906: 'numrange', 3908: 'tsrange', 3910: 'tstzrange', 3912: 'daterange', 3926: 'int8range',
  4072: 'jsonpath', 4089: 'regnamespace', 4096: 'regrole', 4191: 'regcollation', 5038: 'pg_snapshot', 5069: 'xid8',
}

function columnType(oid) {
  const type = COLUMN_TYPES.get(oid)
  if (type !== undefined) return type
  if (oid >= FIRST_NORMAL_OBJECT_ID) return T.Text
  throw new DriverAdapterError({ kind: 'UnsupportedNativeDataType', type: TYPE_NAMES[oid] || 'Unknown' })
}

const pad = (n, width = 2) => String(n).padStart(width, '0')
const fraction = (date) => {
  const ms = date.getUTCMilliseconds()
  return ms ? '.' + pad(ms, 3) : ''
}
const formatDate = (d) => `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
const formatTime = (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fraction(d)}`
const formatDateTime = (d) => `${formatDate(d)} ${formatTime(d)}`

const identity = (s) => s
const arrayOf = (element) => (s) => pgTypes.arrayParser.create(s, element).parse()

/** `2020-01-02 03:04:05.678` (timestamp) → `2020-01-02T03:04:05.678+00:00` */
const timestamp = (s) => `${s.replace(' ', 'T')}+00:00`

const OFFSET = /([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/
const TIMESTAMP = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?$/

/**
 * `2020-01-02 05:04:05.678+02` (timestamptz, in the session's TimeZone) → the same instant in
 * UTC, `2020-01-02T03:04:05.678+00:00`, keeping every fractional digit.
 */
function timestamptz(s) {
  const off = OFFSET.exec(s)
  if (!off) return s.replace(' ', 'T') // 'infinity', BC dates: as adapter-pg
  const local = s.slice(0, off.index)
  const seconds = (+off[2] * 3600 + +(off[3] || 0) * 60 + +(off[4] || 0)) * (off[1] === '-' ? -1 : 1)
  const m = seconds === 0 ? null : TIMESTAMP.exec(local)
  if (!m) return `${local.replace(' ', 'T')}+00:00`
  const utc = new Date(0)
  utc.setUTCFullYear(+m[1], +m[2] - 1, +m[3]) // not Date.UTC(): it maps years 0-99 to 1900-1999
  utc.setUTCHours(+m[4], +m[5], +m[6] - seconds, 0)
  return `${formatDate(utc)}T${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}${m[7] || ''}+00:00`
}

/** timetz: Prisma's Time has no zone; the offset is dropped (as adapter-pg). */
const timetz = (s) => s.replace(OFFSET, '')
const money = (s) => s.slice(1)
const bytea = pgTypes.getTypeParser(17, 'text')
const byteaArray = pgTypes.getTypeParser(1001, 'text')

const PARSERS = {
  1700: identity, 1231: arrayOf(identity), // numeric: exact text
  1083: identity, 1183: arrayOf(identity), // time
  1266: timetz,
  1082: identity, 1182: arrayOf(identity), // date: YYYY-MM-DD
  1114: timestamp, 1115: arrayOf(timestamp),
  1184: timestamptz, 1185: arrayOf(timestamptz),
  790: money, 791: arrayOf(money),
  114: identity, 199: arrayOf(identity), // json: raw text, Prisma parses it
  3802: identity, 3807: arrayOf(identity),
  17: bytea, 1001: byteaArray,
  1561: arrayOf(identity), 1563: arrayOf(identity), // bit[], varbit[]
  143: arrayOf(identity), // xml[]
}

/** Per-query parsers: Prisma's representations where they differ from node-postgres's defaults. */
const PRISMA_TYPES = {
  getTypeParser(oid, format) {
    return (format === undefined || format === 'text') && PARSERS[oid] ? PARSERS[oid] : pgTypes.getTypeParser(oid, format)
  },
}

// ---------------------------------------------------------------------------------------------
// Arguments (adapter-pg's mapArg), with explicit UTC offsets for the zoned types.

function mapArg(arg, argType) {
  if (arg === null || arg === undefined) return null
  if (Array.isArray(arg) && argType && argType.arity === 'list') return arg.map((v) => mapArg(v, argType))
  if (typeof arg === 'string' && argType && argType.scalarType === 'datetime') arg = new Date(arg)
  if (arg instanceof Date) {
    const dbType = argType && typeof argType.dbType === 'string' ? argType.dbType.toUpperCase() : undefined
    switch (dbType) {
      case 'TIME':
        return formatTime(arg)
      case 'TIMETZ':
        return formatTime(arg) + '+00:00'
      case 'DATE':
        return formatDate(arg)
      case 'TIMESTAMPTZ':
        return formatDateTime(arg) + '+00:00'
      default:
        return formatDateTime(arg)
    }
  }
  if (typeof arg === 'string' && argType && argType.scalarType === 'bytes') return Buffer.from(arg, 'base64')
  return arg
}

module.exports = { ColumnTypeEnum, columnType, mapArg, PARSERS, PRISMA_TYPES, FIRST_NORMAL_OBJECT_ID }
