//! Options and connection strings → a validated `PoolConfig`.
//!
//! Precedence follows node-postgres so that switching is one import: values in the connection
//! string win over explicit `host`/`user`/... options, which win over `PG*` environment variables,
//! which win over defaults. Pool options given explicitly win over Prisma-style URL parameters.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{CoreError, CoreResult};

/// A password that never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("***")
  }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
  Tcp(String),
  /// Directory holding the server's `.s.PGSQL.<port>` socket.
  Unix(PathBuf),
}

impl fmt::Display for Host {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Host::Tcp(h) => f.write_str(h),
      Host::Unix(p) => write!(f, "{}", p.display()),
    }
  }
}

/// What makes two pools "the same database": part of the registry key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
  pub host: Host,
  pub port: u16,
  pub database: String,
  pub user: String,
}

impl fmt::Display for Target {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.database)
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
  Disable,
  Prefer,
  Require,
  VerifyCa,
  VerifyFull,
}

/// How each new connection is opened. May change live under the same identity.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSettings {
  pub password: Option<Secret>,
  pub application_name: String,
  pub connect_timeout: Duration,
  pub ssl_mode: SslMode,
  /// PEM of the CA(s) that verify-ca / verify-full trust; `None` = the public web roots.
  pub ssl_root_cert: Option<String>,
  pub search_path: Option<String>,
  /// The schema the user asked for (URL `schema` or `searchPath`), also when not applied.
  pub schema: Option<String>,
  pub statement_timeout: Option<Duration>,
  pub keepalive: bool,
  /// Prepared statements kept per connection; 0 (always behind PgBouncer) = unnamed only.
  pub statement_cache_size: usize,
}

/// How the pool behaves. May change live under the same identity.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
  pub max: usize,
  pub acquire_timeout: Duration,
  pub idle_timeout: Option<Duration>,
  pub max_lifetime: Option<Duration>,
  /// Idle connections older than this are pinged before they are handed out.
  pub ping_after_idle: Duration,
  /// All processes of this machine on the same target together (`machineMax`).
  pub machine_max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
  pub name: String,
  pub target: Target,
  pub conn: ConnSettings,
  pub pool: PoolSettings,
  pub pgbouncer: bool,
}

/// Everything JavaScript may pass; `None` means "not given". Types are already checked in JS.
#[derive(Debug, Default, Clone)]
pub struct ConfigInput {
  pub name: Option<String>,
  pub connection_string: Option<String>,
  pub host: Option<String>,
  pub port: Option<u32>,
  pub user: Option<String>,
  pub password: Option<String>,
  pub database: Option<String>,
  pub application_name: Option<String>,
  pub ssl_mode: Option<String>,
  /// PEM text of trusted CA certificates (node-postgres's `ssl.ca`).
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
  pub statement_cache_size: Option<u32>,
  pub machine_max: Option<u32>,
  /// `PG*` variables (`PGHOST`, `PGUSER`, ...) and `USER`, as seen by the caller.
  pub env: HashMap<String, String>,
}

pub const DEFAULT_MAX: usize = 10;
pub const DEFAULT_ACQUIRE_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_LIFETIME_SEC: u64 = 1_800;
pub const DEFAULT_PING_AFTER_IDLE_MS: u64 = 1_000;
pub const DEFAULT_APPLICATION_NAME: &str = "onepool";
pub const DEFAULT_STATEMENT_CACHE_SIZE: usize = 100;

/// Values found in a connection string.
#[derive(Debug, Default)]
struct UrlParts {
  host: Option<String>,
  port: Option<u16>,
  user: Option<String>,
  password: Option<String>,
  database: Option<String>,
  application_name: Option<String>,
  ssl_mode: Option<String>,
  ssl_root_cert_path: Option<String>,
  connect_timeout_sec: Option<f64>,
  connection_limit: Option<u32>,
  pool_timeout_sec: Option<f64>,
  schema: Option<String>,
  pgbouncer: Option<bool>,
}

fn invalid(msg: String) -> CoreError {
  CoreError::config(msg)
}

