//! One Postgres connection: the wire protocol over a socket, pipelined.
//!
//! We speak the protocol with `postgres-protocol` (the message codec and SCRAM of the
//! rust-postgres project) instead of `tokio-postgres`, because onepool must return exactly what
//! node-postgres returns: results in text format with every column's type OID (also for
//! multi-statement simple queries), the server's transaction status after every request (to
//! never hand out a connection that is inside a transaction), and Buffers sent in binary.

mod channel_binding;
mod copy;
mod framing;
mod io;
mod notices;
mod portal;
mod query;
mod session_attrs;
pub mod sockets;
mod startup;
mod stream;
mod tls;
pub mod transport;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::budget::Lease;
use crate::config::{ConnSettings, Host, Target};
use crate::error::{CoreError, CoreResult};
use transport::DirectWrite;

pub use copy::{Chunk, ChunkDone, Copy, CopyDirection};
pub use io::Inbox;
pub use portal::RowStream;
pub use query::Query;
use query::{encode_bound, encode_prepare, encode_simple, encode_unnamed, with_closes, Plan, Statements};
pub use session_attrs::{check, Checked, ServerState};
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
  /// Shared with the statement cache: a prepared statement's executions reuse its columns.
  pub fields: Arc<Vec<Field>>,
  pub rows: Vec<u8>,
  pub row_count: u32,
  /// Cells in each row (every row was checked to have this many as it arrived).
  pub width: u16,
  pub command: String,
}

#[derive(Debug)]
pub struct Response {
  pub results: Vec<QueryResult>,
  /// The request's notices (NoticeResponse, node-postgres's `notice` event), encoded as
  /// `notices::append_notice` does; empty when there were none.
  pub notices: Vec<u8>,
}

/// Transaction status byte from ReadyForQuery: idle, in transaction, failed transaction.
pub const TX_IDLE: u8 = b'I';

/// What the socket task and the handle share.
struct ConnState {
  closed: AtomicBool,
  tx_status: AtomicU8,
  in_flight: AtomicUsize,
  /// Requests queued and requests answered since the connection opened.
  sent: AtomicU64,
  answered: AtomicU64,
  /// When the connection last finished a request (or, when idle, started one): a connection
  /// with requests in flight and no progress for long is stalled.
  progress: Mutex<Instant>,
  /// Asks the socket task to give up on a stalled or abandoned connection.
  kill: Notify,
  /// Why it was killed, when the requests on it should hear that rather than "lost".
  kill_reason: Mutex<Option<CoreError>>,
  /// The server ended the session with a FATAL error: it ran nothing after that.
  fatal: AtomicBool,
  /// Bytes were queued for the writer task (or the handle was dropped).
  wake_writer: Notify,
  /// A thread outside the I/O task found the socket failed (`Inbox::read_now`).
  read_failed: Notify,
  /// Where this connection's NOTIFY messages go, once someone asked for them
  /// (`Conn::notifications`); the stream ends with why the connection closed.
  notifications: Mutex<Option<mpsc::UnboundedSender<Result<Notification, CoreError>>>>,
  /// Streams (row streams, COPY) queued: replies may have to be fed to them (`stream.rs`).
  streams: AtomicUsize,
  /// A COPY's consumer fell behind: the socket is not read until `resumed`.
  reading_paused: AtomicBool,
  resumed: Notify,
  /// A COPY TO is sending data: the socket is read in bulk (`io::BULK_READ`).
  bulk_reading: AtomicBool,
}

impl ConnState {
  fn answered_one(&self) {
    self.in_flight.fetch_sub(1, Ordering::AcqRel);
    self.answered.fetch_add(1, Ordering::AcqRel);
  }

  fn made_progress(&self) {
    *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
  }
}

