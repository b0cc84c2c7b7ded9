'use strict'
// Drives the Next.js example (examples/nextjs) for its end-to-end test (__test__/e2e/next.js) and
// its baseline benchmark (bench/next-dev.js): packs onepool as a user installs it, installs the
// example, starts the database, edits lib/db.ts and a route round after round under `next dev`
// and storms the 30 routes after each edit, sampling the role's connections.
//
//   node scripts/next-app --setup    only pack onepool and install the example's dependencies

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT, APP, PACK_DIR, LOG_DIR, DB_FILE, ROUTES, ROLE, ROLE_LIMIT, log } = require('./constants')
const { startDatabase } = require('./database')
const { NextServer, activeServers, get, storm, describeFailures, loggedFailures, waitForEdit, devEnv, freePort } = require('./server')

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
// The example's files

const variantSource = (variant) => fs.readFileSync(path.join(APP, 'variants', `${variant}.ts`), 'utf8')
const routeFile = (route) => path.join(APP, 'app', 'api', route, 'route.ts')
const EDGE_ROUTE = path.join(APP, 'app', 'api', 'edge', 'route.ts')
const LISTEN_ROUTE = path.join(APP, 'app', 'api', 'listen', 'route.ts')
const ADDED_LINE = '// (a line the end-to-end run added)\n'

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

/**
 * Sets the LISTEN route's ROUTE_EDIT to `edit`, with `edit % 3` lines added above it: every line
 * below them moves, as in a real edit.
 */
function editListenRoute(edit) {
  const src = fs.readFileSync(LISTEN_ROUTE, 'utf8').split(ADDED_LINE).join('')
  const edited = src.replace(/const ROUTE_EDIT = \d+ \/\/ e2e-edit/, `${ADDED_LINE.repeat(edit % 3)}const ROUTE_EDIT = ${edit} // e2e-edit`)
  if (edited === src && edit !== 0) throw new Error('app/api/listen/route.ts lacks ROUTE_EDIT')
  fs.writeFileSync(LISTEN_ROUTE, edited)
}

/** Puts lib/db.ts and the routes back as committed. */
function restoreFiles() {
  fs.writeFileSync(DB_FILE, variantSource('onepool'))
  for (const r of ROUTES) editRoute(r, 0)
  editListenRoute(0)
  fs.rmSync(path.dirname(EDGE_ROUTE), { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------
// One dev-server run: warm-up, then the edit rounds

/**
 * Runs `next dev` with `variant` in lib/db.ts and the rounds of edits. Returns per-round rows.
 * With `check(name, ok, detail)` it records checks (the test), without it only measures (the baselines).
 * `before(server)` runs once the server is up, `eachRound(server, round)` after each round's storm,
 * `after(server)` after the last round.
 */
async function devRun({ db, variant, bundler, rounds, check, before, eachRound, after: afterRounds, cleanup }) {
  const asserting = Boolean(check)
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
    if (cleanup) await cleanup()
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

function roundsTable(run) {
  return table(
    ['round', 'max', 'peak', 'failed', 'stale', 'edit seen (ms)', 'storm (ms)', 'after', 'createPool() calls so far'],
    run.rows.map((r) => [r.round, r.max, r.peak, `${r.failed}/30`, r.stale, r.editMs, r.stormMs, r.after ?? '', r.handles ?? '']),
  )
}

/** One line per run: peaks, failures and what the server logged for them. */
function runsTable(runs, rounds) {
  return [
    `## next dev, ${rounds} edits of lib/db.ts (max 5, one round max 3) + 1 warm-up round, 30 concurrent routes per round; role limit ${ROLE_LIMIT}`,
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
  ].join('\n')
}

/**
 * Packs and installs onepool into the example; `check(name, ok, detail)` records whether the
 * installed package loads there. Returns that.
 */
function prepare(check) {
  fs.mkdirSync(LOG_DIR, { recursive: true })
  log('packing onepool and installing the example’s dependencies')
  const pack = packOnepool()
  const installMs = installExample()
  log(`packed ${pack.files} files (${pack.natives.join(', ')}); npm install took ${(installMs / 1000).toFixed(1)} s`)
  return check('the installed onepool loads in the example', preflight.ok(), preflight.detail)
}

/** Starts the database, runs `fn(db)`, and stops everything after it (or on SIGINT/SIGTERM). */
async function withDatabase(fn) {
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
  try {
    return await fn(db)
  } finally {
    restoreFiles()
    await db.sampler.stop().catch(() => {})
    await db.admin.end().catch(() => {})
    await db.server.stop().catch((e) => log('could not stop PostgreSQL:', e.message))
  }
}

if (require.main === module) {
  if (process.argv[2] !== '--setup') throw new Error('usage: node scripts/next-app --setup')
  const ok = prepare((name, ok, detail) => {
    log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`)
    return ok
  })
  process.exitCode = ok ? 0 : 1
}

module.exports = { prepare, withDatabase, devRun, restoreFiles, editListenRoute, findNodeFiles, devEnv, table, roundsTable, runsTable, sh, EDGE_ROUTE }
