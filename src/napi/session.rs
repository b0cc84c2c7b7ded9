//! `NativeSession`: a connection pinned to one JS client until `release()`.

use std::sync::Arc;

use napi::bindgen_prelude::{Either, Int32ArraySlice, Object, Utf16String};
use napi::Env;
use napi_derive::napi;

use super::abort::AbortHandle;
use super::completions;
use super::objects::{promise, request_params, ParamInput};
use crate::conn::Query;
use crate::session::{ReleaseNow, Session};

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
  /// Like `NativePool.submit`, on the pinned connection.
  #[napi(catch_unwind)]
  #[allow(clippy::too_many_arguments)]
  pub fn submit(
    &self,
    env: &Env,
    sql: String,
    values: Either<Vec<ParamInput>, Utf16String>,
    env_id: u32,
    request_id: u32,
    abort: Option<&AbortHandle>,
    lengths: Option<Int32ArraySlice<'_>>,
    lone: Option<bool>,
  ) -> napi::Result<()> {
    let queue = completions::queue(env_id)?;
    let params = request_params(values, lengths.as_deref())?;
    let token = abort.map(|a| a.token.clone());
    if token.is_none() {
      match Query::new(sql, params) {
        Ok(query) => super::read_here(env, lone, self.inner.run_then(query, queue.done(request_id))),
        Err(e) => queue.fail(request_id, e),
      }
      return Ok(());
    }
    super::read_here(env, lone, None);
    match Query::new(sql, params).and_then(|query| self.inner.query(query, token)) {
      Ok(request) => {
        let done = queue.done(request_id);
        crate::runtime::spawn(async move { done(request.await) });
      }
      Err(e) => queue.fail(request_id, e),
    }
    Ok(())
  }

  /// Returns the connection now if that needs no round trip; false means call `release`.
  /// `[request, session]`: the connection went to checkout `request` of this environment
  /// (`envId`), which JavaScript settles with `session`.
  #[napi(catch_unwind)]
  pub fn release_now(&self, destroy: bool, env_id: Option<u32>) -> Either<bool, (u32, NativeSession)> {
    match self.inner.release_now(destroy, env_id) {
      ReleaseNow::Done => Either::A(true),
      ReleaseNow::NotNow => Either::A(false),
      ReleaseNow::HandedTo(request, session) => Either::B((request, NativeSession::new(session))),
    }
  }

  /// Like `releaseNow`, for a connection whose COMMIT was just sent: true when it went to a
  /// checkout of another environment, false when no checkout waits (keep it).
  #[napi(catch_unwind)]
  pub fn release_to_waiter(&self, env_id: Option<u32>) -> Either<bool, (u32, NativeSession)> {
    match self.inner.release_to_waiter(env_id) {
      ReleaseNow::Done => Either::A(true),
      ReleaseNow::NotNow => Either::A(false),
      ReleaseNow::HandedTo(request, session) => Either::B((request, NativeSession::new(session))),
    }
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