/// A NOTIFY the server delivered on this connection (for a channel it LISTENs to).
#[derive(Debug, Clone)]
pub struct Notification {
  /// The backend that sent it (`pg_backend_pid()` of the notifier).
  pub process_id: i32,
  pub channel: String,
  pub payload: String,
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
  /// Its caller was already answered (timed out); the response is read and dropped.
  Discard,
  /// A row stream or a COPY (its id and its feed): its reply is fed to it message by message
  /// (`stream.rs`).
  Stream(u64, Arc<dyn stream::Feed>),
}

impl Reply {
  pub(crate) fn send(self, outcome: CoreResult<Response>) {
    match self {
      Reply::Channel(tx) => {
        let _ = tx.send(outcome);
      }
      Reply::Callback(done) => done(outcome),
      Reply::Discard => {}
      Reply::Stream(_, feed) => {
        if let Err(e) = outcome {
          feed.failed(e)
        }
      }
    }
  }
}

/// How a request's bytes leave for the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
  /// From the calling thread when nothing is queued ahead of it: the lowest latency (no
  /// hand-off to the writer task), for requests that come one at a time.
  Now,
  /// By the writer task, which coalesces requests sent close together into one write: the
  /// least work for the calling thread under load.
  Batched,
}

/// The parts of a connection that callbacks on the I/O thread also need.
struct Shared {
  /// The socket, when the caller's thread may write to it directly.
  direct: Option<Arc<dyn DirectWrite>>,
  /// Its read side, when the caller's thread may read it too.
  inbox: Option<Arc<io::Inbox>>,
  state: Arc<ConnState>,
  pending: Arc<Mutex<io::Pending>>,
  statements: Mutex<Statements>,
}

pub struct Conn {
  shared: Arc<Shared>,
  pub cancel_key: CancelKey,
  pub id: u64,
  /// When this connection retires (max lifetime, staggered).
  pub retire_at: Option<Instant>,
  pub idle_since: Instant,
  /// Requests queued before this count belong to an earlier owner (`change_owner`).
  earlier_until: u64,
  /// What the server said it is when the connection opened (`in_hot_standby`, ...).
  pub server_at_start: ServerState,
  _lease: Lease,
}

/// Requests an earlier owner left running on a connection (`Conn::change_owner`). A
/// CancelRequest stops whatever the backend runs at that moment, so the new owner's cancel
/// must wait for them.
pub struct EarlierRequests {
  state: Arc<ConnState>,
  until: u64,
}

impl EarlierRequests {
  fn done(&self) -> bool {
    self.state.closed.load(Ordering::Acquire) || self.state.answered.load(Ordering::Acquire) >= self.until
  }

  /// Polls: this wait only happens when a handed-on connection's first statements are
  /// cancelled, and a wake-up signal on every reply would tax every query.
  pub async fn finished(&self) {
    while !self.done() {
      tokio::time::sleep(Duration::from_millis(1)).await;
    }
  }
}

fn closed_error() -> CoreError {
  CoreError::ConnectionLost("connection lost: the connection is closed".into())
}

