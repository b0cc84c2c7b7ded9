//! Requests that hold their connection while their reply streams: row streams (`portal`) and
//! COPY (`copy`). Both are *fed*: the I/O thread hands each message of the reply to the request
//! as it arrives (`Feed`) instead of collecting the reply whole, and the request writes more
//! messages while it runs (Execute for the next batch, CopyData, CopyDone, Sync) through its
//! `Outlet`.
//!
//! While a stream holds the connection, requests queued behind it (a client's next `query()`)
//! are *parked*: their bytes wait here, unwritten, until the stream ends. A portal without its
//! Sync, or a COPY in progress, would be broken by any other message arriving in between.
//!
//! Backpressure: a row stream asks for each batch (Execute with a row limit), so the server
//! produces nothing the consumer did not ask for. A COPY's data comes unasked: when the consumer
//! falls behind, the connection stops reading its socket (`Outlet::pause_reading`), the kernel's
//! buffers fill and the server waits to write (`ClientWrite`). COPY data going out is accepted
//! only while little is waiting to be written (`Outlet::send_then`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{
  DataRowBody, ErrorResponseBody, Message, NoticeResponseBody, RowDescriptionBody,
};
use tokio::sync::Notify;

use super::io::{check_cells, malformed, pop, Pending, MAX_NOTICE_BYTES};
use super::startup::parse_db_error;
use super::{ConnState, Field, Reply, Shared};
use crate::error::{CoreError, CoreResult};

/// A fed request's side of the I/O thread. Called on the thread that reads the socket, with no
/// connection lock held; must not block.
pub(crate) trait Feed: Send + Sync {
  /// One message of the reply (anything but ReadyForQuery and the server's asynchronous
  /// messages). An error is a protocol violation: the connection closes.
  fn message(&self, msg: Message) -> CoreResult<()>;
  /// The reply's ReadyForQuery: the server is done with the request. True when the requests
  /// parked behind it may go now; false when the feed still holds them (a cancel it sent may
  /// still be on its way) and calls `Outlet::unpark` itself later.
  fn ready(&self) -> bool;
  /// The socket has nothing more for now: data gathered for a consumer may go out now rather
  /// than wait for more.
  fn caught_up(&self) {}
  /// Takes the run of data messages (DataRow, CopyData) at the front of `buf` as raw bytes, if
  /// the feed wants them so (`Current::take_data`); returns how many bytes it took. A message it
  /// cannot vouch for (a length out of bounds, one not all in, a malformed row) it leaves, for
  /// the usual parsing to judge.
  fn take_data(&self, _buf: &[u8], _max: usize) -> usize {
    0
  }
  /// The connection failed (or was closed) before the reply was complete.
  fn failed(&self, err: CoreError);
  /// Nobody will consume the rest: end the request as soon as the protocol allows (the
  /// connection is being given back).
  fn abandon(&self);
}

/// Bytes of requests queued behind a stream, unwritten until it ends.
#[derive(Default)]
pub(crate) struct Parked {
  /// A stream holds the connection: new requests park.
  pub(crate) open: bool,
  /// Each parked request's bytes, and its stream id if it is a stream itself (which then holds
  /// the connection in turn when it goes out; its follow-ups join its bytes meanwhile).
  queue: VecDeque<(BytesMut, Option<u64>)>,
  /// How many requests are parked (none of their bytes was written).
  pub(crate) requests: usize,
}

impl Parked {
  fn push(&mut self, bytes: &[u8], stream: Option<u64>) {
    self.queue.push_back((BytesMut::from(bytes), stream));
    self.requests += 1;
  }

  /// The parked bytes of stream `id`, if it is still parked.
  fn of(&mut self, id: u64) -> Option<&mut BytesMut> {
    self.queue.iter_mut().find(|(_, s)| *s == Some(id)).map(|(b, _)| b)
  }

  pub(crate) fn clear(&mut self) {
    self.queue.clear();
    self.requests = 0;
  }
}

/// How many bytes of COPY data may wait to be written before a writer is held back.
const SEND_HIGH: usize = 1 << 20;

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// How long a cancelled stream or COPY may take to wind down before its connection is closed.
pub(crate) const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// A fed request's way to the socket: its follow-up messages go out right behind its own
/// bytes, ahead of anything parked behind it. Weak, so that a stream never keeps its
/// connection open.
pub(crate) struct Outlet {
  shared: Weak<Shared>,
  /// The stream's id in the reply queue and among the parked requests.
  id: u64,
}

