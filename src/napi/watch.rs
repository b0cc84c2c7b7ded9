//! A JavaScript thread waiting for a lone reply reads it off the socket itself.
//!
//! Otherwise a reply takes two wake-ups: the server's bytes wake the I/O thread, which then
//! wakes JavaScript. When the two threads sit on different cores, each wake-up crosses cores,
//! and that second crossing is what made onepool's one-at-a-time latency trail postgres.js
//! (which reads its socket on the JS thread). So while this environment has exactly one request
//! in flight, libuv also polls that request's socket on this thread's event loop, and the
//! thread reads and answers the reply itself (`Inbox::read_now`); the I/O thread, woken too,
//! finds nothing left to read. Whichever thread comes first answers; neither waits for the
//! other.
//!
//! The poll handle lives for one request. It holds the socket's read side, so the descriptor
//! stays open until the handle is closed. An async cleanup hook keeps the environment (a worker
//! thread) from closing its event loop before the handle's close has completed.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use napi::{sys, Env};

use crate::conn::Inbox;

// libuv, as exported by the Node.js binary that loaded the addon.
extern "C" {
  fn uv_handle_size(kind: c_int) -> usize;
  fn uv_poll_init(event_loop: *mut c_void, handle: *mut c_void, fd: c_int) -> c_int;
  fn uv_poll_start(handle: *mut c_void, events: c_int, cb: extern "C" fn(*mut c_void, c_int, c_int))
    -> c_int;
  fn uv_close(handle: *mut c_void, cb: extern "C" fn(*mut c_void));
  fn uv_unref(handle: *mut c_void);
}

const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

struct Watch {
  handle: *mut c_void,
  inbox: Arc<Inbox>,
}

thread_local! {
  /// The request this thread's environment waits on, if it waits on exactly one.
  static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
  /// Poll handles closed whose close callback has not run yet.
  static CLOSING: Cell<usize> = const { Cell::new(0) };
  /// The environment's async cleanup hook, once registered (null before).
  static HOOK: Cell<sys::napi_async_cleanup_hook_handle> = const { Cell::new(ptr::null_mut()) };
  /// The environment is shutting down: no new handles.
  static ENDING: Cell<bool> = const { Cell::new(false) };
}

/// Also reads `inbox` on this thread until its replies are in. Best effort: if the event loop
/// cannot poll the socket, the I/O thread answers as always.
pub fn watch(env: &Env, inbox: Arc<Inbox>) {
  if ENDING.get() {
    return;
  }
  let current = WATCH.with_borrow(|w| w.as_ref().map(|w| Arc::ptr_eq(&w.inbox, &inbox)));
  if current == Some(true) {
    if !inbox.watch() {
      stop();
    }
    return;
  }
  stop();
  if HOOK.get().is_null() && !register_hook(env) {
    return;
  }
  let Ok(event_loop) = env.get_uv_event_loop() else { return };
  // SAFETY: the handle is zeroed memory of the size libuv asks for, initialised before use and
  // freed only in its close callback. Its descriptor stays open while `inbox` is held, which
  // is until `uv_close` has run (it unregisters the descriptor synchronously).
  unsafe {
    let handle = libc::calloc(1, uv_handle_size(UV_POLL));
    if handle.is_null() {
      return;
    }
    if uv_poll_init(event_loop.cast(), handle, inbox.raw_fd()) != 0 {
      libc::free(handle);
      return;
    }
    // Never what keeps the process alive: pending requests do that.
    uv_unref(handle);
    if !inbox.watch() || uv_poll_start(handle, UV_READABLE, on_readable) != 0 {
      inbox.unwatch();
      close(handle);
      return;
    }
    WATCH.set(Some(Watch { handle, inbox }));
  }
}

/// Stops waiting on the current socket, if any.
pub fn stop() {
  if let Some(w) = WATCH.take() {
    // SAFETY: `w.handle` is an initialised, open poll handle of this thread's loop.
    unsafe { close(w.handle) };
    w.inbox.unwatch();
  }
}

extern "C" fn on_readable(handle: *mut c_void, status: c_int, _events: c_int) {
  // Nothing may unwind into libuv.
  let _ = catch_unwind(AssertUnwindSafe(|| {
    let inbox = WATCH.with_borrow(|w| w.as_ref().filter(|w| w.handle == handle).map(|w| w.inbox.clone()));
    let Some(inbox) = inbox else { return };
    // Go on only while replies are owed and this thread still has the socket to itself.
    if status < 0 || !inbox.read_now() || !inbox.is_watched() {
      stop();
    }
  }));
}

/// SAFETY: `handle` must be an initialised, open poll handle of this thread's loop.
unsafe fn close(handle: *mut c_void) {
  CLOSING.set(CLOSING.get() + 1);
  uv_close(handle, on_closed);
}

extern "C" fn on_closed(handle: *mut c_void) {
  // SAFETY: allocated with calloc in `watch`; libuv is done with it.
  unsafe { libc::free(handle) };
  CLOSING.set(CLOSING.get() - 1);
  if CLOSING.get() == 0 && ENDING.get() {
    finish_cleanup();
  }
}

fn register_hook(env: &Env) -> bool {
  let mut hook = ptr::null_mut();
  // SAFETY: a plain N-API call; the hook takes no data.
  let status =
    unsafe { sys::napi_add_async_cleanup_hook(env.raw(), Some(on_env_cleanup), ptr::null_mut(), &mut hook) };
  if status != sys::Status::napi_ok {
    return false;
  }
  HOOK.set(hook);
  true
}

/// The environment is going away: close the handle, then let it go once libuv is done.
unsafe extern "C" fn on_env_cleanup(_hook: sys::napi_async_cleanup_hook_handle, _data: *mut c_void) {
  ENDING.set(true);
  stop();
  if CLOSING.get() == 0 {
    finish_cleanup();
  }
}

fn finish_cleanup() {
  ENDING.set(false);
  let hook = HOOK.replace(ptr::null_mut());
  if !hook.is_null() {
    // SAFETY: `hook` came from napi_add_async_cleanup_hook and is removed once.
    unsafe { sys::napi_remove_async_cleanup_hook(hook) };
  }
}
