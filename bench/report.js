'use strict'
// Turns the per-repetition cell results into medians, ratios to postgres.js, a Markdown
// report and a dependency-free SVG bar chart of the ratios.

const BASELINE = 'postgres'
const LABEL = { postgres: 'postgres.js', pgbench: 'pgbench (ceiling)', 'onepool-wasm': 'onepool (WASM)' }
const COLOR = { onepool: '#2563eb', 'onepool-wasm': '#93c5fd', pg: '#16a34a', postgres: '#9ca3af', pgbench: '#f59e0b' }
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

/**
 * @param cells [{ workload, client, rep, result?: cell JSON, error?: string }]
 * @returns rows [{ workload, client, reps, failed, median, p99, spread, ratio, cpu, rss, errors, notes }]
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
        p99: median(ok.map((r) => r.p99Us)),
        spread: med && finite.length > 1 ? (Math.max(...finite) - Math.min(...finite)) / med : null,
        cpu: median(ok.map((r) => r.cpuUsPerQuery)),
        rss: median(ok.map((r) => r.maxRssMB)),
        errors: ok.reduce((n, r) => n + (r.errors || 0), 0),
        notes: [...new Set(notes)],
      })
    }
    const base = group.find((g) => g.client === BASELINE)
    for (const g of group) {
      // > 1 always means "better than postgres.js": faster throughput or lower latency
      g.ratio =
        base && base.median && g.median ? (w.metric === 'latency' ? base.median / g.median : g.median / base.median) : null
    }
    rows.push(...group)
  }
  return rows
}

const num = (x, digits = 0) =>
  x === null || x === undefined ? '—' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function formatValue(row) {
  if (row.median === null) return 'failed'
  if (row.workload.metric === 'latency') return `${num(row.median)} µs (p99 ${num(row.p99)})`
  return `${num(row.median)} ${row.workload.unit}`
}

function table(rows) {
  const head = ['Workload', 'Client', 'Median', 'vs postgres.js', 'Spread', 'CPU µs/query', 'Peak RSS MB', 'Notes']
  const lines = [head, head.map((h, i) => (i < 2 || i === 7 ? '---' : '---:'))]
  for (const r of rows) {
    const notes = []
    if (r.failed) notes.push(`${r.failed} cell(s) failed`)
    if (r.errors) notes.push(`${r.errors} query errors`)
    notes.push(...r.notes.map((n) => n.replace(/\s+/g, ' ').slice(0, 120)))
    lines.push([
      `${r.workload.id} ${r.workload.title}`,
      label(r.client),
      formatValue(r),
      r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
      r.spread === null ? '—' : `±${Math.round((r.spread * 100) / 2)}%`,
      num(r.cpu, r.cpu !== null && r.cpu < 100 ? 1 : 0),
      num(r.rss),
      notes.join('; ').replace(/\|/g, '\\|'),
    ])
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n')
}

function markdown(rows, meta) {
  const m = meta
  return `# onepool benchmarks

${table(rows)}

- **Median** of ${m.reps} repetition(s); each cell is a fresh \`node\` process: ${m.warmupMs} ms warm-up, then ${m.durationMs} ms measured. Pool size 10 for every client.
- **vs postgres.js**: above 1× is better than postgres.js (throughput ratio; for W1 the inverse ratio of p50 latency).
- **Spread**: half the range (max − min) across repetitions, relative to the median.
- **CPU µs/query**: user + system CPU of the whole client process (JS thread, libuv, native threads) during the measured window, per statement (W6 counts BEGIN, SELECT, UPDATE, COMMIT as 4).
- **Peak RSS**: \`process.resourceUsage().maxRSS\` of the cell process.
- Protocols as each client uses them by default: onepool and pg send parameterised queries as unnamed Parse/Bind/Execute and parameterless ones as a simple Query; postgres.js caches named prepared statements, as its tagged templates do (here via \`sql.unsafe(text, values, { prepare: true })\`, the same protocol).
- pgbench, when present, runs \`-n -M prepared -c 10 -j 2\` (\`-c 1 -j 1\` for W1) with no warm-up: 10 synchronous connections, not 64 requests in flight. It shows what the server and loopback allow, not a pool.

## Machine

| | |
|---|---|
| CPU | ${m.cpuModel} × ${m.cores} cores |
| OS | ${m.os} |
| Node | ${m.node} |
| PostgreSQL | ${m.serverVersion} (${m.server}) |
| Clients | ${m.clientVersions.map(([c, v]) => `${label(c)} ${v}`).join(', ')} |
| pgbench | ${m.pgbench || 'not installed'} |
| Date | ${m.date} |
| Load average (1 min) | ${m.load} |
| Run | \`${m.command}\`, wall time ${m.wallTime} |

![Ratios to postgres.js](${m.chart})
`
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
  const top = 58
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
  let lx = x0
  const legend = clientNames
    .filter((c) => rows.some((r) => r.client === c))
    .map((c) => {
      const item = `<rect x="${lx}" y="30" width="10" height="10" fill="${colors[c]}"/><text x="${lx + 14}" y="39" class="tick">${esc(label(c))}</text>`
      lx += 24 + label(c).length * 7
      return item
    })
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
<text x="10" y="20" class="title">Relative to postgres.js (1× = postgres.js; higher is better; W1 by p50 latency)</text>
${legend.join('\n')}
${axis.join('\n')}
${out.join('\n')}
</svg>
`
}

module.exports = { summarize, markdown, svg, table, label, BASELINE }
