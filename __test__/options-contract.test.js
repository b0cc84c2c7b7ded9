'use strict'
// createPool()'s options exist in several places that must agree: the code's own table
// (lib/options.js), the public typings (index.d.ts), the README's Options table, and the native
// options object (lib/options.js builds it, src/napi/objects.rs `PoolOptionsInput` reads it —
// its generated typing is binding.d.ts). This test holds them equal.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { OPTIONS, normalizeOptions } = require('../lib/options')

const root = path.join(__dirname, '..')
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8')

/** The property names of `interface <name> { ... }` in a .d.ts file (top-level members only). */
function interfaceKeys(source, name) {
  const start = source.indexOf(`export interface ${name} {`)
  assert.ok(start >= 0, `interface ${name} not found`)
  const keys = []
  let depth = 0
  for (const line of source.slice(start).split('\n').slice(1)) {
    if (depth === 0 && /^}/.test(line)) break
    if (depth === 0) {
      const m = /^ {2}(\w+)\??:/.exec(line)
      if (m) keys.push(m[1])
    }
    depth += (line.match(/{/g) || []).length - (line.match(/}/g) || []).length
  }
  return keys.sort()
}

/** Every option named in the first column of the README's Options table. */
function readmeOptions() {
  const text = read('README.md')
  const section = text.slice(text.indexOf('\n## Options'), text.indexOf('\n## ', text.indexOf('\n## Options') + 1))
  const names = new Set()
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue
    const first = line.split(' | ')[0]
    for (const m of first.matchAll(/`(\w+)`/g)) names.add(m[1])
  }
  return [...names].sort()
}

test('every option in the code is in the typings, and nothing else', () => {
  assert.deepEqual(interfaceKeys(read('index.d.ts'), 'PoolOptions'), Object.keys(OPTIONS).sort())
})

test('every option in the code is in the README Options table, and nothing else', () => {
  assert.deepEqual(readmeOptions(), Object.keys(OPTIONS).sort())
})

test('the native options object has exactly the fields the binding reads', () => {
  // Every option set, so every native field is produced.
  const all = {
    name: 'n',
    connectionString: 'postgres://u@h/d',
    host: 'h',
    port: 5432,
    user: 'u',
    password: 'p',
    database: 'd',
    applicationName: 'a',
    ssl: { ca: 'PEM', cert: 'PEM', key: 'PEM', passphrase: 'p', rejectUnauthorized: true },
    channelBinding: 'prefer',
    sslNegotiation: 'direct',
    max: 3,
    acquireTimeoutMs: 1,
    connectTimeoutMs: 1,
    idleTimeoutMs: 1,
    maxLifetimeSec: 1,
    statementTimeoutMs: 1,
    searchPath: 's',
    pgbouncer: false,
    keepAlive: true,
    machineMax: 2,
    statementCacheSize: 5,
    listenUrl: 'postgres://u@direct/d',
    maxMessageBytes: 65536,
    min: 1,
    options: '-c geqo=off',
    targetSessionAttrs: 'read-write',
    loadBalanceHosts: 'random',
    replicas: ['r1:5433'],
  }
  const { native } = normalizeOptions(all, {})
  assert.deepEqual(Object.keys(native).sort(), interfaceKeys(read('binding.d.ts'), 'PoolOptionsInput'))
})
