//! Shared `pool.query()` requests: self-contained statements that do not pin a connection.
//!
//! The rule, in the order it is applied (README, "How it works"):
//! 1. An idle connection takes the request; else, within `max` and the budgets, a new connection
//!    is opened for it. A request never waits behind another one while that is possible.
//! 2. When every connection is busy, the request is pipelined behind work that is known to be
//!    fast: onto the least loaded connection whose requests in flight are all *fast statements*
//!    and whose oldest request has not overrun the fast bound.
//! 3. Otherwise it waits in the pool's queue, first come first served with checkouts, for the
//!    next connection that comes back (or becomes joinable), or until `acquireTimeoutMs`.
//!
//! A statement text is *fast* once it has run and none of its last three runs took longer than
//! `FAST` beyond the connection's round trip; a run that overruns makes it slow again. The
//! timings are the pool's (every module, thread and request of the process feeds them).

use super::*;

/// Most requests in flight on one connection.
pub(super) const PIPELINE_DEPTH: usize = 16;

/// How often a shared request that never reached the server is tried on another connection.
const RETRIES: u8 = 3;

fn lost() -> CoreResult<Response> {
  Err(CoreError::ConnectionLost("connection lost: the connection is closed".into()))
}

/// A connection serving shared requests, with what the pool knows of the requests on it.
pub(super) struct SharedConn {
  pub(super) conn: Conn,
  /// The requests in flight, oldest first (replies come back in this order).
  in_flight: VecDeque<InFlight>,
  /// How many of them are not known to be fast.
  unknown: usize,
  /// When the last reply came (the next request's service starts then or when it was sent).
  last_done: Instant,
}

struct InFlight {
  /// The request's number (`State::next_request`).
  seq: u64,
  statement: u64,
  sent: Instant,
  fast: bool,
  /// Sent to an idle connection: its time includes the round trip.
  first: bool,
}

impl SharedConn {
  fn new(conn: Conn) -> SharedConn {
    SharedConn { conn, in_flight: VecDeque::new(), unknown: 0, last_done: Instant::now() }
  }

  /// When the request at the head of the pipeline started being served.
  fn head_started(&self) -> Option<Instant> {
    self.in_flight.front().map(|r| r.sent.max(self.last_done))
  }

  /// Whether a request may queue behind the ones in flight here now (rule 2).
  fn joinable(&self, now: Instant, rtt: Duration) -> bool {
    self.unknown == 0
      && self.in_flight.len() < PIPELINE_DEPTH
      && !self.conn.is_closed()
      && !retired(&self.conn)
      && self.head_started().is_some_and(|t| now.saturating_duration_since(t) < FAST + rtt)
  }
}

/// A shared request waiting in the pool's queue for a connection.
pub(super) struct QueuedRequest {
  pub(super) query: Arc<Query>,
  pub(super) done: Done,
  pub(super) deadline: tokio::time::Instant,
}

/// What to do after deciding, outside the pool's lock.
pub(super) enum Next {
  /// Sent; the connection's read side if it went out from this thread.
  Sent(Option<Arc<Inbox>>),
  /// Nothing to do now (queued, or handed to a task).
  Nothing,
  Fail(Done, CoreError),
}

impl Pool {
  /// Starts a shared request from the calling thread: on an idle or a joinable connection at
  /// once, else queued (opening a connection for the queue when there is room). `done` runs on
  /// the thread that reads the reply. Returns the read side of the connection it went to, when
  /// it went out from this thread. A request that needs a task first (an idle connection to
  /// ping, or room only once the process budget frees) is handed back.
  pub fn try_submit_shared(
    self: &Arc<Self>,
    query: Arc<Query>,
    done: Done,
  ) -> Result<Option<Arc<Inbox>>, (Arc<Query>, Done)> {
    let next = {
      let mut st = self.lock();
      if st.closed {
        Next::Fail(done, self.closed_error())
      } else if has_fresh_idle(&st, self.ping_after()) {
        let conn = st.idle.pop().expect("checked non-empty");
        // Alone in flight: send from this thread now (latency). Alongside other requests: let
        // the writer task coalesce them (throughput; the JS thread is the bottleneck then).
        let write = if st.shared.is_empty() { Write::Now } else { Write::Batched };
        st.shared.push(SharedConn::new(conn));
        let at = st.shared.len() - 1;
        self.send(&mut st, at, query, done, write)
      } else if !st.idle.is_empty() {
        return Err((query, done));
      } else if st.room() {
        match self.budget.try_acquire() {
          Some(permit) => {
            st.size += 1;
            let deadline = tokio::time::Instant::now() + self.acquire_timeout();
            crate::runtime::spawn(self.clone().open_for(permit, query, done, deadline));
            Next::Nothing
          }
          None => match self.joinable(&st) {
            Some(at) => self.send(&mut st, at, query, done, Write::Batched),
            None => return Err((query, done)),
          },
        }
      } else {
        match self.joinable(&st) {
          Some(at) => self.send(&mut st, at, query, done, Write::Batched),
          None => {
            self.enqueue_request(&mut st, query, done);
            Next::Nothing
          }
        }
      }
    };
    Ok(self.finish(next))
  }

