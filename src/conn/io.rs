//! The task that owns a connection's socket. A writer half sends requests in order; a reader
//! half answers the oldest pending request at each ReadyForQuery. Reading and writing run
//! concurrently so a large request never deadlocks against a large result.
//!
//! Requests are recorded and their bytes queued under one lock (`Pending`), so the order on the
//! wire is the order of the replies. On a plain socket the sender writes the bytes itself when
//! nothing is queued ahead of them (see `Shared::enqueue`); the writer task sends the rest.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use super::startup::{parse_db_error, read_message};
use super::transport::{Reader, Writer};
use super::{ConnState, Field, QueryResult, Reply, Response};
use crate::error::{CoreError, CoreResult};

/// The replies owed for requests sent or queued, oldest first, and the bytes not yet written.
pub(crate) struct Pending {
  pub(crate) replies: VecDeque<Reply>,
  pub(crate) closed: Option<CoreError>,
  pub(crate) unsent: BytesMut,
  /// The writer task is writing bytes taken from `unsent`: nobody else may write meanwhile.
  pub(crate) writing: bool,
  /// The connection's handle is gone: say goodbye once everything queued is written.
  pub(crate) hung_up: bool,
}

impl Pending {
  pub(crate) fn new() -> Pending {
    Pending {
      replies: VecDeque::new(),
      closed: None,
      unsent: BytesMut::new(),
      writing: false,
      hung_up: false,
    }
  }
}

pub(crate) async fn run(reader: Reader, writer: Writer, state: Arc<ConnState>, pending: Arc<Mutex<Pending>>) {
  let _alive = crate::shutdown::SocketGuard::hold();
  let mut killed = false;
  let failure = tokio::select! {
    r = write_loop(writer, &pending, &state) => r.err(),
    r = read_loop(reader, &pending, &state) => Some(r),
    _ = state.kill.notified() => {
      killed = true;
      Some(CoreError::ConnectionLost("connection lost: the server stopped answering".into()))
    }
  };
  state.closed.store(true, Ordering::Release);
  let err =
    failure.unwrap_or_else(|| CoreError::ConnectionLost("connection lost: the connection was closed".into()));
  // Requests queued behind a stalled one never ran: to their callers it is a wait that timed out.
  let queued_err = CoreError::PoolTimeout(
    "timed out waiting behind a query on a connection that stopped answering; the connection was closed"
      .into(),
  );
  let drained: Vec<Reply> = {
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    p.closed = Some(err.clone());
    p.unsent.clear();
    p.replies.drain(..).collect()
  };
  for (i, reply) in drained.into_iter().enumerate() {
    state.answered_one();
    reply.send(Err(if killed && i > 0 { queued_err.clone() } else { err.clone() }));
  }
}

async fn write_loop(mut writer: Writer, pending: &Mutex<Pending>, state: &ConnState) -> CoreResult<()> {
  loop {
    let batch = {
      let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
      if p.unsent.is_empty() {
        p.writing = false;
        if p.hung_up {
          break;
        }
        None
      } else {
        p.writing = true;
        Some(p.unsent.split())
      }
    };
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

/// Builds the response of the request at the head of the queue.
#[derive(Default)]
struct Collector {
  results: Vec<QueryResult>,
  current: Option<QueryResult>,
  error: Option<CoreError>,
  /// How many bytes of cells the last statement on this connection had: the same query run
  /// again then fills one allocation instead of a chain of doublings.
  cells_hint: usize,
}

impl Collector {
  fn start_statement(&mut self, fields: Vec<Field>) -> &mut QueryResult {
    let rows = Vec::with_capacity(self.cells_hint);
    self.current.insert(QueryResult { fields: Arc::new(fields), rows, ..Default::default() })
  }

  fn finish_statement(&mut self, command: String) {
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

async fn read_loop(mut rd: Reader, pending: &Mutex<Pending>, state: &ConnState) -> CoreError {
  let mut buf = BytesMut::with_capacity(64 * 1024);
  let mut c = Collector::default();
  loop {
    let msg = match read_message(&mut rd, &mut buf).await {
      Ok(m) => m,
      Err(e) => return CoreError::lost(&e),
    };
    match msg {
      Message::DataRow(body) => {
        let r = match c.current.as_mut() {
          Some(r) => r,
          None => c.start_statement(Vec::new()),
        };
        r.rows.extend_from_slice(body.buffer());
        r.row_count += 1;
      }
      Message::RowDescription(body) => {
        let mut fields = Vec::new();
        let mut it = body.fields();
        while let Ok(Some(f)) = it.next() {
          fields.push(Field { name: f.name().to_string(), type_oid: f.type_oid() });
        }
        c.start_statement(fields);
      }
      Message::CommandComplete(body) => {
        let tag = body.tag().unwrap_or("").to_string();
        c.finish_statement(tag);
      }
      Message::EmptyQueryResponse => c.finish_statement(String::new()),
      Message::ErrorResponse(body) => {
        let db = parse_db_error(&mut body.fields());
        // FATAL errors (admin shutdown, terminated backend) end the session.
        let fatal = db.severity == "FATAL" || db.severity == "PANIC";
        if c.error.is_none() {
          c.error = Some(CoreError::Db(Box::new(db.clone())));
        }
        if fatal {
          let lost = CoreError::ConnectionLost(format!("connection lost: {} ({})", db.message, db.code));
          if let Some(reply) = pop(pending) {
            state.answered_one();
            reply.send(Err(lost.clone()));
          }
          return lost;
        }
        c.current = None;
      }
      Message::ReadyForQuery(body) => {
        state.tx_status.store(body.status(), Ordering::Release);
        state.made_progress();
        let done = c.take();
        if let Some(reply) = pop(pending) {
          state.answered_one();
          reply.send(match done.error {
            Some(e) => Err(e),
            None => Ok(Response { results: done.results }),
          });
        } else {
          return CoreError::Protocol("protocol error: ReadyForQuery without a pending request".into());
        }
      }
      Message::ParseComplete
      | Message::BindComplete
      | Message::CloseComplete
      | Message::NoData
      | Message::PortalSuspended
      | Message::ParameterDescription(_)
      | Message::ParameterStatus(_)
      | Message::NoticeResponse(_)
      | Message::NotificationResponse(_) => {}
      Message::CopyInResponse(_) | Message::CopyOutResponse(_) => {
        return CoreError::Protocol(
          "COPY is not supported through onepool's query(); use a COPY-capable client".into(),
        );
      }
      _ => return CoreError::Protocol("protocol error: unexpected message from the server".into()),
    }
  }
}

fn pop(pending: &Mutex<Pending>) -> Option<Reply> {
  pending.lock().unwrap_or_else(|e| e.into_inner()).replies.pop_front()
}