impl Outlet {
  /// The end of a cancel of this outlet's statement, once the cancel went out: if its
  /// ReadyForQuery came while the cancel was on its way (`finished`; `ready` left the parked
  /// requests to us), the cancel can no longer reach them and they go out now; else the
  /// statement has `CANCEL_TIMEOUT` to end (`ended`), after which the connection is closed.
  pub(crate) async fn after_cancel(&self, finished: bool, ended: &Notify) {
    if finished {
      self.unpark();
    } else if tokio::time::timeout(CANCEL_TIMEOUT, ended.notified()).await.is_err() {
      self.kill();
    }
  }

  pub(crate) fn new(shared: &Arc<Shared>) -> Outlet {
    Outlet { shared: Arc::downgrade(shared), id: NEXT_STREAM.fetch_add(1, Ordering::Relaxed) }
  }

  /// Writes `bytes` (from the calling thread when nothing is queued, else through the writer
  /// task); while the stream itself is still parked, they join its bytes. False when the
  /// connection is closed.
  pub(crate) fn send(&self, bytes: &[u8]) -> bool {
    let Some(shared) = self.shared.upgrade() else { return false };
    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    if p.closed.is_some() {
      return false;
    }
    self.put(&shared, &mut p, bytes);
    true
  }

  /// Behind the stream's own bytes: joining them while it is parked, else to the socket.
  fn put(&self, shared: &Shared, p: &mut Pending, bytes: &[u8]) {
    match p.parked.of(self.id) {
      Some(own) => own.extend_from_slice(bytes),
      None => shared.write_locked(p, bytes),
    }
  }

  /// Whether every request ahead of this stream was answered: the backend runs this stream now,
  /// so a cancel can reach nothing else.
  pub(crate) fn at_head(&self) -> bool {
    let Some(shared) = self.shared.upgrade() else { return false };
    let p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    matches!(p.replies.front(), Some(Reply::Stream(id, _)) if *id == self.id)
  }

  /// Sends `data` as CopyData messages of at most `piece` bytes, each header and piece written
  /// straight from `data` (no copy where the socket takes them at once). True when at most
  /// `SEND_HIGH` bytes wait to be written: the caller may send more now, and `then` is dropped.
  /// Else `then(true)` comes when the writer task takes them (`then(false)` if the connection
  /// closes first).
  pub(crate) fn send_data(&self, data: &[u8], piece: usize, then: Box<dyn FnOnce(bool) + Send>) -> bool {
    let Some(shared) = self.shared.upgrade() else {
      then(false);
      return false;
    };
    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    if p.closed.is_some() {
      drop(p);
      then(false);
      return false;
    }
    for part in data.chunks(piece) {
      let mut head = [b'd', 0, 0, 0, 0];
      head[1..].copy_from_slice(&(part.len() as u32 + 4).to_be_bytes());
      match p.parked.of(self.id) {
        Some(own) => {
          own.extend_from_slice(&head);
          own.extend_from_slice(part);
        }
        None => shared.write_two_locked(&mut p, &head, part),
      }
    }
    if p.unsent.len() > SEND_HIGH {
      p.drained = Some(then);
      return false;
    }
    true
  }

  /// Lets the requests parked behind this stream go out (the next stream among them, if any,
  /// holds the connection in turn).
  pub(crate) fn unpark(&self) {
    let Some(shared) = self.shared.upgrade() else { return };
    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    if unpark_locked(&mut p) {
      drop(p);
      shared.state.wake_writer.notify_one();
    }
  }

  /// Stops reading the socket until `resume_reading`: the server then waits to write.
  pub(crate) fn pause_reading(&self) {
    if let Some(shared) = self.shared.upgrade() {
      shared.state.reading_paused.store(true, Ordering::Release);
    }
  }

  pub(crate) fn resume_reading(&self) {
    if let Some(shared) = self.shared.upgrade() {
      if shared.state.reading_paused.swap(false, Ordering::AcqRel) {
        shared.state.resumed.notify_one();
      }
    }
  }

