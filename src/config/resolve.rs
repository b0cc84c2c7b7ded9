//! `ConfigInput` → `PoolConfig`, one concern at a time: where to connect (the target), how to
//! open each connection, how the pool behaves, then the checks that need them all.

use std::path::PathBuf;
use std::time::Duration;

use super::conn_string::{parse_url, UrlParts};
use super::*;
use crate::error::{CoreError, CoreResult};

/// Where each value may come from, in node-postgres's order of precedence.
struct Sources<'a> {
  url: UrlParts,
  input: &'a ConfigInput,
}

impl Sources<'_> {
  /// A `PG*` (or `USER`) variable as the caller saw it; empty counts as unset.
  fn env(&self, key: &str) -> Option<String> {
    self.input.env.get(key).filter(|v| !v.is_empty()).cloned()
  }

  /// The connection string's value, else the option's, else the environment's.
  fn pick(&self, from_url: &Option<String>, from_input: &Option<String>, env: &str) -> Option<String> {
    from_url.clone().or_else(|| from_input.clone()).or_else(|| self.env(env))
  }
}

pub(super) fn pool_config(input: &ConfigInput) -> CoreResult<PoolConfig> {
  let url = match &input.connection_string {
    Some(s) if !s.trim().is_empty() => parse_url(s.trim())?,
    Some(_) => return Err(invalid("connectionString is empty".into())),
    None => UrlParts::default(),
  };
  let src = Sources { url, input };
  let target = target(&src)?;
  let pgbouncer = input.pgbouncer.or(src.url.pgbouncer).unwrap_or(false);
  let conn = conn_settings(&src, pgbouncer)?;
  let pool = pool_settings(&src)?;
  let name = input.name.clone().unwrap_or_else(|| "default".into());
  if name.is_empty() {
    return Err(invalid("name must not be empty".into()));
  }
  let listen = match &input.listen_url {
    Some(url) => Some(Box::new(listen_config(input, url, &name)?)),
    None => None,
  };
  Ok(PoolConfig { name, target, conn, pool, pgbouncer, listen })
}

/// The one-connection pool that `listenUrl` names: straight to Postgres (never PgBouncer), with
/// this pool's timeouts, TLS options and application name, and nothing else from its options
/// (the URL says where and as whom).
fn listen_config(input: &ConfigInput, url: &str, name: &str) -> CoreResult<PoolConfig> {
  if url.trim().is_empty() {
    return Err(invalid("listenUrl is empty".into()));
  }
  let direct = ConfigInput {
    name: Some(format!("{name} (listen)")),
    connection_string: Some(url.to_string()),
    application_name: input.application_name.clone(),
    ssl_mode: input.ssl_mode.clone(),
    ssl_root_cert: input.ssl_root_cert.clone(),
    max: Some(1),
    acquire_timeout_ms: input.acquire_timeout_ms,
    connect_timeout_ms: input.connect_timeout_ms,
    keepalive: input.keepalive,
    pgbouncer: Some(false),
    machine_max: input.machine_max,
    env: input.env.clone(),
    ..ConfigInput::default()
  };
  pool_config(&direct).map_err(|e| match e {
    CoreError::Config(m) => invalid(format!("listenUrl: {m}")),
    other => other,
  })
}

/// Host, port, database and user: what makes two pools "the same database".
fn target(src: &Sources) -> CoreResult<Target> {
  let input = src.input;
  let host = src.pick(&src.url.host, &input.host, "PGHOST").unwrap_or_else(|| "localhost".into());
  let host = if host.starts_with('/') {
    Host::Unix(PathBuf::from(&host))
  } else if host.is_empty() {
    return Err(invalid("host is empty".into()));
  } else {
    Host::Tcp(host)
  };
  let port = match (src.url.port, input.port) {
    (Some(p), _) => p,
    (None, Some(p)) => u16::try_from(p)
      .ok()
      .filter(|p| *p > 0)
      .ok_or_else(|| invalid(format!("port must be between 1 and 65535, got {p}")))?,
    (None, None) => match src.env("PGPORT") {
      Some(p) => p.parse().map_err(|_| invalid(format!("PGPORT={p} is not a port number")))?,
      None => 5432,
    },
  };
  let user = src
    .pick(&src.url.user, &input.user, "PGUSER")
    .or_else(|| src.env("USER"))
    .or_else(|| src.env("USERNAME"))
    .unwrap_or_else(|| "postgres".into());
  let database = src.pick(&src.url.database, &input.database, "PGDATABASE").unwrap_or_else(|| user.clone());
  // These travel in the startup packet as C strings.
  for (option, value) in [("user", &user), ("database", &database)] {
    refuse_nul(option, value)?;
  }
  Ok(Target { host, port, database, user })
}

