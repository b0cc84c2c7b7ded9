//! COPY: `COPY ... FROM STDIN` (data in) and `COPY ... TO STDOUT` (data out), as one simple
//! Query whose reply is fed to the COPY (`stream.rs`). Data crosses untouched, whatever its
//! format (text, csv, binary).
//!
//! In: once the server said CopyInResponse, each write goes out as CopyData; a writer is held
//! back while more than a megabyte waits to be written (`Outlet::send_then`). CopyDone ends it
//! ("COPY n"); CopyFail stops it (the server rolls the COPY back and answers with an error). A
//! bad row makes the server answer with the error at once and ignore the data still coming.
//!
//! Out: CopyData is gathered into chunks for the consumer. While it holds a megabyte the
//! consumer has not taken, the connection stops reading its socket, so the server waits to write
//! (`ClientWrite`). Stopping early cancels the COPY (the protocol has no other way to end a COPY
//! TO) and reads what was already on its way, so the connection comes back clean. While the data
//! pours in, the socket is read in bulk (`Outlet::read_in_bulk`).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::sync::Notify;

use super::io::malformed;
use super::query::encode_simple;
use super::startup::{cancel, parse_db_error, without_sqlstate};
use super::stream::{keep_notice, run_of, unexpected, with_notices, Feed, Outlet, CANCEL_TIMEOUT};
use super::{CancelKey, Conn, Done, Query, QueryResult, Response};
use crate::error::{CoreError, CoreResult};

/// Data out the consumer has not taken, past which the socket is left unread. A megabyte: room
/// for a consumer's pause (a GC, a busy event loop) before the server has to wait.
const OUT_HIGH: usize = 1 << 20;
/// A consumer waiting for data gets it once this much has come, or `OUT_FLUSH` after the socket
/// ran dry: fewer, larger chunks cross into JavaScript (each crossing wakes its thread), and a
/// trickle of data still arrives.
const OUT_CHUNK: usize = 64 * 1024;
const OUT_FLUSH: Duration = Duration::from_millis(2);
/// Data in is cut into CopyData messages of at most this many bytes.
const IN_MESSAGE: usize = 256 * 1024;

/// Which way the caller expects the data to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyDirection {
  /// `COPY ... FROM STDIN`: the client sends data.
  #[default]
  In,
  /// `COPY ... TO STDOUT`: the server sends data.
  Out,
}

/// What a read of a COPY TO gives: data, or the end: the command tag ("COPY n") as a result,
/// with the COPY's notices.
pub enum Chunk {
  Data(Vec<u8>),
  End(Response),
}

pub type ChunkDone = Box<dyn FnOnce(CoreResult<Chunk>) + Send>;

/// The consumer's handle on a COPY. Dropping it stops the COPY.
pub struct Copy(Arc<CopyFeed>);

struct CopyFeed {
  me: Weak<CopyFeed>,
  outlet: Outlet,
  key: CancelKey,
  state: Mutex<State>,
  /// Signalled when the COPY ended (its ReadyForQuery, or the connection failed).
  ended: Notify,
}

/// What the server said it is doing.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
  /// Nothing yet.
  #[default]
  Waiting,
  /// Receiving data (CopyInResponse).
  In,
  /// Sending data (CopyOutResponse), until CopyDone.
  Out,
  /// Done sending data, or never was a COPY: the command's end is coming.
  Over,
}

#[derive(Default)]
struct State {
  expect: CopyDirection,
  mode: Mode,
  /// Waits for CopyInResponse (`started`).
  starter: Option<Done>,
  /// CopyDone or CopyFail went out: no more data.
  input_ended: bool,
  finisher: Option<Done>,
  /// The COPY's notices, handed on with its end (or its error).
  notices: Vec<u8>,
  out: Vec<u8>,
  reader: Option<ChunkDone>,
  paused: bool,
  /// A hand-out of what little waits is due (`flush_soon`).
  flush_armed: bool,
  tag: Option<String>,
  error: Option<CoreError>,
  /// The statement is not the COPY the caller asked for.
  misuse: Option<CoreError>,
  finished: bool,
  lost: Option<CoreError>,
  closing: bool,
  closers: Vec<Done>,
  /// A cancel is on its way: requests parked behind the COPY wait for it.
  cancelling: bool,
}

