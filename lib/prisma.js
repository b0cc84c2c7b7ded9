'use strict'
// onepool/prisma: a Prisma 7 driver adapter (`SqlDriverAdapterFactory`) on onepool's native pool.
//
//   const adapter = new PrismaOnepool({ connectionString: process.env.DATABASE_URL, max: 5 })
//   export const prisma = new PrismaClient({ adapter })
//
// Every factory attaches to the process-global native pool of its identity (name + target), so
// the PrismaClients that hot reload creates, and any createPool() of the same identity, share one
// bounded set of connections. Nothing here owns a pool: dispose() ($disconnect) releases this
// adapter's transactions and leaves the pool to the other handles of the process.
//
// Values, argument conversion and error mapping follow @prisma/adapter-pg 7.10 (conversion.ts,
// errors.ts), so switching adapters changes no result. Differences, all deliberate:
// - timestamptz/timetz: adapter-pg sends UTC wall time without an offset and relabels what the
//   server returns as +00:00, which is right only in a UTC session. Here arguments carry +00:00
//   and results are converted to UTC, so any server TimeZone works (identical in UTC sessions).
// - executeScript sends the script as one simple-protocol query instead of splitting it on ';'.
// - the schema Prisma qualifies tables with also comes from the URL's `schema` parameter.
// - BEGIN and the isolation level are one statement.
// It does not depend on @prisma/driver-adapter-utils: Prisma's engine recognises adapter errors by
// shape (`name === 'DriverAdapterError'` and an object `cause`), which DriverAdapterError below has.

const onepool = require('..')

const { createPool, isOnepoolError, types: pgTypes } = onepool

const ADAPTER_NAME = 'onepool/prisma'

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

/**
 * The error Prisma's engine maps to its P-codes. Prisma checks the shape, not the class, so this
 * is interchangeable with @prisma/driver-adapter-utils' own.
 */
class DriverAdapterError extends Error {
  constructor(payload) {
    super(typeof payload.message === 'string' ? payload.message : payload.kind)
    this.name = 'DriverAdapterError'
    this.cause = payload
  }
}

function isDriverAdapterError(error) {
  return error != null && error.name === 'DriverAdapterError' && typeof error.cause === 'object'
}

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

// ---------------------------------------------------------------------------------------------
// Errors: onepool's OnepoolError → Prisma's MappedError (adapter-pg's errors.ts for SQLSTATEs).

const SQLSTATE = /^[0-9A-Z]{5}$/
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/** A server error (or a server's connect-time refusal) → MappedError. */
function mapServerError(e) {
  const message = typeof e.message === 'string' ? e.message : ''
  const quoted = (s) => (s === undefined ? undefined : s.split('"').at(1))
  const keyFields = () => e.detail?.match(/Key \(([^)]+)\)/)?.at(1)?.split(', ')
  switch (e.code) {
    case '22001':
      return { kind: 'LengthMismatch', column: e.column }
    case '22003':
      return { kind: 'ValueOutOfRange', cause: message }
    case '22P02':
      return { kind: 'InvalidInputValue', message }
    case '23505': {
      const fields = keyFields()
      let constraint
      if (e.constraint) constraint = { index: e.constraint }
      else if (fields !== undefined) constraint = { fields }
      let table = e.table
      if (table === undefined && fields !== undefined && fields.length > 0) {
        const suffix = `_${fields.join('_')}_key`
        if (e.constraint?.endsWith(suffix)) table = e.constraint.slice(0, -suffix.length)
      }
      return { kind: 'UniqueConstraintViolation', constraint, table }
    }
    case '23502': {
      // The server names the column in `column`; adapter-pg reads "Key (…)" from detail, which a
      // not-null violation does not have, so it reports no field. The column is more useful.
      const fields = keyFields() ?? (e.column ? [e.column] : undefined)
      return { kind: 'NullConstraintViolation', constraint: fields !== undefined ? { fields } : undefined }
    }
    case '23503':
    case '23001': {
      let constraint
      if (e.column) constraint = { fields: [e.column] }
      else if (e.constraint) constraint = { index: e.constraint }
      return { kind: e.code === '23503' ? 'ForeignKeyConstraintViolation' : 'RestrictViolation', constraint }
    }
    case '3D000':
      return { kind: 'DatabaseDoesNotExist', db: quoted(message.split(' ').at(1)) }
    case '28000':
      return { kind: 'DatabaseAccessDenied', db: quoted(message.split(',').find((s) => s.startsWith(' database'))) }
    case '28P01':
      return { kind: 'AuthenticationFailed', user: quoted(message.split(' ').pop()) }
    case '40001':
    case '40P01':
      return { kind: 'TransactionWriteConflict' }
    case '42P01':
      return { kind: 'TableDoesNotExist', table: quoted(message.split(' ').at(1)) }
    case '42703': {
      const raw = message.match(/^column (.+) does not exist$/)?.at(1)
      return { kind: 'ColumnNotFound', column: raw?.replace(/"((?:""|[^"])*)"/g, (_, id) => id.replaceAll('""', '"')) }
    }
    case '42P04':
      return { kind: 'DatabaseAlreadyExists', db: quoted(message.split(' ').at(1)) }
    case '53300':
      return { kind: 'TooManyConnections', cause: message }
    default:
      return {
        kind: 'postgres',
        code: e.code ?? 'N/A',
        severity: e.severity ?? 'N/A',
        message,
        detail: e.detail,
        column: e.column,
        hint: e.hint,
      }
  }
}

