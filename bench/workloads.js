'use strict'
// The workloads, as data. Each one: how many operations in flight, what one operation does
// (through the adapter from clients.js), how many queries and result units it counts, and
// optionally the pgbench script that measures the same thing without a Node client.
//
// metric 'latency' reports p50 (µs) of sequential operations; 'throughput' reports units/s.
//
// A workload with `classes` is an app-shaped mix: its op is op(db, time) and times each query
// of a class with time(className, () => promise), so the cell reports latency percentiles per
// class (fast lookups apart from the slow report that runs beside them). `headline` names the
// class whose p50/p99 the summary table shows (the first class unless set).

const ACCOUNTS = 1_000_000 // pgbench scale 10
const WIDE_ROWS = 10_000
const BATCH_ROWS = 1_000

const randomAid = () => 1 + Math.floor(Math.random() * ACCOUNTS)

// W5: six parameters of six types, the same JS values for every client.
const insertRow = (i) => [i, i * 1000, `row ${i}`, i / 7, (i & 1) === 0, new Date()]

const BATCH_SQL = (() => {
  const tuples = []
  for (let r = 0; r < BATCH_ROWS; r++) {
    const p = r * 6
    tuples.push(`($${p + 1},$${p + 2},$${p + 3},$${p + 4},$${p + 5},$${p + 6})`)
  }
  return `insert into bench_insert_many (a, b, c, d, e, f) values ${tuples.join(',')}`
})()

let seq = 0

const POINT_SQL = 'select * from pgbench_accounts where aid = $1'
const pointRead = (db) => db.query(POINT_SQL, [randomAid()])

// W6's transaction, also the write in W9's web mix: 4 statements.
const transfer = (db) =>
  db.transaction(async (tx) => {
    const aid = randomAid()
    await tx.query('select abalance from pgbench_accounts where aid = $1', [aid])
    await tx.query('update pgbench_accounts set abalance = abalance + $1 where aid = $2', [
      Math.floor(Math.random() * 10001) - 5000,
      aid,
    ])
  })

const randomInt = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1))
const sleepQuery = (db, ms) => db.query('select pg_sleep($1)', [ms / 1000])

/**
 * An op that runs one class per call, drawn at random by share (a percentage): random, not
 * every n-th, so no pool's round-robin can line the slow ones up on one connection.
 * @param {Record<string, { share: number, queries?: number, op: (db) => Promise<unknown> }>} spec
 */
function mix(spec) {
  const entries = Object.entries(spec)
  const total = entries.reduce((n, [, c]) => n + c.share, 0)
  const classes = Object.fromEntries(entries.map(([name, c]) => [name, { share: (100 * c.share) / total, queries: c.queries || 1 }]))
  const op = (db, time) => {
    let r = Math.random() * total
    for (const [name, c] of entries) if ((r -= c.share) < 0) return time(name, () => c.op(db))
    const [name, c] = entries[entries.length - 1]
    return time(name, () => c.op(db))
  }
  return { classes, op }
}

