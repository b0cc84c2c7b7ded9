'use strict'
// Big data in bounded memory (issue #17, point 5): streaming 2,000,000 rows × 4 columns and
// COPYing 2,000,000 rows out and in, for onepool, pg (+ pg-cursor, pg-copy-streams) and
// postgres.js (.cursor(), .readable(), .writable()), with onepool's pool.query of the same rows
// for contrast. Each run is its own process (no shared JIT state or heap), clients interleaved
// and rotated each repetition, every run bounded by a watchdog.
//
//   node bench/streams.js [--reps=5] [--rows=2000000] [--batch=1000] [--workloads=stream,copy-out,copy-in]
//                         [--clients=onepool,pg,postgres] [--out=NAME]
//
// Without DATABASE_URL an embedded Postgres is started. A run connects, warms up with the same
// workload on 10,000 rows, then measures the workload: wall time, CPU time of the process (all
// threads), and peak RSS growth: the process's peak RSS (getrusage) minus its RSS before the
// measured workload. COPY in sends data made before the measured span (the same for all). Rows and bytes are checked to be the same for every client. Results go to
// bench/results/streams.{md,json} (or NAME.{md,json}).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { Readable, Writable } = require('node:stream')
const { pipeline } = require('node:stream/promises')
const { performance } = require('node:perf_hooks')

const ROOT = path.join(__dirname, '..')
const RUN_LIMIT_MS = 300000
const SOURCE = 'stream_src'
const TARGET = 'copy_dst'
const COLUMNS = 'id int4, big int8, label text, score float8'

const streamText = (rows) => `select id, big, label, score from ${SOURCE} where id <= ${rows}`
const copyOutText = (rows) => `copy (select id, big, label, score from ${SOURCE} where id <= ${rows}) to stdout`
const copyInText = `copy ${TARGET} (id, big, label, score) from stdin`

/**
 * COPY text-format rows in chunks of ~54 KB, made before the measured span (making 2M rows
 * costs about a second of CPU and tens of MB of garbage, which would hide what the clients
 * themselves cost): each client gets them as a Readable.
 */
function copyChunks(rows) {
  const chunks = []
  const per = 1200
  for (let start = 1; start <= rows; start += per) {
    let s = ''
    for (let i = start; i < Math.min(start + per, rows + 1); i++) s += `${i}\t${i * 1000003}\tlabel ${i}\t${i / 7}\n`
    chunks.push(Buffer.from(s))
  }
  return chunks
}

/** One adapter shape per client: stream(text, batch, onRow), copyOut(text, onChunk), copyIn(text, source) → rows. */
const CLIENTS = {
  onepool(url) {
    const { createPool } = require(ROOT)
    const pool = createPool({ connectionString: url, max: 1, name: `streams-${process.pid}` })
    return {
      async stream(text, batchSize, onRow) {
        for await (const row of pool.stream(text, [], { batchSize })) onRow(row)
      },
      async copyOut(text, onChunk) {
        for await (const chunk of pool.copyTo(text)) onChunk(chunk)
      },
      async copyIn(text, source) {
        return (await pool.copyFrom(text, source)).rowCount
      },
      end: () => pool.end(),
    }
  },
  // pool.query of the same rows, all at once: the contrast.
  'onepool-query'(url) {
    const { createPool } = require(ROOT)
    const pool = createPool({ connectionString: url, max: 1, name: `streams-${process.pid}` })
    return {
      async stream(text, _batchSize, onRow) {
        const { rows } = await pool.query(text)
        for (const row of rows) onRow(row)
      },
      end: () => pool.end(),
    }
  },
  pg(url) {
    const { Pool } = require('pg')
    const Cursor = require('pg-cursor')
    const { to, from } = require('pg-copy-streams')
    const pool = new Pool({ connectionString: url, max: 1 })
    const withClient = async (fn) => {
      const client = await pool.connect()
      try {
        return await fn(client)
      } finally {
        client.release()
      }
    }
    return {
      stream: (text, batchSize, onRow) =>
        withClient(async (client) => {
          const cursor = client.query(new Cursor(text))
          for (;;) {
            const rows = await cursor.read(batchSize)
            if (rows.length === 0) break
            for (const row of rows) onRow(row)
          }
          await cursor.close()
        }),
      copyOut: (text, onChunk) =>
        withClient(async (client) => {
          for await (const chunk of client.query(to(text))) onChunk(chunk)
        }),
      copyIn: (text, source) =>
        withClient(async (client) => {
          const sink = client.query(from(text))
          await pipeline(source, sink)
          return sink.rowCount
        }),
      end: () => pool.end(),
    }
  },
  postgres(url) {
    const sql = require('postgres')(url, { max: 1, onnotice: () => {} })
    return {
      async stream(text, batchSize, onRow) {
        for await (const rows of sql.unsafe(text).cursor(batchSize)) for (const row of rows) onRow(row)
      },
      // Through pipeline, as its README shows: postgres.js 3.4.9's COPY readable consumed with
      // `for await` hangs on its second use of the connection.
      async copyOut(text, onChunk) {
        const sink = new Writable({
          write(chunk, _encoding, callback) {
            onChunk(chunk)
            callback()
          },
        })
        await pipeline(await sql.unsafe(text).readable(), sink)
      },
      async copyIn(text, source) {
        await pipeline(source, await sql.unsafe(text).writable())
        return null
      },
      end: () => sql.end({ timeout: 5 }),
    }
  },
}

