// onepool/prisma: a Prisma 7 driver adapter on onepool's process-global native pool.
// The interface types mirror @prisma/driver-adapter-utils 7.x structurally, so `new PrismaClient({ adapter })`
// type-checks without that package installed.

import type { Pool, PoolOptions } from '../../index'

export declare const ColumnTypeEnum: {
  readonly Int32: 0
  readonly Int64: 1
  readonly Float: 2
  readonly Double: 3
  readonly Numeric: 4
  readonly Boolean: 5
  readonly Character: 6
  readonly Text: 7
  readonly Date: 8
  readonly Time: 9
  readonly DateTime: 10
  readonly Json: 11
  readonly Enum: 12
  readonly Bytes: 13
  readonly Set: 14
  readonly Uuid: 15
  readonly Int32Array: 64
  readonly Int64Array: 65
  readonly FloatArray: 66
  readonly DoubleArray: 67
  readonly NumericArray: 68
  readonly BooleanArray: 69
  readonly CharacterArray: 70
  readonly TextArray: 71
  readonly DateArray: 72
  readonly TimeArray: 73
  readonly DateTimeArray: 74
  readonly JsonArray: 75
  readonly EnumArray: 76
  readonly BytesArray: 77
  readonly UuidArray: 78
  readonly UnknownNumber: 128
}
export type ColumnType = (typeof ColumnTypeEnum)[keyof typeof ColumnTypeEnum]

export type IsolationLevel = 'READ UNCOMMITTED' | 'READ COMMITTED' | 'REPEATABLE READ' | 'SNAPSHOT' | 'SERIALIZABLE'

export type ArgScalarType = 'string' | 'int' | 'bigint' | 'float' | 'decimal' | 'boolean' | 'enum' | 'uuid' | 'json' | 'datetime' | 'bytes' | 'unknown'
export interface ArgType {
  scalarType: ArgScalarType
  dbType?: string
  arity: 'scalar' | 'list'
}

export interface SqlQuery {
  sql: string
  args: Array<unknown>
  argTypes: Array<ArgType>
}

export interface SqlResultSet {
  columnTypes: Array<ColumnType>
  columnNames: Array<string>
  rows: Array<Array<unknown>>
  lastInsertId?: string
}

export interface ConnectionInfo {
  schemaName?: string
  maxBindValues?: number
  supportsRelationJoins: boolean
}

type Constraint = { fields: string[] } | { index: string } | { foreignKey: {} }

/** The errors this adapter maps onepool's errors to (a subset of Prisma's `MappedError`). */
export type MappedError = (
  | { kind: 'UnsupportedNativeDataType'; type: string }
  | { kind: 'InvalidIsolationLevel'; level: string }
  | { kind: 'LengthMismatch'; column?: string }
  | { kind: 'UniqueConstraintViolation'; constraint?: Constraint; table?: string }
  | { kind: 'NullConstraintViolation'; constraint?: Constraint }
  | { kind: 'ForeignKeyConstraintViolation'; constraint?: Constraint }
  | { kind: 'RestrictViolation'; constraint?: Constraint }
  | { kind: 'DatabaseNotReachable'; host?: string; port?: number }
  | { kind: 'DatabaseDoesNotExist'; db?: string }
  | { kind: 'DatabaseAlreadyExists'; db?: string }
  | { kind: 'DatabaseAccessDenied'; db?: string }
  | { kind: 'ConnectionClosed' }
  | { kind: 'AuthenticationFailed'; user?: string }
  | { kind: 'TransactionWriteConflict' }
  | { kind: 'TransactionAlreadyClosed'; cause: string }
  | { kind: 'TableDoesNotExist'; table?: string }
  | { kind: 'ColumnNotFound'; column?: string }
  | { kind: 'TooManyConnections'; cause: string }
  | { kind: 'ValueOutOfRange'; cause: string }
  | { kind: 'InvalidInputValue'; message: string }
  | { kind: 'SocketTimeout' }
  | {
      kind: 'postgres'
      code: string
      severity: string
      message: string
      detail: string | undefined
      column: string | undefined
      hint: string | undefined
    }
) & { originalCode?: string; originalMessage?: string }

/** What Prisma's engine maps to its P-codes (same shape as @prisma/driver-adapter-utils'). */
export declare class DriverAdapterError extends Error {
  name: 'DriverAdapterError'
  cause: MappedError
  constructor(payload: MappedError)
}
export declare function isDriverAdapterError(error: unknown): error is DriverAdapterError

export interface SqlQueryable {
  readonly provider: 'postgres'
  readonly adapterName: string
  queryRaw(query: SqlQuery): Promise<SqlResultSet>
  executeRaw(query: SqlQuery): Promise<number>
}

export interface Transaction extends SqlQueryable {
  readonly options: { usePhantomQuery: boolean }
  /** Gives the connection back; Prisma has sent COMMIT itself. */
  commit(): Promise<void>
  /** Gives the connection back (rolled back if the transaction is still open). */
  rollback(): Promise<void>
  createSavepoint(name: string): Promise<void>
  rollbackToSavepoint(name: string): Promise<void>
  releaseSavepoint(name: string): Promise<void>
}

export interface SqlDriverAdapter extends SqlQueryable {
  /** Runs a script of several statements (one simple-protocol query). */
  executeScript(script: string): Promise<void>
  startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction>
  getConnectionInfo(): ConnectionInfo
  /** Rolls back and gives back this adapter's open transactions. Does NOT end the shared pool. */
  dispose(): Promise<void>
  /** The onepool Pool the adapter runs on. */
  underlyingDriver(): Pool
}

/** Called for columns of user-defined types (OID ≥ 16384: enums, extensions), which arrive as text. */
export type UserDefinedTypeParser = (oid: number, value: unknown, queryable: SqlQueryable) => Promise<unknown>

export interface PrismaOnepoolOptions {
  /**
   * The schema Prisma qualifies table names with. Default: the connection string's `schema`
   * parameter (which also sets the connections' `search_path`); pass it when you pass a `Pool`.
   */
  schema?: string
  userDefinedTypeParser?: UserDefinedTypeParser
}

/**
 * Prisma 7 driver adapter factory (`SqlDriverAdapterFactory`) on onepool's native pool:
 * `new PrismaClient({ adapter: new PrismaOnepool({ connectionString, max: 5 }) })`.
 * Every instance with the same pool identity (`name` + host, port, database, user) shares one
 * process-global pool, however many PrismaClients hot reload creates.
 */
export declare class PrismaOnepool {
  readonly provider: 'postgres'
  readonly adapterName: string
  /**
   * @param poolOrOptions createPool() options, a connection string (Prisma's `connection_limit`,
   *   `pool_timeout`, `connect_timeout`, `schema`, `pgbouncer` are understood) or an onepool
   *   `Pool`; default `DATABASE_URL`. Invalid options throw `CONFIG_INVALID` here.
   */
  constructor(poolOrOptions?: Pool | PoolOptions | string, options?: PrismaOnepoolOptions)
  /** The shared onepool Pool: `stats()`, raw `query()`, or `end()` to close it for the whole process. */
  readonly pool: Pool
  connect(): Promise<SqlDriverAdapter>
}
