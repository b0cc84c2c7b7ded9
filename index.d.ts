/// <reference types="node" />
import { EventEmitter } from 'node:events'
import { Readable, Writable } from 'node:stream'

/** Type parsers in node-postgres's shape (`pg-types`), used per pool or per query. */
export interface CustomTypesConfig {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => any
}

export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby'

export interface PoolOptions {
  /** Pool identity together with the target (hosts, ports, database, user, replicas). Default `"default"`. */
  name?: string
  /** `postgres://` or `postgresql://` URL. Without any target option, `DATABASE_URL` is used. */
  connectionString?: string
  /** A host, or a host list (`'h1,h2'` or `['h1', 'h2']`): a multi-host target, as libpq's. */
  host?: string | string[]
  /** A port for every host, or one port per host (`'5432,5433'` or `[5432, 5433]`). */
  port?: number | string | number[]
  user?: string
  /** A string, or a function (sync or async) asked for each new connection: rotating credentials, cloud IAM tokens. */
  password?: string | (() => string | Promise<string>)
  database?: string
  /** Sent as `application_name`; default `"onepool"`. Alias: `application_name`. */
  applicationName?: string
  application_name?: string
  /**
   * node-postgres's: `true` = verify-full; an object (verify-full unless `rejectUnauthorized: false`,
   * then require); or an sslmode string. Alias: `sslmode`.
   */
  ssl?: boolean | 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full' | SslOptions
  sslmode?: string
  /**
   * SCRAM channel binding (SCRAM-SHA-256-PLUS over TLS), as libpq's `channel_binding`. Default
   * `"prefer"`; `"require"` fails unless the server authenticated with it. Alias: `channel_binding`.
   */
  channelBinding?: 'disable' | 'prefer' | 'require'
  channel_binding?: 'disable' | 'prefer' | 'require'
  /**
   * `"direct"` starts TLS at once (PostgreSQL 17+, ALPN `postgresql`, needs sslmode require or
   * stronger); default `"postgres"` (SSLRequest first). Alias: `sslnegotiation`.
   */
  sslNegotiation?: 'postgres' | 'direct'
  sslnegotiation?: 'postgres' | 'direct'
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
  /**
   * Largest message accepted from the server, in bytes: a larger one (a result row, a corrupt or
   * hostile length) is `PROTOCOL_ERROR` and closes that connection. Default and most: 1 GiB.
   */
  maxMessageBytes?: number
  /** TCP keepalive on every connection. Default true. */
  keepAlive?: boolean
  /** Report clients checked out longer than this (with the stack that checked them out). Default off. */
  leakDetectionMs?: number
  /** Receives leak reports; default `console.warn`. */
  onLeak?: (event: LeakEvent) => void
  /** node-postgres-compatible type parsers for this pool. */
  types?: CustomTypesConfig
  /** Idle connections are not closed for idleness below this many (never above `max`); connections still open lazily. */
  min?: number
  /** Accepted for node-postgres compatibility; an idle onepool pool never keeps the process alive. */
  allowExitOnIdle?: boolean
  /** node-postgres's alias of `max`. */
  poolSize?: number
  /** Client-side bound for each query, from the call to its result: `QUERY_TIMEOUT`, the statement cancelled. 0/absent = off. */
  queryTimeoutMs?: number
  /** node-postgres's name of `queryTimeoutMs`. */
  query_timeout?: number
  /** Server-side `lock_timeout` on every connection (ms). */
  lock_timeout?: number
  /** Server-side `idle_in_transaction_session_timeout` on every connection (ms). */
  idle_in_transaction_session_timeout?: number
  /** Startup command-line options, as in node-postgres and libpq (`'-c geqo=off'`). */
  options?: string
  /** `applicationName` when none is given. */
  fallback_application_name?: string
  /** Only UTF8 is accepted. */
  client_encoding?: string
  /** Close a connection after it was checked out this many times. */
  maxUses?: number
  /** Runs on each connection new to this pool object before its first use (may query it). */
  onConnect?: (client: PoolClient) => void | Promise<void>
  /** node-postgres's `verify(client, callback)` for new connections; an error fails the checkout. */
  verify?: (client: PoolClient, callback: (err?: Error) => void) => void
  /** Receives the pool's log messages (node-postgres's `log`). */
  log?: (message: string) => void
  /** node-postgres's `pipeline`: `client.pipeline` shows it; onepool pipelines a client's queries anyway. */
  pipeline?: boolean
  /**
   * libpq's: which kind of server the pool's connections land on, the first of the host list
   * that fits (see README, "Beyond one machine"). Default `'any'`. Alias: `target_session_attrs`.
   */
  targetSessionAttrs?: TargetSessionAttrs
  target_session_attrs?: TargetSessionAttrs
  /** libpq's: `'random'` tries the hosts in random order. Default `'disable'`. Alias: `load_balance_hosts`. */
  loadBalanceHosts?: 'disable' | 'random'
  load_balance_hosts?: 'disable' | 'random'
  /** Servers only `pool.replica` reads go to: `'host'`, `'host:port'`, `{ host, port }` or connection strings (same user, database and settings). */
  replicas?: Array<string | { host: string; port?: number | string }>
  /** Only `false` (text results, node-postgres's default). */
  binary?: false
  /** Only `false` (node-postgres's default). */
  parseInputDatesAsUTC?: false
  /** Ignored with a warning: onepool speaks the protocol itself. */
  Client?: unknown
  /** Ignored with a warning: native promises. */
  Promise?: unknown
  /** Ignored with a warning: the operating system's keepalive delay is used. */
  keepAliveInitialDelayMillis?: number
  /** node-postgres's: `true` = `channelBinding: "prefer"`, `false` = `"disable"`. */
  enableChannelBinding?: boolean
}