const VERSIONS = () => {
  const v = (name) => require(path.join(ROOT, 'node_modules', name, 'package.json')).version
  return `onepool ${require(path.join(ROOT, 'package.json')).version} (native addon), pg ${v('pg')} + pg-cursor ${v('pg-cursor')} + pg-copy-streams ${v('pg-copy-streams')}, postgres.js ${v('postgres')}`
}

/** Runs `workload` on `rows` rows; returns what was checked (rows seen, checksum, bytes). */
async function runWorkload(db, workload, rows, batch, chunks) {
  if (workload === 'stream') {
    let n = 0
    let sum = 0
    await db.stream(streamText(rows), batch, (row) => {
      n++
      sum += row.id
    })
    return { rows: n, check: sum }
  }
  if (workload === 'copy-out') {
    let bytes = 0
    await db.copyOut(copyOutText(rows), (chunk) => (bytes += chunk.length))
    return { rows, check: bytes }
  }
  const copied = await db.copyIn(copyInText, Readable.from(chunks, { objectMode: false }))
  return { rows: copied ?? rows, check: null }
}

/** Child: warm-up, then one measured workload; prints one JSON line. */
async function measure(name, workload, rows, batch) {
  const url = process.env.STREAMS_URL
  const db = CLIENTS[name](url)
  await runWorkload(db, workload, 10000, batch, workload === 'copy-in' ? copyChunks(10000) : null)
  const chunks = workload === 'copy-in' ? copyChunks(rows) : null
  if (global.gc) global.gc()
  const rssBefore = process.memoryUsage().rss
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const seen = await runWorkload(db, workload, rows, batch, chunks)
  const totalMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const peakRss = process.resourceUsage().maxRSS * 1024
  await db.end()
  console.log(JSON.stringify({ name, workload, rows, seen, totalMs, cpuMs: (cpu.user + cpu.system) / 1000, rssBefore, peakRss }))
}

