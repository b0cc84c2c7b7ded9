//! The task that owns a connection's socket. A writer half sends requests in order; a reader
//! half answers the oldest pending request at each ReadyForQuery. Reading and writing run
//! concurrently so a large request never deadlocks against a large result.
//!
//! Requests are recorded and their bytes queued under one lock (`Pending`), so the order on the
//! wire is the order of the replies. On a plain socket the sender writes the bytes itself when
//! nothing is queued ahead of them (see `Shared::enqueue`); the writer task sends the rest. A
//! plain socket's replies may likewise be read by a JavaScript thread waiting for one (`Inbox`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::AsyncRead;
use tokio::sync::Notify;

use super::framing::{make_room, next_message, read_message, ReadError};
use super::startup::{parse_db_error, without_sqlstate};
use super::stream::{self, Parked};
use super::transport::{DirectRead, Reader, Writer};
use super::{ConnState, Field, QueryResult, Reply, Response};
use crate::error::{CoreError, CoreResult, TimeoutKind};

/// The replies owed for requests sent or queued, oldest first, and the bytes not yet written.
pub(crate) struct Pending {
  pub(crate) replies: VecDeque<Reply>,
  pub(crate) closed: Option<CoreError>,
  pub(crate) unsent: BytesMut,
  /// The writer task is writing bytes taken from `unsent`: nobody else may write meanwhile.
  pub(crate) writing: bool,
  /// The connection's handle is gone: say goodbye once everything queued is written.
  pub(crate) hung_up: bool,
  /// How many of the last requests in `replies` have no byte written yet: if the connection
  /// fails, they certainly never ran.
  pub(crate) unsent_requests: usize,
  /// Requests waiting behind a stream that holds the connection (`stream.rs`).
  pub(crate) parked: Parked,
  /// A COPY writer waiting for the bytes ahead of its own to be taken by the writer task.
  pub(crate) drained: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl Pending {
  pub(crate) fn new() -> Pending {
    Pending {
      replies: VecDeque::new(),
      closed: None,
      unsent: BytesMut::new(),
      writing: false,
      hung_up: false,
      unsent_requests: 0,
      parked: Parked::default(),
      drained: None,
    }
  }
}

/// How the I/O task reads its socket.
enum Reading {
  Shared(Arc<Inbox>),
  Alone(Box<dyn AsyncRead + Send + Unpin>),
}

/// Starts the connection's I/O task. Returns the socket's read side when other threads may
/// read it too (a plain socket). A message whose body claims more than `max_message` bytes
/// ends the connection with a protocol error.
pub(crate) fn start(
  reader: Reader,
  writer: Writer,
  state: Arc<ConnState>,
  pending: Arc<Mutex<Pending>>,
  max_message: usize,
) -> Option<Arc<Inbox>> {
  let (reading, inbox) = match reader {
    Reader::Direct(socket) => {
      let inbox = Arc::new(Inbox::new(socket, pending.clone(), state.clone(), max_message));
      (Reading::Shared(inbox.clone()), Some(inbox))
    }
    Reader::Task(rd) => (Reading::Alone(rd), None),
  };
  crate::runtime::spawn(run(reading, writer, state, pending, max_message));
  inbox
}

async fn run(
  reading: Reading,
  writer: Writer,
  state: Arc<ConnState>,
  pending: Arc<Mutex<Pending>>,
  max_message: usize,
) {
  let _alive = super::sockets::SocketGuard::hold();
  let mut killed = false;
  let read = async {
    match reading {
      Reading::Shared(inbox) => inbox.read_loop().await,
      Reading::Alone(rd) => read_loop(rd, &pending, &state, max_message).await,
    }
  };
  let failure = tokio::select! {
    r = write_loop(writer, &pending, &state) => r.err(),
    r = read => Some(r),
    _ = state.kill.notified() => {
      killed = true;
      Some(CoreError::ConnectionLost("connection lost: the server stopped answering".into()))
    }
  };
  state.closed.store(true, Ordering::Release);
  let err =
    failure.unwrap_or_else(|| CoreError::ConnectionLost("connection lost: the connection was closed".into()));
  // Ends the stream of notifications (`Conn::notifications`) with why.
  if let Some(tx) = state.notifications.lock().unwrap_or_else(|e| e.into_inner()).take() {
    let _ = tx.send(Err(err.clone()));
  }
  // Requests queued behind a stalled one never ran: to their callers it is a wait that timed out.
  let queued_err = CoreError::PoolTimeout(
    TimeoutKind::Queued,
    "timed out waiting behind a query on a connection that stopped answering; the connection was closed"
      .into(),
  );
  let reason = state.kill_reason.lock().unwrap_or_else(|e| e.into_inner()).take();
  let (drained, unsent, writer): (Vec<Reply>, usize, _) = {
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    p.closed = Some(err.clone());
    p.unsent.clear();
    let parked = p.parked.requests;
    p.parked.clear();
    (p.replies.drain(..).collect(), p.unsent_requests + parked, p.drained.take())
  };
  if let Some(writer) = writer {
    writer(false);
  }
  // Requests that never ran: those with no byte written, and after a FATAL error (the backend
  // ends without reading further) every one behind the request it answered.
  let ran = if state.fatal.load(Ordering::Acquire) { 0 } else { drained.len().saturating_sub(unsent) };
  for (i, reply) in drained.into_iter().enumerate() {
    state.answered_one();
    let outcome = match &reason {
      Some(reason) => reason.clone(),
      None if killed && i > 0 => queued_err.clone(),
      None => err.clone(),
    };
    reply.send(Err(if i >= ran && reason.is_none() {
      CoreError::NotRun(Box::new(outcome))
    } else {
      outcome
    }));
  }
}

async fn write_loop(mut writer: Writer, pending: &Mutex<Pending>, state: &ConnState) -> CoreResult<()> {
  loop {
    let (batch, drained) = {
      let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
      if p.unsent.is_empty() {
        p.writing = false;
        if p.hung_up {
          break;
        }
        (None, None)
      } else {
        p.writing = true;
        p.unsent_requests = 0;
        (Some(p.unsent.split()), p.drained.take())
      }
    };
    // A COPY writer held back while these bytes waited may send more now.
    if let Some(drained) = drained {
      drained(true);
    }
    match batch {
      Some(bytes) => writer.write_all(&bytes).await.map_err(|e| CoreError::lost(&e))?,
      // A permit stored by a wake-up that came before this wait makes it return at once.
      None => state.wake_writer.notified().await,
    }
  }
  // The handle was dropped: say goodbye properly so the server does not log a lost client.
  let mut bye = BytesMut::new();
  frontend::terminate(&mut bye);
  let _ = writer.write_all(&bye).await;
  writer.shutdown().await;
  Ok(())
}

/// What the rows of the statement being read must look like. JavaScript decodes the cells
/// without checking them again, so a row is checked here, against its own bytes and against
/// the statement's columns, before it is kept.
#[derive(Default, Clone, Copy)]
enum Expect {
  /// Nothing said yet: a DataRow now breaks the protocol.
  #[default]
  Nothing,
  /// NoData: the statement returns no rows.
  NoRows,
  /// A cached statement was bound (BindComplete before any description): its rows come without
  /// a RowDescription, the cache has the columns (checked against `QueryResult::width` when the
  /// reply is answered, see `cached_columns`).
  Bound,
  /// Rows of exactly this many cells.
  Cells(u16),
}

/// Builds the response of the request at the head of the queue.
#[derive(Default)]
struct Collector {
  results: Vec<QueryResult>,
  current: Option<QueryResult>,
  error: Option<CoreError>,
  expect: Expect,
  /// How many bytes of cells the last statement on this connection had: the same query run
  /// again then fills one allocation instead of a chain of doublings.
  cells_hint: usize,
  /// The request's notices, encoded (`notices::append_notice`), up to MAX_NOTICE_BYTES.
  notices: Vec<u8>,
  /// The stream whose reply is being read, if it is one (`stream.rs`).
  fed: stream::Current,
}

impl Collector {
  fn start_statement(&mut self, fields: Vec<Field>) -> &mut QueryResult {
    let rows = Vec::with_capacity(self.cells_hint);
    let width = fields.len() as u16;
    self.current.insert(QueryResult { fields: Arc::new(fields), rows, width, ..Default::default() })
  }

