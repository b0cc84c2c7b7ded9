//! The task that owns a connection's socket. A writer half sends requests in order and records
//! each as pending; a reader half answers the oldest pending request at each ReadyForQuery.
//! Reading and writing run concurrently so a large request never deadlocks against a large result.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::startup::{parse_db_error, read_message};
use super::transport::Stream;
use super::{ConnState, Field, Outgoing, QueryResult, Reply, Response};
use crate::error::{CoreError, CoreResult};

/// The replies owed for requests on the wire, oldest first.
pub(crate) struct Pending {
  pub(crate) replies: VecDeque<Reply>,
  closed: Option<CoreError>,
}

impl Pending {
  pub(crate) fn new() -> Pending {
    Pending { replies: VecDeque::new(), closed: None }
  }
}

pub(crate) async fn run(
  stream: Box<dyn Stream>,
  mut rx: mpsc::UnboundedReceiver<Outgoing>,
  state: Arc<ConnState>,
  pending: Arc<Mutex<Pending>>,
) {
  let _alive = crate::shutdown::SocketGuard::hold();
  let (rd, wr) = tokio::io::split(stream);
  let mut killed = false;
  let failure = tokio::select! {
    r = write_loop(wr, &mut rx, &pending, &state) => r.err(),
    r = read_loop(rd, &pending, &state) => Some(r),
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
    p.replies.drain(..).collect()
  };
  // Requests still queued for writing were counted in flight by Conn::send.
  rx.close();
  let queued = std::iter::from_fn(|| rx.try_recv().ok()).map(|out| out.reply);
  for (i, reply) in drained.into_iter().chain(queued).enumerate() {
    state.in_flight.fetch_sub(1, Ordering::AcqRel);
    reply.send(Err(if killed && i > 0 { queued_err.clone() } else { err.clone() }));
  }
}

async fn write_loop(
  mut wr: WriteHalf<Box<dyn Stream>>,
  rx: &mut mpsc::UnboundedReceiver<Outgoing>,
  pending: &Mutex<Pending>,
  state: &ConnState,
) -> CoreResult<()> {
  let mut batch = BytesMut::new();
  while let Some(first) = rx.recv().await {
    batch.clear();
    let mut next = Some(first);
    // Coalesce whatever is already queued into one write.
    while let Some(out) = next.take() {
      {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(err) = &p.closed {
          state.in_flight.fetch_sub(1, Ordering::AcqRel);
          out.reply.send(Err(err.clone()));
        } else {
          p.replies.push_back(out.reply);
          batch.extend_from_slice(&out.bytes);
        }
      }
      if batch.len() < 64 * 1024 {
        next = rx.try_recv().ok();
      }
    }
    if !batch.is_empty() {
      wr.write_all(&batch).await.map_err(|e| CoreError::lost(&e))?;
    }
  }
  // The handle was dropped: say goodbye properly so the server does not log a lost client.
  let mut bye = BytesMut::new();
  frontend::terminate(&mut bye);
  let _ = wr.write_all(&bye).await;
  let _ = wr.shutdown().await;
  Ok(())
}

/// Builds the response of the request at the head of the queue.
#[derive(Default)]
struct Collector {
  results: Vec<QueryResult>,
  current: Option<QueryResult>,
  error: Option<CoreError>,
}

impl Collector {
  fn finish_statement(&mut self, command: String) {
    let mut r = self.current.take().unwrap_or_default();
    r.command = command;
    self.results.push(r);
  }
}

async fn read_loop(
  mut rd: ReadHalf<Box<dyn Stream>>,
  pending: &Mutex<Pending>,
  state: &ConnState,
) -> CoreError {
  let mut buf = BytesMut::with_capacity(64 * 1024);
  let mut c = Collector::default();
  loop {
    let msg = match read_message(&mut rd, &mut buf).await {
      Ok(m) => m,
      Err(e) => return CoreError::lost(&e),
    };
    match msg {
      Message::DataRow(body) => {
        let r = c.current.get_or_insert_with(QueryResult::default);
        r.rows.extend_from_slice(body.buffer());
        r.row_count += 1;
      }
      Message::RowDescription(body) => {
        let mut fields = Vec::new();
        let mut it = body.fields();
        while let Ok(Some(f)) = it.next() {
          fields.push(Field { name: f.name().to_string(), type_oid: f.type_oid() });
        }
        c.current = Some(QueryResult { fields, ..Default::default() });
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
            state.in_flight.fetch_sub(1, Ordering::AcqRel);
            reply.send(Err(lost.clone()));
          }
          return lost;
        }
        c.current = None;
      }
      Message::ReadyForQuery(body) => {
        state.tx_status.store(body.status(), Ordering::Release);
        state.made_progress();
        let done = std::mem::take(&mut c);
        if let Some(reply) = pop(pending) {
          state.in_flight.fetch_sub(1, Ordering::AcqRel);
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