  /// The task path of a shared request (see `try_submit_shared`): checks out a connection as
  /// `acquire` does (pinging an idle one, waiting for the process budget), then shares it.
  pub async fn query_shared(self: &Arc<Self>, query: Arc<Query>) -> CoreResult<Response> {
    let conn = self.acquire().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done: Done = Box::new(move |outcome| drop(tx.send(outcome)));
    let next = {
      let mut st = self.lock();
      st.shared.push(SharedConn::new(conn));
      let at = st.shared.len() - 1;
      let next = self.send(&mut st, at, query, done, Write::Now);
      self.serve_queue_on(&mut st, at).into_iter().for_each(|n| drop(self.finish(n)));
      next
    };
    self.finish(next);
    rx.await
      .unwrap_or_else(|_| Err(CoreError::ConnectionLost("connection lost: the connection is closed".into())))
  }

  /// Sends `query` on shared connection `at`, with the bookkeeping that classifies it.
  fn send(&self, st: &mut State, at: usize, query: Arc<Query>, done: Done, write: Write) -> Next {
    let statement = query.statement;
    let fast = st.timings.is_fast(statement);
    let seq = st.next_request;
    st.next_request += 1;
    let sc = &mut st.shared[at];
    let first = sc.in_flight.is_empty();
    let id = sc.conn.id;
    let pool = self.me.clone();
    let again = query.clone();
    let sent = sc.conn.run_then(
      query,
      Box::new(move |outcome| {
        let Some(pool) = pool.upgrade() else { return done(outcome) };
        pool.shared_done(id, seq);
        match outcome {
          // It never reached the server: another connection takes it (a few times at most).
          Err(CoreError::NotRun(_)) if again.retries.fetch_add(1, Ordering::Relaxed) < RETRIES => {
            if let Err((query, done)) = pool.try_submit_shared(again, done) {
              crate::runtime::spawn_settled(async move { pool.query_shared(query).await }, done, lost());
            }
          }
          outcome => done(outcome),
        }
      }),
      write,
    );
    match sent {
      Ok(()) => {
        sc.in_flight.push_back(InFlight { seq, statement, sent: Instant::now(), fast, first });
        if !fast {
          sc.unknown += 1;
        }
        Next::Sent(sc.conn.inbox())
      }
      Err(done) => {
        Next::Fail(done, CoreError::ConnectionLost("connection lost: the connection is closed".into()))
      }
    }
  }

  pub(super) fn finish(&self, next: Next) -> Option<Arc<Inbox>> {
    match next {
      Next::Sent(inbox) => inbox,
      Next::Nothing => None,
      Next::Fail(done, err) => {
        done(Err(err));
        None
      }
    }
  }

  /// The least loaded shared connection a request may be pipelined onto now (rule 2).
  fn joinable(&self, st: &State) -> Option<usize> {
    let now = Instant::now();
    let rtt = st.timings.rtt();
    st.shared
      .iter()
      .enumerate()
      .filter(|(_, c)| c.joinable(now, rtt))
      .min_by_key(|(_, c)| c.in_flight.len())
      .map(|(i, _)| i)
  }

  /// Queues a shared request.
  fn enqueue_request(&self, st: &mut State, query: Arc<Query>, done: Done) {
    let deadline = tokio::time::Instant::now() + self.acquire_timeout();
    enqueue_waiter(st, Queued::Request(QueuedRequest { query, done, deadline }));
    self.queue_changed.notify_one();
  }

  /// Opens a connection for one shared request (as pg-pool does for a pending request), shares
  /// it, and lets queued requests join it while it is joinable. If it cannot be opened, the
  /// request fails with the reason: a connect failure is not a timeout.
  pub(super) async fn open_for(
    self: Arc<Self>,
    permit: BudgetPermit,
    query: Arc<Query>,
    done: Done,
    deadline: tokio::time::Instant,
  ) {
    match self.open(permit, deadline).await {
      Ok(conn) => {
        let head = QueuedRequest { query, done, deadline };
        let finish = self.share_with_queue(&mut self.lock(), conn, head);
        for next in finish {
          self.finish(next);
        }
      }
      // The server is full, but this pool has connections: wait for one of them in the queue.
      Err(err) if is_server_full(&err) && self.lock().size > 0 => {
        let mut st = self.lock();
        enqueue_waiter(&mut st, Queued::Request(QueuedRequest { query, done, deadline }));
        self.queue_changed.notify_one();
      }
      Err(err) => done(Err(err)),
    }
  }