  /// The width a DataRow of `cells` cells must have, or why it cannot be kept.
  fn row_width(&mut self, cells: u16) -> CoreResult<u16> {
    match self.expect {
      Expect::Cells(n) if n == cells => Ok(n),
      Expect::Cells(n) => {
        Err(malformed(format!("a DataRow of {cells} cells for a RowDescription of {n} columns")))
      }
      Expect::Bound => {
        self.expect = Expect::Cells(cells);
        Ok(cells)
      }
      Expect::Nothing | Expect::NoRows => Err(malformed("a DataRow without a RowDescription".into())),
    }
  }

  fn finish_statement(&mut self, command: String) {
    self.expect = Expect::Nothing;
    let mut r = self.current.take().unwrap_or_default();
    r.command = command;
    self.cells_hint = r.rows.len().min(MAX_CELLS_HINT);
    // A small result after a big one: do not hand JavaScript the big allocation.
    if r.rows.capacity() > 2 * r.rows.len() + 4096 {
      r.rows.shrink_to_fit();
    }
    self.results.push(r);
  }

  /// Answers the request at the head, ready for the next one.
  fn take(&mut self) -> Collector {
    let hint = self.cells_hint;
    let done = std::mem::take(self);
    self.cells_hint = hint;
    done
  }
}

const MAX_CELLS_HINT: usize = 16 << 20;

/// Notices kept for one request: a server (or a function raising notices in a loop) cannot make
/// a connection hold more than this; later notices of the same request are dropped.
pub(super) const MAX_NOTICE_BYTES: usize = 1 << 20;

/// Whether `buf` starts with a whole message (the next read needs no more bytes).
fn holds_message(buf: &[u8]) -> bool {
  buf.len() >= 5 && buf.len() > u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize
}

/// A COPY's consumer fell behind: the socket is left unread until it catches up (`stream.rs`).
fn reading_paused(state: &ConnState) -> bool {
  state.reading_paused.load(Ordering::Acquire)
}

/// Reads a TLS stream or a socket JavaScript owns: only this task reads it.
async fn read_loop(
  mut rd: Box<dyn AsyncRead + Send + Unpin>,
  pending: &Mutex<Pending>,
  state: &ConnState,
  max_message: usize,
) -> CoreError {
  let mut buf = BytesMut::with_capacity(READ_CHUNK);
  let mut c = Collector::default();
  loop {
    // A notification stored before this wait makes it return at once.
    while reading_paused(state) {
      state.resumed.notified().await;
    }
    c.fed.take_data(&mut buf, max_message);
    if !holds_message(&buf) {
      c.fed.caught_up();
    }
    let msg = match read_message(&mut rd, &mut buf, max_message).await {
      Ok(m) => m,
      Err(e) => return e.into_core(),
    };
    if let Err(e) = absorb(msg, &mut c, pending, state) {
      return e;
    }
  }
}

const READ_CHUNK: usize = 64 * 1024;
/// While a COPY TO streams, the socket shows as readable only once this much has come (or
/// `BULK_WAIT` passed). Each write of the server would otherwise wake the I/O thread; the kernel
/// runs a woken reader on the writer's core, and a thread that sleeps that often is favoured
/// there, so the server, which is what bounds a COPY, would keep being pushed aside.
const BULK_READ: usize = 256 * 1024;
const BULK_WAIT: std::time::Duration = std::time::Duration::from_millis(2);
/// A result this large is left to the I/O thread to finish (`Inbox::read_now`).
#[cfg(unix)]
const HAND_OVER_ABOVE: usize = 256 * 1024;
/// How much a JavaScript thread reads in one go (`Inbox::read_now`).
#[cfg(unix)]
const READ_NOW_BUDGET: usize = 1 << 20;

/// The read side of a plain socket, which any thread may read: the bytes read and not yet
/// parsed, and the response being built. The I/O task reads it whenever the socket has data; a
/// JavaScript thread waiting for a lone reply also reads it (`read_now`), which spares the
/// reply a hand-off from the I/O thread to JavaScript (one cross-core wake-up less).
pub struct Inbox {
  socket: Arc<dyn DirectRead>,
  parsed: Mutex<Parsed>,
  pending: Arc<Mutex<Pending>>,
  state: Arc<ConnState>,
  /// A JavaScript thread reads this socket: the I/O task leaves the replies to it, so the two
  /// threads do not race for them (the loser of that race would wait for the winner).
  watched: AtomicBool,
  unwatched: Notify,
  max_message: usize,
}

#[derive(Default)]
struct Parsed {
  buf: BytesMut,
  c: Collector,
  /// Why reading ended, when a thread outside the I/O task found out first.
  failed: Option<CoreError>,
}

impl Inbox {
  fn new(
    socket: Arc<dyn DirectRead>,
    pending: Arc<Mutex<Pending>>,
    state: Arc<ConnState>,
    max_message: usize,
  ) -> Inbox {
    let parsed = Parsed { buf: BytesMut::with_capacity(READ_CHUNK), ..Default::default() };
    Inbox {
      socket,
      parsed: Mutex::new(parsed),
      pending,
      state,
      watched: AtomicBool::new(false),
      unwatched: Notify::new(),
      max_message,
    }
  }

