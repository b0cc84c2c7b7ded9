//! `ConfigInput` → `PoolConfig`, one concern at a time: where to connect (the target), how to
//! open each connection, how the pool behaves, then the checks that need them all.

use std::time::Duration;

use super::client_cert;
use super::conn_string::{parse_url, redact_url, UrlParts};
use super::hosts::{self, LoadBalance, Routing, Servers, SessionAttrs};
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
  let hosts = servers(&src)?;
  let routing = routing(&src)?;
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
  let target = hosts[0].clone();
  let servers = Servers { hosts, replicas: Vec::new() };
  let mut cfg = PoolConfig { name, target, servers, routing, conn, pool, pgbouncer, listen };
  cfg.servers.replicas = replicas(&src, &cfg)?;
  Ok(cfg)
}

/// The one-connection pool that `listenUrl` names: straight to Postgres (never PgBouncer), with
/// this pool's timeouts, TLS options (client certificate included) and application name, and
/// nothing else from its options (the URL says where and as whom).
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
    ssl_cert: input.ssl_cert.clone(),
    ssl_key: input.ssl_key.clone(),
    ssl_password: input.ssl_password.clone(),
    channel_binding: input.channel_binding.clone(),
    ssl_negotiation: input.ssl_negotiation.clone(),
    max_message_bytes: input.max_message_bytes,
    max: Some(1),
    acquire_timeout_ms: input.acquire_timeout_ms,
    connect_timeout_ms: input.connect_timeout_ms,
    keepalive: input.keepalive,
    pgbouncer: Some(false),
    machine_max: input.machine_max,
    env: input.env.clone(),
    ..ConfigInput::default()
  };
  let cfg = pool_config(&direct).map_err(|e| match e {
    CoreError::Config(m) => invalid(format!("listenUrl: {m}")),
    other => other,
  })?;
  // Its pool has one server: a host list there would silently come down to its first host.
  if cfg.servers.hosts.len() > 1 {
    return Err(invalid(format!(
      "listenUrl names {} servers ({}); it takes one: the primary, straight (not through PgBouncer)",
      cfg.servers.hosts.len(),
      cfg.servers
    )));
  }
  Ok(cfg)
}

/// Host (or host list), port (or port list), database and user: what makes two pools "the
/// same database".
fn servers(src: &Sources) -> CoreResult<Vec<Target>> {
  let input = src.input;
  let hosts = src.pick(&src.url.host, &input.host, "PGHOST").unwrap_or_else(|| "localhost".into());
  // A port list pairs with the host list; one port (or none) is also the default for hosts
  // whose port entry is empty.
  let ports = src.url.port.clone().or_else(|| input.port.clone()).or_else(|| src.env("PGPORT"));
  let default_port = match ports.as_deref().filter(|p| !p.contains(',')) {
    Some(p) if !p.trim().is_empty() => p.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
      let from = if src.url.port.is_some() || input.port.is_some() { "port" } else { "PGPORT" };
      invalid(format!("{from} must be a port number between 1 and 65535, got {p}"))
    })?,
    _ => 5432,
  };
  let pairs = hosts::pair_up(&hosts, ports.as_deref(), default_port)?;
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
  Ok(
    pairs
      .into_iter()
      .map(|(host, port)| Target { host, port, database: database.clone(), user: user.clone() })
      .collect(),
  )
}

/// `target_session_attrs` and `load_balance_hosts`: the option's value, else the connection
/// string's, else the environment's (libpq's `PGTARGETSESSIONATTRS`, `PGLOADBALANCEHOSTS`).
fn routing(src: &Sources) -> CoreResult<Routing> {
  let input = src.input;
  let attrs = src.pick(&src.url.target_session_attrs, &input.target_session_attrs, "PGTARGETSESSIONATTRS");
  let balance = src.pick(&src.url.load_balance_hosts, &input.load_balance_hosts, "PGLOADBALANCEHOSTS");
  Ok(Routing {
    session_attrs: attrs.as_deref().map_or(Ok(SessionAttrs::Any), SessionAttrs::parse)?,
    load_balance: balance.as_deref().map_or(Ok(LoadBalance::Disable), LoadBalance::parse)?,
  })
}

/// The read replicas: `host`, `host:port`, `[v6]:port`, a socket directory, or a connection
/// string. A replica is another server of the same database: a connection string contributes
/// its hosts and ports, and anything else it says must be what the pool's own says.
fn replicas(src: &Sources, main: &PoolConfig) -> CoreResult<Vec<Target>> {
  let first = &main.target;
  let mut out = Vec::new();
  for spec in &src.input.replicas {
    let spec = spec.trim();
    let lower = spec.get(..13).unwrap_or(spec).to_ascii_lowercase();
    let (hosts, ports) = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
      replica_url(src, spec, main)?
    } else {
      match spec.strip_prefix('[').and_then(|v6| v6.split_once(']')) {
        Some((h, tail)) => (h.to_string(), tail.strip_prefix(':').map(str::to_string)),
        None if spec.starts_with('/') => (spec.to_string(), None),
        None => match spec.rsplit_once(':') {
          Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.to_string())),
          _ => (spec.to_string(), None),
        },
      }
    };
    for (host, port) in hosts::pair_up(&hosts, ports.as_deref(), first.port)? {
      out.push(Target { host, port, database: first.database.clone(), user: first.user.clone() });
    }
  }
  Ok(out)
}

