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
mod deadlines;
mod events;
mod handover;
mod lifecycle;
mod listen;
#[cfg(test)]
mod listen_tests;
mod open;
mod server;
mod shared;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
mod timings;

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
use deadlines::expire_queued;
pub use events::PoolEvent;
use events::{CloseNotice, Observers};
use handover::Queued;
pub use handover::{Checkout, Returned};
use lifecycle::reap_idle;
pub use listen::{ListenEvent, ListenVia, Outage, Subscriber};
use open::is_server_full;
pub use server::{Failure, ServerStatus, ServerView};
use shared::{QueuedRequest, SharedConn};
use timings::{Timings, FAST};

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_OBSERVER_ID: AtomicU64 = AtomicU64::new(1);

/// How long a pool waits on its own connections after the server said it is full; it doubles
/// while the server keeps refusing, up to `FULL_BACKOFF_MOST`.
const FULL_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const FULL_BACKOFF_MOST: Duration = Duration::from_secs(5);

impl State {
  /// Whether a connection may be opened now: within `max`, and not while the server is full
  /// and this pool has connections to wait for.
  fn room(&self) -> bool {
    self.size < self.max && !self.server_full()
  }

  fn server_full(&self) -> bool {
    self.size > 0 && self.full_until.is_some_and(|t| Instant::now() < t)
  }
}

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
  /// The server refused a connection for being full while this pool had others: until then,
  /// requests wait for those instead of opening more (`room`), and the wait doubles each time.
  full_until: Option<Instant>,
  full_backoff: Duration,
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
  /// Unique in the process: a pool ended and created again under the same identity is another.
  pub id: u64,
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
  /// The machine budget's directory for this target, once `machineMax` was used.
  machine_dir: std::sync::OnceLock<Option<std::path::PathBuf>>,
  /// Who watches connections open and close (`watch`).
  observers: Observers,
  /// What the pool knows of its server (`server`).
  server: ServerStatus,
  tracks_server: std::sync::atomic::AtomicBool,
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
  /// 1 while the pool's listening connection is open. It counts in the `size` of the pool it
  /// came from (this one, another server's, or `listenUrl`'s), never in `in_use`.
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
      id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
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
        full_until: None,
        full_backoff: FULL_BACKOFF_FIRST,
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
      machine_dir: std::sync::OnceLock::new(),
      observers: Observers::default(),
      server: ServerStatus::default(),
      tracks_server: std::sync::atomic::AtomicBool::new(false),
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

  /// The machine budget's directory, when `machineMax` is set.
  fn machine_dir(&self) -> Option<std::path::PathBuf> {
    self.settings.read().unwrap_or_else(|e| e.into_inner()).pool.machine_max?;
    self.machine_dir.get_or_init(|| machine::dir_for(&self.target).ok()).clone()
  }

  /// Calls `observer` with every `PoolEvent` of this pool (from any thread) until `unwatch`
  /// with the returned id.
  pub fn watch(&self, observer: Arc<dyn Fn(&PoolEvent) + Send + Sync>) -> u64 {
    let id = NEXT_OBSERVER_ID.fetch_add(1, Ordering::Relaxed);
    self.observers.add(id, observer);
    id
  }

  pub fn unwatch(&self, id: u64) {
    self.observers.remove(id);
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

  /// The pool's counts as of now: an idle connection past its idle timeout is closed before it
  /// is counted, whether or not the reaper has run since (it wakes only every quarter timeout).
  pub fn stats(&self) -> PoolStats {
    self.reap_overdue();
    let (listening, lent) = self.listening_stats();
    let st = self.lock();
    PoolStats {
      name: self.name.clone(),
      target: self.target.to_string(),
      max: st.max,
      size: st.size,
      idle: st.idle.len(),
      in_use: (st.size - st.idle.len()).saturating_sub(lent),
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
      "timeout exceeded after {} ms waiting for a connection from pool \"{}\" ({}): size {}, idle {}, in use {}, max {}, {} other {} waiting{}",
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
