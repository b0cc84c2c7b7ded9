'use strict'
// Builds onepool's native addon or its WebAssembly build with napi-rs, and knows when a build is
// current, so that `npm install` and `npm test` build only when the sources changed. `napi build`
// is no cheap no-op (the WebAssembly build recompiles the crate every time, ~35 s on 2 cores), and
// cargo decides by mtimes, which a branch switch changes without changing a line.
// So a stamp in target/onepool-build/ holds a hash of everything the build reads (src/, the Cargo
// files, the Rust toolchain, the napi-rs and emnapi versions, RUSTFLAGS) and the size and mtime
// of the artifacts it wrote; both must match for the build to be current.
//
//   node scripts/build.js native|wasm              build (`npm run build`, `npm run build:wasm`)
//   node scripts/build.js native|wasm --if-stale   build only when the stamp does not match

const { spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { nativeTarget } = require('../lib/binding-missing')

const root = path.join(__dirname, '..')
const STAMPS = path.join(root, 'target', 'onepool-build')

/** What each build runs, writes and reads beyond the Rust sources; times measured on 2 cores. */
const BUILDS = {
  native: {
    label: 'native addon',
    napiArgs: [],
    artifacts: () => [`onepool.${nativeTarget()}.node`],
    packages: ['@napi-rs/cli'],
    takes: 'about 2 min the first time on 2 cores, ~25 s after a change',
  },
  wasm: {
    label: 'WebAssembly build',
    napiArgs: ['--target', 'wasm32-wasip1-threads'],
    artifacts: () => ['onepool.wasm32-wasi.wasm', 'onepool.wasi.cjs', 'wasi-worker.mjs'],
    packages: ['@napi-rs/cli', 'emnapi', '@emnapi/core', '@emnapi/runtime'],
    takes: '2-3 min the first time on 2 cores, ~35 s after a change',
  },
}

const RUST_INPUTS = ['Cargo.toml', 'Cargo.lock', 'build.rs', '.cargo/config.toml', 'src']
const BUILD_ENV = ['RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'CARGO_BUILD_RUSTFLAGS', 'CARGO_PROFILE_RELEASE_DEBUG']

function filesUnder(rel) {
  const full = path.join(root, rel)
  if (!fs.existsSync(full)) return []
  if (!fs.statSync(full).isDirectory()) return [rel]
  return fs
    .readdirSync(full)
    .sort()
    .flatMap((name) => filesUnder(path.join(rel, name)))
}

function packageVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return 'missing'
  }
}

/** A hash of everything the build of `kind` reads. */
function inputsHash(kind) {
  const hash = crypto.createHash('sha256')
  const add = (label, data) => hash.update(`${label}\0${data.length}\0`).update(data)
  add('kind', kind)
  for (const file of RUST_INPUTS.flatMap(filesUnder)) add(file.split(path.sep).join('/'), fs.readFileSync(path.join(root, file)))
  add('napi', JSON.stringify(require('../package.json').napi))
  for (const name of BUILDS[kind].packages) add(name, packageVersion(name))
  const rustc = spawnSync('rustc', ['-vV'], { cwd: root, encoding: 'utf8' })
  add('rustc', rustc.status === 0 ? rustc.stdout : 'missing')
  for (const name of BUILD_ENV) add(name, process.env[name] || '')
  return hash.digest('hex')
}

function artifactState(kind) {
  const state = {}
  for (const name of BUILDS[kind].artifacts()) {
    const stat = fs.statSync(path.join(root, name), { throwIfNoEntry: false })
    state[name] = stat ? { size: stat.size, mtimeMs: stat.mtimeMs } : null
  }
  return state
}

const stampFile = (kind) => path.join(STAMPS, `${kind}.json`)

/** Whether the artifacts of `kind` are the ones the last build wrote, from the current sources. */
function isCurrent(kind) {
  let stamp
  try {
    stamp = JSON.parse(fs.readFileSync(stampFile(kind), 'utf8'))
  } catch {
    return false
  }
  const artifacts = artifactState(kind)
  const same = Object.values(artifacts).every(Boolean) && JSON.stringify(artifacts) === JSON.stringify(stamp.artifacts)
  return same && stamp.inputs === inputsHash(kind)
}

/** Runs `napi build` for `kind`; returns its exit status. */
function build(kind) {
  const spec = BUILDS[kind]
  const inputs = inputsHash(kind)
  const started = Date.now()
  console.log(`onepool: building the ${spec.label} from source (cargo, release; ${spec.takes})…`)
  const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const args = [napi, 'build', '--platform', '--release', ...spec.napiArgs, '--js', 'binding.js', '--dts', 'binding.d.ts']
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  if (run.status !== 0) {
    console.error(`onepool: the ${spec.label} build failed after ${seconds} s (see cargo's output above).`)
    return run.status || 1
  }
  fs.mkdirSync(STAMPS, { recursive: true })
  fs.writeFileSync(stampFile(kind), JSON.stringify({ inputs, artifacts: artifactState(kind) }, null, 2))
  console.log(`onepool: built the ${spec.label} (${spec.artifacts()[0]}) in ${seconds} s.`)
  return 0
}

/** Builds `kind` unless it is current; returns the exit status. */
function ensureBuilt(kind) {
  if (isCurrent(kind)) {
    console.log(`onepool: the ${BUILDS[kind].label} (${BUILDS[kind].artifacts()[0]}) is up to date with src/; not rebuilding.`)
    return 0
  }
  return build(kind)
}

module.exports = { ensureBuilt, isCurrent, build }

if (require.main === module) {
  const args = process.argv.slice(2)
  const kinds = args.filter((a) => !a.startsWith('--'))
  const unknown = kinds.filter((k) => !BUILDS[k])
  if (!kinds.length || unknown.length) {
    console.error('usage: node scripts/build.js native|wasm [--if-stale]')
    process.exit(2)
  }
  for (const kind of kinds) {
    const status = args.includes('--if-stale') ? ensureBuilt(kind) : build(kind)
    if (status !== 0) process.exit(status)
  }
}