  /// Whether the socket is read in large gulps while this stream's data pours in (a COPY TO);
  /// the I/O thread then wakes once per gulp rather than once per write of the server.
  pub(crate) fn read_in_bulk(&self, on: bool) {
    if let Some(shared) = self.shared.upgrade() {
      shared.state.bulk_reading.store(on, Ordering::Release);
    }
  }

  /// Closes the connection (a stream the server does not wind down).
  pub(crate) fn kill(&self) {
    if let Some(shared) = self.shared.upgrade() {
      shared.state.closed.store(true, Ordering::Release);
      shared.state.kill.notify_one();
    }
  }
}

impl Shared {
  /// Queues a fed request: it holds the connection from when its bytes go out until it ends.
  pub(crate) fn enqueue_feed(&self, bytes: Bytes, outlet: &Outlet, feed: Arc<dyn Feed>) -> CoreResult<()> {
    let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
    if p.closed.is_some() || p.hung_up {
      return Err(super::closed_error());
    }
    if self.state.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
      self.state.made_progress();
    }
    self.state.sent.fetch_add(1, Ordering::AcqRel);
    self.state.streams.fetch_add(1, Ordering::AcqRel);
    p.replies.push_back(Reply::Stream(outlet.id, feed));
    // The reply is read by the I/O thread, where pausing the socket works.
    if let Some(inbox) = &self.inbox {
      inbox.unwatch();
    }
    if p.parked.open {
      p.parked.push(&bytes, Some(outlet.id));
    } else {
      p.parked.open = true;
      p.unsent_requests += 1;
      p.unsent.extend_from_slice(&bytes);
      drop(p);
      self.state.wake_writer.notify_one();
    }
    Ok(())
  }

  /// Parks a request behind the stream holding the connection; false when none does.
  pub(crate) fn park(&self, p: &mut Pending, bytes: &Bytes) -> bool {
    if !p.parked.open {
      return false;
    }
    p.parked.push(bytes, None);
    true
  }

  /// `write_locked` for a message's two parts, written together.
  fn write_two_locked(&self, p: &mut Pending, head: &[u8], body: &[u8]) {
    let written = match &self.direct {
      Some(socket) if !p.writing && p.unsent.is_empty() => {
        socket.try_write_vectored(&[std::io::IoSlice::new(head), std::io::IoSlice::new(body)]).unwrap_or(0)
      }
      _ => 0,
    };
    if written < head.len() + body.len() {
      if written < head.len() {
        p.unsent.extend_from_slice(&head[written..]);
        p.unsent.extend_from_slice(body);
      } else {
        p.unsent.extend_from_slice(&body[written - head.len()..]);
      }
      self.state.wake_writer.notify_one();
    }
  }

  /// Writes from this thread when nothing is queued ahead, else hands the bytes to the writer.
  fn write_locked(&self, p: &mut Pending, bytes: &[u8]) {
    let written = match &self.direct {
      Some(socket) if !p.writing && p.unsent.is_empty() => socket.try_write(bytes).unwrap_or(0),
      _ => 0,
    };
    if written < bytes.len() {
      p.unsent.extend_from_slice(&bytes[written..]);
      self.state.wake_writer.notify_one();
    }
  }
}

impl super::Conn {
  /// Ends the streams queued on this connection, which its holder gives back without having
  /// finished them: the server stops (Close, CopyFail or a cancel) and the connection comes
  /// back clean once it has.
  pub fn end_streams(&self) {
    let feeds: Vec<Arc<dyn Feed>> = {
      let p = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
      p.replies
        .iter()
        .filter_map(|r| if let Reply::Stream(_, f) = r { Some(f.clone()) } else { None })
        .collect()
    };
    for feed in feeds {
      feed.abandon();
    }
  }
}

/// Which stream, if any, the reply being read belongs to: looked up only while a stream is
/// queued on the connection (`ConnState::streams`), once per reply.
#[derive(Default)]
pub(crate) struct Current {
  feed: Option<Arc<dyn Feed>>,
  looked: bool,
}

