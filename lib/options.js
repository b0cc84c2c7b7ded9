'use strict'
// createPool() options: onepool's names, node-postgres's names as aliases, strict validation.
// A mistake throws CONFIG_INVALID at createPool(), at module load, where the developer sees it.

const { clientError } = require('./errors')

const string = (v) => typeof v === 'string'
const bool = (v) => typeof v === 'boolean'
const nonNegative = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0
const positiveInt = (v) => Number.isInteger(v) && v >= 1 && v <= 100000
const onePort = (v) =>
  (Number.isInteger(v) && v >= 1 && v <= 65535) || (typeof v === 'string' && /^\d{1,5}$/.test(v) && +v >= 1 && +v <= 65535)
// Multi-host targets: a host list ('a,b' or ['a', 'b']) with one port or one port per host.
const hosts = (v) => string(v) || (Array.isArray(v) && v.length > 0 && v.every((h) => string(h) && h !== '' && !h.includes(',')))
// In a comma-separated list an empty entry is the default port, as in libpq.
const port = (v) =>
  onePort(v) ||
  (typeof v === 'string' && v.includes(',') && v.split(',').every((p) => p.trim() === '' || onePort(p.trim()))) ||
  (Array.isArray(v) && v.length > 0 && v.every(onePort))
const replica = (v) =>
  (string(v) && v.trim() !== '') || (v !== null && typeof v === 'object' && !Array.isArray(v) && string(v.host) && (v.port === undefined || onePort(v.port)))

const fn = (v) => typeof v === 'function'
const oneOf = (...values) => (v) => values.includes(v)
const pem = (v) => string(v) || Buffer.isBuffer(v)
const pemList = (v) => pem(v) || (Array.isArray(v) && v.every(pem))
const any = () => true

const SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']

