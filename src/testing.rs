//! Fakes for the core's unit tests: a server that speaks just enough of the protocol over an
//! in-memory stream, and a `Connector` that opens connections to it (failing or hanging on
//! request), so the pool, budget and sessions can be tested without a database.
//!
//! The fake server answers the startup with AuthenticationOk, BackendKeyData and ReadyForQuery,
//! then each simple query in order: `select sleep <ms>` after that many milliseconds, `select
//! flaky` after `FakeConnector::flaky_ms`, `select hang` never, anything else at once, each with
//! a CommandComplete and ReadyForQuery. (`select`: so that the pool shares them.)

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::budget::{Budget, Lease};
use crate::config::{ConfigInput, ConnSettings, PoolConfig, Target};
use crate::conn::Conn;
use crate::error::{ConnectCause, CoreError, CoreResult};
use crate::pool::{Connector, Pool};

/// Opens fake connections; counts attempts and can fail or hang chosen ones.
#[derive(Default)]
pub struct FakeConnector {
  pub attempts: AtomicUsize,
  /// 1-based attempt numbers that fail with ECONNREFUSED.
  pub fail: Mutex<Vec<usize>>,
  /// While set, new connections reach a server that never answers the startup.
  pub hang: AtomicBool,
  /// Server-side queries, in the order each fake server received them: (connection id, text).
  pub log: Arc<Mutex<Vec<(u64, String)>>>,
  /// How long the statement `flaky` takes, in milliseconds (0 at first).
  pub flaky_ms: Arc<AtomicU64>,
}

impl Connector for FakeConnector {
  fn connect<'a>(
    &'a self,
    target: &'a Target,
    settings: &'a ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> BoxFuture<'a, CoreResult<Conn>> {
    let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    let fails = self.fail.lock().unwrap().contains(&attempt);
    let hang = self.hang.load(Ordering::SeqCst);
    let log = self.log.clone();
    let flaky = self.flaky_ms.clone();
    Box::pin(async move {
      if fails {
        return Err(CoreError::ConnectFailed {
          target: target.to_string(),
          cause: ConnectCause::Os { code: "ECONNREFUSED".into(), message: "connection refused".into() },
        });
      }
      let (client, server) = tokio::io::duplex(64 * 1024);
      crate::runtime::spawn(serve(server, id, hang, log, flaky));
      Conn::over(Box::new(client), target, settings, lease, id, retire_at).await
    })
  }
}

fn message(out: &mut BytesMut, tag: u8, body: &[u8]) {
  out.put_u8(tag);
  out.put_i32(body.len() as i32 + 4);
  out.put_slice(body);
}

async fn serve(
  mut s: tokio::io::DuplexStream,
  id: u64,
  hang: bool,
  log: Arc<Mutex<Vec<(u64, String)>>>,
  flaky: Arc<AtomicU64>,
) {
  let Ok(len) = s.read_i32().await else { return };
  let mut startup = vec![0u8; len as usize - 4];
  if s.read_exact(&mut startup).await.is_err() || hang {
    // Keep the stream open without ever answering.
    std::future::pending::<()>().await;
  }
  let mut out = BytesMut::new();
  message(&mut out, b'R', &0i32.to_be_bytes());
  message(&mut out, b'K', &[(id as i32).to_be_bytes(), 7i32.to_be_bytes()].concat());
  message(&mut out, b'Z', b"I");
  if s.write_all(&out).await.is_err() {
    return;
  }
  loop {
    let Ok(tag) = s.read_u8().await else { return };
    let Ok(len) = s.read_i32().await else { return };
    let mut body = vec![0u8; len as usize - 4];
    if s.read_exact(&mut body).await.is_err() {
      return;
    }
    if tag == b'X' {
      return;
    }
    if tag != b'Q' {
      continue;
    }
    let sql = String::from_utf8_lossy(&body[..body.len().saturating_sub(1)]).into_owned();
    log.lock().unwrap().push((id, sql.clone()));
    let sql = sql.strip_prefix("select ").unwrap_or(&sql).to_string();
    if sql == "hang" {
      std::future::pending::<()>().await;
    }
    if let Some(ms) = sql.strip_prefix("sleep ").and_then(|ms| ms.parse::<u64>().ok()) {
      tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if sql == "flaky" {
      tokio::time::sleep(Duration::from_millis(flaky.load(Ordering::SeqCst))).await;
    }
    let mut out = BytesMut::new();
    if sql.is_empty() {
      message(&mut out, b'I', b"");
    } else {
      message(&mut out, b'C', b"SELECT 0\0");
    }
    message(&mut out, b'Z', b"I");
    if s.write_all(&out).await.is_err() {
      return;
    }
  }
}

/// A pool of fake connections with its own budget of `budget` connections (`None`: no limit).
pub fn fake_pool(
  max: u32,
  acquire_timeout_ms: f64,
  budget: Option<usize>,
) -> (Arc<Pool>, Arc<FakeConnector>) {
  let connector = Arc::new(FakeConnector::default());
  let budget: &'static Budget = Box::leak(Box::new(Budget::new(budget)));
  (fake_pool_in(max, acquire_timeout_ms, budget, connector.clone()), connector)
}

/// A pool of fake connections under an existing budget (several pools may share it).
pub fn fake_pool_in(
  max: u32,
  acquire_timeout_ms: f64,
  budget: &'static Budget,
  connector: Arc<FakeConnector>,
) -> Arc<Pool> {
  static NEXT: AtomicUsize = AtomicUsize::new(0);
  let cfg = PoolConfig::from_input(&ConfigInput {
    name: Some(format!("fake-{}", NEXT.fetch_add(1, Ordering::SeqCst))),
    connection_string: Some("postgres://u@fake/db".into()),
    max: Some(max),
    acquire_timeout_ms: Some(acquire_timeout_ms),
    connect_timeout_ms: Some(300.0),
    ..Default::default()
  })
  .unwrap();
  Pool::with(&cfg, connector, budget)
}

/// Runs a test body on onepool's runtime, where the connections' I/O tasks run too.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
  crate::runtime::block_on(f)
}

/// Polls `check` until it holds (a bounded wait for what other tasks do).
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
  for _ in 0..2000 {
    if check() {
      return;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
  }
  panic!("timed out waiting until {what}");
}

/// Starts a shared `pool.query()` of `sql` (no parameters); the receiver gets its outcome.
pub fn submit(
  pool: &Arc<Pool>,
  sql: &str,
) -> tokio::sync::oneshot::Receiver<CoreResult<crate::conn::Response>> {
  let (tx, rx) = tokio::sync::oneshot::channel();
  let query = crate::conn::Query::new(sql.to_string(), Vec::new()).unwrap();
  crate::route::submit_to_server(pool, query, None, Box::new(move |outcome| drop(tx.send(outcome))));
  rx
}

/// The fake connections' ids that received `sql`.
pub fn conns_that_ran(connector: &FakeConnector, sql: &str) -> Vec<u64> {
  connector.log.lock().unwrap().iter().filter(|(_, s)| s == sql).map(|(id, _)| *id).collect()
}
