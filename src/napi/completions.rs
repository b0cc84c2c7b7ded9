//! Query results (and checked-out connections) delivered in batches: one threadsafe function
//! per JS environment (thread) instead of one promise machinery per request. The I/O thread queues `(requestId, outcome)`
//! and wakes JavaScript only when the queue was empty; JavaScript then takes the whole batch
//! and settles its own promises (`lib/dispatch.js`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Array, Buffer, BufferSlice, Function, Null};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use once_cell::sync::Lazy;

use super::objects::NativeError;
use super::session::NativeSession;
use crate::conn::{Conn, Done, Response};
use crate::error::{CoreError, CoreResult};
use crate::pool::{Checkout, Pool};
use crate::session::Session;
use crate::wire;

type Wake = ThreadsafeFunction<(), napi::bindgen_prelude::Unknown<'static>, (), Status, false, true>;

/// What a finished request hands to JavaScript.
enum Outcome {
  Result(Vec<u8>),
  Session(Session),
  Failed(CoreError),
}

pub struct EnvQueue {
  items: Mutex<Vec<(u32, Outcome)>>,
  wake: Mutex<Option<Wake>>,
}

impl EnvQueue {
  fn push(&self, id: u32, outcome: Outcome) {
    let was_empty = {
      let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
      items.push((id, outcome));
      items.len() == 1
    };
    if was_empty {
      self.wake();
    }
  }

  /// Wakes the environment's JavaScript thread to drain what was queued for it (results here,
  /// and the events of its subscriptions: `listen`).
  pub(super) fn wake(&self) {
    if let Some(wake) = self.wake.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
      wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
  }

  /// True once the environment is gone (a worker exited): nobody drains this queue any more.
  pub(super) fn is_gone(&self) -> bool {
    self.wake.lock().unwrap_or_else(|e| e.into_inner()).is_none()
  }

  /// The callback that finishes request `id`: encodes the response off the JS thread.
  pub fn done(self: &Arc<Self>, id: u32) -> Done {
    let queue = self.clone();
    Box::new(move |outcome: CoreResult<Response>| {
      queue.push(
        id,
        match outcome {
          Ok(r) => Outcome::Result(wire::encode(r)),
          Err(e) => Outcome::Failed(e),
        },
      )
    })
  }

  /// The callback that finishes request `id` with bytes JavaScript takes as they are (a COPY's
  /// data), not a result to decode.
  pub fn done_bytes(self: &Arc<Self>, id: u32) -> Box<dyn FnOnce(CoreResult<Vec<u8>>) + Send> {
    let queue = self.clone();
    Box::new(move |outcome: CoreResult<Vec<u8>>| {
      queue.push(
        id,
        match outcome {
          Ok(bytes) => Outcome::Result(bytes),
          Err(e) => Outcome::Failed(e),
        },
      )
    })
  }

  pub fn fail(&self, id: u32, err: CoreError) {
    self.push(id, Outcome::Failed(err));
  }
}

/// A checkout queued by this environment (`NativePool.connect`).
struct EnvCheckout {
  queue: Arc<EnvQueue>,
  env_id: u32,
  id: u32,
  pool: Arc<Pool>,
}

impl Checkout for EnvCheckout {
  fn key(&self) -> (u32, u32) {
    (self.env_id, self.id)
  }

  fn is_gone(&self) -> bool {
    self.queue.is_gone()
  }

  fn deliver(self: Box<Self>, outcome: CoreResult<Conn>) {
    let outcome = match outcome {
      Ok(conn) => Outcome::Session(Session::new(self.pool, conn)),
      Err(e) => Outcome::Failed(e),
    };
    self.queue.push(self.id, outcome);
  }
}

/// Delivers the session checked out for `request_id` of environment `env_id` (a checkout that
/// picked its server first, so no pool's queue holds it).
pub fn deliver_session(
  env_id: u32,
  request_id: u32,
) -> napi::Result<impl FnOnce(CoreResult<Session>) + Send> {
  let queue = queue(env_id)?;
  Ok(move |outcome: CoreResult<Session>| {
    queue.push(
      request_id,
      match outcome {
        Ok(session) => Outcome::Session(session),
        Err(e) => Outcome::Failed(e),
      },
    )
  })
}

/// Checkout `request_id` of environment `env_id`, to queue on `pool` or run as a task.
pub fn checkout(env_id: u32, request_id: u32, pool: &Arc<Pool>) -> napi::Result<Box<dyn Checkout>> {
  Ok(Box::new(EnvCheckout { queue: queue(env_id)?, env_id, id: request_id, pool: pool.clone() }))
}

static QUEUES: Lazy<Mutex<HashMap<u32, Arc<EnvQueue>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT_ENV: AtomicU32 = AtomicU32::new(1);

/// The completion queue `initCompletions` registered for this environment.
pub fn queue(env_id: u32) -> napi::Result<Arc<EnvQueue>> {
  let queue = QUEUES.lock().unwrap_or_else(|e| e.into_inner()).get(&env_id).cloned();
  queue.ok_or_else(|| napi::Error::from_reason("onepool: unknown completion queue"))
}