fn decode(s: &str) -> String {
  percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_bool(key: &str, v: &str) -> CoreResult<bool> {
  match v.to_ascii_lowercase().as_str() {
    "true" | "1" | "yes" | "on" => Ok(true),
    "false" | "0" | "no" | "off" => Ok(false),
    _ => Err(invalid(format!("connection string parameter {key}={v} is not a boolean"))),
  }
}

fn parse_num(key: &str, v: &str) -> CoreResult<f64> {
  v.parse::<f64>()
    .ok()
    .filter(|n| n.is_finite() && *n >= 0.0)
    .ok_or_else(|| invalid(format!("connection string parameter {key}={v} is not a non-negative number")))
}

/// Parses `postgres://` / `postgresql://` URLs, including unix-socket forms
/// (`postgres:///db?host=/run/postgresql`, `postgres://%2Frun%2Fpostgresql/db`).
fn parse_url(raw: &str) -> CoreResult<UrlParts> {
  // Messages show the URL without its parameters (which may hold a password) and, when its
  // shape is off, only the scheme.
  let shown = redact_url(raw).split(['?', '#']).next().unwrap_or("").to_string();
  let lower = raw.get(..13).unwrap_or(raw).to_ascii_lowercase();
  if !lower.starts_with("postgres://") && !lower.starts_with("postgresql://") {
    return Err(invalid(format!(
      "invalid connection string {shown}: it must start with postgres:// or postgresql://"
    )));
  }
  let url = Url::parse(raw).map_err(|e| invalid(format!("invalid connection string {shown}: {e}")))?;
  if url.scheme() != "postgres" && url.scheme() != "postgresql" {
    return Err(invalid(format!(
      "invalid connection string {shown}: the scheme must be postgres:// or postgresql://"
    )));
  }
  // Unencoded special characters in a password split the URL in the wrong places (the rest of
  // the password can end up as the host, the database or a parameter). Refuse the shapes that
  // reveal it rather than connect somewhere unintended or print the password.
  let encode_hint = "'@', ':', '/', '?', '#' and '&' in a password must be percent-encoded";
  let misshapen =
    |what: &str| invalid(format!("invalid connection string {}://…: {what}; {encode_hint}", url.scheme()));
  if url.fragment().is_some() {
    return Err(misshapen("it contains '#'"));
  }
  if url.path().contains('@') {
    return Err(misshapen(
      "the database name contains '@' (credentials go before the host: postgres://user:password@host/db)",
    ));
  }
  if url.username().is_empty() && url.password().is_some() {
    return Err(misshapen("it has a password but no user name"));
  }
  if url
    .query()
    .is_some_and(|q| q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.contains('@'))))
  {
    return Err(misshapen("a parameter name contains '@'"));
  }
  let mut parts = UrlParts::default();
  if let Some(h) = url.host_str() {
    if !h.is_empty() {
      let h = decode(h);
      // IPv6 literals come back bracketed.
      parts.host = Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
    }
  }
  parts.port = url.port();
  if !url.username().is_empty() {
    parts.user = Some(decode(url.username()));
  }
  parts.password = url.password().map(decode);
  let path = url.path().trim_start_matches('/');
  if !path.is_empty() {
    parts.database = Some(decode(path));
  }
  for (k, v) in url.query_pairs() {
    let v = v.into_owned();
    match k.as_ref() {
      "host" => parts.host = Some(v),
      "port" => {
        parts.port = Some(v.parse().map_err(|_| {
          invalid(format!("invalid connection string {shown}: port {v} is not a port number"))
        })?)
      }
      "user" => parts.user = Some(v),
      "password" => parts.password = Some(v),
      "dbname" | "database" => parts.database = Some(v),
      "application_name" => parts.application_name = Some(v),
      "sslmode" => parts.ssl_mode = Some(v),
      "sslrootcert" => parts.ssl_root_cert_path = Some(v),
      "ssl" if parse_bool("ssl", &v)? => {
        parts.ssl_mode.get_or_insert_with(|| "require".into());
      }
      "ssl" => {}
      "connect_timeout" => parts.connect_timeout_sec = Some(parse_num("connect_timeout", &v)?),
      "connection_limit" => {
        let n = parse_num("connection_limit", &v)?;
        parts.connection_limit = Some(n as u32);
      }
      "pool_timeout" => parts.pool_timeout_sec = Some(parse_num("pool_timeout", &v)?),
      "schema" => parts.schema = Some(v),
      "pgbouncer" => parts.pgbouncer = Some(parse_bool("pgbouncer", &v)?),
      // Parameters other clients understand (sslrootcert, channel_binding, statement_cache_size,
      // ...) are accepted and ignored, so a pasted dashboard URL never fails on them.
      _ => {}
    }
  }
  Ok(parts)
}