impl Current {
  /// Hands `msg` to the stream whose reply it is part of; gives it back when it is not (the
  /// collector then takes it), or when it concerns the connection itself (a FATAL error).
  pub(crate) fn absorb(
    &mut self,
    msg: Message,
    pending: &Mutex<Pending>,
    state: &ConnState,
  ) -> CoreResult<Option<Message>> {
    if !self.find(&msg, pending, state) {
      return Ok(Some(msg));
    }
    match msg {
      Message::ReadyForQuery(ref body) => {
        let Some(feed) = self.feed.take() else { return Ok(Some(msg)) };
        state.tx_status.store(body.status(), Ordering::Release);
        state.made_progress();
        self.answered();
        let Some(reply) = pop(pending) else {
          return Err(CoreError::Protocol("protocol error: ReadyForQuery without a pending request".into()));
        };
        state.answered_one();
        state.streams.fetch_sub(1, Ordering::AcqRel);
        drop(reply);
        if feed.ready() {
          let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
          if unpark_locked(&mut p) {
            drop(p);
            state.wake_writer.notify_one();
          }
        }
        Ok(None)
      }
      // The session ends: the collector's handling answers the stream with the loss.
      Message::ErrorResponse(ref body) if fatal(body) => Ok(Some(msg)),
      // Not part of any reply, though it comes in the middle of one (a NOTIFY for the session's
      // own LISTEN, a setting the server reports changed): the connection takes it.
      msg if asynchronous(&msg) => Ok(Some(msg)),
      msg => match &self.feed {
        Some(feed) => feed.message(msg).map(|()| None),
        None => Ok(Some(msg)),
      },
    }
  }

  /// The reply was answered: the next one may be a stream's.
  pub(crate) fn answered(&mut self) {
    self.feed = None;
    self.looked = false;
  }

  /// Hands the run of data messages at the front of `buf` (rows, COPY data) to the stream being
  /// fed, in one go: parsing each row into a `Message` (and locking the stream's state for each)
  /// costs more than copying its bytes.
  pub(crate) fn take_data(&self, buf: &mut BytesMut, max: usize) {
    if let Some(feed) = &self.feed {
      if matches!(buf.first(), Some(b'D' | b'd')) {
        let taken = feed.take_data(buf, max);
        buf.advance(taken);
      }
    }
  }

  /// The socket has nothing more for now (see `Feed::caught_up`).
  pub(crate) fn caught_up(&self) {
    if let Some(feed) = &self.feed {
      feed.caught_up();
    }
  }

  /// Whether `msg` belongs to a stream's reply (`self.feed`).
  fn find(&mut self, msg: &Message, pending: &Mutex<Pending>, state: &ConnState) -> bool {
    if self.feed.is_some() {
      return true;
    }
    if self.looked || state.streams.load(Ordering::Acquire) == 0 || asynchronous(msg) {
      return false;
    }
    self.looked = true;
    let p = pending.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(Reply::Stream(_, f)) = p.replies.front() {
      self.feed = Some(f.clone());
    }
    self.feed.is_some()
  }
}

fn fatal(body: &ErrorResponseBody) -> bool {
  let db = parse_db_error(&mut body.fields());
  db.severity == "FATAL" || db.severity == "PANIC"
}

/// The columns a RowDescription describes.
pub(crate) fn fields_of(body: &RowDescriptionBody) -> CoreResult<Vec<Field>> {
  let mut fields = Vec::new();
  let mut it = body.fields();
  loop {
    match it.next() {
      Ok(Some(f)) => fields.push(Field { name: f.name().to_string(), type_oid: f.type_oid() }),
      Ok(None) => return Ok(fields),
      Err(e) => return Err(malformed(format!("a malformed RowDescription: {e}"))),
    }
  }
}

/// A DataRow's cells, checked against its own bytes and against `width` columns (`None`: no
/// description came, which breaks the protocol).
pub(crate) fn row_cells(body: &DataRowBody, width: Option<u16>) -> CoreResult<&[u8]> {
  let cells = body.buffer();
  // The row's declared cell count (postgres-protocol shows it only as this size hint).
  let count = body.ranges().size_hint().0 as u16;
  check_cells(cells, count)?;
  match width {
    Some(n) if n == count => Ok(cells),
    Some(n) => Err(malformed(format!("a DataRow of {count} cells for a RowDescription of {n} columns"))),
    None => Err(malformed("a DataRow without a RowDescription".into())),
  }
}

