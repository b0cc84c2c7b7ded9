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

struct Outgoing {
  bytes: Bytes,
  reply: oneshot::Sender<CoreResult<Response>>,
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
    let sent = self.tx.send(Outgoing { bytes, reply });
    async move {
      if sent.is_err() {
        return Err(CoreError::ConnectionLost("connection lost: the connection is closed".into()));
      }
      rx.await.unwrap_or_else(|_| {
        Err(CoreError::ConnectionLost("connection lost: the connection is closed".into()))
      })
    }
  }

  pub async fn simple(&self, sql: &str) -> CoreResult<Response> {
    self.send(encode_simple(sql)).await
  }
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
