//! Sockets owned by JavaScript (`lib/transport.js`): the WebAssembly build's transport, since
//! WASI preview 1 cannot open a socket. Each looks like any other [`Stream`] to the rest of the
//! core. It is compiled into every build (the N-API surface and its typings stay the same, and
//! the tests below run natively) but only the WebAssembly build connects through it.
//!
//! Rust → JavaScript: [`Op`]s go into one queue; JavaScript is woken once when the queue turns
//! non-empty and takes the whole batch, so one wake-up serves every socket (as query results do).
//! JavaScript → Rust: [`data`] and [`event`], called from the sockets' listeners.
//!
//! Backpressure both ways. Writing: at most `WRITE_CREDIT` bytes may be handed to JavaScript and
//! not yet flushed by Node; past half of that, each write asks JavaScript to acknowledge it from
//! its write callback, so a writer that runs out of credit is always woken again. Reading:
//! [`data`] answers `false` once `READ_HIGH` bytes are unread, JavaScript pauses the socket, and
//! Rust resumes it when the reader is down to `READ_LOW`.

#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use once_cell::sync::Lazy;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{tls_alerts, Stream, TlsFailure, TlsInfo, TlsOptions};
use crate::config::{Host, SslMode};
use crate::error::{describe_io, io_code, SocketError};

const WRITE_CREDIT: u64 = 256 * 1024;
const READ_HIGH: usize = 1024 * 1024;
const READ_LOW: usize = 256 * 1024;

/// What Rust asks JavaScript to do with a socket.
#[derive(Debug)]
pub enum Op {
  Open {
    id: u32,
    host: Host,
    port: u16,
    keepalive: bool,
  },
  /// `ack`: call back with the socket's total written bytes once this write is flushed.
  Write {
    id: u32,
    bytes: Vec<u8>,
    ack: bool,
  },
  /// Half-close after the goodbye (Terminate) message; JavaScript closes the socket later.
  End {
    id: u32,
  },
  /// The Rust side is gone (closed, failed, timed out, cancelled): destroy the socket now.
  Destroy {
    id: u32,
  },
  /// Continue the connection in `node:tls` (the server answered 'S' to SSLRequest, or at once
  /// for a direct TLS connection).
  StartTls {
    id: u32,
    mode: SslMode,
    host: String,
    ca: Option<String>,
    /// The client certificate chain and its clear key, PEM.
    client_cert: Option<(String, String)>,
    /// Offer ALPN `postgresql`.
    alpn: bool,
  },
  Resume {
    id: u32,
  },
}

/// What JavaScript reports about a socket.
#[derive(Debug)]
pub enum Event {
  Connected,
  /// The TLS handshake succeeded: what it learned.
  Secure(TlsInfo),
  /// Node flushed this many bytes in total (the count at a write that asked for an ack).
  Flushed(u64),
  /// The server closed its side.
  End,
  Error {
    code: String,
    message: String,
  },
}

type Notify = Arc<dyn Fn() + Send + Sync>;

struct Bridge {
  ops: Mutex<Vec<Op>>,
  notify: Mutex<Option<Notify>>,
  sockets: Mutex<HashMap<u32, Arc<Shared>>>,
  next_id: AtomicU32,
}

