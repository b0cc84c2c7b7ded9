//! Clean exit: when the process ends, every connection that can be closed says goodbye with a
//! Terminate message instead of leaving the server to find a dropped socket — within a bound, so
//! exit is never held up for long.

use std::time::Duration;

use crate::conn::sockets;
use crate::registry;

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
      let closed = sockets::closed();
      if sockets::open() <= busy {
        break;
      }
      if tokio::time::timeout_at(deadline, closed).await.is_err() {
        break;
      }
    }
  });
  sockets::open()
}
