//! Subscriptions by key, so that a re-evaluated module's subscription replaces its previous
//! self instead of adding to it.
//!
//! A module that subscribes at module scope runs its `listen()` again on every hot reload, from
//! a new evaluation whose previous one nobody will clean up. A keyed subscription therefore ends
//! the live subscription with the same key: the new one is made first (its channel stays
//! listened to throughout), then the old one ends, and its subscriber hears `Ended` after every
//! notification it was already sent. Each notification reaches exactly one of them.
//!
//! Keys are scoped (the JavaScript thread: worker threads evaluate the same module and each
//! wants its own subscription) and process-wide across pools: a module whose edit renamed its
//! pool still replaces its subscription on the old one. What a key is (explicit, or derived from
//! the channel for a subscription made during a module's evaluation) is the JavaScript layer's
//! choice (`lib/listen.js`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use once_cell::sync::Lazy;

use crate::error::CoreResult;
use crate::pool::{Pool, Subscriber};

/// A subscription key: where it applies (a JavaScript thread) and its name there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
  pub scope: u64,
  pub name: String,
}

/// The live subscription holding each key: its pool and id.
type Keyed = HashMap<Key, (Weak<Pool>, u64)>;

static KEYED: Lazy<Mutex<Keyed>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn keyed() -> MutexGuard<'static, Keyed> {
  KEYED.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a subscription replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribed {
  pub id: u64,
  /// The subscription that held the key until now (it heard `Ended`).
  pub replaced: Option<u64>,
}

/// Subscribes `to` to `channel` on `pool`; with a key, ends the subscription that held it.
pub fn listen(
  pool: &Arc<Pool>,
  channel: &str,
  key: Option<Key>,
  to: Arc<dyn Subscriber>,
) -> CoreResult<Subscribed> {
  let id = pool.subscribe(channel, to)?;
  let Some(key) = key else { return Ok(Subscribed { id, replaced: None }) };
  let previous = {
    let mut keys = keyed();
    // Keys of subscriptions that ended otherwise (their pool closed, their thread exited).
    keys.retain(|_, (p, id)| p.upgrade().is_some_and(|p| p.has_subscription(*id)));
    keys.insert(key, (Arc::downgrade(pool), id))
  };
  let replaced = previous.and_then(|(p, old)| p.upgrade().filter(|p| p.end_subscription(old)).map(|_| old));
  Ok(Subscribed { id, replaced })
}

/// Ends subscription `id` of `pool` (a no-op if it already ended or was replaced).
pub fn unlisten(pool: &Pool, id: u64) {
  if pool.unsubscribe(id) {
    keyed().retain(|_, (_, held)| *held != id);
  }
}

#[cfg(test)]
mod tests {
  use std::sync::Mutex as StdMutex;

  use super::*;
  use crate::pool::ListenEvent;
  use crate::testing::{fake_pool, run, until};

  #[derive(Default)]
  struct Heard(StdMutex<Vec<(u64, &'static str)>>);

  impl Subscriber for Heard {
    fn deliver(&self, sub: u64, event: ListenEvent) {
      let what = match event {
        ListenEvent::Notification(_) => "notification",
        ListenEvent::Listening => "listening",
        ListenEvent::Failed(_) => "failed",
        ListenEvent::Resumed(_) => "resumed",
        ListenEvent::Ended(_) => "ended",
      };
      self.0.lock().unwrap().push((sub, what));
    }
    fn is_gone(&self) -> bool {
      false
    }
  }

  fn key(scope: u64, name: &str) -> Option<Key> {
    Some(Key { scope, name: name.into() })
  }

  #[test]
  fn a_keyed_subscription_replaces_the_one_holding_its_key_in_its_scope_only() {
    run(async {
      let (pool, _) = fake_pool(3, 5_000.0, None);
      let heard = Arc::new(Heard::default());
      let first = listen(&pool, "c", key(1, "k"), heard.clone()).unwrap();
      let other_thread = listen(&pool, "c", key(2, "k"), heard.clone()).unwrap();
      let second = listen(&pool, "c", key(1, "k"), heard.clone()).unwrap();
      assert_eq!(first.replaced, None);
      assert_eq!(other_thread.replaced, None, "another scope's key is another key");
      assert_eq!(second.replaced, Some(first.id));
      assert!(!pool.has_subscription(first.id) && pool.has_subscription(second.id));
      assert!(heard.0.lock().unwrap().contains(&(first.id, "ended")), "the replaced one hears that it ended");
      // The old handle's unlisten no longer reaches anything.
      unlisten(&pool, first.id);
      assert!(pool.has_subscription(second.id));
      unlisten(&pool, second.id);
      unlisten(&pool, other_thread.id);
      until("the listening connection closes", || pool.stats().size == 0).await;
    });
  }

  #[test]
  fn a_key_moves_across_pools() {
    run(async {
      let (a, _) = fake_pool(2, 5_000.0, None);
      let (b, _) = fake_pool(2, 5_000.0, None);
      let heard = Arc::new(Heard::default());
      let first = listen(&a, "c", key(7, "module"), heard.clone()).unwrap();
      let second = listen(&b, "c", key(7, "module"), heard.clone()).unwrap();
      assert_eq!(second.replaced, Some(first.id));
      assert!(!a.has_subscription(first.id));
      until("the first pool's listening connection closes", || a.stats().size == 0).await;
      unlisten(&b, second.id);
    });
  }
}
