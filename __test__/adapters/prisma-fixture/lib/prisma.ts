// lib/prisma.ts
import { PrismaClient } from '../generated/prisma/client'
import { PrismaOnepool } from 'onepool/prisma'

// No globalThis singleton: every evaluation of this module (each hot reload) makes a new
// PrismaClient, and all of them run on the same process-global pool of at most `max` connections.
// DATABASE_URL may carry Prisma's parameters (`schema`, `connection_limit`, `pool_timeout`, ...).
const adapter = new PrismaOnepool({ connectionString: process.env.DATABASE_URL, max: 5 })

export const prisma = new PrismaClient({ adapter })
