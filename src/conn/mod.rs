//! One Postgres connection: the wire protocol over a socket, pipelined.
//!
//! We speak the protocol with `postgres-protocol` (the message codec and SCRAM of the
//! rust-postgres project) instead of `tokio-postgres`, because onepool must return exactly what
//! node-postgres returns: results in text format with every column's type OID (also for
//! multi-statement simple queries), the server's transaction status after every request (to
//! never hand out a connection that is inside a transaction), and Buffers sent in binary.

mod io;
mod startup;
mod tls;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;
use tokio::sync::{mpsc, oneshot};

use crate::budget::BudgetPermit;
use crate::config::{ConnSettings, Host, Target};
use crate::error::{CoreError, CoreResult};

pub use startup::cancel;

/// A query parameter as prepared by the JS layer (node-postgres's `prepareValue`).
#[derive(Debug, Clone)]
pub enum Param {
  Null,
  Text(String),
  Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Field {
  pub name: String,
  pub type_oid: u32,
}

/// One statement's result. `rows` holds the DataRow bodies back to back, each cell as
/// `i32 length (-1 = NULL)` + text bytes; the JS layer decodes them.
#[derive(Debug, Default)]
pub struct QueryResult {
  pub fields: Vec<Field>,
  pub rows: Vec<u8>,
  pub row_count: u32,
  pub command: String,
}

#[derive(Debug)]
pub struct Response {
  pub results: Vec<QueryResult>,
}

/// Transaction status byte from ReadyForQuery: idle, in transaction, failed transaction.
pub const TX_IDLE: u8 = b'I';

/// What the socket task and the handle share.
struct ConnState {
  closed: AtomicBool,
  tx_status: AtomicU8,
  in_flight: AtomicUsize,
}

/// Where and how to send a CancelRequest for this connection.
#[derive(Debug, Clone)]
pub struct CancelKey {
  pub host: Host,
  pub port: u16,
  pub process_id: i32,
  pub secret_key: i32,
}

/// Called with a request's outcome on the connection's I/O thread. Must not block.
pub type Done = Box<dyn FnOnce(CoreResult<Response>) + Send>;

/// Where a request's outcome goes: a waiting task, or straight to a callback (which saves a
/// task wake-up per query on the hot path).
pub(crate) enum Reply {
  Channel(oneshot::Sender<CoreResult<Response>>),
  Callback(Done),
}

impl Reply {
  pub(crate) fn send(self, outcome: CoreResult<Response>) {
    match self {
      Reply::Channel(tx) => {
        let _ = tx.send(outcome);
      }
      Reply::Callback(done) => done(outcome),
    }
  }
}

struct Outgoing {
  bytes: Bytes,
  reply: Reply,
}

pub struct Conn {
  tx: mpsc::UnboundedSender<Outgoing>,
  state: Arc<ConnState>,
  pub cancel_key: CancelKey,
  pub id: u64,
  pub created_at: Instant,
  /// When this connection retires (max lifetime, staggered).
  pub retire_at: Option<Instant>,
  pub idle_since: Instant,
  _permit: BudgetPermit,
}

impl Conn {
  pub async fn connect(
    target: &Target,
    settings: &ConnSettings,
    permit: BudgetPermit,
    id: u64,
    retire_at: Option<Instant>,
  ) -> CoreResult<Conn> {
    let opened = tokio::time::timeout(settings.connect_timeout, startup::open(target, settings))
      .await
      .map_err(|_| CoreError::ConnectFailed {
        target: target.to_string(),
        cause: crate::error::ConnectCause::Timeout,
      })??;
    let state = Arc::new(ConnState {
      closed: AtomicBool::new(false),
      tx_status: AtomicU8::new(TX_IDLE),
      in_flight: AtomicUsize::new(0),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel_key = CancelKey {
      host: target.host.clone(),
      port: target.port,
      process_id: opened.process_id,
      secret_key: opened.secret_key,
    };
    crate::runtime::spawn(io::run(opened.stream, rx, state.clone()));
    Ok(Conn {
      tx,
      state,
      cancel_key,
      id,
      created_at: Instant::now(),
      retire_at,
      idle_since: Instant::now(),
      _permit: permit,
    })
  }

  pub fn is_closed(&self) -> bool {
    self.state.closed.load(Ordering::Acquire)
  }

  /// True when the last finished request left the session outside any transaction and
  /// nothing is still running on it.
  pub fn is_clean(&self) -> bool {
    self.state.tx_status.load(Ordering::Acquire) == TX_IDLE
      && self.state.in_flight.load(Ordering::Acquire) == 0
  }

  pub fn in_flight(&self) -> usize {
    self.state.in_flight.load(Ordering::Acquire)
  }

  /// Sends an encoded request (ending in Sync or a simple Query) and waits for its
  /// ReadyForQuery. Requests are pipelined: several may be on the wire at once.
  pub fn send(
    &self,
    bytes: Bytes,
  ) -> impl std::future::Future<Output = CoreResult<Response>> + Send + 'static {
    let (reply, rx) = oneshot::channel();
    let sent = self.enqueue(bytes, Reply::Channel(reply)).is_ok();
    async move {
      if !sent {
        return Err(CoreError::ConnectionLost("connection lost: the connection is closed".into()));
      }
      rx.await.unwrap_or_else(|_| {
        Err(CoreError::ConnectionLost("connection lost: the connection is closed".into()))
      })
    }
  }

  /// Queues a request whose outcome goes to `done` on the I/O thread. If the connection is
  /// already closed, `done` is handed back so the caller can call it outside its locks.
  pub fn send_then(&self, bytes: Bytes, done: Done) -> Result<(), Done> {
    match self.enqueue(bytes, Reply::Callback(done)) {
      Ok(()) => Ok(()),
      Err(Reply::Callback(done)) => Err(done),
      Err(Reply::Channel(_)) => unreachable!("sent a callback"),
    }
  }

  fn enqueue(&self, bytes: Bytes, reply: Reply) -> Result<(), Reply> {
    // Counted here, not in the socket task, so the pool sees the request the moment it is queued.
    self.state.in_flight.fetch_add(1, Ordering::AcqRel);
    self.tx.send(Outgoing { bytes, reply }).map_err(|e| {
      self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
      e.0.reply
    })
  }

  pub async fn simple(&self, sql: &str) -> CoreResult<Response> {
    self.send(encode_simple(sql)).await
  }
}

/// Whether a request may share a connection with other requests in flight: one statement that
/// cannot open a transaction or change the session (BEGIN, SET, LISTEN, ... never qualify).
/// Anything else gets a connection of its own.
pub fn pipelinable(sql: &str) -> bool {
  let mut s = sql.trim_start();
  loop {
    if let Some(rest) = s.strip_prefix("--") {
      s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
    } else if let Some(rest) = s.strip_prefix("/*") {
      s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
    } else {
      break;
    }
  }
  let word: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase();
  let single = match sql.find(';') {
    None => true,
    Some(i) => sql[i + 1..].trim().is_empty(),
  };
  single && matches!(word.as_str(), "select" | "with" | "insert" | "update" | "delete" | "values" | "table")
}

pub fn encode_simple(sql: &str) -> Bytes {
  let mut buf = BytesMut::with_capacity(sql.len() + 8);
  // Only fails for an interior NUL, which the JS layer rejects up front.
  let _ = frontend::query(sql, &mut buf);
  buf.freeze()
}

/// Encodes a query the way node-postgres does: without parameters as one simple Query (which
/// may hold several statements), with parameters as an unnamed Parse/Bind/Describe/Execute/Sync.
/// Parameter types are left to the server (OID 0); text parameters go in text format and
/// Buffers in binary format; results always come back in text format.
#[cfg(test)]
mod tests {
  use super::pipelinable;

