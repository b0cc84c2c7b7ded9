'use strict'
// A module that subscribes at module scope, in a real Vite SSR dev server (`ssrLoadModule`, as
// Vite SSR frameworks run it): each reload after an edit replaces the subscription (Vite's module
// runner is recognised as a module loader), so each notification is handled once.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TEST_URL, uniqueName, waitFor } = require('../helpers/db')

const root = path.join(__dirname, '..', '..')

const SOURCE = `import { createPool } from 'onepool'
const state = globalThis.__onepoolViteListen
const evaluation = ++state.evaluations
export const db = createPool({ connectionString: state.url, applicationName: state.app, max: 3 })
db.listen(state.channel, (n) => state.handled.push([evaluation, n.payload]))
// edit: 0
`

for (const [label, ssr] of [
  ['onepool evaluated inline by Vite', undefined],
  ["with ssr.external: ['onepool']", { external: ['onepool'] }],
]) {
  test(`Vite SSR (${label}): a module-scope subscription reloaded after edits handles each notification once`, { timeout: 60000 }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-vite-listen-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'vite-listen-app', private: true, type: 'module' }))
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'onepool'), 'dir')
    const file = path.join(dir, 'subscriber.js')
    fs.writeFileSync(file, SOURCE)
    const state = { url: TEST_URL, app: uniqueName('vite'), channel: uniqueName('vite'), evaluations: 0, handled: [] }
    globalThis.__onepoolViteListen = state
    const { createServer } = await import('vite')
    const server = await createServer({
      root: dir,
      configFile: false,
      logLevel: 'silent',
      appType: 'custom',
      server: { middlewareMode: true, hmr: false, watch: null },
      ssr,
    })
    let db
    try {
      for (let i = 1; i <= 5; i++) {
        if (i > 1) {
          // An edit that moves every line, then what Vite's watcher would do.
          fs.writeFileSync(file, `// a comment added above\n`.repeat(i) + SOURCE.replace('// edit: 0', `// edit: ${i}`))
          server.moduleGraph.invalidateAll()
        }
        ;({ db } = await server.ssrLoadModule('/subscriber.js'))
        assert.equal(state.evaluations, i)
        if (i === 1) assert.ok(await waitFor(() => db.stats().listening === 1))
        await db.notify(state.channel, `v${i}`)
        assert.ok(await waitFor(() => state.handled.length >= i), `notification ${i} was handled`)
      }
      await new Promise((r) => setTimeout(r, 100))
      assert.deepEqual(state.handled, [1, 2, 3, 4, 5].map((i) => [i, `v${i}`]))
    } finally {
      await server.close()
      if (db) await db.end()
      delete globalThis.__onepoolViteListen
    }
  })
}
