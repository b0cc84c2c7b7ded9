import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '@/generated/prisma/client'

// Baseline: Prisma 7 (Rust-free `prisma-client` generator) with the pg driver adapter, client
// at module scope.
const prisma = new PrismaClient({
  adapter: new PrismaPg({
    connectionString: process.env.DATABASE_URL,
    max: 5,
    application_name: 'prisma-naive',
  }),
})

export const db = {
  async query(text: string, values: unknown[] = []) {
    return { rows: await prisma.$queryRawUnsafe<Record<string, unknown>[]>(text, ...values) }
  },
}

export const EDIT = 0
