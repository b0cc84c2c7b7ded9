'use strict'
// One large result (issue #20, point 6): how long it takes, how long the event loop is blocked
// while it arrives and is decoded, and the peak RSS, for onepool, pg and postgres.js. Each run is
// its own process (no shared JIT state or heap), runs are interleaved client by client, and
// every run is bounded by a watchdog.
//
//   node bench/large-result.js [--reps=5] [--rows=1000000] [--clients=onepool,pg,postgres]
//                              [--before=/path/to/other/onepool/checkout]
//
// --before adds an "onepool-before" client loaded from another checkout (e.g. /work/main) to
// compare two versions of onepool; --clients=...,onepool-io-thread adds onepool with every reply
// read by its I/O thread. Without DATABASE_URL an embedded Postgres is started.
//
// In each run: connect, one 10,000-row warm-up query of the same shape, then the measured query.
// "cpu ms" is the process's CPU time over the query, all threads (less sensitive than wall time
// to other load on the machine). "longest gap" is the longest time between two ticks of a 1 ms setInterval running during the
// measured query (so ~1 ms means never blocked); "p99 delay" is perf_hooks'
// monitorEventLoopDelay over the same span.

const { spawn } = require('node:child_process')
const path = require('node:path')
const { performance, monitorEventLoopDelay } = require('node:perf_hooks')

const ROOT = path.join(__dirname, '..')
const COLUMNS = `i as id, i::int8 * 1000003 as big, 'label ' || i as label, i / 7.0::float8 as score, i % 2 = 0 as flag,
  timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute' as created`
const query = (rows) => `select ${COLUMNS} from generate_series(1, ${rows}) i`
const RUN_LIMIT_MS = 120000

function onepoolAt(root) {
  return async (url) => {
    const { createPool } = require(root)
    const pool = createPool({ connectionString: url, max: 1, name: `large-result-${process.pid}` })
    return { query: async (text) => (await pool.query(text)).rows, end: () => pool.end() }
  }
}

const CLIENTS = {
  onepool: onepoolAt(ROOT),
  'onepool-before': (url) => onepoolAt(process.env.LARGE_RESULT_BEFORE)(url),
  // Every reply read by the I/O thread (no reading on the JavaScript thread, src/napi/watch.rs).
  'onepool-io-thread': (url) => {
    process.env.ONEPOOL_READ_ON_JS_THREAD = '0'
    return onepoolAt(ROOT)(url)
  },
  async pg(url) {
    const { Pool } = require('pg')
    const pool = new Pool({ connectionString: url, max: 1 })
    return { query: async (text) => (await pool.query(text)).rows, end: () => pool.end() }
  },
  async postgres(url) {
    const sql = require('postgres')(url, { max: 1, onnotice: () => {} })
    return { query: (text) => sql.unsafe(text, [], { prepare: true }), end: () => sql.end({ timeout: 5 }) }
  },
}

/** Child: one measured query; prints one JSON line. */
async function measure(name, rows) {
  const url = process.env.LARGE_RESULT_URL
  const db = await CLIENTS[name](url)
  const warm = await db.query(query(10000))
  if (warm.length !== 10000) throw new Error(`warm-up returned ${warm.length} rows`)
  if (global.gc) global.gc()
  const rssBefore = process.memoryUsage().rss
  const delay = monitorEventLoopDelay({ resolution: 1 })
  let last = performance.now()
  let longestGap = 0
  let ticks = 0
  const sampler = setInterval(() => {
    const now = performance.now()
    longestGap = Math.max(longestGap, now - last)
    last = now
    ticks++
  }, 1)
  delay.enable()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const result = await db.query(query(rows))
  const totalMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  longestGap = Math.max(longestGap, performance.now() - last)
  delay.disable()
  clearInterval(sampler)
  if (result.length !== rows) throw new Error(`${name} returned ${result.length} rows, not ${rows}`)
  const peakRss = process.resourceUsage().maxRSS * 1024
  await db.end()
  console.log(
    JSON.stringify({ name, rows, totalMs, cpuMs: (cpu.user + cpu.system) / 1000, longestGapMs: longestGap, p99DelayMs: delay.percentile(99) / 1e6, ticks, rssBefore, peakRss }),
  )
}

function runChild(name, rows, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', __filename, '--child', name, String(rows)], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const watchdog = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS)
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog)
      if (code !== 0) return reject(new Error(`${name}: exited with ${code ?? signal}`))
      resolve(JSON.parse(out.trim().split('\n').pop()))
    })
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (xs, digits = 0) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`

async function main() {
  const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')))
  const reps = Number(args.reps || 5)
  const rows = Number(args.rows || 1000000)
  const names = (args.clients || 'onepool,pg,postgres').split(',')
  if (args.before) names.splice(1, 0, 'onepool-before')
  for (const n of names) if (!CLIENTS[n]) throw new Error(`unknown client ${n}`)
  let server = null
  let url = process.env.DATABASE_URL
  if (!url) {
    server = await require('../scripts/embedded-server').startServer()
    url = server.superuserUrl
  }
  const env = { ...process.env, LARGE_RESULT_URL: url, LARGE_RESULT_BEFORE: args.before ? path.resolve(args.before) : '' }
  const runs = Object.fromEntries(names.map((n) => [n, []]))
  try {
    for (let r = 0; r < reps; r++) {
      // Rotate the order each repetition, so no client always runs first on a cold server.
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + r) % names.length]
        const m = await runChild(name, rows, env)
        runs[name].push(m)
        console.error(`rep ${r + 1} ${name}: ${m.totalMs.toFixed(0)} ms (cpu ${m.cpuMs.toFixed(0)} ms), longest gap ${m.longestGapMs.toFixed(1)} ms, peak RSS ${(m.peakRss / 2 ** 20).toFixed(0)} MiB`)
      }
    }
  } finally {
    if (server) await server.stop()
  }
  console.log(`\n${rows.toLocaleString('en-US')} rows × 6 columns, ${reps} interleaved runs each; median (min–max)\n`)
  console.log('| client | total ms | cpu ms | longest event-loop gap ms | p99 loop delay ms | peak RSS MiB |')
  console.log('|---|---|---|---|---|---|')
  for (const name of names) {
    const m = runs[name]
    console.log(
      `| ${name} | ${fmt(m.map((x) => x.totalMs))} | ${fmt(m.map((x) => x.cpuMs))} | ${fmt(m.map((x) => x.longestGapMs), 1)} | ${fmt(m.map((x) => x.p99DelayMs), 1)} | ${fmt(m.map((x) => x.peakRss / 2 ** 20))} |`,
    )
  }
}

if (process.argv[2] === '--child') {
  const watchdog = setTimeout(() => process.exit(3), RUN_LIMIT_MS)
  watchdog.unref()
  measure(process.argv[3], Number(process.argv[4])).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