/// How each connection is opened and which session settings it starts with.
fn conn_settings(src: &Sources, pgbouncer: bool) -> CoreResult<ConnSettings> {
  let input = src.input;
  let password = src.pick(&src.url.password, &input.password, "PGPASSWORD").map(Secret);
  let application_name = src
    .pick(&src.url.application_name, &input.application_name, "PGAPPNAME")
    .unwrap_or_else(|| DEFAULT_APPLICATION_NAME.into());
  let application_name =
    tag_application_name(&application_name, crate::process::id(), &crate::process::hostname());
  refuse_nul("applicationName", &application_name)?;
  let ssl_mode = match src.pick(&src.url.ssl_mode, &input.ssl_mode, "PGSSLMODE") {
    Some(m) => ssl_mode(&m)?,
    None => SslMode::Disable,
  };
  let ssl_root_cert = match (&input.ssl_root_cert, &src.url.ssl_root_cert_path) {
    (Some(pem), _) => Some(pem.clone()),
    // libpq's "system": the public roots, which is also what no file means here.
    (None, Some(path)) if path == "system" => None,
    (None, Some(path)) => Some(
      std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("sslrootcert {path} cannot be read: {e}")))?,
    ),
    (None, None) => None,
  };
  let connect_timeout = match (input.connect_timeout_ms, src.url.connect_timeout_sec) {
    (Some(v), _) => ms("connectTimeoutMs", v)?,
    (None, Some(s)) => ms("connect_timeout", s * 1000.0)?,
    (None, None) => Duration::ZERO,
  };
  let connect_timeout = if connect_timeout.is_zero() {
    Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS)
  } else {
    connect_timeout
  };
  let statement_timeout = match input.statement_timeout_ms {
    Some(v) => optional_ms("statementTimeoutMs", v)?,
    None => None,
  };
  // The server keeps statement_timeout as an int of milliseconds: refuse here what could never
  // connect, instead of failing every query.
  if let Some(t) = statement_timeout.filter(|t| t.as_millis() > i32::MAX as u128) {
    return Err(invalid(format!(
      "statementTimeoutMs must be at most {} (the server's limit), got {}",
      i32::MAX,
      t.as_millis()
    )));
  }
  let search_path = input.search_path.clone().or(src.url.schema.clone());
  if let Some(path) = &search_path {
    refuse_nul("searchPath", path)?;
  }
  if pgbouncer && (input.search_path.is_some() || statement_timeout.is_some()) {
    return Err(invalid(
      "searchPath and statementTimeoutMs cannot be applied behind PgBouncer (pgbouncer: true): in \
       transaction mode no session setting survives. Set them on the role instead: \
       ALTER ROLE <user> SET search_path = ... / SET statement_timeout = ..."
        .into(),
    ));
  }
  Ok(ConnSettings {
    password,
    application_name,
    connect_timeout,
    ssl_mode,
    ssl_root_cert,
    // Behind PgBouncer no session setting survives; Prisma qualifies names with its `schema`
    // itself, so the URL's schema is only reported, not applied.
    search_path: if pgbouncer { None } else { search_path.clone() },
    schema: search_path,
    statement_timeout,
    keepalive: input.keepalive.unwrap_or(true),
    statement_cache_size: if pgbouncer {
      0
    } else {
      input.statement_cache_size.map_or(DEFAULT_STATEMENT_CACHE_SIZE, |n| n as usize)
    },
  })
}

/// Size, timeouts and budgets.
fn pool_settings(src: &Sources) -> CoreResult<PoolSettings> {
  let input = src.input;
  let max = match (input.max, src.url.connection_limit) {
    (Some(m), _) | (None, Some(m)) => m as usize,
    (None, None) => DEFAULT_MAX,
  };
  if max == 0 {
    return Err(invalid("max must be at least 1".into()));
  }
  let acquire_timeout = match (input.acquire_timeout_ms, src.url.pool_timeout_sec) {
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
  let machine_max = match input.machine_max {
    Some(0) => None,
    Some(n) => Some(n as usize),
    None => match src.env("ONEPOOL_MACHINE_MAX") {
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
  Ok(PoolSettings {
    max,
    acquire_timeout,
    idle_timeout,
    max_lifetime,
    ping_after_idle: Duration::from_millis(DEFAULT_PING_AFTER_IDLE_MS),
    machine_max,
  })
}

fn invalid(msg: String) -> CoreError {
  CoreError::config(msg)
}

fn refuse_nul(option: &str, value: &str) -> CoreResult<()> {
  if value.contains('\0') {
    return Err(invalid(format!("{option} must not contain a NUL character")));
  }
  Ok(())
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
