'use strict'
// How the native pool's connection events (opened, closed, an idle connection broke) reach the
// JS `Pool` objects of this JS environment, and only those that are current.
//
// The native pool is shared by every createPool() call with the same identity: a module
// re-evaluated N times by hot reload holds N Pool objects, and if each received the events the
// listeners of every stale evaluation would fire too. So each Pool object is registered under the
// place that created it (the calling module's file): a later createPool() from the same file
// takes over from the earlier one, whose listeners then hear no more native events. Pools
// created in different files each receive them. Per environment and native pool there is one
// native subscription, made when the first Pool object needs events.

const HUBS = Symbol.for('onepool.eventHubs')

/** Native event kinds (src/napi/pool.rs). */
const OPENED = 0
const CLOSED = 1
const IDLE_ERROR = 2

function hubs() {
  let map = globalThis[HUBS]
  if (!map) {
    map = new Map()
    Object.defineProperty(globalThis, HUBS, { value: map, enumerable: false, configurable: true })
  }
  return map
}

/** The file of the code that called createPool (or `new Pool`), from a stack captured there. */
function creationSite(stack) {
  const lines = String(stack || '').split('\n').slice(1)
  for (const line of lines) {
    // Skip onepool's own frames: the first frame outside this package is the caller.
    if (/[\\/]onepool[\\/](index|lib[\\/])|[\\/]lib[\\/](pool|events|options)\.js|[\\/]index\.js:/.test(line)) continue
    const m = /\(?((?:file:\/\/|webpack-internal:\/\/\/|[A-Za-z]:\\|\/)[^():]*?)(?::\d+)*\)?$/.exec(line.trim())
    if (m) return m[1]
    return line.trim()
  }
  return '(unknown)'
}

/**
 * Registers `pool` (a JS Pool object) for the events of `native` (its NativePool), replacing an
 * earlier Pool object from the same creation site. `pool._onNative(kind, connectionId, ms, message)`
 * receives them.
 */
function register(native, pool, site) {
  const id = native.poolId
  const all = hubs()
  let hub = all.get(id)
  if (!hub) {
    hub = { receivers: new Map(), watch: null }
    all.set(id, hub)
    hub.watch = native.watch((kind, connectionId, ms, message) => {
      for (const [key, ref] of hub.receivers) {
        const target = ref.deref()
        if (target === undefined) hub.receivers.delete(key)
        else target._onNative(kind, connectionId, ms, message)
      }
      // An ended pool's last connection is gone: forget it.
      if (kind === CLOSED && native.isClosed && native.stats().size === 0) {
        native.unwatch(hub.watch)
        all.delete(id)
      }
    })
  }
  hub.receivers.set(site, new WeakRef(pool))
}

module.exports = { register, creationSite, OPENED, CLOSED, IDLE_ERROR }