/** node-postgres's `ssl` object: the fields onepool reads. */
export interface SslOptions {
  /** Trusted CA certificates, PEM (replaces the public roots). */
  ca?: string | Buffer | Array<string | Buffer>
  /** Client certificate (and any intermediates), PEM. */
  cert?: string | Buffer | Array<string | Buffer>
  /** The client certificate's private key, PEM: PKCS#8, PKCS#1 or SEC1, clear or encrypted. */
  key?: string | Buffer
  /** Passphrase of an encrypted `key`. */
  passphrase?: string
  /** `false` = encrypt without verifying (sslmode require). */
  rejectUnauthorized?: boolean
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
  /** May be left out after a statement of the same `name` was given its text. */
  text?: string
  values?: I
  rowMode?: 'array'
  types?: CustomTypesConfig
  signal?: AbortSignal
  /** Milliseconds from the call to the result (`QUERY_TIMEOUT`). */
  timeout?: number
  /** node-postgres's spelling of `timeout`. */
  query_timeout?: number
  /**
   * node-postgres's named statement: given with its text once (through this pool object or its
   * clients), later calls may give only the name; a name used for another text is refused
   * (`PARAM_INVALID`). onepool's statement cache prepares it on each connection.
   */
  name?: string
}

export interface QueryOptions {
  /** Aborting cancels the query on the server (or leaves the queue) and rejects with `ABORTED`. */
  signal?: AbortSignal
  /** Milliseconds from the call to the result; past it `QUERY_TIMEOUT` and the statement is cancelled. */
  timeout?: number
}

export type QueryCallback<R = any> = (err: OnepoolError | null, result: QueryResult<R>) => void

