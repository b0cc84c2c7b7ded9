'use strict'
// Every JavaScript and TypeScript block in the README and in the reference pages it links to
// (docs/*.md) compiles, as a user's project would compile it (TypeScript strict, `nodenext`,
// against the real kysely, drizzle-orm, ... packages), and the blocks marked `<!-- runs -->` also
// run against the test server. A snippet can never rot, wherever it moved. Every relative link of
// those pages leads to a file that exists and, with a `#fragment`, to a heading in it.
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

/** The pages whose snippets and links are checked, relative to the repository root. */
function pages() {
  const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md'))
  return ['README.md', ...docs.sort().map((f) => `docs/${f}`)]
}

/** Every page's code blocks: { page, lang, code, line, runs }. */
function blocks() {
  return pages().flatMap((page) => blocksOf(page).map((b) => ({ page, ...b })))
}

/** One page's code blocks: { lang, code, line, runs }. */
function blocksOf(page) {
  const lines = fs.readFileSync(path.join(root, page), 'utf8').split('\n')
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

/** A page's path as part of a file name: docs/tls.md -> docs-tls. */
const slugOf = (page) => page.replace(/\.md$/, '').replace(/[^\w]+/g, '-')

/** The file a block becomes: CommonJS blocks as .cts, the rest as ES modules (.mts). */
function fileFor(b, n) {
  const commonjs = /\brequire\(/.test(b.code) && !/^\s*import\s/m.test(b.code)
  return `block-${String(n).padStart(2, '0')}-${slugOf(b.page)}-line-${b.line}.${commonjs ? 'cts' : 'mts'}`
}

test('every code block of the README and docs/ type-checks (strict, nodenext) against the real packages', () => {
  const all = blocks()
  assert.ok(all.filter((b) => b.page === 'README.md').length >= 10, 'fewer than 10 code blocks found in README.md')
  assert.ok(all.some((b) => b.page !== 'README.md'), 'no code blocks found in docs/')
  const pageOf = new Map(all.map((b, n) => [fileFor(b, n).replace(/\.\w+$/, ''), b.page]))
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
      .map((l) =>
        l.replace(/^.*(block-\d+-[\w-]+?-line-(\d+))\.\w+\((\d+),\d+\)/, (_, file, line, at) => `${pageOf.get(file)} line ${Number(line) + Number(at)}`),
      )
    assert.deepEqual(errors, [], errors.join('\n'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the blocks marked to run do, against the test server', async () => {
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
      const file = path.join(dir, `${slugOf(b.page)}-line-${b.line}.mjs`)
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
      assert.equal(run.status, 0, `${b.page} block at line ${b.line} failed:\n${run.stderr}`)
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    await admin(`drop schema ${schema} cascade`)
  }
})

/** A page's lines outside fenced code blocks (a `# comment` in a shell block is no heading). */
function prose(file) {
  let fenced = false
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced
        return ''
      }
      return fenced ? '' : line
    })
}

/** The fragments GitHub gives a Markdown file's headings (lower case, punctuation dropped, -1 for repeats). */
function anchorsOf(file) {
  const seen = new Map()
  const anchors = new Set()
  for (const line of prose(file)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!m) continue
    const text = m[1].replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) || 0
    seen.set(base, n + 1)
    anchors.add(n ? `${base}-${n}` : base)
  }
  return anchors
}

test('every relative link of the README and docs/ leads to a file that exists, and to a heading in it', () => {
  const broken = []
  let checked = 0
  for (const page of pages()) {
    const from = path.join(root, page)
    prose(from).forEach((line, i) => {
      for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
        checked++
        const [file, fragment] = target.split('#')
        const resolved = file ? path.resolve(path.dirname(from), decodeURIComponent(file)) : from
        if (!fs.existsSync(resolved)) broken.push(`${page}:${i + 1}: ${target} (no such file)`)
        else if (fragment !== undefined && !(resolved.endsWith('.md') && anchorsOf(resolved).has(fragment)))
          broken.push(`${page}:${i + 1}: ${target} (no heading #${fragment} there)`)
      }
    })
  }
  assert.ok(checked >= 40, `only ${checked} links found`)
  assert.deepEqual(broken, [])
})
