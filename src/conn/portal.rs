//! Row streams (`pool.stream()`, cursors): a statement's rows a batch at a time, through the
//! unnamed portal of the extended protocol with its Sync held off.
//!
//! Parse, Bind, Describe and Execute(batch) go out with a Flush instead of a Sync; the server
//! sends one batch of rows and PortalSuspended, and the portal stays open because no Sync ended
//! the implicit transaction. Each further batch is one Execute(batch) + Flush, sent only when
//! the consumer wants it (with `prefetch`, while fewer than two batches wait for it, so the
//! server works while JavaScript decodes). The server never runs far ahead of the consumer: a
//! slow consumer leaves the backend waiting for the next Execute, with at most two batches
//! ready here. At the end (or on close: Close + Sync) the Sync goes out and its ReadyForQuery
//! answers the stream.
//!
//! Why not `DECLARE ... CURSOR` + `FETCH`: that works only inside a transaction block, and
//! costs a statement per batch. The portal works outside transactions too, inside one it
//! leaves the transaction alone (no BEGIN of ours), and behind PgBouncer in transaction mode it
//! keeps its server connection: PgBouncer hands a server connection back only at a
//! ReadyForQuery that says idle, and none comes before the Sync.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::sync::Notify;

use super::io::check_cells;
use super::io::malformed;
use super::query::put_bind;
use super::startup::{cancel, parse_db_error, without_sqlstate};
use super::stream::{
  fields_of, keep_notice, row_cells, run_of, unexpected, with_notices, Feed, Outlet, CANCEL_TIMEOUT,
};
use super::{CancelKey, Conn, Done, Field, Query, QueryResult, Response};
use crate::error::{CoreError, CoreResult};

/// With prefetch, batches kept ready for the consumer. Two, so that the server works on the next
/// batch while one waits and JavaScript decodes another: with one, the server waits for every
/// Execute, and each batch costs the thread wake-ups between the server, the I/O thread and
/// JavaScript. At most this many batches wait here, and one is in JavaScript.
const PREFETCH: usize = 2;

/// The consumer's handle on a row stream. Dropping it closes the stream.
pub struct RowStream(Arc<Portal>);

struct Portal {
  outlet: Outlet,
  key: CancelKey,
  state: Mutex<State>,
  /// Signalled when the stream ended (its ReadyForQuery, or the connection failed).
  ended: Notify,
}

#[derive(Default)]
struct State {
  fields: Arc<Vec<Field>>,
  /// Cells per row, once the portal is described.
  width: Option<u16>,
  /// The rows of the Execute in flight.
  filling: Vec<u8>,
  filling_rows: u32,
  /// Rows the portal returned so far, over all its Executes.
  total_rows: u64,
  /// Batches the consumer has not taken yet, oldest first, each with the notices that came
  /// before it.
  ready: VecDeque<Response>,
  /// Notices not yet handed on with a batch.
  notices: Vec<u8>,
  /// Rows per Execute.
  batch: i32,
  prefetch: bool,
  executing: bool,
  /// The portal ran to its end: its command tag.
  tag: Option<String>,
  /// The last rows, with the tag: handed out once the ReadyForQuery came, so that the
  /// connection is clean by the time the consumer hears of the end.
  last: Option<Response>,
  error: Option<CoreError>,
  /// The statement turned out to be a COPY, which a row stream cannot run.
  copy: bool,
  sync_sent: bool,
  /// The ReadyForQuery came, or the connection failed (`lost`).
  finished: bool,
  lost: Option<CoreError>,
  waiter: Option<Done>,
  closing: bool,
  closers: Vec<Done>,
  /// A cancel is on its way: requests parked behind the stream wait for it.
  cancelling: bool,
}

/// Callbacks to run once the state's lock is released.
#[derive(Default)]
struct Calls(Vec<(Done, CoreResult<Response>)>);

impl Calls {
  fn push(&mut self, done: Done, outcome: CoreResult<Response>) {
    self.0.push((done, outcome));
  }

  fn run(self) {
    for (done, outcome) in self.0 {
      done(outcome);
    }
  }
}

