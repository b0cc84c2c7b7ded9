//! How many connection sockets are open in this process. Clean exit (`shutdown`) waits for the
//! idle ones to say goodbye; each connection's I/O task holds a `SocketGuard` while it runs.

use std::sync::atomic::{AtomicUsize, Ordering};

use once_cell::sync::Lazy;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

static OPEN: AtomicUsize = AtomicUsize::new(0);
static CLOSED: Lazy<Notify> = Lazy::new(Notify::new);

/// Held by each connection's I/O task for its lifetime.
pub(crate) struct SocketGuard(());

impl SocketGuard {
  pub(crate) fn hold() -> SocketGuard {
    OPEN.fetch_add(1, Ordering::AcqRel);
    SocketGuard(())
  }
}

impl Drop for SocketGuard {
  fn drop(&mut self) {
    OPEN.fetch_sub(1, Ordering::AcqRel);
    CLOSED.notify_waiters();
  }
}

/// Connection sockets still open.
pub fn open() -> usize {
  OPEN.load(Ordering::Acquire)
}

/// Completes when a socket closes; create it before checking `open()` so no close is missed.
pub fn closed() -> Notified<'static> {
  CLOSED.notified()
}
