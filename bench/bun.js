'use strict'
// Finds the Bun runtime that runs the Bun.SQL reference cells. The `bun` devDependency's
// postinstall moves the binary from its platform package (@oven/bun-<os>-<arch>) to
// node_modules/bun/bin/bun.exe; where install scripts were skipped that file is a small
// placeholder and the binary is still in the platform package. BUN_BINARY overrides both,
// and a `bun` on PATH is the last resort. Every candidate must answer `--version`.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

function candidates() {
  const found = []
  if (process.env.BUN_BINARY) found.push(process.env.BUN_BINARY)
  const exe = process.platform === 'win32' ? 'bun.exe' : 'bun'
  found.push(path.join(ROOT, 'node_modules', 'bun', 'bin', 'bun.exe'))
  const arch = { x64: 'x64', arm64: 'aarch64' }[process.arch]
  const os = process.platform === 'win32' ? 'windows' : process.platform
  if (arch) {
    for (const variant of ['', '-baseline', '-musl', '-musl-baseline']) {
      found.push(path.join(ROOT, 'node_modules', '@oven', `bun-${os}-${arch}${variant}`, 'bin', exe))
    }
  }
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) found.push(path.join(dir, exe))
  return found
}

/** @returns {{ bin: string, version: string } | null} */
function findBun() {
  for (const bin of candidates()) {
    try {
      // the placeholder is a few hundred bytes of text: not worth executing
      if (fs.statSync(bin).size < 1_000_000) continue
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10000 }).trim()
      if (/^\d+\.\d+/.test(version)) return { bin, version }
    } catch {}
  }
  return null
}

module.exports = { findBun }
