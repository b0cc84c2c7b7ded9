'use strict'
// pool.listen() and pool.notify(): LISTEN/NOTIFY on the pool's one listening connection
// (src/pool/listen.rs), which survives hot reloads and reconnects.
//
// A subscription made while a module is being evaluated (at module scope) is keyed by its
// database and channel: when the module is evaluated again (a hot reload), its new subscription
// replaces the previous one instead of adding a second handler (src/listen.rs). Keys are per
// JavaScript thread. A subscription made later (in a request handler, a callback) has no key
// unless given one: each lives until its unlisten().
//
// Events reach this environment in batches with its query results' wake-up (lib/dispatch.js);
// handlers run in slices of at most SLICE_MS, with the event loop turning between them.

const { clientError, fromNative } = require('./errors')

const LISTENER = Symbol.for('onepool.listener')
const MAX_ID = 0x7fffffff

/** NOTIFY's limit: the payload must be shorter than 8000 bytes. */
const MAX_PAYLOAD_BYTES = 7999
/** Channel names are identifiers; Postgres would truncate longer ones. */
const MAX_CHANNEL_BYTES = 63

/** Events taken from the native side per call (four slots each). */
const TAKE = 256
/** Handlers run at most this long at a time; then the event loop gets a turn. */
const SLICE_MS = 10

// Kinds in takeListenEvents (src/napi/listen.rs).
const NOTIFICATION = 0
const LISTENING = 1
const FAILED = 2
const RESUMED = 3
const ENDED = 4

// Functions whose frames mean "a module is being evaluated": Node's CommonJS and ESM loaders,
// node:vm, and the module systems of bundlers and test runners (Turbopack names a module's
// factory "module evaluation").
const LOADERS = new Set([
  'Module._compile',
  'ModuleJob.run',
  'SourceTextModule.evaluate',
  'Script.runInContext',
  'Script.runInNewContext',
  'Script.runInThisContext',
  'module evaluation',
  'instantiateModule',
  'instantiateModuleShared',
  '__webpack_require__',
  'Runtime._execModule',
  'ESModulesEvaluator.runInlinedModule',
  'ModuleRunner.directRequest',
  'ViteNodeRunner.directRequest',
  'VitestExecutor.runModule',
])

const LIB = __dirname + require('node:path').sep

/**
 * Whether the caller runs as part of a module's evaluation (module scope): a module loader's
 * frame is on the stack, or, after an `await` has taken the loader off it, the caller is a
 * module's top level.
 */
function duringModuleEvaluation() {
  const prepare = Error.prepareStackTrace
  const limit = Error.stackTraceLimit
  let sites
  try {
    Error.stackTraceLimit = 32
    Error.prepareStackTrace = (_, callSites) => callSites
    const holder = {}
    Error.captureStackTrace(holder, duringModuleEvaluation)
    sites = holder.stack
  } catch {
    return false
  } finally {
    Error.prepareStackTrace = prepare
    Error.stackTraceLimit = limit
  }
  if (!Array.isArray(sites)) return false
  try {
    const caller = sites.find((site) => !(site.getFileName() || '').startsWith(LIB))
    if (caller !== undefined && topLevelAfterAwait(caller)) return true
    return sites.some((site) => {
      const fn = site.getFunctionName()
      const type = site.getTypeName()
      return LOADERS.has(fn) || (type !== null && LOADERS.has(`${type}.${fn}`))
    })
  } catch {
    return false
  }
}

/**
 * A module's top level, resumed after an await. Node's ES modules (a top-level await): the
 * script's own code, which starts at 1:1. webpack in development evaluates a module that waits
 * for an async dependency (onepool itself, an ESM external, makes routes so) inside a wrapper on
 * the first line of the module's eval'd source.
 */
function topLevelAfterAwait(site) {
  if (typeof site.getEnclosingLineNumber !== 'function') return false
  const line = site.getEnclosingLineNumber()
  if (line !== 1) return false
  const name = site.getFunctionName()
  if (name === null && site.getEnclosingColumnNumber() === 1) return true
  return site.isEval() && String(site.getScriptNameOrSourceURL()).startsWith('webpack-internal:///')
}

function checkChannel(channel) {
  if (typeof channel !== 'string') {
    throw clientError('PARAM_INVALID', `the channel must be a string, got ${channel === null ? 'null' : typeof channel}`)
  }
  const bytes = Buffer.byteLength(channel)
  if (bytes === 0) throw clientError('PARAM_INVALID', 'the channel name is empty')
  if (bytes > MAX_CHANNEL_BYTES) {
    throw clientError('PARAM_INVALID', `the channel name is ${bytes} bytes long; Postgres keeps at most ${MAX_CHANNEL_BYTES} (it would truncate it)`)
  }
}

