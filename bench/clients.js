'use strict'
// The clients under test, as a table: name → { version(), create(url, { max }), nodeArgs?, runtime? }.
// create() resolves to one adapter shape so workloads never branch on the client:
//   query(text, values) → rows (array)      one statement on any pooled connection
//   transaction(fn)     → fn's result       fn(tx) gets { query } pinned to one connection
//   end()
// Adding a client is one more entry here. A client with runtime 'bun' has its cells run by the
// Bun binary (bench/bun.js finds it) instead of Node: same cell.js, same measurements.

const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

// Walks up from a package's entry point: not every package exports ./package.json.
function pkgVersion(name) {
  let dir = path.dirname(require.resolve(name))
  while (!fs.existsSync(path.join(dir, 'package.json')) || require(path.join(dir, 'package.json')).name !== name) {
    if (dir === path.dirname(dir)) return 'unknown'
    dir = path.dirname(dir)
  }
  return require(path.join(dir, 'package.json')).version
}

function onepool(url, { max }, root = ROOT) {
  const { createPool } = require(root)
  const pool = createPool({ connectionString: url, max })
  return {
    query: async (text, values) => (await pool.query(text, values)).rows,
    transaction: (fn) => pool.transaction((client) => fn({ query: async (t, v) => (await client.query(t, v)).rows })),
    end: () => pool.end(),
  }
}

const clients = {
  onepool: {
    version: () => `${require(path.join(ROOT, 'package.json')).version} (native addon)`,
    async create(url, options) {
      return onepool(url, options)
    },
  },

  // The same package, forced onto its WebAssembly build (npm run build:wasm). Each cell is its
  // own process, so setting the variable before the first require is enough. Node flags WASI
  // as experimental once per thread; the warning is not a result.
  'onepool-wasm': {
    nodeArgs: ['--disable-warning=ExperimentalWarning'],
    version: () => `${require(path.join(ROOT, 'package.json')).version} (WebAssembly build)`,
    async create(url, options) {
      process.env.ONEPOOL_FORCE_WASM = '1'
      const db = onepool(url, options)
      if (require(ROOT).processStats().build !== 'wasm') throw new Error('onepool-wasm: the WebAssembly build did not load')
      return db
    },
  },

  // Another build of onepool, for before/after runs of a change: a checkout (with its built
  // addon) named by ONEPOOL_BENCH_BASELINE, e.g. a `git worktree` of the commit before it.
  'onepool-base': {
    version: () => `${process.env.ONEPOOL_BENCH_BASELINE || 'unset'} (baseline build)`,
    async create(url, options) {
      const root = process.env.ONEPOOL_BENCH_BASELINE
      if (!root) throw new Error('onepool-base needs ONEPOOL_BENCH_BASELINE=<a checkout of onepool with its addon built>')
      return onepool(url, options, path.resolve(root))
    },
  },

  pg: {
    version: () => pkgVersion('pg'),
    async create(url, { max }) {
      const { Pool } = require('pg')
      const pool = new Pool({ connectionString: url, max })
      return {
        query: async (text, values) => (await pool.query(text, values)).rows,
        // pg has no pool-level transaction helper: the documented connect/BEGIN/COMMIT pattern.
        async transaction(fn) {
          const client = await pool.connect()
          try {
            await client.query('BEGIN')
            const out = await fn({ query: async (t, v) => (await client.query(t, v)).rows })
            await client.query('COMMIT')
            return out
          } catch (e) {
            await client.query('ROLLBACK').catch(() => {})
            throw e
          } finally {
            client.release()
          }
        },
        end: () => pool.end(),
      }
    },
  },

  postgres: {
    version: () => pkgVersion('postgres'),
    async create(url, { max }) {
      const postgres = require('postgres')
      const sql = postgres(url, { max, onnotice: () => {} })
      // sql.unsafe with prepare:true, simple:false is exactly what a tagged template
      // (sql`...`) sends: postgres.js's default, idiomatic path with cached named statements.
      const opts = { prepare: true, simple: false }
      const run = (s) => (text, values = []) => s.unsafe(text, values, opts)
      return {
        query: run(sql),
        transaction: (fn) => sql.begin((tx) => fn({ query: run(tx) })),
        end: () => sql.end({ timeout: 5 }),
      }
    },
  },
}

/**
 * The template object a tagged template with this text would pass its tag: 'a = $1 and b = $2'
 * becomes ['a = ', ' and b = ', ''], the same object on every call (Bun caches prepared
 * statements per template, as an app's sql`...` call site does). null when the placeholders are
 * not $1..$n, each once and in order.
 */
const templates = new Map()
function templateFor(text) {
  if (templates.has(text)) return templates.get(text)
  const numbers = [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))
  let strings = null
  if (numbers.every((n, i) => n === i + 1)) {
    const literal = text
      .split(/\$\d+/)
      .map((part) => part.replace(/[\\`]|\$\{/g, (c) => `\\${c}`))
      .join('${0}')
    strings = new Function('tag', `return tag\`${literal}\``)((s) => s)
  }
  templates.set(text, strings)
  return strings
}

// Bun's built-in client, run under Bun (a reference row: the fastest JavaScript client there is).
clients.bun = {
  runtime: 'bun',
  version: () => {
    if (typeof Bun !== 'undefined') return Bun.version
    const bun = require('./bun').findBun()
    return bun ? bun.version : 'not installed'
  },
  async create(url, { max }) {
    if (typeof Bun === 'undefined') throw new Error('the bun client runs only under the Bun runtime')
    const sql = new Bun.SQL(url, { max })
    // What an app writes, sql`... ${value} ...`: named prepared statements, cached per text,
    // parameterless ones included (sql.unsafe without values would use the simple protocol).
    const run = (s) => (text, values = []) => {
      const strings = templateFor(text)
      return strings ? s(strings, ...values) : s.unsafe(text, values)
    }
    return {
      query: run(sql),
      transaction: (fn) => sql.begin((tx) => fn({ query: run(tx) })),
      end: () => sql.close({ timeout: 5 }),
    }
  },
}

module.exports = { clients }
