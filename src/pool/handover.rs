//! Connections coming back to the pool, and checkouts queued by JavaScript that wait for them.
//!
//! One vocabulary for a connection's way back: `give_back` (it is clean), `check_in` (clean it
//! first), `pass_on` (to a waiting checkout while its COMMIT still runs), `discard` (close it).
//! Each says where the connection went with one type, `Returned`.

use super::*;

/// Upper bound for the ROLLBACK that cleans a connection returned inside a transaction.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A checkout that waits without a task of its own: the JavaScript thread queued it, the pool
/// calls `deliver` when a connection comes back, and the JavaScript layer times it out with
/// `cancel_checkout`. A connection released on the thread that queued it is handed over there
/// and then, without waking an I/O thread (`Returned::ToCaller`).
pub trait Checkout: Send {
  /// (owner, request): the owner is the JavaScript environment that queued it.
  fn key(&self) -> (u32, u32);
  /// True once nobody can receive the connection any more (the environment is gone).
  fn is_gone(&self) -> bool;
  fn deliver(self: Box<Self>, outcome: CoreResult<Conn>);
}

/// Where a connection (`T`: the connection, or the session around it) went when its holder gave
/// it back.
pub enum Returned<T> {
  /// Back in the pool, to a checkout of another environment, or closed.
  Gone,
  /// To checkout `request` of the calling environment, which settles it with `T` itself.
  ToCaller(u32, T),
  /// Still the holder's: nobody waits first in line (`pass_on`), or a transaction left open
  /// must be rolled back first (`Session::give_back_now`).
  Kept,
}

pub(super) enum Queued {
  /// An `acquire` waiting in a task.
  Task(oneshot::Sender<Grant>),
  /// A checkout JavaScript queued (no task).
  Checkout(Box<dyn Checkout>),
  /// A shared `pool.query()` request (no task; see `shared`).
  Request(QueuedRequest),
}

impl Queued {
  pub(super) fn is_closed(&self) -> bool {
    match self {
      Queued::Task(tx) => tx.is_closed(),
      Queued::Checkout(c) => c.is_gone(),
      Queued::Request(_) => false,
    }
  }
}

/// Gives `conn` to a checkout taken off the queue: back to the caller when environment `owner`
/// queued it (the caller settles it on its own thread), else delivered now.
pub(super) fn give(checkout: Box<dyn Checkout>, conn: Conn, owner: Option<u32>) -> Returned<Conn> {
  let (queued_by, request) = checkout.key();
  if owner == Some(queued_by) {
    return Returned::ToCaller(request, conn);
  }
  checkout.deliver(Ok(conn));
  Returned::Gone
}

impl Pool {
  /// Gives a connection back: to the oldest waiter, else idle. Broken, dirty, retired or surplus
  /// connections are closed instead. `owner` is the calling JavaScript environment, if any: when
  /// the oldest waiter is a checkout it queued, the connection comes back as `ToCaller`.
  pub fn give_back(&self, mut conn: Conn, owner: Option<u32>) -> Returned<Conn> {
    if conn.is_closed() || !conn.is_clean() || retired(&conn) {
      self.discard(conn);
      return Returned::Gone;
    }
    conn.idle_since = Instant::now();
    let mut checkout = None;
    let mut shared = Vec::new();
    // With `machineMax`, a process that waited longer for a slot gets this one.
    let yields = self.machine_dir().is_some_and(|dir| machine::should_yield(&dir));
    let surplus = {
      let mut st = self.lock();
      if st.closed || st.size > st.max {
        st.size -= 1;
        Some(conn)
      } else if yields {
        // Its waiters here open a connection of their own, in line behind the other process.
        st.size -= 1;
        wake_slots(&mut st, 1, &self.me);
        Some(conn)
      } else {
        loop {
          let Some(w) = st.waiters.pop_front() else {
            // Nobody here waits for it. Another pool waiting for the process budget gets its
            // slot now rather than when this one's idle timeout runs out.
            if self.budget.someone_waits() {
              st.size -= 1;
              break Some(conn);
            }
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
            Queued::Request(r) => {
              shared = self.share_with_queue(&mut st, conn, r);
              break None;
            }
          }
        }
      }
    };
    for next in shared {
      self.finish(next);
    }
    if let Some(c) = surplus {
      drop(c);
      self.shrunk.notify_waiters();
    }
    match checkout {
      Some((c, conn)) => give(c, conn, owner),
      None => Returned::Gone,
    }
  }

  /// Gives back a connection a caller is done with, rolling back a transaction left open; one
  /// that cannot be cleaned is closed, never handed out dirty.
  pub async fn check_in(&self, conn: Conn, destroy: bool) {
    if destroy || conn.is_closed() {
      self.discard(conn);
      return;
    }
    if !conn.is_clean() {
      let cleaned = tokio::time::timeout(CLEANUP_TIMEOUT, conn.simple("ROLLBACK")).await;
      if !matches!(cleaned, Ok(Ok(_))) {
        self.discard(conn);
        return;
      }
    }
    self.give_back(conn, None);
  }

  /// Passes the connection in `held`, with requests still in flight, to the oldest waiting
  /// checkout, when those requests leave its session idle (the caller just sent COMMIT). The
  /// waiter's first statements then go out right behind them instead of a round trip later.
  /// `Kept` leaves it in `held` when no checkout waits first in line, or when it is closed,
  /// retiring or surplus. `owner` as in `give_back`.
  pub fn pass_on(&self, held: &mut Option<Conn>, owner: Option<u32>) -> Returned<Conn> {
    let Some(conn) = held.as_ref() else { return Returned::Gone };
    if conn.is_closed() || retired(conn) {
      return Returned::Kept;
    }
    let checkout = {
      let mut st = self.lock();
      if st.closed || st.size > st.max {
        return Returned::Kept;
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
          return Returned::Kept;
        }
      }
    };
    let Some(mut conn) = held.take() else { return Returned::Gone };
    conn.idle_since = Instant::now();
    conn.change_owner();
    give(checkout, conn, owner)
  }

  /// Queues `checkout` when the pool is at its size limit with nothing idle; returns how long
  /// it may wait (the caller's timer then calls `cancel_checkout`). Otherwise hands it back:
  /// checking out may open or ping a connection, which `acquire` does.
  pub fn queue_checkout(&self, checkout: Box<dyn Checkout>) -> Result<Duration, Box<dyn Checkout>> {
    let mut st = self.lock();
    if st.closed || !st.idle.is_empty() || st.size < st.max {
      return Err(checkout);
    }
    enqueue_waiter(&mut st, Queued::Checkout(checkout));
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

  /// Waiting tasks see their channel close; queued checkouts and requests are told the pool was
  /// ended.
  pub(super) fn fail_checkouts(&self, waiters: VecDeque<Queued>) {
    for w in waiters {
      match w {
        Queued::Checkout(c) => c.deliver(Err(self.closed_error())),
        Queued::Request(r) => (r.done)(Err(self.closed_error())),
        Queued::Task(_) => {}
      }
    }
  }
}
