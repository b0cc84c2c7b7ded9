//! The only code that knows about N-API: it converts and delegates to the core.

// The registration that uses these items is generated only outside `cfg(test)`.
#![cfg_attr(test, allow(dead_code))]

mod abort;
mod completions;
mod listen;
mod objects;
mod password;
mod pool;
mod session;
mod stream;
mod transport;
#[cfg(unix)]
mod watch;

use std::time::Duration;

use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;

use crate::budget::BUDGET;
use crate::registry;
use objects::{promise, PoolStatsObject};

/// A lone request's reply is read by this thread too (see `watch`), when its socket allows.
/// Any other request, or one without a socket to read yet (it waits for a connection, or runs
/// as a cancellable task), leaves every reply to the I/O thread.
#[allow(unused_variables)]
fn read_here(env: &Env, lone: bool, inbox: Option<std::sync::Arc<crate::conn::Inbox>>) {
  #[cfg(unix)]
  match (lone, inbox) {
    (true, Some(inbox)) => watch::watch(env, inbox),
    _ => watch::stop(),
  }
}

#[napi(object)]
pub struct BudgetObject {
  /// `null` when no process budget is set (each pool's `max` is the only bound).
  pub limit: Option<u32>,
  pub used: u32,
  pub waiting: u32,
}

#[napi(object)]
pub struct ProcessStatsObject {
  pub pools: Vec<PoolStatsObject>,
  pub budget: BudgetObject,
  pub build: String,
  pub pid: u32,
}

#[napi(catch_unwind)]
pub fn process_stats() -> ProcessStatsObject {
  let b = BUDGET.stats();
  ProcessStatsObject {
    pools: registry::all().iter().map(|p| p.stats().into()).collect(),
    budget: BudgetObject { limit: b.limit.map(|l| l as u32), used: b.used as u32, waiting: b.waiting as u32 },
    build: if cfg!(target_family = "wasm") { "wasm" } else { "native" }.to_string(),
    pid: crate::process::id(),
  }
}

/// Caps the connections of all pools together; `null` or 0 removes the cap.
#[napi(catch_unwind)]
pub fn set_process_max_connections(limit: Option<u32>) {
  BUDGET.set_limit(limit.filter(|l| *l > 0).map(|l| l as usize));
}

/// Ends every pool in the process.
#[napi(catch_unwind, ts_return_type = "Promise<boolean | NativeError>")]
pub fn close_all<'env>(env: &'env Env, timeout_ms: f64) -> napi::Result<Object<'env>> {
  let pools = registry::all();
  for p in &pools {
    registry::remove(p);
    p.close();
  }
  let timeout = Duration::from_millis(timeout_ms.clamp(0.0, 86_400_000.0) as u64);
  promise(env, async move {
    let mut all = true;
    for p in pools {
      all &= p.end(timeout).await;
    }
    Ok(all)
  })
}

/// Process exit: idle connections send Terminate and close; waits at most `boundMs`.
/// Returns how many connections were still open (busy ones close with the process).
#[napi(catch_unwind)]
pub fn terminate_all(bound_ms: u32) -> u32 {
  crate::shutdown::terminate_all(Duration::from_millis(u64::from(bound_ms))) as u32
}
