//! A connection pinned to one caller (`pool.connect()`, transactions) until it is released.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::abort::AbortToken;
use crate::conn::{Conn, Done, Inbox, Query, Response, Write};
use crate::error::{CoreError, CoreResult};
use crate::pool::{HandOn, Pool};

/// Upper bound for the ROLLBACK that cleans a connection returned inside a transaction.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

pub enum ReleaseNow {
  Done,
  NotNow,
  /// The connection went to checkout `request` of the calling environment, as this session.
  HandedTo(u32, Session),
}

pub struct Session {
  pool: Arc<Pool>,
  conn: Mutex<Option<Conn>>,
}

impl Session {
  pub fn new(pool: Arc<Pool>, conn: Conn) -> Session {
    Session { pool, conn: Mutex::new(Some(conn)) }
  }

  pub fn process_id(&self) -> i32 {
    self.conn.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |c| c.cancel_key.process_id)
  }

  /// Queues a request on the pinned connection; the returned future does not borrow the session.
  pub fn query(
    &self,
    query: Arc<Query>,
    token: Option<AbortToken>,
  ) -> CoreResult<impl Future<Output = CoreResult<Response>> + Send + 'static> {
    let (request, key, killer, earlier) = match self.conn.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
      Some(c) => (c.run(query), c.cancel_key.clone(), c.killer(), c.earlier_requests()),
      None => return Err(CoreError::ClientReleased),
    };
    Ok(async move { crate::abort::run(request, key, killer, earlier, &token).await })
  }

  /// Queues a request whose outcome goes to `done` on the I/O thread (no task, no cancel).
  /// Returns the connection's read side, when any thread may read it.
  pub fn run_then(&self, query: Arc<Query>, done: Done) -> Option<Arc<Inbox>> {
    let refused = match self.conn.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
      Some(c) => match c.run_then(query, done, Write::Now) {
        Ok(()) => return c.inbox(),
        Err(d) => (d, CoreError::ConnectionLost("connection lost: the connection is closed".into())),
      },
      None => (done, CoreError::ClientReleased),
    };
    let (done, err) = refused;
    done(Err(err));
    None
  }

  /// Returns the connection at once when that needs no round trip (it is clean, closed or to be
  /// destroyed). `NotNow` when a transaction left open must be rolled back first (`release`).
  /// `owner` is the calling JavaScript environment: a checkout it queued may get the
  /// connection straight back (`Pool::release_to`).
  pub fn release_now(&self, destroy: bool, owner: Option<u32>) -> ReleaseNow {
    let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
    let Some(conn) = slot.take_if(|c| destroy || c.is_closed() || c.is_clean()) else {
      return if slot.is_none() { ReleaseNow::Done } else { ReleaseNow::NotNow };
    };
    drop(slot);
    if destroy || conn.is_closed() {
      self.pool.discard(conn);
      return ReleaseNow::Done;
    }
    match self.pool.release_to(conn, owner) {
      Some((request, conn)) => ReleaseNow::HandedTo(request, Session::new(self.pool.clone(), conn)),
      None => ReleaseNow::Done,
    }
  }

  /// Passes the connection to a checkout waiting in the pool while the COMMIT just sent on it
  /// is still running (`Pool::hand_to_waiter`). `NotNow` when nobody waits: keep it, and
  /// release it once the COMMIT is done.
  pub fn release_to_waiter(&self, owner: Option<u32>) -> ReleaseNow {
    let Some(conn) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take() else {
      return ReleaseNow::Done;
    };
    match self.pool.hand_to_waiter(conn, owner) {
      HandOn::Caller(request, conn) => ReleaseNow::HandedTo(request, Session::new(self.pool.clone(), conn)),
      HandOn::Delivered => ReleaseNow::Done,
      HandOn::Kept(conn) => {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        ReleaseNow::NotNow
      }
    }
  }

  pub async fn release(&self, destroy: bool) {
    let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(conn) = conn {
      check_in(&self.pool, conn, destroy).await;
    }
  }
}

impl Drop for Session {
  /// A client garbage-collected without `release()` still goes back, cleaned.
  fn drop(&mut self) {
    let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(conn) = conn {
      let pool = self.pool.clone();
      crate::runtime::spawn(async move { check_in(&pool, conn, false).await });
    }
  }
}

/// Returns a connection to its pool, rolling back a transaction left open; a connection that
/// cannot be cleaned is closed, never handed out dirty.
pub async fn check_in(pool: &Pool, conn: Conn, destroy: bool) {
  if destroy || conn.is_closed() {
    pool.discard(conn);
    return;
  }
  if !conn.is_clean() {
    let cleaned = tokio::time::timeout(CLEANUP_TIMEOUT, conn.simple("ROLLBACK")).await;
    if !matches!(cleaned, Ok(Ok(_))) {
      pool.discard(conn);
      return;
    }
  }
  pool.release(conn);
}