/** The handler's error goes to `onError`, or to the console: never up into onepool's drain. */
function report(entry, err, message) {
  if (entry.onError) {
    try {
      entry.onError(err, message)
      return
    } catch (e) {
      err = e
    }
  }
  console.error(`onepool: a listen() handler for channel "${entry.channel}" threw:`, err)
}

function call(entry, fn, arg) {
  try {
    const out = fn(arg)
    if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
      out.then(undefined, (e) => report(entry, e, arg))
    }
  } catch (e) {
    report(entry, e, arg)
  }
}

/** One JavaScript environment's subscriptions, kept with its dispatcher (once per realm). */
class EnvListener {
  constructor(binding, dispatcher) {
    this.binding = binding
    this.envId = dispatcher.envId
    /** Subscription id → its entry. */
    this.subs = new Map()
    this.refs = 0
    this.keepAlive = setInterval(() => {}, MAX_ID)
    this.keepAlive.unref()
    /** Events taken from the native side and not yet handled: `batch` from index `at`. */
    this.batch = []
    this.at = 0
    this.draining = false
    this.rescheduled = false
    /** Module-scope keys used since the last microtask checkpoint (one evaluation). */
    this.runKeys = new Set()
    dispatcher.onEvents(() => this.drain())
  }

  ref(delta) {
    this.refs += delta
    if (this.refs > 0) this.keepAlive.ref()
    else this.keepAlive.unref()
  }

  remove(id) {
    const entry = this.subs.get(id)
    if (entry === undefined) return
    this.subs.delete(id)
    if (entry.refd) this.ref(-1)
  }

  /**
   * Runs the handlers of the queued events, for at most SLICE_MS: the rest of a batch waits for
   * a later turn of the event loop (no wake-up comes for it: the native queue did not run empty).
   */
  drain() {
    // A slice is already scheduled (it runs in this turn or the next): one slice per turn.
    if (this.draining || this.rescheduled) return
    this.draining = true
    const started = performance.now()
    try {
      for (;;) {
        if (this.at >= this.batch.length) {
          this.at = 0
          try {
            this.batch = this.binding.takeListenEvents(this.envId, TAKE)
          } catch (e) {
            // An N-API failure (the environment shutting down): nothing to deliver, no crash.
            this.batch = []
            console.error('onepool: could not take LISTEN events:', e)
          }
          if (this.batch.length === 0) return
        }
        const { batch } = this
        while (this.at < batch.length) {
          const i = this.at
          this.at += 4
          this.handle(batch[i], batch[i + 1], batch[i + 2], batch[i + 3])
          if ((i & 63) === 60 && performance.now() - started > SLICE_MS) return this.later()
        }
        if (performance.now() - started > SLICE_MS) return this.later()
      }
    } finally {
      this.draining = false
    }
  }

  later() {
    if (this.rescheduled) return
    this.rescheduled = true
    setImmediate(() => {
      this.rescheduled = false
      this.drain()
    })
  }

  handle(id, kind, a, b) {
    const entry = this.subs.get(id)
    if (entry === undefined) return
    switch (kind) {
      case NOTIFICATION:
        call(entry, entry.handler, { channel: entry.channel, payload: a, processId: b })
        break
      case LISTENING:
        entry.settle(null)
        break
      case FAILED:
        entry.settle(fromNative(a))
        break
      case RESUMED: {
        // Only a subscription that heard LISTENING or FAILED hears this: its ready is settled.
        if (entry.onReconnect) {
          call(entry, entry.onReconnect, {
            channel: entry.channel,
            since: new Date(a.sinceMs),
            attempts: a.attempts,
            cause: fromNative(a.cause),
          })
        }
        break
      }
      case ENDED:
        this.remove(id)
        entry.settle(a === null ? null : fromNative(a))
        break
    }
  }
}

function envListener(binding, dispatcher) {
  let listener = dispatcher[LISTENER]
  if (listener === undefined) {
    listener = new EnvListener(binding, dispatcher)
    Object.defineProperty(dispatcher, LISTENER, { value: listener })
  }
  return listener
}

/** What `pool.listen()` returns. */
class Subscription {
  #listener
  #native
  #id
  #entry
  #ended = false

  constructor(listener, native, id, entry) {
    this.#listener = listener
    this.#native = native
    this.#id = id
    this.#entry = entry
    /** The channel, exactly as given (names are case-sensitive, as pg_notify sees them). */
    this.channel = entry.channel
    /**
     * Resolves once the LISTEN is in effect. Rejects if the first attempt failed (the
     * subscription stays and keeps trying; `onReconnect` says when it listens) or the pool was
     * ended first.
     */
    this.ready = entry.ready
  }

