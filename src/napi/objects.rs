//! Plain objects that cross the N-API boundary, and the conversions to and from the core.

use std::collections::HashMap;
use std::future::Future;

use napi::bindgen_prelude::{Buffer, Either, Object, ToNapiValue, Utf16String};
use napi::Env;
use napi_derive::napi;

use crate::cluster::{ClusterStats, HostStats};
use crate::config::ConfigInput;
use crate::conn::Param;
use crate::error::{ConnectCause, CoreError, CoreResult};

/// Options as normalised by the JS layer (`lib/options.js`), which validates their types.
#[napi(object)]
#[derive(Default)]
pub struct PoolOptionsInput {
  pub name: Option<String>,
  pub connection_string: Option<String>,
  /// One host or a comma-separated host list.
  pub host: Option<String>,
  /// One port or a comma-separated port list.
  pub port: Option<String>,
  pub user: Option<String>,
  pub password: Option<String>,
  pub database: Option<String>,
  pub application_name: Option<String>,
  pub ssl_mode: Option<String>,
  /// PEM of trusted CA certificates (`ssl.ca`).
  pub ssl_root_cert: Option<String>,
  /// PEM of the client certificate chain and its private key (`ssl.cert`, `ssl.key`).
  pub ssl_cert: Option<String>,
  pub ssl_key: Option<String>,
  /// The private key's passphrase (`ssl.passphrase`).
  pub ssl_password: Option<String>,
  /// SCRAM channel binding: `disable`, `prefer` or `require`.
  pub channel_binding: Option<String>,
  /// `postgres` (SSLRequest first) or `direct` (TLS at once, PostgreSQL 17+).
  pub ssl_negotiation: Option<String>,
  /// node-postgres's `options`: startup command-line options (`-c lock_timeout=1000`).
  pub options: Option<String>,
  pub max: Option<u32>,
  /// Idle connections are not closed for idleness below this many.
  pub min: Option<u32>,
  pub acquire_timeout_ms: Option<f64>,
  pub connect_timeout_ms: Option<f64>,
  pub idle_timeout_ms: Option<f64>,
  pub max_lifetime_sec: Option<f64>,
  pub statement_timeout_ms: Option<f64>,
  pub search_path: Option<String>,
  pub pgbouncer: Option<bool>,
  pub keepalive: Option<bool>,
  /// Prepared statements kept per connection (default 100; 0 = unnamed only).
  pub statement_cache_size: Option<u32>,
  /// Largest message accepted from the server, in bytes (default and most: 1 GiB).
  pub max_message_bytes: Option<u32>,
  /// Connections of all processes on this machine to the same target together.
  pub machine_max: Option<u32>,
  /// Where the listening connection goes instead of the pool's target (`listenUrl`).
  pub listen_url: Option<String>,
  /// libpq's `target_session_attrs`: which kind of server the pool's connections land on.
  pub target_session_attrs: Option<String>,
  /// libpq's `load_balance_hosts`: `disable` or `random`.
  pub load_balance_hosts: Option<String>,
  /// Servers only reads (`pool.replica`) go to: `host`, `host:port` or connection strings.
  pub replicas: Option<Vec<String>>,
  /// The caller's `PG*` environment variables (worker threads have their own `process.env`).
  pub env: Option<HashMap<String, String>>,
}

impl From<PoolOptionsInput> for ConfigInput {
  fn from(o: PoolOptionsInput) -> ConfigInput {
    ConfigInput {
      name: o.name,
      connection_string: o.connection_string,
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      password_provider: None,
      database: o.database,
      application_name: o.application_name,
      ssl_mode: o.ssl_mode,
      ssl_root_cert: o.ssl_root_cert,
      ssl_cert: o.ssl_cert,
      ssl_key: o.ssl_key,
      ssl_password: o.ssl_password,
      channel_binding: o.channel_binding,
      ssl_negotiation: o.ssl_negotiation,
      options: o.options,
      max: o.max,
      min: o.min,
      acquire_timeout_ms: o.acquire_timeout_ms,
      connect_timeout_ms: o.connect_timeout_ms,
      idle_timeout_ms: o.idle_timeout_ms,
      max_lifetime_sec: o.max_lifetime_sec,
      statement_timeout_ms: o.statement_timeout_ms,
      search_path: o.search_path,
      pgbouncer: o.pgbouncer,
      keepalive: o.keepalive,
      statement_cache_size: o.statement_cache_size,
      max_message_bytes: o.max_message_bytes,
      machine_max: o.machine_max,
      listen_url: o.listen_url,
      target_session_attrs: o.target_session_attrs,
      load_balance_hosts: o.load_balance_hosts,
      replicas: o.replicas.unwrap_or_default(),
      env: o.env.unwrap_or_default(),
    }
  }
}