// name → [canonical name, validator, expected type in words]
const OPTIONS = {
  name: ['name', string, 'a string'],
  connectionString: ['connectionString', string, 'a string'],
  host: ['host', hosts, 'a host, a comma-separated host list or an array of hosts'],
  port: ['port', port, 'a port number, or a list of them (comma-separated or an array)'],
  user: ['user', string, 'a string'],
  password: ['password', (v) => string(v) || fn(v), 'a string or a function returning one (or a promise of one)'],
  database: ['database', string, 'a string'],
  applicationName: ['applicationName', string, 'a string'],
  application_name: ['applicationName', string, 'a string'],
  ssl: ['ssl', (v) => bool(v) || string(v) || (typeof v === 'object' && v !== null), 'a boolean, an sslmode string or an object'],
  sslmode: ['ssl', string, 'an sslmode string'],
  channelBinding: ['channelBinding', oneOf('disable', 'prefer', 'require'), '"disable", "prefer" or "require"'],
  channel_binding: ['channelBinding', oneOf('disable', 'prefer', 'require'), '"disable", "prefer" or "require"'],
  sslNegotiation: ['sslNegotiation', oneOf('postgres', 'direct'), '"postgres" or "direct"'],
  sslnegotiation: ['sslNegotiation', oneOf('postgres', 'direct'), '"postgres" or "direct"'],
  max: ['max', positiveInt, 'an integer of at least 1'],
  poolSize: ['max', positiveInt, 'an integer of at least 1'],
  acquireTimeoutMs: ['acquireTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  connectTimeoutMs: ['connectTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  connectionTimeoutMillis: ['connectTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  idleTimeoutMs: ['idleTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  idleTimeoutMillis: ['idleTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  maxLifetimeSec: ['maxLifetimeSec', nonNegative, 'a non-negative number of seconds'],
  maxLifetimeSeconds: ['maxLifetimeSec', nonNegative, 'a non-negative number of seconds'],
  statementTimeoutMs: ['statementTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  statement_timeout: ['statementTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  queryTimeoutMs: ['queryTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  query_timeout: ['queryTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  lock_timeout: ['lockTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  idle_in_transaction_session_timeout: ['idleInTransactionTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  options: ['options', string, 'a string of startup options such as "-c lock_timeout=1000"'],
  fallback_application_name: ['fallbackApplicationName', string, 'a string'],
  client_encoding: ['clientEncoding', (v) => string(v) && /^utf-?8$/i.test(v), 'UTF8 (the only encoding onepool speaks)'],
  searchPath: ['searchPath', string, 'a string'],
  pgbouncer: ['pgbouncer', bool, 'a boolean'],
  listenUrl: ['listenUrl', string, 'a connection string'],
  directUrl: ['listenUrl', string, 'a connection string'],
  keepAlive: ['keepAlive', bool, 'a boolean'],
  machineMax: ['machineMax', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, 'a non-negative integer'],
  statementCacheSize: ['statementCacheSize', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, 'a non-negative integer'],
  maxMessageBytes: ['maxMessageBytes', (v) => Number.isInteger(v) && v >= 1024 && v <= 0x40000000, 'an integer from 1024 to 1073741824'],
  types: ['types', (v) => v !== null && typeof v === 'object' && typeof v.getTypeParser === 'function', 'an object with getTypeParser()'],
  leakDetectionMs: ['leakDetectionMs', nonNegative, 'a non-negative number of milliseconds'],
  onLeak: ['onLeak', (v) => typeof v === 'function', 'a function'],
  min: ['min', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'],
  maxUses: ['maxUses', (v) => v === Infinity || (Number.isInteger(v) && v >= 1), 'a positive integer or Infinity'],
  onConnect: ['onConnect', fn, 'a function'],
  verify: ['verify', fn, 'a function (client, callback)'],
  log: ['log', fn, 'a function'],
  pipeline: ['pipeline', bool, 'a boolean'],
  // Several servers: libpq's multi-host options, and read replicas (lib/pool.js `replica`).
  targetSessionAttrs: ['targetSessionAttrs', (v) => SESSION_ATTRS.includes(v), `one of ${SESSION_ATTRS.join(', ')}`],
  target_session_attrs: ['targetSessionAttrs', (v) => SESSION_ATTRS.includes(v), `one of ${SESSION_ATTRS.join(', ')}`],
  loadBalanceHosts: ['loadBalanceHosts', (v) => v === 'disable' || v === 'random', "'disable' or 'random'"],
  load_balance_hosts: ['loadBalanceHosts', (v) => v === 'disable' || v === 'random', "'disable' or 'random'"],
  replicas: ['replicas', (v) => Array.isArray(v) && v.every(replica), 'an array of hosts ("host", "host:port"), { host, port } objects or connection strings'],
  // Accepted for node-postgres compatibility; onepool's behaviour already covers them.
  allowExitOnIdle: ['allowExitOnIdle', bool, 'a boolean'],
  binary: ['binary', (v) => v === false, 'false (onepool receives text results, as node-postgres does by default)'],
  parseInputDatesAsUTC: ['parseInputDatesAsUTC', (v) => v === false, 'false (onepool sends dates as node-postgres does by default)'],
  // Accepted and ignored, with a warning once per process: onepool cannot honour them.
  Client: ['Client', any, 'a client class'],
  Promise: ['Promise', any, 'a Promise implementation'],
  keepAliveInitialDelayMillis: ['keepAliveInitialDelayMillis', nonNegative, 'a non-negative number of milliseconds'],
  // node-postgres's switch for SCRAM-SHA-256-PLUS: true is channelBinding "prefer", false "disable".
  enableChannelBinding: ['enableChannelBinding', bool, 'a boolean'],
}

/** Options onepool cannot honour, and why: accepted, with one warning per process each. */
const IGNORED = {
  Client: 'onepool speaks the protocol itself; a custom Client class is not used',
  Promise: 'onepool returns native promises',
  keepAliveInitialDelayMillis: "TCP keepalive uses the operating system's delay",
}
const warned = new Set()

function warnIgnored(name) {
  if (warned.has(name)) return
  warned.add(name)
  console.warn(`onepool: option "${name}" is ignored: ${IGNORED[name]}`)
}

/** node-postgres options that cannot be ignored safely: why each is refused. */
const REFUSED = {
  stream: 'onepool opens its own sockets; a custom stream (socket factory) would be silently bypassed',
  replication: 'replication connections are not pooled',
}

const ENV_KEYS = [
  'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGAPPNAME', 'PGSSLMODE', 'USER', 'USERNAME', 'ONEPOOL_MACHINE_MAX',
  'PGTARGETSESSIONATTRS', 'PGLOADBALANCEHOSTS',
]
// libpq's TLS variables (files for the certificates and the key, as sslrootcert/sslcert/sslkey).
const TLS_ENV_KEYS = ['PGSSLROOTCERT', 'PGSSLCERT', 'PGSSLKEY', 'PGCHANNELBINDING', 'PGSSLNEGOTIATION']

function distance(a, b) {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]
    d[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1))
      prev = tmp
    }
  }
  return d[b.length]
}

function closest(name) {
  let best = null
  let bestDistance = Infinity
  for (const known of Object.keys(OPTIONS)) {
    const dist = distance(name, known)
    if (dist < bestDistance) {
      best = known
      bestDistance = dist
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : null
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'number') return `the number ${value}`
  return `a ${typeof value}`
}

/** One field of node-postgres's `ssl` object (`ca`, `cert`, `key`: string, Buffer or an array of them) as PEM text. */
function sslPem(ssl, field) {
  if (!ssl || typeof ssl !== 'object' || ssl[field] === undefined) return undefined
  const list = Array.isArray(ssl[field]) ? ssl[field] : [ssl[field]]
  return list.map((c) => (Buffer.isBuffer(c) ? c.toString('utf8') : String(c))).join('\n')
}

// The fields of node-postgres's `ssl` object that onepool reads (the rest of node:tls's options
// are not used: onepool's TLS follows libpq's sslmode).
const SSL_FIELDS = {
  ca: [pemList, 'PEM text (a string or a Buffer) or an array of them'],
  cert: [pemList, 'PEM text (a string or a Buffer) or an array of them'],
  key: [pem, 'PEM text (a string or a Buffer)'],
  passphrase: [string, 'a string'],
  rejectUnauthorized: [bool, 'a boolean'],
}

function checkSsl(ssl) {
  if (ssl === null || typeof ssl !== 'object') return
  if (ssl.pfx !== undefined) {
    throw clientError(
      'CONFIG_INVALID',
      'option "ssl.pfx" is not supported: give the client certificate and key as PEM (ssl.cert and ssl.key; `openssl pkcs12 -in client.p12 -out client.pem -nodes` converts a PKCS#12 file)',
    )
  }
  for (const [field, [valid, expected]] of Object.entries(SSL_FIELDS)) {
    const value = ssl[field]
    // Never shown: it is a secret.
    const shown = field === 'key' || field === 'passphrase' ? `a ${typeof value}` : describe(value)
    if (value !== undefined && !valid(value)) throw clientError('CONFIG_INVALID', `option "ssl.${field}" must be ${expected}, got ${shown}`)
  }
}

/** channelBinding, or node-postgres's enableChannelBinding (true: use it when the server offers it). */
function channelBinding(out) {
  if (out.channelBinding !== undefined) return out.channelBinding
  if (out.enableChannelBinding !== undefined) return out.enableChannelBinding ? 'prefer' : 'disable'
  return undefined
}

function sslMode(ssl) {
  if (ssl === undefined) return undefined
  if (ssl === false) return 'disable'
  if (ssl === true) return 'verify-full'
  if (typeof ssl === 'string') return ssl
  return ssl.rejectUnauthorized === false ? 'require' : 'verify-full'
}

/**
 * Normalises createPool()'s argument into the native options object plus JS-only settings.
 * @returns {{ native: object, js: { types?: object, leakDetectionMs?: number, onLeak?: Function } }}
 */
function normalizeOptions(input, env = process.env) {
  if (input === undefined || input === null) input = {}
  if (typeof input === 'string') input = { connectionString: input }
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw clientError('CONFIG_INVALID', `createPool() takes an options object or a connection string, got ${describe(input)}`)
  }
  const out = {}
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue
    const spec = Object.prototype.hasOwnProperty.call(OPTIONS, key) ? OPTIONS[key] : undefined
    if (!spec && Object.prototype.hasOwnProperty.call(REFUSED, key)) {
      throw clientError('CONFIG_INVALID', `option "${key}" is not supported: ${REFUSED[key]}`)
    }
    if (!spec) {
      const hint = closest(key)
      throw clientError('CONFIG_INVALID', `unknown option "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`)
    }
    const [canonical, valid, expected] = spec
    if (!valid(value)) {
      throw clientError('CONFIG_INVALID', `option "${key}" must be ${expected}, got ${describe(value)}`)
    }
    if (canonical in out && out[canonical] !== value) {
      throw clientError('CONFIG_INVALID', `options "${key}" and its alias both set "${canonical}" to different values`)
    }
    out[canonical] = value
    if (Object.prototype.hasOwnProperty.call(IGNORED, key)) warnIgnored(key)
  }
  if (out.connectionString === undefined && out.host === undefined && env.DATABASE_URL) {
    out.connectionString = env.DATABASE_URL
  }
  // node-postgres's connectionTimeoutMillis bounds the wait for a pooled client too.
  if (out.acquireTimeoutMs === undefined && input.connectionTimeoutMillis !== undefined) {
    out.acquireTimeoutMs = input.connectionTimeoutMillis
  }
  checkSsl(out.ssl)
  if (out.applicationName === undefined && out.fallbackApplicationName !== undefined) {
    out.applicationName = out.fallbackApplicationName
  }
  const envVars = {}
  for (const key of ENV_KEYS) if (typeof env[key] === 'string') envVars[key] = env[key]
  for (const key of TLS_ENV_KEYS) if (typeof env[key] === 'string') envVars[key] = env[key]
  const native = {
    name: out.name,
    connectionString: out.connectionString,
    host: Array.isArray(out.host) ? out.host.join(',') : out.host,
    port: out.port === undefined ? undefined : Array.isArray(out.port) ? out.port.join(',') : String(out.port),
    user: out.user,
    password: typeof out.password === 'string' ? out.password : undefined,
    database: out.database,
    applicationName: out.applicationName,
    sslMode: sslMode(out.ssl),
    sslRootCert: sslPem(out.ssl, 'ca'),
    sslCert: sslPem(out.ssl, 'cert'),
    sslKey: sslPem(out.ssl, 'key'),
    sslPassword: out.ssl && typeof out.ssl === 'object' ? out.ssl.passphrase : undefined,
    channelBinding: channelBinding(out),
    sslNegotiation: out.sslNegotiation,
    max: out.max,
    acquireTimeoutMs: out.acquireTimeoutMs,
    connectTimeoutMs: out.connectTimeoutMs,
    idleTimeoutMs: out.idleTimeoutMs,
    maxLifetimeSec: out.maxLifetimeSec,
    min: out.min,
    options: startupOptions(out),
    statementTimeoutMs: out.statementTimeoutMs,
    searchPath: out.searchPath,
    pgbouncer: out.pgbouncer,
    keepalive: out.keepAlive,
    statementCacheSize: out.statementCacheSize,
    maxMessageBytes: out.maxMessageBytes,
    machineMax: out.machineMax,
    listenUrl: out.listenUrl,
    targetSessionAttrs: out.targetSessionAttrs,
    loadBalanceHosts: out.loadBalanceHosts,
    replicas: out.replicas === undefined ? undefined : out.replicas.map(replicaSpec),
    env: envVars,
  }
  for (const key of Object.keys(native)) if (native[key] === undefined) delete native[key]
  return {
    native,
    passwordFunction: typeof out.password === 'function' ? out.password : undefined,
    js: {
      types: out.types,
      leakDetectionMs: out.leakDetectionMs || 0,
      onLeak: out.onLeak,
      queryTimeoutMs: out.queryTimeoutMs || 0,
      maxUses: out.maxUses || Infinity,
      onConnect: out.onConnect,
      verify: out.verify,
      log: out.log,
      pipeline: out.pipeline === true,
    },
  }
}

/** A replica as the native side reads it: "host", "host:port", "[v6]:port" or a connection string. */
function replicaSpec(r) {
  if (typeof r === 'string') return r.trim()
  const host = r.host.includes(':') ? `[${r.host}]` : r.host
  return r.port === undefined ? host : `${host}:${r.port}`
}

/** node-postgres's `options` plus the session timeouts it sends as startup options. */
function startupOptions(out) {
  const parts = []
  if (out.lockTimeoutMs) parts.push(`-c lock_timeout=${Math.round(out.lockTimeoutMs)}`)
  if (out.idleInTransactionTimeoutMs) {
    parts.push(`-c idle_in_transaction_session_timeout=${Math.round(out.idleInTransactionTimeoutMs)}`)
  }
  if (out.options !== undefined && out.options.trim() !== '') parts.push(out.options.trim())
  return parts.length ? parts.join(' ') : undefined
}

/**
 * The options as node-postgres's `pool.options` shows them: what was passed, with its defaults
 * filled in, the password hidden from enumeration (so it is not logged with the object).
 */
function publicOptions(input) {
  const given = input === undefined || input === null ? {} : typeof input === 'string' ? { connectionString: input } : input
  const options = { ...given }
  if ('password' in options) {
    Object.defineProperty(options, 'password', { value: given.password, enumerable: false, writable: true, configurable: true })
  }
  // Likewise the client key and its passphrase.
  if (given.ssl !== null && typeof given.ssl === 'object' && !Array.isArray(given.ssl)) {
    const ssl = { ...given.ssl }
    for (const secret of ['key', 'passphrase']) {
      if (secret in ssl) Object.defineProperty(ssl, secret, { value: ssl[secret], enumerable: false, writable: true, configurable: true })
    }
    options.ssl = ssl
  }
  options.max = given.max || given.poolSize || 10
  options.min = given.min || 0
  options.maxUses = given.maxUses || Infinity
  options.allowExitOnIdle = given.allowExitOnIdle || false
  options.maxLifetimeSeconds = given.maxLifetimeSeconds ?? given.maxLifetimeSec ?? 1800
  options.idleTimeoutMillis = given.idleTimeoutMillis ?? given.idleTimeoutMs ?? 10000
  return options
}

module.exports = { normalizeOptions, publicOptions, OPTIONS }
