//! Opening a session: socket, startup message, authentication (cleartext, MD5, SCRAM-SHA-256),
//! and the CancelRequest side channel.

use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::framing::{preview, read_message, ReadError, STARTUP_MAX_MESSAGE};
use super::session_attrs::ServerState;
use super::transport::{self, Stream};
use crate::config::{ConnSettings, Host, Target};
use crate::error::{describe_io, io_code, ConnectCause, CoreError, CoreResult, DbError};

pub struct Opened {
  pub stream: Box<dyn Stream>,
  pub process_id: i32,
  pub secret_key: i32,
  /// What the server reported about itself at startup (PostgreSQL 14 and later).
  pub server: ServerState,
}

fn connect_failed(target: &Target, cause: ConnectCause) -> CoreError {
  CoreError::ConnectFailed { target: target.to_string(), cause }
}

fn os_failure(target: &Target, err: &std::io::Error) -> CoreError {
  connect_failed(target, ConnectCause::Os { code: io_code(err), message: describe_io(err) })
}

pub fn parse_db_error(fields: &mut postgres_protocol::message::backend::ErrorFields<'_>) -> DbError {
  let mut e = DbError::default();
  while let Ok(Some(f)) = fields.next() {
    let v = || Some(String::from_utf8_lossy(f.value_bytes()).into_owned());
    match f.type_() {
      b'S' if e.severity.is_empty() => e.severity = v().unwrap_or_default(),
      b'V' => e.severity = v().unwrap_or_default(),
      b'C' => e.code = v().unwrap_or_default(),
      b'M' => e.message = v().unwrap_or_default(),
      b'D' => e.detail = v(),
      b'H' => e.hint = v(),
      b'P' => e.position = v(),
      b'p' => e.internal_position = v(),
      b'q' => e.internal_query = v(),
      b'W' => e.where_ = v(),
      b's' => e.schema = v(),
      b't' => e.table = v(),
      b'c' => e.column = v(),
      b'd' => e.data_type = v(),
      b'n' => e.constraint = v(),
      b'F' => e.file = v(),
      b'L' => e.line = v(),
      b'R' => e.routine = v(),
      _ => {}
    }
  }
  e
}

/// What a client is told about an ErrorResponse without a SQLSTATE (`C`) field, which every
/// PostgreSQL error has: a made-up SQLSTATE would be a lie, so the caller reports a protocol
/// error with this text (and the server's message, if it sent one).
pub fn without_sqlstate(db: &DbError) -> String {
  let mut out = String::from("the server sent an error without a SQLSTATE code");
  if !db.message.is_empty() {
    out.push_str(": ");
    out.push_str(&db.message);
  }
  out
}

/// A reply that cannot come from PostgreSQL. `EPROTO` is the POSIX name for a protocol error,
/// next to the OS codes (`ECONNREFUSED`) a failed connect carries.
fn not_postgres(target: &Target, what: String) -> CoreError {
  connect_failed(target, ConnectCause::Os { code: "EPROTO".into(), message: what })
}

fn read_failure(target: &Target, buf: &[u8], err: ReadError) -> CoreError {
  match err {
    ReadError::Io(e) => os_failure(target, &e),
    // A bad header is still at the front of `buf`: show what the peer sent (an HTTP status
    // line, an SSH banner) so the user sees at once what DATABASE_URL points at.
    ReadError::BadHeader(what) => {
      not_postgres(target, format!("not a PostgreSQL server (it sent {}): {what}", preview(buf)))
    }
    ReadError::Malformed(what) => not_postgres(target, format!("not a PostgreSQL server: {what}")),
    ReadError::NoMemory(n) => connect_failed(
      target,
      ConnectCause::Os {
        code: "ENOMEM".into(),
        message: format!("out of memory reading from the server ({n} bytes held)"),
      },
    ),
  }
}

fn protocol(target: &Target, what: &str) -> CoreError {
  connect_failed(target, ConnectCause::Other(format!("unexpected message during startup: {what}")))
}

/// Opens a socket to the target, negotiates TLS as configured, and starts the session.
pub async fn open(target: &Target, settings: &ConnSettings) -> CoreResult<Opened> {
  let socket = transport::connect(&target.host, target.port, settings.keepalive)
    .await
    .map_err(|e| os_failure(target, &e))?;
  // libpq does not use TLS over unix sockets; neither do we.
  let stream = match &target.host {
    Host::Tcp(name) => super::tls::negotiate(socket, settings, name)
      .await
      .map_err(|f| connect_failed(target, ConnectCause::Os { code: f.code, message: f.message }))?,
    Host::Unix(_) => transport::into_stream(socket),
  };
  handshake(stream, target, settings).await
}

