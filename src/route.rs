//! How a request reaches a connection: the one place that decides.
//!
//! - A `pool.query()` of one self-contained statement (`conn::pipelinable`) without an abort
//!   signal is *shared*: it goes to a connection that other such requests may use at the same
//!   time (`pool::shared`).
//! - A `pool.query()` with an abort signal, or of a statement that may change the session (BEGIN,
//!   SET, several statements), gets a connection of its *own* for its length: a CancelRequest stops
//!   whatever the backend runs at that moment, and session state must not leak to other requests.
//! - On a pinned session (`pool.connect()`, transactions) requests run in order on its connection;
//!   with a signal, a cancel waits for the requests of an earlier owner first (`abort::run`).
//! - A row stream or a COPY holds its connection from its first message to its last, so it runs
//!   on a pinned session: the client's, or one that `pool.stream()` / `pool.copyFrom()` check out
//!   (in JavaScript) for their length. Requests a client sends meanwhile wait behind it.
//!
//! A pool with several servers (a multi-host target, read replicas) first picks the server
//! (`cluster`); the request then reaches that server's pool as above.

use std::sync::Arc;

use crate::abort::{self, AbortToken};
use crate::cluster::{Cluster, Intent};
use crate::conn::{pipelinable, Conn, Copy, CopyDirection, Done, Inbox, Query, Response, RowStream};
use crate::error::{CoreError, CoreResult};
use crate::pool::Pool;
use crate::session::Session;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
  Shared,
  Own,
}

pub fn route(query: &Query, token: &Option<AbortToken>) -> Route {
  if token.is_none() && pipelinable(&query.sql) {
    Route::Shared
  } else {
    Route::Own
  }
}

/// A task's outcome if it panicked (contained by the runtime): the caller still gets an answer.
fn internal() -> CoreResult<Response> {
  Err(CoreError::Internal("internal error in onepool (please report it)".into()))
}

/// Starts a `pool.query()` for a server `intent` accepts; its outcome goes to `done`. Returns
/// the read side of the connection the request was written to, when it went out synchronously
/// and the calling thread may read the reply itself.
pub fn submit_to_pool(
  cluster: &Arc<Cluster>,
  intent: Intent,
  query: Arc<Query>,
  token: Option<AbortToken>,
  done: Done,
) -> Option<Arc<Inbox>> {
  if let Some(pool) = cluster.direct() {
    return submit_to_server(pool, query, token, done);
  }
  match route(&query, &token) {
    Route::Shared => cluster.submit(intent, query, done, shared),
    Route::Own => {
      let cluster = cluster.clone();
      let checkout = async move { cluster.acquire(intent).await };
      crate::runtime::spawn_settled(on_own_connection(checkout, query, token), done, internal());
      None
    }
  }
}

/// Starts a `pool.query()` on the pool of one server (see `submit_to_pool`).
pub fn submit_to_server(
  pool: &Arc<Pool>,
  query: Arc<Query>,
  token: Option<AbortToken>,
  done: Done,
) -> Option<Arc<Inbox>> {
  match route(&query, &token) {
    Route::Shared => shared(pool, query, done),
    Route::Own => {
      let pool = pool.clone();
      let checkout = async move { Ok((pool.clone(), pool.acquire().await?)) };
      crate::runtime::spawn_settled(on_own_connection(checkout, query, token), done, internal());
      None
    }
  }
}

/// A shared request on one server's pool: sent from this thread when it can be, else by a task.
fn shared(pool: &Arc<Pool>, query: Arc<Query>, done: Done) -> Option<Arc<Inbox>> {
  match pool.try_submit_shared(query, done) {
    Ok(inbox) => inbox,
    Err((query, done)) => {
      let pool = pool.clone();
      crate::runtime::spawn_settled(async move { pool.query_shared(query).await }, done, internal());
      None
    }
  }
}

/// Starts a request on a pinned session; its outcome goes to `done`. Returns the read side as
/// `submit_to_pool` does.
pub fn submit_to_session(
  session: &Session,
  query: Arc<Query>,
  token: Option<AbortToken>,
  done: Done,
) -> Option<Arc<Inbox>> {
  if token.is_none() {
    return session.run_then(query, done);
  }
  match session.query(query, token) {
    Ok(request) => crate::runtime::spawn_settled(request, done, internal()),
    Err(e) => done(Err(e)),
  }
  None
}

/// Starts a row stream on a pinned session (see the module's rules).
pub fn stream_on_session(
  session: &Session,
  query: &Query,
  batch: u32,
  prefetch: bool,
) -> CoreResult<RowStream> {
  session.stream(query, batch, prefetch)
}

/// Starts a COPY on a pinned session (see the module's rules).
pub fn copy_on_session(session: &Session, query: &Query, expect: CopyDirection) -> CoreResult<Copy> {
  session.copy(query, expect)
}

/// A connection checked out for one request (abortable while it waits), given back after it.
async fn on_own_connection(
  checkout: impl std::future::Future<Output = CoreResult<(Arc<Pool>, Conn)>>,
  query: Arc<Query>,
  token: Option<AbortToken>,
) -> CoreResult<Response> {
  let (pool, conn) = tokio::select! {
    biased;
    c = checkout => c?,
    _ = abort::aborted(&token) => return Err(CoreError::Aborted),
  };
  let result =
    abort::run(conn.run(query), conn.cancel_key.clone(), conn.killer(), conn.earlier_requests(), &token)
      .await;
  pool.check_in(conn, false).await;
  result
}
