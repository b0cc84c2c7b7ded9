//! Cancellation of one query from JavaScript (`AbortSignal`): while waiting for a connection the
//! waiter is dropped; while running, a CancelRequest goes to the server and the query's own
//! completion is awaited, so the connection goes back idle and no later query can be hit by a
//! late cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::conn::{cancel, CancelKey, EarlierRequests, Killer, Response};
use crate::error::{CoreError, CoreResult};

/// How long we wait for the server to acknowledge a CancelRequest.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct AbortToken(Arc<Inner>);

#[derive(Default)]
struct Inner {
  aborted: AtomicBool,
  notify: Notify,
}

impl AbortToken {
  pub fn abort(&self) {
    self.0.aborted.store(true, Ordering::Release);
    self.0.notify.notify_waiters();
  }

  pub fn is_aborted(&self) -> bool {
    self.0.aborted.load(Ordering::Acquire)
  }

  pub async fn aborted(&self) {
    let notified = self.0.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if self.is_aborted() {
      return;
    }
    notified.await;
  }
}

async fn never() {
  std::future::pending::<()>().await
}

/// Completes when `token` (if any) is aborted.
pub async fn aborted(token: &Option<AbortToken>) {
  match token {
    Some(t) => t.aborted().await,
    None => never().await,
  }
}

/// Waits for a request on a connection; on abort, cancels it server-side and waits it out. If
/// the server does not wind the query down in time (a stalled network), the connection is
/// killed rather than left in an unknown state.
pub async fn run<F>(
  request: F,
  key: CancelKey,
  killer: Killer,
  earlier: EarlierRequests,
  token: &Option<AbortToken>,
) -> CoreResult<Response>
where
  F: std::future::Future<Output = CoreResult<Response>>,
{
  tokio::pin!(request);
  tokio::select! {
    biased;
    r = &mut request => r,
    _ = aborted(token) => {
      // The previous owner's COMMIT may still run ahead of this request.
      tokio::select! {
        biased;
        _ = &mut request => return Err(CoreError::Aborted),
        _ = tokio::time::timeout(CANCEL_TIMEOUT, earlier.finished()) => {}
      }
      let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel(&key)).await;
      if tokio::time::timeout(CANCEL_TIMEOUT, &mut request).await.is_err() {
        killer.kill();
        let _ = request.await;
      }
      Err(CoreError::Aborted)
    }
  }
}
