import { CHANNEL, seen } from '@/lib/last-notification'
import { LastNotification } from './last-notification'

export const dynamic = 'force-dynamic'

export default function ListenPage() {
  return (
    <main>
      <h1>Last notification</h1>
      <p>
        <code>app/api/listen/route.ts</code> subscribes to <code>{CHANNEL}</code> at module scope. Edit it (or{' '}
        <code>lib/db.ts</code>) and save: the re-evaluated route replaces its subscription, so each notification
        below is counted once, and the server sees one listening connection.
      </p>
      <LastNotification initial={seen.last} />
    </main>
  )
}
