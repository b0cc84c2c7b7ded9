/// <reference types="node" />
import { EventEmitter } from 'node:events'

/** Type parsers in node-postgres's shape (`pg-types`), used per pool or per query. */
export interface CustomTypesConfig {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => any
}

export interface PoolOptions {
  /** Pool identity together with the target (host, port, database, user). Default `"default"`. */
  name?: string
  /** `postgres://` or `postgresql://` URL. Without any target option, `DATABASE_URL` is used. */
  connectionString?: string
  host?: string
  port?: number | string
  user?: string
  password?: string
  database?: string
  /** Sent as `application_name`; default `"onepool"`. Alias: `application_name`. */
  applicationName?: string
  application_name?: string
  /** node-postgres's: `true` = verify-full; `{ ca, rejectUnauthorized }`; or an sslmode string. */
  ssl?: boolean | 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full' | { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean }
  sslmode?: string
  /** Most connections this pool opens. Default 10. Changing it on a live pool resizes it. */
  max?: number
  /** How long a checkout may wait before `POOL_TIMEOUT`. Default 10000; 0 = 24 h. */
  acquireTimeoutMs?: number
  /** Bound for opening one connection (TCP + startup + auth). Default 10000. Alias: `connectionTimeoutMillis`. */
  connectTimeoutMs?: number
  connectionTimeoutMillis?: number
  /** Idle connections close after this long. Default 10000; 0 keeps them. Alias: `idleTimeoutMillis`. */
  idleTimeoutMs?: number
  idleTimeoutMillis?: number
  /** Connections retire after this age, staggered over its last fifth. Default 1800; 0 = never. */
  maxLifetimeSec?: number
  maxLifetimeSeconds?: number
  /** Server-side `statement_timeout` for every connection (error `57014`). Alias: `statement_timeout`. */
  statementTimeoutMs?: number
  statement_timeout?: number
  /** `search_path` for every connection (Prisma's `schema` URL parameter sets it too). */
  searchPath?: string
  /** Behind PgBouncer in transaction mode. */
  pgbouncer?: boolean
  /**
   * A direct connection string (not through PgBouncer) for the listening connection of
   * `listen()`, which needs a session of its own. Alias: `directUrl`.
   */
  listenUrl?: string
  directUrl?: string
  /**
   * All processes on this machine using the same target (host, port, database, user) hold at most
   * this many connections together (env `ONEPOOL_MACHINE_MAX`). Crash-safe: a killed process frees its share.
   */
  machineMax?: number
  /** Prepared statements kept per connection for queries with parameters. Default 100; 0 = unnamed only (always 0 behind PgBouncer). */
  statementCacheSize?: number
  /** TCP keepalive on every connection. Default true. */
  keepAlive?: boolean
  /** Report clients checked out longer than this (with the stack that checked them out). Default off. */
  leakDetectionMs?: number
  /** Receives leak reports; default `console.warn`. */
  onLeak?: (event: LeakEvent) => void
  /** node-postgres-compatible type parsers for this pool. */
  types?: CustomTypesConfig
  /** Accepted for node-postgres compatibility; onepool opens connections lazily. */
  min?: number
  /** Accepted for node-postgres compatibility; an idle onepool pool never keeps the process alive. */
  allowExitOnIdle?: boolean
}

export interface LeakEvent {
  kind: 'leak' | 'returned'
  heldMs: number
  /** Where the client was checked out. */
  stack: string
  pool: string
}

export interface FieldDef {
  name: string
  dataTypeID: number
  format: 'text'
}

export interface QueryResult<R = any> {
  command: string | null
  rowCount: number | null
  oid: number | null
  rows: R[]
  fields: FieldDef[]
  rowAsArray: boolean
}

export interface QueryArrayResult<R extends any[] = any[]> extends QueryResult<R> {
  rowAsArray: true
}

export interface QueryConfig<I extends any[] = any[]> {
  text: string
  values?: I
  rowMode?: 'array'
  types?: CustomTypesConfig
  signal?: AbortSignal
  /** Accepted for node-postgres compatibility; statements are unnamed. */
  name?: string
}

export interface QueryOptions {
  /** Aborting cancels the query on the server (or leaves the queue) and rejects with `ABORTED`. */
  signal?: AbortSignal
}

export type QueryCallback<R = any> = (err: OnepoolError | null, result: QueryResult<R>) => void

