import { db, EDIT } from '@/lib/db'
import { CHANNEL, seen } from '@/lib/last-notification'

export const dynamic = 'force-dynamic'

// The end-to-end run edits this number, and adds lines above it so that the subscription below
// moves, to make the dev server evaluate this module again.
const ROUTE_EDIT = 0 // e2e-edit

// Subscribed at module scope, the naive way. `next dev` evaluates this module again after every
// edit (of this file or of lib/db.ts); each evaluation's subscription replaces the previous one
// (README, "LISTEN/NOTIFY"), so every notification is handled once, on one listening connection.
db.listen(CHANNEL, (n) => {
  seen.last = { payload: n.payload, processId: n.processId, at: new Date().toISOString() }
  seen.handled[n.payload] = (seen.handled[n.payload] ?? 0) + 1
})
seen.evaluations++

/** What the handler saw, and whether the pool's listening connection is open. */
export function GET() {
  return Response.json({ ...seen, listening: db.stats().listening, edit: EDIT, routeEdit: ROUTE_EDIT })
}

/** Sends `?payload=` as a NOTIFY on the channel (`select pg_notify($1, $2)`). */
export async function POST(req: Request) {
  const payload = new URL(req.url).searchParams.get('payload') ?? ''
  await db.notify(CHANNEL, payload)
  return Response.json({ sent: payload })
}
