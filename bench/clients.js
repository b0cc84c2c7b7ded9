'use strict'
// The clients under test, as a table: name → { version(), create(url, { max }), nodeArgs? }.
// create() resolves to one adapter shape so workloads never branch on the client:
//   query(text, values) → rows (array)      one statement on any pooled connection
//   transaction(fn)     → fn's result       fn(tx) gets { query } pinned to one connection
//   end()
// Adding a client is one more entry here.

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

function onepool(url, { max }) {
  const { createPool } = require(ROOT)
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

module.exports = { clients }
