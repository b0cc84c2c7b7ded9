import { withPool } from 'onepool/next'
import { db } from '@/lib/db'

export const dynamic = 'force-dynamic'

// Pool statistics plus the server's own view: how many connections this role holds.
export const GET = withPool(db, async (_req, _ctx, db) => {
  const { rows } = await db.query(
    'select count(*)::int as connections, current_user::text as role from pg_stat_activity where usename = current_user',
  )
  return Response.json({ pool: db.stats(), server: rows[0], at: new Date().toISOString() })
})
