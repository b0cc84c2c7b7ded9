//! `NativePool`: the JS handle on a registry pool. Many handles may share one pool.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Either, FnArgs, Function, Int32ArraySlice, Object, Unknown, Utf16String};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

use super::abort::AbortHandle;
use super::completions;
use super::objects::{
  promise, request_params, NativeError, ParamInput, PoolOptionsInput, PoolStatsObject, RequestTag,
};
use super::session::NativeSession;
use crate::cluster::{Cluster, Intent};
use crate::config::{ConfigInput, PoolConfig};
use crate::conn::Query;
use crate::error::CoreError;
use crate::pool::PoolEvent;
use crate::session::Session;
use crate::{registry, route};

#[napi]
pub struct NativePool {
  pub(super) inner: Arc<Cluster>,
  /// What this handle's requests need of their server: the pool's own kind, or a standby.
  intent: Intent,
}

/// `(kind, connectionId, milliseconds, message)`: see `NativePool.watch`.
type EventArgs = FnArgs<(u32, f64, f64, Option<String>)>;
type OnEvent = ThreadsafeFunction<EventArgs, Unknown<'static>, EventArgs, Status, false, true>;

pub const EVENT_OPENED: u32 = 0;
pub const EVENT_CLOSED: u32 = 1;
pub const EVENT_IDLE_ERROR: u32 = 2;

fn event_args(event: &PoolEvent) -> EventArgs {
  match event {
    PoolEvent::Opened { id, took } => (EVENT_OPENED, *id as f64, took.as_secs_f64() * 1000.0, None),
    PoolEvent::Closed { id } => (EVENT_CLOSED, *id as f64, 0.0, None),
    PoolEvent::IdleError { id, message } => (EVENT_IDLE_ERROR, *id as f64, 0.0, Some(message.clone())),
  }
  .into()
}

/// Attaches to the process-global pool for these options, creating it if needed.
/// Invalid options give a `CONFIG_INVALID` error object instead of a pool. `password`, when
/// given, is called with a request id for each new connection; its answer comes back through
/// `providePassword`.
#[napi(catch_unwind)]
pub fn create_pool(
  options: PoolOptionsInput,
  password: Option<Function<u32, Unknown<'static>>>,
) -> napi::Result<Either<NativePool, NativeError>> {
  let mut input = ConfigInput::from(options);
  if let Some(ask) = password {
    input.password_provider = Some(super::password::provider(ask)?);
  }
  Ok(match PoolConfig::from_input(&input) {
    Ok(cfg) => Either::A(NativePool { inner: registry::attach(&cfg), intent: Intent::Target }),
    Err(e) => Either::B(NativeError::from(&e)),
  })
}

