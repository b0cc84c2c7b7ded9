//! Queries as the wire sees them, and the per-connection prepared-statement cache.
//!
//! Without parameters a query is one simple Query message (which may hold several statements),
//! as in node-postgres. With parameters it is Parse/Bind/Execute/Sync: parameter types are left to
//! the server (OID 0), text parameters go in text format and Buffers in binary, results come back
//! in text. A statement seen before on the same connection skips Parse (the server keeps its
//! plan); behind PgBouncer the cache is off and every statement is unnamed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

use super::{Field, Param};
use crate::error::{CoreError, CoreResult};

/// A validated query: text and parameters that can be encoded for any connection.
#[derive(Debug)]
pub struct Query {
  pub sql: String,
  pub params: Vec<Param>,
  /// The statement text's hash: the pool keeps its timings under it.
  pub statement: u64,
  /// How often it was tried again after its connection failed before it was sent.
  pub retries: std::sync::atomic::AtomicU8,
}

impl Query {
  pub fn new(sql: String, params: Vec<Param>) -> CoreResult<Arc<Query>> {
    if sql.as_bytes().contains(&0) {
      return Err(CoreError::ParamInvalid("the query text contains a NUL character".into()));
    }
    if params.len() > u16::MAX as usize {
      return Err(CoreError::ParamInvalid(format!(
        "too many parameters: {} (the protocol allows at most 65535)",
        params.len()
      )));
    }
    if let Some(i) = params.iter().position(|p| matches!(p, Param::Text(s) if s.as_bytes().contains(&0))) {
      return Err(CoreError::ParamInvalid(format!("parameter ${} contains a NUL character", i + 1)));
    }
    let statement = fnv1a(sql.as_bytes());
    Ok(Arc::new(Query { sql, params, statement, retries: std::sync::atomic::AtomicU8::new(0) }))
  }
}

