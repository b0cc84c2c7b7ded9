'use strict'
// Errors: onepool's OnepoolError → Prisma's MappedError (adapter-pg's errors.ts for SQLSTATEs).

const { isOnepoolError } = require('../..')

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

module.exports = { DriverAdapterError, isDriverAdapterError, adapterError, mapError }
