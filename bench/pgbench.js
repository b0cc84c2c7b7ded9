'use strict'
// pgbench as the ceiling: a C client with no pool in the way. Used only when a binary is
// found; its cells report throughput (and p50/p99 from its per-transaction log), no CPU/RSS.

const { execFileSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

function findPgbench() {
  const candidates = []
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'pgbench'))
  try {
    // newest major version first
    const majors = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    for (const m of majors) candidates.push(`/usr/lib/postgresql/${m}/bin/pgbench`)
  } catch {}
  for (const bin of candidates) {
    try {
      fs.accessSync(bin, fs.constants.X_OK)
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()
      return { bin, version }
    } catch {}
  }
  return null
}

/** Runs one pgbench cell; resolves to the same shape as a cell.js result. */
async function runPgbench(pgbench, workload, url, durationMs) {
  const spec = workload.pgbench
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-pgbench-'))
  try {
    const script = path.join(dir, 'script.sql')
    fs.writeFileSync(script, spec.script)
    const seconds = Math.max(1, Math.round(durationMs / 1000))
    const args = ['-n', '-M', 'prepared', '-c', String(spec.clients), '-j', String(spec.threads), '-T', String(seconds), '-f', script]
    // the per-transaction log gives latency percentiles (only needed for latency workloads)
    if (workload.metric === 'latency') args.push('-l', `--log-prefix=${path.join(dir, 'log')}`)
    args.push(url)
    const out = await new Promise((resolve, reject) => {
      const child = spawn(pgbench.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      child.stdout.on('data', (d) => (text += d))
      child.stderr.on('data', (d) => (text += d))
      const kill = setTimeout(() => child.kill('SIGKILL'), durationMs + 60000)
      child.on('error', reject)
      child.on('close', (code) => {
        clearTimeout(kill)
        if (code === 0) resolve(text)
        else reject(new Error(`pgbench exited with ${code}: ${text.trim().split('\n').slice(-3).join(' | ')}`))
      })
    })
    const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)
    const count = /number of transactions actually processed: (\d+)/.exec(out)
    const failed = /number of failed transactions: (\d+)/.exec(out)
    if (!tps) throw new Error(`could not parse pgbench output: ${out.trim().slice(-300)}`)
    const latencies = []
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith('log')) continue
      for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        const cols = line.split(' ')
        if (cols.length > 2) latencies.push(Number(cols[2]))
      }
    }
    latencies.sort((a, b) => a - b)
    const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null)
    return {
      client: 'pgbench',
      workload: workload.id,
      ops: count ? Number(count[1]) : null,
      errors: failed ? Number(failed[1]) : 0,
      perSecond: Number(tps[1]) * workload.unitsPerOp,
      p50Us: q(0.5),
      p99Us: q(0.99),
      cpuUsPerQuery: null,
      maxRssMB: null,
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { findPgbench, runPgbench }