impl Conn {
  /// Opens a connection to the target (socket, TLS, startup), unbounded in time: the pool
  /// bounds it by the connect timeout.
  pub async fn connect(
    target: &Target,
    settings: &ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> CoreResult<Conn> {
    let opened = startup::open(target, settings).await?;
    Ok(Conn::start(opened, target, settings, lease, id, retire_at))
  }

  /// Starts a session on a stream that is already open (an in-memory one in tests).
  pub async fn over(
    stream: Box<dyn transport::Stream>,
    target: &Target,
    settings: &ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> CoreResult<Conn> {
    let opened = startup::handshake(stream, target, settings).await?;
    Ok(Conn::start(opened, target, settings, lease, id, retire_at))
  }

  fn start(
    opened: startup::Opened,
    target: &Target,
    settings: &ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> Conn {
    let state = Arc::new(ConnState {
      closed: AtomicBool::new(false),
      tx_status: AtomicU8::new(TX_IDLE),
      in_flight: AtomicUsize::new(0),
      sent: AtomicU64::new(0),
      answered: AtomicU64::new(0),
      progress: Mutex::new(Instant::now()),
      kill: Notify::new(),
      kill_reason: Mutex::new(None),
      fatal: AtomicBool::new(false),
      wake_writer: Notify::new(),
      read_failed: Notify::new(),
      notifications: Mutex::new(None),
      streams: AtomicUsize::new(0),
      reading_paused: AtomicBool::new(false),
      resumed: Notify::new(),
      bulk_reading: AtomicBool::new(false),
    });
    let (reader, writer) = transport::split(opened.stream);
    let direct = writer.direct();
    let cancel_key = CancelKey {
      host: target.host.clone(),
      port: target.port,
      process_id: opened.process_id,
      secret_key: opened.secret_key,
    };
    let pending = Arc::new(Mutex::new(io::Pending::new()));
    let inbox = io::start(reader, writer, state.clone(), pending.clone(), settings.max_message_size);
    let statements = Mutex::new(Statements::new(settings.statement_cache_size));
    Conn {
      shared: Arc::new(Shared { direct, inbox, state, pending, statements }),
      cancel_key,
      id,
      retire_at,
      idle_since: Instant::now(),
      earlier_until: 0,
      server_at_start: opened.server,
      _lease: lease,
    }
  }

  /// The socket's read side, when a JavaScript thread may read a reply itself.
  pub fn inbox(&self) -> Option<Arc<Inbox>> {
    self.shared.inbox.clone()
  }

  /// The I/O task reads this connection's replies again if a JavaScript thread was watching it
  /// (someone else is waiting for the connection, and that thread may be busy).
  pub fn stop_watching(&self) {
    if let Some(inbox) = &self.shared.inbox {
      inbox.unwatch();
    }
  }

  pub fn is_closed(&self) -> bool {
    self.shared.state.closed.load(Ordering::Acquire)
  }

  /// True when the last finished request left the session outside any transaction and
  /// nothing is still running on it.
  pub fn is_clean(&self) -> bool {
    let state = &self.shared.state;
    state.tx_status.load(Ordering::Acquire) == TX_IDLE && state.in_flight.load(Ordering::Acquire) == 0
  }

  pub fn in_flight(&self) -> usize {
    self.shared.state.in_flight.load(Ordering::Acquire)
  }

  /// How long requests have been in flight without any finishing (zero when idle).
  pub fn stalled_for(&self) -> std::time::Duration {
    if self.in_flight() == 0 {
      return std::time::Duration::ZERO;
    }
    self.shared.state.progress.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
  }

  /// Closes the socket now: the request at the head fails with CONNECTION_LOST and those queued
  /// behind it with POOL_TIMEOUT (they never got to run). Used for a connection that stopped
  /// answering and for a cancelled query the server never acknowledged.
  pub fn kill(&self) {
    self.shared.state.closed.store(true, Ordering::Release);
    self.shared.state.kill.notify_one();
  }

  /// The connection passes to a new owner while requests of the old one may still run.
  pub fn change_owner(&mut self) {
    self.earlier_until = self.shared.state.sent.load(Ordering::Acquire);
  }

  /// What a cancel for this owner must wait for (nothing unless `change_owner` left some).
  pub fn earlier_requests(&self) -> EarlierRequests {
    EarlierRequests { state: self.shared.state.clone(), until: self.earlier_until }
  }

  /// A handle on the requests queued on this connection, usable without owning it.
  pub fn queue(&self) -> Queue {
    Queue(self.shared.clone())
  }

  /// A handle that can `kill()` the connection without owning it.
  pub fn killer(&self) -> Killer {
    Killer(self.shared.state.clone())
  }

  /// Runs a query and waits for its ReadyForQuery. Requests are pipelined: several may be on
  /// the wire at once.
  pub fn run(&self, query: Arc<Query>) -> impl Future<Output = CoreResult<Response>> + Send + 'static {
    let (tx, rx) = oneshot::channel();
    let sent = self.run_then(query, Box::new(move |outcome| drop(tx.send(outcome))), Write::Now).is_ok();
    async move {
      if !sent {
        return Err(closed_error());
      }
      rx.await.unwrap_or_else(|_| Err(closed_error()))
    }
  }

  /// Runs a query whose outcome goes to `done` on the I/O thread. If the connection is already
  /// closed, `done` is handed back so the caller can call it outside its locks.
  pub fn run_then(&self, query: Arc<Query>, done: Done, write: Write) -> Result<(), Done> {
    self.shared.run_then(query, done, write)
  }

  /// The notifications the server sends on this connection, in order, from now on. When the
  /// connection closes the stream ends, with why as its last item (at once if it already has).
  pub fn notifications(&self) -> mpsc::UnboundedReceiver<Result<Notification, CoreError>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = &self.shared.state;
    *state.notifications.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    // The I/O task drops the sender after marking the connection closed: if it already has, the
    // sender just installed would never go.
    if self.is_closed() {
      state.notifications.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
    rx
  }

  pub async fn simple(&self, sql: &str) -> CoreResult<Response> {
    let (tx, rx) = oneshot::channel();
    self.shared.enqueue(encode_simple(sql), Reply::Channel(tx), Write::Now).map_err(|_| closed_error())?;
    rx.await.unwrap_or_else(|_| Err(closed_error()))
  }
}

impl Drop for Shared {
  fn drop(&mut self) {
    self.pending.lock().unwrap_or_else(|e| e.into_inner()).hung_up = true;
    self.state.wake_writer.notify_one();
  }
}

/// See `Conn::queue`.
pub struct Queue(Arc<Shared>);

impl Queue {
  /// Answers every request queued behind the one running now with `err`; their responses are
  /// read and dropped when they come. Returns how many were answered. Callbacks run here, so
  /// call it without holding locks they may take.
  pub fn abandon_queued(&self, err: &CoreError) -> usize {
    let owed: Vec<Reply> = {
      let mut p = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
      p.replies.iter_mut().skip(1).map(|r| std::mem::replace(r, Reply::Discard)).collect()
    };
    let mut answered = 0;
    for reply in owed {
      if !matches!(reply, Reply::Discard) {
        answered += 1;
        reply.send(Err(err.clone()));
      }
    }
    answered
  }
}

/// See `Conn::killer`.
pub struct Killer(Arc<ConnState>);

impl Killer {
  pub fn kill(&self) {
    self.0.closed.store(true, Ordering::Release);
    self.0.kill.notify_one();
  }

  /// Closes the socket now; every request on it fails with `reason`.
  pub fn kill_because(&self, reason: CoreError) {
    *self.0.kill_reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    self.kill();
  }

  /// Whether the connection is closed (it can be forgotten).
  pub fn is_closed(&self) -> bool {
    self.0.closed.load(Ordering::Acquire)
  }
}

impl Shared {
  fn enqueue(&self, bytes: Bytes, reply: Reply, write: Write) -> Result<(), Reply> {
    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
    if p.closed.is_some() || p.hung_up {
      return Err(reply);
    }
    // Counted here, not in the socket task, so the pool sees the request the moment it is queued.
    let idle = self.state.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
    self.state.sent.fetch_add(1, Ordering::AcqRel);
    if idle {
      self.state.made_progress();
    }
    p.replies.push_back(reply);
    if !idle {
      if let Some(inbox) = &self.inbox {
        inbox.unwatch();
      }
    }
    // Behind a row stream or a COPY: written when it ends.
    if self.park(&mut p, &bytes) {
      return Ok(());
    }
    // `Now` with nothing queued ahead: write from this thread, sparing a hand-off to the writer
    // task. `Batched`: the writer task sends, so pipelined requests coalesce into fewer, larger
    // writes. Whatever the socket does not take now (or an error, which the writer task then
    // reports) goes to the writer task.
    let written = match &self.direct {
      Some(socket) if write == Write::Now && !p.writing && p.unsent.is_empty() => {
        socket.try_write(&bytes).unwrap_or(0)
      }
      _ => 0,
    };
    if written == 0 {
      p.unsent_requests += 1;
    }
    if written < bytes.len() {
      p.unsent.extend_from_slice(&bytes[written..]);
      drop(p);
      self.state.wake_writer.notify_one();
    }
    Ok(())
  }

  fn enqueue_then(&self, bytes: Bytes, done: Done, write: Write) -> Result<(), Done> {
    match self.enqueue(bytes, Reply::Callback(done), write) {
      Ok(()) => Ok(()),
      Err(Reply::Callback(done)) => Err(done),
      Err(_) => unreachable!("sent a callback"),
    }
  }

  fn statements(&self) -> std::sync::MutexGuard<'_, Statements> {
    self.statements.lock().unwrap_or_else(|e| e.into_inner())
  }

  fn run_then(self: &Arc<Self>, query: Arc<Query>, done: Done, write: Write) -> Result<(), Done> {
    if query.params.is_empty() {
      return self.enqueue_then(encode_simple(&query.sql), done, write);
    }
    let (plan, closes) = {
      let mut statements = self.statements();
      (statements.plan(&query.sql), statements.take_closes())
    };
    match plan {
      Plan::Unnamed => self.enqueue_then(with_closes(closes, encode_unnamed(&query)), done, write),
      Plan::Prepare(name) => {
        let bytes = with_closes(closes, encode_prepare(&name, &query));
        let shared = self.clone();
        self.enqueue_then(
          bytes,
          Box::new(move |outcome: CoreResult<Response>| {
            match &outcome {
              Ok(resp) => {
                let fields = resp.results.first().map(|r| r.fields.clone()).unwrap_or_default();
                shared.statements().prepared(&query.sql, name, fields);
              }
              // The statement may or may not exist now: close it with the next request.
              Err(_) => shared.statements().discard(&query.sql, name),
            }
            done(outcome)
          }),
          write,
        )
      }
      Plan::Bound(name, fields) => {
        let bytes = with_closes(closes, encode_bound(&name, &query));
        let shared = self.clone();
        self.enqueue_then(
          bytes,
          Box::new(move |outcome: CoreResult<Response>| match outcome {
            Ok(mut resp) => {
              // Bind/Execute sends no RowDescription: the columns come from the cache.
              if let Some(first) = resp.results.first_mut().filter(|r| r.fields.is_empty()) {
                if let Err(e) = io::cached_columns(first, fields) {
                  // A server that sends rows of the wrong shape is not trusted with more.
                  shared.state.closed.store(true, Ordering::Release);
                  shared.state.kill.notify_one();
                  return done(Err(e));
                }
              }
              done(Ok(resp))
            }
            // The server lost the statement (DISCARD ALL) or its plan no longer fits (DDL):
            // forget it and run the query unnamed, unless a transaction block makes it moot.
            Err(CoreError::Db(db))
              if (db.code == "26000" || db.code == "0A000")
                && shared.state.tx_status.load(Ordering::Acquire) == TX_IDLE =>
            {
              shared.statements().discard(&query.sql, name);
              if let Err(done) = shared.enqueue_then(encode_unnamed(&query), done, Write::Now) {
                done(Err(closed_error()));
              }
            }
            other => done(other),
          }),
          write,
        )
      }
    }
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
  let word: String =
    s.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_lowercase();
  let single = match sql.find(';') {
    None => true,
    Some(i) => sql[i + 1..].trim().is_empty(),
  };
  single && matches!(word.as_str(), "select" | "with" | "insert" | "update" | "delete" | "values" | "table")
}

#[cfg(test)]
mod tests {
  use super::pipelinable;

  #[test]
  fn only_self_contained_statements_are_pipelined() {
    for yes in [
      "select 1",
      "  SELECT 1;",
      "-- c\nselect 1",
      "/* x */ with a as (select 1) select * from a",
      "insert into t values (1)",
    ] {
      assert!(pipelinable(yes), "{yes}");
    }
    for no in
      ["begin", "select 1; select 2", "set search_path = x", "start transaction", "listen x", "commit", ""]
    {
      assert!(!pipelinable(no), "{no}");
    }
  }
}
