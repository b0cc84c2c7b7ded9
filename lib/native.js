'use strict'
// Loads the native binding once per process (per JS realm that shares globalThis): a module
// re-evaluated by hot reload or a test runner finds the binding already pinned and does not
// register the addon again. The WebAssembly build needs the pin even more: every evaluation of
// its loader would start a new instance with its own pools, so the binding and its socket
// registry (lib/transport.js) are pinned together.

const { version } = require('../package.json')
const { runtimeUnsupported } = require('./errors')

const KEY = Symbol.for(`onepool.binding@${version}`)

function assertNodeRuntime() {
  const isEdge = typeof globalThis.EdgeRuntime === 'string'
  const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null
  if (isEdge || !isNode) {
    throw runtimeUnsupported()
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

/**
 * The generated loader picks the native addon for this platform and falls back to the
 * WebAssembly build (`onepool.wasi.cjs` or the `onepool-wasm32-wasi` package) where none loads.
 * ONEPOOL_FORCE_WASM=1 chooses the WebAssembly build deliberately. A source checkout without its
 * native addon does not fall back (lib/binding-missing.js says why), and every load failure is
 * a BINDING_MISSING that names the platform, what was looked for and the command that fixes it.
 */
function requireBinding() {
  const forceWasm = process.env.ONEPOOL_FORCE_WASM === '1'
  const { bindingMissing, checkoutLacksNative } = require('./binding-missing')
  if (!forceWasm && checkoutLacksNative()) throw bindingMissing(undefined)
  const saved = process.env.NAPI_RS_FORCE_WASI
  if (forceWasm) process.env.NAPI_RS_FORCE_WASI = 'error'
  try {
    return require('../binding.js')
  } catch (e) {
    throw bindingMissing(e, { forceWasm })
  } finally {
    if (saved === undefined) delete process.env.NAPI_RS_FORCE_WASI
    else process.env.NAPI_RS_FORCE_WASI = saved
  }
}

/** The binding and this environment's result dispatcher, created once per realm. */
function loadBinding() {
  assertNodeRuntime()
  let loaded = globalThis[KEY]
  if (!loaded) {
    const raw = requireBinding()
    const { createDispatcher, wellFormedDeep } = require('./dispatch')
    const wasm = raw.processStats().build === 'wasm'
    // WASI cannot open sockets: in the WebAssembly build JavaScript owns them. Its strings must
    // be well-formed before they cross (see lib/dispatch.js), options included.
    const transport = wasm ? require('./transport').transportFor(raw) : null
    const binding = wasm
      ? Object.create(raw, { createPool: { value: (options, password) => raw.createPool(wellFormedDeep(options), password) } })
      : raw
    loaded = { binding, dispatcher: createDispatcher(raw, { wellFormed: wasm }), transport }
    // The WebAssembly build's sockets belong to JavaScript, which closes them at exit itself.
    if (!wasm) installExitHooks(binding)
    Object.defineProperty(globalThis, KEY, { value: loaded, enumerable: false, configurable: true })
  }
  return loaded
}

module.exports = { loadBinding }
