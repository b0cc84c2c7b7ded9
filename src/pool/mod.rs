//! A bounded pool of connections to one target.
//!
//! Invariants (all under `state`):
//! - `size` counts connections that are open or being opened; `size <= max` except right after a
//!   live shrink, when in-use extras close as they come back.
//! - An idle connection is handed to the oldest live waiter before it goes back on the stack.
//! - Every slot freed wakes one waiter, which then opens a connection itself.
//!
//! By concern: `acquire` (exclusive checkout: idle, open, wait), `shared` (pipelined
//! `pool.query()` requests), `handover` (connections coming back and queued checkouts), and
//! `lifecycle` (reaping, eviction, `end`).

mod acquire;
mod connector;
mod handover;
mod lifecycle;
mod listen;
#[cfg(test)]
mod listen_tests;
mod shared;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{oneshot, Notify};

use crate::budget::{Budget, BudgetPermit, BudgetStats, IdleHolder, Lease, BUDGET};
use crate::config::{ConnSettings, PoolConfig, PoolSettings, Target};
use crate::conn::{CancelKey, Conn, Done, Inbox, Killer, Query, Response, Write};
use crate::error::{CoreError, CoreResult, TimeoutKind};
use crate::machine;

use acquire::{enqueue_waiter, wake_slots, Grant};
pub use connector::{Connector, Postgres};
use handover::Queued;
pub use handover::{Checkout, Returned};
use lifecycle::reap_idle;
pub use listen::{ListenEvent, Outage, Subscriber};
use shared::{expire_queued, QueuedRequest, SharedConn, Timings};

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

struct State {
  /// Most recently used last.
  idle: Vec<Conn>,
  /// Connections serving shared `pool.query()` requests (not pinned to anyone).
  shared: Vec<SharedConn>,
  size: usize,
  max: usize,
  /// Exclusive checkouts and shared requests waiting, first come first served.
  waiters: VecDeque<Queued>,
  /// How fast statements ran on this pool's shared connections.
  timings: Timings,
  /// Numbers shared requests, so a reply is matched with its bookkeeping.
  next_request: u64,
  /// Every connection this pool opened that may still be open, so that `end()` can close
  /// busy ones past its timeout.
  live: Vec<(Killer, CancelKey)>,
  closed: bool,
}

#[derive(Clone)]
struct Settings {
  conn: ConnSettings,
  pool: PoolSettings,
  pgbouncer: bool,
  /// Where the listening connection goes instead (`listenUrl`).
  listen: Option<Box<PoolConfig>>,
}

pub struct Pool {
  me: Weak<Pool>,
  pub name: String,
  pub target: Target,
  settings: RwLock<Settings>,
  state: Mutex<State>,
  /// Signalled whenever `size` drops, for `end()`.
  shrunk: Notify,
  /// Signalled when a shared request is queued (its deadline may be the next one).
  queue_changed: Arc<Notify>,
  created: AtomicU64,
  acquire_timeouts: AtomicU64,
  handles: AtomicU64,
  connector: Arc<dyn Connector>,
  /// The process budget (a private one in unit tests).
  budget: &'static Budget,
  /// The listening connection and its subscriptions (`listen`).
  listening: listen::Listening,
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
  /// 1 while the pool's listening connection is open (counted in `size`, not in `in_use`; with
  /// `listenUrl`, in neither: it is another pool's).
  pub listening: usize,
}

impl Pool {
  pub fn new(cfg: &PoolConfig) -> Arc<Pool> {
    Pool::with(cfg, Arc::new(Postgres), &BUDGET)
  }

  /// A pool that opens connections through `connector`, under `budget`.
  pub fn with(cfg: &PoolConfig, connector: Arc<dyn Connector>, budget: &'static Budget) -> Arc<Pool> {
    let pool = Arc::new_cyclic(|me| Pool {
      me: me.clone(),
      name: cfg.name.clone(),
      target: cfg.target.clone(),
      settings: RwLock::new(Settings {
        conn: cfg.conn.clone(),
        pool: cfg.pool.clone(),
        pgbouncer: cfg.pgbouncer,
        listen: cfg.listen.clone(),
      }),
      state: Mutex::new(State {
        idle: Vec::new(),
        shared: Vec::new(),
        size: 0,
        max: cfg.pool.max,
        waiters: VecDeque::new(),
        timings: Timings::default(),
        next_request: 0,
        live: Vec::new(),
        closed: false,
      }),
      shrunk: Notify::new(),
      queue_changed: Arc::new(Notify::new()),
      created: AtomicU64::new(0),
      acquire_timeouts: AtomicU64::new(0),
      handles: AtomicU64::new(1),
      connector,
      budget,
      listening: listen::Listening::default(),
    });
    crate::runtime::spawn(reap_idle(Arc::downgrade(&pool)));
    crate::runtime::spawn(expire_queued(Arc::downgrade(&pool), pool.queue_changed.clone()));
    budget.register(Arc::downgrade(&(pool.clone() as Arc<dyn IdleHolder>)));
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
      s.listen = cfg.listen.clone();
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

  pub fn stats(&self) -> PoolStats {
    let (listening, own) = self.listening_stats();
    let st = self.lock();
    PoolStats {
      name: self.name.clone(),
      target: self.target.to_string(),
      max: st.max,
      size: st.size,
      idle: st.idle.len(),
      in_use: (st.size - st.idle.len()).saturating_sub(usize::from(own)),
      waiting: st.waiters.iter().filter(|w| !w.is_closed()).count(),
      created: self.created.load(Ordering::Relaxed),
      acquire_timeouts: self.acquire_timeouts.load(Ordering::Relaxed),
      handles: self.handles.load(Ordering::Relaxed),
      closed: st.closed,
      listening: usize::from(listening),
    }
  }

  fn closed_error(&self) -> CoreError {
    CoreError::PoolClosed(format!("pool \"{}\" ({}) has been ended", self.name, self.target))
  }

  fn timeout_error(&self, waited: Duration) -> CoreError {
    let s = self.stats();
    CoreError::PoolTimeout(TimeoutKind::Acquire, format!(
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
      match self.budget.stats() {
        BudgetStats { limit: Some(l), used, .. } => format!(", process budget {used}/{l}"),
        _ => String::new(),
      }
    ))
  }
}

/// The most recently idled connection can be handed out without a ping.
fn has_fresh_idle(st: &State, ping_after: Duration) -> bool {
  st.idle.last().is_some_and(|c| !c.is_closed() && !retired(c) && c.idle_since.elapsed() < ping_after)
}

fn retired(conn: &Conn) -> bool {
  conn.retire_at.is_some_and(|t| Instant::now() >= t)
}
