'use strict'
// Turns the per-repetition cell results into medians, ratios to postgres.js and to pg, a
// Markdown report (with per-class latencies for the app-shaped mixes) and a dependency-free SVG
// bar chart of the ratios to postgres.js.

const BASELINE = 'postgres'
// the second baseline: the pool most Node apps run on
const BASELINE_2 = 'pg'
const LABEL = {
  postgres: 'postgres.js',
  pgbench: 'pgbench (ceiling)',
  'onepool-wasm': 'onepool (WASM)',
  bun: 'Bun.SQL (reference)',
}
const COLOR = {
  onepool: '#2563eb',
  'onepool-wasm': '#93c5fd',
  pg: '#16a34a',
  postgres: '#9ca3af',
  pgbench: '#f59e0b',
  bun: '#db2777',
}
const SPARE_COLORS = ['#db2777', '#7c3aed', '#0891b2', '#65a30d']

const label = (c) => LABEL[c] || c

function median(xs) {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return null
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The metric a workload is ranked by: p50 latency (lower is better) or throughput. */
const primary = (w, r) => (w.metric === 'latency' ? r.p50Us : r.perSecond)

/** > 1 always means better than the baseline: more throughput, or lower latency. */
const better = (higherIsBetter, base, mine) =>
  base && mine ? (higherIsBetter ? mine / base : base / mine) : null

/** Latency in µs as text: µs below a millisecond, ms above. */
function latency(us) {
  if (us === null || us === undefined) return '—'
  if (us < 1000) return `${Math.round(us)} µs`
  return `${(us / 1000).toFixed(us < 10000 ? 2 : 1)} ms`
}

/**
 * @param cells [{ workload, client, rep, result?: cell JSON, error?: string }]
 * @returns rows [{ workload, client, reps, failed, median, p50, p99, spread, ratio, ratioPg, cpu, rss,
 *   errors, notes, classes? }] where classes is { [name]: { p50, p99, ratios } }, medians over
 *   repetitions, ratios { p50, p99, p50Pg, p99Pg } (> 1: lower latency than the baseline)
 */
function summarize(workloads, clientNames, cells) {
  const rows = []
  for (const w of workloads) {
    const group = []
    for (const c of clientNames) {
      const mine = cells.filter((x) => x.workload === w.id && x.client === c)
      if (!mine.length) continue
      const ok = mine.filter((x) => x.result).map((x) => x.result)
      const values = ok.map((r) => primary(w, r))
      const med = median(values)
      const finite = values.filter(Number.isFinite)
      const notes = [...new Set(mine.filter((x) => x.error).map((x) => x.error))]
      for (const r of ok) if (r.firstError) notes.push(r.firstError)
      group.push({
        workload: w,
        client: c,
        reps: ok.length,
        failed: mine.length - ok.length,
        median: med,
        p50: median(ok.map((r) => r.p50Us)),
        p99: median(ok.map((r) => r.p99Us)),
        classes: w.classes
          ? Object.fromEntries(
              Object.keys(w.classes).map((name) => {
                const of = ok.map((r) => (r.classes && r.classes[name]) || {})
                return [name, { p50: median(of.map((c) => c.p50Us)), p99: median(of.map((c) => c.p99Us)) }]
              }),
            )
          : null,
        spread: med && finite.length > 1 ? (Math.max(...finite) - Math.min(...finite)) / med : null,
        cpu: median(ok.map((r) => r.cpuUsPerQuery)),
        rss: median(ok.map((r) => r.maxRssMB)),
        errors: ok.reduce((n, r) => n + (r.errors || 0), 0),
        notes: [...new Set(notes)],
      })
    }
    const base = group.find((g) => g.client === BASELINE)
    const base2 = group.find((g) => g.client === BASELINE_2)
    const higher = w.metric !== 'latency'
    for (const g of group) {
      g.ratio = better(higher, base && base.median, g.median)
      g.ratioPg = better(higher, base2 && base2.median, g.median)
      for (const [name, c] of Object.entries(g.classes || {})) {
        const of = (b) => (b && b.classes && b.classes[name]) || {}
        c.ratios = {
          p50: better(false, of(base).p50, c.p50),
          p99: better(false, of(base).p99, c.p99),
          p50Pg: better(false, of(base2).p50, c.p50),
          p99Pg: better(false, of(base2).p99, c.p99),
        }
      }
    }
    rows.push(...group)
  }
  return rows
}

const num = (x, digits = 0) =>
  x === null || x === undefined ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function formatValue(row) {
  if (row.median === null) return 'failed'
  const w = row.workload
  if (w.metric === 'latency') return `${num(row.median)} µs (p99 ${num(row.p99)})`
  const rate = `${num(row.median)} ${w.unit}`
  if (!w.classes) return rate
  const c = row.classes[w.headline]
  return `${rate}; ${w.headline} p50 ${latency(c.p50)}, p99 ${latency(c.p99)}`
}

const times = (r) => (r === null || r === undefined ? '—' : `${r.toFixed(2)}×`)

function table(rows) {
  const head = ['Workload', 'Client', 'Median', 'vs postgres.js', 'vs pg', 'Spread', 'CPU µs/query', 'Peak RSS MB', 'Notes']
  const lines = [head, head.map((h, i) => (i < 2 || i === head.length - 1 ? '---' : '---:'))]
  for (const r of rows) {
    const notes = []
    if (r.failed) notes.push(`${r.failed} cell(s) failed`)
    if (r.errors) notes.push(`${r.errors} query errors`)
    notes.push(...r.notes.map((n) => n.replace(/\s+/g, ' ').slice(0, 120)))
    lines.push([
      `${r.workload.id} ${r.workload.title}`,
      label(r.client),
      formatValue(r),
      times(r.ratio),
      times(r.ratioPg),
      r.spread === null ? '—' : `±${Math.round((r.spread * 100) / 2)}%`,
      num(r.cpu, r.cpu !== null && r.cpu < 100 ? 1 : 0),
      num(r.rss),
      notes.join('; ').replace(/\|/g, '\\|'),
    ])
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n')
}

/**
 * The mixes' latency by query class: p50 and p99 of each class with their ratios to postgres.js
 * and to pg (> 1: lower latency). Empty when no workload in the run has classes.
 */
function classTable(rows) {
  const head = ['Workload', 'Class', 'Client', 'p50', 'p99', 'p50 vs postgres.js', 'p99 vs postgres.js', 'p50 vs pg', 'p99 vs pg']
  const lines = [head, head.map((h, i) => (i < 3 ? '---' : '---:'))]
  for (const w of [...new Set(rows.map((r) => r.workload))]) {
    if (!w.classes) continue
    // the headline class first, then the others in the workload's order
    const names = [w.headline, ...Object.keys(w.classes).filter((n) => n !== w.headline)]
    for (const name of names) {
      const share = w.classes[name].share
      const what = share === undefined ? name : `${name} (${+share.toFixed(1)}%)`
      for (const r of rows.filter((x) => x.workload === w && x.classes)) {
        const c = r.classes[name]
        lines.push([
          w.id,
          what,
          label(r.client),
          latency(c.p50),
          latency(c.p99),
          times(c.ratios.p50),
          times(c.ratios.p99),
          times(c.ratios.p50Pg),
          times(c.ratios.p99Pg),
        ])
      }
    }
  }
  return lines.length > 2 ? lines.map((l) => `| ${l.join(' | ')} |`).join('\n') : ''
}

function markdown(rows, meta) {
  const m = meta
  const classes = classTable(rows)
  const pools = [...new Set(rows.map((r) => r.workload))].filter((w) => w.max !== 10).map((w) => `${w.max} in ${w.id}`)
  return `# onepool benchmarks

${table(rows)}

- **Median** of ${m.reps} repetition(s); each cell is a fresh \`node\` process (\`bun\` for Bun.SQL): ${m.warmupMs} ms warm-up, then ${m.durationMs} ms measured. The same pool size (\`max\`) for every client: 10${pools.length ? ` (${pools.join(', ')})` : ''}.
- **vs postgres.js**, **vs pg**: above 1× is better than that client (throughput ratio; for W1 the inverse ratio of p50 latency).
- **Mixes** (W7–W9): queries of several classes run side by side, and each query's latency is recorded in its class; the Median column shows the throughput and the headline class's p50/p99 (the fast point reads; in W7 the slow queries themselves), the table below every class. W7 fires 30 \`pg_sleep\` of 10–50 ms at once on a pool of 5 (one burst at a time: 900 ms of sleeping each, so 180 ms is the floor); W8 mixes point reads with 5% \`pg_sleep\` of 20–100 ms; W9 mixes point reads (85%), pages of 50–100 rows of the wide table (10%), the W6 transaction (4.8%) and a 200 ms report (0.2%). Classes are drawn at random per operation.
- **Spread**: half the range (max − min) across repetitions, relative to the median.
- **CPU µs/query**: user + system CPU of the whole client process (JS thread, libuv, native threads) during the measured window, per statement (W6 counts BEGIN, SELECT, UPDATE, COMMIT as 4, and so does W9's transaction).
- **Peak RSS**: \`process.resourceUsage().maxRSS\` of the cell process.
- Protocols as each client uses them by default: onepool and pg send parameterised queries as unnamed Parse/Bind/Execute and parameterless ones as a simple Query; postgres.js caches named prepared statements, as its tagged templates do (here via \`sql.unsafe(text, values, { prepare: true })\`, the same protocol); Bun.SQL is called through real tagged templates (\`\` sql\`...\` \`\`), so it too caches a named prepared statement per query text.
- **Bun.SQL** is a reference, not a target: Bun's built-in client in the Bun runtime (the \`bun\` devDependency), the fastest JavaScript client there is. Its cells run the same \`bench/cell.js\` under \`bun\` instead of \`node\`, so the measurements are the same; its runtime differs from the Node clients', and that is part of what it shows.
- pgbench, when present, runs \`-n -M prepared -c 10 -j 2\` (\`-c 1 -j 1\` for W1) with no warm-up: 10 synchronous connections, not 64 requests in flight. It shows what the server and loopback allow, not a pool.

## Machine

| | |
|---|---|
| CPU | ${m.cpuModel} × ${m.cores} cores |
| OS | ${m.os} |
| Node | ${m.node} |
| Bun | ${m.bun || 'not run'} |
| PostgreSQL | ${m.serverVersion} (${m.server}) |
| Clients | ${m.clientVersions.map(([c, v]) => `${label(c)} ${v}`).join(', ')} |
| pgbench | ${m.pgbench || 'not installed'} |
| Date | ${m.date} |
| Load average (1 min) | ${m.load} |
| Run | \`${m.command}\`, wall time ${m.wallTime} |

![Ratios to postgres.js](${m.chart})
${
  classes
    ? `
## Latency by query class

Medians over the repetitions of each class's p50 and p99, from the moment the query is called to its reply (waiting for a connection included). Above 1× means lower latency than that client.

${classes}
`
    : ''
}`
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function svg(rows, clientNames) {
  const colors = {}
  let spare = 0
  for (const c of clientNames) colors[c] = COLOR[c] || SPARE_COLORS[spare++ % SPARE_COLORS.length]
  const W = 760
  const x0 = 270
  const x1 = W - 70
  const bar = 14
  const gap = 3
  const groupGap = 14
  // the legend runs across the full width and wraps: one row per ~750 px of labels
  const legend = []
  let lx = 10
  let ly = 30
  for (const c of clientNames.filter((c) => rows.some((r) => r.client === c))) {
    const width = 24 + label(c).length * 7
    if (lx + width > W - 10 && lx > 10) {
      lx = 10
      ly += 16
    }
    legend.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${colors[c]}"/><text x="${lx + 14}" y="${ly + 9}" class="tick">${esc(label(c))}</text>`)
    lx += width
  }
  const top = ly + 28
  const ids = [...new Set(rows.map((r) => r.workload.id))]
  const maxRatio = Math.max(1.5, ...rows.map((r) => r.ratio || 0))
  const scaleMax = Math.ceil(maxRatio * 2) / 2
  const x = (ratio) => x0 + ((x1 - x0) * ratio) / scaleMax
  const out = []
  let y = top
  for (const id of ids) {
    const group = rows.filter((r) => r.workload.id === id)
    const w = group[0].workload
    const h = group.length * (bar + gap) - gap
    out.push(`<text x="10" y="${y + h / 2 - 2}" class="wl">${esc(w.id)}</text>`)
    out.push(`<text x="10" y="${y + h / 2 + 12}" class="sub">${esc(w.title.length > 46 ? w.title.slice(0, 45) + '…' : w.title)}</text>`)
    for (const r of group) {
      if (r.ratio === null) {
        out.push(`<text x="${x0 + 4}" y="${y + bar - 3}" class="val">${esc(label(r.client))}: no result</text>`)
      } else {
        out.push(`<rect x="${x0}" y="${y}" width="${(x(r.ratio) - x0).toFixed(1)}" height="${bar}" fill="${colors[r.client]}"/>`)
        out.push(`<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + bar - 3}" class="val">${r.ratio.toFixed(2)}×</text>`)
      }
      y += bar + gap
    }
    y += groupGap - gap
  }
  const bottom = y
  const axis = []
  for (let t = 0; t <= scaleMax + 1e-9; t += scaleMax > 3 ? 1 : 0.5) {
    axis.push(`<line x1="${x(t)}" y1="${top - 4}" x2="${x(t)}" y2="${bottom}" class="${t === 1 ? 'one' : 'grid'}"/>`)
    axis.push(`<text x="${x(t)}" y="${bottom + 14}" class="tick" text-anchor="middle">${t}×</text>`)
  }
  const H = bottom + 26
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 14px; font-weight: 600; fill: #111827 }
  .wl { font-size: 12px; font-weight: 600; fill: #111827 }
  .sub, .tick, .val { font-size: 10.5px; fill: #4b5563 }
  .val { paint-order: stroke; stroke: #ffffff; stroke-width: 3px }
  .grid { stroke: #e5e7eb; stroke-width: 1 }
  .one { stroke: #111827; stroke-width: 1; stroke-dasharray: 4 3 }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="10" y="20" class="title">Ratio to postgres.js (higher is better; W1 by p50 latency, the others by throughput)</text>
${legend.join('\n')}
${axis.join('\n')}
${out.join('\n')}
</svg>
`
}

module.exports = { summarize, markdown, svg, table, classTable, label, latency, BASELINE }
