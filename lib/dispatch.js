'use strict'
// Per JS environment, one channel for query results: the native side queues finished requests
// and wakes this thread once per batch; we settle the matching promises. Much cheaper than one
// native promise per query. While requests are pending a ref'd timer keeps the process alive;
// otherwise nothing does (an idle pool never holds the process open).

const MAX_ID = 0x7fffffff

// emnapi (the WebAssembly build's N-API) encodes a lone UTF-16 surrogate as a wrong code point
// and swallows the character after it; Node's N-API writes U+FFFD. toWellFormed() does the same
// before the string crosses, so both builds send the same bytes.
const wellFormed = (v) => (typeof v === 'string' && !v.isWellFormed() ? v.toWellFormed() : v)

/** `values` with every string well-formed (a copy only when one was not). */
function wellFormedValues(values) {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v === 'string' && !v.isWellFormed()) return values.map(wellFormed)
  }
  return values
}

/** From this many parameters on, all-text parameters cross as one string and their lengths:
 * converting one JS value per parameter costs several N-API calls each. */
const JOIN_FROM = 2

/** Each value's length in UTF-16 units (-1 for null), or null when one is not a string. */
function textLengths(values) {
  const lengths = new Int32Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v === 'string') lengths[i] = v.length
    else if (v === null) lengths[i] = -1
    else return null
  }
  return lengths
}

/** Deeply, for option objects: plain objects and arrays are copied, other values kept. */
function wellFormedDeep(v) {
  if (typeof v === 'string') return wellFormed(v)
  if (Array.isArray(v)) return v.map(wellFormedDeep)
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out = {}
    for (const [k, x] of Object.entries(v)) out[wellFormed(k)] = wellFormedDeep(x)
    return out
  }
  return v
}

// A request alone in flight may have its reply read on this thread, straight off the socket
// (see src/napi/watch.rs). Node's libuv does that; other runtimes' N-API may lack it.
// ONEPOOL_READ_ON_JS_THREAD=0 turns it off (the I/O thread then reads every reply).
const readHere =
  process.env.ONEPOOL_READ_ON_JS_THREAD !== '0' && process.versions.bun === undefined && process.versions.deno === undefined

/**
 * @param {object} binding
 * @param {{ wellFormed?: boolean }} [options] wellFormed: make strings well-formed before they
 *   cross (the WebAssembly build)
 */
function createDispatcher(binding, options = {}) {
  const fixStrings = options.wellFormed === true
  const pending = new Map()
  // Results the native side lent rather than copied (it hands them over as Buffers of their
  // own; small results arrive as slices of one batch Buffer, which must never be detached).
  const lent = new WeakSet()
  let nextId = 1
  const keepAlive = setInterval(() => {}, MAX_ID)
  keepAlive.unref()

  /** Settles request `id` with `outcome` if it is still pending. */
  const settle = (id, outcome) => {
    const resolve = pending.get(id)
    if (resolve !== undefined) {
      pending.delete(id)
      resolve(outcome)
    }
  }

  // The events of this environment's subscriptions (lib/listen.js) come with the same wake-up.
  let drainEvents = null

  // Settle in a setImmediate, not in the wake-up callback itself: Node runs queued wake-ups
  // back to back, and under load a fresh batch is always ready, so draining there would starve
  // timers and I/O. One drain per event-loop turn keeps the loop moving.
  let scheduled = false
  const drain = () => {
    scheduled = false
    if (drainEvents !== null) drainEvents()
    // [buffer of the small results, id, outcome, ...]: a number is where that result ends in it.
    const batch = binding.takeCompletions(envId)
    const small = batch[0]
    let start = 0
    for (let i = 1; i < batch.length; i += 2) {
      let outcome = batch[i + 1]
      if (typeof outcome === 'number') {
        const end = outcome
        outcome = small.subarray(start, end)
        start = end
      } else if (Buffer.isBuffer(outcome)) {
        lent.add(outcome)
      }
      settle(batch[i], outcome)
    }
    if (pending.size === 0) keepAlive.unref()
  }
  const envId = binding.initCompletions(() => {
    if (!scheduled) {
      scheduled = true
      setImmediate(drain)
    }
  })

  /**
   * Starts `start(envId, id, lone)`; resolves with what the native side completes `id` with.
   * `lone`: no other request of this environment is in flight.
   */
  function request(start) {
    const id = nextId
    nextId = nextId === MAX_ID ? 1 : nextId + 1
    return new Promise((resolve) => {
      pending.set(id, resolve)
      const lone = pending.size === 1
      if (lone) keepAlive.ref()
      try {
        start(envId, id, lone && readHere)
      } catch (e) {
        pending.delete(id)
        if (pending.size === 0) keepAlive.unref()
        throw e
      }
    })
  }

  /** Runs a query on a native pool or session; resolves with a result Buffer or a NativeError. */
  function submit(target, text, values, abortHandle) {
    if (values.length >= JOIN_FROM) {
      const lengths = textLengths(values)
      if (lengths !== null) {
        // Strings from the joined text are split and converted natively (lone surrogates
        // become U+FFFD there in both builds).
        const joined = values.join('')
        if (fixStrings) text = wellFormed(text)
        return request((env, id, lone) => target.submit(text, joined, lengths, { env, id, lone }, abortHandle))
      }
    }
    if (fixStrings) {
      text = wellFormed(text)
      values = wellFormedValues(values)
    }
    return request((env, id, lone) => target.submit(text, values, undefined, { env, id, lone }, abortHandle))
  }

  /**
   * Checks out a connection of a native pool; resolves with a NativeSession or a NativeError.
   * A checkout queued behind a full pool has no native task (and no native timer): its time
   * limit runs here, and a connection released on this thread is handed over by `handOver`.
   */
  function connect(pool) {
    return request((env, id) => {
      const waitMs = pool.connect(env, id)
      if (waitMs < 0) return
      const resolve = pending.get(id)
      const timer = setTimeout(() => {
        const err = pool.cancelConnect(env, id)
        if (err) handOver(id, err)
      }, waitMs)
      timer.unref()
      pending.set(id, (outcome) => {
        clearTimeout(timer)
        resolve(outcome)
      })
    })
  }

  /** Settles request `id` now (a checkout served by a release on this thread). */
  function handOver(id, outcome) {
    settle(id, outcome)
    if (pending.size === 0) keepAlive.unref()
  }

  /**
   * Done with a result: a lent one's memory goes back to the native side now rather than at the
   * next full GC (decoding a large result promotes its Buffer to the old generation).
   */
  function release(result) {
    if (lent.has(result)) {
      lent.delete(result)
      binding.releaseResult(result)
    }
  }

  /** Registers the function that takes this environment's subscription events (lib/listen.js). */
  function onEvents(fn) {
    drainEvents = fn
  }

  /**
   * Like `request`, for a native call that may be done at once: when `start` returns true,
   * nothing will be completed under its id, and the promise resolves with true right away.
   */
  function requestOrNow(start) {
    return request((env, id, lone) => {
      if (start(env, id, lone) === true) handOver(id, true)
    })
  }

  /** A statement's text and parameters as they must cross (well-formed strings where needed). */
  function crossing(text, values) {
    return fixStrings ? [wellFormed(text), wellFormedValues(values)] : [text, values]
  }

  return { submit, connect, handOver, release, request, requestOrNow, crossing, envId, onEvents }
}

module.exports = { createDispatcher, wellFormedDeep }
