import { createPool } from 'onepool'
import { withPool } from 'onepool/next'

export const dynamic = 'force-dynamic'

// A deliberately tiny pool (its own name, so its own native pool): one connection, and a
// caller waits at most 300 ms for it. ?mode=hold&ms=2000 keeps the connection busy; a request
// meanwhile gets 503 with Retry-After instead of hanging or a stack trace.
const busy = createPool({ name: 'example-busy', max: 1, acquireTimeoutMs: 300, idleTimeoutMs: 1000, applicationName: 'onepool-example-busy' })

export const GET = withPool(
  busy,
  async (req, _ctx, db) => {
    const url = new URL(req.url)
    if (url.searchParams.get('mode') === 'hold') {
      const ms = Number(url.searchParams.get('ms') ?? 2000)
      await db.query('select pg_sleep($1::float8 / 1000) is null as slept', [ms])
      return Response.json({ held: ms })
    }
    const client = await db.connect()
    return Response.json({ pid: client.processID })
  },
  { retryAfterSeconds: 2 },
)
