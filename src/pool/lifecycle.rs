//! A pool's life: idle connections reaped, evicted for others' budgets, closed at `end`.

use super::*;

/// The reaper's period: twice a second, and a quarter of the idle timeout when that is short,
/// so an idle timeout is honoured to within a quarter of itself (`idleTimeoutMillis: 100`
/// closes a connection 100–125 ms after it went idle, not up to 500 ms later).
fn reap_period(idle_timeout: Option<Duration>) -> Duration {
  let regular = Duration::from_millis(500);
  idle_timeout.map_or(regular, |t| (t / 4).clamp(Duration::from_millis(2), regular))
}

pub(super) async fn reap_idle(pool: Weak<Pool>) {
  loop {
    let period = match pool.upgrade() {
      Some(pool) => reap_period(pool.settings().pool.idle_timeout),
      None => return,
    };
    tokio::time::sleep(period).await;
    let Some(pool) = pool.upgrade() else { return };
    pool.reap();
    pool.time_out_queued();
    pool.yield_to_other_processes();
    let finished = {
      let st = pool.lock();
      st.closed && st.size == 0
    };
    if finished {
      return;
    }
  }
}

impl Pool {
  /// Closes one idle connection (the least recently used) to free a slot for someone else.
  pub fn evict_one_idle(&self) -> bool {
    let conn = {
      let mut st = self.lock();
      if st.idle.is_empty() {
        return false;
      }
      st.size -= 1;
      st.idle.remove(0)
    };
    drop(conn);
    self.shrunk.notify_waiters();
    true
  }

  /// Stops new checkouts and requests at once: waiters fail with `POOL_CLOSED`, idle
  /// connections close; busy ones close as they come back.
  pub fn close(&self) {
    let (idle, waiters) = {
      let mut st = self.lock();
      st.closed = true;
      let idle: Vec<Conn> = st.idle.drain(..).collect();
      st.size -= idle.len();
      (idle, std::mem::take(&mut st.waiters))
    };
    drop(idle);
    self.fail_checkouts(waiters);
    self.stop_listening();
    self.queue_changed.notify_one();
  }

  /// `close`, then waits up to `timeout` for busy connections to come back. Past it, those
  /// still busy are closed (and their statements cancelled on the server), and their requests
  /// fail with `POOL_CLOSED`: nothing keeps the process alive after `end()`.
  /// True when every connection closed within `timeout`.
  pub async fn end(&self, timeout: Duration) -> bool {
    self.close();
    let deadline = tokio::time::Instant::now() + timeout;
    if self.until_empty(deadline).await {
      return true;
    }
    let busy: Vec<(Killer, CancelKey)> = std::mem::take(&mut self.lock().live);
    let reason = CoreError::PoolClosed(format!(
      "pool \"{}\" ({}) was ended while this query ran; after {} ms its connection was closed",
      self.name,
      self.target,
      timeout.as_millis()
    ));
    for (killer, key) in busy.into_iter().filter(|(k, _)| !k.is_closed()) {
      killer.kill_because(reason.clone());
      // The server notices a closed socket only when it next writes: stop the statement too.
      let _ = tokio::time::timeout(Duration::from_millis(500), crate::conn::cancel(&key)).await;
    }
    // The killed connections leave the books as their holders notice.
    self.until_empty(tokio::time::Instant::now() + Duration::from_secs(1)).await;
    false
  }

  /// Waits until no connection is open or being opened; false at `deadline`.
  async fn until_empty(&self, deadline: tokio::time::Instant) -> bool {
    loop {
      let notified = self.shrunk.notified();
      if self.lock().size == 0 {
        return true;
      }
      if tokio::time::timeout_at(deadline, notified).await.is_err() {
        return self.lock().size == 0;
      }
    }
  }

  /// With `machineMax`, closes an idle connection when another process waits for a slot.
  pub(super) fn yield_to_other_processes(&self) {
    let Some(dir) = self.machine_dir() else { return };
    if self.lock().idle.is_empty() {
      return;
    }
    if machine::someone_waits(&dir) {
      self.evict_one_idle();
    }
  }

  /// At process exit: no new checkouts, idle connections close now. Returns how many
  /// connections are still busy (they close with the process).
  pub fn close_for_exit(&self) -> usize {
    self.close();
    self.lock().size
  }

  /// `reap`, when the least recently used idle connection is past its idle timeout.
  pub(super) fn reap_overdue(&self) {
    let (timeout, min) = {
      let settings = self.settings.read().unwrap_or_else(|e| e.into_inner());
      (settings.pool.idle_timeout, settings.pool.min)
    };
    let Some(timeout) = timeout else { return };
    let overdue = {
      let st = self.lock();
      st.size > min && st.idle.first().is_some_and(|c| c.idle_since.elapsed() >= timeout)
    };
    if overdue {
      self.reap();
    }
  }

  /// Closes connection `id` for node-postgres code that saw its idle client fail: at once when
  /// it is idle, or as it comes back when shared requests are using it. False when the pool
  /// does not hold it (closed already, or checked out).
  pub fn close_idle(&self, id: u64) -> bool {
    let conn = {
      let mut st = self.lock();
      if let Some(c) = st.shared.iter_mut().find(|c| c.conn.id == id) {
        c.conn.retire_at = Some(Instant::now());
        return true;
      }
      let Some(at) = st.idle.iter().position(|c| c.id == id) else { return false };
      st.size -= 1;
      let conn = st.idle.remove(at);
      let free = usize::from(st.size < st.max);
      wake_slots(&mut st, free, &self.me);
      conn
    };
    drop(conn);
    self.shrunk.notify_waiters();
    true
  }

  /// Closes idle connections past their idle timeout (while more than `min` are open) or
  /// lifetime, and broken ones (reported as `IdleError`). Returns how many closed.
  pub(super) fn reap(&self) -> usize {
    let settings = self.settings();
    let closed: Vec<Conn> = {
      let mut st = self.lock();
      let before = st.idle.len();
      let (broken, rest): (Vec<Conn>, Vec<Conn>) =
        st.idle.drain(..).partition(|c| c.is_closed() || retired(c));
      // The least recently used go first, and only down to `min`.
      let mut above_min = st.size.saturating_sub(broken.len()).saturating_sub(settings.pool.min);
      let mut keep = Vec::with_capacity(rest.len());
      let mut gone = broken;
      for c in rest {
        let expired = settings.pool.idle_timeout.is_some_and(|t| c.idle_since.elapsed() >= t);
        if expired && above_min > 0 {
          above_min -= 1;
          gone.push(c);
        } else {
          keep.push(c);
        }
      }
      st.idle = keep;
      st.size -= before - st.idle.len();
      if !gone.is_empty() {
        let free = st.max.saturating_sub(st.size).min(gone.len());
        wake_slots(&mut st, free, &self.me);
      }
      gone
    };
    let n = closed.len();
    for c in &closed {
      self.report_idle_error(c);
    }
    drop(closed);
    if n > 0 {
      self.shrunk.notify_waiters();
    }
    n
  }
}

impl Pool {
  /// An idle connection found closed: the server or the network ended it while nobody used it.
  pub(super) fn report_idle_error(&self, conn: &Conn) {
    if conn.is_closed() {
      self.observers.emit(PoolEvent::IdleError {
        id: conn.id,
        message: format!(
          "connection lost: an idle connection of pool \"{}\" ({}) was closed by the server or the network",
          self.name, self.target
        ),
      });
    }
  }
}

impl IdleHolder for Pool {
  fn close_one_idle(&self) -> bool {
    self.evict_one_idle()
  }
}