// W7: 10, 20, 30, 40 and 50 ms, six times each: every burst holds the pool for the same
// 900 ms of sleeping, shuffled so the order differs from burst to burst.
const BURST = 30
const BURST_SLEEPS_MS = Array.from({ length: BURST }, (_, i) => 10 + 10 * (i % 5))
function shuffled(xs) {
  const out = xs.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

// W9's rare report: holds its connection 200 ms, then aggregates the 10,000-row table.
const REPORT_SQL = 'select count(*)::int as n, sum(amount) as total from pg_sleep(0.2), wide'
const PAGE_SQL = 'select * from wide where id > $1 order by id limit $2'

const workloads = [
  {
    id: 'W1',
    title: 'select 1, sequential',
    metric: 'latency',
    unit: 'µs p50',
    concurrency: 1,
    op: (db) => db.query('select 1'),
    pgbench: { clients: 1, threads: 1, script: 'select 1;\n' },
  },
  {
    id: 'W2',
    title: 'select 1, 64 in flight',
    metric: 'throughput',
    unit: 'q/s',
    concurrency: 64,
    op: (db) => db.query('select 1'),
    pgbench: { clients: 10, threads: 2, script: 'select 1;\n' },
  },
  {
    id: 'W3',
    title: 'point select by random aid, 64 in flight',
    metric: 'throughput',
    unit: 'q/s',
    concurrency: 64,
    op: pointRead,
    pgbench: {
      clients: 10,
      threads: 2,
      script: `\\set aid random(1, ${ACCOUNTS})\nselect * from pgbench_accounts where aid = :aid;\n`,
    },
  },
  {
    id: 'W4',
    title: `select ${WIDE_ROWS.toLocaleString('en-US')} rows × 8 cols, 4 in flight`,
    metric: 'throughput',
    unit: 'rows/s',
    concurrency: 4,
    unitsPerOp: WIDE_ROWS,
    op: (db) => db.query('select * from wide'),
  },
  {
    id: 'W5a',
    title: 'insert 1 row, 6 params, 64 in flight',
    metric: 'throughput',
    unit: 'q/s',
    concurrency: 64,
    setup: (db) => db.query('truncate bench_insert_one'),
    op: (db) =>
      db.query('insert into bench_insert_one (a, b, c, d, e, f) values ($1, $2, $3, $4, $5, $6)', insertRow(++seq)),
  },
  {
    id: 'W5b',
    title: `insert ${BATCH_ROWS.toLocaleString('en-US')} rows, ${(BATCH_ROWS * 6).toLocaleString('en-US')} params, 4 in flight`,
    metric: 'throughput',
    unit: 'rows/s',
    concurrency: 4,
    unitsPerOp: BATCH_ROWS,
    setup: (db) => db.query('truncate bench_insert_many'),
    op(db) {
      const values = []
      for (let r = 0; r < BATCH_ROWS; r++) values.push(...insertRow(++seq))
      return db.query(BATCH_SQL, values)
    },
  },
  {
    id: 'W6',
    title: 'begin/select/update/commit, 32 in flight',
    metric: 'throughput',
    unit: 'tx/s',
    concurrency: 32,
    queriesPerOp: 4, // BEGIN, SELECT, UPDATE, COMMIT
    op: transfer,
    pgbench: {
      clients: 10,
      threads: 2,
      script:
        `\\set aid random(1, ${ACCOUNTS})\n\\set delta random(-5000, 5000)\nBEGIN;\n` +
        'select abalance from pgbench_accounts where aid = :aid;\n' +
        'update pgbench_accounts set abalance = abalance + :delta where aid = :aid;\nEND;\n',
    },
  },
  // App-shaped mixes (issue #16): slow queries beside fast ones, where a pool's routing shows.
  {
    id: 'W7',
    title: `bursts of ${BURST} pg_sleep 10–50 ms, pool of 5`,
    metric: 'throughput',
    unit: 'q/s',
    concurrency: 1, // one burst at a time: a request that fans out 30 slow queries at once
    max: 5,
    unitsPerOp: BURST,
    // slow: each query, from the burst's start to its own reply; burst: the whole fan-out
    classes: { slow: { queries: 1 }, burst: { queries: 0 } },
    headline: 'slow',
    op: (db, time) =>
      time('burst', () => Promise.all(shuffled(BURST_SLEEPS_MS).map((ms) => time('slow', () => sleepQuery(db, ms))))),
  },
  {
    id: 'W8',
    title: 'reads + 5% slow (20–100 ms), 32 in flight',
    metric: 'throughput',
    unit: 'q/s',
    concurrency: 32,
    ...mix({
      fast: { share: 95, op: pointRead },
      slow: { share: 5, op: (db) => sleepQuery(db, randomInt(20, 100)) },
    }),
  },
  {
    id: 'W9',
    title: 'web mix with 200 ms reports, 64 in flight',
    metric: 'throughput',
    unit: 'req/s',
    concurrency: 64,
    ...mix({
      fast: { share: 85, op: pointRead },
      page: { share: 10, op: (db) => db.query(PAGE_SQL, [randomInt(0, WIDE_ROWS - 100), randomInt(50, 100)]) },
      tx: { share: 4.8, queries: 4, op: transfer },
      report: { share: 0.2, op: (db) => db.query(REPORT_SQL) },
    }),
  },
]

for (const w of workloads) {
  w.unitsPerOp = w.unitsPerOp || 1
  w.queriesPerOp = w.queriesPerOp || 1
  w.max = w.max || 10 // pool size
  if (w.classes) w.headline = w.headline || Object.keys(w.classes)[0]
}

const byId = Object.fromEntries(workloads.map((w) => [w.id, w]))

module.exports = { workloads, byId, ACCOUNTS, WIDE_ROWS }
