// Copied to app/api/edge/route.ts by __test__/e2e/next.js for one request, then removed: a route
// in the Edge runtime that imports onepool. onepool is a native addon, so this cannot work; the
// question is how clearly it fails.
import { createPool } from 'onepool'

export const runtime = 'edge'
export const dynamic = 'force-dynamic'

export async function GET() {
  const db = createPool({ max: 1 })
  const { rows } = await db.query('select 1 as one')
  return Response.json(rows[0])
}