  /// A connection that came back (or was opened) goes to the queued shared request at the head,
  /// and to those behind it while it stays joinable. Called with the lock held; the outcomes to
  /// finish outside it are returned.
  pub(super) fn share_with_queue(&self, st: &mut State, conn: Conn, head: QueuedRequest) -> Vec<Next> {
    st.shared.push(SharedConn::new(conn));
    let at = st.shared.len() - 1;
    let mut out = self.take_turn(st, at, head);
    out.extend(self.serve_queue_on(st, at));
    out
  }

  /// Sends `head`, the request whose turn it is, on shared connection `at`. A request not known
  /// to be fast lets the queued fast ones go first: they then wait behind nothing slow, and it
  /// waits only behind fast work (rule 2) — a few statements' time instead of a slow one's.
  fn take_turn(&self, st: &mut State, at: usize, head: QueuedRequest) -> Vec<Next> {
    let mut out = Vec::new();
    if !st.timings.is_fast(head.query.statement) {
      let mut i = 0;
      while i < st.waiters.len() && st.shared[at].in_flight.len() + 1 < PIPELINE_DEPTH {
        let fast = matches!(&st.waiters[i], Queued::Request(r) if st.timings.is_fast(r.query.statement));
        match fast.then(|| st.waiters.remove(i)).flatten() {
          Some(Queued::Request(r)) => out.push(self.send(st, at, r.query, r.done, Write::Batched)),
          _ => i += 1,
        }
      }
    }
    out.push(self.send(st, at, head.query, head.done, Write::Batched));
    out
  }

  /// Pipelines queued shared requests from the head of the queue onto shared connection `at`
  /// while it is joinable.
  fn serve_queue_on(&self, st: &mut State, at: usize) -> Vec<Next> {
    let mut out = Vec::new();
    let now = Instant::now();
    while st.shared[at].joinable(now, st.timings.rtt()) {
      let Some(Queued::Request(_)) = st.waiters.front() else { break };
      let Some(Queued::Request(head)) = st.waiters.pop_front() else { break };
      out.extend(self.take_turn(st, at, head));
    }
    out
  }

  /// A shared request finished: its timing is recorded, queued requests may join the connection,
  /// and an unused one goes back to idle (or to a waiter).
  pub(super) fn shared_done(&self, id: u64, seq: u64) {
    let mut finish = Vec::new();
    let conn = {
      let mut st = self.lock();
      let Some(at) = st.shared.iter().position(|c| c.conn.id == id) else { return };
      let now = Instant::now();
      let sc = &mut st.shared[at];
      // Replies come in order; a request whose send failed was never counted.
      if sc.in_flight.front().is_some_and(|r| r.seq == seq) {
        let r = sc.in_flight.pop_front().expect("checked");
        let served = now.saturating_duration_since(r.sent.max(sc.last_done));
        sc.last_done = now;
        if !r.fast {
          sc.unknown -= 1;
        }
        st.timings.record(r.statement, r.first, served);
      }
      if st.shared[at].conn.in_flight() == 0 {
        Some(st.shared.swap_remove(at).conn)
      } else {
        finish = self.serve_queue_on(&mut st, at);
        None
      }
    };
    for next in finish {
      self.finish(next);
    }
    if let Some(conn) = conn {
      self.give_back(conn, None);
    }
  }

  /// Pipelined requests wait behind the one running on their connection; if that one makes
  /// no progress for `acquireTimeoutMs` (a stalled network, or a statement that was fast until
  /// now), the waiting ones get POOL_TIMEOUT, as they would have waiting for a connection. The
  /// running one is left alone. Also gives back shared connections that went quiet.
  pub(super) fn time_out_queued(&self) {
    let limit = self.acquire_timeout();
    let (stalled, quiet) = {
      let mut st = self.lock();
      let stalled: Vec<_> = st
        .shared
        .iter()
        .filter(|c| c.conn.in_flight() > 1 && c.conn.stalled_for() >= limit)
        .map(|c| c.conn.queue())
        .collect();
      let (quiet, busy): (Vec<SharedConn>, Vec<SharedConn>) =
        st.shared.drain(..).partition(|c| c.conn.in_flight() == 0);
      st.shared = busy;
      (stalled, quiet)
    };
    // Outside the lock: the answered requests' callbacks come back to this pool.
    for queue in stalled {
      let err = CoreError::PoolTimeout(
        TimeoutKind::Queued,
        format!(
          "timeout exceeded after {} ms queued behind a query that made no progress on pool \"{}\" ({})",
          limit.as_millis(),
          self.name,
          self.target
        ),
      );
      let answered = queue.abandon_queued(&err);
      self.acquire_timeouts.fetch_add(answered as u64, Ordering::Relaxed);
    }
    for sc in quiet {
      self.give_back(sc.conn, None);
    }
  }
}