fn nothing() -> CoreResult<Response> {
  Ok(Response { results: Vec::new(), notices: Vec::new() })
}

impl Conn {
  /// Starts streaming `query`'s rows, at most `batch` rows per Execute. With `prefetch` the next
  /// batch is asked for as soon as the consumer takes one; without, only when it asks.
  pub fn stream(&self, query: &Query, batch: u32, prefetch: bool) -> CoreResult<RowStream> {
    let batch = batch.clamp(1, i32::MAX as u32) as i32;
    let mut buf = BytesMut::with_capacity(query.sql.len() + 64);
    // Cannot fail: Query::new rejected NULs and too many parameters.
    let _ = frontend::parse("", &query.sql, query.params.iter().map(|_| 0u32), &mut buf);
    put_bind("", &query.params, &mut buf);
    let _ = frontend::describe(b'P', "", &mut buf);
    let _ = frontend::execute("", batch, &mut buf);
    frontend::flush(&mut buf);
    let portal = Arc::new(Portal {
      outlet: Outlet::new(&self.shared),
      key: self.cancel_key.clone(),
      state: Mutex::new(State { batch, prefetch, executing: true, ..Default::default() }),
      ended: Notify::new(),
    });
    self.shared.enqueue_feed(buf.freeze(), &portal.outlet, portal.clone())?;
    Ok(RowStream(portal))
  }
}

impl RowStream {
  /// The next batch of at most `rows` rows, as a one-statement response: a batch with more to
  /// come has rows and an empty command tag; the last one has the statement's tag (or no rows,
  /// for an empty query). After the last, an empty last batch again.
  pub fn next(&self, rows: u32, done: Done) {
    let mut calls = Calls::default();
    {
      let mut st = self.0.lock();
      st.batch = rows.clamp(1, i32::MAX as u32) as i32;
      if st.closing {
        calls.push(done, Err(CoreError::ParamInvalid("the stream was closed".into())));
      } else if st.waiter.is_some() {
        calls.push(done, Err(CoreError::ParamInvalid("a batch of this stream is already being read".into())));
      } else {
        st.waiter = Some(done);
        deliver(&mut st, &mut calls);
        self.0.fetch_more(&mut st);
      }
    }
    calls.run();
  }

  /// Ends the stream: the portal is closed and the connection is clean when `done` is called.
  /// `abort` also cancels a batch the server is still computing.
  pub fn close(&self, abort: bool, done: Done) {
    let cancel = self.0.close(Some(done), abort);
    if cancel {
      self.0.clone().cancel_running();
    }
  }
}

impl Drop for RowStream {
  fn drop(&mut self) {
    self.0.close(None, false);
  }
}

/// Hands the waiting consumer the next batch, or the end.
fn deliver(st: &mut State, calls: &mut Calls) {
  if st.waiter.is_none() {
    return;
  }
  let outcome = match st.ready.pop_front() {
    Some(batch) => Ok(batch),
    None if st.finished => terminal(st),
    None => return,
  };
  if let Some(waiter) = st.waiter.take() {
    calls.push(waiter, outcome);
  }
}

/// How the stream ended, once every batch was taken (with the notices not handed on yet).
fn terminal(st: &mut State) -> CoreResult<Response> {
  if let Some(e) = &st.lost {
    return Err(e.clone());
  }
  let notices = std::mem::take(&mut st.notices);
  if let Some(e) = &st.error {
    return Err(with_notices(e.clone(), notices));
  }
  let end = QueryResult {
    fields: st.fields.clone(),
    width: st.width.unwrap_or(0),
    command: st.tag.clone().unwrap_or_default(),
    ..Default::default()
  };
  Ok(Response { results: vec![end], notices })
}