/** `user@host:port/db` (pool.stats().target) → { host, port } */
function targetAddress(target) {
  const m = typeof target === 'string' ? /@(.*):(\d+)\/[^/]*$/.exec(target) : null
  return m ? { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) } : {}
}

/**
 * MappedError for an onepool error, or undefined to let the error through unchanged (Prisma then
 * rethrows it as it is: POOL_TIMEOUT, POOL_CLOSED, PARAM_INVALID, ... keep onepool's message).
 */
function mapError(e, target) {
  if (!isOnepoolError(e)) return undefined
  if (SQLSTATE.test(e.code) && typeof e.severity === 'string') {
    return { originalCode: e.code, originalMessage: e.message, ...mapServerError(e) }
  }
  switch (e.code) {
    case 'CONNECT_FAILED': {
      const cause = e.cause
      const code = cause && typeof cause.code === 'string' ? cause.code : undefined
      const original = { originalCode: code ?? e.code, originalMessage: cause?.message ?? e.message }
      if (code === undefined) return undefined
      if (UNREACHABLE.has(code)) return { ...original, kind: 'DatabaseNotReachable', ...targetAddress(target) }
      if (code === 'ETIMEDOUT') return { ...original, kind: 'SocketTimeout' }
      if (code === 'ECONNRESET' || code === 'EPIPE') return { ...original, kind: 'ConnectionClosed' }
      if (SQLSTATE.test(code)) return { ...original, ...mapServerError({ code, message: cause.message, severity: 'FATAL' }) }
      return undefined
    }
    case 'CONNECTION_LOST':
      return { originalCode: e.code, originalMessage: e.message, kind: 'ConnectionClosed' }
    default:
      return undefined
  }
}

function adapterError(e, target) {
  if (isDriverAdapterError(e)) return e
  const mapped = mapError(e, target)
  return mapped ? new DriverAdapterError(mapped) : e
}

// ---------------------------------------------------------------------------------------------
// Queryables

const ISOLATION_LEVELS = new Set(['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'])

