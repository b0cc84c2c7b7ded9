//! The N-API side of the JavaScript-owned sockets that the WebAssembly build connects through
//! (`conn::transport::js`, `lib/transport.js`). Present in every build so the typings are the
//! same; the JS layer calls `initTransport` only when `processStats().build` is `'wasm'`.

use std::sync::Arc;

use bytes::Bytes;
use napi::bindgen_prelude::{Array, Buffer, BufferSlice, Function, Null, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use once_cell::sync::OnceCell;

use crate::config::{Host, SslMode};
use crate::conn::transport::js::{self, Event, Op};
use crate::conn::transport::TlsInfo;

type Wake = ThreadsafeFunction<(), Unknown<'static>, (), Status, false, true>;

pub const OP_OPEN: u32 = 0;
pub const OP_WRITE: u32 = 1;
pub const OP_END: u32 = 2;
pub const OP_DESTROY: u32 = 3;
pub const OP_START_TLS: u32 = 4;
pub const OP_RESUME: u32 = 5;

/// Connects the socket registry of `lib/transport.js`: `onOps` is called (without arguments,
/// never keeping the process alive) when operations are waiting in `takeTransportOps()`.
#[napi(catch_unwind)]
pub fn init_transport(
  on_ops: Function<(), Unknown<'static>>,
  pid: u32,
  hostname: String,
) -> napi::Result<()> {
  let wake: Wake = on_ops.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
  // WASI knows neither: the application_name tag needs them (`process`).
  crate::process::report(pid, hostname);
  js::init(Arc::new(move || {
    wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
  }));
  Ok(())
}

fn ssl_mode(mode: SslMode) -> &'static str {
  match mode {
    SslMode::Disable => "disable",
    SslMode::Prefer => "prefer",
    SslMode::Require => "require",
    SslMode::VerifyCa => "verify-ca",
    SslMode::VerifyFull => "verify-full",
  }
}

/// Every queued socket operation, flattened: `op, id, ...arguments` (see `lib/transport.js`).
#[napi(catch_unwind, ts_return_type = "Array<number | string | boolean | Buffer | null>")]
pub fn take_transport_ops(env: &Env) -> napi::Result<Array<'_>> {
  let mut out = Flat { array: env.create_array(0)?, len: 0 };
  for op in js::take_ops() {
    match op {
      Op::Open { id, host, port, keepalive } => {
        out.push(OP_OPEN)?;
        out.push(id)?;
        match host {
          Host::Tcp(name) => {
            out.push("tcp")?;
            out.push(name)?;
          }
          Host::Unix(dir) => {
            out.push("unix")?;
            out.push(dir.join(format!(".s.PGSQL.{port}")).to_string_lossy().into_owned())?;
          }
        }
        out.push(port)?;
        out.push(keepalive)?;
      }
      Op::Write { id, bytes, ack } => {
        out.push(OP_WRITE)?;
        out.push(id)?;
        out.push(Buffer::from(bytes))?;
        out.push(ack)?;
      }
      Op::End { id } => {
        out.push(OP_END)?;
        out.push(id)?;
      }
      Op::Destroy { id } => {
        out.push(OP_DESTROY)?;
        out.push(id)?;
      }
      Op::Resume { id } => {
        out.push(OP_RESUME)?;
        out.push(id)?;
      }
      Op::StartTls { id, mode, host, ca, client_cert, alpn } => {
        out.push(OP_START_TLS)?;
        out.push(id)?;
        out.push(ssl_mode(mode))?;
        out.push(host)?;
        let (cert, key) = client_cert.unzip();
        for pem in [ca, cert, key] {
          match pem {
            Some(pem) => out.push(pem)?,
            None => out.push(Null)?,
          }
        }
        out.push(alpn)?;
      }
    }
  }
  Ok(out.array)
}

struct Flat<'env> {
  array: Array<'env>,
  len: u32,
}

impl Flat<'_> {
  fn push<V: ToNapiValue>(&mut self, v: V) -> napi::Result<()> {
    self.array.set(self.len, v)?;
    self.len += 1;
    Ok(())
  }
}

const INBOX_SIZE: usize = 64 * 1024;

/// A buffer that lives as long as the process; written only by this instance's JS thread.
struct Inbox(*mut u8);
// SAFETY: the pointer is never freed, and only the JS thread (inside `transport_data`'s caller
// and call) touches the bytes.
unsafe impl Send for Inbox {}
// SAFETY: as for Send: the bytes are only touched from the one JS thread.
unsafe impl Sync for Inbox {}

static INBOX: OnceCell<Inbox> = OnceCell::new();

/// Where `transportData` finds received bytes: JavaScript copies each chunk into this view of
/// wasm memory. Handing emnapi the chunk itself would make it allocate and copy the chunk's
/// whole backing store (often 64 KiB) on every call.
#[napi(catch_unwind)]
pub fn transport_inbox(env: &Env) -> napi::Result<BufferSlice<'_>> {
  let inbox = INBOX.get_or_init(|| Inbox(Box::leak(vec![0u8; INBOX_SIZE].into_boxed_slice()).as_mut_ptr()));
  // SAFETY: the memory is valid for INBOX_SIZE bytes forever, so the finalizer has nothing to do.
  unsafe { BufferSlice::from_external(env, inbox.0, INBOX_SIZE, (), |_, _| {}) }
}

/// `len` bytes received on socket `id`, at the start of the inbox; `false` asks the caller to
/// pause the socket until a resume op.
#[napi(catch_unwind)]
pub fn transport_data(id: u32, len: u32) -> bool {
  let Some(inbox) = INBOX.get() else { return true };
  // SAFETY: the inbox is INBOX_SIZE bytes that live forever; JavaScript does not write it
  // during this call.
  let bytes = unsafe { std::slice::from_raw_parts(inbox.0, (len as usize).min(INBOX_SIZE)) };
  js::data(id, Bytes::copy_from_slice(bytes))
}

/// Socket `id` connected (0), finished its TLS handshake (1: with the server's certificate, DER,
/// and the ALPN protocol it selected), flushed `flushed` bytes in total (2), was closed by the
/// server (3), or failed with Node's `code` and `message` (4).
#[napi(catch_unwind)]
pub fn transport_event(
  id: u32,
  kind: u32,
  flushed: Option<f64>,
  code: Option<String>,
  message: Option<String>,
  server_cert: Option<Buffer>,
  alpn: Option<String>,
) {
  let event = match kind {
    0 => Event::Connected,
    1 => Event::Secure(TlsInfo {
      server_cert: server_cert.map(|c| c.to_vec()),
      alpn: alpn.map(String::into_bytes),
    }),
    2 => Event::Flushed(flushed.unwrap_or(0.0) as u64),
    3 => Event::End,
    _ => Event::Error {
      code: code.unwrap_or_else(|| "EIO".into()),
      message: message.unwrap_or_else(|| "socket error".into()),
    },
  };
  js::event(id, event);
}
