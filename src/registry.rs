//! The process-global registry: one native pool per identity (`name` + its servers), shared by
//! every module evaluation and every worker thread that loads the addon.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::Lazy;

use crate::cluster::Cluster;
use crate::config::PoolConfig;

static POOLS: Lazy<Mutex<Vec<Arc<Cluster>>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// How long a pool replaced by an edited target may finish in-flight work.
const REPLACED_DRAIN: Duration = Duration::from_secs(30);

fn pools() -> std::sync::MutexGuard<'static, Vec<Arc<Cluster>>> {
  POOLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Returns the pool for `cfg`'s identity, creating it or applying changed options live.
pub fn attach(cfg: &PoolConfig) -> Arc<Cluster> {
  let mut reg = pools();
  reg.retain(|p| !p.is_closed());
  if let Some(p) = reg.iter().find(|p| p.name == cfg.name && p.servers == cfg.servers) {
    p.apply(cfg);
    p.attach_handle();
    return p.clone();
  }
  // Same name, another target: the connection settings were edited. The old pool drains.
  let (replaced, kept): (Vec<_>, Vec<_>) = reg.drain(..).partition(|p| p.name == cfg.name);
  *reg = kept;
  for old in replaced {
    crate::runtime::spawn(async move {
      old.end(REPLACED_DRAIN).await;
    });
  }
  let pool = Cluster::new(cfg);
  reg.push(pool.clone());
  pool
}

/// Forgets an ended pool so that the next `createPool` builds a fresh one.
pub fn remove(pool: &Arc<Cluster>) {
  pools().retain(|p| !Arc::ptr_eq(p, pool));
}

pub fn all() -> Vec<Arc<Cluster>> {
  pools().clone()
}
