import type { OnepoolError, Pool, PoolClient } from '../../index'

export interface WithPoolOptions {
  /** `Retry-After` (seconds) of the 503 sent for POOL_TIMEOUT. Default 1. */
  retryAfterSeconds?: number
  /** Called with each database error turned into a response. Default: console.error. */
  onError?: (error: OnepoolError, request: Request) => void
}

/** The per-request database handle a withPool() handler gets. */
export declare class RequestDb {
  private constructor()
  query: Pool['query']
  sql: Pool['sql']
  /** Checks out a client; released when the handler settles if the handler did not. */
  connect(): Promise<PoolClient>
  transaction: Pool['transaction']
  stats(): ReturnType<Pool['stats']>
  /** Clients this request holds now. */
  readonly checkedOut: number
}

export type PoolRouteHandler<Req extends Request, Ctx, Res extends Response> = (
  request: Req,
  context: Ctx,
  db: RequestDb,
) => Res | Promise<Res>

/**
 * Wraps a route handler: clients checked out through `db` are released when it settles (even on
 * throw), POOL_TIMEOUT becomes a 503 with Retry-After, other database errors a JSON 500 that
 * leaks no SQL, parameters or credentials.
 */
export declare function withPool<Req extends Request = Request, Ctx = any, Res extends Response = Response>(
  pool: Pool,
  handler: PoolRouteHandler<Req, Ctx, Res>,
  options?: WithPoolOptions,
): (request: Req, context: Ctx) => Promise<Res | Response>

/** The db of the withPool() handler running in this async context, if any. */
export declare function requestDb(): RequestDb | undefined

/** The response withPool() sends for a database error; null for any other error. */
export declare function errorResponse(error: unknown, options?: { retryAfterSeconds?: number }): Response | null
