//! A bounded pool of connections to one target.
//!
//! Invariants (all under `state`):
//! - `size` counts connections that are open or being opened; `size <= max` except right after a
//!   live shrink, when in-use extras close as they come back.
//! - An idle connection is handed to the oldest live waiter before it goes back on the stack.
//! - Every slot freed wakes one waiter, which then opens a connection itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{oneshot, Notify};

use crate::budget::{BudgetPermit, Lease, BUDGET};
use crate::config::{ConnSettings, PoolConfig, PoolSettings, Target};
use crate::conn::{Conn, Done, Inbox, Query, Response, Write};
use crate::error::{CoreError, CoreResult};
use crate::machine;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Most requests pipelined on one connection before another request waits instead.
const PIPELINE_DEPTH: usize = 16;

/// A busy connection that has finished nothing for this long is running something slow: no
/// request is queued behind it while another connection could take it.
const SLOW_AFTER: Duration = Duration::from_millis(1);

enum Grant {
  Conn(Conn),
  /// A slot is free: open a connection yourself.
  Slot,
}

/// A checkout that waits without a task of its own: the JavaScript thread queued it, the pool
/// calls `deliver` when a connection comes back, and the JavaScript layer times it out with
/// `cancel_checkout`. A connection released on the thread that queued it is handed over there
/// and then, without waking an I/O thread (`release_to`).
pub trait Checkout: Send {
  /// (owner, request): the owner is the JavaScript environment that queued it.
  fn key(&self) -> (u32, u32);
  /// True once nobody can receive the connection any more (the environment is gone).
  fn is_gone(&self) -> bool;
  fn deliver(self: Box<Self>, outcome: CoreResult<Conn>);
}

/// Where `Pool::hand_to_waiter` put a connection.
pub enum HandOn {
  /// To checkout `request` of the calling environment, which settles it itself.
  Caller(u32, Conn),
  /// To a checkout of another environment.
  Delivered,
  /// No checkout waits first in line: the caller keeps it.
  Kept(Conn),
}

enum Queued {
  Task(oneshot::Sender<Grant>),
  Checkout(Box<dyn Checkout>),
}

impl Queued {
  fn is_closed(&self) -> bool {
    match self {
      Queued::Task(tx) => tx.is_closed(),
      Queued::Checkout(c) => c.is_gone(),
    }
  }
}

struct State {
  /// Most recently used last.
  idle: Vec<Conn>,
  /// Connections serving pipelined `pool.query()` requests (not pinned to anyone).
  shared: Vec<Conn>,
  size: usize,
  max: usize,
  waiters: VecDeque<Queued>,
  closed: bool,
}

#[derive(Clone)]
struct Settings {
  conn: ConnSettings,
  pool: PoolSettings,
  pgbouncer: bool,
}

pub struct Pool {
  me: Weak<Pool>,
  pub name: String,
  pub target: Target,
  settings: RwLock<Settings>,
  state: Mutex<State>,
  /// Signalled whenever `size` drops, for `end()`.
  shrunk: Notify,
  created: AtomicU64,
  acquire_timeouts: AtomicU64,
  handles: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct PoolStats {
  pub name: String,
  pub target: String,
  pub max: usize,
  pub size: usize,
  pub idle: usize,
  pub in_use: usize,
  pub waiting: usize,
  pub created: u64,
  pub acquire_timeouts: u64,
  pub handles: u64,
  pub closed: bool,
}

impl Pool {
  pub fn new(cfg: &PoolConfig) -> Arc<Pool> {
    let pool = Arc::new_cyclic(|me| Pool {
      me: me.clone(),
      name: cfg.name.clone(),
      target: cfg.target.clone(),
      settings: RwLock::new(Settings {
        conn: cfg.conn.clone(),
        pool: cfg.pool.clone(),
        pgbouncer: cfg.pgbouncer,
      }),
      state: Mutex::new(State {
        idle: Vec::new(),
        shared: Vec::new(),
        size: 0,
        max: cfg.pool.max,
        waiters: VecDeque::new(),
        closed: false,
      }),
      shrunk: Notify::new(),
      created: AtomicU64::new(0),
      acquire_timeouts: AtomicU64::new(0),
      handles: AtomicU64::new(1),
    });
    crate::runtime::spawn(reap_idle(Arc::downgrade(&pool)));
    pool
  }

