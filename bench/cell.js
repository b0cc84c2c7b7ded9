'use strict'
// One measurement cell, in its own process so no client inherits another's JIT state, heap
// or sockets:  node bench/cell.js <client> <workload> [--duration=ms] [--warmup=ms]
// (`bun bench/cell.js …` for the Bun client: this file runs unchanged under either runtime).
// The database URL comes from BENCH_DATABASE_URL (kept out of argv). Prints one JSON line.
//
// `concurrency` async workers loop on the workload's op until the deadline; the warm-up runs
// the same loop first (opening every pooled connection, warming the JIT) and is not counted.
// A workload with query classes times each query through `time(class, fn)`, and the result
// carries p50/p99 per class; p50Us/p99Us are then its headline class's.

const { performance } = require('node:perf_hooks')
const { clients } = require('./clients')
const { byId } = require('./workloads')

const [clientName, workloadId, ...rest] = process.argv.slice(2)
const flags = Object.fromEntries(rest.map((a) => a.replace(/^--/, '').split('=')))
const durationMs = Number(flags.duration || 3000)
const warmupMs = Number(flags.warmup || 1000)
const url = process.env.BENCH_DATABASE_URL
const MAX_ERRORS = 100

const client = clients[clientName]
const workload = byId[workloadId]
if (!client || !workload || !url) {
  console.error('usage: BENCH_DATABASE_URL=... node bench/cell.js <client> <workload> [--duration=ms] [--warmup=ms]')
  process.exit(2)
}

// Bounded no matter what the client does: a hung query or pool ends the cell.
const watchdog = setTimeout(() => {
  console.error(`cell ${clientName}/${workloadId}: watchdog fired, still running after ${warmupMs + durationMs + 60000} ms`)
  process.exit(3)
}, warmupMs + durationMs + 60000)
watchdog.unref()

/** Records latencies per class while measuring; during the warm-up, only runs the query. */
function classTimer(samples) {
  return async (name, fn) => {
    if (!samples) return fn()
    const t0 = performance.now()
    const out = await fn()
    const list = samples.get(name)
    if (list) list.push(performance.now() - t0)
    else samples.set(name, [performance.now() - t0])
    return out
  }
}

async function loop(db, ms, samples) {
  const deadline = performance.now() + ms
  const time = classTimer(samples)
  let ops = 0
  let errors = 0
  let firstError = null
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      try {
        await workload.op(db, time)
      } catch (e) {
        errors++
        firstError = firstError || `${e.code || e.name}: ${e.message}`
        if (errors >= MAX_ERRORS) throw new Error(`${errors} errors, first: ${firstError}`)
        continue
      }
      // a workload without classes is one class: the whole op
      if (samples && !workload.classes) samples.get('op').push(performance.now() - t0)
      ops++
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: workload.concurrency }, worker))
  return { ops, errors, firstError, elapsedMs: performance.now() - start }
}

/** The q-quantile of sorted milliseconds, in microseconds; null for no samples. */
const quantileUs = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000 : null)

async function main() {
  const tConnect = performance.now()
  const db = await client.create(url, { max: workload.max })
  if (workload.setup) await workload.setup(db)
  const connectMs = performance.now() - tConnect

  await loop(db, warmupMs, null)

  const samples = new Map(workload.classes ? [] : [['op', []]])
  const cpu0 = process.cpuUsage()
  const run = await loop(db, durationMs, samples)
  const cpu = process.cpuUsage(cpu0)

  const percentiles = {}
  for (const [name, list] of samples) {
    list.sort((a, b) => a - b)
    percentiles[name] = { count: list.length, p50Us: quantileUs(list, 0.5), p99Us: quantileUs(list, 0.99) }
  }
  const headline = percentiles[workload.classes ? workload.headline : 'op'] || { p50Us: null, p99Us: null }
  const seconds = run.elapsedMs / 1000
  const queries = workload.classes
    ? Object.entries(percentiles).reduce((n, [name, p]) => n + p.count * workload.classes[name].queries, 0)
    : run.ops * workload.queriesPerOp
  const result = {
    client: clientName,
    runtime: typeof Bun === 'undefined' ? `node ${process.version}` : `bun ${Bun.version}`,
    workload: workloadId,
    ops: run.ops,
    errors: run.errors,
    firstError: run.firstError,
    elapsedMs: run.elapsedMs,
    // throughput in the workload's unit (q/s, rows/s, tx/s); for W1 also reported
    perSecond: (run.ops * workload.unitsPerOp) / seconds,
    p50Us: headline.p50Us,
    p99Us: headline.p99Us,
    // per query class (only for workloads that have classes): { count, p50Us, p99Us }
    classes: workload.classes ? percentiles : undefined,
    // user + system CPU of the whole process (JS thread, libuv and any native threads)
    cpuUsPerQuery: queries ? (cpu.user + cpu.system) / queries : null,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    connectMs,
  }

  const tEnd = performance.now()
  await db.end()
  result.endMs = performance.now() - tEnd
  process.stdout.write(JSON.stringify(result) + '\n')
  // Nothing should keep the process alive after end(); if something does, say so and exit.
  setTimeout(() => {
    console.error(`cell ${clientName}/${workloadId}: process still alive 2 s after end(); forcing exit`)
    process.exit(0)
  }, 2000).unref()
}

main().catch((e) => {
  console.error(`cell ${clientName}/${workloadId} failed: ${(e && e.stack) || e}`)
  process.exit(1)
})
