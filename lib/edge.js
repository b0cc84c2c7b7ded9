'use strict'
// What bundlers give Edge-runtime code that imports onepool (export conditions `edge-light` and
// `worker`): a clear error instead of an attempt to bundle a native addon. It exports the same
// names as index.js because bundlers check named imports before anything runs.

const { OnepoolError, isOnepoolError, runtimeUnsupported, CODES } = require('./errors')

const fail = () => {
  throw runtimeUnsupported()
}

module.exports = {
  createPool: fail,
  processStats: fail,
  setProcessMaxConnections: fail,
  closeAll: fail,
  isOnepoolError,
  OnepoolError,
  errorCodes: CODES,
  Pool: fail,
  PoolClient: fail,
  Result: fail,
  types: {},
}

throw runtimeUnsupported()
