//! The crate's own tokio runtime. It lives in a static and is never shut down, so connections
//! survive every JS environment (worker threads, reloads) that loads and unloads the addon.
//! napi-rs's runtime, by contrast, stops when the last environment holding the addon exits.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use once_cell::sync::Lazy;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
  crate::pin::pin_this_image();
  let threads = std::env::var("ONEPOOL_IO_THREADS")
    .ok()
    .and_then(|v| v.parse::<usize>().ok())
    .filter(|n| (1..=64).contains(n))
    // Half the cores: the I/O threads only move bytes, while the JS thread (decoding) and the
    // database need the rest; every extra thread adds wake-ups, and so CPU per request.
    .unwrap_or_else(|| (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) / 2).clamp(1, 4));
  Builder::new_multi_thread()
    .worker_threads(threads)
    .thread_name("onepool-io")
    .enable_all()
    .build()
    .unwrap_or_else(|e| {
      eprintln!("onepool: cannot start its I/O threads: {e}");
      std::process::abort()
    })
});

/// Runs a background task. A panic inside it is contained and reported, never propagated.
pub fn spawn<F>(fut: F)
where
  F: Future<Output = ()> + Send + 'static,
{
  RUNTIME.spawn(async move {
    if AssertUnwindSafe(fut).catch_unwind().await.is_err() {
      eprintln!("onepool: internal error in a background task (please report it)");
    }
  });
}

/// Runs `fut` and hands its output to `settle`, or `on_panic`'s value if it panicked,
/// so a promise waiting on it always settles.
pub fn spawn_settled<T, F, S>(fut: F, settle: S, on_panic: T)
where
  T: Send + 'static,
  F: Future<Output = T> + Send + 'static,
  S: FnOnce(T) + Send + 'static,
{
  RUNTIME.spawn(async move {
    let out = AssertUnwindSafe(fut).catch_unwind().await.unwrap_or(on_panic);
    settle(out);
  });
}

/// Runs a future to completion on onepool's runtime from a thread outside it (process exit).
pub fn block_on<F: Future>(fut: F) -> F::Output {
  RUNTIME.block_on(fut)
}
