'use strict'
// `npm test` after the build: starts one embedded PostgreSQL, runs every `__test__/**/*.test.js`
// with node's test runner (one file at a time: tests count server connections), then the
// Rust unit tests, and stops the server.

const { spawnSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { startServer } = require('./embedded-server')

const root = path.join(__dirname, '..')

function testFiles(dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'fixtures') out.push(...testFiles(full))
    } else if (entry.name.endsWith('.test.js') || entry.name.endsWith('.test.mjs')) {
      out.push(full)
    }
  }
  return out.sort()
}

async function main() {
  const only = process.argv.slice(2)
  const files = only.length ? only.map((f) => path.resolve(f)) : testFiles(path.join(root, '__test__'))
  const server = await startServer()
  const env = {
    ...process.env,
    ONEPOOL_TEST_URL: server.superuserUrl,
    ONEPOOL_TEST_PORT: String(server.port),
    ONEPOOL_TEST_DATA: server.dataDir,
  }
  delete env.DATABASE_URL
  let code = 1
  try {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
      cwd: root,
      env,
      stdio: 'inherit',
    })
    code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))))
  } finally {
    await server.stop().catch((e) => console.error('could not stop the test server:', e))
  }
  if (code === 0 && !only.length && process.env.ONEPOOL_SKIP_CARGO_TEST !== '1') {
    const cargo = spawnSync('cargo', ['test', '--lib', '--quiet'], { cwd: root, stdio: 'inherit' })
    code = cargo.status ?? 1
  }
  process.exit(code)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
