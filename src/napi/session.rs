//! `NativeSession`: a connection pinned to one JS client until `release()`.

use std::sync::Arc;

use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;

use super::abort::AbortHandle;
use super::objects::{params, promise, Bytes, ParamInput};
use crate::conn::encode_query;
use crate::session::Session;
use crate::wire;

#[napi]
pub struct NativeSession {
  inner: Arc<Session>,
}

impl NativeSession {
  pub fn new(session: Session) -> Self {
    NativeSession { inner: Arc::new(session) }
  }
}

#[napi]
impl NativeSession {
  #[napi(catch_unwind, ts_return_type = "Promise<Buffer | NativeError>")]
  pub fn query<'env>(
    &self,
    env: &'env Env,
    sql: String,
    values: Vec<ParamInput>,
    abort: Option<&AbortHandle>,
  ) -> napi::Result<Object<'env>> {
    let token = abort.map(|a| a.token.clone());
    let sent = encode_query(&sql, &params(values)).and_then(|bytes| self.inner.query(bytes, token));
    promise(env, async move { Ok(Bytes(wire::encode(&sent?.await?))) })
  }

  /// Returns the connection (rolled back if a transaction is open); `destroy` closes it.
  #[napi(catch_unwind, ts_return_type = "Promise<boolean | NativeError>")]
  pub fn release<'env>(&self, env: &'env Env, destroy: bool) -> napi::Result<Object<'env>> {
    let session = self.inner.clone();
    promise(env, async move {
      session.release(destroy).await;
      Ok(true)
    })
  }

  /// The server process id of the pinned connection (`pg_backend_pid()`).
  #[napi(getter, catch_unwind)]
  pub fn process_id(&self) -> i32 {
    self.inner.process_id()
  }
}