/// Moves the parked requests to the bytes to write, up to and including the next stream (which
/// holds the connection in turn). True when there is something to write.
pub(crate) fn unpark_locked(p: &mut Pending) -> bool {
  p.parked.open = false;
  let mut any = false;
  while let Some((bytes, stream)) = p.parked.queue.pop_front() {
    p.parked.requests -= 1;
    p.unsent_requests += 1;
    p.unsent.extend_from_slice(&bytes);
    any = true;
    if stream.is_some() {
      p.parked.open = true;
      break;
    }
  }
  any
}

/// The whole messages tagged `tag` at the front of `buf`, as `(start, end)` of each body, while
/// `keep` accepts them; stops at anything else, at a length out of bounds, or at a message not
/// all in. Returns where the run ends.
pub(crate) fn run_of(buf: &[u8], tag: u8, max: usize, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
  let mut end = 0;
  while let Some(head) = buf.get(end..end + 5) {
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if head[0] != tag || len < 4 || len - 4 > max || buf.len() - end <= len {
      break;
    }
    if !keep(&buf[end + 5..end + 1 + len]) {
      break;
    }
    end += 1 + len;
  }
  end
}

/// Keeps a notice of a stream's reply with the others not yet handed on (up to the limit a
/// request's notices have, `io::MAX_NOTICE_BYTES`), for the consumer's client to report.
pub(crate) fn keep_notice(kept: &mut Vec<u8>, body: &NoticeResponseBody) -> CoreResult<()> {
  if kept.len() < MAX_NOTICE_BYTES {
    super::notices::append_notice(kept, &mut body.fields())
      .map_err(|e| malformed(format!("a malformed NoticeResponse: {e}")))?;
  }
  Ok(())
}

/// Attaches `notices` to the server error `err` (a failed request's notices travel with its
/// error); any other error drops them.
pub(crate) fn with_notices(err: CoreError, notices: Vec<u8>) -> CoreError {
  match err {
    CoreError::Db(mut db) if !notices.is_empty() => {
      db.notices.extend_from_slice(&notices);
      CoreError::Db(db)
    }
    other => other,
  }
}

/// Messages the server may send at any time, outside any reply. (A notice belongs to the request
/// being answered: during a stream's reply, to the stream.)
fn asynchronous(msg: &Message) -> bool {
  matches!(msg, Message::ParameterStatus(_) | Message::NotificationResponse(_))
}

/// The protocol error for a message a fed request cannot take.
pub(crate) fn unexpected(what: &str) -> CoreError {
  CoreError::Protocol(format!("protocol error: unexpected message from the server during {what}"))
}

#[cfg(test)]
mod tests {
  use super::*;

  fn unsent(p: &Pending) -> &[u8] {
    &p.unsent
  }

  #[test]
  fn parked_requests_go_out_in_order_up_to_the_next_stream() {
    let mut p = Pending::new();
    p.parked.open = true;
    p.parked.push(b"a", None);
    p.parked.push(b"S", Some(7));
    p.parked.push(b"b", None);
    assert_eq!(p.parked.requests, 3);
    assert!(unpark_locked(&mut p));
    // The stream went out with what was ahead of it and holds the connection now.
    assert_eq!(unsent(&p), b"aS");
    assert!(p.parked.open);
    assert_eq!((p.parked.requests, p.unsent_requests), (1, 2));
    assert!(unpark_locked(&mut p));
    assert_eq!(unsent(&p), b"aSb");
    assert!(!p.parked.open);
    assert_eq!(p.parked.requests, 0);
    assert!(!unpark_locked(&mut p), "nothing left to write");
  }

  #[test]
  fn follow_ups_of_a_parked_stream_join_its_own_bytes() {
    let mut p = Pending::new();
    p.parked.open = true;
    p.parked.push(b"S1", Some(3));
    p.parked.push(b"q", None);
    p.parked.of(3).expect("parked").extend_from_slice(b"+close");
    assert!(p.parked.of(4).is_none());
    assert!(unpark_locked(&mut p));
    assert_eq!(
      unsent(&p),
      b"S1+close",
      "the follow-up went right behind the stream, before the next request"
    );
    assert!(p.parked.of(3).is_none(), "written: follow-ups now go to the socket");
  }
}
