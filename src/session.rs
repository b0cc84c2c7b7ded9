//! A connection pinned to one caller (`pool.connect()`, transactions) until it is given back.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abort::{self, AbortToken};
use crate::conn::{Conn, Copy, CopyDirection, Done, Inbox, Query, Response, RowStream, Write};
use crate::error::{CoreError, CoreResult};
use crate::pool::{Pool, Returned};

pub struct Session {
  pool: Arc<Pool>,
  conn: Mutex<Option<Conn>>,
}

impl Session {
  pub fn new(pool: Arc<Pool>, conn: Conn) -> Session {
    Session { pool, conn: Mutex::new(Some(conn)) }
  }

  fn conn(&self) -> MutexGuard<'_, Option<Conn>> {
    self.conn.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// The pool's id for the pinned connection (0 once given back).
  pub fn connection_id(&self) -> u64 {
    self.conn().as_ref().map_or(0, |c| c.id)
  }

  /// The server the pinned connection is on: its host (or socket directory) and port.
  pub fn server(&self) -> Option<(String, u16)> {
    self.conn().as_ref().map(|c| (c.cancel_key.host.to_string(), c.cancel_key.port))
  }

  pub fn process_id(&self) -> i32 {
    self.conn().as_ref().map_or(0, |c| c.cancel_key.process_id)
  }

  /// Queues a cancellable request on the pinned connection; the returned future does not borrow
  /// the session.
  pub fn query(
    &self,
    query: Arc<Query>,
    token: Option<AbortToken>,
  ) -> CoreResult<impl Future<Output = CoreResult<Response>> + Send + 'static> {
    let (request, key, killer, earlier) = match self.conn().as_ref() {
      Some(c) => (c.run(query), c.cancel_key.clone(), c.killer(), c.earlier_requests()),
      None => return Err(CoreError::ClientReleased),
    };
    Ok(async move { abort::run(request, key, killer, earlier, &token).await })
  }

  /// Queues a request whose outcome goes to `done` on the I/O thread (no task, no cancel).
  /// Returns the connection's read side, when any thread may read it.
  pub fn run_then(&self, query: Arc<Query>, done: Done) -> Option<Arc<Inbox>> {
    let refused = match self.conn().as_ref() {
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

  /// Starts a row stream on the pinned connection (`Conn::stream`); requests sent meanwhile
  /// run after it.
  pub fn stream(&self, query: &Query, batch: u32, prefetch: bool) -> CoreResult<RowStream> {
    match self.conn().as_ref() {
      Some(c) => c.stream(query, batch, prefetch),
      None => Err(CoreError::ClientReleased),
    }
  }

  /// Starts a COPY on the pinned connection (`Conn::copy`); requests sent meanwhile run after it.
  pub fn copy(&self, query: &Query, expect: CopyDirection) -> CoreResult<Copy> {
    match self.conn().as_ref() {
      Some(c) => c.copy(query, expect),
      None => Err(CoreError::ClientReleased),
    }
  }

  /// Gives the connection back at once when that needs no round trip (it is clean, closed or to
  /// be destroyed); `Kept` when a transaction left open must be rolled back first
  /// (`give_back`). `owner` is the calling JavaScript environment (`Pool::give_back`).
  pub fn give_back_now(&self, destroy: bool, owner: Option<u32>) -> Returned<Session> {
    let mut slot = self.conn();
    let Some(conn) = slot.take_if(|c| destroy || c.is_closed() || c.is_clean()) else {
      return if slot.is_none() { Returned::Gone } else { Returned::Kept };
    };
    drop(slot);
    if destroy || conn.is_closed() {
      self.pool.discard(conn);
      return Returned::Gone;
    }
    self.around(self.pool.give_back(conn, owner))
  }

  /// Passes the connection to a checkout waiting in the pool while the COMMIT just sent on it
  /// is still running (`Pool::pass_on`); `Kept` when nobody waits: keep it, and give it back once
  /// the COMMIT is done.
  pub fn pass_on(&self, owner: Option<u32>) -> Returned<Session> {
    let returned = self.pool.pass_on(&mut self.conn(), owner);
    self.around(returned)
  }

  /// Gives the connection back, rolled back if a transaction is open; `destroy` closes it.
  pub async fn give_back(&self, destroy: bool) {
    let conn = self.conn().take();
    if let Some(conn) = conn {
      // A stream its holder did not finish ends first; the clean-up queues behind it.
      conn.end_streams();
      self.pool.check_in(conn, destroy).await;
    }
  }

  /// A connection handed to the caller's own checkout becomes a session of its own.
  fn around(&self, returned: Returned<Conn>) -> Returned<Session> {
    match returned {
      Returned::ToCaller(request, conn) => Returned::ToCaller(request, Session::new(self.pool.clone(), conn)),
      Returned::Gone => Returned::Gone,
      Returned::Kept => Returned::Kept,
    }
  }
}

impl Drop for Session {
  /// A client garbage-collected without `release()` still goes back, cleaned.
  fn drop(&mut self) {
    let conn = self.conn.get_mut().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(conn) = conn {
      conn.end_streams();
      let pool = self.pool.clone();
      crate::runtime::spawn(async move { pool.check_in(conn, false).await });
    }
  }
}