/// Postgres truncates `application_name` to 63 bytes.
const APPLICATION_NAME_MAX: usize = 63;

/// `name [pid@host]`: which process on which machine holds a connection, so that
/// `onepool doctor` can tell live connections from orphaned ones. The name is shortened to fit.
pub fn tag_application_name(name: &str, pid: u32, host: &str) -> String {
  let host: String = host.chars().take(20).collect();
  let tag = format!(" [{pid}@{host}]");
  let room = APPLICATION_NAME_MAX.saturating_sub(tag.len());
  let mut end = name.len().min(room);
  while !name.is_char_boundary(end) {
    end -= 1;
  }
  format!("{}{tag}", &name[..end])
}

/// The connection string with its password replaced by `***`, safe to print.
pub fn redact_url(raw: &str) -> String {
  // Without an authority part (`postgres:/u:pw@h`), with a '#', or with an '@' in the path, a
  // password with unencoded characters split the URL and its pieces could be anywhere: treat
  // such a string as unparsable.
  let well_formed = |u: &Url| {
    matches!(u.scheme(), "postgres" | "postgresql")
      && raw.get(u.scheme().len()..u.scheme().len() + 3) == Some("://")
      && u.has_authority()
      && u.fragment().is_none()
      && !u.path().contains('@')
      && u.host_str().is_some_and(|h| !h.is_empty())
  };
  if let Ok(mut url) =
    Url::parse(raw).map_err(|_| ()).and_then(|u| if well_formed(&u) { Ok(u) } else { Err(()) })
  {
    if url.password().is_some() {
      let _ = url.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = url
      .query_pairs()
      .map(|(k, v)| {
        let v = if k == "password" { "***".to_string() } else { v.into_owned() };
        (k.into_owned(), v)
      })
      .collect();
    if pairs.iter().any(|(k, _)| k == "password") {
      url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    return url.to_string();
  }
  // Unparsable: anything after the scheme could hold a password, so show only the scheme.
  let scheme: String = raw.chars().take_while(|c| c.is_ascii_alphanumeric() || "+.-".contains(*c)).collect();
  if !scheme.is_empty() && raw[scheme.len()..].starts_with(':') {
    format!("{scheme}:…")
  } else {
    "…".to_string()
  }
}

fn ssl_mode(v: &str) -> CoreResult<SslMode> {
  Ok(match v {
    "disable" | "allow" => SslMode::Disable,
    "prefer" => SslMode::Prefer,
    "require" => SslMode::Require,
    "verify-ca" => SslMode::VerifyCa,
    "verify-full" => SslMode::VerifyFull,
    other => {
      return Err(invalid(format!(
        "sslmode \"{other}\" is not one of disable, prefer, require, verify-ca, verify-full"
      )))
    }
  })
}

fn ms(name: &str, v: f64) -> CoreResult<Duration> {
  if !v.is_finite() || v < 0.0 {
    return Err(invalid(format!("{name} must be a non-negative number of milliseconds, got {v}")));
  }
  Ok(Duration::from_micros((v * 1000.0) as u64))
}

/// `0` disables a timeout, as in node-postgres.
fn optional_ms(name: &str, v: f64) -> CoreResult<Option<Duration>> {
  let d = ms(name, v)?;
  Ok(if d.is_zero() { None } else { Some(d) })
}

impl PoolConfig {
  pub fn from_input(input: &ConfigInput) -> CoreResult<PoolConfig> {
    let url = match &input.connection_string {
      Some(s) if !s.trim().is_empty() => parse_url(s.trim())?,
      Some(_) => return Err(invalid("connectionString is empty".into())),
      None => UrlParts::default(),
    };
    let env = |k: &str| input.env.get(k).filter(|v| !v.is_empty()).cloned();

    let host_str = url
      .host
      .clone()
      .or_else(|| input.host.clone())
      .or_else(|| env("PGHOST"))
      .unwrap_or_else(|| "localhost".into());
    let host = if host_str.starts_with('/') {
      Host::Unix(PathBuf::from(&host_str))
    } else if host_str.is_empty() {
      return Err(invalid("host is empty".into()));
    } else {
      Host::Tcp(host_str)
    };
    let port = match url.port {
      Some(p) => p,
      None => match input.port {
        Some(p) => u16::try_from(p)
          .ok()
          .filter(|p| *p > 0)
          .ok_or_else(|| invalid(format!("port must be between 1 and 65535, got {p}")))?,
        None => match env("PGPORT") {
          Some(p) => p.parse().map_err(|_| invalid(format!("PGPORT={p} is not a port number")))?,
          None => 5432,
        },
      },
    };
    let user = url
      .user
      .clone()
      .or_else(|| input.user.clone())
      .or_else(|| env("PGUSER"))
      .or_else(|| env("USER"))
      .or_else(|| env("USERNAME"))
      .unwrap_or_else(|| "postgres".into());
    let database = url
      .database
      .clone()
      .or_else(|| input.database.clone())
      .or_else(|| env("PGDATABASE"))
      .unwrap_or_else(|| user.clone());
    let password =
      url.password.clone().or_else(|| input.password.clone()).or_else(|| env("PGPASSWORD")).map(Secret);
    let application_name = url
      .application_name
      .clone()
      .or_else(|| input.application_name.clone())
      .or_else(|| env("PGAPPNAME"))
      .unwrap_or_else(|| DEFAULT_APPLICATION_NAME.into());
    let application_name =
      tag_application_name(&application_name, crate::process::id(), &crate::process::hostname());
    let ssl_mode = match url.ssl_mode.clone().or_else(|| input.ssl_mode.clone()).or_else(|| env("PGSSLMODE"))
    {
      Some(m) => ssl_mode(&m)?,
      None => SslMode::Disable,
    };

    let ssl_root_cert = match (&input.ssl_root_cert, &url.ssl_root_cert_path) {
      (Some(pem), _) => Some(pem.clone()),
      // libpq's "system": the public roots, which is also what no file means here.
      (None, Some(path)) if path == "system" => None,
      (None, Some(path)) => Some(
        std::fs::read_to_string(path)
          .map_err(|e| invalid(format!("sslrootcert {path} cannot be read: {e}")))?,
      ),
      (None, None) => None,
    };
    let connect_timeout = match (input.connect_timeout_ms, url.connect_timeout_sec) {
      (Some(v), _) => ms("connectTimeoutMs", v)?,
      (None, Some(s)) => ms("connect_timeout", s * 1000.0)?,
      (None, None) => Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
    };
    let connect_timeout = if connect_timeout.is_zero() {
      Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS)
    } else {
      connect_timeout
    };
    let max = match (input.max, url.connection_limit) {
      (Some(m), _) => m as usize,
      (None, Some(m)) => m as usize,
      (None, None) => DEFAULT_MAX,
    };
    if max == 0 {
      return Err(invalid("max must be at least 1".into()));
    }
    let acquire_timeout = match (input.acquire_timeout_ms, url.pool_timeout_sec) {
      (Some(v), _) => ms("acquireTimeoutMs", v)?,
      (None, Some(s)) => ms("pool_timeout", s * 1000.0)?,
      (None, None) => Duration::from_millis(DEFAULT_ACQUIRE_TIMEOUT_MS),
    };
    let acquire_timeout = if acquire_timeout.is_zero() {
      // 0 means "wait forever" in pg; a bounded wait is the safer reading of "no limit".
      Duration::from_secs(24 * 3600)
    } else {
      acquire_timeout
    };
    let idle_timeout =
      optional_ms("idleTimeoutMs", input.idle_timeout_ms.unwrap_or(DEFAULT_IDLE_TIMEOUT_MS as f64))?;
    let max_lifetime = optional_ms(
      "maxLifetimeSec",
      input.max_lifetime_sec.unwrap_or(DEFAULT_MAX_LIFETIME_SEC as f64) * 1000.0,
    )?;
    let statement_timeout = match input.statement_timeout_ms {
      Some(v) => optional_ms("statementTimeoutMs", v)?,
      None => None,
    };
    let machine_max = match input.machine_max {
      Some(0) => None,
      Some(n) => Some(n as usize),
      None => match env("ONEPOOL_MACHINE_MAX") {
        Some(v) => match v.trim().parse::<usize>() {
          Ok(0) => None,
          Ok(n) => Some(n),
          Err(_) => return Err(invalid(format!("ONEPOOL_MACHINE_MAX={v} is not a whole number"))),
        },
        None => None,
      },
    };
    if cfg!(target_family = "wasm") && machine_max.is_some() {
      return Err(invalid(
        "machineMax needs file locks, which the WebAssembly build of onepool does not have".into(),
      ));
    }
    let pgbouncer = input.pgbouncer.or(url.pgbouncer).unwrap_or(false);
    if pgbouncer && (input.search_path.is_some() || statement_timeout.is_some()) {
      return Err(invalid(
        "searchPath and statementTimeoutMs cannot be applied behind PgBouncer (pgbouncer: true): in \
         transaction mode no session setting survives. Set them on the role instead: \
         ALTER ROLE <user> SET search_path = ... / SET statement_timeout = ..."
          .into(),
      ));
    }
    // These travel in the startup packet as C strings, and the server keeps statement_timeout as
    // an int of milliseconds: refuse here what could never connect, instead of failing every query.
    let search_path = input.search_path.clone().or(url.schema.clone());
    for (option, value) in [
      ("user", Some(&user)),
      ("database", Some(&database)),
      ("applicationName", Some(&application_name)),
      ("searchPath", search_path.as_ref()),
    ] {
      if value.is_some_and(|v| v.contains('\0')) {
        return Err(invalid(format!("{option} must not contain a NUL character")));
      }
    }
    if let Some(t) = statement_timeout.filter(|t| t.as_millis() > i32::MAX as u128) {
      return Err(invalid(format!(
        "statementTimeoutMs must be at most {} (the server's limit), got {}",
        i32::MAX,
        t.as_millis()
      )));
    }
    let name = input.name.clone().unwrap_or_else(|| "default".into());
    if name.is_empty() {
      return Err(invalid("name must not be empty".into()));
    }
    Ok(PoolConfig {
      name,
      target: Target { host, port, database, user },
      conn: ConnSettings {
        password,
        application_name,
        connect_timeout,
        ssl_mode,
        ssl_root_cert,
        // Behind PgBouncer no session setting survives; Prisma qualifies names with its
        // `schema` itself, so the URL's schema is only reported, not applied.
        search_path: if pgbouncer { None } else { search_path.clone() },
        schema: search_path,
        statement_timeout,
        keepalive: input.keepalive.unwrap_or(true),
        statement_cache_size: if pgbouncer {
          0
        } else {
          input.statement_cache_size.map_or(DEFAULT_STATEMENT_CACHE_SIZE, |n| n as usize)
        },
      },
      pool: PoolSettings {
        max,
        acquire_timeout,
        idle_timeout,
        max_lifetime,
        ping_after_idle: Duration::from_millis(DEFAULT_PING_AFTER_IDLE_MS),
        machine_max,
      },
      pgbouncer,
    })
  }

  /// The registry key: same name and same database target → same native pool.
  pub fn identity(&self) -> (String, Target) {
    (self.name.clone(), self.target.clone())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn cfg(url: &str) -> PoolConfig {
    PoolConfig::from_input(&ConfigInput { connection_string: Some(url.into()), ..Default::default() })
      .unwrap()
  }

  #[test]
  fn parses_full_url_with_encoded_password() {
    let c =
      cfg("postgresql://app:p%40ss%3Aw0rd@db.example.com:6543/shop?sslmode=prefer&application_name=web");
    assert_eq!(c.target.host, Host::Tcp("db.example.com".into()));
    assert_eq!(c.target.port, 6543);
    assert_eq!(c.target.user, "app");
    assert_eq!(c.target.database, "shop");
    assert_eq!(c.conn.password, Some(Secret("p@ss:w0rd".into())));
    assert_eq!(c.conn.ssl_mode, SslMode::Prefer);
    assert!(c.conn.application_name.starts_with("web ["), "{}", c.conn.application_name);
  }

  #[test]
  fn unix_socket_forms() {
    let a = cfg("postgres:///shop?host=/var/run/postgresql");
    assert_eq!(a.target.host, Host::Unix("/var/run/postgresql".into()));
    let b = cfg("postgres://u@%2Ftmp%2Fpg/shop");
    assert_eq!(b.target.host, Host::Unix("/tmp/pg".into()));
  }

  #[test]
  fn prisma_parameters_map_to_pool_options() {
    let c =
      cfg("postgres://u:p@h/d?connection_limit=3&pool_timeout=2&connect_timeout=4&schema=app&pgbouncer=true");
    assert_eq!(c.pool.max, 3);
    assert_eq!(c.pool.acquire_timeout, Duration::from_secs(2));
    assert_eq!(c.conn.connect_timeout, Duration::from_secs(4));
    assert_eq!(c.conn.search_path, None, "no session state behind PgBouncer");
    assert_eq!(c.conn.schema.as_deref(), Some("app"));
    assert!(c.pgbouncer);
    let direct = cfg("postgres://u:p@h/d?schema=app");
    assert_eq!(direct.conn.search_path.as_deref(), Some("app"));
  }

  #[test]
  fn url_wins_over_fields_and_fields_over_env() {
    let mut env = HashMap::new();
    env.insert("PGHOST".to_string(), "envhost".to_string());
    env.insert("PGUSER".to_string(), "envuser".to_string());
    env.insert("PGDATABASE".to_string(), "envdb".to_string());
    let input = ConfigInput {
      connection_string: Some("postgres://urluser@urlhost/".into()),
      user: Some("fielduser".into()),
      database: Some("fielddb".into()),
      env,
      ..Default::default()
    };
    let c = PoolConfig::from_input(&input).unwrap();
    assert_eq!(c.target.host, Host::Tcp("urlhost".into()));
    assert_eq!(c.target.user, "urluser");
    assert_eq!(c.target.database, "fielddb");
  }

  #[test]
  fn env_only() {
    let mut env = HashMap::new();
    env.insert("PGHOST".to_string(), "h".to_string());
    env.insert("PGPORT".to_string(), "7777".to_string());
    env.insert("USER".to_string(), "me".to_string());
    let c = PoolConfig::from_input(&ConfigInput { env, ..Default::default() }).unwrap();
    assert_eq!(c.target.port, 7777);
    assert_eq!(c.target.user, "me");
    assert_eq!(c.target.database, "me");
  }

  #[test]
  fn rejects_bad_input_without_leaking_password() {
    for bad in [
      "mysql://u:hunter2@h/d",
      "postgres://u:hunter2@h:99999/d",
      "postgres://u:hunter2@h/d?sslmode=bogus",
      "postgres://u:hunter2@h/d?connection_limit=-1",
      "postgres:/u:hunter2@h/d",
      "postgres:u:hunter2@h/d",
      "postgres//u:hunter2@h/d",
      "postgres://u@h:99999/d?password=hunter2",
      "postgres:///:hunter2@127.0.0.1",
      "postgres://u:hun#ter2@127.0.0.1/d",
      "http:hunter2@127.0.0.1",
      "postgres://:@hunter2?@",
      "postgres://:&@hunter2?@?sslmode=",
      "postgres://@:@hunter2?@:=",
    ] {
      let err =
        PoolConfig::from_input(&ConfigInput { connection_string: Some(bad.into()), ..Default::default() })
          .unwrap_err();
      assert_eq!(err.code(), "CONFIG_INVALID", "{bad}");
      assert!(!err.to_string().contains("hunter2"), "{err}");
    }
  }

  #[test]
  fn redacts_passwords() {
    assert_eq!(redact_url("postgres://u:secret@h:5/d"), "postgres://u:***@h:5/d");
    assert!(!redact_url("postgres://h/d?password=secret").contains("secret"));
    assert!(!redact_url("postgres://u:secret@[bad/d").contains("secret"));
    assert!(!redact_url("postgres://u@h:99999/d?password=secret").contains("secret"));
    assert_eq!(redact_url("postgres//u:secret@h/d"), "…");
    assert_eq!(format!("{:?}", Secret("x".into())), "***");
  }

  #[test]
  fn application_name_carries_pid_and_host_within_63_bytes() {
    assert_eq!(tag_application_name("onepool", 4242, "box"), "onepool [4242@box]");
    let long = tag_application_name(&"é".repeat(40), 4294967295, "a-very-long-host-name-indeed");
    assert!(long.len() <= 63, "{long}");
    assert!(long.ends_with(" [4294967295@a-very-long-host-nam]"), "{long}");
  }

  #[test]
  fn zero_max_is_invalid() {
    let err = PoolConfig::from_input(&ConfigInput { max: Some(0), ..Default::default() }).unwrap_err();
    assert_eq!(err.code(), "CONFIG_INVALID");
  }
}
