'use strict'
// Runs node-postgres's own pg-pool test suite against onepool (or, for a baseline, against
// pg-pool itself), one test at a time, and prints how many pass and why each failure failed.
// It is a measuring tool, not part of `npm test`: the suite lives in node-postgres's repository.
//
//   node __test__/compat/pg-pool-suite.js <pg-pool dir> [--against=onepool|pg] [--grep=text] [--out=file.json]
//
// <pg-pool dir> is `packages/pg-pool` of a node-postgres checkout with its devDependencies
// installed (mocha, co, expect.js, lodash, bluebird, pg, pg-cursor); it is not modified. Its
// `test/` directory is copied next to a 10-line `index.js` that makes `new Pool(options)`
// `createPool({ ...options, name: <unique> })` (each pg Pool is a pool of its own; onepool shares
// pools by name). Each test runs alone in its own mocha process, because the suite's setup.js
// exits on the first unhandled rejection, which would take every later test in that file with
// it. The database is a fresh embedded PostgreSQL (scripts/embedded-server.js), reached through
// the PG* environment variables, as the suite expects.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startServer } = require('../../scripts/embedded-server')

const root = path.join(__dirname, '..', '..')

function parseArgs(argv) {
  const args = { dir: null, against: 'onepool', grep: null, out: null }
  for (const a of argv) {
    if (a.startsWith('--against=')) args.against = a.slice('--against='.length)
    else if (a.startsWith('--grep=')) args.grep = a.slice('--grep='.length)
    else if (a.startsWith('--out=')) args.out = a.slice('--out='.length)
    else args.dir = a
  }
  if (!args.dir || !['onepool', 'pg'].includes(args.against)) {
    console.error('usage: node __test__/compat/pg-pool-suite.js <pg-pool dir> [--against=onepool|pg] [--grep=text] [--out=file.json]')
    process.exit(2)
  }
  return args
}

/** A copy of the suite whose `require('../')` is the pool under test. */
function stage(dir, against) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-pool-suite-'))
  fs.cpSync(path.join(dir, 'test'), path.join(work, 'test'), { recursive: true })
  fs.symlinkSync(path.join(dir, 'node_modules'), path.join(work, 'node_modules'))
  const adapter =
    against === 'pg'
      ? `module.exports = require(${JSON.stringify(path.join(dir, 'index.js'))})\n`
      : [
          "'use strict'",
          `const { createPool } = require(${JSON.stringify(root)})`,
          'let n = 0',
          'class Pool {',
          '  constructor(options) {',
          '    return createPool({ ...(options || {}), name: `pg-pool-suite-${process.pid}-${++n}` })',
          '  }',
          '}',
          'module.exports = Pool',
          '',
        ].join('\n')
  fs.writeFileSync(path.join(work, 'index.js'), adapter)
  return work
}

const mocha = (work) => path.join(work, 'node_modules', '.bin', 'mocha')

/** Every test of the suite: `{ file, title }`, from mocha's dry run. */
function listTests(work, files) {
  const r = spawnSync(mocha(work), ['--dry-run', '--reporter', 'json', 'test/setup.js', ...files], { cwd: work, encoding: 'utf8' })
  const report = JSON.parse(r.stdout)
  return report.tests.map((t) => ({ file: t.file, title: t.fullTitle }))
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function runOne(work, test, env) {
  const r = spawnSync(
    mocha(work),
    ['--exit', '--timeout', '5000', 'test/setup.js', test.file, '--grep', `^${escapeRegExp(test.title)}$`],
    { cwd: work, encoding: 'utf8', timeout: 60000, env },
  )
  const text = `${r.stdout || ''}${r.stderr || ''}`
  const pass = r.status === 0 && /\b1 passing\b/.test(text) && !/failing/.test(text)
  const why = pass
    ? ''
    : text
        .split('\n')
        .filter((l) => /Error|expected|rror:|unhandledRejection|Uncaught/.test(l))
        .slice(0, 2)
        .map((l) => l.trim())
        .join(' | ')
        .slice(0, 300) || `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}, no error line`
  return { file: path.basename(test.file), title: test.title, pass, why }
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const dir = path.resolve(args.dir)
  const work = stage(dir, args.against)
  const files = fs
    .readdirSync(path.join(work, 'test'))
    .filter((f) => f.endsWith('.js') && f !== 'setup.js')
    .sort()
    .map((f) => path.join('test', f))
  const server = await startServer()
  try {
    const url = new URL(server.superuserUrl)
    const env = {
      ...process.env,
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: url.pathname.slice(1),
    }
    delete env.DATABASE_URL
    let tests = listTests(work, files)
    if (args.grep) tests = tests.filter((t) => t.title.includes(args.grep))
    const results = []
    for (const test of tests) {
      const result = runOne(work, test, env)
      results.push(result)
      console.log(`${result.pass ? 'pass' : 'FAIL'}  ${result.file}: ${result.title}${result.pass ? '' : `\n      ${result.why}`}`)
    }
    const passed = results.filter((r) => r.pass).length
    console.log(`\n${passed} of ${results.length} pass (against ${args.against})`)
    if (args.out) fs.writeFileSync(args.out, JSON.stringify(results, null, 1))
  } finally {
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