export interface Queryable {
  query<R = any, I extends any[] = any[]>(text: string, values?: I, options?: QueryOptions): Promise<QueryResult<R>>
  query<R extends any[] = any[], I extends any[] = any[]>(config: QueryConfig<I> & { rowMode: 'array' }, values?: I): Promise<QueryArrayResult<R>>
  query<R = any, I extends any[] = any[]>(config: QueryConfig<I>, values?: I): Promise<QueryResult<R>>
  query<R = any, I extends any[] = any[]>(text: string | QueryConfig<I>, values: I, callback: QueryCallback<R>): void
  query<R = any>(text: string | QueryConfig, callback: QueryCallback<R>): void
}

declare const sqlFragment: unique symbol

/**
 * A piece of SQL spliced into a tagged template (identifiers, `in` lists, nested fragments). Only
 * `sql.ident`, `sql.inList` and `sql.fragment` make one: any other object, even with the same
 * properties, is sent as a parameter.
 */
export interface SqlFragment {
  readonly strings: readonly string[]
  readonly values: readonly unknown[]
  /** Type-level only: keeps look-alike objects from type-checking as fragments. */
  readonly [sqlFragment]: true
}

export type SqlRows<R> = R[] & { readonly rowCount: number | null; readonly command: string | null; readonly fields: FieldDef[] }

/**
 * Tagged template bound to a pool or client. Every `${value}` is sent as a parameter ($1, $2, ...),
 * never spliced into the text, except fragments from `sql.ident`, `sql.inList` and `sql.fragment`.
 * Called with anything but a tagged template (or one fragment), it rejects with `PARAM_INVALID`.
 */
export interface Sql {
  <R = any>(strings: TemplateStringsArray, ...values: unknown[]): Promise<SqlRows<R>>
  /** Runs a fragment as the whole statement. */
  <R = any>(fragment: SqlFragment): Promise<SqlRows<R>>
  /** `"quoted"."identifier"`; each name a non-empty string of at most 63 bytes. */
  ident(...names: string[]): SqlFragment
  /**
   * `($1, $2, …)` for `in` lists, each element a parameter. With `type` (a type name such as
   * `'int8'`, `'text'`, `'uuid'`, `'myschema.mytype'`) every element is cast to it, and an empty
   * list becomes `(SELECT NULL::type WHERE FALSE)`: `x in` it is false and `x not in` it is true.
   * An empty list without `type` throws `PARAM_INVALID`.
   */
  inList(values: readonly unknown[], type?: string): SqlFragment
  /** A reusable piece of SQL with its own parameters; only as a tag (a string throws `PARAM_INVALID`). */
  fragment(strings: TemplateStringsArray, ...values: unknown[]): SqlFragment
  fragment(fragment: SqlFragment): SqlFragment
  /** What would be sent: `{ text, values }`; only as a tag, or for one fragment. */
  compile(strings: TemplateStringsArray, ...values: unknown[]): { text: string; values: unknown[] }
  compile(fragment: SqlFragment): { text: string; values: unknown[] }
}

export interface TransactionOptions {
  isolationLevel?: 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable' | Uppercase<'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable'>
  readOnly?: boolean
  deferrable?: boolean
}

export declare class PoolClient extends EventEmitter implements Queryable {
  query: Queryable['query']
  sql: Sql
  /** `pg_backend_pid()` of the pinned connection. */
  readonly processID: number
  readonly released: boolean
  /** Returns the client to the pool (rolled back if a transaction is open); a truthy argument closes it. */
  release(destroy?: boolean | Error): Promise<void>
  /** Inside a transaction: a savepoint. Outside: a transaction on this client. */
  transaction<T>(fn: (client: PoolClient) => Promise<T> | T, options?: TransactionOptions): Promise<T>
}

export interface PoolStats {
  name: string
  /** `user@host:port/database`, never with a password. */
  target: string
  max: number
  size: number
  idle: number
  inUse: number
  waiting: number
  created: number
  acquireTimeouts: number
  /** How many `createPool()` calls attached to this native pool. */
  handles: number
  closed: boolean
  /**
   * 1 while the pool's listening connection (`listen()`) is open. It counts in `size` (with
   * `listenUrl`: in the process budget only), not in `inUse`.
   */
  listening: number
}

/** A NOTIFY, as node-postgres's `'notification'` event carries it. */
export interface Notification {
  channel: string
  payload: string
  /** `pg_backend_pid()` of the session that sent it. */
  processId: number
}

/** What `onReconnect` receives: listening resumed after notifications may have been missed. */
export interface ReconnectInfo {
  channel: string
  /** When listening stopped (or the first attempt failed): catch up on what happened since. */
  since: Date
  /** Connection attempts it took to listen again. */
  attempts: number
  /** Why listening stopped (`CONNECTION_LOST` with the server's reason, `CONNECT_FAILED`, ...). */
  cause: OnepoolError
}

