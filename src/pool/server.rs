//! What a pool knows of its server: which kind of server its connections found (a primary or a
//! standby, read-write or read-only), its replication lag, and whether it accepts connections.
//! A pool of several servers (`crate::cluster`) picks a server for each request from this.

use std::sync::Mutex;
use std::time::Instant;

use super::*;
use crate::conn::{Checked, ServerState};
use crate::error::ConnectCause;

/// The pool's record of its server; see `Pool::server`.
#[derive(Default)]
pub struct ServerStatus(Mutex<ServerView>);

/// A snapshot of `ServerStatus`.
#[derive(Debug, Clone, Default)]
pub struct ServerView {
  /// What the server last said it is (at a connection's startup, or asked by `check`).
  pub state: ServerState,
  /// A standby's replication lag as last checked.
  pub lag_ms: Option<f64>,
  /// When `state` was last confirmed.
  pub seen_at: Option<Instant>,
  /// The last attempts to open a connection failed; cleared by the next one that opens.
  pub failure: Option<Failure>,
}

#[derive(Debug, Clone)]
pub struct Failure {
  pub error: CoreError,
  pub at: Instant,
  /// Failures in a row.
  pub count: u32,
}

impl ServerStatus {
  fn lock(&self) -> std::sync::MutexGuard<'_, ServerView> {
    self.0.lock().unwrap_or_else(|e| e.into_inner())
  }

  pub fn get(&self) -> ServerView {
    self.lock().clone()
  }

  /// What a request needs to pick a server, without copying the last error: the server's state,
  /// and when and how often in a row opening a connection failed.
  pub fn brief(&self) -> (ServerState, Option<(Instant, u32)>) {
    let v = self.lock();
    (v.state, v.failure.as_ref().map(|f| (f.at, f.count)))
  }

  /// A connection opened on a server in `state`. True when the server was known to be of
  /// another kind until now: it was promoted, or came back as a standby.
  fn opened(&self, state: ServerState) -> bool {
    let mut v = self.lock();
    v.failure = None;
    if !state.is_known() {
      return false;
    }
    let changed = v.state.is_known() && v.state != state;
    v.state = state;
    v.seen_at = Some(Instant::now());
    if changed || !state.is_standby() {
      v.lag_ms = None;
    }
    changed
  }

  fn failed(&self, error: &CoreError) {
    let mut v = self.lock();
    let count = v.failure.as_ref().map_or(0, |f| f.count) + 1;
    v.failure = Some(Failure { error: error.clone(), at: Instant::now(), count });
  }

  /// The server refused a write as read-only (`25006`): it is read-only now, whatever it said
  /// before (a check confirms which kind it is).
  pub fn refused_write(&self) {
    let mut v = self.lock();
    v.state.read_only = Some(true);
    v.seen_at = Some(Instant::now());
  }

  /// What a check of the server (`conn::check`) found.
  pub fn checked(&self, c: Checked) {
    let mut v = self.lock();
    v.failure = None;
    v.state = c.state;
    v.lag_ms = c.lag_ms;
    v.seen_at = Some(Instant::now());
  }
}

impl Pool {
  /// What this pool knows of its server.
  pub fn server(&self) -> &ServerStatus {
    &self.server
  }

  /// From now on a new connection finds out which kind of server it is on (asking servers
  /// older than PostgreSQL 14), and a request whose new connection finds the server changed
  /// kind is handed back as never run (`CoreError::NotRun`), for its pool of several servers
  /// to send elsewhere.
  pub fn track_server(&self) {
    self.tracks_server.store(true, Ordering::Relaxed);
  }

  /// Checks a connection out unless that means waiting for a busy one: `None` when none is
  /// idle and the pool is full.
  pub async fn acquire_unless_busy(self: &Arc<Self>) -> Option<CoreResult<Conn>> {
    {
      let st = self.lock();
      if st.closed || (st.idle.is_empty() && !st.room()) {
        return None;
      }
    }
    Some(self.acquire().await)
  }

  /// Checks the server (`conn::check`) on one of the idle connections without counting as a use
  /// of it: it goes back as idle as it was, so the idle timeout still closes it.
  pub async fn check_idle(&self, limit: Duration) {
    let conn = {
      let mut st = self.lock();
      let Some(at) = st.idle.iter().rposition(|c| !c.is_closed() && !retired(c)) else { return };
      if st.closed {
        return;
      }
      st.idle.remove(at)
    };
    let since = conn.idle_since;
    match tokio::time::timeout(limit, crate::conn::check(&conn)).await {
      Ok(Ok(checked)) => self.server.checked(checked),
      _ => return self.discard(conn),
    }
    let back = {
      let mut st = self.lock();
      if st.closed || !st.waiters.is_empty() || !conn.is_clean() || st.size > st.max {
        Some(conn)
      } else {
        // Most recently used last, as `idle` keeps them.
        let at = st.idle.iter().position(|c| c.idle_since > since).unwrap_or(st.idle.len());
        st.idle.insert(at, conn);
        None
      }
    };
    if let Some(conn) = back {
      self.give_back(conn, None);
    }
  }

  /// Records what a new connection says of the server; `Err` when its request must go
  /// elsewhere (see `track_server`), the connection closed.
  pub(super) async fn learn_server(&self, conn: Conn, settings: &Settings) -> CoreResult<Conn> {
    if !self.tracks_server.load(Ordering::Relaxed) {
      self.server.opened(conn.server_at_start);
      return Ok(conn);
    }
    let state = if conn.server_at_start.is_known() {
      conn.server_at_start
    } else {
      // A server that takes connections but cannot say what it is (a PgBouncer whose server is
      // down) is no more usable than one that refuses them.
      let why = match tokio::time::timeout(settings.conn.connect_timeout, crate::conn::check(&conn)).await {
        Ok(Ok(checked)) => Ok(checked.state),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("it did not answer in time".to_string()),
      };
      match why {
        Ok(state) => state,
        Err(why) => {
          let failed = CoreError::ConnectFailed {
            target: self.target.to_string(),
            cause: ConnectCause::Other(format!("the server's kind could not be checked: {why}")),
          };
          self.open_failed(&failed);
          self.discard(conn);
          return Err(CoreError::NotRun(Box::new(failed)));
        }
      }
    };
    if !self.server.opened(state) {
      return Ok(conn);
    }
    let now = if state.is_standby() { "a standby" } else { "a primary" };
    self.discard(conn);
    Err(CoreError::NotRun(Box::new(CoreError::ConnectFailed {
      target: self.target.to_string(),
      cause: ConnectCause::Other(format!("the server is now {now}")),
    })))
  }

  /// Opening a connection failed for a reason of the server's (not for being full).
  pub(super) fn open_failed(&self, error: &CoreError) {
    self.server.failed(error);
  }
}
