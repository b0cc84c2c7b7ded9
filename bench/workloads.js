'use strict'
// The workloads, as data. Each one: how many operations in flight, what one operation does
// (through the adapter from clients.js), how many queries and result units it counts, and
// optionally the pgbench script that measures the same thing without a Node client.
//
// metric 'latency' reports p50 (µs) of sequential operations; 'throughput' reports units/s.

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
    op: (db) => db.query('select * from pgbench_accounts where aid = $1', [randomAid()]),
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
    op: (db) =>
      db.transaction(async (tx) => {
        const aid = randomAid()
        await tx.query('select abalance from pgbench_accounts where aid = $1', [aid])
        await tx.query('update pgbench_accounts set abalance = abalance + $1 where aid = $2', [
          Math.floor(Math.random() * 10001) - 5000,
          aid,
        ])
      }),
    pgbench: {
      clients: 10,
      threads: 2,
      script:
        `\\set aid random(1, ${ACCOUNTS})\n\\set delta random(-5000, 5000)\nBEGIN;\n` +
        'select abalance from pgbench_accounts where aid = :aid;\n' +
        'update pgbench_accounts set abalance = abalance + :delta where aid = :aid;\nEND;\n',
    },
  },
]

for (const w of workloads) {
  w.unitsPerOp = w.unitsPerOp || 1
  w.queriesPerOp = w.queriesPerOp || 1
  w.max = w.max || 10 // pool size
}

const byId = Object.fromEntries(workloads.map((w) => [w.id, w]))

module.exports = { workloads, byId, ACCOUNTS, WIDE_ROWS }
