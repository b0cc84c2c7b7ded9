import type { DrizzleConfig } from 'drizzle-orm'
import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { Pool, PoolOptions } from '../../index'

/**
 * A Drizzle database (the `node-postgres` driver) on an onepool pool, or on the pool
 * `createPool(options)` attaches to (default: `DATABASE_URL`). `config` is Drizzle's own.
 */
export declare function drizzle<TSchema extends Record<string, unknown> = Record<string, never>>(
  pool?: Pool | PoolOptions | string,
  config?: DrizzleConfig<TSchema>,
): NodePgDatabase<TSchema> & { $client: Pool }