/// A replica's connection string: its host list and ports, once every other value in it is
/// found to be the pool's (the list below names each field, so a new one must be decided here).
fn replica_url(src: &Sources, spec: &str, main: &PoolConfig) -> CoreResult<(String, Option<String>)> {
  let UrlParts {
    host,
    port,
    user,
    password,
    database,
    application_name,
    ssl_mode,
    ssl_root_cert_path,
    ssl_cert_path,
    ssl_key_path,
    ssl_password,
    channel_binding,
    ssl_negotiation,
    connect_timeout_sec,
    connection_limit,
    pool_timeout_sec,
    schema,
    pgbouncer,
    target_session_attrs,
    load_balance_hosts,
  } = parse_url(spec)?;
  let pool = &src.url;
  let password_differs = password.is_some() && password.map(Secret) != main.conn.password;
  let differs = (user.is_some() && user.as_ref() != Some(&main.target.user))
    || (database.is_some() && database.as_ref() != Some(&main.target.database))
    || password_differs
    || (application_name.is_some() && application_name != pool.application_name)
    || (ssl_mode.is_some() && ssl_mode != pool.ssl_mode)
    || (ssl_root_cert_path.is_some() && ssl_root_cert_path != pool.ssl_root_cert_path)
    || (ssl_cert_path.is_some() && ssl_cert_path != pool.ssl_cert_path)
    || (ssl_key_path.is_some() && ssl_key_path != pool.ssl_key_path)
    || (ssl_password.is_some() && ssl_password != pool.ssl_password)
    || (channel_binding.is_some() && channel_binding != pool.channel_binding)
    || (ssl_negotiation.is_some() && ssl_negotiation != pool.ssl_negotiation)
    || (connect_timeout_sec.is_some() && connect_timeout_sec != pool.connect_timeout_sec)
    || (connection_limit.is_some() && connection_limit != pool.connection_limit)
    || (pool_timeout_sec.is_some() && pool_timeout_sec != pool.pool_timeout_sec)
    || (schema.is_some() && schema != pool.schema)
    || (pgbouncer.is_some() && pgbouncer != pool.pgbouncer)
    || target_session_attrs.is_some()
    || load_balance_hosts.is_some();
  if differs {
    return Err(invalid(format!(
      "replica {} says more than its hosts and ports: a replica uses the pool's user, database, password \
       and settings, so anything else in its connection string must be what the pool's says",
      redact_url(spec).split('?').next().unwrap_or("")
    )));
  }
  Ok((host.unwrap_or_else(|| "localhost".into()), port))
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
  let ssl_root_cert_path = src.url.ssl_root_cert_path.clone().or_else(|| src.env("PGSSLROOTCERT"));
  let ssl_root_cert = match (&input.ssl_root_cert, &ssl_root_cert_path) {
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
  if let Some(options) = &input.options {
    refuse_nul("options", options)?;
  }
  if pgbouncer && input.options.as_deref().is_some_and(|o| !o.trim().is_empty()) {
    return Err(invalid(
      "options cannot be applied behind PgBouncer (pgbouncer: true): PgBouncer refuses unknown \
       startup parameters and no session setting survives in transaction mode"
        .into(),
    ));
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
    password_provider: input.password_provider.clone(),
    startup_options: input.options.clone().filter(|o| !o.trim().is_empty()),
    application_name,
    connect_timeout,
    ssl_mode,
    ssl_root_cert,
    client_cert: client_cert(src, ssl_mode)?,
    channel_binding: channel_binding(src, ssl_mode)?,
    ssl_negotiation: ssl_negotiation(src, ssl_mode)?,
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
    max_message_size: input
      .max_message_bytes
      .map_or(DEFAULT_MAX_MESSAGE_SIZE, |n| (n as usize).min(DEFAULT_MAX_MESSAGE_SIZE)),
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
    // pg's `min`: kept open, but never more than `max`.
    min: input.min.map_or(0, |m| m as usize).min(max),
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

/// Where a client certificate or key comes from: PEM text given as an option, or a file.
enum Pem {
  Text(&'static str, String),
  File(&'static str, String),
}

impl Pem {
  fn name(&self) -> String {
    match self {
      Pem::Text(option, _) => option.to_string(),
      Pem::File(param, path) => format!("{param} {path}"),
    }
  }

  fn read(&self) -> CoreResult<Vec<u8>> {
    match self {
      Pem::Text(_, pem) => Ok(pem.clone().into_bytes()),
      Pem::File(param, path) => {
        std::fs::read(path).map_err(|e| invalid(format!("{param} {path} cannot be read: {e}")))
      }
    }
  }
}

/// The client certificate and key: `ssl.cert` and `ssl.key` (PEM text), else the URL's
/// `sslcert` and `sslkey`, else `PGSSLCERT` and `PGSSLKEY` (files), each pair from one place.
/// Used over TLS only, as in libpq; given explicitly to a pool without TLS, it is an error (the
/// server would never see it).
fn client_cert(src: &Sources, ssl_mode: SslMode) -> CoreResult<Option<Arc<ClientCert>>> {
  let input = src.input;
  let url = &src.url;
  let (cert, key, explicit) = if input.ssl_cert.is_some() || input.ssl_key.is_some() {
    let text = |option, pem: &Option<String>| pem.clone().map(|pem| Pem::Text(option, pem));
    (text("ssl.cert", &input.ssl_cert), text("ssl.key", &input.ssl_key), true)
  } else if url.ssl_cert_path.is_some() || url.ssl_key_path.is_some() {
    let file = |param, path: &Option<String>| path.clone().map(|path| Pem::File(param, path));
    (file("sslcert", &url.ssl_cert_path), file("sslkey", &url.ssl_key_path), true)
  } else {
    let file = |param, var| src.env(var).map(|path| Pem::File(param, path));
    (file("PGSSLCERT", "PGSSLCERT"), file("PGSSLKEY", "PGSSLKEY"), false)
  };
  if cert.is_none() && key.is_none() {
    return Ok(None);
  }
  if ssl_mode == SslMode::Disable {
    if !explicit {
      return Ok(None);
    }
    return Err(invalid(
      "a client certificate (sslcert/sslkey, ssl.cert/ssl.key) is sent over TLS only, and sslmode is \
       disable: set sslmode=require, verify-ca or verify-full"
        .into(),
    ));
  }
  let (cert, key) = match (cert, key) {
    (Some(cert), Some(key)) => (cert, key),
    (Some(cert), None) => {
      return Err(invalid(format!(
        "{} is given without its private key: set sslkey (ssl.key) too",
        cert.name()
      )))
    }
    (None, Some(key)) => {
      return Err(invalid(format!(
        "{} is given without its certificate: set sslcert (ssl.cert) too",
        key.name()
      )))
    }
    (None, None) => return Ok(None),
  };
  let passphrase = input.ssl_password.as_deref().or(url.ssl_password.as_deref());
  let (cert_name, key_name) = (cert.name(), key.name());
  let (cert_pem, key_pem) = (cert.read()?, key.read()?);
  let loaded = ClientCert::load(
    client_cert::Source { name: &cert_name, pem: &cert_pem },
    client_cert::Source { name: &key_name, pem: &key_pem },
    passphrase,
  )
  .map_err(invalid)?;
  Ok(Some(Arc::new(loaded)))
}

fn channel_binding(src: &Sources, ssl_mode: SslMode) -> CoreResult<ChannelBinding> {
  let binding =
    match src.pick(&src.url.channel_binding, &src.input.channel_binding, "PGCHANNELBINDING").as_deref() {
      None | Some("prefer") => ChannelBinding::Prefer,
      Some("disable") => ChannelBinding::Disable,
      Some("require") => ChannelBinding::Require,
      Some(other) => {
        return Err(invalid(format!("channel_binding \"{other}\" is not one of disable, prefer, require")))
      }
    };
  if binding == ChannelBinding::Require && ssl_mode == SslMode::Disable {
    return Err(invalid(
      "channel_binding=require binds authentication to TLS, and sslmode is disable: set sslmode=require, \
       verify-ca or verify-full"
        .into(),
    ));
  }
  Ok(binding)
}

fn ssl_negotiation(src: &Sources, ssl_mode: SslMode) -> CoreResult<SslNegotiation> {
  let negotiation = match src
    .pick(&src.url.ssl_negotiation, &src.input.ssl_negotiation, "PGSSLNEGOTIATION")
    .as_deref()
  {
    None | Some("postgres") => SslNegotiation::Postgres,
    Some("direct") => SslNegotiation::Direct,
    Some(other) => return Err(invalid(format!("sslnegotiation \"{other}\" is not one of postgres, direct"))),
  };
  // As libpq: a direct handshake cannot fall back to plaintext, so weaker modes are refused.
  if negotiation == SslNegotiation::Direct && matches!(ssl_mode, SslMode::Disable | SslMode::Prefer) {
    return Err(invalid(
      "sslnegotiation=direct starts TLS at once, with no plaintext fallback: it needs sslmode=require, \
       verify-ca or verify-full"
        .into(),
    ));
  }
  Ok(negotiation)
}
