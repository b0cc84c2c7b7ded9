//! How bytes reach the server: one seam, two implementations chosen at compile time.
//!
//! Native builds own their sockets (tokio TCP and unix sockets, TLS through rustls). The
//! WebAssembly build (`wasm32-wasip1-threads`) cannot open a socket (WASI preview 1 has no
//! connect), so JavaScript owns them (`node:net`, then `node:tls` after the server agreed to TLS)
//! and Rust reads and writes them through [`js`]. Everything above this module (startup and
//! authentication, the I/O task, cancel requests, pool, registry) is the same code in both builds.

use std::any::Any;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{ClientCert, SslMode};

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
  /// What the stream is underneath, so a plain socket can be split for direct writes.
  fn as_any(&self) -> &dyn Any;
  fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {
  fn as_any(&self) -> &dyn Any {
    self
  }
  fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
    self
  }
}

mod split;
pub use split::{split, DirectRead, DirectWrite, Reader, Writer};

/// How to set up TLS on one connection (from `ConnSettings`).
#[derive(Clone, Copy)]
pub struct TlsOptions<'a> {
  pub mode: SslMode,
  /// The server's host name, checked under verify-full and sent as SNI.
  pub host: &'a str,
  /// PEM of the trusted roots; `None` = the public web roots.
  pub root_pem: Option<&'a str>,
  /// Offered when the server asks for a client certificate.
  pub client_cert: Option<&'a ClientCert>,
  /// Offer ALPN `postgresql`, which a direct TLS connection (sslnegotiation=direct) must.
  pub alpn: bool,
}

/// PostgreSQL's ALPN protocol name, which PostgreSQL 17 requires on a direct TLS connection.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// What a TLS connection learned in its handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
  /// The server's certificate (DER), for SCRAM channel binding.
  pub server_cert: Option<Vec<u8>>,
  /// The application protocol the server selected (ALPN).
  pub alpn: Option<Vec<u8>>,
}

/// The handshake's results if `stream` is a TLS stream of this build's transport.
pub fn tls_info(stream: &dyn Stream) -> Option<TlsInfo> {
  #[cfg(not(target_family = "wasm"))]
  if let Some(info) = rustls::tls_info(stream) {
    return Some(info);
  }
  js::tls_info(stream)
}

/// Why TLS could not be set up, with the code Node uses for the same failure where one exists.
pub struct TlsFailure {
  pub code: String,
  pub message: String,
}

pub fn tls_failure(code: &str, message: impl Into<String>) -> TlsFailure {
  TlsFailure { code: code.to_string(), message: message.into() }
}

#[cfg(not(target_family = "wasm"))]
mod native;
#[cfg(not(target_family = "wasm"))]
mod rustls;
mod tls_alerts;
#[cfg(not(target_family = "wasm"))]
mod verifier;
#[cfg(not(target_family = "wasm"))]
pub use native::{connect, into_stream, Socket};
#[cfg(not(target_family = "wasm"))]
pub use rustls::start_tls;

pub mod js;
#[cfg(target_family = "wasm")]
pub use js::{connect, into_stream, start_tls, Socket};
