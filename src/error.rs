//! The one error type of the core. It crosses into JavaScript as data (see `napi/objects.rs`);
//! the JS layer turns it into an `OnepoolError` with a stable `code`.

use std::fmt;
use std::io;

/// Every field a server error (`ErrorResponse`) can carry.
#[derive(Debug, Clone, Default)]
pub struct DbError {
  pub severity: String,
  pub code: String,
  pub message: String,
  pub detail: Option<String>,
  pub hint: Option<String>,
  pub position: Option<String>,
  pub internal_position: Option<String>,
  pub internal_query: Option<String>,
  pub where_: Option<String>,
  pub schema: Option<String>,
  pub table: Option<String>,
  pub column: Option<String>,
  pub data_type: Option<String>,
  pub constraint: Option<String>,
  pub file: Option<String>,
  pub line: Option<String>,
  pub routine: Option<String>,
  /// The notices (NoticeResponse) the server sent for the same request before this error,
  /// encoded as `conn::notices::append_notice` does; empty when there were none.
  pub notices: Vec<u8>,
}

/// Why opening a connection failed: an OS-level cause (`ECONNREFUSED`) or a server error
/// during startup (`28P01` wrong password, `53300` too many connections, ...).
#[derive(Debug, Clone)]
pub enum ConnectCause {
  Os { code: String, message: String },
  Server(Box<DbError>),
  Timeout,
  Other(String),
}

/// What a `POOL_TIMEOUT` waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
  /// A connection of the pool: every one stayed busy for `acquireTimeoutMs`.
  Acquire,
  /// A slot of the machine-wide budget (`machineMax`).
  MachineBudget,
  /// Its turn on a connection, queued behind a request that made no progress.
  Queued,
}

impl TimeoutKind {
  /// The name JavaScript sees (`err.timeoutKind`).
  pub fn as_str(self) -> &'static str {
    match self {
      TimeoutKind::Acquire => "acquire",
      TimeoutKind::MachineBudget => "machineBudget",
      TimeoutKind::Queued => "queued",
    }
  }
}

#[derive(Debug, Clone)]
pub enum CoreError {
  /// The server answered with an error for a statement.
  Db(Box<DbError>),
  /// Options or connection string rejected before any I/O.
  Config(String),
  /// No connection could be opened.
  ConnectFailed {
    target: String,
    cause: ConnectCause,
  },
  /// The pool was healthy but the wait it was bounded by ran out.
  PoolTimeout(TimeoutKind, String),
  PoolClosed(String),
  /// An established connection broke while in use.
  ConnectionLost(String),
  ParamInvalid(String),
  /// A pinned client used after `release()`.
  ClientReleased,
  Aborted,
  /// The server sent something we do not understand.
  Protocol(String),
  /// A bug in onepool, contained (a panic caught before it could cross into Node).
  Internal(String),
  /// The request never reached the server (its connection failed first): `.0` is what
  /// happened to the connection. A shared request is retried on another connection; anything
  /// else reports `.0`, marked as never run (`notRun`).
  NotRun(Box<CoreError>),
}

impl CoreError {
  /// The stable code JS users match on: SQLSTATE for server errors, a `SNAKE_CASE` word otherwise.
  pub fn code(&self) -> &str {
    match self {
      CoreError::Db(db) => &db.code,
      CoreError::Config(_) => "CONFIG_INVALID",
      CoreError::ConnectFailed { .. } => "CONNECT_FAILED",
      CoreError::PoolTimeout(..) => "POOL_TIMEOUT",
      CoreError::PoolClosed(_) => "POOL_CLOSED",
      CoreError::ConnectionLost(_) => "CONNECTION_LOST",
      CoreError::ParamInvalid(_) => "PARAM_INVALID",
      CoreError::ClientReleased => "CLIENT_RELEASED",
      CoreError::Aborted => "ABORTED",
      CoreError::Protocol(_) => "PROTOCOL_ERROR",
      CoreError::Internal(_) => "INTERNAL",
      CoreError::NotRun(e) => e.code(),
    }
  }

