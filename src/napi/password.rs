//! `password` given as a function: the core asks a `PasswordProvider` for each new connection;
//! this one asks JavaScript. The request goes to the environment that created the pool through
//! a threadsafe function (`ask(id)`); JavaScript answers with `providePassword(id, ...)`
//! whenever its function (sync or async) settles. The pool bounds the wait by the connect
//! timeout; a request given up on is forgotten, and a late answer is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Function, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use once_cell::sync::Lazy;
use tokio::sync::oneshot;

use crate::config::{PasswordProvider, Secret};
use crate::error::CoreError;

type Ask = ThreadsafeFunction<u32, Unknown<'static>, u32, Status, false, true>;
type Answer = Result<String, String>;

static PENDING: Lazy<Mutex<HashMap<u32, oneshot::Sender<Answer>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT: AtomicU32 = AtomicU32::new(1);

fn pending() -> std::sync::MutexGuard<'static, HashMap<u32, oneshot::Sender<Answer>>> {
  PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forgets a request whose connection attempt was given up (timed out, pool ended).
struct Forget(u32);

impl Drop for Forget {
  fn drop(&mut self) {
    pending().remove(&self.0);
  }
}

/// A provider that calls `ask(requestId)` on the JavaScript thread that gave it.
pub fn provider(ask: Function<u32, Unknown<'static>>) -> napi::Result<PasswordProvider> {
  // Weak: a pool that waits for nothing must not keep the process alive.
  let ask: Arc<Ask> =
    Arc::new(ask.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
  Ok(PasswordProvider(Arc::new(move || {
    let ask = ask.clone();
    Box::pin(async move {
      let id = NEXT.fetch_add(1, Ordering::Relaxed);
      let (tx, rx) = oneshot::channel();
      pending().insert(id, tx);
      let _forget = Forget(id);
      if ask.call(id, ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
        return Err(CoreError::Internal(
          "the JavaScript thread that created the pool (and its password function) is gone".into(),
        ));
      }
      match rx.await {
        Ok(Ok(password)) => Ok(Secret(password)),
        Ok(Err(reason)) => Err(CoreError::Internal(reason)),
        Err(_) => Err(CoreError::Internal("the password function never answered".into())),
      }
    })
  })))
}

/// The answer to password request `id`: the password, or why there is none (never the value).
#[napi(catch_unwind)]
pub fn provide_password(id: u32, password: Option<String>, error: Option<String>) {
  let Some(tx) = pending().remove(&id) else { return };
  let _ = tx.send(match (password, error) {
    (Some(p), None) => Ok(p),
    (_, Some(e)) => Err(e),
    (None, None) => Err("the password function returned nothing".into()),
  });
}
