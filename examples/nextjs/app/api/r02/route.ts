import { db, EDIT } from '@/lib/db'

export const dynamic = 'force-dynamic'

// e2e-edit: 0
export async function GET() {
  const { rows } = await db.query(
    'select $1::text as route, pg_backend_pid() as pid, pg_sleep(0.05) is null as slept',
    ['r02'],
  )
  return Response.json({ route: rows[0].route, edit: EDIT, pid: rows[0].pid })
}
