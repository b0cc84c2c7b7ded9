import { Pool } from 'pg'

// Baseline: node-postgres, pool at module scope (each module evaluation opens its own pool).
export const db = new Pool({
  max: 5,
  connectionString: process.env.DATABASE_URL,
  application_name: 'pg-naive',
})

export const EDIT = 17
