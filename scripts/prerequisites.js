'use strict'
// What `npm test`, `npm run lint` and the Next.js end-to-end run need beyond npm's own
// dependencies, checked before any long build starts: Rust with the wasm32-wasip1-threads target
// (the WebAssembly build), PgBouncer (the pooler tests), openssl (the TLS tests' certificates) and,
// for the end-to-end run, Chromium (the example's page in a real browser). What is missing and can
// be had here is installed: the Rust target with rustup, the others with apt-get when running as
// root. Otherwise one line says what to install, and the caller stops.
//
// ONEPOOL_PGBOUNCER=/path/to/pgbouncer and ONEPOOL_CHROMIUM=/path/to/chromium name the binaries
// instead of looking for them.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const WASM_TARGET = 'wasm32-wasip1-threads'
// The tools the tests run, what for, and the variable that may name the binary.
const TOOLS = {
  pgbouncer: { for: 'the PgBouncer tests', variable: 'ONEPOOL_PGBOUNCER' },
  openssl: { for: "the TLS tests' certificates" },
  chromium: { for: "the end-to-end run's browser checks", variable: 'ONEPOOL_CHROMIUM' },
}
// Debian installs pgbouncer into /usr/sbin, which a non-root PATH usually lacks.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin']

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** The path of `command` on PATH (and in `extraDirs`), or null. */
function which(command, extraDirs = []) {
  const dirs = [...(process.env.PATH || '').split(path.delimiter), ...extraDirs].filter(Boolean)
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : ['']
  for (const dir of dirs) {
    for (const ext of exts) if (isExecutable(path.join(dir, command + ext))) return path.join(dir, command + ext)
  }
  return null
}

/** The pgbouncer binary: ONEPOOL_PGBOUNCER when set (null if that is not executable), else found. */
function findPgbouncer() {
  const named = process.env.ONEPOOL_PGBOUNCER
  if (named) return isExecutable(named) ? named : null
  return which('pgbouncer', SBIN)
}

/** The Chromium binary: ONEPOOL_CHROMIUM when set (null if that is not executable), else found. */
function findChromium() {
  const named = process.env.ONEPOOL_CHROMIUM
  if (named) return isExecutable(named) ? named : null
  return which('chromium') || which('chromium-browser') || which('google-chrome')
}

const FIND = { pgbouncer: findPgbouncer, openssl: () => which('openssl'), chromium: findChromium }

function wasmTargetInstalled() {
  const r = spawnSync('rustc', ['--print', 'target-libdir', '--target', WASM_TARGET], { cwd: root, encoding: 'utf8' })
  if (r.status !== 0) return false
  const dir = r.stdout.trim()
  return fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.startsWith('libcore-'))
}

const say = (line) => console.log(`onepool: ${line}`)

/** Runs `command`; its output is shown unless `quiet` (then only its errors are). */
function run(command, args, { env = {}, quiet = false } = {}) {
  const stdio = ['ignore', quiet ? 'ignore' : 'inherit', 'inherit']
  return spawnSync(command, args, { cwd: root, stdio, env: { ...process.env, ...env } }).status === 0
}

/** Rust, and its wasm32-wasip1-threads target when `wasm`; returns the lines of what is missing. */
function ensureRust({ wasm }) {
  if (!which('cargo') || !which('rustc')) return ['Rust is not installed (cargo, rustc): install it from https://rustup.rs']
  if (!wasm || wasmTargetInstalled()) return []
  if (which('rustup')) {
    say(`adding the Rust target ${WASM_TARGET} for the WebAssembly build (rustup target add ${WASM_TARGET})…`)
    run('rustup', ['target', 'add', WASM_TARGET])
    if (wasmTargetInstalled()) return []
  }
  return [`the Rust target ${WASM_TARGET} is not installed: \`rustup target add ${WASM_TARGET}\` (or your distribution's rust-std for it)`]
}

/**
 * `tools` (names in TOOLS), installed with apt-get as root where missing (when `install`);
 * returns the lines of what is still missing.
 */
function ensureTools(tools, { install }) {
  for (const tool of tools) {
    const variable = TOOLS[tool].variable
    if (variable && process.env[variable] && !FIND[tool]()) {
      return [`${variable}=${process.env[variable]} is not an executable file: point it at ${tool}, or unset it`]
    }
  }
  const missing = () => tools.filter((tool) => !FIND[tool]())
  let packages = missing()
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (packages.length && install && asRoot && which('apt-get')) {
    const started = Date.now()
    say(`installing ${packages.join(' and ')} with apt-get (for ${packages.map((p) => TOOLS[p].for).join(' and ')})…`)
    // dpkg's progress (unpacking, triggers) is noise here; its errors still show.
    const apt = { env: { DEBIAN_FRONTEND: 'noninteractive' }, quiet: true }
    if (run('apt-get', ['update', '-qq'], apt)) run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], apt)
    packages = missing()
    if (!packages.length) say(`installed in ${((Date.now() - started) / 1000).toFixed(0)} s.`)
  }
  if (!packages.length) return []
  const how = process.platform === 'darwin' ? `brew install ${packages.join(' ')}` : `apt-get install ${packages.join(' ')}` + (asRoot ? '' : ' as root')
  const named = packages
    .filter((p) => TOOLS[p].variable)
    .map((p) => `, or set ${TOOLS[p].variable} to a ${p} binary`)
    .join('')
  const list = packages.map((p) => `${p} (for ${TOOLS[p].for})`).join(' and ')
  return [`${list} ${packages.length > 1 ? 'are' : 'is'} not installed: install with \`${how}\`${named}`]
}

/**
 * Makes sure the prerequisites are there (`wasm`: the Rust target, `tools`: pgbouncer, openssl,
 * `browser`: chromium); prints one line per missing prerequisite, prefixed with `who`, and returns
 * false when anything is still missing.
 */
function ensurePrerequisites(who, { wasm = true, tools = true, browser = false } = {}) {
  const missing = ensureRust({ wasm })
  const wanted = [...(tools ? ['pgbouncer', 'openssl'] : []), ...(browser ? ['chromium'] : [])]
  // Without Rust nothing builds: say what else is missing, but install nothing yet.
  if (wanted.length) missing.push(...ensureTools(wanted, { install: missing.length === 0 }))
  for (const line of missing) console.error(`${who} cannot run: ${line}.`)
  return missing.length === 0
}

module.exports = { ensurePrerequisites, findPgbouncer, findChromium, which, WASM_TARGET }