impl Portal {
  fn lock(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// The rows collected so far, as a batch, with the notices that came before them.
  fn take_batch(st: &mut State, command: String) -> Response {
    let len = st.filling.len();
    let batch = QueryResult {
      fields: st.fields.clone(),
      rows: std::mem::replace(&mut st.filling, Vec::with_capacity(len)),
      row_count: std::mem::take(&mut st.filling_rows),
      width: st.width.unwrap_or(0),
      command,
    };
    Response { results: vec![batch], notices: std::mem::take(&mut st.notices) }
  }

  /// Asks for the next batch when nothing is in flight and the consumer waits for one, or (with
  /// prefetch) fewer than `PREFETCH` batches wait for it.
  fn fetch_more(&self, st: &mut State) {
    let wanted =
      if st.prefetch { st.ready.len() < PREFETCH } else { st.waiter.is_some() && st.ready.is_empty() };
    if !wanted || st.executing || st.closing || st.sync_sent {
      return;
    }
    if st.tag.is_some() || st.error.is_some() {
      return;
    }
    let mut buf = BytesMut::with_capacity(24);
    let _ = frontend::execute("", st.batch, &mut buf);
    frontend::flush(&mut buf);
    st.executing = self.outlet.send(&buf);
  }

  /// Ends the portal and the implicit transaction: the server answers with ReadyForQuery.
  fn sync(&self, st: &mut State, close: bool) {
    if st.sync_sent {
      return;
    }
    let mut buf = BytesMut::with_capacity(16);
    if close {
      let _ = frontend::close(b'P', "", &mut buf);
    }
    frontend::sync(&mut buf);
    st.sync_sent = true;
    self.outlet.send(&buf);
  }

  /// Closes the stream; true when the caller should cancel the batch still running.
  fn close(&self, done: Option<Done>, abort: bool) -> bool {
    let mut calls = Calls::default();
    let cancel = {
      let mut st = self.lock();
      if st.finished {
        if let Some(done) = done {
          calls.push(done, nothing());
        }
        false
      } else {
        st.closing = true;
        st.ready.clear();
        st.last = None;
        st.filling = Vec::new();
        st.filling_rows = 0;
        if let Some(waiter) = st.waiter.take() {
          calls.push(waiter, Err(CoreError::Aborted));
        }
        if let Some(done) = done {
          st.closers.push(done);
        }
        // Pipelined behind the Execute in flight (if any), or joining the stream's own bytes
        // while it is still parked.
        self.sync(&mut st, true);
        let cancel = abort && st.executing && !st.cancelling;
        st.cancelling |= cancel;
        cancel
      }
    };
    calls.run();
    cancel
  }

  /// Cancels the batch the server is computing, then waits for the stream to end; if the
  /// server does not wind it down in time (a stalled network), the connection is closed.
  fn cancel_running(self: Arc<Self>) {
    crate::runtime::spawn(async move {
      // A CancelRequest stops whatever the backend runs: wait until that is this stream (the
      // requests ahead of it answered), which is rare and short, so polling does.
      let ahead = async {
        while !self.outlet.at_head() && !self.lock().finished {
          tokio::time::sleep(Duration::from_millis(1)).await;
        }
      };
      let reached = tokio::time::timeout(CANCEL_TIMEOUT, ahead).await.is_ok();
      if reached && self.lock().executing {
        let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel(&self.key)).await;
      }
      let finished = {
        let mut st = self.lock();
        st.cancelling = false;
        st.finished
      };
      self.outlet.after_cancel(finished, &self.ended).await;
    });
  }
}

