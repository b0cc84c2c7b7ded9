//! Exclusive checkout: a fresh idle connection, else a new one within `max` and the budgets,
//! else a place in the queue until one comes back or a slot frees.

use super::*;

pub(super) enum Grant {
  Conn(Conn),
  /// A slot is free: open a connection yourself.
  Slot,
}

pub(super) enum Step {
  Use(Conn),
  Open(BudgetPermit),
  Wait(Waiter, bool),
}

/// A queued waiter. Dropping it (timeout, abort, cancelled task) passes on anything already
/// granted to it, so no connection or slot is ever lost.
pub(super) struct Waiter {
  rx: Option<oneshot::Receiver<Grant>>,
  pool: Weak<Pool>,
}

impl Waiter {
  fn take_pending(&mut self) -> Option<Grant> {
    let mut rx = self.rx.take()?;
    rx.close();
    rx.try_recv().ok()
  }

  fn forward(&self, grant: Grant) {
    if let Some(pool) = self.pool.upgrade() {
      match grant {
        Grant::Conn(c) => {
          pool.give_back(c, None);
        }
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
      self.forward(grant);
    }
  }
}

pub(super) fn enqueue(st: &mut State, pool: &Arc<Pool>) -> Waiter {
  let (tx, rx) = oneshot::channel();
  enqueue_waiter(st, Queued::Task(tx));
  Waiter { rx: Some(rx), pool: Arc::downgrade(pool) }
}

/// Gives up to `n` freed slots to waiters, first come first served: each opens a connection for
/// itself (a queued checkout or shared request in a task of its own).
pub(super) fn wake_slots(st: &mut State, mut n: usize, pool: &Weak<Pool>) {
  let Some(pool) = pool.upgrade() else { return };
  if st.server_full() {
    return;
  }
  while n > 0 {
    let Some(w) = st.waiters.pop_front() else { break };
    let took = match w {
      Queued::Task(tx) => tx.send(Grant::Slot).is_ok(),
      // It has no task to open a connection in: give it one (it takes the slot from there).
      Queued::Checkout(c) if !c.is_gone() => {
        let pool = pool.clone();
        crate::runtime::spawn(async move {
          let outcome = pool.acquire().await;
          c.deliver(outcome);
        });
        true
      }
      Queued::Checkout(_) => false,
      Queued::Request(r) => match pool.budget.try_acquire() {
        Some(permit) => {
          st.size += 1;
          crate::runtime::spawn(pool.clone().open_for(permit, r.query, r.done, r.deadline));
          true
        }
        None => {
          st.waiters.push_front(Queued::Request(r));
          break;
        }
      },
    };
    if took {
      n -= 1;
    }
  }
}

/// Queues a waiter. The connections it waits for are read by the I/O threads from now on: a
/// JavaScript thread watching one for its lone reply may be busy, and the waiter must not
/// wait for it (`conn::Inbox`).
pub(super) fn enqueue_waiter(st: &mut State, waiter: Queued) {
  st.waiters.retain(|w| !w.is_closed());
  st.waiters.push_back(waiter);
  for sc in &st.shared {
    sc.conn.stop_watching();
  }
}

impl Pool {
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
            self.report_idle_error(&c);
            continue;
          }
          found = Some(c);
          break;
        }
        match found {
          Some(c) => Step::Use(c),
          None if st.room() => match self.budget.try_acquire() {
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
        Step::Open(permit) => match self.open(permit, deadline).await {
          // The server is full, but this pool has connections: wait for one of them.
          Err(e) if is_server_full(&e) && self.lock().size > 0 => continue,
          opened => return opened,
        },
        Step::Wait(mut waiter, want_budget) => {
          if want_budget {
            self.budget.free_idle_for(&(self.clone() as Arc<dyn IdleHolder>));
          }
          let mut budget_rx = want_budget.then(|| self.budget.acquire());
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
                Some(Grant::Slot) => waiter.forward(Grant::Slot),
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

  /// Validates an idle connection before hand-out; `None` means it was discarded.
  pub(super) async fn check(&self, conn: Conn, settings: &Settings) -> Option<Conn> {
    if conn.is_closed() || retired(&conn) {
      self.discard(conn);
      return None;
    }
    if conn.idle_since.elapsed() >= settings.pool.ping_after_idle && !self.ping(&conn, settings).await {
      self.discard(conn);
      return None;
    }
    Some(conn)
  }

  /// Closes a connection and gives its slot to a waiter. A statement still running on it is
  /// cancelled: the server would otherwise run it to the end, noticing the closed socket only
  /// when it next writes.
  pub fn discard(&self, conn: Conn) {
    if !conn.is_closed() && conn.in_flight() > 0 {
      let key = conn.cancel_key.clone();
      crate::runtime::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), crate::conn::cancel(&key)).await;
      });
    }
    drop(conn);
    self.slot_freed();
  }

  pub(super) fn slot_freed(&self) {
    {
      let mut st = self.lock();
      st.size = st.size.saturating_sub(1);
      if st.size < st.max {
        wake_slots(&mut st, 1, &self.me);
      }
    }
    self.shrunk.notify_waiters();
  }
}