  /** Stops delivery now; the UNLISTEN (or closing the listening connection) follows. Idempotent. */
  unlisten() {
    if (this.#ended) return
    this.#ended = true
    this.#listener.remove(this.#id)
    this.#entry.settle(null)
    this.#native.unlisten(this.#id)
  }

  /** Keeps the process alive while subscribed (a script that only waits for notifications). */
  ref() {
    if (!this.#entry.refd && this.#listener.subs.get(this.#id) === this.#entry) {
      this.#entry.refd = true
      this.#listener.ref(1)
    }
    return this
  }

  /** The default: the subscription does not keep the process alive by itself. */
  unref() {
    if (this.#entry.refd && this.#listener.subs.get(this.#id) === this.#entry) {
      this.#entry.refd = false
      this.#listener.ref(-1)
    }
    return this
  }
}

const LISTEN_OPTIONS = new Set(['key', 'onReconnect', 'onError'])

function checkOptions(options) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object') throw clientError('PARAM_INVALID', 'listen() options must be an object')
  for (const name of Object.keys(options)) {
    if (!LISTEN_OPTIONS.has(name)) {
      throw clientError('PARAM_INVALID', `unknown listen() option "${name}" (known: ${[...LISTEN_OPTIONS].join(', ')})`)
    }
  }
  const { key, onReconnect, onError } = options
  if (key !== undefined && key !== null && !(typeof key === 'string' && key.length > 0)) {
    throw clientError('PARAM_INVALID', 'listen() option "key" must be a non-empty string, or null for no key')
  }
  for (const [name, fn] of [['onReconnect', onReconnect], ['onError', onError]]) {
    if (fn !== undefined && typeof fn !== 'function') throw clientError('PARAM_INVALID', `listen() option "${name}" must be a function`)
  }
  return options
}

/**
 * pool.listen(channel, handler, { key, onReconnect, onError }): subscribes `handler` to
 * NOTIFYs on `channel`. `addon` is `{ binding, dispatcher }`.
 */
function listen(native, addon, channel, handler, options) {
  checkChannel(channel)
  if (typeof handler !== 'function') throw clientError('PARAM_INVALID', 'listen() takes a handler function')
  const { key, onReconnect, onError } = checkOptions(options)
  const listener = envListener(addon.binding, addon.dispatcher)
  let nativeKey = null
  if (typeof key === 'string') {
    nativeKey = `key:${key}`
  } else if (key === undefined && duringModuleEvaluation()) {
    nativeKey = `module:${native.stats().target}:${channel}`
    if (listener.runKeys.has(nativeKey)) {
      process.emitWarning(
        `two subscriptions to channel "${channel}" were made at module scope in one evaluation: the second replaces the first ` +
          '(a module-scope subscription is keyed by its database and channel, so that a hot reload replaces it). Give each its own { key }.',
        { code: 'ONEPOOL_LISTEN_KEY' },
      )
    }
    if (listener.runKeys.size === 0) queueMicrotask(() => listener.runKeys.clear())
    listener.runKeys.add(nativeKey)
  }
  const out = native.listen(addon.dispatcher.envId, channel, nativeKey)
  if (typeof out.id !== 'number') throw fromNative(out)
  let settleReady
  const ready = new Promise((resolve, reject) => {
    settleReady = (err) => (err === null ? resolve() : reject(err))
  })
  // A module-scope subscription's ready is rarely awaited: its failure is not an unhandled
  // rejection (onReconnect tells when it listens after all).
  ready.catch(() => {})
  // Like a query in flight, a subscription waiting for its LISTEN keeps the process alive.
  let pending = true
  listener.ref(1)
  const entry = {
    channel,
    handler,
    onReconnect,
    onError,
    ready,
    refd: false,
    /** Settles `ready` (the first time only): `null` resolves it, an error rejects it. */
    settle(err) {
      if (!pending) return
      pending = false
      listener.ref(-1)
      settleReady(err)
    },
  }
  listener.subs.set(out.id, entry)
  return new Subscription(listener, native, out.id, entry)
}

/** pool.notify(channel, payload): `select pg_notify($1, $2)`; resolves once it ran. */
async function notify(pool, channel, payload = '') {
  checkChannel(channel)
  if (typeof payload !== 'string') {
    throw clientError('PARAM_INVALID', `the payload must be a string, got ${payload === null ? 'null' : typeof payload} (JSON.stringify an object first)`)
  }
  const bytes = Buffer.byteLength(payload)
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw clientError(
      'PARAM_INVALID',
      `the payload is ${bytes} bytes; NOTIFY takes at most ${MAX_PAYLOAD_BYTES} (store larger data in a table and send its key)`,
    )
  }
  await pool.query('select pg_notify($1, $2)', [channel, payload])
}

module.exports = { listen, notify, MAX_PAYLOAD_BYTES }
