//! A pool's servers: what the registry holds for each identity. Most pools have one server, and
//! then every request goes straight to its `Pool`. A multi-host target (libpq's host list) and
//! read replicas make one `Pool` per server, each with its own `max`, budgets and sharing rule,
//! and this module picks the server for each request:
//!
//! - `pick`: which servers may take a request (`target_session_attrs` over the host list for
//!   the pool's own requests, standbys for `pool.replica`), in which order (`load_balance_hosts`);
//! - `check`: what is known of each server (its kind and lag, whether it is down), kept current
//!   by checks on its connections, so that a failover is followed;
//! - `submit`: sending a request to the picked server, and elsewhere again when it certainly did
//!   not run there (its connection could not be opened, or was lost before it was sent).

mod check;
mod listen;
mod pick;
mod submit;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{PoolConfig, Routing, Servers, SessionAttrs, Target};
use crate::pool::{Pool, PoolEvent, PoolStats};

pub use pick::Intent;

pub struct Cluster {
  me: Weak<Cluster>,
  /// Unique in the process (its first server's pool's id).
  pub id: u64,
  pub name: String,
  /// Every server: the identity, with `name`.
  pub servers: Servers,
  /// One per distinct server: the host list's first, in its order, then the replicas.
  members: Vec<Member>,
  routing: RwLock<Routing>,
  /// How long a request may wait for a server of the kind it needs (`connectTimeoutMs`).
  connect_timeout: RwLock<Duration>,
  /// One server that takes every request: nothing to pick.
  direct: AtomicBool,
  /// `check::keep_current` runs.
  kept_current: AtomicBool,
  /// Signalled when what is known of a server changed (a check finished).
  changed: Notify,
  /// `watch` ids → the ids each member pool gave.
  watches: Mutex<HashMap<u64, Vec<u64>>>,
}

struct Member {
  pool: Arc<Pool>,
  target: Target,
  /// In the host list: takes the pool's own requests. Replicas take only reads.
  listed: bool,
  check: Mutex<CheckState>,
}

#[derive(Default)]
struct CheckState {
  running: bool,
  last: Option<Instant>,
}

/// `stats()`: the pool's totals, and each server's share.
#[derive(Debug, Clone)]
pub struct ClusterStats {
  pub pool: PoolStats,
  pub hosts: Vec<HostStats>,
}

#[derive(Debug, Clone)]
pub struct HostStats {
  pub host: String,
  pub port: u16,
  /// A read replica (`replicas`), not in the host list.
  pub replica: bool,
  /// `primary`, `standby` or `unknown` (no connection has told yet).
  pub role: &'static str,
  pub read_only: Option<bool>,
  /// `up`, `down` (opening a connection failed; retried later) or `unknown`.
  pub state: &'static str,
  pub size: usize,
  pub idle: usize,
  pub in_use: usize,
  pub waiting: usize,
  pub lag_ms: Option<f64>,
  /// Why the server is down.
  pub error: Option<String>,
}

impl Cluster {
  pub fn new(cfg: &PoolConfig) -> Arc<Cluster> {
    let mut members: Vec<Member> = Vec::new();
    let listed = cfg.servers.hosts.iter().map(|t| (t, true));
    let replicas = cfg.servers.replicas.iter().map(|t| (t, false));
    for (target, in_list) in listed.chain(replicas) {
      if let Some(m) = members.iter_mut().find(|m| &m.target == target) {
        m.listed |= in_list;
        continue;
      }
      members.push(Member {
        pool: Pool::new(&cfg.for_server(target)),
        target: target.clone(),
        listed: in_list,
        check: Mutex::new(CheckState::default()),
      });
    }
    let cluster = Arc::new_cyclic(|me| Cluster {
      me: me.clone(),
      id: members[0].pool.id,
      name: cfg.name.clone(),
      servers: cfg.servers.clone(),
      members,
      routing: RwLock::new(cfg.routing),
      connect_timeout: RwLock::new(cfg.conn.connect_timeout),
      direct: AtomicBool::new(true),
      kept_current: AtomicBool::new(false),
      changed: Notify::new(),
      watches: Mutex::new(HashMap::new()),
    });
    cluster.route_by(cfg.routing);
    cluster.listen_through_me();
    cluster
  }

  /// Whether requests must pick a server from now on: several servers, or one whose kind
  /// matters. Once they must, each new connection finds out its server's kind, and a task
  /// keeps what is known of the servers current.
  fn route_by(&self, routing: Routing) {
    let direct = self.members.len() == 1 && routing.session_attrs == SessionAttrs::Any;
    self.direct.store(direct, Ordering::Release);
    if !direct && !self.kept_current.swap(true, Ordering::AcqRel) {
      for m in &self.members {
        m.pool.track_server();
      }
      crate::runtime::spawn(check::keep_current(self.me.clone()));
    }
  }