/// Registers this JS environment's completion callback; returns its id. The callback does not
/// keep the process alive (the JS layer holds a ref'd handle while requests are pending).
#[napi(catch_unwind)]
pub fn init_completions(
  env: &Env,
  on_ready: Function<(), napi::bindgen_prelude::Unknown<'static>>,
) -> napi::Result<u32> {
  let wake: Wake = on_ready.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
  let id = NEXT_ENV.fetch_add(1, Ordering::Relaxed);
  let queue = Arc::new(EnvQueue { items: Mutex::new(Vec::new()), wake: Mutex::new(Some(wake)) });
  QUEUES.lock().unwrap_or_else(|e| e.into_inner()).insert(id, queue);
  // When the environment goes away (a worker exits), late results are dropped; the
  // connections themselves go back to their pools on the Rust side regardless.
  env.add_env_cleanup_hook(id, |id| {
    if let Some(q) = QUEUES.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
      q.wake.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
  })?;
  Ok(id)
}

/// Results up to this size are copied into the batch's shared Buffer instead of lent to
/// JavaScript; a lent result crosses as a Buffer of its own, which is how JavaScript knows
/// (`lib/dispatch.js` `release`).
const COPY_BELOW: usize = 16 * 1024;

/// Takes every finished request of this environment: `[batch, id, outcome, id, outcome, ...]`.
/// An outcome is a `NativeSession`, a `NativeError`, a Buffer lent for a large result, or for a
/// small result a number: where that result ends in `batch`, the Buffer holding every small
/// result of the batch back to back (each starts where the previous one ended).
#[napi(catch_unwind, ts_return_type = "Array<Buffer | null | number | NativeSession | NativeError>")]
pub fn take_completions(env: &Env, env_id: u32) -> napi::Result<Array<'_>> {
  let items = match queue(env_id) {
    Ok(q) => std::mem::take(&mut *q.items.lock().unwrap_or_else(|e| e.into_inner())),
    Err(_) => Vec::new(),
  };
  let mut out = env.create_array((items.len() * 2 + 1) as u32)?;
  // Creating a Buffer costs far more than copying a few hundred bytes; Node also frees a lent
  // buffer through a callback scheduled back onto this thread. One Buffer per batch, then.
  let total: usize = items.iter().filter_map(|(_, o)| small_result(o)).map(<[u8]>::len).sum();
  if total > 0 {
    let mut batch = Vec::with_capacity(total);
    for bytes in items.iter().filter_map(|(_, o)| small_result(o)) {
      batch.extend_from_slice(bytes);
    }
    out.set(0, BufferSlice::copy_from(env, &batch)?)?;
  } else {
    out.set(0, Null)?;
  }
  let mut end = 0u32;
  for (i, (id, outcome)) in items.into_iter().enumerate() {
    let at = (i * 2 + 1) as u32;
    out.set(at, id)?;
    if let Some(bytes) = small_result(&outcome) {
      end += bytes.len() as u32;
      out.set(at + 1, end)?;
      continue;
    }
    match outcome {
      Outcome::Result(bytes) => out.set(at + 1, Buffer::from(bytes))?,
      Outcome::Session(s) => out.set(at + 1, NativeSession::new(s))?,
      Outcome::Failed(e) => out.set(at + 1, NativeError::from(&e))?,
    }
  }
  Ok(out)
}

/// A result small enough to be copied into the batch's shared Buffer.
fn small_result(o: &Outcome) -> Option<&[u8]> {
  match o {
    Outcome::Result(bytes) if bytes.len() <= COPY_BELOW => Some(bytes),
    _ => None,
  }
}

/// Frees a lent result's memory once JavaScript has decoded it. Decoding a large result
/// allocates enough to promote its Buffer to the old generation, where it would wait for a full
/// GC; detaching hands the bytes back now (decoded values never point into the buffer). Under
/// WebAssembly a lent buffer may be a view of the module's memory, which must not be detached:
/// there it does nothing (and both builds export the same functions).
#[napi(catch_unwind, js_name = "releaseResult")]
pub fn release_result(env: &Env, buf: napi::bindgen_prelude::Unknown<'_>) -> napi::Result<()> {
  #[cfg(not(target_family = "wasm"))]
  detach(env, buf)?;
  #[cfg(target_family = "wasm")]
  let _ = (env, buf);
  Ok(())
}

#[cfg(not(target_family = "wasm"))]
fn detach(env: &Env, buf: napi::bindgen_prelude::Unknown<'_>) -> napi::Result<()> {
  use napi::{sys, JsValue};
  let mut array_buffer = std::ptr::null_mut();
  // SAFETY: plain N-API calls on a value JavaScript passed in; both check their arguments.
  let status = unsafe {
    sys::napi_get_typedarray_info(
      env.raw(),
      buf.raw(),
      std::ptr::null_mut(),
      std::ptr::null_mut(),
      std::ptr::null_mut(),
      &mut array_buffer,
      std::ptr::null_mut(),
    )
  };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::new(Status::InvalidArg, "releaseResult expects a Buffer"));
  }
  // SAFETY: as above.
  let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), array_buffer) };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::new(Status::InvalidArg, "releaseResult: the buffer cannot be detached"));
  }
  Ok(())
}
