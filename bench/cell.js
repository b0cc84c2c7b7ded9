'use strict'
// One measurement cell, in its own process so no client inherits another's JIT state, heap
// or sockets:  node bench/cell.js <client> <workload> [--duration=ms] [--warmup=ms]
// The database URL comes from BENCH_DATABASE_URL (kept out of argv). Prints one JSON line.
//
// `concurrency` async workers loop on the workload's op until the deadline; the warm-up runs
// the same loop first (opening every pooled connection, warming the JIT) and is not counted.

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

async function loop(db, ms, latencies) {
  const deadline = performance.now() + ms
  let ops = 0
  let errors = 0
  let firstError = null
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      try {
        await workload.op(db)
      } catch (e) {
        errors++
        firstError = firstError || `${e.code || e.name}: ${e.message}`
        if (errors >= MAX_ERRORS) throw new Error(`${errors} errors, first: ${firstError}`)
        continue
      }
      if (latencies) latencies.push(performance.now() - t0)
      ops++
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: workload.concurrency }, worker))
  return { ops, errors, firstError, elapsedMs: performance.now() - start }
}

const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null)

async function main() {
  const tConnect = performance.now()
  const db = await client.create(url, { max: workload.max })
  if (workload.setup) await workload.setup(db)
  const connectMs = performance.now() - tConnect

  await loop(db, warmupMs, null)

  const latencies = []
  const cpu0 = process.cpuUsage()
  const run = await loop(db, durationMs, latencies)
  const cpu = process.cpuUsage(cpu0)

  latencies.sort((a, b) => a - b)
  const seconds = run.elapsedMs / 1000
  const queries = run.ops * workload.queriesPerOp
  const result = {
    client: clientName,
    workload: workloadId,
    ops: run.ops,
    errors: run.errors,
    firstError: run.firstError,
    elapsedMs: run.elapsedMs,
    // throughput in the workload's unit (q/s, rows/s, tx/s); for W1 also reported
    perSecond: (run.ops * workload.unitsPerOp) / seconds,
    p50Us: quantile(latencies, 0.5) * 1000,
    p99Us: quantile(latencies, 0.99) * 1000,
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