  /// The pool every request goes to when there is nothing to pick.
  pub fn direct(&self) -> Option<&Arc<Pool>> {
    self.direct.load(Ordering::Acquire).then(|| &self.members[0].pool)
  }

  fn routing(&self) -> Routing {
    *self.routing.read().unwrap_or_else(|e| e.into_inner())
  }

  fn connect_timeout(&self) -> Duration {
    *self.connect_timeout.read().unwrap_or_else(|e| e.into_inner())
  }

  /// Applies options from a re-evaluated `createPool` under the same identity.
  pub fn apply(&self, cfg: &PoolConfig) {
    *self.routing.write().unwrap_or_else(|e| e.into_inner()) = cfg.routing;
    *self.connect_timeout.write().unwrap_or_else(|e| e.into_inner()) = cfg.conn.connect_timeout;
    for m in &self.members {
      m.pool.apply(&cfg.for_server(&m.target));
    }
    self.route_by(cfg.routing);
    self.changed.notify_waiters();
  }

  pub fn attach_handle(&self) {
    self.members[0].pool.attach_handle();
  }

  pub fn is_closed(&self) -> bool {
    self.members[0].pool.is_closed()
  }

  /// Stops new requests at once on every server's pool (see `Pool::close`).
  pub fn close(&self) {
    for m in &self.members {
      m.pool.close();
    }
    self.changed.notify_waiters();
  }

  /// `Pool::end` on every server's pool at once; true when every connection closed in time.
  pub async fn end(&self, timeout: Duration) -> bool {
    self.close();
    let ends = self.members.iter().map(|m| m.pool.end(timeout));
    futures_util::future::join_all(ends).await.into_iter().all(|closed| closed)
  }

  /// At process exit (see `Pool::close_for_exit`): how many connections are still busy.
  pub fn close_for_exit(&self) -> usize {
    self.members.iter().map(|m| m.pool.close_for_exit()).sum()
  }

  /// `Pool::close_idle` on whichever server's pool holds connection `id`.
  pub fn close_idle(&self, id: u64) -> bool {
    self.members.iter().any(|m| m.pool.close_idle(id))
  }

  /// Calls `observer` with every event of every server's pool until `unwatch`.
  pub fn watch(&self, observer: Arc<dyn Fn(&PoolEvent) + Send + Sync>) -> u64 {
    let ids: Vec<u64> = self.members.iter().map(|m| m.pool.watch(observer.clone())).collect();
    let id = ids[0];
    self.watches.lock().unwrap_or_else(|e| e.into_inner()).insert(id, ids);
    id
  }

  pub fn unwatch(&self, id: u64) {
    let ids = self.watches.lock().unwrap_or_else(|e| e.into_inner()).remove(&id).unwrap_or_default();
    for (m, id) in self.members.iter().zip(ids) {
      m.pool.unwatch(id);
    }
  }

  pub fn stats(&self) -> ClusterStats {
    let now = Instant::now();
    let mut total: Option<PoolStats> = None;
    let mut hosts = Vec::with_capacity(self.members.len());
    for m in &self.members {
      let s = m.pool.stats();
      let server = m.pool.server().get();
      let (state, error) = match check::availability(m.pool.server(), now) {
        check::Availability::Down { .. } => ("down", server.failure.as_ref().map(|f| f.error.to_string())),
        check::Availability::Up(_) => ("up", None),
        check::Availability::Unknown => ("unknown", None),
      };
      hosts.push(HostStats {
        host: m.target.host.to_string(),
        port: m.target.port,
        replica: !m.listed,
        role: match server.state.standby {
          Some(true) => "standby",
          Some(false) => "primary",
          None => "unknown",
        },
        read_only: server.state.read_only,
        state,
        size: s.size,
        idle: s.idle,
        in_use: s.in_use,
        waiting: s.waiting,
        lag_ms: server.lag_ms.filter(|_| server.state.is_standby()),
        error,
      });
      total = Some(match total {
        None => s,
        Some(t) => PoolStats {
          size: t.size + s.size,
          idle: t.idle + s.idle,
          in_use: t.in_use + s.in_use,
          waiting: t.waiting + s.waiting,
          created: t.created + s.created,
          acquire_timeouts: t.acquire_timeouts + s.acquire_timeouts,
          ..t
        },
      });
    }
    let mut pool = total.expect("a cluster has a server");
    pool.target = self.servers.to_string();
    ClusterStats { pool, hosts }
  }
}
