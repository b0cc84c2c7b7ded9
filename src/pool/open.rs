//! Opening a connection: the machine budget's slot, the connect itself (through the
//! `Connector`, bounded by the connect timeout), a first ping that measures the round trip, and
//! what a full server means for the pool.

use super::*;
use crate::error::ConnectCause;

/// Frees a reserved slot if opening a connection fails or is cancelled.
pub(super) struct SlotGuard<'a> {
  pool: &'a Pool,
}

impl Drop for SlotGuard<'_> {
  fn drop(&mut self) {
    self.pool.slot_freed();
  }
}

impl Pool {
  /// An empty query: whether the connection answers, and the round trip it took (the pool's
  /// measure of the network, which tells a statement's own time from the wire's).
  pub(super) async fn ping(&self, conn: &Conn, settings: &Settings) -> bool {
    let started = Instant::now();
    let ping = tokio::time::timeout(settings.conn.connect_timeout, conn.simple("")).await;
    let answered = matches!(ping, Ok(Ok(_)));
    if answered {
      self.lock().timings.record_round_trip(started.elapsed());
    }
    answered
  }

  pub(super) async fn open(
    self: &Arc<Self>,
    permit: BudgetPermit,
    deadline: tokio::time::Instant,
  ) -> CoreResult<Conn> {
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
            return Err(CoreError::PoolTimeout(
              TimeoutKind::MachineBudget,
              format!(
              "timeout exceeded after {} ms waiting for one of the {max} connections that all processes on this machine may \
               open to {} (machineMax)",
                settings.pool.acquire_timeout.as_millis(),
                self.target
              ),
            ));
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
    let notice = CloseNotice { id, observers: self.observers.clone() };
    let lease = Lease::new(permit, machine).with_notice(Box::new(notice));
    let timed_out = || CoreError::ConnectFailed {
      target: self.target.to_string(),
      cause: crate::error::ConnectCause::Timeout,
    };
    let started = Instant::now();
    let connecting = async {
      let mut conn_settings = settings.conn.clone();
      if let Some(provider) = &settings.conn.password_provider {
        conn_settings.password = Some(provider.get().await.map_err(|e| self.password_failed(e))?);
      }
      self.connector.connect(&self.target, &conn_settings, lease, id, retire_at).await
    };
    let opened = tokio::time::timeout(settings.conn.connect_timeout, connecting)
      .await
      .unwrap_or_else(|_| Err(timed_out()));
    let conn = match opened {
      Ok(conn) => conn,
      Err(e) => {
        if is_server_full(&e) {
          self.server_was_full();
        } else {
          self.open_failed(&e);
        }
        return Err(e);
      }
    };
    if !self.ping(&conn, &settings).await {
      // Closed as it opened (the server is shutting down), or it did not answer in time.
      let failed = if conn.is_closed() {
        CoreError::ConnectFailed {
          target: self.target.to_string(),
          cause: ConnectCause::Os {
            code: "ECONNRESET".into(),
            message: "the server closed the connection as it opened".into(),
          },
        }
      } else {
        timed_out()
      };
      self.open_failed(&failed);
      return Err(failed);
    }
    {
      let mut st = self.lock();
      st.live.retain(|(k, _)| !k.is_closed());
      st.live.push((conn.killer(), conn.cancel_key.clone()));
      st.full_until = None;
      st.full_backoff = FULL_BACKOFF_FIRST;
    }
    std::mem::forget(guard);
    self.created.fetch_add(1, Ordering::Relaxed);
    self.observers.emit(PoolEvent::Opened { id, took: started.elapsed() });
    self.learn_server(conn, &settings).await
  }

  /// A password function that failed: the connection could not be opened, and why.
  fn password_failed(&self, e: CoreError) -> CoreError {
    CoreError::ConnectFailed {
      target: self.target.to_string(),
      cause: crate::error::ConnectCause::Other(format!("the password function failed: {e}")),
    }
  }
}

/// The server refused a connection because it (or the role, or the database) has as many as it
/// allows: `53300` too many connections, `53400` a configured limit.
pub(super) fn is_server_full(e: &CoreError) -> bool {
  matches!(e, CoreError::ConnectFailed { cause: ConnectCause::Server(db), .. } if db.code == "53300" || db.code == "53400")
}

impl Pool {
  /// While this pool holds connections, it stops opening more for a while and its callers wait
  /// for those: failing them would be worse than a short wait (a connect storm against a full
  /// server fails most of its callers).
  fn server_was_full(&self) {
    let mut st = self.lock();
    // This opener's own slot still counts: others are what it would wait for.
    if st.size > 1 {
      st.full_until = Some(Instant::now() + st.full_backoff);
      st.full_backoff = (st.full_backoff * 2).min(FULL_BACKOFF_MOST);
    }
  }
}
