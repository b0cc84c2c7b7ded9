'use strict'
// `prepare`: npm runs it after `npm install` / `npm ci` in this directory (a checkout, or a git
// dependency), never when onepool is installed from the registry, whose platform packages carry
// prebuilt binaries. It leaves a working package: where no prebuilt binary for this platform is
// installed it builds the native addon from source, unless the one there is current.
//
// ONEPOOL_SKIP_BUILD=1 skips it (e.g. when the built files are copied in from elsewhere).

const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { nativeTarget } = require('../lib/binding-missing')
const { ensureBuilt } = require('./build')

const root = path.join(__dirname, '..')

function main() {
  // npm also runs `prepare` before `npm pack` / `npm publish`: the tarball carries no binary.
  if (['pack', 'publish'].includes(process.env.npm_command)) return 0
  if (process.env.ONEPOOL_SKIP_BUILD === '1') {
    console.log('onepool: ONEPOOL_SKIP_BUILD=1, not building the native addon.')
    return 0
  }
  const prebuilt = `onepool-${nativeTarget()}`
  try {
    require.resolve(prebuilt, { paths: [root] })
    console.log(`onepool: using the prebuilt binary from ${prebuilt}; nothing to build.`)
    return 0
  } catch {
    // Not installed: build from source.
  }
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(
      `onepool: no prebuilt binary for ${nativeTarget()} is installed and Rust is not, so the native addon cannot be built: ` +
        'install Rust (https://rustup.rs) and run `npm run build`.',
    )
    return 1
  }
  return ensureBuilt('native')
}

process.exitCode = main()