export interface Queryable {
  /** pg's `client.query(submittable)`: onepool's `Cursor` or `QueryStream`, attached and returned. */
  query<S extends Cursor | QueryStream>(submittable: S): S
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

export interface StreamOptions {
  /** Rows per batch (default 1000): about this many rows are held at a time, in Rust and in JavaScript. */
  batchSize?: number
  rowMode?: 'array'
  types?: CustomTypesConfig
  /** Aborting ends the stream (a batch the server is computing is cancelled): `ABORTED`. */
  signal?: AbortSignal
}

/**
 * The rows of one statement, a batch at a time (`for await`). Leaving the loop early, `close()`,
 * the signal or an error ends the statement and gives the connection back clean.
 */
export interface RowStream<R = any> extends AsyncIterableIterator<R> {
  /** Ends the stream; resolves once its connection is clean (a pool's given back). */
  close(): Promise<void>
  /** The columns, once the first batch came. */
  readonly fields: FieldDef[] | undefined
  /** The statement's row count, once the stream ended by itself. */
  readonly rowCount: number | null
}

export interface CursorConfig {
  rowMode?: 'array'
  types?: CustomTypesConfig
}

/**
 * A cursor in pg-cursor's shape: `read(n)` gives the next n rows (fewer only at the end, then
 * `[]`), each read asking the server for exactly its rows. `client.query(new Cursor(...))`
 * returns it attached (Kysely's `cursor` option); `client.cursor()` / `pool.cursor()` make one.
 */
export declare class Cursor<R = any> extends EventEmitter {
  constructor(text: string, values?: unknown[], config?: CursorConfig)
  readonly text: string
  readonly values: unknown[]
  read(rows: number): Promise<R[]>
  read(rows: number, callback: (err: OnepoolError | undefined, rows: R[], result: QueryResult<R> | undefined) => void): void
  /** Ends the cursor early; the connection is clean (a pool's given back) once it resolves. */
  close(): Promise<void>
  close(callback: (err?: OnepoolError) => void): void
}

/**
 * A Readable of rows in pg-query-stream's shape: `client.query(new QueryStream(text, values,
 * { batchSize }))`. Destroying it ends the statement and gives the connection back clean.
 */
export declare class QueryStream<R = any> extends Readable {
  constructor(text: string, values?: unknown[], config?: CursorConfig & { batchSize?: number; highWaterMark?: number })
  readonly text: string
  readonly values: unknown[]
  readonly batchSize: number
  [Symbol.asyncIterator](): AsyncIterableIterator<R>
}

export interface CopyOptions {
  /** Aborting stops the COPY (CopyFail or a cancel): `ABORTED`, and the table gets none of its rows. */
  signal?: AbortSignal
}

/** What `copyFrom` sends: a Readable, or any (async) iterable of Buffers or strings, or one of them. */
export type CopySource =
  | Readable
  | Iterable<Buffer | Uint8Array | string>
  | AsyncIterable<Buffer | Uint8Array | string>
  | Buffer
  | Uint8Array
  | string

/** The Writable `copyFrom(text)` returns: pipe the data in; `rowCount` once it finished. */
export interface CopyFromStream extends Writable {
  readonly rowCount: number | null
}

/** The Readable of Buffers `copyTo(text)` returns; `rowCount` once it ended. */
export interface CopyToStream extends Readable {
  readonly rowCount: number | null
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer>
}

/** Streams, cursors and COPY, on a pool (a connection for their length) or on a client. */
export interface Streaming {
  /** The rows of one statement, `batchSize` at a time: `for await (const row of db.stream(text, values))`. */
  stream<R = any>(text: string, values?: unknown[], options?: StreamOptions): RowStream<R>
  /** A pg-cursor-shaped cursor (on a pool it holds a connection from its first read to its end or `close()`). */
  cursor<R = any>(text: string, values?: unknown[], config?: CursorConfig): Cursor<R>
  /** `COPY ... FROM STDIN` with `source`'s data, untouched (text, csv, binary). */
  copyFrom(text: string, source: CopySource, options?: CopyOptions): Promise<{ rowCount: number }>
  /** `COPY ... FROM STDIN`: a Writable to pipe the data into. */
  copyFrom(text: string, source?: undefined, options?: CopyOptions): CopyFromStream
  /** `COPY ... TO STDOUT` as a Readable of Buffers. */
  copyTo(text: string, options?: CopyOptions): CopyToStream
}

export interface TransactionOptions {
  isolationLevel?: 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable' | Uppercase<'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable'>
  readOnly?: boolean
  deferrable?: boolean
}

/** A server notice (RAISE NOTICE, "… does not exist, skipping"), as node-postgres's NoticeMessage. */
export interface Notice {
  name: 'notice'
  severity: string | undefined
  code: string | undefined
  message: string | undefined
  detail: string | undefined
  hint: string | undefined
  position: string | undefined
  internalPosition: string | undefined
  internalQuery: string | undefined
  where: string | undefined
  schema: string | undefined
  table: string | undefined
  column: string | undefined
  dataType: string | undefined
  constraint: string | undefined
  file: string | undefined
  line: string | undefined
  routine: string | undefined
}

export declare class PoolClient extends EventEmitter implements Queryable, Streaming {
  query: Queryable['query']
  stream: Streaming['stream']
  cursor: Streaming['cursor']
  copyFrom: Streaming['copyFrom']
  copyTo: Streaming['copyTo']
  sql: Sql
  /** `pg_backend_pid()` of the pinned connection. */
  readonly processID: number
  /** The server the connection is on: its host (or socket directory) and port. */
  readonly host: string
  readonly port: number
  readonly released: boolean
  /** node-postgres's `client._ending`: true once the connection is closed or closing. */
  readonly _ending: boolean
  /** node-postgres's `pipeline` option as given (onepool pipelines a client's queries anyway). */
  readonly pipeline: boolean
  /** Returns the client to the pool (rolled back if a transaction is open); a truthy argument closes it. */
  release(destroy?: boolean | Error): Promise<void>
  /** node-postgres's `client.end()`: closes this connection now; a `release()` after it is a no-op. */
  end(): Promise<void>
  end(callback: (err?: OnepoolError) => void): void
  /** This client's parser for a type (node-postgres's per-client type overrides), kept across checkouts. */
  setTypeParser(oid: number, parser: (value: string) => any): void
  setTypeParser(oid: number, format: 'text' | 'binary', parser: (value: string) => any): void
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => any
  /** Inside a transaction: a savepoint. Outside: a transaction on this client. */
  transaction<T>(fn: (client: PoolClient) => Promise<T> | T, options?: TransactionOptions): Promise<T>
  /** Each notice of this client's queries, before the query settles. */
  on(event: 'notice', listener: (notice: Notice) => void): this
  /** Its connection broke while idle in the pool (then the pool's 'error' follows). */
  on(event: 'error', listener: (err: OnepoolError) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
}

export interface HostStats {
  host: string
  port: number
  /** A read replica (`replicas`), not in the host list. */
  replica: boolean
  /** What the server said it is; `'unknown'` before a connection told. */
  role: 'primary' | 'standby' | 'unknown'
  /** New transactions are read-only there (a standby, or `default_transaction_read_only`). */
  readOnly: boolean | null
  /** `'down'`: its connections could not be opened (`error` says why); it is tried again later. */
  state: 'up' | 'down' | 'unknown'
  size: number
  idle: number
  inUse: number
  waiting: number
  /** A standby's replication lag as last checked (0: it replayed all it received). */
  lagMs: number | null
  error: string | null
}

export interface PoolStats {
  name: string
  /** `user@host:port/database` (`user@h1:5432,h2:5433/database replicas r1:5432` with several servers), never with a password. */
  target: string
  /** Most connections per server. */
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
  /** Each server: the host list's in its order, then the replicas; which connections are where. */
  hosts: HostStats[]
  /**
   * 1 while the pool's listening connection (`listen()`) is open. It counts in `size` and in the
   * `size` of the server it is on (`hosts`; with `listenUrl`: in the process budget only), not in
   * `inUse`.
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

export declare class Pool extends EventEmitter implements Queryable, Streaming {
  query: Queryable['query']
  stream: Streaming['stream']
  cursor: Streaming['cursor']
  copyFrom: Streaming['copyFrom']
  copyTo: Streaming['copyTo']
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
  /**
   * This pool for reads a standby may serve: a replica or a standby of the host list (random among
   * those up), else the pool's own server. Lag applies: read your own writes through the pool.
   */
  readonly replica: Pool
  readonly totalCount: number
  readonly idleCount: number
  readonly waitingCount: number
  /** Always 0: connections past their lifetime close as they come back and are not counted apart. */
  readonly expiredCount: number
  /** True once `end()` was called on this object (or the pool was ended through another). */
  readonly ending: boolean
  /** True once the pool was ended and its last connection closed. */
  readonly ended: boolean
  /** What was passed to `createPool`, with node-postgres's defaults filled in (the password not enumerable). */
  readonly options: Readonly<Record<string, unknown>>
  /**
   * Lets requests already made through this object finish (queued ones too), then closes this
   * native pool for every handle in the process; a second call rejects with `POOL_CLOSED`.
   */
  end(options?: { timeoutMs?: number }): Promise<void>
  end(callback: (err?: OnepoolError) => void): void
  on(event: 'connect', listener: (client: PoolClient) => void): this
  /** An 'acquire' listener makes `pool.query` check a client out, so `client` is always given. */
  on(event: 'acquire', listener: (client: PoolClient) => void): this
  /** `err`: `release(err)`'s argument, or a `pool.query`'s error (`null` when it succeeded). */
  on(event: 'release', listener: (err: unknown, client: PoolClient | undefined) => void): this
  on(event: 'remove', listener: (client: PoolClient | { connectionId: number }) => void): this
  on(event: 'error', listener: (err: OnepoolError, client: PoolClient | undefined) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
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
  | 'CLIENT_BUSY'
  | 'TRANSACTION_ABORTED'
  | 'COMMIT_UNKNOWN'
  | 'ABORTED'
  | 'QUERY_TIMEOUT'
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
  /** For `CONNECTION_LOST`: true when the request never reached the server (it did not run). */
  notRun?: boolean
}

export declare function createPool(options?: PoolOptions | string): Pool
export declare function processStats(): ProcessStats
export declare function setProcessMaxConnections(limit: number | null): void
export declare function closeAll(options?: { timeoutMs?: number }): Promise<void>
export declare function isOnepoolError(err: unknown): err is OnepoolError
export declare const errorCodes: readonly ClientErrorCode[]
/** node-postgres's `pg.defaults`, for what onepool takes from it. */
export declare const defaults: {
  /** `true`: every `int8` (and `int8[]`) is a number, in every pool of the process (precision lost above 2^53). */
  parseInt8: boolean
}
export declare const types: {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => any
  setTypeParser(oid: number, parser: (value: string) => any): void
  setTypeParser(oid: number, format: 'text' | 'binary', parser: (value: string) => any): void
}