static BRIDGE: Lazy<Bridge> = Lazy::new(|| Bridge {
  ops: Mutex::new(Vec::new()),
  notify: Mutex::new(None),
  sockets: Mutex::new(HashMap::new()),
  next_id: AtomicU32::new(1),
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects JavaScript: `notify` wakes it to take operations.
pub fn init(notify: Notify) {
  *lock(&BRIDGE.notify) = Some(notify);
}

/// Every operation queued since the last call, oldest first.
pub fn take_ops() -> Vec<Op> {
  std::mem::take(&mut *lock(&BRIDGE.ops))
}

fn push(op: Op) {
  let was_empty = {
    let mut ops = lock(&BRIDGE.ops);
    ops.push(op);
    ops.len() == 1
  };
  if was_empty {
    let notify = lock(&BRIDGE.notify).clone();
    if let Some(notify) = notify {
      notify();
    }
  }
}

fn lookup(id: u32) -> Option<Arc<Shared>> {
  lock(&BRIDGE.sockets).get(&id).cloned()
}

/// Bytes the socket received. `false` asks JavaScript to pause it until a `Resume`.
pub fn data(id: u32, chunk: Bytes) -> bool {
  let Some(shared) = lookup(id) else { return true };
  let mut s = shared.lock();
  s.unread += chunk.len();
  s.chunks.push_back(chunk);
  let keep_reading = s.unread < READ_HIGH;
  s.paused |= !keep_reading;
  let reader = s.reader.take();
  drop(s);
  if let Some(w) = reader {
    w.wake();
  }
  keep_reading
}

pub fn event(id: u32, event: Event) {
  let Some(shared) = lookup(id) else { return };
  let mut s = shared.lock();
  match event {
    Event::Connected => s.phase = Phase::Open,
    Event::Secure(info) => {
      s.phase = Phase::Open;
      s.tls = Some(info);
    }
    Event::Flushed(n) => s.flushed = s.flushed.max(n),
    Event::End => s.eof = true,
    Event::Error { code, message } => {
      if s.error.is_none() {
        s.error = Some(SocketErr { code, message });
      }
    }
  }
  let wakers = [s.reader.take(), s.writer.take(), s.waiter.take()];
  drop(s);
  for w in wakers.into_iter().flatten() {
    w.wake();
  }
}

#[derive(Default, PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
  #[default]
  Connecting,
  Open,
  Upgrading,
}

#[derive(Clone, Debug)]
struct SocketErr {
  code: String,
  message: String,
}

impl SocketErr {
  fn to_io(&self) -> io::Error {
    io::Error::new(
      kind(&self.code),
      SocketError { code: self.code.clone(), message: describe(&self.code, &self.message) },
    )
  }
}

/// The `io::ErrorKind` for Node's error code, so the core treats both builds' errors alike.
fn kind(code: &str) -> io::ErrorKind {
  match code {
    "ECONNREFUSED" => io::ErrorKind::ConnectionRefused,
    "ECONNRESET" => io::ErrorKind::ConnectionReset,
    "ECONNABORTED" => io::ErrorKind::ConnectionAborted,
    "ETIMEDOUT" => io::ErrorKind::TimedOut,
    "EPIPE" => io::ErrorKind::BrokenPipe,
    "ENOENT" | "ENOTFOUND" => io::ErrorKind::NotFound,
    "EACCES" => io::ErrorKind::PermissionDenied,
    "EADDRNOTAVAIL" => io::ErrorKind::AddrNotAvailable,
    _ => io::ErrorKind::Other,
  }
}

/// The text the native build shows for the same errno (Node's messages name the address,
/// which the error's target already does).
fn describe(code: &str, message: &str) -> String {
  let text = match code {
    "ECONNREFUSED" => "Connection refused",
    "ECONNRESET" => "Connection reset by peer",
    "ETIMEDOUT" => "Connection timed out",
    "EHOSTUNREACH" => "No route to host",
    "ENETUNREACH" => "Network is unreachable",
    "EPIPE" => "Broken pipe",
    "ENOENT" => "No such file or directory",
    "EACCES" => "Permission denied",
    "EADDRNOTAVAIL" => "Cannot assign requested address",
    // A server refusing the client certificate, in the native build's words.
    _ if tls_alerts::describe(code).is_some() => {
      return tls_alerts::describe(code).unwrap_or_default().into()
    }
    _ => return openssl_reason(message),
  };
  text.to_string()
}

/// node:tls passes OpenSSL's error line on ("805C...:error:0A00010B:SSL routines:ssl3_get_record:
/// wrong version number:../deps/openssl/.../ssl3_record.c:350:\n"): its reason is what it says.
fn openssl_reason(message: &str) -> String {
  let fields: Vec<&str> = message.trim().split(':').collect();
  match fields.as_slice() {
    [_, "error", _, _, _, reason, ..] => reason.to_string(),
    _ => message.trim().to_string(),
  }
}

#[derive(Default)]
struct State {
  phase: Phase,
  chunks: VecDeque<Bytes>,
  unread: usize,
  paused: bool,
  eof: bool,
  error: Option<SocketErr>,
  /// Bytes handed to JavaScript, and how many of them Node reported flushed.
  sent: u64,
  flushed: u64,
  ended: bool,
  reader: Option<Waker>,
  writer: Option<Waker>,
  /// Waiting for the connection or the TLS handshake.
  waiter: Option<Waker>,
  /// Set once the TLS handshake succeeded.
  tls: Option<TlsInfo>,
}

struct Shared {
  id: u32,
  state: Mutex<State>,
}

impl Shared {
  fn lock(&self) -> MutexGuard<'_, State> {
    lock(&self.state)
  }
}

/// One JavaScript socket, as seen from Rust. Dropping it destroys the socket unless it was
/// ended cleanly.
pub struct Socket {
  shared: Arc<Shared>,
}

