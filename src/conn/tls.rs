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
    // A server that cannot start a backend (fork failure) writes an old-style error, 'E' and a
    // line of text, whatever the client asked.
    b'E' => Err(failure(
      "EPROTO",
      format!("the server answered the TLS request with an error: {}", old_style_error(&mut socket).await),
    )),
    // PostgreSQL answers one byte, 'S' or 'N' (or an error, above). Anything else is a
    // peer speaking another protocol: an HTTP server's "HTTP/1.1 400 ...", an SSH banner.
    other => Err(failure(
      "EPROTO",
      format!(
        "not a PostgreSQL server: it answered the TLS request with {}",
        super::framing::preview(&[other])
      ),
    )),
  }
}

/// The text of an old-style ErrorResponse ('E' already read, then a NUL-terminated string),
/// as much of it as comes in one read, bounded.
async fn old_style_error(socket: &mut Socket) -> String {
  let mut text = [0u8; 512];
  let n = socket.read(&mut text).await.unwrap_or(0);
  let text = &text[..n];
  let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
  String::from_utf8_lossy(&text[..end]).trim().to_string()
}
