//! The SSLRequest exchange that precedes TLS (the same in every build); the handshake itself is
//! the transport's (`transport::start_tls`).

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::transport::{self, tls_failure as failure, Socket, Stream, TlsFailure};
use crate::config::SslMode;

/// Sends SSLRequest and, if the server agrees, starts TLS on the socket. A plaintext stream
/// comes back for disable, and for prefer with a server without TLS.
pub async fn negotiate(
  mut socket: Socket,
  mode: SslMode,
  host: &str,
  root_pem: Option<&str>,
) -> Result<Box<dyn Stream>, TlsFailure> {
  if mode == SslMode::Disable {
    return Ok(transport::into_stream(socket));
  }
  let io = |e: std::io::Error| failure("ECONNRESET", format!("TLS negotiation failed: {e}"));
  let mut buf = BytesMut::new();
  frontend::ssl_request(&mut buf);
  socket.write_all(&buf).await.map_err(io)?;
  let mut answer = [0u8; 1];
  socket.read_exact(&mut answer).await.map_err(io)?;
  match answer[0] {
    b'S' => transport::start_tls(socket, mode, host, root_pem).await,
    b'N' if mode == SslMode::Prefer => Ok(transport::into_stream(socket)),
    b'N' => Err(failure("SSL_NOT_SUPPORTED", "the server does not support TLS connections")),
    _ => Err(failure("ERR_TLS", "unexpected answer to the TLS request")),
  }
}
