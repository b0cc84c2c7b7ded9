//! `NativePool`: the JS handle on a registry pool. Many handles may share one pool.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Either, Int32ArraySlice, Object, Utf16String};
use napi::Env;
use napi_derive::napi;

use super::abort::AbortHandle;
use super::completions;
use super::objects::{
  promise, request_params, NativeError, ParamInput, PoolOptionsInput, PoolStatsObject, RequestTag,
};
use super::session::NativeSession;
use crate::config::{ConfigInput, PoolConfig};
use crate::conn::Query;
use crate::error::CoreError;
use crate::pool::Pool;
use crate::session::Session;
use crate::{registry, route};

#[napi]
pub struct NativePool {
  pub(super) inner: Arc<Pool>,
}

/// Attaches to the process-global pool for these options, creating it if needed.
/// Invalid options give a `CONFIG_INVALID` error object instead of a pool.
#[napi(catch_unwind)]
pub fn create_pool(options: PoolOptionsInput) -> Either<NativePool, NativeError> {
  match PoolConfig::from_input(&ConfigInput::from(options)) {
    Ok(cfg) => Either::A(NativePool { inner: registry::attach(&cfg) }),
    Err(e) => Either::B(NativeError::from(&e)),
  }
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
    let inbox = route::submit_to_pool(&self.inner, query, token, queue.done(request.id));
    super::read_here(env, request.lone, inbox);
    Ok(())
  }

  /// Checks out a connection now if one is idle and fresh; null means call `connect`.
  #[napi(catch_unwind)]
  pub fn try_connect(&self) -> Option<NativeSession> {
    let conn = self.inner.try_acquire_now()?;
    Some(NativeSession::new(Session::new(self.inner.clone(), conn)))
  }

  /// Checks out a connection for exclusive use; it arrives through the environment's
  /// completion queue under `requestId`, like a query result. Returns how many milliseconds
  /// JavaScript should let it wait before `cancelConnect`, or -1 when it times out by itself.
  #[napi(catch_unwind)]
  pub fn connect(&self, env_id: u32, request_id: u32) -> napi::Result<f64> {
    let checkout = completions::checkout(env_id, request_id, &self.inner)?;
    let checkout = match self.inner.queue_checkout(checkout) {
      Ok(wait) => return Ok(wait.as_millis() as f64),
      Err(checkout) => checkout,
    };
    let pool = self.inner.clone();
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
    self.inner.cancel_checkout((env_id, request_id)).map(|e| NativeError::from(&e))
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

  #[napi(getter, catch_unwind)]
  pub fn is_closed(&self) -> bool {
    self.inner.is_closed()
  }
}