export interface ListenOptions {
  /**
   * Subscriptions with the same key (in one JavaScript thread) replace each other: the newer
   * one ends the older. Default: a subscription made at module scope is keyed by its database and
   * channel (so that a hot reload replaces it); one made later has no key. `null`: no key.
   */
  key?: string | null
  /** Called each time listening resumes after an outage, during which notifications were lost. */
  onReconnect?: (info: ReconnectInfo) => void
  /** Receives what the handler (or `onReconnect`) threw or rejected with; default `console.error`. */
  onError?: (err: unknown, notification: Notification | ReconnectInfo) => void
}

export interface Subscription {
  readonly channel: string
  /**
   * Resolves once the LISTEN is in effect. Rejects if the first attempt failed (the subscription
   * keeps trying; `onReconnect` says when it listens) or the pool was ended first.
   */
  readonly ready: Promise<void>
  /** Stops delivery at once; the UNLISTEN (or the closing of the listening connection) follows. */
  unlisten(): void
  /** Keeps the process alive while subscribed (by default a subscription does not). */
  ref(): this
  unref(): this
}

export declare class Pool extends EventEmitter implements Queryable {
  query: Queryable['query']
  sql: Sql
  connect(): Promise<PoolClient>
  connect(callback: (err: OnepoolError | null, client: PoolClient, done: (release?: any) => void) => void): void
  /** COMMIT when `fn` resolves, ROLLBACK when it throws; nested calls on the client use savepoints. */
  transaction<T>(fn: (client: PoolClient) => Promise<T> | T, options?: TransactionOptions): Promise<T>
  /**
   * Calls `handler` for every NOTIFY on `channel` (the exact name, as `pg_notify` takes it).
   * All subscriptions of the pool share one listening connection, which reconnects by itself.
   */
  listen(channel: string, handler: (notification: Notification) => void | Promise<void>, options?: ListenOptions): Subscription
  /** `select pg_notify(channel, payload)`; a payload over 7999 bytes is `PARAM_INVALID`. */
  notify(channel: string, payload?: string): Promise<void>
  stats(): PoolStats
  readonly totalCount: number
  readonly idleCount: number
  readonly waitingCount: number
  readonly ended: boolean
  /** Closes this native pool for every handle in the process. */
  end(options?: { timeoutMs?: number }): Promise<void>
}

export interface ProcessStats {
  pools: PoolStats[]
  budget: { limit: number | null; used: number; waiting: number }
  /** `'wasm'` when the WebAssembly fallback runs (see README, "WebAssembly fallback"). */
  build: 'native' | 'wasm'
  pid: number
}

export type ClientErrorCode =
  | 'CONFIG_INVALID'
  | 'CONNECT_FAILED'
  | 'POOL_TIMEOUT'
  | 'POOL_CLOSED'
  | 'CONNECTION_LOST'
  | 'PARAM_INVALID'
  | 'CLIENT_RELEASED'
  | 'TRANSACTION_ABORTED'
  | 'ABORTED'
  | 'PROTOCOL_ERROR'
  | 'RUNTIME_UNSUPPORTED'
  | 'BINDING_MISSING'
  | 'INTERNAL'

export declare class OnepoolError extends Error {
  name: 'OnepoolError'
  /** A SQLSTATE (`'23505'`) for server errors, else a `ClientErrorCode`. */
  code: ClientErrorCode | (string & {})
  severity?: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  file?: string
  line?: string
  routine?: string
  /** For `CONNECT_FAILED`: an Error whose `code` is the OS code (`ECONNREFUSED`) or the server's SQLSTATE. */
  cause?: Error & { code?: string }
  /**
   * For `POOL_TIMEOUT`, what the request waited for: a connection of the pool (`acquire`), a slot
   * of the machine-wide budget (`machineBudget`), or its turn behind a request that made no
   * progress on a shared connection (`queued`).
   */
  timeoutKind?: 'acquire' | 'machineBudget' | 'queued'
}

export declare function createPool(options?: PoolOptions | string): Pool
export declare function processStats(): ProcessStats
export declare function setProcessMaxConnections(limit: number | null): void
export declare function closeAll(options?: { timeoutMs?: number }): Promise<void>
export declare function isOnepoolError(err: unknown): err is OnepoolError
export declare const errorCodes: readonly ClientErrorCode[]
export declare const types: {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => any
  setTypeParser(oid: number, parser: (value: string) => any): void
  setTypeParser(oid: number, format: 'text' | 'binary', parser: (value: string) => any): void
}
