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

/** How long onepool may hold up process exit to close its connections politely. */
const EXIT_BOUND_MS = 200
const EXIT_HOOKS = Symbol.for('onepool.exitHooks')

/**
 * On normal exit, SIGINT and SIGTERM, idle connections send Terminate before the process goes.
 * For a signal we act only when nobody else listens for it (then we re-raise it, so the process
 * still dies of it); an app with its own handler keeps control, and its exit runs our 'exit' hook.
 */
function installExitHooks(binding) {
  const { isMainThread } = require('node:worker_threads')
  if (!isMainThread || process[EXIT_HOOKS]) return
  Object.defineProperty(process, EXIT_HOOKS, { value: true })
  process.once('exit', () => binding.terminateAll(EXIT_BOUND_MS))
  for (const signal of ['SIGINT', 'SIGTERM']) {
    const onSignal = () => {
      if (process.listenerCount(signal) > 1) return
      binding.terminateAll(EXIT_BOUND_MS)
      process.removeListener(signal, onSignal)
      process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
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
    installExitHooks(binding)
    Object.defineProperty(globalThis, KEY, { value: loaded, enumerable: false, configurable: true })
  }
  return loaded
}

module.exports = { loadBinding }
