'use strict'
// What bundlers give Edge-runtime code that imports onepool (export conditions `edge-light` and
// `worker`): a clear error instead of an attempt to bundle a native addon. It exports the same
// names as index.js because bundlers check named imports before anything runs.

function unsupported() {
  const err = new Error(
    'onepool needs the Node.js runtime: it is a native addon and cannot run in the Edge runtime. ' +
      "Add `export const runtime = 'nodejs'` to the route (or middleware) that imports it.",
  )
  err.code = 'RUNTIME_UNSUPPORTED'
  err.name = 'OnepoolError'
  return err
}

const fail = () => {
  throw unsupported()
}

module.exports = {
  createPool: fail,
  processStats: fail,
  setProcessMaxConnections: fail,
  closeAll: fail,
  isOnepoolError: (e) => e != null && e.name === 'OnepoolError' && typeof e.code === 'string',
  OnepoolError: fail,
  errorCodes: [],
  Pool: fail,
  PoolClient: fail,
  Result: fail,
  types: {},
}

throw unsupported()