impl Socket {
  fn id(&self) -> u32 {
    self.shared.id
  }

  /// Waits until the socket is open (connected, or through its TLS handshake).
  async fn opened(&self) -> io::Result<()> {
    poll_fn(|cx| {
      let mut s = self.shared.lock();
      if s.phase == Phase::Open {
        Poll::Ready(Ok(()))
      } else if let Some(e) = &s.error {
        Poll::Ready(Err(e.to_io()))
      } else if s.eof {
        Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()))
      } else {
        s.waiter = Some(cx.waker().clone());
        Poll::Pending
      }
    })
    .await
  }
}

impl Drop for Socket {
  fn drop(&mut self) {
    lock(&BRIDGE.sockets).remove(&self.id());
    if !self.shared.lock().ended {
      push(Op::Destroy { id: self.id() });
    }
  }
}

pub fn into_stream(socket: Socket) -> Box<dyn Stream> {
  Box::new(socket)
}

fn uninitialised() -> io::Error {
  io::Error::new(io::ErrorKind::NotConnected, "onepool: the JavaScript socket transport is not initialised")
}

/// Opens a socket from JavaScript (`net.connect`); Node resolves the host name.
pub async fn connect(host: &Host, port: u16, keepalive: bool) -> io::Result<Socket> {
  if lock(&BRIDGE.notify).is_none() {
    return Err(uninitialised());
  }
  let id = BRIDGE.next_id.fetch_add(1, Ordering::Relaxed);
  let shared = Arc::new(Shared { id, state: Mutex::new(State::default()) });
  lock(&BRIDGE.sockets).insert(id, shared.clone());
  // From here on, dropping `socket` (a connect timeout) destroys the JavaScript socket.
  let socket = Socket { shared };
  push(Op::Open { id, host: host.clone(), port, keepalive });
  socket.opened().await?;
  Ok(socket)
}

/// Continues the connection in `node:tls`: `require`/`prefer` encrypt without verifying,
/// `verify-ca` checks the chain, `verify-full` also the host name; `root_pem` replaces Node's
/// default CAs; the client certificate goes as PEM, its key decrypted.
pub async fn start_tls(socket: Socket, options: TlsOptions<'_>) -> Result<Box<dyn Stream>, TlsFailure> {
  socket.shared.lock().phase = Phase::Upgrading;
  push(Op::StartTls {
    id: socket.id(),
    mode: options.mode,
    host: options.host.to_string(),
    ca: options.root_pem.map(str::to_string),
    client_cert: options.client_cert.map(|c| (c.chain_pem(), c.key_pem())),
    alpn: options.alpn,
  });
  match socket.opened().await {
    Ok(()) => Ok(into_stream(socket)),
    Err(e) => {
      let code = tls_code(&io_code(&e));
      // As the native build says it (node:tls: "Client network socket disconnected before
      // secure TLS connection was established").
      let message = if code == "ECONNRESET" {
        "the server closed the connection during the TLS handshake".to_string()
      } else {
        describe_io(&e)
      };
      Err(TlsFailure { code, message: format!("TLS handshake failed: {message}") })
    }
  }
}

/// The handshake's results, if `stream` is a socket of this transport that went through one.
pub fn tls_info(stream: &dyn Stream) -> Option<TlsInfo> {
  stream.as_any().downcast_ref::<Socket>()?.shared.lock().tls.clone()
}

/// Node's handshake error codes, grouped as the native build (rustls) reports them.
fn tls_code(code: &str) -> String {
  match code {
    "ERR_TLS_CERT_ALTNAME_INVALID" | "CERT_HAS_EXPIRED" => code,
    _ if tls_alerts::describe(code).is_some() => code,
    "SELF_SIGNED_CERT_IN_CHAIN"
    | "DEPTH_ZERO_SELF_SIGNED_CERT"
    | "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    | "UNABLE_TO_GET_ISSUER_CERT"
    | "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" => "SELF_SIGNED_CERT_IN_CHAIN",
    // The socket itself failed (ECONNRESET, ...).
    _ if kind(code) != io::ErrorKind::Other => code,
    _ => "ERR_TLS",
  }
  .to_string()
}

