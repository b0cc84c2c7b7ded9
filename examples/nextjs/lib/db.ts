import { createPool } from 'onepool'

// Written the naive way on purpose: a pool at module scope, no globalThis singleton. The dev
// server re-evaluates this module after every edit (Turbopack: once per route that imports it),
// and each evaluation attaches to the same process-global native pool, so the app never holds
// more than `max` connections.
export const db = createPool({
  max: 5,
  acquireTimeoutMs: 10_000,
  applicationName: 'onepool-example',
})

// The end-to-end run rewrites this constant on every round (and `max` above on two rounds).
export const EDIT = 0
