'use strict'
// Every JavaScript and TypeScript block in the README compiles, as a user's project would compile
// it (TypeScript strict, `nodenext`, against the real kysely, drizzle-orm, ... packages), and the
// blocks marked `<!-- runs -->` also run against the test server. A snippet can never rot.
//
// A block may use the names a snippet reader assumes (`db`, `pool`, `client`, `id`, `req`): they
// are declared in a prelude. A block preceded by `<!-- not checked: why -->` is skipped (shell
// output, a config file of another tool).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const CODE = new Set(['js', 'javascript', 'ts', 'typescript', 'mjs', 'cjs'])

/** The README's code blocks: { lang, code, line, runs }. */
function blocks() {
  const lines = fs.readFileSync(path.join(root, 'README.md'), 'utf8').split('\n')
  const out = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w+)\s*$/.exec(lines[i])
    if (!open) continue
    const indent = open[1].length
    const start = i
    const body = []
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i].slice(indent))
    const before = lines.slice(Math.max(0, start - 3), start).join('\n')
    if (!CODE.has(open[2]) || /<!-- not checked/.test(before)) continue
    out.push({ lang: open[2], code: body.join('\n'), line: start + 1, runs: /<!-- runs -->/.test(before) })
  }
  return out
}

const PRELUDE = `
import type { Pool, PoolClient } from 'onepool'
declare global {
  const db: Pool
  const pool: Pool
  const client: PoolClient
  const id: number
  const req: Request
}
export {}
`

/** The file a block becomes: CommonJS blocks as .cts, the rest as ES modules (.mts). */
function fileFor(b, n) {
  const commonjs = /\brequire\(/.test(b.code) && !/^\s*import\s/m.test(b.code)
  return `block-${String(n).padStart(2, '0')}-line-${b.line}.${commonjs ? 'cts' : 'mts'}`
}

test('every README code block type-checks (strict, nodenext) against the real packages', () => {
  const all = blocks()
  assert.ok(all.length >= 10, `only ${all.length} code blocks found`)
  // Inside the repository, so that `import 'onepool'` resolves to this package by its own name.
  const dir = fs.mkdtempSync(path.join(root, '__test__', '.readme-'))
  try {
    fs.writeFileSync(path.join(dir, 'prelude.d.ts'), PRELUDE)
    // What the Next.js snippets import as '@/lib/db': the README's own lib/db.ts.
    fs.mkdirSync(path.join(dir, 'lib'))
    fs.writeFileSync(path.join(dir, 'lib', 'db.ts'), "import { createPool } from 'onepool'\nexport const db = createPool({ max: 5 })\n")
    const files = all.map((b, n) => {
      const file = fileFor(b, n)
      // Each block is its own module: top-level names do not clash across blocks.
      fs.writeFileSync(path.join(dir, file), `${b.code}\nexport {}\n`)
      return file
    })
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          skipLibCheck: true,
          noUnusedLocals: false,
          paths: { '@/*': ['./*', './*.ts'] },
          allowImportingTsExtensions: true,
        },
        files: ['prelude.d.ts', 'lib/db.ts', ...files],
      }),
    )
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' })
    const errors = (tsc.stdout + tsc.stderr)
      .split('\n')
      .filter((l) => /error TS/.test(l))
      .map((l) => l.replace(/^.*block-\d+-line-(\d+)\.\w+\((\d+),\d+\)/, (_, line, at) => `README line ${Number(line) + Number(at)}`))
    assert.deepEqual(errors, [], errors.join('\n'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the README blocks marked to run do, against the test server', async () => {
  const { admin, TEST_URL, uniqueName } = require('./helpers/db')
  const ts = require('typescript')
  const runnable = blocks().filter((b) => b.runs)
  assert.ok(runnable.length >= 3, `only ${runnable.length} runnable blocks`)
  // The tables and names the snippets assume, in a schema of their own.
  const schema = uniqueName('readme')
  await admin(`create schema ${schema};
    create table ${schema}.users (id int8 primary key, email text, created_at timestamptz default now());
    insert into ${schema}.users (id, email) values (1, 'a@example.com'), (2, 'b@example.com');
    create table ${schema}.stock (id int primary key, n int);
    insert into ${schema}.stock values (42, 10);
    create table ${schema}.audit (item int);
    create table ${schema}.orders (id serial primary key, item int, created_at timestamptz default now())`)
  const dir = fs.mkdtempSync(path.join(root, '__test__', '.readme-run-'))
  try {
    for (const b of runnable) {
      const js = ts.transpileModule(b.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText
      const file = path.join(dir, `line-${b.line}.mjs`)
      fs.writeFileSync(
        file,
        `import { createPool } from 'onepool'
globalThis.db = globalThis.pool = createPool({ connectionString: process.env.URL, name: ${JSON.stringify(schema)}, searchPath: ${JSON.stringify(schema)} })
globalThis.id = 1
${js}
await db.end()
`,
      )
      const run = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, URL: TEST_URL }, timeout: 60000 })
      assert.equal(run.status, 0, `README block at line ${b.line} failed:\n${run.stderr}`)
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    await admin(`drop schema ${schema} cascade`)
  }
})