  /// A JavaScript thread takes over reading this socket, if its request is the only one on
  /// the connection. Requests of others must not wait for that thread (it may be busy).
  pub fn watch(&self) -> bool {
    self.watched.store(true, Ordering::Release);
    if self.state.in_flight.load(Ordering::Acquire) > 1 {
      self.unwatch();
      return false;
    }
    true
  }

  /// The I/O task reads this socket again (the JS thread stopped, or another request came).
  pub fn unwatch(&self) {
    // A load first: every pipelined request passes here, and the socket is rarely watched.
    if self.is_watched() && self.watched.swap(false, Ordering::AcqRel) {
      self.unwatched.notify_one();
    }
  }

  pub fn is_watched(&self) -> bool {
    self.watched.load(Ordering::Acquire)
  }

  /// The descriptor a JavaScript thread waits on (while it holds this inbox, it stays open).
  #[cfg(unix)]
  pub fn raw_fd(&self) -> i32 {
    self.socket.raw_fd()
  }

  /// Reads and answers what the socket holds now, on the calling (JavaScript) thread. Never
  /// waits: if the I/O task is reading, it is left to it. True when this thread read and
  /// replies are still owed, so it should go on waiting; false when they are all in, the I/O
  /// task is reading, or the connection failed (the I/O task then answers every caller).
  #[cfg(unix)]
  pub fn read_now(&self) -> bool {
    let mut parsed = match self.parsed.try_lock() {
      Ok(p) => p,
      Err(std::sync::TryLockError::WouldBlock) => return false,
      Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
    };
    if parsed.failed.is_some() || self.state.closed.load(Ordering::Acquire) || reading_paused(&self.state) {
      return false;
    }
    // A large result arrives over many turns of the event loop, not in one long callback.
    let mut budget = READ_NOW_BUDGET;
    let read = |buf: &mut BytesMut| {
      if budget == 0 {
        return Err(std::io::ErrorKind::WouldBlock.into());
      }
      let n = self.socket.read_now(buf)?;
      budget = budget.saturating_sub(n);
      Ok(n)
    };
    if let Err(e) = self.pump(&mut parsed, read) {
      self.state.closed.store(true, Ordering::Release);
      parsed.failed = Some(e);
      drop(parsed);
      self.state.read_failed.notify_one();
      return false;
    }
    // A large result is finished on the I/O thread: preparing it for JavaScript (`wire`) takes
    // long enough to hold up the event loop, which reading a lone small reply here never does.
    let large = parsed.c.current.as_ref().is_some_and(|r| r.rows.len() >= HAND_OVER_ABOVE);
    drop(parsed);
    if large {
      self.unwatch();
      return false;
    }
    !self.pending.lock().unwrap_or_else(|e| e.into_inner()).replies.is_empty()
  }