impl AsyncRead for Socket {
  fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    let mut s = self.shared.lock();
    if s.chunks.is_empty() {
      if let Some(e) = &s.error {
        return Poll::Ready(Err(e.to_io()));
      }
      if s.eof {
        return Poll::Ready(Ok(()));
      }
      s.reader = Some(cx.waker().clone());
      return Poll::Pending;
    }
    while buf.remaining() > 0 {
      let Some(front) = s.chunks.front_mut() else { break };
      let n = front.len().min(buf.remaining());
      buf.put_slice(&front[..n]);
      front.advance(n);
      if front.is_empty() {
        s.chunks.pop_front();
      }
      s.unread -= n;
    }
    let resume = s.paused && s.unread <= READ_LOW;
    s.paused &= !resume;
    drop(s);
    if resume {
      push(Op::Resume { id: self.id() });
    }
    Poll::Ready(Ok(()))
  }
}

impl AsyncWrite for Socket {
  fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    let mut s = self.shared.lock();
    if let Some(e) = &s.error {
      return Poll::Ready(Err(e.to_io()));
    }
    if s.eof || s.ended {
      return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the connection is closed")));
    }
    let ahead = s.sent - s.flushed;
    if ahead >= WRITE_CREDIT {
      s.writer = Some(cx.waker().clone());
      return Poll::Pending;
    }
    let n = buf.len().min((WRITE_CREDIT - ahead) as usize);
    s.sent += n as u64;
    let ack = s.sent - s.flushed >= WRITE_CREDIT / 2;
    drop(s);
    push(Op::Write { id: self.id(), bytes: buf[..n].to_vec(), ack });
    Poll::Ready(Ok(n))
  }

  fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    Poll::Ready(Ok(()))
  }

  fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let first = !std::mem::replace(&mut self.shared.lock().ended, true);
    if first {
      push(Op::End { id: self.id() });
    }
    Poll::Ready(Ok(()))
  }
}

#[cfg(test)]
mod tests {
  use std::sync::atomic::AtomicUsize;

  use futures_util::FutureExt;
  use tokio::io::{AsyncReadExt, AsyncWriteExt};

  use super::*;

  // The bridge is process-global: one test at a time.
  static SERIAL: Mutex<()> = Mutex::new(());

  fn setup() -> (MutexGuard<'static, ()>, Arc<AtomicUsize>) {
    let guard = lock(&SERIAL);
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = wakes.clone();
    init(Arc::new(move || {
      counter.fetch_add(1, Ordering::SeqCst);
    }));
    take_ops();
    (guard, wakes)
  }

  fn open() -> Socket {
    let host = Host::Tcp("db".into());
    let mut fut = Box::pin(connect(&host, 5432, true));
    assert!((&mut fut).now_or_never().is_none(), "waits for the connect event");
    let ops = take_ops();
    let id = match ops.as_slice() {
      [Op::Open { id, port: 5432, keepalive: true, .. }] => *id,
      other => panic!("{other:?}"),
    };
    event(id, Event::Connected);
    fut.now_or_never().expect("connected").expect("no error")
  }

  #[test]
  fn one_wake_per_batch() {
    let (_g, wakes) = setup();
    push(Op::Resume { id: 1 });
    push(Op::Resume { id: 2 });
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    assert_eq!(take_ops().len(), 2);
    push(Op::Resume { id: 3 });
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
  }

  #[test]
  fn writes_stop_at_the_credit_until_node_reports_them_flushed() {
    let (_g, _) = setup();
    let mut s = open();
    let big = vec![7u8; 300 * 1024];
    let n = s.write(&big).now_or_never().expect("ready").expect("ok");
    assert_eq!(n as u64, WRITE_CREDIT, "a write takes at most the credit");
    assert!(s.write(&big[n..]).now_or_never().is_none(), "out of credit: the writer waits");
    let ops = take_ops();
    assert!(
      matches!(ops.as_slice(), [Op::Write { ack: true, .. }]),
      "past half the credit, a write asks for an ack"
    );
    event(s.id(), Event::Flushed(WRITE_CREDIT));
    let m = s.write(&big[n..]).now_or_never().expect("ready").expect("ok");
    assert_eq!(n + m, big.len());
    assert!(matches!(take_ops().as_slice(), [Op::Write { ack: false, .. }]), "small writes need no ack");
  }