#[napi]
impl NativePool {
  /// Starts one query whose result arrives through the environment's completion queue
  /// (see `initCompletions`) under `request.id`; `crate::route` decides which connection takes
  /// it. `lengths`: `values` is one string of all the text parameters, cut at these lengths.
  #[napi(catch_unwind)]
  pub fn submit(
    &self,
    env: &Env,
    sql: String,
    values: Either<Vec<ParamInput>, Utf16String>,
    lengths: Option<Int32ArraySlice<'_>>,
    request: RequestTag,
    abort: Option<&AbortHandle>,
  ) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    let query = match Query::new(sql, request_params(values, lengths.as_deref())?) {
      Ok(q) => q,
      Err(e) => {
        queue.fail(request.id, e);
        return Ok(());
      }
    };
    let token = abort.map(|a| a.token.clone());
    let inbox = route::submit_to_pool(&self.inner, self.intent, query, token, queue.done(request.id));
    super::read_here(env, request.lone, inbox);
    Ok(())
  }

  /// Checks out a connection now if one is idle and fresh; null means call `connect`.
  #[napi(catch_unwind)]
  pub fn try_connect(&self) -> Option<NativeSession> {
    let (pool, conn) = self.inner.try_acquire_now(self.intent)?;
    Some(NativeSession::new(Session::new(pool, conn)))
  }

  /// Checks out a connection for exclusive use; it arrives through the environment's
  /// completion queue under `requestId`, like a query result. Returns how many milliseconds
  /// JavaScript should let it wait before `cancelConnect`, or -1 when it times out by itself.
  #[napi(catch_unwind)]
  pub fn connect(&self, env_id: u32, request_id: u32) -> napi::Result<f64> {
    let Some(pool) = self.inner.direct() else {
      // A server is picked first; the checkout waits in that server's pool as a task.
      let deliver = completions::deliver_session(env_id, request_id)?;
      let (cluster, intent) = (self.inner.clone(), self.intent);
      crate::runtime::spawn_settled(
        async move { cluster.acquire(intent).await.map(|(pool, conn)| Session::new(pool, conn)) },
        deliver,
        Err(CoreError::Internal("internal error in onepool (please report it)".into())),
      );
      return Ok(-1.0);
    };
    let checkout = completions::checkout(env_id, request_id, pool)?;
    let checkout = match pool.queue_checkout(checkout) {
      Ok(wait) => return Ok(wait.as_millis() as f64),
      Err(checkout) => checkout,
    };
    let pool = pool.clone();
    crate::runtime::spawn_settled(
      async move { pool.acquire().await },
      move |out| checkout.deliver(out),
      Err(CoreError::Internal("internal error in onepool (please report it)".into())),
    );
    Ok(-1.0)
  }

  /// Gives up on a queued `connect` whose wait ran out: its POOL_TIMEOUT error, or null when
  /// a connection is already on its way.
  #[napi(catch_unwind)]
  pub fn cancel_connect(&self, env_id: u32, request_id: u32) -> Option<NativeError> {
    self.inner.direct()?.cancel_checkout((env_id, request_id)).map(|e| NativeError::from(&e))
  }

  /// Closes connection `connectionId` if the pool holds it idle (or as its shared requests end).
  #[napi(catch_unwind)]
  pub fn close_idle(&self, connection_id: f64) -> bool {
    self.inner.close_idle(connection_id as u64)
  }

  #[napi(catch_unwind)]
  pub fn stats(&self) -> PoolStatsObject {
    self.inner.stats().into()
  }

  /// Closes the pool for every handle in the process. Resolves `true` when every connection
  /// closed within `timeoutMs`.
  #[napi(catch_unwind, ts_return_type = "Promise<boolean | NativeError>")]
  pub fn end<'env>(&self, env: &'env Env, timeout_ms: f64) -> napi::Result<Object<'env>> {
    let pool = self.inner.clone();
    registry::remove(&pool);
    // Closed now, not when the promise's task first runs: a query sent right after end()
    // must see it.
    pool.close();
    let timeout = Duration::from_millis(timeout_ms.clamp(0.0, 86_400_000.0) as u64);
    promise(env, async move { Ok(pool.end(timeout).await) })
  }

  /// A handle on the same pool whose requests go to a standby (a read replica, or a standby of
  /// the host list), and to the pool's own server when no standby is up.
  #[napi(catch_unwind)]
  pub fn replica(&self) -> NativePool {
    NativePool { inner: self.inner.clone(), intent: Intent::Replica }
  }

  #[napi(getter, catch_unwind)]
  pub fn is_closed(&self) -> bool {
    self.inner.is_closed()
  }

  /// Unique in the process: a pool ended and created again under the same identity differs.
  #[napi(getter, catch_unwind)]
  pub fn pool_id(&self) -> f64 {
    self.inner.id as f64
  }

  /// Calls `onEvent(kind, connectionId, milliseconds, message)` on this thread for each of the
  /// pool's connection events, without keeping the process alive: kind 0 = opened (in
  /// `milliseconds`), 1 = closed, 2 = an idle connection broke (`message`). Returns the id for
  /// `unwatch`.
  #[napi(catch_unwind)]
  pub fn watch(&self, on_event: Function<EventArgs, Unknown<'static>>) -> napi::Result<f64> {
    let tsfn: OnEvent =
      on_event.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
    let id = self.inner.watch(Arc::new(move |event: &PoolEvent| {
      tsfn.call(event_args(event), ThreadsafeFunctionCallMode::NonBlocking);
    }));
    Ok(id as f64)
  }

  #[napi(catch_unwind)]
  pub fn unwatch(&self, id: f64) {
    self.inner.unwatch(id as u64);
  }
}