/// Callbacks to run once the state's lock is released.
#[derive(Default)]
struct Calls {
  done: Vec<(Done, CoreResult<Response>)>,
  read: Option<(ChunkDone, CoreResult<Chunk>)>,
}

impl Calls {
  fn run(self) {
    for (done, outcome) in self.done {
      done(outcome);
    }
    if let Some((read, outcome)) = self.read {
      read(outcome);
    }
  }
}

fn ack() -> CoreResult<Response> {
  Ok(Response { results: Vec::new(), notices: Vec::new() })
}

fn wrong_way(expect: CopyDirection) -> CoreError {
  CoreError::ParamInvalid(match expect {
    CopyDirection::In => {
      "copyFrom() runs COPY ... FROM STDIN; this statement sends data to the client: use copyTo()".into()
    }
    CopyDirection::Out => {
      "copyTo() runs COPY ... TO STDOUT; this statement reads data from the client: use copyFrom()".into()
    }
  })
}

fn not_a_copy(expect: CopyDirection) -> CoreError {
  CoreError::ParamInvalid(match expect {
    CopyDirection::In => "copyFrom() needs one COPY ... FROM STDIN statement".into(),
    CopyDirection::Out => "copyTo() needs one COPY ... TO STDOUT statement".into(),
  })
}

impl Conn {
  /// Starts a COPY statement (`query` has no parameters; COPY takes none).
  pub fn copy(&self, query: &Query, expect: CopyDirection) -> CoreResult<Copy> {
    let feed = Arc::new_cyclic(|me| CopyFeed {
      me: me.clone(),
      outlet: Outlet::new(&self.shared),
      key: self.cancel_key.clone(),
      state: Mutex::new(State { expect, ..Default::default() }),
      ended: Notify::new(),
    });
    self.shared.enqueue_feed(encode_simple(&query.sql), &feed.outlet, feed.clone())?;
    Ok(Copy(feed))
  }
}

impl Copy {
  /// COPY FROM: `done` once the server waits for data (or with the error that ended it).
  pub fn started(&self, done: Done) {
    let mut calls = Calls::default();
    {
      let mut st = self.0.lock();
      if st.mode == Mode::In && !st.finished {
        calls.done.push((done, ack()));
      } else if st.finished || st.closing {
        calls.done.push((done, Err(st.failure())));
      } else {
        st.starter = Some(done);
      }
    }
    calls.run();
  }

  /// COPY FROM: sends `data`. True when the caller may send more at once (`done` is dropped);
  /// else `done` comes once little enough waits to be written, or with the error that ended the
  /// COPY.
  pub fn write(&self, data: &[u8], done: Done) -> bool {
    let st = self.0.lock();
    if st.finished || st.closing || st.mode != Mode::In || st.input_ended {
      let err = if st.finished {
        st.failure()
      } else {
        CoreError::ParamInvalid("the COPY takes no more data".into())
      };
      drop(st);
      done(Err(err));
      return false;
    }
    // Under the state's lock: the COPY's end (`ready`) cannot slip in between, so no data can
    // follow the requests parked behind it.
    self.0.outlet.send_data(
      data,
      IN_MESSAGE,
      Box::new(move |sent| done(if sent { ack() } else { Err(super::closed_error()) })),
    )
  }

  /// COPY FROM: ends the data (CopyDone); `done` with the result ("COPY n") or the error.
  pub fn finish(&self, done: Done) {
    let mut calls = Calls::default();
    {
      let mut st = self.0.lock();
      if st.finished {
        calls.done.push((done, st.outcome()));
      } else if st.mode != Mode::In || st.input_ended || st.closing {
        calls.done.push((done, Err(CoreError::ParamInvalid("the COPY cannot be finished now".into()))));
      } else {
        let mut buf = BytesMut::with_capacity(5);
        frontend::copy_done(&mut buf);
        st.input_ended = true;
        st.finisher = Some(done);
        self.0.outlet.send(&buf);
      }
    }
    calls.run();
  }