  fn lock(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  fn settings(&self) -> Settings {
    self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
  }

  pub fn acquire_timeout(&self) -> Duration {
    self.settings.read().unwrap_or_else(|e| e.into_inner()).pool.acquire_timeout
  }

  pub fn pgbouncer(&self) -> bool {
    self.settings.read().unwrap_or_else(|e| e.into_inner()).pgbouncer
  }

  pub fn attach_handle(&self) {
    self.handles.fetch_add(1, Ordering::Relaxed);
  }

  /// Applies options from a re-evaluated `createPool` under the same identity.
  pub fn apply(&self, cfg: &PoolConfig) {
    {
      let mut s = self.settings.write().unwrap_or_else(|e| e.into_inner());
      s.conn = cfg.conn.clone();
      s.pool = cfg.pool.clone();
      s.pgbouncer = cfg.pgbouncer;
    }
    let retired = {
      let mut st = self.lock();
      st.max = cfg.pool.max;
      let mut retired = Vec::new();
      // Shrink: idle connections go first (least recently used first); in-use ones on release.
      while st.size > st.max && !st.idle.is_empty() {
        retired.push(st.idle.remove(0));
        st.size -= 1;
      }
      // Grow: waiters may open connections now.
      let free = st.max.saturating_sub(st.size);
      wake_slots(&mut st, free, &self.me);
      retired
    };
    drop(retired);
    self.shrunk.notify_waiters();
  }

  pub fn is_closed(&self) -> bool {
    self.lock().closed
  }

  fn ping_after(&self) -> Duration {
    self.settings.read().unwrap_or_else(|e| e.into_inner()).pool.ping_after_idle
  }

  /// The synchronous fast path of `acquire`: a connection that was idle for less than the
  /// ping interval, without waiting and without a ping; `None` sends the caller to `acquire`.
  pub fn try_acquire_now(&self) -> Option<Conn> {
    let ping_after = self.ping_after();
    let mut st = self.lock();
    if !st.closed && has_fresh_idle(&st, ping_after) {
      st.idle.pop()
    } else {
      None
    }
  }

  /// Checks a connection out for exclusive use.
  pub async fn acquire(self: &Arc<Self>) -> CoreResult<Conn> {
    let settings = self.settings();
    let deadline = tokio::time::Instant::now() + settings.pool.acquire_timeout;
    loop {
      let step = {
        let mut st = self.lock();
        if st.closed {
          return Err(self.closed_error());
        }
        let mut found = None;
        while let Some(c) = st.idle.pop() {
          if c.is_closed() || retired(&c) {
            st.size -= 1;
            continue;
          }
          found = Some(c);
          break;
        }
        match found {
          Some(c) => Step::Use(c),
          None if st.size < st.max => match BUDGET.try_acquire() {
            Some(permit) => {
              st.size += 1;
              Step::Open(permit)
            }
            None => Step::Wait(enqueue(&mut st, self), true),
          },
          None => Step::Wait(enqueue(&mut st, self), false),
        }
      };
      match step {
        Step::Use(conn) => match self.check(conn, &settings).await {
          Some(conn) => return Ok(conn),
          None => continue,
        },
        Step::Open(permit) => return self.open(permit, deadline).await,
        Step::Wait(mut waiter, want_budget) => {
          if want_budget {
            crate::registry::evict_idle_for_budget(self);
          }
          let mut budget_rx = want_budget.then(|| BUDGET.acquire());
          let rx = waiter.rx.as_mut().expect("waiter receiver present");
          tokio::select! {
            grant = rx => {
              waiter.rx = None;
              match grant {
                Ok(Grant::Conn(conn)) => match self.check(conn, &settings).await {
                  Some(conn) => return Ok(conn),
                  None => continue,
                },
                Ok(Grant::Slot) | Err(_) => continue,
              }
            }
            Ok(permit) = async { budget_rx.as_mut().expect("budget wait").await }, if budget_rx.is_some() => {
              drop(waiter);
              let granted = {
                let mut st = self.lock();
                if !st.closed && st.size < st.max {
                  st.size += 1;
                  true
                } else {
                  false
                }
              };
              if granted {
                return self.open(permit, deadline).await;
              }
              continue;
            }
            _ = tokio::time::sleep_until(deadline) => {
              // A grant may have raced the timer: take it rather than report a timeout.
              match waiter.take_pending() {
                Some(Grant::Conn(conn)) => {
                  if let Some(conn) = self.check(conn, &settings).await {
                    return Ok(conn);
                  }
                }
                Some(Grant::Slot) => waiter.pass_on(Grant::Slot),
                None => {}
              }
              drop(waiter);
              self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
              return Err(self.timeout_error(settings.pool.acquire_timeout));
            }
          }
        }
      }
    }
  }

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
  fn shared_slot(&self, st: &mut State) -> Option<usize> {
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
  fn shared_done(&self, id: u64) {
    let conn = {
      let mut st = self.lock();
      match st.shared.iter().position(|c| c.id == id) {
        Some(i) if st.shared[i].in_flight() == 0 => Some(st.shared.swap_remove(i)),
        _ => None,
      }
    };
    if let Some(conn) = conn {
      self.release(conn);
    }
  }

  /// Validates an idle connection before hand-out; `None` means it was discarded.
  async fn check(&self, conn: Conn, settings: &Settings) -> Option<Conn> {
    if conn.is_closed() || retired(&conn) {
      self.discard(conn);
      return None;
    }
    if conn.idle_since.elapsed() >= settings.pool.ping_after_idle {
      let ping = tokio::time::timeout(settings.conn.connect_timeout, conn.simple("")).await;
      if !matches!(ping, Ok(Ok(_))) {
        self.discard(conn);
        return None;
      }
    }
    Some(conn)
  }

  async fn open(self: &Arc<Self>, permit: BudgetPermit, deadline: tokio::time::Instant) -> CoreResult<Conn> {
    let guard = SlotGuard { pool: self };
    let settings = self.settings();
    let machine = match settings.pool.machine_max {
      Some(max) => {
        let dir = machine::dir_for(&self.target)
          .map_err(|e| CoreError::Internal(format!("the machine budget's directory is not usable: {e}")))?;
        match machine::acquire(&dir, max, deadline).await {
          Ok(Some(slot)) => Some(slot),
          Ok(None) => {
            self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
            return Err(CoreError::PoolTimeout(format!(
              "timed out after {} ms waiting for one of the {max} connections that all processes on this machine may \
               open to {} (machineMax)",
              settings.pool.acquire_timeout.as_millis(),
              self.target
            )));
          }
          Err(e) => return Err(CoreError::Internal(format!("the machine budget failed: {e}"))),
        }
      }
      None => None,
    };
    let retire_at = settings.pool.max_lifetime.map(|life| {
      // Stagger retirement over the last fifth of the lifetime so connections do not all
      // reconnect at once.
      let jitter = rand::rng().random_range(0.0..0.2) * life.as_secs_f64();
      Instant::now() + life.saturating_sub(Duration::from_secs_f64(jitter))
    });
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let lease = Lease::new(permit, machine);
    let conn = Conn::connect(&self.target, &settings.conn, lease, id, retire_at).await?;
    std::mem::forget(guard);
    self.created.fetch_add(1, Ordering::Relaxed);
    Ok(conn)
  }

  /// Returns a connection. Broken, dirty, retired or surplus connections are closed instead.
  pub fn release(&self, conn: Conn) {
    self.release_to(conn, None);
  }

  /// `release`, called by JavaScript environment `owner`: when the oldest waiter is a checkout
  /// that environment queued, the connection is returned here as `(request, conn)` for the
  /// caller to hand over itself.
  pub fn release_to(&self, mut conn: Conn, owner: Option<u32>) -> Option<(u32, Conn)> {
    if conn.is_closed() || !conn.is_clean() || retired(&conn) {
      self.discard(conn);
      return None;
    }
    conn.idle_since = Instant::now();
    let mut checkout = None;
    let surplus = {
      let mut st = self.lock();
      if st.closed || st.size > st.max {
        st.size -= 1;
        Some(conn)
      } else {
        loop {
          let Some(w) = st.waiters.pop_front() else {
            st.idle.push(conn);
            break None;
          };
          match w {
            Queued::Task(tx) => match tx.send(Grant::Conn(conn)) {
              Ok(()) => break None,
              Err(Grant::Conn(c)) => conn = c,
              Err(Grant::Slot) => unreachable!("sent a connection"),
            },
            Queued::Checkout(c) if c.is_gone() => {}
            Queued::Checkout(c) => {
              checkout = Some((c, conn));
              break None;
            }
          }
        }
      }
    };
    if let Some(c) = surplus {
      drop(c);
      self.shrunk.notify_waiters();
    }
    checkout.and_then(|(c, conn)| give(c, conn, owner))
  }

  /// Hands a connection with requests still in flight to the oldest waiting checkout, when
  /// those requests leave its session idle (the caller just sent COMMIT). The waiter's first
  /// statements then go out right behind them instead of a round trip later. Gives the
  /// connection back when no checkout waits first in line, or when it is closed, retiring or
  /// surplus. `owner` as in `release_to`.
  pub fn hand_to_waiter(&self, mut conn: Conn, owner: Option<u32>) -> HandOn {
    if conn.is_closed() || retired(&conn) {
      return HandOn::Kept(conn);
    }
    let checkout = {
      let mut st = self.lock();
      if st.closed || st.size > st.max {
        return HandOn::Kept(conn);
      }
      while st.waiters.front().is_some_and(Queued::is_closed) {
        st.waiters.pop_front();
      }
      match st.waiters.pop_front() {
        Some(Queued::Checkout(c)) => c,
        other => {
          // A task waiting first keeps its place: it gets the connection once it is clean.
          if let Some(w) = other {
            st.waiters.push_front(w);
          }
          return HandOn::Kept(conn);
        }
      }
    };
    conn.idle_since = Instant::now();
    conn.change_owner();
    match give(checkout, conn, owner) {
      Some((request, conn)) => HandOn::Caller(request, conn),
      None => HandOn::Delivered,
    }
  }

  /// Queues `checkout` when the pool is at its size limit with nothing idle; returns how long
  /// it may wait (the caller's timer then calls `cancel_checkout`). Otherwise hands it back:
  /// checking out may open or ping a connection, which `acquire` does.
  pub fn queue_checkout(&self, checkout: Box<dyn Checkout>) -> Result<Duration, Box<dyn Checkout>> {
    let mut st = self.lock();
    if st.closed || !st.idle.is_empty() || st.size < st.max {
      return Err(checkout);
    }
    st.waiters.retain(|w| !w.is_closed());
    st.waiters.push_back(Queued::Checkout(checkout));
    Ok(self.acquire_timeout())
  }

  /// Times out a queued checkout: the POOL_TIMEOUT error for it, or None when it is no longer
  /// queued (a connection is already on its way).
  pub fn cancel_checkout(&self, key: (u32, u32)) -> Option<CoreError> {
    let removed = {
      let mut st = self.lock();
      let at = st.waiters.iter().position(|w| matches!(w, Queued::Checkout(c) if c.key() == key))?;
      st.waiters.remove(at)
    };
    drop(removed);
    self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
    Some(self.timeout_error(self.acquire_timeout()))
  }

  /// Closes a connection and gives its slot to a waiter.
  pub fn discard(&self, conn: Conn) {
    drop(conn);
    self.slot_freed();
  }

  fn slot_freed(&self) {
    {
      let mut st = self.lock();
      st.size = st.size.saturating_sub(1);
      if st.size < st.max {
        wake_slots(&mut st, 1, &self.me);
      }
    }
    self.shrunk.notify_waiters();
  }

  /// Closes one idle connection (the least recently used) to free budget for another pool.
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

  /// Stops new checkouts, fails waiters with `POOL_CLOSED`, closes idle connections, and waits
  /// up to `timeout` for checked-out ones to come back (they close on return).
  pub async fn end(&self, timeout: Duration) -> bool {
    let (idle, waiters) = {
      let mut st = self.lock();
      st.closed = true;
      let idle: Vec<Conn> = st.idle.drain(..).collect();
      st.size -= idle.len();
      (idle, std::mem::take(&mut st.waiters))
    };
    drop(idle);
    self.fail_checkouts(waiters);
    let deadline = tokio::time::Instant::now() + timeout;
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

  /// Pipelined requests wait behind the one running on their connection; if that one makes
  /// no progress for `acquireTimeoutMs` (a slow query, a stalled network), the waiting ones get
  /// POOL_TIMEOUT, as they would have waiting for a connection. The running one is left alone.
  /// Also gives back shared connections that went quiet (their requests were answered early).
  fn time_out_queued(&self) {
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
      let err = CoreError::PoolTimeout(format!(
        "timed out after {} ms queued behind a query that made no progress on pool \"{}\" ({})",
        limit.as_millis(),
        self.name,
        self.target
      ));
      let answered = queue.abandon_queued(&err);
      self.acquire_timeouts.fetch_add(answered as u64, Ordering::Relaxed);
    }
    for conn in quiet {
      self.release(conn);
    }
  }

  /// With `machineMax`, closes an idle connection when another process waits for a slot.
  fn yield_to_other_processes(&self) {
    let Some(_) = self.settings.read().unwrap_or_else(|e| e.into_inner()).pool.machine_max else { return };
    if self.lock().idle.is_empty() {
      return;
    }
    if let Ok(dir) = machine::dir_for(&self.target) {
      if machine::someone_waits(&dir) {
        self.evict_one_idle();
      }
    }
  }

  /// At process exit: no new checkouts, idle connections close now. Returns how many
  /// connections are still busy (they close with the process).
  pub fn close_for_exit(&self) -> usize {
    let (idle, waiters) = {
      let mut st = self.lock();
      st.closed = true;
      let idle: Vec<Conn> = st.idle.drain(..).collect();
      st.size -= idle.len();
      (idle, std::mem::take(&mut st.waiters))
    };
    drop(idle);
    self.fail_checkouts(waiters);
    self.lock().size
  }

  /// Waiting tasks see their channel close; queued checkouts are told the pool was ended.
  fn fail_checkouts(&self, waiters: VecDeque<Queued>) {
    for w in waiters {
      if let Queued::Checkout(c) = w {
        c.deliver(Err(self.closed_error()));
      }
    }
  }

  /// Closes idle connections past their idle timeout or lifetime. Returns how many closed.
  fn reap(&self) -> usize {
    let settings = self.settings();
    let closed: Vec<Conn> = {
      let mut st = self.lock();
      let before = st.idle.len();
      let (keep, gone): (Vec<Conn>, Vec<Conn>) = st.idle.drain(..).partition(|c| {
        !c.is_closed() && !retired(c) && settings.pool.idle_timeout.is_none_or(|t| c.idle_since.elapsed() < t)
      });
      st.idle = keep;
      st.size -= before - st.idle.len();
      if !gone.is_empty() {
        let free = st.max.saturating_sub(st.size).min(gone.len());
        wake_slots(&mut st, free, &self.me);
      }
      gone
    };
    let n = closed.len();
    drop(closed);
    if n > 0 {
      self.shrunk.notify_waiters();
    }
    n
  }

  pub fn stats(&self) -> PoolStats {
    let st = self.lock();
    PoolStats {
      name: self.name.clone(),
      target: self.target.to_string(),
      max: st.max,
      size: st.size,
      idle: st.idle.len(),
      in_use: st.size - st.idle.len(),
      waiting: st.waiters.iter().filter(|w| !w.is_closed()).count(),
      created: self.created.load(Ordering::Relaxed),
      acquire_timeouts: self.acquire_timeouts.load(Ordering::Relaxed),
      handles: self.handles.load(Ordering::Relaxed),
      closed: st.closed,
    }
  }

  fn closed_error(&self) -> CoreError {
    CoreError::PoolClosed(format!("pool \"{}\" ({}) has been ended", self.name, self.target))
  }

  fn timeout_error(&self, waited: Duration) -> CoreError {
    let s = self.stats();
    CoreError::PoolTimeout(format!(
      "timed out after {} ms waiting for a connection from pool \"{}\" ({}): size {}, idle {}, in use {}, max {}, {} other {} waiting{}",
      waited.as_millis(),
      s.name,
      s.target,
      s.size,
      s.idle,
      s.in_use,
      s.max,
      s.waiting,
      if s.waiting == 1 { "checkout" } else { "checkouts" },
      match BUDGET.stats().limit {
        Some(l) => format!(", process budget {}/{}", BUDGET.stats().used, l),
        None => String::new(),
      }
    ))
  }
}

enum Step {
  Use(Conn),
  Open(BudgetPermit),
  Wait(Waiter, bool),
}

/// A queued waiter. Dropping it (timeout, abort, cancelled task) passes on anything already
/// granted to it, so no connection or slot is ever lost.
struct Waiter {
  rx: Option<oneshot::Receiver<Grant>>,
  pool: Weak<Pool>,
}

impl Waiter {
  fn take_pending(&mut self) -> Option<Grant> {
    let mut rx = self.rx.take()?;
    rx.close();
    rx.try_recv().ok()
  }

  fn pass_on(&self, grant: Grant) {
    if let Some(pool) = self.pool.upgrade() {
      match grant {
        Grant::Conn(c) => pool.release(c),
        Grant::Slot => {
          let mut st = pool.lock();
          if st.size < st.max {
            wake_slots(&mut st, 1, &pool.me);
          }
        }
      }
    }
  }
}

impl Drop for Waiter {
  fn drop(&mut self) {
    if let Some(grant) = self.take_pending() {
      self.pass_on(grant);
    }
  }
}

fn enqueue(st: &mut State, pool: &Arc<Pool>) -> Waiter {
  let (tx, rx) = oneshot::channel();
  st.waiters.retain(|w| !w.is_closed());
  st.waiters.push_back(Queued::Task(tx));
  Waiter { rx: Some(rx), pool: Arc::downgrade(pool) }
}

fn wake_slots(st: &mut State, mut n: usize, pool: &Weak<Pool>) {
  while n > 0 {
    let Some(w) = st.waiters.pop_front() else {
      break;
    };
    match w {
      Queued::Task(tx) => {
        if tx.send(Grant::Slot).is_ok() {
          n -= 1;
        }
      }
      Queued::Checkout(c) if c.is_gone() => {}
      // It has no task to open a connection in: give it one (it takes the slot from there).
      Queued::Checkout(c) => {
        if let Some(pool) = pool.upgrade() {
          crate::runtime::spawn(async move {
            let outcome = pool.acquire().await;
            c.deliver(outcome);
          });
          n -= 1;
        }
      }
    }
  }
}

/// Gives `conn` to a checkout taken off the queue: back as `(request, conn)` when environment
/// `owner` queued it (the caller settles it on its own thread), else delivered now.
fn give(checkout: Box<dyn Checkout>, conn: Conn, owner: Option<u32>) -> Option<(u32, Conn)> {
  let (queued_by, request) = checkout.key();
  if owner == Some(queued_by) {
    return Some((request, conn));
  }
  checkout.deliver(Ok(conn));
  None
}

/// The busy connection to pipeline a self-contained request onto, before an idle connection is
/// taken or another opened: the fullest one with room that keeps finishing its requests (and is
/// not due to retire). Packing requests onto few connections keeps the server's backends few and
/// busy; spreading them over every connection made W3 ~13% slower on 2 cores (and holds more
/// server connections, which is what onepool exists to avoid).
fn packable(st: &State) -> Option<usize> {
  st.shared
    .iter()
    .enumerate()
    .filter(|(_, c)| !c.is_closed() && !retired(c) && c.in_flight() < PIPELINE_DEPTH)
    .filter(|(_, c)| c.stalled_for() < SLOW_AFTER)
    .max_by_key(|(_, c)| c.in_flight())
    .map(|(i, _)| i)
}

/// The most recently idled connection can be handed out without a ping.
fn has_fresh_idle(st: &State, ping_after: Duration) -> bool {
  st.idle.last().is_some_and(|c| !c.is_closed() && !retired(c) && c.idle_since.elapsed() < ping_after)
}

fn retired(conn: &Conn) -> bool {
  conn.retire_at.is_some_and(|t| Instant::now() >= t)
}

/// Frees a reserved slot if opening a connection fails or is cancelled.
struct SlotGuard<'a> {
  pool: &'a Pool,
}

impl Drop for SlotGuard<'_> {
  fn drop(&mut self) {
    self.pool.slot_freed();
  }
}

async fn reap_idle(pool: Weak<Pool>) {
  let mut tick = tokio::time::interval(Duration::from_millis(500));
  tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
  loop {
    tick.tick().await;
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