  pub fn config(msg: impl Into<String>) -> Self {
    CoreError::Config(msg.into())
  }

  pub fn lost(err: &io::Error) -> Self {
    CoreError::ConnectionLost(format!("connection lost: {}", describe_io(err)))
  }
}

impl fmt::Display for CoreError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      CoreError::Db(db) => f.write_str(&db.message),
      CoreError::Config(m)
      | CoreError::PoolTimeout(_, m)
      | CoreError::PoolClosed(m)
      | CoreError::ConnectionLost(m)
      | CoreError::ParamInvalid(m)
      | CoreError::Protocol(m)
      | CoreError::Internal(m) => f.write_str(m),
      CoreError::ClientReleased => f.write_str("the client was already released to the pool"),
      CoreError::NotRun(e) => write!(f, "{e} (the request never reached the server)"),
      CoreError::Aborted => f.write_str("the query was aborted"),
      CoreError::ConnectFailed { target, cause } => match cause {
        ConnectCause::Os { code, message } => {
          write!(f, "could not connect to {target}: {message} ({code})")
        }
        ConnectCause::Server(db) => {
          write!(f, "could not connect to {target}: {} ({})", db.message, db.code)
        }
        ConnectCause::Timeout => {
          write!(f, "could not connect to {target}: timeout expired")
        }
        ConnectCause::Other(m) => write!(f, "could not connect to {target}: {m}"),
      },
    }
  }
}

impl std::error::Error for CoreError {}

/// A socket error with Node's code for it (`ECONNREFUSED`, `ENOTFOUND`): what JavaScript
/// reported (the WebAssembly build's sockets are Node's), or a failure with no OS error number
/// (a host name that does not resolve); `io_code` and `describe_io` read it like an OS error.
#[derive(Debug)]
pub struct SocketError {
  pub code: String,
  pub message: String,
}

impl fmt::Display for SocketError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.message)
  }
}

impl std::error::Error for SocketError {}

/// The POSIX name of an I/O error (`ECONNREFUSED`), as Node reports it, or a generic word.
pub fn io_code(err: &io::Error) -> String {
  if let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<SocketError>()) {
    return e.code.clone();
  }
  if let Some(errno) = err.raw_os_error() {
    let name = match errno {
      libc::ECONNREFUSED => "ECONNREFUSED",
      libc::ECONNRESET => "ECONNRESET",
      libc::ETIMEDOUT => "ETIMEDOUT",
      libc::EHOSTUNREACH => "EHOSTUNREACH",
      libc::ENETUNREACH => "ENETUNREACH",
      libc::EACCES => "EACCES",
      libc::ENOENT => "ENOENT",
      libc::EPIPE => "EPIPE",
      libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
      _ => "",
    };
    if !name.is_empty() {
      return name.to_string();
    }
  }
  match err.kind() {
    io::ErrorKind::ConnectionRefused => "ECONNREFUSED",
    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "ECONNRESET",
    io::ErrorKind::TimedOut => "ETIMEDOUT",
    io::ErrorKind::NotFound => "ENOENT",
    io::ErrorKind::PermissionDenied => "EACCES",
    io::ErrorKind::BrokenPipe => "EPIPE",
    io::ErrorKind::UnexpectedEof => "ECONNRESET",
    _ => "EIO",
  }
  .to_string()
}

pub fn describe_io(err: &io::Error) -> String {
  if err.kind() == io::ErrorKind::UnexpectedEof {
    return "the server closed the connection".to_string();
  }
  let text = err.to_string();
  // Strip Rust's "(os error 111)" suffix: the code is reported separately.
  match text.find(" (os error") {
    Some(i) => text[..i].to_string(),
    None => text,
  }
}

pub type CoreResult<T> = Result<T, CoreError>;