  /// COPY TO: the data that came since the last read, or the end.
  pub fn read(&self, done: ChunkDone) {
    let mut calls = Calls::default();
    {
      let mut st = self.0.lock();
      if st.reader.is_some() {
        calls.read =
          Some((done, Err(CoreError::ParamInvalid("a read of this COPY is already waiting".into()))));
      } else {
        st.reader = Some(done);
        self.0.hand_out(&mut st, &mut calls, 1);
      }
    }
    calls.run();
  }

  /// Stops the COPY: CopyFail with `reason` (data in) or a cancel (data out); `done` once the
  /// connection is clean.
  pub fn close(&self, reason: &str, done: Done) {
    self.0.close(reason, Some(done));
  }
}

impl Drop for Copy {
  fn drop(&mut self) {
    self.0.close("the COPY was abandoned", None);
  }
}

impl State {
  /// The statement is not the COPY asked for: remember why, for the caller.
  fn misused(&mut self, why: fn(CopyDirection) -> CoreError) {
    if self.misuse.is_none() {
      self.misuse = Some(why(self.expect));
    }
  }

  /// Why the COPY failed (or, if it did not, that it is over).
  fn failure(&self) -> CoreError {
    if let Some(e) = self.lost.as_ref().or(self.misuse.as_ref()).or(self.error.as_ref()) {
      return e.clone();
    }
    if self.tag.is_none() {
      return not_a_copy(self.expect);
    }
    CoreError::ParamInvalid("the COPY has ended".into())
  }

  /// The COPY's result ("COPY n") with its notices, or its error (a server error with them).
  fn outcome(&mut self) -> CoreResult<Response> {
    let notices = std::mem::take(&mut self.notices);
    match (&self.tag, self.lost.is_none() && self.misuse.is_none() && self.error.is_none()) {
      (Some(tag), true) => {
        Ok(Response { results: vec![QueryResult { command: tag.clone(), ..Default::default() }], notices })
      }
      _ => Err(with_notices(self.failure(), notices)),
    }
  }
}

