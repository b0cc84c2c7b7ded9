//! The deadlines of shared requests waiting in the pool's queue: one task per pool wakes at the
//! next one and fails those whose wait ran out with POOL_TIMEOUT.

use super::*;

impl Pool {
  /// Queued shared requests past their deadline get POOL_TIMEOUT; returns the next deadline.
  pub(super) fn expire_requests(&self) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    let (expired, next) = {
      let mut st = self.lock();
      let mut expired = Vec::new();
      let mut kept = VecDeque::with_capacity(st.waiters.len());
      for w in st.waiters.drain(..) {
        match w {
          Queued::Request(r) if r.deadline <= now => expired.push(r),
          other => kept.push_back(other),
        }
      }
      st.waiters = kept;
      let next = st
        .waiters
        .iter()
        .filter_map(|w| match w {
          Queued::Request(r) => Some(r.deadline),
          _ => None,
        })
        .min();
      (expired, next)
    };
    if !expired.is_empty() {
      self.acquire_timeouts.fetch_add(expired.len() as u64, Ordering::Relaxed);
      let err = self.timeout_error(self.acquire_timeout());
      for r in expired {
        (r.done)(Err(err.clone()));
      }
    }
    next
  }
}

/// Runs for the pool's life: fails queued shared requests whose wait ran out. `changed` is
/// the pool's `queue_changed`, held here so that waiting does not keep the pool alive.
pub(super) async fn expire_queued(pool: Weak<Pool>, changed: Arc<Notify>) {
  loop {
    let notified = changed.notified();
    let Some(p) = pool.upgrade() else { return };
    let next = p.expire_requests();
    let finished = p.lock().closed && next.is_none();
    drop(p);
    if finished {
      return;
    }
    // Without a deadline to wait for, look again now and then: the pool may have been dropped.
    let at = next.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(5));
    tokio::select! {
      _ = tokio::time::sleep_until(at) => {}
      _ = notified => {}
    }
  }
}
