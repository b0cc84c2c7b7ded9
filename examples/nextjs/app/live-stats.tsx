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

const ROWS: [string, (s: Stats) => number | string][] = [
  ['pool max', (s) => s.pool.max],
  ['connections (size)', (s) => s.pool.size],
  ['idle', (s) => s.pool.idle],
  ['in use', (s) => s.pool.inUse],
  ['waiting', (s) => s.pool.waiting],
  ['created since start', (s) => s.pool.created],
  ['acquire timeouts', (s) => s.pool.acquireTimeouts],
  ['module evaluations attached (handles)', (s) => s.pool.handles],
  ['server: connections of this role (pg_stat_activity)', (s) => s.server.connections],
]

/** Polls /api/stats every second. */
export function LiveStats() {
  const [stats, setStats] = useState<Stats | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let stopped = false
    const tick = async () => {
      try {
        const res = await fetch('/api/stats', { cache: 'no-store' })
        const body = await res.json()
        if (stopped) return
        if (res.ok) {
          setStats(body)
          setError(null)
        } else {
          setError(`${res.status}: ${body.code ?? body.error ?? 'error'}`)
        }
      } catch (e) {
        if (!stopped) setError(String(e))
      }
    }
    tick()
    const timer = setInterval(tick, 1000)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])
  if (!stats) return <p>{error ?? 'loading…'}</p>
  return (
    <section>
      <h2>
        Pool <code>{stats.pool.name}</code> → <code>{stats.pool.target}</code>
      </h2>
      <table style={{ borderCollapse: 'collapse' }}>
        <tbody>
          {ROWS.map(([label, get]) => (
            <tr key={label}>
              <td style={{ padding: '0.2rem 1rem 0.2rem 0' }}>{label}</td>
              <td style={{ padding: '0.2rem 0', textAlign: 'right', fontVariantNumeric: 'tabular-nums' }} data-stat={label}>
                {get(stats)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p style={{ color: '#666' }}>
        updated {new Date(stats.at).toLocaleTimeString()}
        {error ? ` (last poll failed: ${error})` : ''}
      </p>
    </section>
  )
}
