'use strict'
// Loads the native binding once per process (per JS realm that shares globalThis): a module
// re-evaluated by hot reload or a test runner finds the binding already pinned and does not
// register the addon again.

const { version } = require('../package.json')

const KEY = Symbol.for(`onepool.binding@${version}`)

function assertNodeRuntime() {
  const isEdge = typeof globalThis.EdgeRuntime === 'string'
  const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null
  if (isEdge || !isNode) {
    const err = new Error(
      'onepool needs the Node.js runtime: it is a native addon and cannot run in the Edge runtime. ' +
        "Add `export const runtime = 'nodejs'` to the route (or middleware) that imports it.",
    )
    err.code = 'RUNTIME_UNSUPPORTED'
    throw err
  }
}

/** The binding and this environment's result dispatcher, created once per realm. */
function loadBinding() {
  assertNodeRuntime()
  let loaded = globalThis[KEY]
  if (!loaded) {
    const binding = require('../binding.js')
    const { createDispatcher } = require('./dispatch')
    loaded = { binding, dispatcher: createDispatcher(binding) }
    Object.defineProperty(globalThis, KEY, { value: loaded, enumerable: false, configurable: true })
  }
  return loaded
}

module.exports = { loadBinding }