  /// The I/O task's side: reads whenever the socket has data, until the connection fails.
  async fn read_loop(&self) -> CoreError {
    let mut bulk = false;
    loop {
      // In bulk while a COPY TO streams (the flag outlives it only until its reply is popped).
      let want_bulk =
        self.state.bulk_reading.load(Ordering::Acquire) && self.state.streams.load(Ordering::Acquire) > 0;
      // Only a mark that changed changes the mode: a mark left raised keeps the timed reads,
      // which see what the readiness would not.
      if want_bulk != bulk && self.socket.set_low_water(if want_bulk { BULK_READ } else { 1 }) {
        bulk = want_bulk;
      }
      let mut past_readiness = false;
      let failed = if self.is_watched() {
        tokio::select! {
          _ = self.unwatched.notified() => false,
          _ = self.state.read_failed.notified() => true,
        }
      } else if reading_paused(&self.state) {
        tokio::select! {
          _ = self.state.resumed.notified() => false,
          _ = self.state.read_failed.notified() => true,
        }
      } else if bulk {
        tokio::select! {
          r = tokio::time::timeout(BULK_WAIT, self.socket.readable()) => match r {
            Ok(Ok(())) => false,
            Ok(Err(e)) => return CoreError::lost(&e),
            // Less than a gulp came (or nothing): the socket does not show as readable, so
            // what came is read past the runtime's readiness.
            Err(_) => {
              past_readiness = true;
              false
            }
          },
          _ = self.state.read_failed.notified() => true,
        }
      } else {
        tokio::select! {
          r = self.socket.readable() => match r {
            Ok(()) => false,
            Err(e) => return CoreError::lost(&e),
          },
          _ = self.state.read_failed.notified() => true,
        }
      };
      // The socket may have been handed to a JavaScript thread while this task waited.
      if !failed && self.is_watched() {
        continue;
      }
      let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
      if let Some(e) = parsed.failed.clone() {
        return e;
      }
      let pumped = if past_readiness {
        self.pump(&mut parsed, |buf| self.socket.read_past_readiness(buf))
      } else {
        self.pump(&mut parsed, |buf| self.socket.try_read_buf(buf))
      };
      if let Err(e) = pumped {
        parsed.failed = Some(e.clone());
        return e;
      }
    }
  }