fn fnv1a(bytes: &[u8]) -> u64 {
  bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub fn encode_simple(sql: &str) -> Bytes {
  let mut buf = BytesMut::with_capacity(sql.len() + 8);
  // Only fails for an interior NUL, which Query::new rejects.
  let _ = frontend::query(sql, &mut buf);
  buf.freeze()
}

pub(super) fn put_bind(statement: &str, params: &[Param], buf: &mut BytesMut) {
  let formats = params.iter().map(|p| i16::from(matches!(p, Param::Binary(_))));
  // Cannot fail: NULs were rejected and lengths fit in i32 for any value JS can hold.
  let _ = frontend::bind(
    "",
    statement,
    formats,
    params.iter(),
    |p, out| match p {
      Param::Null => Ok(IsNull::Yes),
      Param::Text(s) => {
        out.extend_from_slice(s.as_bytes());
        Ok(IsNull::No)
      }
      Param::Binary(b) => {
        out.extend_from_slice(b);
        Ok(IsNull::No)
      }
    },
    Some(0),
    buf,
  );
}

fn capacity(q: &Query) -> usize {
  q.sql.len()
    + 64
    + q.params.iter().map(|p| if let Param::Text(s) = p { s.len() + 6 } else { 16 }).sum::<usize>()
}

/// Unnamed: Parse, Bind, Describe portal, Execute, Sync — one round trip, no server state.
pub fn encode_unnamed(q: &Query) -> Bytes {
  if q.params.is_empty() {
    return encode_simple(&q.sql);
  }
  let mut buf = BytesMut::with_capacity(capacity(q));
  let _ = frontend::parse("", &q.sql, q.params.iter().map(|_| 0u32), &mut buf);
  put_bind("", &q.params, &mut buf);
  let _ = frontend::describe(b'P', "", &mut buf);
  let _ = frontend::execute("", 0, &mut buf);
  frontend::sync(&mut buf);
  buf.freeze()
}

/// First use of a cached statement: Parse it under `name` and Describe it (its columns are
/// kept), then run it.
pub fn encode_prepare(name: &str, q: &Query) -> Bytes {
  let mut buf = BytesMut::with_capacity(capacity(q));
  let _ = frontend::parse(name, &q.sql, q.params.iter().map(|_| 0u32), &mut buf);
  let _ = frontend::describe(b'S', name, &mut buf);
  put_bind(name, &q.params, &mut buf);
  let _ = frontend::execute("", 0, &mut buf);
  frontend::sync(&mut buf);
  buf.freeze()
}

/// Later uses: Bind and Execute only.
pub fn encode_bound(name: &str, q: &Query) -> Bytes {
  let mut buf = BytesMut::with_capacity(capacity(q));
  put_bind(name, &q.params, &mut buf);
  let _ = frontend::execute("", 0, &mut buf);
  frontend::sync(&mut buf);
  buf.freeze()
}

/// Close messages for statements to drop, sent in front of the next request (no Sync of their
/// own, so they never make a separate round trip or a separate response).
pub fn with_closes(names: Vec<String>, request: Bytes) -> Bytes {
  if names.is_empty() {
    return request;
  }
  let mut buf = BytesMut::with_capacity(request.len() + names.len() * 24);
  for name in &names {
    let _ = frontend::close(b'S', name, &mut buf);
  }
  buf.extend_from_slice(&request);
  buf.freeze()
}

enum Entry {
  /// Parse is on the wire; concurrent uses go unnamed meanwhile.
  Preparing,
  Ready {
    name: String,
    fields: Arc<Vec<Field>>,
  },
}

/// How to send one query on this connection.
pub enum Plan {
  Unnamed,
  Prepare(String),
  Bound(String, Arc<Vec<Field>>),
}

/// The statements prepared on one connection, by query text.
pub struct Statements {
  capacity: usize,
  next: u64,
  entries: HashMap<String, Entry>,
  /// Statements that may exist on the server but are no longer used.
  to_close: Vec<String>,
}

impl Statements {
  pub fn new(capacity: usize) -> Statements {
    Statements { capacity, next: 0, entries: HashMap::new(), to_close: Vec::new() }
  }

  pub fn plan(&mut self, sql: &str) -> Plan {
    match self.entries.get(sql) {
      Some(Entry::Ready { name, fields }) => Plan::Bound(name.clone(), fields.clone()),
      Some(Entry::Preparing) => Plan::Unnamed,
      None if self.entries.len() < self.capacity => {
        self.next += 1;
        self.entries.insert(sql.to_string(), Entry::Preparing);
        Plan::Prepare(format!("onepool_{}", self.next))
      }
      None => Plan::Unnamed,
    }
  }

  pub fn prepared(&mut self, sql: &str, name: String, fields: Arc<Vec<Field>>) {
    self.entries.insert(sql.to_string(), Entry::Ready { name, fields });
  }

  /// A statement whose Parse failed or whose plan went stale: forget it and close it on the
  /// server with the next request (closing a statement that does not exist is no error).
  pub fn discard(&mut self, sql: &str, name: String) {
    self.entries.remove(sql);
    self.to_close.push(name);
  }

  pub fn take_closes(&mut self) -> Vec<String> {
    std::mem::take(&mut self.to_close)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn plans_prepare_once_then_bind_and_respect_capacity() {
    let mut s = Statements::new(1);
    let Plan::Prepare(name) = s.plan("select $1") else { panic!("first use prepares") };
    assert!(matches!(s.plan("select $1"), Plan::Unnamed), "while preparing, others go unnamed");
    s.prepared("select $1", name.clone(), Arc::default());
    assert!(matches!(s.plan("select $1"), Plan::Bound(n, _) if n == name));
    assert!(matches!(s.plan("select $2"), Plan::Unnamed), "full: no more statements");
    s.discard("select $1", name.clone());
    assert_eq!(s.take_closes(), vec![name]);
    assert!(s.take_closes().is_empty());
    assert!(matches!(s.plan("select $2"), Plan::Prepare(_)));
  }

  #[test]
  fn rejects_nul_and_too_many_parameters() {
    assert_eq!(Query::new("select \0".into(), vec![]).unwrap_err().code(), "PARAM_INVALID");
    assert_eq!(
      Query::new("select $1".into(), vec![Param::Text("a\0b".into())]).unwrap_err().code(),
      "PARAM_INVALID"
    );
    assert_eq!(Query::new("x".into(), vec![Param::Null; 70000]).unwrap_err().code(), "PARAM_INVALID");
  }
}