/// Which request of which JavaScript environment (`initCompletions`) a submission is. `lone`:
/// the environment has no other request in flight, so its thread may read the reply itself.
#[napi(object)]
pub struct RequestTag {
  pub env: u32,
  pub id: u32,
  pub lone: bool,
}

/// An error as data; `lib/errors.js` turns it into an `OnepoolError`.
#[napi(object)]
#[derive(Default)]
pub struct NativeError {
  pub code: String,
  pub message: String,
  pub severity: Option<String>,
  pub detail: Option<String>,
  pub hint: Option<String>,
  pub position: Option<String>,
  pub internal_position: Option<String>,
  pub internal_query: Option<String>,
  pub r#where: Option<String>,
  pub schema: Option<String>,
  pub table: Option<String>,
  pub column: Option<String>,
  pub data_type: Option<String>,
  pub constraint: Option<String>,
  pub file: Option<String>,
  pub line: Option<String>,
  pub routine: Option<String>,
  /// For `CONNECT_FAILED`: the OS code (`ECONNREFUSED`) or the server's SQLSTATE (`28P01`).
  pub cause_code: Option<String>,
  pub cause_message: Option<String>,
  /// For `POOL_TIMEOUT`: what it waited for (`acquire`, `machineBudget`, `queued`).
  pub timeout_kind: Option<String>,
  /// The request never reached the server: it certainly did not run.
  pub not_run: Option<bool>,
  /// The notices the server sent for the request before its error (encoded as in `wire.rs`).
  pub notices: Option<Buffer>,
}

impl From<&CoreError> for NativeError {
  fn from(e: &CoreError) -> NativeError {
    if let CoreError::NotRun(inner) = e {
      return NativeError {
        message: e.to_string(),
        not_run: Some(true),
        ..NativeError::from(inner.as_ref())
      };
    }
    let mut out = NativeError { code: e.code().to_string(), message: e.to_string(), ..Default::default() };
    match e {
      CoreError::Db(db) => {
        out.severity = Some(db.severity.clone());
        out.detail = db.detail.clone();
        out.hint = db.hint.clone();
        out.position = db.position.clone();
        out.internal_position = db.internal_position.clone();
        out.internal_query = db.internal_query.clone();
        out.r#where = db.where_.clone();
        out.schema = db.schema.clone();
        out.table = db.table.clone();
        out.column = db.column.clone();
        out.data_type = db.data_type.clone();
        out.constraint = db.constraint.clone();
        out.file = db.file.clone();
        out.line = db.line.clone();
        out.routine = db.routine.clone();
        if !db.notices.is_empty() {
          out.notices = Some(db.notices.clone().into());
        }
      }
      CoreError::ConnectFailed { cause, .. } => {
        let (code, message) = match cause {
          ConnectCause::Os { code, message } => (code.clone(), message.clone()),
          ConnectCause::Server(db) => (db.code.clone(), db.message.clone()),
          ConnectCause::Timeout => ("ETIMEDOUT".to_string(), "timeout expired".to_string()),
          ConnectCause::Other(m) => ("ECONNECT".to_string(), m.clone()),
        };
        out.cause_code = Some(code);
        out.cause_message = Some(message);
      }
      CoreError::PoolTimeout(kind, _) => out.timeout_kind = Some(kind.as_str().to_string()),
      _ => {}
    }
    out
  }
}

#[napi(object)]
pub struct PoolStatsObject {
  pub name: String,
  /// `user@host:port/database` (`user@h1:5432,h2:5433/database` for a host list, then
  /// ` replicas r1:5432` when there are replicas), never with a password.
  pub target: String,
  /// Most connections per server.
  pub max: u32,
  pub size: u32,
  pub idle: u32,
  pub in_use: u32,
  pub waiting: u32,
  pub created: f64,
  pub acquire_timeouts: f64,
  pub handles: f64,
  pub closed: bool,
  /// 1 while the pool's listening connection (`listen`) is open: counted in `size`, not in `inUse`.
  pub listening: u32,
  /// Each server: the host list's in its order, then the replicas.
  pub hosts: Vec<HostStatsObject>,
}