/// Starts a session on an open stream: the startup message, authentication, and the server's
/// key for cancel requests, up to its first ReadyForQuery.
pub async fn handshake(
  mut stream: Box<dyn Stream>,
  target: &Target,
  settings: &ConnSettings,
) -> CoreResult<Opened> {
  let mut params: Vec<(&str, String)> = vec![
    ("user", target.user.clone()),
    ("database", target.database.clone()),
    ("client_encoding", "UTF8".into()),
    ("application_name", settings.application_name.clone()),
  ];
  let mut options = Vec::new();
  if let Some(path) = &settings.search_path {
    options.push(format!("-c search_path={}", path.replace('\\', "\\\\").replace(' ', "\\ ")));
  }
  if let Some(t) = settings.statement_timeout {
    options.push(format!("-c statement_timeout={}", t.as_millis()));
  }
  if let Some(raw) = &settings.startup_options {
    options.push(raw.clone());
  }
  if !options.is_empty() {
    params.push(("options", options.join(" ")));
  }
  let mut out = BytesMut::new();
  frontend::startup_message(params.iter().map(|(k, v)| (*k, v.as_str())), &mut out)
    .map_err(|e| connect_failed(target, ConnectCause::Other(e.to_string())))?;
  let io_err = |e: std::io::Error| os_failure(target, &e);
  stream.write_all(&out).await.map_err(io_err)?;

  let mut buf = BytesMut::with_capacity(8192);
  let password = || {
    settings.password.as_ref().map(|s| s.0.as_bytes().to_vec()).ok_or_else(|| {
      connect_failed(
        target,
        ConnectCause::Other("the server asked for a password but none was configured".into()),
      )
    })
  };
  let mut scram: Option<sasl::ScramSha256> = None;
  let mut binder = super::channel_binding::Binder::new(settings.channel_binding, &*stream);
  let auth_failed = |why: String| connect_failed(target, ConnectCause::Other(why));
  let mut process_id = 0;
  let mut secret_key = 0;
  let mut server = ServerState::default();
  let mut first = true;
  loop {
    let msg = match read_message(&mut stream, &mut buf, STARTUP_MAX_MESSAGE).await {
      Ok(m) => m,
      Err(e) => {
        let refused =
          if first { super::tls::hung_up_after_client_cert(settings, &*stream, &e) } else { None };
        return Err(match refused {
          Some(message) => connect_failed(target, ConnectCause::Os { code: "ECONNRESET".into(), message }),
          None => read_failure(target, &buf, e),
        });
      }
    };
    first = false;
    out.clear();
    match msg {
      Message::AuthenticationOk => binder.check_authenticated().map_err(auth_failed)?,
      Message::AuthenticationCleartextPassword => {
        binder.check_other_method().map_err(auth_failed)?;
        frontend::password_message(&password()?, &mut out).map_err(io_err)?;
      }
      Message::AuthenticationMd5Password(body) => {
        binder.check_other_method().map_err(auth_failed)?;
        let hash = md5_hash(target.user.as_bytes(), &password()?, body.salt());
        frontend::password_message(hash.as_bytes(), &mut out).map_err(io_err)?;
      }
      Message::AuthenticationSasl(body) => {
        let mut mechanisms = body.mechanisms();
        let mut offered = Vec::new();
        while let Ok(Some(m)) = mechanisms.next() {
          offered.push(m.to_string());
        }
        let (mechanism, binding) = binder.scram(&offered).map_err(auth_failed)?;
        let s = sasl::ScramSha256::new(&password()?, binding);
        frontend::sasl_initial_response(mechanism, s.message(), &mut out).map_err(io_err)?;
        scram = Some(s);
      }
      Message::AuthenticationSaslContinue(body) => {
        let s = scram.as_mut().ok_or_else(|| protocol(target, "SASL continue"))?;
        s.update(body.data()).map_err(io_err)?;
        frontend::sasl_response(s.message(), &mut out).map_err(io_err)?;
      }
      Message::AuthenticationSaslFinal(body) => {
        let s = scram.as_mut().ok_or_else(|| protocol(target, "SASL final"))?;
        s.finish(body.data()).map_err(io_err)?;
      }
      Message::BackendKeyData(body) => {
        process_id = body.process_id();
        secret_key = body.secret_key();
      }
      Message::ParameterStatus(body) => {
        if let (Ok(name), Ok(value)) = (body.name(), body.value()) {
          server.parameter(name, value);
        }
      }
      Message::NoticeResponse(_) => {}
      Message::ReadyForQuery(_) => break,
      Message::ErrorResponse(body) => {
        let db = parse_db_error(&mut body.fields());
        if db.code.is_empty() {
          return Err(not_postgres(target, without_sqlstate(&db)));
        }
        return Err(connect_failed(target, ConnectCause::Server(Box::new(db))));
      }
      _ => return Err(protocol(target, "unsupported authentication method")),
    }
    if !out.is_empty() {
      stream.write_all(&out).await.map_err(io_err)?;
    }
  }
  Ok(Opened { stream, process_id, secret_key, server })
}

/// Asks the server to cancel whatever the connection identified by `key` is running.
pub async fn cancel(key: &super::CancelKey) -> std::io::Result<()> {
  let mut s = transport::connect(&key.host, key.port, false).await?;
  let mut buf = BytesMut::new();
  frontend::cancel_request(key.process_id, key.secret_key, &mut buf);
  s.write_all(&buf).await?;
  // The server closes the socket once it has read the request.
  let mut sink = [0u8; 16];
  let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut sink)).await;
  Ok(())
}
