//! A request sent to the server `pick` chose, and sent elsewhere again when it certainly did not
//! run there: its connection could not be opened (`CONNECT_FAILED`), or the request never
//! reached the server (`CoreError::NotRun`: the connection was lost before it was sent, or the
//! new connection found the server changed kind). Anything that may have run is never sent
//! again: its caller gets the error (`CONNECTION_LOST`, or the server's SQLSTATE).

use super::pick::Pick;
use super::*;
use crate::conn::{Conn, Done, Inbox, Query};
use crate::error::{CoreError, CoreResult};

/// How a request goes to the pool of the server it was sent to (`route` decides).
pub type SendTo = fn(&Arc<Pool>, Arc<Query>, Done) -> Option<Arc<Inbox>>;

/// Errors after which a request certainly did not run.
fn never_ran(e: &CoreError) -> bool {
  matches!(e, CoreError::NotRun(_) | CoreError::ConnectFailed { .. })
}

/// Where a request is in its routing: how often it was sent, and until when it may wait for a
/// server of the kind it needs.
#[derive(Clone, Copy)]
struct Routed {
  intent: Intent,
  attempt: usize,
  deadline: tokio::time::Instant,
}

impl Cluster {
  /// How many times one request may be sent to a server.
  fn most_attempts(&self) -> usize {
    2 * self.members.len() + 1
  }

  /// Sends a request through `send` to a server `intent` accepts; its outcome goes to `done`.
  /// Returns what `send` returned when the request went out from this thread.
  pub fn submit(
    self: &Arc<Self>,
    intent: Intent,
    query: Arc<Query>,
    done: Done,
    send: SendTo,
  ) -> Option<Arc<Inbox>> {
    let deadline = tokio::time::Instant::now() + self.connect_timeout();
    self.route(Routed { intent, attempt: 0, deadline }, query, done, send)
  }

  fn route(self: &Arc<Self>, r: Routed, query: Arc<Query>, done: Done, send: SendTo) -> Option<Arc<Inbox>> {
    match self.pick(r.intent) {
      Pick::Use(i) => self.send_to(i, r, query, done, send),
      Pick::Fail(e) => {
        done(Err(e));
        None
      }
      Pick::Wait => {
        let me = self.clone();
        crate::runtime::spawn(async move {
          match me.wait_for(r.intent, r.deadline).await {
            Ok(i) => drop(me.send_to(i, r, query, done, send)),
            Err(e) => done(Err(e)),
          }
        });
        None
      }
    }
  }

  fn send_to(
    self: &Arc<Self>,
    i: usize,
    r: Routed,
    query: Arc<Query>,
    done: Done,
    send: SendTo,
  ) -> Option<Arc<Inbox>> {
    let me = self.me.clone();
    let again = query.clone();
    let most = self.most_attempts();
    let done: Done = Box::new(move |outcome| match (outcome, me.upgrade()) {
      (Err(e), Some(cluster))
        if r.attempt + 1 < most && !cluster.is_closed() && cluster.may_resend(i, r, &e) =>
      {
        let r = Routed { attempt: r.attempt + 1, ..r };
        drop(cluster.route(r, again, done, send));
      }
      (outcome, _) => done(outcome),
    });
    send(&self.members[i].pool, query, done)
  }

  /// Whether a shared request that failed with `e` on server `i` may go to another server: it
  /// certainly did not run, or it was refused as a write by a server the pool needs to take
  /// writes (`25006`: a read-only transaction wrote nothing). Such a server is rechecked.
  fn may_resend(&self, i: usize, r: Routed, e: &CoreError) -> bool {
    if never_ran(e) {
      return true;
    }
    let refused = matches!(e, CoreError::Db(db) if db.code == "25006");
    if !refused || r.intent != Intent::Target {
      return false;
    }
    self.members[i].pool.server().refused_write();
    self.kick(i);
    self.routing().session_attrs == SessionAttrs::ReadWrite
  }

  /// Waits until a server fits `intent` (see `pick`), until `deadline`.
  async fn wait_for(&self, intent: Intent, deadline: tokio::time::Instant) -> CoreResult<usize> {
    loop {
      let changed = self.changed.notified();
      tokio::pin!(changed);
      changed.as_mut().enable();
      if self.is_closed() {
        return Err(CoreError::PoolClosed(format!(
          "pool \"{}\" ({}) has been ended",
          self.name, self.servers
        )));
      }
      match self.pick(intent) {
        Pick::Use(i) => return Ok(i),
        Pick::Fail(e) => return Err(e),
        Pick::Wait => {}
      }
      if tokio::time::Instant::now() >= deadline {
        return Err(self.none_fits(intent));
      }
      // A change wakes this at once; the sleep looks again for servers due to be rechecked.
      tokio::select! {
        _ = &mut changed => {}
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        _ = tokio::time::sleep_until(deadline) => {}
      }
    }
  }

  /// Checks a connection out of a server `intent` accepts (waiting for one as `submit` does);
  /// tries another when it could not be opened there.
  pub async fn acquire(self: &Arc<Self>, intent: Intent) -> CoreResult<(Arc<Pool>, Conn)> {
    if let Some(pool) = self.direct() {
      return Ok((pool.clone(), pool.acquire().await?));
    }
    let deadline = tokio::time::Instant::now() + self.connect_timeout();
    let mut attempt = 0;
    loop {
      let i = self.wait_for(intent, deadline).await?;
      let pool = self.members[i].pool.clone();
      match pool.acquire().await {
        Ok(conn) => return Ok((pool, conn)),
        Err(e) if never_ran(&e) && attempt + 1 < self.most_attempts() => attempt += 1,
        Err(e) => return Err(e),
      }
    }
  }

  /// A connection of a server `intent` accepts that was idle for less than the ping interval,
  /// without waiting (see `Pool::try_acquire_now`).
  pub fn try_acquire_now(&self, intent: Intent) -> Option<(Arc<Pool>, Conn)> {
    let pool = match self.direct() {
      Some(pool) => pool,
      None => match self.pick(intent) {
        Pick::Use(i) => &self.members[i].pool,
        _ => return None,
      },
    };
    pool.try_acquire_now().map(|conn| (pool.clone(), conn))
  }
}
