'use client'

import { useEffect, useState } from 'react'
import type { Seen } from '@/lib/last-notification'

type State = Seen & { listening: number }

/** The last notification (server-rendered), then /api/listen polled every second. */
export function LastNotification({ initial }: { initial: Seen['last'] }) {
  const [state, setState] = useState<State | null>(null)
  const [sent, setSent] = useState(0)
  useEffect(() => {
    let stopped = false
    const tick = async () => {
      const res = await fetch('/api/listen', { cache: 'no-store' }).catch(() => null)
      if (res && res.ok && !stopped) setState(await res.json())
    }
    tick()
    const timer = setInterval(tick, 1000)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])
  const last = state ? state.last : initial
  const send = async () => {
    const n = sent + 1
    setSent(n)
    await fetch(`/api/listen?payload=${encodeURIComponent(`hello ${n} from the page`)}`, { method: 'POST' })
  }
  return (
    <section>
      <p data-last-notification={last ? last.payload : ''}>
        {last ? (
          <>
            <strong>{last.payload}</strong> from backend {last.processId} at {new Date(last.at).toLocaleTimeString()}
            {state ? ` (handled ${state.handled[last.payload] ?? 0}×)` : ''}
          </>
        ) : (
          'none yet'
        )}
      </p>
      {state ? <p style={{ color: '#666' }}>listening connection open: {state.listening ? 'yes' : 'no'}</p> : null}
      <button onClick={send}>Send a notification</button>
    </section>
  )
}