function runChild(name, workload, rows, batch, env) {
  return new Promise((resolve, reject) => {
    const args = ['--expose-gc', __filename, '--child', name, workload, String(rows), String(batch)]
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const watchdog = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS)
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog)
      if (code !== 0) return reject(new Error(`${name} ${workload}: exited with ${code ?? signal}`))
      resolve(JSON.parse(out.trim().split('\n').pop()))
    })
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const range = (xs, digits = 0) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`
const MiB = 2 ** 20

async function prepare(url, rows) {
  const { Client } = require('pg')
  const db = new Client({ connectionString: url })
  await db.connect()
  try {
    await db.query('set client_min_messages = warning')
    const have = (await db.query(`select to_regclass('${SOURCE}') is not null as e`)).rows[0].e
    const n = have ? (await db.query(`select count(*)::int as n from ${SOURCE}`)).rows[0].n : 0
    if (n !== rows) {
      await db.query(`drop table if exists ${SOURCE}`)
      await db.query(`create table ${SOURCE} (${COLUMNS}, primary key (id))`)
      await db.query(`insert into ${SOURCE} select i, i::int8 * 1000003, 'label ' || i, i / 7.0::float8 from generate_series(1, ${rows}) i`)
      await db.query(`vacuum analyze ${SOURCE}`)
    }
    await db.query(`drop table if exists ${TARGET}`)
    await db.query(`create table ${TARGET} (${COLUMNS})`)
  } finally {
    await db.end()
  }
}

async function truncateTarget(url) {
  const { Client } = require('pg')
  const db = new Client({ connectionString: url })
  await db.connect()
  await db.query(`truncate ${TARGET}`)
  await db.end()
}

const LABELS = { stream: 'stream rows', 'copy-out': 'COPY out', 'copy-in': 'COPY in' }
const COMPARED = { stream: ['pg', 'postgres'], 'copy-out': ['pg', 'postgres'], 'copy-in': ['pg', 'postgres'] }
const TARGETS = { stream: 1.5, 'copy-out': 1.0, 'copy-in': 1.0 }

async function main() {
  const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')))
  const reps = Number(args.reps || 5)
  const rows = Number(args.rows || 2000000)
  const batch = Number(args.batch || 1000)
  const workloads = (args.workloads || 'stream,copy-out,copy-in').split(',')
  const names = (args.clients || 'onepool,pg,postgres').split(',')
  const out = args.out || 'streams'
  let server = null
  let url = process.env.DATABASE_URL
  if (!url) {
    server = await require('../scripts/embedded-server').startServer()
    url = server.superuserUrl
  }
  const env = { ...process.env, STREAMS_URL: url }
  const runs = {}
  const started = new Date()
  try {
    await prepare(url, rows)
    for (const workload of workloads) {
      const clients = workload === 'stream' ? [...names, 'onepool-query'] : names
      for (let r = 0; r < reps; r++) {
        for (let i = 0; i < clients.length; i++) {
          const name = clients[(i + r) % clients.length]
          if (workload === 'copy-in') await truncateTarget(url)
          const m = await runChild(name, workload, rows, batch, env)
          ;(runs[workload] ??= {})[name] ??= []
          runs[workload][name].push(m)
          const rate = (rows / m.totalMs) * 1000
          console.error(
            `${workload} rep ${r + 1} ${name}: ${m.totalMs.toFixed(0)} ms (${Math.round(rate).toLocaleString('en-US')} rows/s, cpu ${m.cpuMs.toFixed(0)} ms), RSS +${((m.peakRss - m.rssBefore) / MiB).toFixed(1)} MiB`,
          )
        }
      }
      // Every client saw the same rows (and bytes).
      const checks = new Set(Object.values(runs[workload]).flatMap((ms) => ms.map((m) => JSON.stringify([m.seen.rows, m.seen.check]))))
      const nulls = [...checks].filter((c) => c.includes('null'))
      if (checks.size - nulls.length > 1) throw new Error(`${workload}: clients disagree: ${[...checks].join(' / ')}`)
    }
  } finally {
    if (server) await server.stop()
  }
  const lines = [
    `${rows.toLocaleString('en-US')} rows × 4 columns (int4, int8, text, float8); batch ${batch} rows for every cursor; ${reps} interleaved runs each, every run its own process; median (min–max). ${VERSIONS()}; Node ${process.version}; ${started.toISOString()}.`,
    '',
    '| workload | client | total ms | rows/s | vs best other | CPU ms | peak RSS growth MiB |',
    '|---|---|---:|---:|---:|---:|---:|',
  ]
  const summary = {}
  for (const workload of workloads) {
    const byName = runs[workload]
    const rate = (name) => (rows / median(byName[name].map((m) => m.totalMs))) * 1000
    const others = COMPARED[workload].filter((n) => byName[n])
    const best = others.length ? Math.max(...others.map(rate)) : null
    for (const name of Object.keys(byName)) {
      const ms = byName[name]
      const label = { onepool: 'onepool', 'onepool-query': 'onepool pool.query (all rows at once)', pg: workload === 'stream' ? 'pg + pg-cursor' : 'pg + pg-copy-streams', postgres: workload === 'stream' ? 'postgres.js .cursor()' : workload === 'copy-out' ? 'postgres.js .readable()' : 'postgres.js .writable()' }[name]
      const ratio = best ? `${(rate(name) / best).toFixed(2)}×` : '—'
      lines.push(
        `| ${LABELS[workload]} | ${label} | ${range(ms.map((m) => m.totalMs))} | ${Math.round(rate(name)).toLocaleString('en-US')} | ${ratio} | ${range(ms.map((m) => m.cpuMs))} | ${range(ms.map((m) => (m.peakRss - m.rssBefore) / MiB), 1)} |`,
      )
    }
    if (best && byName.onepool) {
      const growth = median(byName.onepool.map((m) => (m.peakRss - m.rssBefore) / MiB))
      summary[workload] = { ratio: rate('onepool') / best, target: TARGETS[workload], rssGrowthMiB: growth }
    }
  }
  lines.push('')
  for (const [workload, s] of Object.entries(summary)) {
    lines.push(
      `- ${LABELS[workload]}: onepool ${s.ratio.toFixed(2)}× the faster of the others (target ≥ ${s.target}×: ${s.ratio >= s.target ? 'met' : 'NOT met'}); peak RSS growth ${s.rssGrowthMiB.toFixed(1)} MiB (target ≤ 64: ${s.rssGrowthMiB <= 64 ? 'met' : 'NOT met'})`,
    )
  }
  const md = lines.join('\n') + '\n'
  console.log('\n' + md)
  const dir = path.join(__dirname, 'results')
  fs.writeFileSync(path.join(dir, `${out}.md`), md)
  fs.writeFileSync(path.join(dir, `${out}.json`), JSON.stringify({ rows, batch, reps, started, runs, summary }, null, 1) + '\n')
}

if (process.argv[2] === '--child') {
  const watchdog = setTimeout(() => process.exit(3), RUN_LIMIT_MS)
  watchdog.unref()
  measure(process.argv[3], process.argv[4], Number(process.argv[5]), Number(process.argv[6])).catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
