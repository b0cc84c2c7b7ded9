//! What happens to a pool's connections, for whoever watches (node-postgres's pool events and
//! OpenTelemetry's connection metrics in the JS layer). Connections open and close rarely, so
//! an event costs a lock and nothing at all when nobody watches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum PoolEvent {
  /// Connection `id` opened (socket, startup, authentication) in `took`.
  Opened { id: u64, took: Duration },
  /// Connection `id` closed, for whatever reason; it has left the pool's books.
  Closed { id: u64 },
  /// Idle connection `id` was found broken (the server or the network closed it). A `Closed`
  /// event follows.
  IdleError { id: u64, message: String },
}

type Observer = Arc<dyn Fn(&PoolEvent) + Send + Sync>;

/// The pool's watchers, shared with the close notices its connections carry.
#[derive(Clone, Default)]
pub struct Observers(Arc<Mutex<Vec<(u64, Observer)>>>);

impl Observers {
  pub fn add(&self, id: u64, observer: Observer) {
    self.0.lock().unwrap_or_else(|e| e.into_inner()).push((id, observer));
  }

  pub fn remove(&self, id: u64) {
    self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
  }

  pub fn emit(&self, event: PoolEvent) {
    let watchers: Vec<Observer> =
      self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, o)| o.clone()).collect();
    for watch in watchers {
      watch(&event);
    }
  }
}

/// Carried by a connection (inside its budget lease): reports `Closed` when the connection is
/// dropped, wherever that happens.
pub struct CloseNotice {
  pub(super) id: u64,
  pub(super) observers: Observers,
}

impl Drop for CloseNotice {
  fn drop(&mut self) {
    self.observers.emit(PoolEvent::Closed { id: self.id });
  }
}
