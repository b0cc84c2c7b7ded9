//! The process-wide connection budget shared by every pool: at most `limit` connections open
//! (or being opened) at once. Waiters are served first come, first served.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use once_cell::sync::Lazy;
use tokio::sync::oneshot;

pub static BUDGET: Lazy<Budget> = Lazy::new(|| {
  let limit = std::env::var("ONEPOOL_MAX_CONNECTIONS")
    .ok()
    .and_then(|v| v.trim().parse::<usize>().ok())
    .filter(|n| *n > 0);
  Budget::new(limit)
});

pub struct Budget {
  state: Mutex<State>,
  /// How many wait for a slot (as of the last change): read on every connection's return.
  waiting: AtomicUsize,
  /// Who holds connections under this budget and can close an idle one for a waiter.
  holders: Mutex<Vec<Weak<dyn IdleHolder>>>,
}

/// A pool, as the budget sees it: something that can close one of its idle connections so that
/// another pool's waiter gets the slot.
pub trait IdleHolder: Send + Sync {
  /// Closes the least recently used idle connection; false when none is idle.
  fn close_one_idle(&self) -> bool;
}

struct State {
  limit: Option<usize>,
  used: usize,
  waiters: VecDeque<oneshot::Sender<BudgetPermit>>,
}

/// One open connection's share of the budget; dropping it frees the slot.
pub struct BudgetPermit {
  budget: &'static Budget,
}

impl Drop for BudgetPermit {
  fn drop(&mut self) {
    self.budget.release();
  }
}

/// Everything a connection holds a share of: the process budget and, with `machineMax`, a
/// machine-wide slot. Dropped with the connection.
pub struct Lease {
  _budget: BudgetPermit,
  _machine: Option<crate::machine::MachineSlot>,
  /// Dropped with the connection too, after the slots are free (the pool's close notice).
  _notice: Option<Box<dyn Send + Sync>>,
}

impl Lease {
  pub fn new(budget: BudgetPermit, machine: Option<crate::machine::MachineSlot>) -> Lease {
    Lease { _budget: budget, _machine: machine, _notice: None }
  }

  /// Drops `notice` when the connection holding this lease is dropped.
  pub fn with_notice(mut self, notice: Box<dyn Send + Sync>) -> Lease {
    self._notice = Some(notice);
    self
  }
}

#[derive(Debug, Clone, Copy)]
pub struct BudgetStats {
  pub limit: Option<usize>,
  pub used: usize,
  pub waiting: usize,
}

impl Budget {
  pub fn new(limit: Option<usize>) -> Budget {
    Budget {
      state: Mutex::new(State { limit, used: 0, waiters: VecDeque::new() }),
      waiting: AtomicUsize::new(0),
      holders: Mutex::new(Vec::new()),
    }
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// A slot now, unless the budget is spent or others are already queued (fairness).
  pub fn try_acquire(&'static self) -> Option<BudgetPermit> {
    let mut s = self.lock();
    s.waiters.retain(|w| !w.is_closed());
    if s.waiters.is_empty() && s.limit.is_none_or(|l| s.used < l) {
      s.used += 1;
      Some(BudgetPermit { budget: self })
    } else {
      None
    }
  }

  /// Queues for a slot. Cancel-safe: a permit granted to a dropped waiter goes to the next one.
  pub fn acquire(&'static self) -> oneshot::Receiver<BudgetPermit> {
    let (tx, rx) = oneshot::channel();
    let mut s = self.lock();
    s.waiters.retain(|w| !w.is_closed());
    if s.waiters.is_empty() && s.limit.is_none_or(|l| s.used < l) {
      s.used += 1;
      let _ = tx.send(BudgetPermit { budget: self });
    } else {
      s.waiters.push_back(tx);
    }
    self.waiting.store(s.waiters.len(), Ordering::Release);
    rx
  }

  /// Whether a pool waits for a slot: a connection coming back idle then closes instead, so
  /// idle connections never hold the budget while someone waits for it.
  pub fn someone_waits(&self) -> bool {
    self.waiting.load(Ordering::Acquire) > 0 && {
      let mut s = self.lock();
      s.waiters.retain(|w| !w.is_closed());
      self.waiting.store(s.waiters.len(), Ordering::Release);
      !s.waiters.is_empty()
    }
  }

  fn release(&'static self) {
    let mut s = self.lock();
    s.used = s.used.saturating_sub(1);
    self.grant(&mut s);
  }

  fn grant(&'static self, s: &mut State) {
    while s.limit.is_none_or(|l| s.used < l) {
      let Some(w) = s.waiters.pop_front() else {
        break;
      };
      s.used += 1;
      if let Err(permit) = w.send(BudgetPermit { budget: self }) {
        // The waiter gave up; undo without re-entering release() while locked.
        std::mem::forget(permit);
        s.used -= 1;
      }
    }
    self.waiting.store(s.waiters.len(), Ordering::Release);
  }

  pub fn set_limit(&'static self, limit: Option<usize>) {
    let mut s = self.lock();
    s.limit = limit;
    self.grant(&mut s);
  }

  pub fn stats(&self) -> BudgetStats {
    let s = self.lock();
    BudgetStats { limit: s.limit, used: s.used, waiting: s.waiters.iter().filter(|w| !w.is_closed()).count() }
  }

  /// Lets `holder` give up idle connections for waiters of other holders (`free_idle_for`).
  pub fn register(&self, holder: Weak<dyn IdleHolder>) {
    let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
    holders.retain(|h| h.strong_count() > 0);
    holders.push(holder);
  }

  /// Frees a slot for `requester` by closing one idle connection of another holder.
  pub fn free_idle_for(&self, requester: &Arc<dyn IdleHolder>) {
    let others: Vec<Arc<dyn IdleHolder>> = {
      let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
      holders.iter().filter_map(Weak::upgrade).filter(|h| !Arc::ptr_eq(h, requester)).collect()
    };
    for holder in others {
      if holder.close_one_idle() {
        return;
      }
    }
  }
}