impl Feed for Portal {
  fn message(&self, msg: Message) -> CoreResult<()> {
    let mut calls = Calls::default();
    {
      let mut st = self.lock();
      match msg {
        Message::ParseComplete
        | Message::BindComplete
        | Message::CloseComplete
        | Message::ParameterDescription(_)
        | Message::CopyData(_)
        | Message::CopyDone => {}
        Message::NoticeResponse(body) => keep_notice(&mut st.notices, &body)?,
        Message::RowDescription(body) => {
          let fields = fields_of(&body)?;
          st.width = Some(fields.len() as u16);
          st.fields = Arc::new(fields);
        }
        Message::NoData => st.width = Some(0),
        Message::DataRow(body) => {
          if !st.closing && !st.copy {
            let cells = row_cells(&body, st.width)?;
            let had = st.filling.len();
            if st.filling.try_reserve(cells.len()).is_err() {
              return Err(CoreError::ConnectionLost(format!(
                "connection closed: out of memory reading a batch of rows ({had} bytes held)"
              )));
            }
            st.filling.extend_from_slice(cells);
            st.filling_rows += 1;
            st.total_rows += 1;
          }
        }
        Message::PortalSuspended => {
          st.executing = false;
          if !st.closing {
            let batch = Portal::take_batch(&mut st, String::new());
            st.ready.push_back(batch);
            deliver(&mut st, &mut calls);
            self.fetch_more(&mut st);
          }
        }
        Message::CommandComplete(body) => {
          let mut tag = body.tag().unwrap_or("").to_string();
          // A SELECT's tag counts the rows of the last Execute only: the stream's are all of them.
          if tag.starts_with("SELECT ") {
            tag = format!("SELECT {}", st.total_rows);
          }
          self.completed(&mut st, tag);
        }
        Message::EmptyQueryResponse => self.completed(&mut st, String::new()),
        Message::ErrorResponse(body) => {
          let db = parse_db_error(&mut body.fields());
          st.executing = false;
          st.filling.clear();
          st.filling_rows = 0;
          if st.error.is_none() {
            st.error = Some(if db.code.is_empty() {
              malformed(without_sqlstate(&db))
            } else {
              CoreError::Db(Box::new(db))
            });
          }
          self.sync(&mut st, false);
        }
        Message::CopyInResponse(_) => {
          // The server now waits for data: end the COPY (it answers with an error).
          st.copy = true;
          let mut buf = BytesMut::new();
          let _ = frontend::copy_fail("onepool: a COPY statement cannot run as a row stream", &mut buf);
          self.outlet.send(&buf);
        }
        Message::CopyOutResponse(_) => st.copy = true,
        _ => return Err(unexpected("a row stream")),
      }
    }
    calls.run();
    Ok(())
  }

  fn take_data(&self, buf: &[u8], max: usize) -> usize {
    let mut st = self.lock();
    let Some(width) = st.width else { return 0 };
    if st.closing || st.copy {
      return 0;
    }
    let st = &mut *st;
    // Each row as `absorb` checks it: its declared cells, within its own bytes and as many as
    // the description's columns. Anything else is left for the usual path to report.
    run_of(buf, b'D', max, |body| {
      let Some((count, cells)) = body.split_first_chunk::<2>() else { return false };
      if u16::from_be_bytes(*count) != width || check_cells(cells, width).is_err() {
        return false;
      }
      if st.filling.try_reserve(cells.len()).is_err() {
        return false;
      }
      st.filling.extend_from_slice(cells);
      st.filling_rows += 1;
      st.total_rows += 1;
      true
    })
  }

  fn ready(&self) -> bool {
    let mut calls = Calls::default();
    let unpark = {
      let mut st = self.lock();
      st.finished = true;
      st.executing = false;
      if st.copy {
        st.error = Some(CoreError::ParamInvalid(
          "a COPY statement cannot be streamed as rows: use copyTo() (COPY ... TO STDOUT) or copyFrom() (COPY ... FROM STDIN)"
            .into(),
        ));
      }
      if st.error.is_none() {
        if let Some(mut last) = st.last.take() {
          // Notices after the last rows (at the implicit COMMIT) go with them.
          let late = std::mem::take(&mut st.notices);
          last.notices.extend_from_slice(&late);
          st.ready.push_back(last);
        }
      }
      deliver(&mut st, &mut calls);
      for closer in st.closers.drain(..) {
        calls.push(closer, nothing());
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
      st.executing = false;
      st.lost = Some(err);
      deliver(&mut st, &mut calls);
      for closer in st.closers.drain(..) {
        calls.push(closer, nothing());
      }
    }
    self.ended.notify_one();
    calls.run();
  }

  fn abandon(&self) {
    self.close(None, false);
  }
}

impl Portal {
  /// The portal ran to its end (or the text was empty): the last rows wait for the Sync's
  /// ReadyForQuery.
  fn completed(&self, st: &mut State, tag: String) {
    st.executing = false;
    if !st.closing && !st.copy {
      st.last = Some(Portal::take_batch(st, tag.clone()));
    }
    st.tag = Some(tag);
    self.sync(st, false);
  }
}
