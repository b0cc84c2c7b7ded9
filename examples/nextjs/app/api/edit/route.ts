import { EDIT } from '@/lib/db'

export const dynamic = 'force-dynamic'

// No query: scripts/e2e-next.js polls this until the dev server serves its latest edit of lib/db.ts.
export function GET() {
  return Response.json({ edit: EDIT })
}
