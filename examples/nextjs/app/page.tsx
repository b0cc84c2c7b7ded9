import { LiveStats } from './live-stats'

export default function Home() {
  return (
    <main>
      <h1>onepool in Next.js</h1>
      <p>
        30 route handlers (<code>/api/r01</code> … <code>/api/r30</code>) import <code>lib/db.ts</code>, which
        creates its pool at module scope. However often the dev server re-evaluates it, they share one pool.
      </p>
      <p>
        <a href="/listen">LISTEN/NOTIFY</a>: a route that subscribes at module scope, and the last notification it
        handled.
      </p>
      <LiveStats />
    </main>
  )
}
