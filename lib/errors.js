'use strict'

const SERVER_FIELDS = [
  'severity',
  'detail',
  'hint',
  'position',
  'internalPosition',
  'internalQuery',
  'where',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'file',
  'line',
  'routine',
]

/** Client error codes; server errors use the 5-character SQLSTATE instead. */
const CODES = Object.freeze([
  'CONFIG_INVALID',
  'CONNECT_FAILED',
  'POOL_TIMEOUT',
  'POOL_CLOSED',
  'CONNECTION_LOST',
  'PARAM_INVALID',
  'CLIENT_RELEASED',
  'CLIENT_BUSY',
  'TRANSACTION_ABORTED',
  'COMMIT_UNKNOWN',
  'ABORTED',
  'QUERY_TIMEOUT',
  'PROTOCOL_ERROR',
  'RUNTIME_UNSUPPORTED',
  'BINDING_MISSING',
  'INTERNAL',
])

/** Client error fields that say more about the failure. */
const CLIENT_FIELDS = ['timeoutKind', 'notRun']

class OnepoolError extends Error {
  constructor(code, message, fields) {
    super(message, fields && fields.cause !== undefined ? { cause: fields.cause } : undefined)
    this.name = 'OnepoolError'
    this.code = code
    if (fields) {
      for (const key of SERVER_FIELDS) {
        if (fields[key] != null) this[key] = fields[key]
      }
      for (const key of CLIENT_FIELDS) {
        if (fields[key] != null) this[key] = fields[key]
      }
    }
  }
}

/** True for errors from any copy of onepool (instanceof fails across copies). */
function isOnepoolError(err) {
  return err != null && err.name === 'OnepoolError' && typeof err.code === 'string'
}

/** Builds the JS error for a native error object, with the caller's stack. */
function fromNative(native) {
  let cause
  if (native.causeCode != null) {
    cause = new Error(native.causeMessage)
    cause.code = native.causeCode
  }
  const err = new OnepoolError(native.code, native.message, { ...native, cause })
  if (native.severity == null && native.code === 'CONNECT_FAILED' && cause) err.causeCode = cause.code
  return err
}

function clientError(code, message, cause) {
  return new OnepoolError(code, message, cause === undefined ? undefined : { cause })
}

/** onepool was loaded outside Node.js (the Edge runtime), where no native addon can load. */
function runtimeUnsupported() {
  return new OnepoolError(
    'RUNTIME_UNSUPPORTED',
    'onepool needs the Node.js runtime: it is a native addon and cannot run in the Edge runtime. ' +
      "Add `export const runtime = 'nodejs'` to the route (or middleware) that imports it.",
  )
}

module.exports = {
  runtimeUnsupported,
  OnepoolError,
  isOnepoolError,
  fromNative,
  clientError,
  CODES,
}
