//! How a connection starts TLS (the same in every build; the handshake itself is the
//! transport's, `transport::start_tls`): after an SSLRequest the server agreed to, or at once
//! with ALPN `postgresql` (sslnegotiation=direct, PostgreSQL 17 and later, one round trip less).

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::framing::ReadError;
use super::transport::{
  self, tls_failure as failure, Socket, Stream, TlsFailure, TlsOptions, ALPN_POSTGRESQL,
};
use crate::config::{ConnSettings, SslMode, SslNegotiation};
use crate::error::io_code;

/// Starts TLS on the socket as `settings` say. A plaintext stream comes back for disable, and
/// for prefer with a server without TLS.
pub async fn negotiate(
  mut socket: Socket,
  settings: &ConnSettings,
  host: &str,
) -> Result<Box<dyn Stream>, TlsFailure> {
  let mode = settings.ssl_mode;
  if mode == SslMode::Disable {
    return Ok(transport::into_stream(socket));
  }
  let direct = settings.ssl_negotiation == SslNegotiation::Direct;
  let options = TlsOptions {
    mode,
    host,
    root_pem: settings.ssl_root_cert.as_deref(),
    client_cert: settings.client_cert.as_deref(),
    alpn: direct,
  };
  if direct {
    return direct_tls(socket, options).await;
  }
  let io = |e: std::io::Error| failure("ECONNRESET", format!("TLS negotiation failed: {e}"));
  let mut buf = BytesMut::new();
  frontend::ssl_request(&mut buf);
  socket.write_all(&buf).await.map_err(io)?;
  let mut answer = [0u8; 1];
  socket.read_exact(&mut answer).await.map_err(io)?;
  match answer[0] {
    b'S' => transport::start_tls(socket, options).await,
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

/// The TLS handshake at once, no SSLRequest. The server must select ALPN `postgresql`: libpq
/// refuses a direct connection without it, and so does onepool (a server that accepted TLS
/// without it is not PostgreSQL 17's direct TLS, whatever it is).
async fn direct_tls(socket: Socket, options: TlsOptions<'_>) -> Result<Box<dyn Stream>, TlsFailure> {
  let stream = transport::start_tls(socket, options).await.map_err(|mut f| {
    // PostgreSQL before 17 reads the ClientHello as a startup packet and hangs up, as does a
    // PostgreSQL 17 with ssl=off; PgBouncer answers it with a plaintext error, which is no TLS.
    // Certificate failures have codes of their own.
    if f.code == "ECONNRESET" || f.code == "ERR_TLS" {
      f.message.push_str(
        " (sslnegotiation=direct needs PostgreSQL 17 or later with ssl=on; an older server, or a proxy \
         such as PgBouncer, needs sslnegotiation=postgres)",
      );
    }
    f
  })?;
  let alpn = transport::tls_info(&*stream).and_then(|info| info.alpn);
  if alpn.as_deref() != Some(ALPN_POSTGRESQL) {
    return Err(failure(
      "EPROTO",
      "the server accepted the direct TLS connection without selecting ALPN \"postgresql\": it is not a \
       PostgreSQL 17 server (use sslnegotiation=postgres)",
    ));
  }
  Ok(stream)
}

/// What to say when the server hangs up before its first message on a TLS connection that
/// offered a client certificate. Under TLS 1.3 a server refuses a client certificate after the
/// client has finished its handshake: it sends an alert and hangs up, and when the client's first
/// message crosses the hang-up, the server's kernel answers with a reset that can overtake the
/// alert. The client then sees only the reset (libpq likewise); the server's log says why.
pub fn hung_up_after_client_cert(
  settings: &ConnSettings,
  stream: &dyn Stream,
  err: &ReadError,
) -> Option<String> {
  let ReadError::Io(err) = err else { return None };
  let hung_up = err.kind() == std::io::ErrorKind::UnexpectedEof
    || matches!(io_code(err).as_str(), "ECONNRESET" | "EPIPE");
  if !hung_up || settings.client_cert.is_none() || transport::tls_info(stream).is_none() {
    return None;
  }
  Some(
    "the server closed the connection right after the TLS handshake: it may have refused the client \
     certificate (its log says why)"
      .into(),
  )
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
