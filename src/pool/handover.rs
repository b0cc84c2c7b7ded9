//! Connections coming back to the pool, and checkouts queued by JavaScript that wait for them.

use super::*;

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

pub(super) enum Queued {
  Task(oneshot::Sender<Grant>),
  Checkout(Box<dyn Checkout>),
}

impl Queued {
  pub(super) fn is_closed(&self) -> bool {
    match self {
      Queued::Task(tx) => tx.is_closed(),
      Queued::Checkout(c) => c.is_gone(),
    }
  }
}

/// Gives `conn` to a checkout taken off the queue: back as `(request, conn)` when environment
/// `owner` queued it (the caller settles it on its own thread), else delivered now.
pub(super) fn give(checkout: Box<dyn Checkout>, conn: Conn, owner: Option<u32>) -> Option<(u32, Conn)> {
  let (queued_by, request) = checkout.key();
  if owner == Some(queued_by) {
    return Some((request, conn));
  }
  checkout.deliver(Ok(conn));
  None
}

impl Pool {
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

  /// Waiting tasks see their channel close; queued checkouts are told the pool was ended.
  pub(super) fn fail_checkouts(&self, waiters: VecDeque<Queued>) {
    for w in waiters {
      if let Queued::Checkout(c) = w {
        c.deliver(Err(self.closed_error()));
      }
    }
  }
}
