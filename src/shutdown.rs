//! Clean exit: when the process ends, every connection that can be closed says goodbye with a
//! Terminate message instead of leaving the server to find a dropped socket — within a bound, so
//! exit is never held up for long.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use once_cell::sync::Lazy;
use tokio::sync::Notify;

use crate::registry;

/// Connection socket tasks still running.
static SOCKETS: AtomicUsize = AtomicUsize::new(0);
static SOCKET_CLOSED: Lazy<Notify> = Lazy::new(Notify::new);

/// Held by each connection's socket task for its lifetime.
pub struct SocketGuard(());

impl SocketGuard {
  pub fn hold() -> SocketGuard {
    SOCKETS.fetch_add(1, Ordering::AcqRel);
    SocketGuard(())
  }
}

impl Drop for SocketGuard {
  fn drop(&mut self) {
    SOCKETS.fetch_sub(1, Ordering::AcqRel);
    SOCKET_CLOSED.notify_waiters();
  }
}

/// Closes every pool's idle connections (Terminate is sent as each socket task ends) and waits
/// up to `bound` for those sockets to close. Connections busy with a query are left to the
/// kernel. Returns how many sockets were still open when it returned.
pub fn terminate_all(bound: Duration) -> usize {
  let mut busy = 0;
  for pool in registry::all() {
    busy += pool.close_for_exit();
  }
  crate::runtime::block_on(async {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
      let closed = SOCKET_CLOSED.notified();
      if SOCKETS.load(Ordering::Acquire) <= busy {
        break;
      }
      if tokio::time::timeout_at(deadline, closed).await.is_err() {
        break;
      }
    }
  });
  SOCKETS.load(Ordering::Acquire)
}
