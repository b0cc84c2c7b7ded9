//! `AbortHandle`: created by the JS layer only for queries that carry an `AbortSignal`.

use napi_derive::napi;

use crate::abort::AbortToken;

#[napi]
#[derive(Default)]
pub struct AbortHandle {
  pub(crate) token: AbortToken,
}

#[napi]
impl AbortHandle {
  #[napi(constructor, catch_unwind)]
  pub fn new() -> Self {
    AbortHandle::default()
  }

  #[napi(catch_unwind)]
  pub fn abort(&self) {
    self.token.abort();
  }
}
