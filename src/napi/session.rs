//! `NativeSession`: a connection pinned to one JS client until `release()`.

use std::sync::Arc;

use napi::bindgen_prelude::{Either, Int32ArraySlice, Object, Utf16String};
use napi::Env;
use napi_derive::napi;

use super::abort::AbortHandle;
use super::completions;
use super::objects::{promise, request_params, ParamInput, RequestTag};
use crate::conn::Query;
use crate::pool::Returned;
use crate::route;
use crate::session::Session;

#[napi]
pub struct NativeSession {
  pub(super) inner: Arc<Session>,
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
    let inbox = route::submit_to_session(&self.inner, query, token, queue.done(request.id));
    super::read_here(env, request.lone, inbox);
    Ok(())
  }

  /// Gives the connection back now if that needs no round trip; false means call `release`.
  /// `[request, session]`: the connection went to checkout `request` of this environment
  /// (`envId`), which JavaScript settles with `session`.
  #[napi(catch_unwind)]
  pub fn release_now(&self, destroy: bool, env_id: Option<u32>) -> Either<bool, (u32, NativeSession)> {
    returned(self.inner.give_back_now(destroy, env_id))
  }

  /// Like `releaseNow`, for a connection whose COMMIT was just sent: true when it went to a
  /// checkout of another environment, false when no checkout waits (keep it).
  #[napi(catch_unwind)]
  pub fn pass_on(&self, env_id: Option<u32>) -> Either<bool, (u32, NativeSession)> {
    returned(self.inner.pass_on(env_id))
  }

  /// Returns the connection (rolled back if a transaction is open); `destroy` closes it.
  #[napi(catch_unwind, ts_return_type = "Promise<boolean | NativeError>")]
  pub fn release<'env>(&self, env: &'env Env, destroy: bool) -> napi::Result<Object<'env>> {
    let session = self.inner.clone();
    promise(env, async move {
      session.give_back(destroy).await;
      Ok(true)
    })
  }

  /// The pool's id for the pinned connection, as in the pool's events (`NativePool.watch`).
  #[napi(getter, catch_unwind)]
  pub fn connection_id(&self) -> f64 {
    self.inner.connection_id() as f64
  }

  /// The host (or socket directory) of the server the pinned connection is on.
  #[napi(getter, catch_unwind)]
  pub fn host(&self) -> Option<String> {
    self.inner.server().map(|(host, _)| host)
  }

  /// The port of the server the pinned connection is on.
  #[napi(getter, catch_unwind)]
  pub fn port(&self) -> Option<u32> {
    self.inner.server().map(|(_, port)| u32::from(port))
  }

  /// The server process id of the pinned connection (`pg_backend_pid()`).
  #[napi(getter, catch_unwind)]
  pub fn process_id(&self) -> i32 {
    self.inner.process_id()
  }
}

/// `true`: gone; `false`: kept; `[request, session]`: to the caller's own checkout.
fn returned(r: Returned<Session>) -> Either<bool, (u32, NativeSession)> {
  match r {
    Returned::Gone => Either::A(true),
    Returned::Kept => Either::A(false),
    Returned::ToCaller(request, session) => Either::B((request, NativeSession::new(session))),
  }
}
