'use client'

import { useEffect, useState } from 'react'

type Stats = {
  pool: {
    name: string
    target: string
    max: number
    size: number
    idle: number
    inUse: number
    waiting: number
    created: number
    acquireTimeouts: number
    handles: number
  }
  server: { connections: number; role: string }
  at: string
}

/** One poll: the numbers the chart draws, and whether lib/db.ts was evaluated again since. */
type Sample = { at: number; max: number; size: number; inUse: number; waiting: number; server: number; reload: boolean }

const WINDOW_MS = 5 * 60_000
const POLL_MS = 1000

const SERIES: { key: keyof Sample; label: string; color: string }[] = [
  { key: 'max', label: 'max', color: '#9ca3af' },
  { key: 'size', label: 'pool size', color: '#2563eb' },
  { key: 'inUse', label: 'in use', color: '#16a34a' },
  { key: 'waiting', label: 'waiting', color: '#dc2626' },
  { key: 'server', label: 'server connections (pg_stat_activity)', color: '#7c3aed' },
]

const W = 720
const H = 240
const PAD = { left: 32, right: 8, top: 8, bottom: 22 }

const MIN_SPAN_MS = 30_000

/** "-90 s", "-2 min": how long before now. */
const ago = (ms: number) => (ms === 0 ? 'now' : ms < 120_000 ? `-${Math.round(ms / 1000)} s` : `-${(ms / 60_000).toFixed(ms % 60_000 ? 1 : 0)} min`)

/**
 * A line chart in plain SVG of the time the page has been open (at least 30 s, at most the last
 * five minutes); each hot reload of lib/db.ts is a dashed mark.
 */
function Chart({ samples, now }: { samples: Sample[]; now: number }) {
  const top = Math.max(5, ...samples.map((s) => Math.max(s.max, s.size, s.waiting, s.server)))
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, now - (samples[0]?.at ?? now)))
  const x = (at: number) => PAD.left + ((at - (now - span)) / span) * (W - PAD.left - PAD.right)
  const y = (v: number) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom)
  const ticks = Array.from(new Set([0, Math.round(top / 2), top]))
  return (
    <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label="pool and server connections over the last minutes" data-chart>
      {ticks.map((t) => (
        <g key={t}>
          <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} stroke="#eee" />
          <text x={PAD.left - 6} y={y(t) + 4} fontSize="10" textAnchor="end" fill="#666">
            {t}
          </text>
        </g>
      ))}
      {[5, 4, 3, 2, 1, 0].map((i) => (
        <text key={i} x={x(now - (i * span) / 5)} y={H - 6} fontSize="10" textAnchor={i === 0 ? 'end' : i === 5 ? 'start' : 'middle'} fill="#666">
          {ago((i * span) / 5)}
        </text>
      ))}
      {samples
        .filter((s) => s.reload)
        .map((s) => (
          <line key={`r${s.at}`} x1={x(s.at)} x2={x(s.at)} y1={PAD.top} y2={H - PAD.bottom} stroke="#f59e0b" strokeDasharray="3 3" data-reload-mark />
        ))}
      {SERIES.map(({ key, color }) => (
        <polyline
          key={key}
          fill="none"
          stroke={color}
          strokeWidth={key === 'max' ? 1 : 2}
          strokeDasharray={key === 'max' ? '6 3' : undefined}
          points={samples.map((s) => `${x(s.at).toFixed(1)},${y(s[key] as number).toFixed(1)}`).join(' ')}
        />
      ))}
    </svg>
  )
}

/** Polls /api/stats every second and charts the pool and the server's own count. */
export function LiveStats() {
  const [stats, setStats] = useState<Stats | null>(null)
  const [samples, setSamples] = useState<Sample[]>([])
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let stopped = false
    let handles: number | null = null
    const tick = async () => {
      try {
        const res = await fetch('/api/stats', { cache: 'no-store' })
        const body = await res.json()
        if (stopped) return
        if (!res.ok) {
          setError(`${res.status}: ${body.code ?? body.error ?? 'error'}`)
          return
        }
        const s: Stats = body
        // Every evaluation of lib/db.ts attaches a handle: a new one is a hot reload.
        const reload = handles !== null && s.pool.handles > handles
        handles = s.pool.handles
        const at = Date.parse(s.at)
        const sample = { at, max: s.pool.max, size: s.pool.size, inUse: s.pool.inUse, waiting: s.pool.waiting, server: s.server.connections, reload }
        setStats(s)
        setSamples((old) => [...old.filter((o) => o.at > at - WINDOW_MS), sample])
        setError(null)
      } catch (e) {
        if (!stopped) setError(String(e))
      }
    }
    tick()
    const timer = setInterval(tick, POLL_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])
  if (!stats) return <p>{error ?? 'loading…'}</p>
  const now = Date.parse(stats.at)
  const reloads = samples.filter((s) => s.reload).length
  const latest: Record<string, number> = {
    max: stats.pool.max,
    size: stats.pool.size,
    inUse: stats.pool.inUse,
    waiting: stats.pool.waiting,
    server: stats.server.connections,
  }
  return (
    <section>
      <h2>
        Pool <code>{stats.pool.name}</code> → <code>{stats.pool.target}</code>
      </h2>
      <Chart samples={samples} now={now} />
      <ul style={{ listStyle: 'none', padding: 0, display: 'flex', flexWrap: 'wrap', gap: '0.5rem 1.5rem' }}>
        {SERIES.map(({ key, label, color }) => (
          <li key={key}>
            <span style={{ display: 'inline-block', width: 12, height: 3, background: color, verticalAlign: 'middle', marginRight: 6 }} />
            {label}: <strong data-stat={key}>{latest[key]}</strong>
          </li>
        ))}
        <li>
          <span style={{ display: 'inline-block', width: 12, borderTop: '2px dashed #f59e0b', verticalAlign: 'middle', marginRight: 6 }} />
          hot reloads of <code>lib/db.ts</code> seen: <strong data-stat="reloads">{reloads}</strong>
        </li>
      </ul>
      <p style={{ color: '#666' }}>
        {stats.pool.handles} module evaluations attached to this one pool; {stats.pool.created} connections opened since start;{' '}
        {stats.pool.acquireTimeouts} acquire timeouts. Updated <span data-at={stats.at}>{new Date(stats.at).toLocaleTimeString()}</span>
        {error ? ` (last poll failed: ${error})` : ''}
      </p>
    </section>
  )
}
