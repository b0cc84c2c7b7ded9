//! Plain objects that cross the N-API boundary, and the conversions to and from the core.

use std::collections::HashMap;
use std::future::Future;

use napi::bindgen_prelude::{Buffer, Either, Object, ToNapiValue, Utf16String};
use napi::Env;
use napi_derive::napi;

use crate::config::ConfigInput;
use crate::conn::Param;
use crate::error::{ConnectCause, CoreError, CoreResult};
use crate::pool::PoolStats;

/// Options as normalised by the JS layer (`lib/options.js`), which validates their types.
#[napi(object)]
#[derive(Default)]
pub struct PoolOptionsInput {
  pub name: Option<String>,
  pub connection_string: Option<String>,
  pub host: Option<String>,
  pub port: Option<u32>,
  pub user: Option<String>,
  pub password: Option<String>,
  pub database: Option<String>,
  pub application_name: Option<String>,
  pub ssl_mode: Option<String>,
  /// PEM of trusted CA certificates (`ssl.ca`).
  pub ssl_root_cert: Option<String>,
  pub max: Option<u32>,
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
  /// Connections of all processes on this machine to the same target together.
  pub machine_max: Option<u32>,
  /// Where the listening connection goes instead of the pool's target (`listenUrl`).
  pub listen_url: Option<String>,
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
      database: o.database,
      application_name: o.application_name,
      ssl_mode: o.ssl_mode,
      ssl_root_cert: o.ssl_root_cert,
      max: o.max,
      acquire_timeout_ms: o.acquire_timeout_ms,
      connect_timeout_ms: o.connect_timeout_ms,
      idle_timeout_ms: o.idle_timeout_ms,
      max_lifetime_sec: o.max_lifetime_sec,
      statement_timeout_ms: o.statement_timeout_ms,
      search_path: o.search_path,
      pgbouncer: o.pgbouncer,
      keepalive: o.keepalive,
      statement_cache_size: o.statement_cache_size,
      machine_max: o.machine_max,
      listen_url: o.listen_url,
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
}

impl From<&CoreError> for NativeError {
  fn from(e: &CoreError) -> NativeError {
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
      }
      CoreError::ConnectFailed { cause, .. } => {
        let (code, message) = match cause {
          ConnectCause::Os { code, message } => (code.clone(), message.clone()),
          ConnectCause::Server(db) => (db.code.clone(), db.message.clone()),
          ConnectCause::Timeout => ("ETIMEDOUT".to_string(), "connect timed out".to_string()),
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
  /// `user@host:port/database`, never with a password.
  pub target: String,
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
}

impl From<PoolStats> for PoolStatsObject {
  fn from(s: PoolStats) -> Self {
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