/** Savepoint names come from Prisma (`prisma_sp_0`); anything else is quoted as an identifier. */
const savepoint = (name) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : '"' + String(name).replace(/"/g, '""') + '"')

class OnepoolQueryable {
  #target
  #options

  constructor(target, options) {
    this.provider = 'postgres'
    this.adapterName = ADAPTER_NAME
    this.#target = target
    this.#options = options
  }

  /** @internal the pool or client to run on, or an error when this queryable is closed */
  _runner() {
    return this.#target
  }

  /** @internal */
  _address() {
    return this.#options.address()
  }

  async _perform(query) {
    const runner = this._runner()
    const args = query.args || []
    const argTypes = query.argTypes || []
    const values = args.map((arg, i) => mapArg(arg, argTypes[i]))
    let result
    try {
      result = await runner.query({ text: query.sql, values, rowMode: 'array', types: PRISMA_TYPES })
    } catch (e) {
      throw adapterError(e, this._address())
    }
    // A parameterless text with several statements gives one result each; report the last.
    return Array.isArray(result) ? result[result.length - 1] : result
  }

  async queryRaw(query) {
    const { fields, rows } = await this._perform(query)
    const columnNames = fields.map((f) => f.name)
    const columnTypes = fields.map((f) => columnType(f.dataTypeID))
    const udt = this.#options.userDefinedTypeParser
    if (udt) {
      for (let i = 0; i < fields.length; i++) {
        const oid = fields[i].dataTypeID
        if (oid < FIRST_NORMAL_OBJECT_ID || PARSERS[oid]) continue
        for (const row of rows) row[i] = await udt(oid, row[i], this)
      }
    }
    return { columnNames, columnTypes, rows }
  }

  async executeRaw(query) {
    return (await this._perform(query)).rowCount ?? 0
  }
}

class OnepoolTransaction extends OnepoolQueryable {
  #client
  #done = false
  #onClose

  constructor(client, options, onClose) {
    super(client, options)
    this.#client = client
    this.#onClose = onClose
    // startTransaction() sent BEGIN; Prisma's engine sends COMMIT or ROLLBACK itself (through
    // executeRaw), and commit()/rollback() then only give the connection back.
    this.options = { usePhantomQuery: false }
  }

  _runner() {
    if (this.#done) {
      throw new DriverAdapterError({ kind: 'TransactionAlreadyClosed', cause: 'the transaction was already committed or rolled back' })
    }
    return this.#client
  }

  async commit() {
    await this.#close()
  }

  async rollback() {
    await this.#close()
  }

  async createSavepoint(name) {
    await this.executeRaw({ sql: `SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  async rollbackToSavepoint(name) {
    await this.executeRaw({ sql: `ROLLBACK TO SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  async releaseSavepoint(name) {
    await this.executeRaw({ sql: `RELEASE SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  /** Gives the connection back; onepool rolls back a transaction that is still open on it. */
  async #close() {
    if (this.#done) return
    this.#done = true
    this.#onClose(this)
    await this.#client.release()
  }
}

class OnepoolAdapter extends OnepoolQueryable {
  #pool
  #options
  #open = new Set()
  #disposed = false

  constructor(pool, options) {
    super(pool, options)
    this.#pool = pool
    this.#options = options
  }

  _runner() {
    if (this.#disposed) {
      throw new Error('onepool/prisma: this adapter was disposed (PrismaClient.$disconnect()); the PrismaClient connects a new one')
    }
    return this.#pool
  }

  async executeScript(script) {
    // No parameters: one simple-protocol query, which runs every statement (and does not split
    // a string literal or a function body on its ';').
    await this._perform({ sql: script, args: [], argTypes: [] })
  }

  async startTransaction(isolationLevel) {
    let begin = 'BEGIN'
    if (isolationLevel !== undefined) {
      const level = String(isolationLevel).toUpperCase()
      if (!ISOLATION_LEVELS.has(level)) throw new DriverAdapterError({ kind: 'InvalidIsolationLevel', level: String(isolationLevel) })
      begin += ` ISOLATION LEVEL ${level}`
    }
    const pool = this._runner()
    let client
    try {
      client = await pool.connect()
    } catch (e) {
      throw adapterError(e, this._address())
    }
    try {
      await client.query(begin)
    } catch (e) {
      await client.release(true).catch(() => {})
      throw adapterError(e, this._address())
    }
    const tx = new OnepoolTransaction(client, this.#options, (t) => this.#open.delete(t))
    this.#open.add(tx)
    return tx
  }

  getConnectionInfo() {
    return { schemaName: this.#options.schema, supportsRelationJoins: true }
  }

  /**
   * PrismaClient.$disconnect(): gives back the connections of transactions still open (they are
   * rolled back). The native pool stays open: it belongs to the whole process, and other
   * PrismaClients (every hot reload makes one) and createPool() handles are using it. Idle
   * connections close after `idleTimeoutMs`; `pool.end()` or `closeAll()` closes it for everyone.
   */
  async dispose() {
    if (this.#disposed) return
    this.#disposed = true
    await Promise.allSettled([...this.#open].map((tx) => tx.rollback()))
  }

  /** The onepool Pool this adapter runs on. */
  underlyingDriver() {
    return this.#pool
  }
}

// ---------------------------------------------------------------------------------------------
// The factory

const ADAPTER_OPTIONS = ['schema', 'userDefinedTypeParser']

/** True for an onepool Pool from any copy of the package (instanceof fails across copies). */
function isPool(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.query === 'function' &&
    typeof value.connect === 'function' &&
    typeof value.stats === 'function' &&
    typeof value.end === 'function'
  )
}

/** The `schema` parameter of a Prisma-style connection string. */
function schemaOf(connectionString) {
  if (typeof connectionString !== 'string') return undefined
  const query = connectionString.split('?')[1]
  if (!query) return undefined
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    if (eq > 0 && pair.slice(0, eq) === 'schema') {
      const raw = pair.slice(eq + 1).replace(/\+/g, ' ')
      let value = raw
      try {
        value = decodeURIComponent(raw)
      } catch {} // a stray '%': keep it as written
      return value || undefined
    }
  }
  return undefined
}

class PrismaOnepool {
  #pool
  /** The createPool() argument when this factory attached the pool itself. */
  #attach
  #options

  /**
   * @param {import('..').Pool | import('..').PoolOptions | string} [poolOrOptions] an onepool Pool,
   *   createPool() options, or a connection string; default: DATABASE_URL, as createPool().
   * @param {{ schema?: string, userDefinedTypeParser?: Function }} [options]
   */
  constructor(poolOrOptions, options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('PrismaOnepool: the second argument must be an options object')
    }
    for (const key of Object.keys(options)) {
      if (!ADAPTER_OPTIONS.includes(key)) {
        throw new TypeError(`PrismaOnepool: unknown adapter option "${key}" (known: ${ADAPTER_OPTIONS.join(', ')}); pool options go in the first argument`)
      }
    }
    this.provider = 'postgres'
    this.adapterName = ADAPTER_NAME
    let schema = options.schema
    if (isPool(poolOrOptions)) {
      this.#pool = poolOrOptions
    } else {
      this.#attach = { options: poolOrOptions }
      // Attaching here makes a bad configuration throw CONFIG_INVALID where the adapter is made.
      this.#pool = createPool(poolOrOptions)
      // createPool()'s own fallback: DATABASE_URL when neither a URL nor a host is given.
      const o = typeof poolOrOptions === 'string' ? { connectionString: poolOrOptions } : poolOrOptions || {}
      const url = o.connectionString ?? (o.host === undefined ? process.env.DATABASE_URL : undefined)
      if (schema === undefined) schema = schemaOf(url)
    }
    const pool = () => this.#pool
    this.#options = Object.freeze({
      schema,
      userDefinedTypeParser: options.userDefinedTypeParser,
      address: () => {
        try {
          return pool().stats().target
        } catch {
          return undefined
        }
      },
    })
  }

  /** The onepool Pool (shared, process-global) that this factory's adapters use. */
  get pool() {
    return this.#pool
  }

  async connect() {
    // A pool ended by pool.end()/closeAll() is replaced by a fresh one of the same identity, as
    // a new createPool() would be; a pool that was passed in is the caller's to replace.
    if (this.#attach && this.#pool.ended) this.#pool = createPool(this.#attach.options)
    return new OnepoolAdapter(this.#pool, this.#options)
  }
}

module.exports = {
  PrismaOnepool,
  DriverAdapterError,
  isDriverAdapterError,
  ColumnTypeEnum,
}
