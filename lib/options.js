'use strict'
// createPool() options: onepool's names, node-postgres's names as aliases, strict validation.
// A mistake throws CONFIG_INVALID at createPool(), at module load, where the developer sees it.

const { clientError } = require('./errors')

const string = (v) => typeof v === 'string'
const bool = (v) => typeof v === 'boolean'
const nonNegative = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0
const positiveInt = (v) => Number.isInteger(v) && v >= 1 && v <= 100000
const port = (v) =>
  (Number.isInteger(v) && v >= 1 && v <= 65535) || (typeof v === 'string' && /^\d{1,5}$/.test(v) && +v >= 1 && +v <= 65535)

// name → [canonical name, validator, expected type in words]
const OPTIONS = {
  name: ['name', string, 'a string'],
  connectionString: ['connectionString', string, 'a string'],
  host: ['host', string, 'a string'],
  port: ['port', port, 'a port number'],
  user: ['user', string, 'a string'],
  password: ['password', string, 'a string'],
  database: ['database', string, 'a string'],
  applicationName: ['applicationName', string, 'a string'],
  application_name: ['applicationName', string, 'a string'],
  ssl: ['ssl', (v) => bool(v) || string(v) || (typeof v === 'object' && v !== null), 'a boolean, an sslmode string or an object'],
  sslmode: ['ssl', string, 'an sslmode string'],
  max: ['max', positiveInt, 'an integer of at least 1'],
  acquireTimeoutMs: ['acquireTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  connectTimeoutMs: ['connectTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  connectionTimeoutMillis: ['connectTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  idleTimeoutMs: ['idleTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  idleTimeoutMillis: ['idleTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  maxLifetimeSec: ['maxLifetimeSec', nonNegative, 'a non-negative number of seconds'],
  maxLifetimeSeconds: ['maxLifetimeSec', nonNegative, 'a non-negative number of seconds'],
  statementTimeoutMs: ['statementTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  statement_timeout: ['statementTimeoutMs', nonNegative, 'a non-negative number of milliseconds'],
  searchPath: ['searchPath', string, 'a string'],
  pgbouncer: ['pgbouncer', bool, 'a boolean'],
  listenUrl: ['listenUrl', string, 'a connection string'],
  directUrl: ['listenUrl', string, 'a connection string'],
  keepAlive: ['keepAlive', bool, 'a boolean'],
  machineMax: ['machineMax', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, 'a non-negative integer'],
  statementCacheSize: ['statementCacheSize', (v) => Number.isInteger(v) && v >= 0 && v <= 100000, 'a non-negative integer'],
  types: ['types', (v) => v !== null && typeof v === 'object' && typeof v.getTypeParser === 'function', 'an object with getTypeParser()'],
  leakDetectionMs: ['leakDetectionMs', nonNegative, 'a non-negative number of milliseconds'],
  onLeak: ['onLeak', (v) => typeof v === 'function', 'a function'],
  // Accepted for node-postgres compatibility; onepool's behaviour already covers them.
  min: ['min', (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer'],
  allowExitOnIdle: ['allowExitOnIdle', bool, 'a boolean'],
}

const ENV_KEYS = ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGAPPNAME', 'PGSSLMODE', 'USER', 'USERNAME', 'ONEPOOL_MACHINE_MAX']

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

/** node-postgres's `ssl.ca` (string, Buffer or an array of them) as PEM text. */
function sslRootCert(ssl) {
  if (!ssl || typeof ssl !== 'object' || ssl.ca === undefined) return undefined
  const list = Array.isArray(ssl.ca) ? ssl.ca : [ssl.ca]
  return list.map((c) => (Buffer.isBuffer(c) ? c.toString('utf8') : String(c))).join('\n')
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
  }
  if (out.connectionString === undefined && out.host === undefined && env.DATABASE_URL) {
    out.connectionString = env.DATABASE_URL
  }
  const envVars = {}
  for (const key of ENV_KEYS) if (typeof env[key] === 'string') envVars[key] = env[key]
  const native = {
    name: out.name,
    connectionString: out.connectionString,
    host: out.host,
    port: out.port === undefined ? undefined : Number(out.port),
    user: out.user,
    password: out.password,
    database: out.database,
    applicationName: out.applicationName,
    sslMode: sslMode(out.ssl),
    sslRootCert: sslRootCert(out.ssl),
    max: out.max,
    acquireTimeoutMs: out.acquireTimeoutMs,
    connectTimeoutMs: out.connectTimeoutMs,
    idleTimeoutMs: out.idleTimeoutMs,
    maxLifetimeSec: out.maxLifetimeSec,
    statementTimeoutMs: out.statementTimeoutMs,
    searchPath: out.searchPath,
    pgbouncer: out.pgbouncer,
    keepalive: out.keepAlive,
    statementCacheSize: out.statementCacheSize,
    machineMax: out.machineMax,
    listenUrl: out.listenUrl,
    env: envVars,
  }
  for (const key of Object.keys(native)) if (native[key] === undefined) delete native[key]
  return { native, js: { types: out.types, leakDetectionMs: out.leakDetectionMs || 0, onLeak: out.onLeak } }
}

module.exports = { normalizeOptions, OPTIONS }