  #[test]
  fn a_full_read_buffer_pauses_the_socket_until_the_reader_catches_up() {
    let (_g, _) = setup();
    let mut s = open();
    assert!(data(s.id(), Bytes::from(vec![1u8; READ_HIGH - 1])));
    assert!(!data(s.id(), Bytes::from(vec![2u8; 10])), "past READ_HIGH: pause");
    let mut buf = vec![0u8; READ_HIGH + 9 - READ_LOW];
    s.read_exact(&mut buf).now_or_never().expect("ready").expect("ok");
    assert!(matches!(take_ops().as_slice(), [Op::Resume { .. }]));
    event(s.id(), Event::End);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).now_or_never().expect("ready").expect("ok");
    assert_eq!(rest.len(), READ_LOW, "buffered bytes come before the end");
    assert_eq!(rest[rest.len() - 1], 2);
  }

  #[test]
  fn node_errors_read_like_os_errors_and_dropping_destroys_the_socket() {
    let (_g, _) = setup();
    let host = Host::Unix("/run/pg".into());
    let mut fut = Box::pin(connect(&host, 5433, false));
    assert!((&mut fut).now_or_never().is_none());
    let id = match take_ops().as_slice() {
      [Op::Open { id, .. }] => *id,
      other => panic!("{other:?}"),
    };
    event(
      id,
      Event::Error { code: "ECONNREFUSED".into(), message: "connect ECONNREFUSED 127.0.0.1:5433".into() },
    );
    let err = fut.now_or_never().expect("ready").err().expect("refused");
    assert_eq!(io_code(&err), "ECONNREFUSED");
    assert_eq!(describe_io(&err), "Connection refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert!(matches!(take_ops().as_slice(), [Op::Destroy { id: d }] if *d == id));
    assert!(lookup(id).is_none());
  }

  #[test]
  fn a_clean_shutdown_ends_the_socket_instead_of_destroying_it() {
    let (_g, _) = setup();
    let mut s = open();
    s.shutdown().now_or_never().expect("ready").expect("ok");
    assert!(s.write(b"x").now_or_never().expect("ready").is_err(), "no writes after the end");
    drop(s);
    assert!(matches!(take_ops().as_slice(), [Op::End { .. }]));
  }

  #[test]
  fn tls_failures_carry_the_code_the_native_build_uses() {
    let (_g, _) = setup();
    let s = open();
    let id = s.id();
    let options =
      TlsOptions { mode: SslMode::VerifyFull, host: "db", root_pem: None, client_cert: None, alpn: false };
    let mut fut = Box::pin(start_tls(s, options));
    assert!((&mut fut).now_or_never().is_none());
    assert!(matches!(
      take_ops().as_slice(),
      [Op::StartTls { mode: SslMode::VerifyFull, ca: None, client_cert: None, alpn: false, .. }]
    ));
    event(
      id,
      Event::Error { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE".into(), message: "unable to verify".into() },
    );
    let failure = fut.now_or_never().expect("ready").err().expect("fails");
    assert_eq!(failure.code, "SELF_SIGNED_CERT_IN_CHAIN");
    assert!(failure.message.starts_with("TLS handshake failed: "));
  }

  #[test]
  fn a_handshake_reports_the_server_certificate_and_alpn_for_channel_binding() {
    let (_g, _) = setup();
    let s = open();
    let id = s.id();
    let options =
      TlsOptions { mode: SslMode::Require, host: "db", root_pem: None, client_cert: None, alpn: true };
    let mut fut = Box::pin(start_tls(s, options));
    assert!((&mut fut).now_or_never().is_none());
    assert!(matches!(take_ops().as_slice(), [Op::StartTls { alpn: true, .. }]));
    let info = TlsInfo { server_cert: Some(vec![0x30, 1, 2]), alpn: Some(b"postgresql".to_vec()) };
    event(id, Event::Secure(info.clone()));
    let stream = fut.now_or_never().expect("ready").ok().expect("secure");
    assert_eq!(super::super::tls_info(&*stream), Some(info));
  }

  #[test]
  fn a_refused_client_certificate_keeps_nodes_alert_code_and_gets_the_native_builds_words() {
    let (_g, _) = setup();
    let mut s = open();
    let code = "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA";
    event(
      s.id(),
      Event::Error { code: code.into(), message: "ssl3_read_bytes:tlsv1 alert unknown ca".into() },
    );
    let mut byte = [0u8; 1];
    let err = s.read(&mut byte).now_or_never().expect("ready").expect_err("fails");
    assert_eq!(io_code(&err), code);
    assert_eq!(describe_io(&err), tls_alerts::describe(code).unwrap());
    assert_eq!(tls_code(code), code);
  }

  #[test]
  fn openssl_error_lines_read_as_their_reason() {
    let line = "805C3147AC7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:\
                ../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n";
    assert_eq!(openssl_reason(line), "wrong version number");
    assert_eq!(openssl_reason("Client network socket disconnected\n"), "Client network socket disconnected");
  }
}