impl CopyFeed {
  fn lock(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Gives a waiting reader the data gathered, once there are at least `least` bytes (or the end).
  fn hand_out(&self, st: &mut State, calls: &mut Calls, least: usize) {
    if st.reader.is_none() {
      return;
    }
    let outcome = if !st.out.is_empty() && (st.out.len() >= least || st.finished || st.mode == Mode::Over) {
      let data = std::mem::take(&mut st.out);
      if st.paused {
        st.paused = false;
        self.outlet.resume_reading();
      }
      Ok(Chunk::Data(data))
    } else if st.out.is_empty() && st.finished {
      st.outcome().map(Chunk::End)
    } else {
      return;
    };
    if let Some(reader) = st.reader.take() {
      calls.read = Some((reader, outcome));
    }
  }

  fn close(&self, reason: &str, done: Option<Done>) {
    let mut calls = Calls::default();
    let cancel = {
      let mut st = self.lock();
      if st.finished {
        if let Some(done) = done {
          calls.done.push((done, ack()));
        }
        false
      } else {
        st.closing = true;
        st.out = Vec::new();
        if st.paused {
          st.paused = false;
          self.outlet.resume_reading();
        }
        if let Some(reader) = st.reader.take() {
          calls.read = Some((reader, Err(CoreError::Aborted)));
        }
        for waiter in st.starter.take().into_iter().chain(st.finisher.take()) {
          calls.done.push((waiter, Err(CoreError::Aborted)));
        }
        if let Some(done) = done {
          st.closers.push(done);
        }
        self.stop(&mut st, reason)
      }
    };
    calls.run();
    if cancel {
      self.cancel_running();
    }
  }

  /// Ends what the server is doing for a COPY being closed: CopyFail while it takes data, a
  /// cancel (true) while it sends data. Before the server has answered, nothing: the request
  /// may still be parked, and its first reply does it (`message`).
  fn stop(&self, st: &mut State, reason: &str) -> bool {
    match st.mode {
      Mode::In if !st.input_ended => {
        let mut buf = BytesMut::new();
        let _ = frontend::copy_fail(reason, &mut buf);
        st.input_ended = true;
        self.outlet.send(&buf);
        false
      }
      Mode::Out if !st.cancelling => {
        st.cancelling = true;
        true
      }
      _ => false,
    }
  }

  /// Hands a waiting reader what has come, `OUT_FLUSH` from now.
  fn flush_soon(&self) {
    let me = self.me.clone();
    crate::runtime::spawn(async move {
      tokio::time::sleep(OUT_FLUSH).await;
      let Some(me) = me.upgrade() else { return };
      let mut calls = Calls::default();
      {
        let mut st = me.lock();
        st.flush_armed = false;
        me.hand_out(&mut st, &mut calls, 1);
      }
      calls.run();
    });
  }

  /// Cancels the COPY TO, then waits for it to end; if the server does not wind it down in
  /// time, the connection is closed.
  fn cancel_running(&self) {
    let Some(me) = self.me.upgrade() else { return };
    crate::runtime::spawn(async move {
      let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel(&me.key)).await;
      let finished = {
        let mut st = me.lock();
        st.cancelling = false;
        st.finished
      };
      me.outlet.after_cancel(finished, &me.ended).await;
    });
  }
}

impl Feed for CopyFeed {
  fn message(&self, msg: Message) -> CoreResult<()> {
    let mut calls = Calls::default();
    let mut cancel = false;
    {
      let mut st = self.lock();
      match msg {
        Message::CopyInResponse(_) => {
          let again = st.mode != Mode::Waiting;
          st.mode = Mode::In;
          if again {
            st.misused(not_a_copy);
          } else if st.expect == CopyDirection::Out {
            st.misused(wrong_way);
          }
          if st.misuse.is_some() || st.closing {
            // The server now waits for data: end the COPY (it answers with an error).
            st.input_ended = false;
            self.stop(&mut st, "onepool: the COPY was stopped");
          } else if let Some(starter) = st.starter.take() {
            calls.done.push((starter, ack()));
          }
        }
        Message::CopyOutResponse(_) => {
          if st.mode != Mode::Waiting {
            st.misused(not_a_copy);
          } else if st.expect == CopyDirection::In {
            st.misused(wrong_way);
          }
          st.mode = Mode::Out;
          if st.misuse.is_some() || st.closing {
            cancel = self.stop(&mut st, "");
          } else {
            self.outlet.read_in_bulk(true);
          }
        }
        Message::CopyData(body) => {
          if st.mode == Mode::Out && !st.closing && st.misuse.is_none() {
            let data = body.data();
            if st.out.try_reserve(data.len()).is_err() {
              return Err(CoreError::ConnectionLost(format!(
                "connection closed: out of memory reading COPY data ({} bytes held)",
                st.out.len()
              )));
            }
            st.out.extend_from_slice(data);
            if st.out.len() >= OUT_HIGH && !st.paused {
              st.paused = true;
              self.outlet.pause_reading();
            }
            self.hand_out(&mut st, &mut calls, OUT_CHUNK);
          }
        }
        Message::CopyDone => {
          st.mode = Mode::Over;
          self.outlet.read_in_bulk(false);
          self.hand_out(&mut st, &mut calls, 1);
        }
        Message::CommandComplete(body) => {
          if st.mode == Mode::Waiting {
            st.misused(not_a_copy);
          }
          st.mode = Mode::Over;
          st.tag.get_or_insert_with(|| body.tag().unwrap_or("").to_string());
        }
        Message::NoticeResponse(body) => keep_notice(&mut st.notices, &body)?,
        Message::RowDescription(_) | Message::DataRow(_) | Message::NoData | Message::EmptyQueryResponse => {
          if st.mode == Mode::Waiting {
            st.misused(not_a_copy);
            st.mode = Mode::Over;
          }
        }
        Message::ErrorResponse(body) => {
          let db = parse_db_error(&mut body.fields());
          if st.error.is_none() {
            st.error = Some(if db.code.is_empty() {
              malformed(without_sqlstate(&db))
            } else {
              CoreError::Db(Box::new(db))
            });
          }
          st.mode = Mode::Over;
        }
        _ => return Err(unexpected("a COPY")),
      }
    }
    calls.run();
    if cancel {
      self.cancel_running();
    }
    Ok(())
  }

