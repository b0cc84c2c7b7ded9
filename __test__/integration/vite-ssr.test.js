'use strict'
// onepool in a real Vite SSR dev server (`ssrLoadModule`, what Vite SSR frameworks run on every
// request), with onepool linked: the app's node_modules/onepool is a symlink to this checkout, as
// `npm link` or a workspace makes it. Vite then evaluates a linked package's ESM entry inline,
// without a `require` in scope (ReferenceError: require is not defined, before index.mjs loaded
// index.js with createRequire); with `ssr.external: ['onepool']` Node imports it. Both must query.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TEST_URL, uniqueName } = require('../helpers/db')

const root = path.join(__dirname, '..', '..')

/** A Vite app in a temp dir whose node_modules/onepool links to this checkout. */
function makeApp(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-vite-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'vite-ssr-app', private: true, type: 'module' }))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'onepool'), 'dir')
  fs.writeFileSync(
    path.join(dir, 'db.js'),
    `import { createPool } from 'onepool'
export async function selectOne(connectionString, name) {
  const pool = createPool({ connectionString, name, max: 1 })
  try {
    return (await pool.query('select 1 as one')).rows
  } finally {
    await pool.end()
  }
}
`,
  )
  return dir
}

for (const [label, ssr] of [
  ['linked, evaluated inline by Vite', undefined],
  ["linked, with ssr.external: ['onepool']", { external: ['onepool'] }],
]) {
  test(`Vite SSR (${label}) loads onepool and runs select 1`, { timeout: 60000 }, async (t) => {
    const { createServer } = await import('vite')
    const server = await createServer({
      root: makeApp(t),
      configFile: false,
      logLevel: 'silent',
      appType: 'custom',
      server: { middlewareMode: true, hmr: false, watch: null },
      ssr,
    })
    try {
      const { selectOne } = await server.ssrLoadModule('/db.js')
      assert.deepEqual(await selectOne(TEST_URL, uniqueName('vite')), [{ one: 1 }])
    } finally {
      await server.close()
    }
  })
}