  /// Answers every complete message, reading until the socket has nothing more.
  fn pump(
    &self,
    p: &mut Parsed,
    mut read: impl FnMut(&mut BytesMut) -> std::io::Result<usize>,
  ) -> CoreResult<()> {
    loop {
      loop {
        // A COPY's data, straight from the buffer (`stream.rs`).
        p.c.fed.take_data(&mut p.buf, self.max_message);
        let Some(msg) = next_message(&mut p.buf, self.max_message).map_err(ReadError::into_core)? else {
          break;
        };
        absorb(msg, &mut p.c, &self.pending, &self.state)?;
      }
      // A COPY's consumer fell behind: leave the rest in the socket, so the server waits.
      if reading_paused(&self.state) {
        return Ok(());
      }
      // Grows with what arrived (doubling while a long message comes in), never to the length
      // a header claims.
      if p.buf.capacity() - p.buf.len() < READ_CHUNK / 4 {
        make_room(&mut p.buf, READ_CHUNK).map_err(ReadError::into_core)?;
      }
      match read(&mut p.buf) {
        Ok(0) => return Err(CoreError::lost(&std::io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
          p.c.fed.caught_up();
          return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => return Err(CoreError::lost(&e)),
      }
    }
  }
}

/// Handles one message from the server: a reply is answered at its ReadyForQuery.
fn absorb(msg: Message, c: &mut Collector, pending: &Mutex<Pending>, state: &ConnState) -> CoreResult<()> {
  // A stream's reply goes to the stream (`stream.rs`).
  let Some(msg) = c.fed.absorb(msg, pending, state)? else { return Ok(()) };
  match msg {
    Message::DataRow(body) => {
      let cells = body.buffer();
      // The row's declared cell count (postgres-protocol shows it only as this size hint).
      let count = body.ranges().size_hint().0 as u16;
      check_cells(cells, count)?;
      let width = c.row_width(count)?;
      let r = match c.current.as_mut() {
        Some(r) => r,
        None => {
          let r = c.start_statement(Vec::new());
          r.width = width;
          r
        }
      };
      r.rows.try_reserve(cells.len()).map_err(|_| ReadError::NoMemory(r.rows.len()).into_core())?;
      r.rows.extend_from_slice(cells);
      r.row_count += 1;
    }
    Message::RowDescription(body) => {
      let mut fields = Vec::new();
      let mut it = body.fields();
      loop {
        match it.next() {
          Ok(Some(f)) => fields.push(Field { name: f.name().to_string(), type_oid: f.type_oid() }),
          Ok(None) => break,
          Err(e) => return Err(malformed(format!("a malformed RowDescription: {e}"))),
        }
      }
      c.expect = Expect::Cells(fields.len() as u16);
      c.start_statement(fields);
    }
    Message::NoData => c.expect = Expect::NoRows,
    Message::BindComplete => {
      if matches!(c.expect, Expect::Nothing) {
        c.expect = Expect::Bound;
      }
    }
    Message::CommandComplete(body) => {
      let tag = body.tag().unwrap_or("").to_string();
      c.finish_statement(tag);
    }
    Message::EmptyQueryResponse => c.finish_statement(String::new()),
    Message::ErrorResponse(body) => {
      let db = parse_db_error(&mut body.fields());
      c.expect = Expect::Nothing;
      // FATAL errors (admin shutdown, terminated backend) end the session.
      let fatal = db.severity == "FATAL" || db.severity == "PANIC";
      if c.error.is_none() {
        c.error = Some(if db.code.is_empty() {
          malformed(without_sqlstate(&db))
        } else {
          CoreError::Db(Box::new(db.clone()))
        });
      }
      if fatal {
        let why =
          if db.code.is_empty() { without_sqlstate(&db) } else { format!("{} ({})", db.message, db.code) };
        let lost = CoreError::ConnectionLost(format!("connection lost: {why}"));
        // Closed before the reply goes out: its callback may hand the connection back to the
        // pool, which must then discard it, not lend it again.
        state.fatal.store(true, Ordering::Release);
        state.closed.store(true, Ordering::Release);
        if let Some(reply) = pop(pending) {
          state.answered_one();
          reply.send(Err(lost.clone()));
        }
        return Err(lost);
      }
      c.current = None;
    }
    Message::ReadyForQuery(body) => {
      c.expect = Expect::Nothing;
      c.fed.answered();
      state.tx_status.store(body.status(), Ordering::Release);
      state.made_progress();
      let done = c.take();
      let Some(reply) = pop(pending) else {
        return Err(CoreError::Protocol("protocol error: ReadyForQuery without a pending request".into()));
      };
      state.answered_one();
      reply.send(match done.error {
        Some(CoreError::Db(mut db)) if !done.notices.is_empty() => {
          db.notices = done.notices;
          Err(CoreError::Db(db))
        }
        Some(e) => Err(e),
        None => Ok(Response { results: done.results, notices: done.notices }),
      });
    }
    Message::ParseComplete
    | Message::CloseComplete
    | Message::PortalSuspended
    | Message::ParameterDescription(_)
    | Message::ParameterStatus(_) => {}
    Message::NotificationResponse(body) => {
      if let Some(tx) = state.notifications.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        // The session's client_encoding is UTF8, so both are valid UTF-8.
        let _ = tx.send(Ok(super::Notification {
          process_id: body.process_id(),
          channel: body.channel().unwrap_or_default().to_string(),
          payload: body.message().unwrap_or_default().to_string(),
        }));
      }
    }
    Message::NoticeResponse(body) => {
      if c.notices.len() < MAX_NOTICE_BYTES {
        super::notices::append_notice(&mut c.notices, &mut body.fields())
          .map_err(|e| malformed(format!("a malformed NoticeResponse: {e}")))?;
      }
    }
    Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
      return Err(CoreError::Protocol(
        "COPY cannot run through query(): use copyFrom() (COPY ... FROM STDIN) or copyTo() (COPY ... TO STDOUT)"
          .into(),
      ));
    }
    _ => return Err(CoreError::Protocol("protocol error: unexpected message from the server".into())),
  }
  Ok(())
}

pub(super) fn malformed(what: String) -> CoreError {
  CoreError::Protocol(format!("protocol error: {what}"))
}

/// Checks a DataRow's cells against its own bytes: `count` cells, each NULL (-1) or a length
/// that stays inside the row, and nothing after the last one. JavaScript then reads cells
/// without bounds checks of its own that could loop to a claimed end.
#[inline]
pub(super) fn check_cells(cells: &[u8], count: u16) -> CoreResult<()> {
  let mut at = 0usize;
  for _ in 0..count {
    let Some(&[a, b, c, d]) = cells.get(at..at + 4) else {
      return Err(malformed("a DataRow that ends inside a cell length".into()));
    };
    at += 4;
    let len = i32::from_be_bytes([a, b, c, d]);
    if len >= 0 {
      at = at.saturating_add(len as usize);
      if at > cells.len() {
        return Err(malformed(format!("a DataRow cell of {len} bytes that runs past the end of its row")));
      }
    } else if len != -1 {
      return Err(malformed(format!("a DataRow cell length of {len}")));
    }
  }
  if at != cells.len() {
    return Err(malformed(format!("{} bytes after the last cell of a DataRow", cells.len() - at)));
  }
  Ok(())
}

/// The columns of a cached statement for its rows (Bind/Execute sends no RowDescription): the
/// rows must be as wide as the cache says, or the server broke the protocol.
pub(crate) fn cached_columns(result: &mut QueryResult, fields: Arc<Vec<Field>>) -> CoreResult<()> {
  if result.row_count > 0 && usize::from(result.width) != fields.len() {
    return Err(malformed(format!(
      "rows of {} cells for a prepared statement of {} columns",
      result.width,
      fields.len()
    )));
  }
  result.fields = fields;
  Ok(())
}

pub(super) fn pop(pending: &Mutex<Pending>) -> Option<Reply> {
  pending.lock().unwrap_or_else(|e| e.into_inner()).replies.pop_front()
}
