//! What is known of each server, and keeping it current.
//!
//! A server's pool records what its new connections say (`in_hot_standby`, ...) and when they
//! cannot be opened (`pool::ServerStatus`). On top of that, a server is checked
//! (`conn::check`: `pg_is_in_recovery()`, `transaction_read_only`, the replay lag):
//! - when nothing is known of it yet, or it is due to be tried again after failing;
//! - every `RECHECK` while requests wait for a server of another kind than it is (a standby
//!   being promoted shows within that);
//! - every `PERIOD` on one of its idle connections, if it has one (a promotion, the lag).
//!
//! A server whose connections cannot be opened is down, and tried again after a backoff that
//! doubles with each failure in a row (`BACKOFF_FIRST` up to `BACKOFF_MOST`).

use super::*;
use crate::conn::ServerState;
use crate::pool::ServerStatus;

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MOST: Duration = Duration::from_secs(5);
/// How often a server of the wrong kind is looked at while requests wait.
const RECHECK: Duration = Duration::from_millis(100);
/// How often servers with idle connections are checked.
const PERIOD: Duration = Duration::from_secs(1);

pub(super) enum Availability {
  /// Its connections open, and it said what it is.
  Up(ServerState),
  /// Not heard from yet.
  Unknown,
  /// Opening a connection failed; `due` once it is time to try again.
  Down { due: bool },
}

fn backoff(failures: u32) -> Duration {
  BACKOFF_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(BACKOFF_MOST)
}

pub(super) fn availability(server: &ServerStatus, now: Instant) -> Availability {
  match server.brief() {
    (_, Some((at, count))) => Availability::Down { due: now >= at + backoff(count) },
    (state, None) if state.is_known() => Availability::Up(state),
    (_, None) => Availability::Unknown,
  }
}

impl Cluster {
  /// Checks server `i` now unless a check of it is running: on an idle connection, or a new
  /// one if the pool has room.
  pub(super) fn kick(&self, i: usize) {
    if !self.start_check(i) {
      return;
    }
    let me = self.me.clone();
    crate::runtime::spawn(async move {
      let Some(cluster) = me.upgrade() else { return };
      let pool = cluster.members[i].pool.clone();
      let limit = cluster.connect_timeout();
      let member = &cluster.members[i];
      let attrs = cluster.routing().session_attrs;
      let _ = tokio::time::timeout(limit * 2, async {
        if let Some(Ok(conn)) = pool.acquire_unless_busy().await {
          let mut fits = true;
          if let Ok(Ok(checked)) = tokio::time::timeout(limit, crate::conn::check(&conn)).await {
            pool.server().checked(checked);
            fits = !member.listed || super::pick::accepts(attrs, &checked.state);
          }
          // As libpq does, a connection on a server of the wrong kind is closed; reads
          // (`pool.replica`) open their own when they come.
          pool.check_in(conn, !fits).await;
        }
      })
      .await;
      cluster.end_check(i);
    });
  }

  /// Kicks a check of server `i` unless it was looked at within `RECHECK`.
  pub(super) fn recheck(&self, i: usize, now: Instant) {
    let last = self.members[i].check.lock().unwrap_or_else(|e| e.into_inner()).last;
    if last.is_none_or(|t| now.saturating_duration_since(t) >= RECHECK) {
      self.kick(i);
    }
  }

  /// Checks server `i` on an idle connection, which stays as idle as it was.
  fn check_idle(&self, i: usize) {
    if !self.start_check(i) {
      return;
    }
    let me = self.me.clone();
    crate::runtime::spawn(async move {
      let Some(cluster) = me.upgrade() else { return };
      let pool = cluster.members[i].pool.clone();
      pool.check_idle(cluster.connect_timeout()).await;
      cluster.end_check(i);
    });
  }

  fn start_check(&self, i: usize) -> bool {
    let mut c = self.members[i].check.lock().unwrap_or_else(|e| e.into_inner());
    if c.running {
      return false;
    }
    c.running = true;
    c.last = Some(Instant::now());
    true
  }

  fn end_check(&self, i: usize) {
    self.members[i].check.lock().unwrap_or_else(|e| e.into_inner()).running = false;
    self.changed.notify_waiters();
  }
}

/// Runs while the cluster lives: retries servers that are down when they are due, and checks
/// the others on their idle connections.
pub(super) async fn keep_current(cluster: Weak<Cluster>) {
  loop {
    tokio::time::sleep(PERIOD).await;
    let Some(c) = cluster.upgrade() else { return };
    if c.is_closed() {
      return;
    }
    let now = Instant::now();
    for i in 0..c.members.len() {
      match availability(c.members[i].pool.server(), now) {
        Availability::Down { due: true } => c.kick(i),
        Availability::Down { due: false } => {}
        Availability::Up(_) | Availability::Unknown => {
          if c.members[i].pool.stats().idle > 0 {
            c.check_idle(i);
          }
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn backoff_doubles_up_to_its_bound() {
    assert_eq!(backoff(1), Duration::from_millis(100));
    assert_eq!(backoff(2), Duration::from_millis(200));
    assert_eq!(backoff(5), Duration::from_millis(1600));
    assert_eq!(backoff(7), BACKOFF_MOST);
    assert_eq!(backoff(u32::MAX), BACKOFF_MOST);
  }
}
