'use strict'
// `npm run lint`: rustfmt, and clippy with warnings denied for the native and the WebAssembly
// builds (the wasm32-wasip1-threads target is added first if rustup can). Stops at the first
// failure.

const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { ensurePrerequisites, WASM_TARGET } = require('./prerequisites')

const root = path.join(__dirname, '..')

const STEPS = [
  ['cargo', ['fmt', '--check']],
  ['cargo', ['clippy', '--all-targets', '--quiet', '--', '-D', 'warnings']],
  // napi-build links emnapi into the WebAssembly build; outside `napi build` it needs the path.
  ['cargo', ['clippy', '--target', WASM_TARGET, '--lib', '--quiet', '--', '-D', 'warnings'], { EMNAPI_LINK_DIR: path.join(root, 'node_modules', 'emnapi', 'lib', WASM_TARGET) }],
]

function main() {
  if (!ensurePrerequisites('npm run lint', { wasm: true, tools: false })) return 1
  for (const [command, args, env] of STEPS) {
    console.log(`> ${command} ${args.join(' ')}`)
    const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
    if (r.status !== 0) return r.status || 1
  }
  return 0
}

process.exitCode = main()