  fn take_data(&self, buf: &[u8], max: usize) -> usize {
    // The run of whole CopyData messages at the front, and the data in it.
    let mut data = 0;
    let end = run_of(buf, b'd', max, |body| {
      data += body.len();
      true
    });
    if end == 0 {
      return 0;
    }
    let mut calls = Calls::default();
    {
      let mut st = self.lock();
      if st.mode != Mode::Out {
        // Not a COPY TO being read (yet): the usual path decides.
        return 0;
      }
      if !st.closing && st.misuse.is_none() {
        if st.out.try_reserve(data).is_err() {
          // The usual path reports it, and closes the connection.
          return 0;
        }
        let mut at = 0;
        while at < end {
          let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
          st.out.extend_from_slice(&buf[at + 5..at + 1 + len]);
          at += 1 + len;
        }
        if st.out.len() >= OUT_HIGH && !st.paused {
          st.paused = true;
          self.outlet.pause_reading();
        }
        self.hand_out(&mut st, &mut calls, OUT_CHUNK);
      }
    }
    calls.run();
    end
  }

  fn caught_up(&self) {
    let mut calls = Calls::default();
    {
      let mut st = self.lock();
      self.hand_out(&mut st, &mut calls, OUT_CHUNK);
      // Less than a chunk waits: it goes out shortly unless more comes first (a slow query's
      // rows still reach the consumer; a fast COPY's go out in chunks).
      if st.reader.is_some() && !st.out.is_empty() && !st.flush_armed {
        st.flush_armed = true;
        self.flush_soon();
      }
    }
    calls.run();
  }

  fn ready(&self) -> bool {
    let mut calls = Calls::default();
    let unpark = {
      let mut st = self.lock();
      st.finished = true;
      st.mode = Mode::Over;
      self.outlet.read_in_bulk(false);
      if st.paused {
        st.paused = false;
        self.outlet.resume_reading();
      }
      if let Some(starter) = st.starter.take() {
        calls.done.push((starter, Err(st.failure())));
      }
      if let Some(finisher) = st.finisher.take() {
        calls.done.push((finisher, st.outcome()));
      }
      self.hand_out(&mut st, &mut calls, 1);
      for closer in st.closers.drain(..) {
        calls.done.push((closer, ack()));
      }
      !st.cancelling
    };
    self.ended.notify_one();
    calls.run();
    unpark
  }

  fn failed(&self, err: CoreError) {
    let mut calls = Calls::default();
    {
      let mut st = self.lock();
      st.finished = true;
      st.lost = Some(err.clone());
      self.outlet.read_in_bulk(false);
      st.out = Vec::new();
      if let Some(starter) = st.starter.take() {
        calls.done.push((starter, Err(err.clone())));
      }
      if let Some(finisher) = st.finisher.take() {
        calls.done.push((finisher, Err(err.clone())));
      }
      if let Some(reader) = st.reader.take() {
        calls.read = Some((reader, Err(err)));
      }
      for closer in st.closers.drain(..) {
        calls.done.push((closer, ack()));
      }
    }
    self.ended.notify_one();
    calls.run();
  }

  fn abandon(&self) {
    self.close("the client was released during the COPY", None);
  }
}
