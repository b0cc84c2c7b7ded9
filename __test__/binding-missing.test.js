'use strict'
// A package without a loadable binding fails with one OnepoolError, BINDING_MISSING, that names
// the platform, what was looked for and the command that fixes it, never with the generated
// loader's "npm has a bug related to optional dependencies". Each case is a copy of the package
// (its published `files`) in a temp dir, required in a child process: an installed package, a
// checkout (with Cargo.toml), with and without the WebAssembly build, with a broken `.node`.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const pkg = require('../package.json')
const WASM_FILES = ['onepool.wasi.cjs', 'onepool.wasm32-wasi.wasm', 'wasi-worker.mjs']

// The target this machine's build was written for, read off the artifact `npm run build` made.
const nativeFile = fs.readdirSync(root).find((f) => /^onepool\.[a-z0-9_-]+\.node$/.test(f))
const target = nativeFile && nativeFile.slice('onepool.'.length, -'.node'.length)

/** A copy of the package in a temp dir: its `files`, plus `extra` from the checkout. */
function copyPackage(t, { checkout = false, extra = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-binding-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const f of [...pkg.files, 'package.json', ...extra]) fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true })
  if (checkout) fs.copyFileSync(path.join(root, 'Cargo.toml'), path.join(dir, 'Cargo.toml'))
  // Its dependencies (pg-types, and the WASI runtime for the WebAssembly build), not onepool's
  // platform packages: node_modules of the checkout has none.
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  return dir
}

const REPORT = `
  const report = (e) => {
    const causes = []
    for (let c = e && e.cause; c && causes.length < 20; c = c.cause) causes.push({ message: String(c.message) })
    console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, causes }))
  }`

/** Loads the copy in a child process (CommonJS, or the ESM entry); returns what it threw or loaded. */
function load(dir, { env = {}, esm = false } = {}) {
  const script = esm
    ? `${REPORT}
      import(${JSON.stringify(path.join(dir, 'index.mjs'))}).then(
        (m) => console.log(JSON.stringify({ loaded: m.processStats().build })), report)`
    : `${REPORT}
      try { console.log(JSON.stringify({ loaded: require(${JSON.stringify(dir)}).processStats().build })) } catch (e) { report(e) }`
  const childEnv = { ...process.env, ...env }
  for (const name of ['ONEPOOL_FORCE_WASM', 'NAPI_RS_FORCE_WASI', 'NAPI_RS_NATIVE_LIBRARY_PATH']) if (!(name in env)) delete childEnv[name]
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '-e', script], { env: childEnv, encoding: 'utf8', timeout: 60000 })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

function assertMissing(result) {
  assert.equal(result.name, 'OnepoolError', JSON.stringify(result))
  assert.equal(result.code, 'BINDING_MISSING')
  assert.doesNotMatch(result.message, /npm has a bug|optional dependencies \(https/)
  for (const c of result.causes) assert.doesNotMatch(c.message, /npm has a bug/)
}

test('the native build this test compares against is there', () => {
  assert.ok(target, 'no onepool.<target>.node at the repository root: `npm test` builds it')
})

test('an installed package without its platform binary: BINDING_MISSING naming the platform package to install', (t) => {
  const dir = copyPackage(t)
  for (const esm of [false, true]) {
    const r = load(dir, { esm })
    assertMissing(r)
    assert.match(r.message, new RegExp(`no native addon for ${target}\\b`))
    assert.ok(r.message.includes(`onepool.${target}.node in ${dir}`), r.message)
    assert.ok(r.message.includes(`\`npm install onepool-${target}@${pkg.version}\``), r.message)
    // The cause is the loader's own record of what it tried.
    assert.ok(r.causes.some((c) => c.message.startsWith(`Cannot find module './onepool.${target}.node'`)), JSON.stringify(r.causes))
  }
})

test('a checkout without its native addon says `npm run build`, even when the WebAssembly build is there', (t) => {
  for (const extra of [[], WASM_FILES]) {
    const r = load(copyPackage(t, { checkout: true, extra }))
    assertMissing(r)
    assert.match(r.message, new RegExp(`no native addon for ${target}\\b`))
    assert.match(r.message, /source checkout: build the addon with `npm run build`/)
  }
})

test('an installed package without a native addon still falls back to its WebAssembly build', (t) => {
  const r = load(copyPackage(t, { extra: WASM_FILES }))
  assert.deepEqual(r, { loaded: 'wasm' })
})

test('ONEPOOL_FORCE_WASM=1 without the WebAssembly build: BINDING_MISSING with the command that adds it', (t) => {
  const checkout = load(copyPackage(t, { checkout: true }), { env: { ONEPOOL_FORCE_WASM: '1' } })
  assertMissing(checkout)
  assert.match(checkout.message, /ONEPOOL_FORCE_WASM=1 but onepool's WebAssembly build could not be loaded/)
  assert.match(checkout.message, /`npm run build:wasm`/)
  const installed = load(copyPackage(t), { env: { ONEPOOL_FORCE_WASM: '1' } })
  assertMissing(installed)
  assert.match(installed.message, /`npm install --cpu=wasm32 onepool-wasm32-wasi`/)
})

test('a native addon that cannot be loaded: BINDING_MISSING naming the file and the loader error', (t) => {
  const dir = copyPackage(t)
  fs.writeFileSync(path.join(dir, nativeFile), 'not a shared library')
  const r = load(dir)
  assertMissing(r)
  assert.ok(r.message.includes(`native addon for ${target} could not be loaded: ${path.join(dir, nativeFile)} failed with`), r.message)
  assert.ok(r.causes.some((c) => !c.message.startsWith('Cannot find module') && c.message.includes(nativeFile)), JSON.stringify(r.causes))
})
