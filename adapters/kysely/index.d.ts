import type { PostgresDialect, PostgresDialectConfig } from 'kysely'
import type { Pool, PoolOptions } from '../../index'

/**
 * A Kysely `PostgresDialect` on an onepool pool, or on the pool `createPool(options)` attaches to
 * (default: `DATABASE_URL`). `config` takes PostgresDialect's other options; `cursor` defaults to
 * onepool's `Cursor`, so `.stream()` works.
 */
export declare function onepoolDialect(
  pool?: Pool | PoolOptions | string,
  config?: Omit<PostgresDialectConfig, 'pool'>,
): PostgresDialect
