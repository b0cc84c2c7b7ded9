'use strict'
// What to tell someone whose onepool has no binding it can load: which platform this is, which
// file and package the loader looked for, and the one command that fixes it, which differs
// between a source checkout (build it) and an installed package (install the platform package).
// The generated loader's own message ("npm has a bug related to optional dependencies…") is
// wrong for both: it is replaced here, and its underlying load errors become the `cause`.

const fs = require('node:fs')
const path = require('node:path')
const { clientError } = require('./errors')

const ROOT = path.join(__dirname, '..')

/** A source checkout builds its own addon; a published package has no Cargo.toml. */
function isCheckout() {
  return fs.existsSync(path.join(ROOT, 'Cargo.toml'))
}

function isMusl() {
  try {
    // The generated loader's first test: glibc's ldd is a script that never mentions musl.
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = process.report && process.report.getReport()
    return !(report && report.header && report.header.glibcVersionRuntime)
  }
}

/** napi-rs's name for this machine, as in `onepool.<target>.node` and `onepool-<target>`. */
function nativeTarget() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'gnu'
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The napi-rs target name of a Rust target triple in package.json#napi.targets. */
function targetOfTriple(triple) {
  const [cpu, , system, abi] = triple.split('-')
  const arch = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32' }[cpu] || cpu
  const platform = { windows: 'win32' }[system] || system
  return [platform, arch, abi].filter(Boolean).join('-')
}

/**
 * Whether this checkout lacks a native addon for this machine, so that the loader would fall back
 * to a WebAssembly build left from `npm run build:wasm` (or fail). A checkout says "build it"
 * instead: a developer who falls back silently tests another build, slower and per-thread.
 */
function checkoutLacksNative() {
  if (!isCheckout() || process.env.NAPI_RS_NATIVE_LIBRARY_PATH) return false
  const prefix = `onepool.${process.platform}-`
  const ours = (f) => f.startsWith(`${prefix}${process.arch}-`) || f === `${prefix}${process.arch}.node` || f === `${prefix}universal.node`
  if (fs.readdirSync(ROOT).some((f) => f.endsWith('.node') && ours(f))) return false
  try {
    require.resolve(`onepool-${nativeTarget()}`, { paths: [ROOT] })
    return false
  } catch {
    return true
  }
}

/** Every error in the loader's cause chain, outermost first. */
function chain(error) {
  const out = []
  for (let e = error; e != null && out.length < 50; e = e.cause) out.push(e)
  return out
}

/**
 * The BINDING_MISSING error for `loadError` (what requiring binding.js threw; `undefined` when
 * a checkout was refused before loading). `forceWasm`: ONEPOOL_FORCE_WASM=1 asked for the
 * WebAssembly build.
 */
function bindingMissing(loadError, { forceWasm = false } = {}) {
  const { version, napi } = require('../package.json')
  const checkout = isCheckout()
  const target = nativeTarget()
  const file = `onepool.${target}.node`
  const pkg = `onepool-${target}`
  // The generic "Cannot find native binding" wrapper says nothing; its cause chain holds the
  // loader's real errors (one per candidate file or package).
  const generic = loadError && /^Cannot find native binding|^Failed to load native binding/.test(loadError.message)
  const cause = generic ? loadError.cause : loadError
  let message
  if (forceWasm) {
    message =
      `ONEPOOL_FORCE_WASM=1 but onepool's WebAssembly build could not be loaded (looked for onepool.wasi.cjs with ` +
      `onepool.wasm32-wasi.wasm in ${ROOT}, and for the package onepool-wasm32-wasi). ` +
      (checkout ? 'Build it with `npm run build:wasm`.' : 'Install it with `npm install --cpu=wasm32 onepool-wasm32-wasi`.')
  } else {
    const local = path.join(ROOT, file)
    const failure = chain(cause).find((e) => e.code !== 'MODULE_NOT_FOUND' && !/^Cannot find module/.test(e.message))
    const what = fs.existsSync(local)
      ? `onepool's native addon for ${target} could not be loaded: ${local}${failure ? ` failed with "${failure.message.split('\n')[0]}"` : ''}.`
      : `onepool has no native addon for ${target}: looked for ${file} in ${ROOT} and for the package ${pkg}.`
    let fix
    if (checkout) {
      fix = 'This is a source checkout: build the addon with `npm run build` (needs Rust: https://rustup.rs).'
    } else if (napi.targets.map(targetOfTriple).includes(target)) {
      fix =
        `Install the prebuilt binary for this platform with \`npm install ${pkg}@${version}\` ` +
        '(npm leaves it out when the lockfile was made on another platform), or reinstall onepool.'
    } else {
      fix =
        `No prebuilt binary is published for ${target}: add the WebAssembly build with ` +
        '`npm install --cpu=wasm32 onepool-wasm32-wasi`, or build from a checkout of the repository (`npm install` builds it).'
    }
    message = `${what} ${fix}`
  }
  return clientError('BINDING_MISSING', message, cause)
}

module.exports = { bindingMissing, checkoutLacksNative, nativeTarget, isCheckout }
