import { EDIT } from '@/lib/db'

export const dynamic = 'force-dynamic'

// No query: the end-to-end run polls this until the dev server serves its latest edit of lib/db.ts.
export function GET() {
  return Response.json({ edit: EDIT })
}
