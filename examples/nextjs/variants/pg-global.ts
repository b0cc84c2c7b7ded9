import { Pool } from 'pg'

// Baseline: node-postgres behind the globalThis singleton people add to survive hot reload.
const globalForDb = globalThis as unknown as { __examplePgPool?: Pool }

export const db =
  globalForDb.__examplePgPool ??
  new Pool({
    max: 5,
    connectionString: process.env.DATABASE_URL,
    application_name: 'pg-global',
  })
globalForDb.__examplePgPool = db

export const EDIT = 0