  #[test]
  fn only_self_contained_statements_are_pipelined() {
    for yes in ["select 1", "  SELECT 1;", "-- c\nselect 1", "/* x */ with a as (select 1) select * from a", "insert into t values (1)"] {
      assert!(pipelinable(yes), "{yes}");
    }
    for no in ["begin", "select 1; select 2", "set search_path = x", "start transaction", "listen x", "commit", ""] {
      assert!(!pipelinable(no), "{no}");
    }
  }
}

pub fn encode_query(sql: &str, params: &[Param]) -> CoreResult<Bytes> {
  if sql.as_bytes().contains(&0) {
    return Err(CoreError::ParamInvalid("the query text contains a NUL character".into()));
  }
  if params.is_empty() {
    return Ok(encode_simple(sql));
  }
  if params.len() > u16::MAX as usize {
    return Err(CoreError::ParamInvalid(format!(
      "too many parameters: {} (the protocol allows at most 65535)",
      params.len()
    )));
  }
  let mut buf = BytesMut::with_capacity(sql.len() + 64 + params.len() * 16);
  frontend::parse("", sql, params.iter().map(|_| 0u32), &mut buf)
    .map_err(|e| CoreError::ParamInvalid(e.to_string()))?;
  let formats = params.iter().map(|p| i16::from(matches!(p, Param::Binary(_))));
  let bound = frontend::bind(
    "",
    "",
    formats,
    params.iter(),
    |p, out| match p {
      Param::Null => Ok(IsNull::Yes),
      Param::Text(s) => {
        if s.as_bytes().contains(&0) {
          return Err("a text parameter contains a NUL character".into());
        }
        out.extend_from_slice(s.as_bytes());
        Ok(IsNull::No)
      }
      Param::Binary(b) => {
        out.extend_from_slice(b);
        Ok(IsNull::No)
      }
    },
    Some(0),
    &mut buf,
  );
  match bound {
    Ok(()) => {}
    Err(frontend::BindError::Conversion(e)) => return Err(CoreError::ParamInvalid(e.to_string())),
    Err(frontend::BindError::Serialization(e)) => return Err(CoreError::ParamInvalid(e.to_string())),
  }
  frontend::describe(b'P', "", &mut buf).map_err(|e| CoreError::ParamInvalid(e.to_string()))?;
  frontend::execute("", 0, &mut buf).map_err(|e| CoreError::ParamInvalid(e.to_string()))?;
  frontend::sync(&mut buf);
  Ok(buf.freeze())
}
