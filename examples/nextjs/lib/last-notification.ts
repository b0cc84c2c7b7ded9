// What the LISTEN route's handler saw, kept in one place for the whole process: `next dev` may
// hold several evaluations of a module at once (a hot update is evaluated once per route chunk
// that includes it) and only the latest subscription handles notifications, so state in module
// scope would be per evaluation. The subscription itself needs no such care
// (app/api/listen/route.ts).

export const CHANNEL = 'onepool_example'

export type Seen = {
  last: { payload: string; processId: number; at: string } | null
  /** How many times the handler ran per payload: once each, however often the route reloads. */
  handled: Record<string, number>
  /** How many times the dev server evaluated the route that subscribes. */
  evaluations: number
}

const KEY = Symbol.for('onepool-example.last-notification')
const store = globalThis as typeof globalThis & { [KEY]?: Seen }

export const seen: Seen = (store[KEY] ??= { last: null, handled: {}, evaluations: 0 })
