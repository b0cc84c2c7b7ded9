//! `NativePool`: the JS handle on a registry pool. Many handles may share one pool.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Either, Object};
use napi::Env;
use napi_derive::napi;

use super::abort::AbortHandle;
use super::objects::{params, promise, Bytes, NativeError, ParamInput, PoolOptionsInput, PoolStatsObject};
use super::session::NativeSession;
use crate::abort::pool_query;
use crate::config::{ConfigInput, PoolConfig};
use crate::conn::encode_query;
use crate::pool::Pool;
use crate::session::Session;
use crate::{registry, wire};

#[napi]
pub struct NativePool {
  inner: Arc<Pool>,
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
  /// Runs one query on any free connection (text may hold several statements when there are
  /// no parameters). Resolves with an encoded result buffer or an error object.
  #[napi(catch_unwind, ts_return_type = "Promise<Buffer | NativeError>")]
  pub fn query<'env>(
    &self,
    env: &'env Env,
    sql: String,
    values: Vec<ParamInput>,
    abort: Option<&AbortHandle>,
  ) -> napi::Result<Object<'env>> {
    let pool = self.inner.clone();
    let bytes = encode_query(&sql, &params(values));
    let token = abort.map(|a| a.token.clone());
    promise(env, async move {
      let response = pool_query(&pool, bytes?, token).await?;
      Ok(Bytes(wire::encode(&response)))
    })
  }

  /// Checks out a connection for exclusive use.
  #[napi(catch_unwind, ts_return_type = "Promise<NativeSession | NativeError>")]
  pub fn connect<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
    let pool = self.inner.clone();
    promise(env, async move {
      let conn = pool.acquire().await?;
      Ok(NativeSession::new(Session::new(pool, conn)))
    })
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
    let timeout = Duration::from_millis(timeout_ms.clamp(0.0, 86_400_000.0) as u64);
    promise(env, async move { Ok(pool.end(timeout).await) })
  }

  #[napi(getter, catch_unwind)]
  pub fn is_closed(&self) -> bool {
    self.inner.is_closed()
  }
}
