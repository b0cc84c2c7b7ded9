//! `NativePool.listen`: a JavaScript environment's subscriptions. Their events queue per
//! environment and wake its thread through its completion queue's wake-up (`completions`);
//! JavaScript takes them in batches (`takeListenEvents`, `lib/listen.js`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use napi::bindgen_prelude::{Array, Either, Null};
use napi::Env;
use napi_derive::napi;
use once_cell::sync::Lazy;

use super::completions::{self, EnvQueue};
use super::objects::NativeError;
use super::pool::NativePool;
use crate::listen::{self, Key};
use crate::pool::{ListenEvent, Subscriber};
use crate::registry;

/// An environment's subscriptions, as the pools see them: events queue here until its thread
/// takes them.
struct EnvSubscriber {
  queue: Arc<EnvQueue>,
  events: Mutex<Vec<(u64, ListenEvent)>>,
  gone: AtomicBool,
}

impl Subscriber for EnvSubscriber {
  fn deliver(&self, sub: u64, event: ListenEvent) {
    if self.is_gone() {
      return;
    }
    let was_empty = {
      let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
      events.push((sub, event));
      events.len() == 1
    };
    if was_empty {
      self.queue.wake();
    }
  }

  fn is_gone(&self) -> bool {
    self.gone.load(Ordering::Acquire) || self.queue.is_gone()
  }
}

static SUBSCRIBERS: Lazy<Mutex<HashMap<u32, Arc<EnvSubscriber>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

/// Environment `env_id`'s subscriber, made with its first subscription. When the environment
/// goes away (a worker exits), its subscriptions end at once: their channels are unlistened,
/// and the listening connection closes if they were the last.
fn subscriber(env: &Env, env_id: u32) -> napi::Result<Arc<EnvSubscriber>> {
  let mut all = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner());
  if let Some(s) = all.get(&env_id) {
    return Ok(s.clone());
  }
  let s = Arc::new(EnvSubscriber {
    queue: completions::queue(env_id)?,
    events: Mutex::new(Vec::new()),
    gone: AtomicBool::new(false),
  });
  env.add_env_cleanup_hook(env_id, |id| {
    let gone = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    if let Some(s) = gone {
      s.gone.store(true, Ordering::Release);
      s.events.lock().unwrap_or_else(|e| e.into_inner()).clear();
      for cluster in registry::all() {
        cluster.listener().forget_gone_subscribers();
      }
    }
  })?;
  all.insert(env_id, s.clone());
  Ok(s)
}

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

thread_local! {
  /// Keys are per JavaScript thread: worker threads evaluate the same modules, and each wants
  /// its own subscriptions.
  static THREAD_SCOPE: u64 = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
}

#[napi(object)]
pub struct ListenResult {
  pub id: f64,
  /// The subscription this one replaced (same key), if any.
  pub replaced: Option<f64>,
}

#[napi(object)]
pub struct ResumedObject {
  /// When listening stopped, in milliseconds since the epoch.
  pub since_ms: f64,
  /// Connection attempts it took to listen again.
  pub attempts: u32,
  /// Why listening stopped.
  pub cause: NativeError,
}

#[napi]
impl NativePool {
  /// Subscribes environment `envId` to `channel`; with `key`, replaces the subscription of this
  /// thread that holds that key. Its events arrive through `takeListenEvents`.
  #[napi(catch_unwind)]
  pub fn listen(
    &self,
    env: &Env,
    env_id: u32,
    channel: String,
    key: Option<String>,
  ) -> napi::Result<Either<ListenResult, NativeError>> {
    let to = subscriber(env, env_id)?;
    let key = key.map(|name| Key { scope: THREAD_SCOPE.with(|s| *s), name });
    Ok(match listen::listen(self.inner.listener(), &channel, key, to) {
      Ok(s) => Either::A(ListenResult { id: s.id as f64, replaced: s.replaced.map(|r| r as f64) }),
      Err(e) => Either::B(NativeError::from(&e)),
    })
  }

  /// Ends subscription `id` (a no-op if it already ended or was replaced).
  #[napi(catch_unwind)]
  pub fn unlisten(&self, id: f64) {
    listen::unlisten(self.inner.listener(), id as u64);
  }
}

/// Kinds of event in `takeListenEvents`.
const NOTIFICATION: u32 = 0;
const LISTENING: u32 = 1;
const FAILED: u32 = 2;
const RESUMED: u32 = 3;
const ENDED: u32 = 4;

/// Takes up to `max` events of this environment's subscriptions, oldest first, four slots
/// each: `[subscription, kind, a, b, ...]`. Kinds: 0 notification (a = payload, b = the
/// notifying backend's pid), 1 listening, 2 the first attempt failed (a = NativeError), 3
/// resumed (a = `ResumedObject`), 4 ended (a = NativeError when its pool was ended, else null).
#[napi(catch_unwind, ts_return_type = "Array<number | string | null | NativeError | ResumedObject>")]
pub fn take_listen_events(env: &Env, env_id: u32, max: u32) -> napi::Result<Array<'_>> {
  let taken: Vec<(u64, ListenEvent)> = {
    let subscriber = SUBSCRIBERS.lock().unwrap_or_else(|e| e.into_inner()).get(&env_id).cloned();
    match subscriber {
      Some(s) => {
        let mut events = s.events.lock().unwrap_or_else(|e| e.into_inner());
        let n = events.len().min(max.max(1) as usize);
        events.drain(..n).collect()
      }
      None => Vec::new(),
    }
  };
  let mut out = env.create_array((taken.len() * 4) as u32)?;
  for (i, (sub, event)) in taken.into_iter().enumerate() {
    let at = (i * 4) as u32;
    out.set(at, sub as f64)?;
    match event {
      ListenEvent::Notification(n) => {
        out.set(at + 1, NOTIFICATION)?;
        out.set(at + 2, n.payload.as_str())?;
        out.set(at + 3, n.process_id)?;
      }
      ListenEvent::Listening => {
        out.set(at + 1, LISTENING)?;
        out.set(at + 2, Null)?;
        out.set(at + 3, Null)?;
      }
      ListenEvent::Failed(e) => {
        out.set(at + 1, FAILED)?;
        out.set(at + 2, NativeError::from(&e))?;
        out.set(at + 3, Null)?;
      }
      ListenEvent::Resumed(o) => {
        out.set(at + 1, RESUMED)?;
        let since_ms = o.since.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
        out.set(
          at + 2,
          ResumedObject { since_ms, attempts: o.attempts, cause: NativeError::from(&o.cause) },
        )?;
        out.set(at + 3, Null)?;
      }
      ListenEvent::Ended(reason) => {
        out.set(at + 1, ENDED)?;
        match reason {
          Some(e) => out.set(at + 2, NativeError::from(&e))?,
          None => out.set(at + 2, Null)?,
        }
        out.set(at + 3, Null)?;
      }
    }
  }
  Ok(out)
}
