import postgres from 'postgres'

// Baseline: postgres.js at module scope.
const sql = postgres(process.env.DATABASE_URL!, {
  max: 5,
  connection: { application_name: 'postgres-naive' },
})

export const db = {
  async query(text: string, values: unknown[] = []) {
    return { rows: await sql.unsafe(text, values as never[]) }
  },
}

export const EDIT = 0
