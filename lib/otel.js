'use strict'
// OpenTelemetry without patching. When `@opentelemetry/api` is installed (an optional peer
// dependency) and the application has registered an SDK, each pool.query and transaction is a
// client span following the database semantic conventions, and each pool reports the
// conventions' connection metrics. Without the package nothing here runs; with it but without
// an SDK, a query costs one clock comparison (whether an SDK appeared is looked up once a second).

const RECHECK_MS = 1000

let api // undefined: not looked up yet; null: not installed

function load() {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api')
    } catch {
      api = null
    }
  }
  return api
}

/** Whether a real provider is registered behind the API's global (not its no-op default). */
function registered(provider) {
  const real = provider && typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider
  return Boolean(real) && !/^Noop/.test(real.constructor && real.constructor.name)
}

const state = { checkedAt: -Infinity, tracer: null, meter: null, instruments: null }
/** poolId → { native, name } of every pool whose gauges are reported. */
const observed = new Map()

/** Looks again, at most once a second, whether the application registered an SDK. */
function refresh() {
  const now = Date.now()
  if (now - state.checkedAt < RECHECK_MS) return
  state.checkedAt = now
  const otel = load()
  state.tracer = registered(otel.trace.getTracerProvider()) ? otel.trace.getTracer('onepool') : null
  if (!state.instruments && registered(otel.metrics.getMeterProvider())) createInstruments(otel)
}

function createInstruments(otel) {
  const meter = otel.metrics.getMeter('onepool')
  const seconds = { unit: 's' }
  state.instruments = {
    waitTime: meter.createHistogram('db.client.connection.wait_time', { ...seconds, description: 'Time to obtain a connection from the pool' }),
    createTime: meter.createHistogram('db.client.connection.create_time', { ...seconds, description: 'Time to open a new connection' }),
    useTime: meter.createHistogram('db.client.connection.use_time', { ...seconds, description: 'Time a connection was checked out' }),
    timeouts: meter.createCounter('db.client.connection.timeouts', { unit: '{timeout}', description: 'Connection requests that timed out' }),
  }
  const count = meter.createObservableUpDownCounter('db.client.connection.count', { unit: '{connection}' })
  const max = meter.createObservableUpDownCounter('db.client.connection.max', { unit: '{connection}' })
  const pending = meter.createObservableUpDownCounter('db.client.connection.pending_requests', { unit: '{request}' })
  meter.addBatchObservableCallback(
    (result) => {
      for (const [id, { native, name }] of observed) {
        let s
        try {
          s = native.stats()
        } catch {
          observed.delete(id)
          continue
        }
        const pool = { 'db.client.connection.pool.name': name }
        result.observe(count, s.idle, { ...pool, 'db.client.connection.state': 'idle' })
        result.observe(count, s.inUse, { ...pool, 'db.client.connection.state': 'used' })
        result.observe(max, s.max, pool)
        result.observe(pending, s.waiting, pool)
      }
    },
    [count, max, pending],
  )
}

/** `SELECT`, `INSERT`, ...: the first keyword of one statement (none for several). */
function operationName(text) {
  const m = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(text)
  if (!m) return undefined
  return m[1].toUpperCase()
}

class Telemetry {
  #native
  #base
  #poolName

  constructor(native, options) {
    this.#native = native
    const s = native.stats()
    this.#poolName = `${s.name} (${s.target})`
    // A multi-host pool: its first server (`stats().hosts`); the target ends in its replicas.
    const target = s.target.split(' replicas ')[0]
    const first = s.hosts && s.hosts[0]
    const [host, port] = first ? [first.host, first.port] : (/@(.*):(\d+)\/[^/]*$/.exec(target) || []).slice(1)
    const database = target.slice(target.lastIndexOf('/') + 1)
    this.#base = { 'db.system.name': 'postgresql', 'db.namespace': database }
    if (host) this.#base['server.address'] = host
    if (port) this.#base['server.port'] = Number(port)
    void options
  }

  attach() {
    refresh()
    observed.set(this.#native.poolId, { native: this.#native, name: this.#poolName })
  }

  detach() {
    observed.delete(this.#native.poolId)
  }

  /** Runs `start()` (the query) inside a client span when tracing. */
  query(q, start) {
    refresh()
    if (!state.tracer) return start()
    const operation = operationName(q.text)
    const attributes = { ...this.#base, 'db.query.text': q.text }
    if (operation) attributes['db.operation.name'] = operation
    return this.#span(operation || 'postgresql', attributes, start)
  }

  transaction(start) {
    refresh()
    if (!state.tracer) return start()
    return this.#span('transaction', { ...this.#base, 'db.operation.name': 'transaction' }, start)
  }

  #span(name, attributes, start) {
    const otel = api
    const span = state.tracer.startSpan(name, { kind: otel.SpanKind.CLIENT, attributes })
    const ctx = otel.trace.setSpan(otel.context.active(), span)
    let p
    try {
      p = otel.context.with(ctx, start)
    } catch (e) {
      p = Promise.reject(e)
    }
    return Promise.resolve(p).then(
      (r) => {
        span.end()
        return r
      },
      (e) => {
        const code = e && e.code
        if (code) {
          span.setAttribute('error.type', String(code))
          // A five-character code is the server's SQLSTATE.
          if (/^[0-9A-Z]{5}$/.test(code)) span.setAttribute('db.response.status_code', code)
        }
        span.setStatus({ code: otel.SpanStatusCode.ERROR, message: e && e.message })
        span.end()
        if (code === 'POOL_TIMEOUT' && state.instruments) state.instruments.timeouts.add(1, this.#poolAttrs())
        throw e
      },
    )
  }

  #poolAttrs() {
    return { 'db.client.connection.pool.name': this.#poolName }
  }

  /** A connection was opened in `ms`. */
  created(ms) {
    if (state.instruments) state.instruments.createTime.record(ms / 1000, this.#poolAttrs())
  }

  /** A checkout waited `ms` for its connection. */
  waited(ms) {
    if (state.instruments) state.instruments.waitTime.record(ms / 1000, this.#poolAttrs())
  }

  checkedOut(client) {
    client._checkedOutAt = performance.now()
  }

  released(client) {
    if (state.instruments && client._checkedOutAt !== undefined) {
      state.instruments.useTime.record((performance.now() - client._checkedOutAt) / 1000, this.#poolAttrs())
    }
  }

  failedCheckout(err) {
    if (err.code === 'POOL_TIMEOUT' && state.instruments) state.instruments.timeouts.add(1, this.#poolAttrs())
  }
}

/** Telemetry for a pool, or null when `@opentelemetry/api` is not installed. */
function forPool(native, options) {
  if (!load()) return null
  return new Telemetry(native, options)
}

/** For tests: look for a registered SDK now rather than within the second. */
function _recheck() {
  state.checkedAt = -Infinity
  refresh()
}

module.exports = { forPool, _recheck }
