import { withPool } from 'onepool/next'
import { db } from '@/lib/db'

export const dynamic = 'force-dynamic'

// Shows what withPool() does. ?mode=
//   ok        a checked-out client used for two statements, released by the route itself
//   leak      a checked-out client the route forgets to release (withPool releases it)
//   throw     a checked-out client, then a plain Error (rethrown: Next answers 500)
//   sql       a server error (SQLSTATE 22P02) on a value the client sent: JSON 500 without it
// (/api/wrapped-busy shows the 503 for POOL_TIMEOUT.)
export const GET = withPool(db, async (req, _ctx, db) => {
  const url = new URL(req.url)
  const mode = url.searchParams.get('mode') ?? 'ok'
  if (mode === 'ok') {
    const client = await db.connect()
    try {
      const a = await client.query('select pg_backend_pid() as pid')
      const b = await client.query('select pg_backend_pid() as pid')
      return Response.json({ mode, samePid: a.rows[0].pid === b.rows[0].pid })
    } finally {
      await client.release()
    }
  }
  if (mode === 'leak') {
    const client = await db.connect()
    await client.query('select 1')
    return Response.json({ mode, checkedOut: db.checkedOut })
  }
  if (mode === 'throw') {
    const client = await db.connect()
    await client.query('begin')
    await client.query('select 1')
    throw new Error('a bug in the route, not a database error')
  }
  if (mode === 'sql') {
    await db.query('select $1::int as n', ['secret-parameter-value'])
    return Response.json({ mode })
  }
  return Response.json({ error: `unknown mode ${mode}` }, { status: 400 })
})