#[napi(object)]
pub struct HostStatsObject {
  pub host: String,
  pub port: u32,
  /// A read replica (`replicas`), not in the host list.
  pub replica: bool,
  /// `primary`, `standby`, or `unknown` before a connection told.
  pub role: String,
  pub read_only: Option<bool>,
  /// `up`, `down` (its connections could not be opened; tried again later) or `unknown`.
  pub state: String,
  pub size: u32,
  pub idle: u32,
  pub in_use: u32,
  pub waiting: u32,
  /// A standby's replication lag in milliseconds, as last checked.
  pub lag_ms: Option<f64>,
  /// Why the server is down.
  pub error: Option<String>,
}

impl From<HostStats> for HostStatsObject {
  fn from(h: HostStats) -> Self {
    HostStatsObject {
      host: h.host,
      port: u32::from(h.port),
      replica: h.replica,
      role: h.role.to_string(),
      read_only: h.read_only,
      state: h.state.to_string(),
      size: h.size as u32,
      idle: h.idle as u32,
      in_use: h.in_use as u32,
      waiting: h.waiting as u32,
      lag_ms: h.lag_ms,
      error: h.error,
    }
  }
}

impl From<ClusterStats> for PoolStatsObject {
  fn from(c: ClusterStats) -> Self {
    let s = c.pool;
    PoolStatsObject {
      name: s.name,
      target: s.target,
      max: s.max as u32,
      size: s.size as u32,
      idle: s.idle as u32,
      in_use: s.in_use as u32,
      waiting: s.waiting as u32,
      created: s.created as f64,
      acquire_timeouts: s.acquire_timeouts as f64,
      handles: s.handles as f64,
      closed: s.closed,
      listening: s.listening as u32,
      hosts: c.hosts.into_iter().map(HostStatsObject::from).collect(),
    }
  }
}

pub type ParamInput = Option<Either<String, Buffer>>;

/// The parameters of a request. Many text parameters cross as one string (`joined`) and their
/// lengths (UTF-16 units, -1 for null): converting one JS value per parameter costs several
/// N-API calls each.
pub fn request_params(
  values: Either<Vec<ParamInput>, Utf16String>,
  lengths: Option<&[i32]>,
) -> napi::Result<Vec<Param>> {
  let text = match values {
    Either::A(values) => return Ok(params(values)),
    Either::B(joined) => joined,
  };
  let lengths = lengths.unwrap_or_default();
  let mut out = Vec::with_capacity(lengths.len());
  let mut at = 0usize;
  for &len in lengths {
    if len < 0 {
      out.push(Param::Null);
      continue;
    }
    let end = at + len as usize;
    let Some(segment) = text.get(at..end) else {
      return Err(napi::Error::new(
        napi::Status::InvalidArg,
        "joined parameters are shorter than their lengths",
      ));
    };
    // Lone surrogates become U+FFFD, as Node's own UTF-8 conversion does.
    out.push(Param::Text(String::from_utf16_lossy(segment)));
    at = end;
  }
  if at != text.len() {
    return Err(napi::Error::new(
      napi::Status::InvalidArg,
      "joined parameters are longer than their lengths",
    ));
  }
  Ok(out)
}

pub fn params(input: Vec<ParamInput>) -> Vec<Param> {
  input
    .into_iter()
    .map(|p| match p {
      None => Param::Null,
      Some(Either::A(s)) => Param::Text(s),
      Some(Either::B(b)) => Param::Binary(b.to_vec()),
    })
    .collect()
}

/// A promise settled from onepool's runtime with `T` or a `NativeError`; it always settles,
/// even if the work panics.
pub fn promise<'env, T, F>(env: &'env Env, work: F) -> napi::Result<Object<'env>>
where
  T: ToNapiValue + Send + 'static,
  F: Future<Output = CoreResult<T>> + Send + 'static,
{
  let (deferred, promise) = env.create_deferred()?;
  crate::runtime::spawn_settled(
    work,
    move |out: CoreResult<T>| {
      deferred.resolve(move |_env| {
        Ok(match out {
          Ok(v) => Either::<T, NativeError>::A(v),
          Err(e) => Either::B(NativeError::from(&e)),
        })
      })
    },
    Err(CoreError::Internal("internal error in onepool (please report it)".into())),
  );
  Ok(promise)
}
