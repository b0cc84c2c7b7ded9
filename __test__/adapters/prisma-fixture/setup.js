'use strict'
// Generates the Prisma client of prisma/schema.prisma, offline, and makes it loadable by Node:
//   node __test__/adapters/prisma-fixture/setup.js
// 1. `prisma generate` with the Rust-free `prisma-client` generator. It needs no engine, but the
//    CLI looks for the schema engine first; PRISMA_SCHEMA_ENGINE_BINARY pointing at any existing
//    file satisfies that (the binary is never run), so nothing is downloaded.
// 2. The generator writes TypeScript (with `.ts` import specifiers); each file is transpiled to
//    CommonJS next to it, as a bundler would, so `require('../generated/prisma/client')` works.
// Skipped when generated/ already matches the schema and the installed versions.

const { spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')

const dir = __dirname
const schemaFile = path.join(dir, 'prisma', 'schema.prisma')
const outDir = path.join(dir, 'generated', 'prisma')
const stampFile = path.join(dir, 'generated', '.stamp')

/** TypeScript source → CommonJS, the way the test evaluates it (no type checking). */
function transpile(source, fileName) {
  const ts = require('typescript')
  return ts.transpileModule(source, {
    fileName,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      rewriteRelativeImportExtensions: true,
    },
  }).outputText
}

function stamp() {
  const version = (name) => require(`${name}/package.json`).version
  return crypto
    .createHash('sha256')
    .update(fs.readFileSync(schemaFile))
    .update(`${version('prisma')} ${version('@prisma/client')} ${version('typescript')}`)
    .update(fs.readFileSync(__filename))
    .digest('hex')
}

function generate() {
  const wanted = stamp()
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === wanted) return { skipped: true }
  fs.rmSync(path.join(dir, 'generated'), { recursive: true, force: true })
  const cli = path.join(path.dirname(require.resolve('prisma/package.json')), 'build', 'index.js')
  const env = {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, // any existing file; see above
    CHECKPOINT_DISABLE: '1', // no update check
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  }
  const r = spawnSync(process.execPath, [cli, 'generate', '--schema', schemaFile], { cwd: dir, env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`prisma generate failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        fs.writeFileSync(full.slice(0, -3) + '.js', transpile(fs.readFileSync(full, 'utf8'), full))
      }
    }
  }
  walk(outDir)
  fs.writeFileSync(stampFile, wanted)
  return { skipped: false }
}

module.exports = { generate, transpile, outDir }

if (require.main === module) {
  const { skipped } = generate()
  console.log(skipped ? 'generated/ is up to date' : `generated ${path.relative(process.cwd(), outDir)}`)
}
