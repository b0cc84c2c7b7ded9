'use strict'
// The package agrees with itself: platform packages vs napi targets, documented error codes vs
// the code, the no-panic rule on every N-API entry point, and the public typings.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const pkg = require('../package.json')

const PLATFORM = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
  'wasm32-wasip1-threads': 'wasm32-wasi',
}

test('npm/ holds exactly one platform package per napi target', () => {
  const expected = pkg.napi.targets.map((t) => PLATFORM[t]).sort()
  assert.ok(!expected.includes(undefined), 'every target has a known platform name')
  const dirs = fs.readdirSync(path.join(root, 'npm')).sort()
  assert.deepEqual(dirs, expected)
  for (const dir of dirs) {
    const sub = require(path.join(root, 'npm', dir, 'package.json'))
    assert.equal(sub.name, `${pkg.name}-${dir}`)
    assert.equal(sub.version, pkg.version)
  }
})

test('the README documents every client error code, and only those', () => {
  const { errorCodes } = require('..')
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 5))
  const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]).sort()
  assert.deepEqual(documented, [...errorCodes].sort())
  const rust = fs.readFileSync(path.join(root, 'src', 'error.rs'), 'utf8')
  for (const code of [...rust.matchAll(/CoreError::\w+(?:\([^)]*\)|\s*\{[^}]*\})?\s*=> "([A-Z_]+)"/g)].map((m) => m[1])) {
    assert.ok(errorCodes.includes(code), `${code} from src/error.rs is in errorCodes`)
  }
})

test('index.d.ts types exactly the client error codes (ClientErrorCode)', () => {
  const { errorCodes } = require('..')
  const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  const union = dts.slice(dts.indexOf('export type ClientErrorCode ='), dts.indexOf('\n\n', dts.indexOf('export type ClientErrorCode =')))
  const typed = [...union.matchAll(/\| '([A-Z_]+)'/g)].map((m) => m[1]).sort()
  assert.deepEqual(typed, [...errorCodes].sort())
})

test('every #[napi] function and method catches panics (none may cross into Node)', () => {
  const dir = path.join(root, 'src', 'napi')
  let checked = 0
  for (const file of fs.readdirSync(dir)) {
    const lines = fs.readFileSync(path.join(dir, file), 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (!/^\s*#\[napi/.test(line) || /#\[napi\(object\)\]/.test(line)) return
      const next = lines.slice(i + 1, i + 4).join('\n')
      if (!/\bfn\b/.test(next.split('{')[0])) return
      checked++
      assert.match(line, /catch_unwind/, `${file}:${i + 1} lacks catch_unwind`)
    })
  }
  assert.ok(checked >= 10, `found ${checked} entry points`)
})

test('the public typings compile against a usage file (tsc --noEmit)', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('every test file is picked up by the runner', () => {
  const stray = []
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'target', '.git', 'examples', 'npm'].includes(e.name)) continue
      const full = path.join(dir, e.name)
      if (e.isDirectory()) walk(full)
      else if (/\.(spec|test)\.[cm]?[jt]s$/.test(e.name) && !full.startsWith(path.join(root, '__test__') + path.sep)) stray.push(full)
      else if (/\.spec\.[cm]?[jt]s$/.test(e.name)) stray.push(full)
    }
  }
  walk(root)
  assert.deepEqual(stray, [], 'tests outside __test__/**/*.test.js would never run')
})
