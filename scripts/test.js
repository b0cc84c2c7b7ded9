'use strict'
// `npm test`: checks what the tests need (Rust's wasm32-wasip1-threads target, PgBouncer,
// openssl; installing what it can, scripts/prerequisites.js), builds the native addon and the
// WebAssembly build where the sources changed (scripts/build.js), starts one embedded PostgreSQL,
// runs every `__test__/**/*.test.js` with node's test runner (one file at a time: tests count
// server connections), then the core and TLS files again against the WebAssembly build
// (ONEPOOL_FORCE_WASM=1), then the Rust unit tests, and stops the server.
//
//   node scripts/test.js                 everything
//   node scripts/test.js <files>         only these files, with the build the environment selects
//                                        (no prerequisite check, no build: `npm run build` first)
//   node scripts/test.js --wasm [files]  the WebAssembly run only (default: core and TLS files)

const { spawnSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { startServer } = require('./embedded-server')
const { ensurePrerequisites } = require('./prerequisites')
const { ensureBuilt } = require('./build')

const root = path.join(__dirname, '..')

// The WebAssembly build runs the core suite minus what only the native addon can do. Both
// differences are by design (README, "WebAssembly fallback"): a WASM instance lives per
// evaluation of its loader and per thread, where the native addon is one image per process.
const WASM_NATIVE_ONLY_FILES = new Set([
  // Each worker thread instantiates its own WASM module, with its own pools: four workers do
  // not share one pool, and its connections end with the worker.
  '__test__/core/workers.test.js',
  // WASI has no file locks, so the machine-wide budget (advisory lock files) is native-only;
  // createPool({ machineMax }) says so in the WebAssembly build.
  '__test__/core/machine.test.js',
  // Clean exit sends Terminate from onepool's runtime while the process exits; in the
  // WebAssembly build JavaScript owns the sockets and the exiting process closes them.
  '__test__/core/exit.test.js',
  // Worker threads share one listening connection only where they share one pool; each
  // worker's WASM instance has its own (they still each get every notification once).
  '__test__/core/listen-workers.test.js',
  // The listening connection's goodbye at exit, as exit.test.js above.
  '__test__/core/listen-exit.test.js',
  // Deleting the globalThis pin and the module cache evaluates the loader again, which starts a
  // new WASM instance (with its own pool) each time. Re-evaluating the JS layer alone
  // (registry.test.js) runs in both builds.
  '__test__/core/registry-addon.test.js',
  // A worker thread's WASM instance has pools of its own (see workers.test.js above).
  '__test__/core/checkout-workers.test.js',
  // Needs the main thread and a worker on one connection; a worker's pools are its own here.
  '__test__/core/lone-read-blocked.test.js',
  // A new WASM instance per loader evaluation has its own pools and subscription keys, so a
  // module-scope subscription made through each is a subscription of its own.
  '__test__/core/listen-reregister.test.js',
])

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

// The core suite, plus the TLS files: in the WebAssembly build node:tls does the handshake.
function wasmFiles() {
  const tlsFiles = testFiles(path.join(root, '__test__', 'integration')).filter((f) => /^tls(-[\w-]+)?\.test\.js$/.test(path.basename(f)))
  const files = [...testFiles(path.join(root, '__test__', 'core')), ...tlsFiles]
  return files.filter((f) => !WASM_NATIVE_ONLY_FILES.has(path.relative(root, f).split(path.sep).join('/')))
}

function wasmBuilt() {
  return fs.existsSync(path.join(root, 'onepool.wasm32-wasi.wasm')) || fs.existsSync(path.join(root, 'onepool.wasm32-wasi.debug.wasm'))
}

/** Runs node's test runner on `files`; resolves with its exit code. */
function runFiles(files, env) {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  })
  return new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))))
}

async function main() {
  const args = process.argv.slice(2)
  const wasmOnly = args.includes('--wasm')
  const only = args.filter((a) => a !== '--wasm')
  const files = only.length ? only.map((f) => path.resolve(f)) : testFiles(path.join(root, '__test__'))
  const runWasm = wasmOnly || !only.length
  if (!only.length && !wasmOnly) {
    // Everything the run needs is checked before the builds, which take minutes.
    if (!ensurePrerequisites('npm test')) process.exit(1)
    for (const kind of ['native', 'wasm']) {
      const status = ensureBuilt(kind)
      if (status !== 0) process.exit(status)
    }
  }
  if (runWasm && !wasmBuilt()) {
    console.error('The WebAssembly build is missing: run `npm run build:wasm` first.')
    process.exit(1)
  }
  const server = await startServer()
  const env = {
    ...process.env,
    ONEPOOL_TEST_URL: server.superuserUrl,
    ONEPOOL_TEST_PORT: String(server.port),
    ONEPOOL_TEST_DATA: server.dataDir,
  }
  delete env.DATABASE_URL
  let code = 0
  try {
    if (!wasmOnly) code = await runFiles(files, env)
    // Also after native failures: a failure in both builds and one in only one read differently.
    if (runWasm) {
      console.log('\n# The core suite against the WebAssembly build (ONEPOOL_FORCE_WASM=1)\n')
      const started = Date.now()
      // Node warns that WASI is experimental once per thread, in every test process: noise here.
      const wasmEnv = { ...env, ONEPOOL_FORCE_WASM: '1', NODE_OPTIONS: `${env.NODE_OPTIONS || ''} --disable-warning=ExperimentalWarning`.trim() }
      const wasmCode = await runFiles(wasmOnly && only.length ? files : wasmFiles(), wasmEnv)
      code = code || wasmCode
      console.log(`# WebAssembly run: ${((Date.now() - started) / 1000).toFixed(1)} s${wasmCode ? ', FAILED' : ''}`)
    }
  } finally {
    await server.stop().catch((e) => console.error('could not stop the test server:', e))
  }
  if (code === 0 && !only.length && !wasmOnly && process.env.ONEPOOL_SKIP_CARGO_TEST !== '1') {
    const cargo = spawnSync('cargo', ['test', '--lib', '--quiet'], { cwd: root, stdio: 'inherit' })
    code = cargo.status ?? 1
  }
  process.exit(code)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
