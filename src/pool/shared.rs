//! Pipelined `pool.query()`: self-contained requests share connections instead of pinning one.

use super::*;

/// Most requests pipelined on one connection before another request waits instead.
pub(super) const PIPELINE_DEPTH: usize = 16;

/// A busy connection that has finished nothing for this long is running something slow: no
/// request is queued behind it while another connection could take it.
pub(super) const SLOW_AFTER: Duration = Duration::from_millis(1);

/// The busy connection to pipeline a self-contained request onto, before an idle connection is
/// taken or another opened: the fullest one with room that keeps finishing its requests (and is
/// not due to retire). Packing requests onto few connections keeps the server's backends few and
/// busy; spreading them over every connection made W3 ~13% slower on 2 cores (and holds more
/// server connections, which is what onepool exists to avoid).
pub(super) fn packable(st: &State) -> Option<usize> {
  st.shared
    .iter()
    .enumerate()
    .filter(|(_, c)| !c.is_closed() && !retired(c) && c.in_flight() < PIPELINE_DEPTH)
    .filter(|(_, c)| c.stalled_for() < SLOW_AFTER)
    .max_by_key(|(_, c)| c.in_flight())
    .map(|(i, _)| i)
}

impl Pool {
  /// The synchronous fast path of `query_shared`: sends now when a connection is available
  /// without waiting, and hands the request back otherwise. `done` runs on the I/O thread.
  /// Returns the read side of the connection it went to, when any thread may read it.
  pub fn try_submit_shared(
    self: &Arc<Self>,
    query: Arc<Query>,
    done: Done,
  ) -> Result<Option<Arc<Inbox>>, (Arc<Query>, Done)> {
    let mut st = self.lock();
    if st.closed {
      drop(st);
      done(Err(self.closed_error()));
      return Ok(None);
    }
    // Alone in flight: send from this thread now (latency). Alongside other requests: let the
    // writer task coalesce them (throughput; the JS thread is the bottleneck then).
    let write = if st.shared.is_empty() { Write::Now } else { Write::Batched };
    let Some(index) = self.shared_slot(&mut st) else { return Err((query, done)) };
    let conn = &st.shared[index];
    let id = conn.id;
    let inbox = conn.inbox();
    let pool = self.clone();
    let sent = conn.run_then(
      query,
      Box::new(move |outcome| {
        pool.shared_done(id);
        done(outcome)
      }),
      write,
    );
    drop(st);
    if let Err(done) = sent {
      done(Err(CoreError::ConnectionLost("connection lost: the connection is closed".into())));
      return Ok(None);
    }
    Ok(inbox)
  }

  /// Runs one self-contained request (see `conn::pipelinable`) without pinning a connection:
  /// pipelined behind other such requests on a busy connection that keeps up (`packable`), else
  /// on a fresh idle connection, else on a new one, else (at `max`) on the least loaded. The
  /// connection stays available to other pipelined requests while this one runs.
  pub async fn query_shared(self: &Arc<Self>, query: Arc<Query>) -> CoreResult<Response> {
    let fast = {
      let mut st = self.lock();
      if st.closed {
        return Err(self.closed_error());
      }
      self.shared_slot(&mut st).map(|i| {
        let c = &st.shared[i];
        (c.run(query.clone()), c.id)
      })
    };
    let (request, id) = match fast {
      Some(sent) => sent,
      None => {
        let conn = self.acquire().await?;
        let mut st = self.lock();
        let sent = (conn.run(query), conn.id);
        st.shared.push(conn);
        sent
      }
    };
    let result = request.await;
    self.shared_done(id);
    result
  }

  /// The shared connection (an index into `shared`) that takes a self-contained request now: a
  /// busy one that keeps up (`packable`), else a fresh idle one (made shared), else, at `max`,
  /// the least loaded. None: a connection has to be opened or waited for first.
  pub(super) fn shared_slot(&self, st: &mut State) -> Option<usize> {
    if let Some(i) = packable(st) {
      return Some(i);
    }
    if has_fresh_idle(st, self.ping_after()) {
      let conn = st.idle.pop().expect("checked non-empty");
      st.shared.push(conn);
      return Some(st.shared.len() - 1);
    }
    if st.idle.is_empty() && st.size >= st.max {
      // Everything is busy: pipeline onto the least loaded shared connection.
      return st
        .shared
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_closed() && c.in_flight() < PIPELINE_DEPTH)
        .min_by_key(|(_, c)| c.in_flight())
        .map(|(i, _)| i);
    }
    None
  }

  /// A pipelined request finished: an unused shared connection goes back to idle (or a waiter).
  pub(super) fn shared_done(&self, id: u64) {
    let conn = {
      let mut st = self.lock();
      match st.shared.iter().position(|c| c.id == id) {
        Some(i) if st.shared[i].in_flight() == 0 => Some(st.shared.swap_remove(i)),
        _ => None,
      }
    };
    if let Some(conn) = conn {
      self.give_back(conn, None);
    }
  }

  /// Pipelined requests wait behind the one running on their connection; if that one makes
  /// no progress for `acquireTimeoutMs` (a slow query, a stalled network), the waiting ones get
  /// POOL_TIMEOUT, as they would have waiting for a connection. The running one is left alone.
  /// Also gives back shared connections that went quiet (their requests were answered early).
  pub(super) fn time_out_queued(&self) {
    let limit = self.acquire_timeout();
    let (stalled, quiet) = {
      let mut st = self.lock();
      let stalled: Vec<_> = st
        .shared
        .iter()
        .filter(|c| c.in_flight() > 1 && c.stalled_for() >= limit)
        .map(|c| c.queue())
        .collect();
      let (quiet, busy): (Vec<Conn>, Vec<Conn>) = st.shared.drain(..).partition(|c| c.in_flight() == 0);
      st.shared = busy;
      (stalled, quiet)
    };
    // Outside the lock: the answered requests' callbacks come back to this pool.
    for queue in stalled {
      let err = CoreError::PoolTimeout(
        TimeoutKind::Queued,
        format!(
          "timed out after {} ms queued behind a query that made no progress on pool \"{}\" ({})",
          limit.as_millis(),
          self.name,
          self.target
        ),
      );
      let answered = queue.abandon_queued(&err);
      self.acquire_timeouts.fetch_add(answered as u64, Ordering::Relaxed);
    }
    for conn in quiet {
      self.give_back(conn, None);
    }
  }
}
