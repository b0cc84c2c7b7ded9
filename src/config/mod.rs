//! Options and connection strings → a validated `PoolConfig`.
//!
//! Precedence follows node-postgres so that switching is one import: values in the connection
//! string win over explicit `host`/`user`/... options, which win over `PG*` environment variables,
//! which win over defaults. Pool options given explicitly win over Prisma-style URL parameters.
//!
//! - this file: the settings' types and defaults;
//! - `conn_string`: connection strings, parsed and redacted;
//! - `hosts`: multi-host targets (host lists, `target_session_attrs`, replicas);
//! - `resolve`: options, connection string and environment → settings, one concern at a time;
//! - `client_cert`: a client certificate and its key, read and decrypted.

mod client_cert;
mod conn_string;
mod hosts;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::error::CoreResult;

pub use client_cert::{ClientCert, KeyFormat};
pub use conn_string::redact_url;
pub use hosts::{LoadBalance, Routing, Servers, SessionAttrs};
pub use resolve::tag_application_name;

/// A password that never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("***")
  }
}

/// A password asked for each time a connection is opened (rotating credentials, cloud IAM
/// tokens). The embedder supplies it: the Node binding asks a JavaScript function.
#[derive(Clone)]
pub struct PasswordProvider(pub Arc<dyn Fn() -> BoxFuture<'static, CoreResult<Secret>> + Send + Sync>);

impl PasswordProvider {
  pub fn get(&self) -> BoxFuture<'static, CoreResult<Secret>> {
    (self.0)()
  }
}

impl fmt::Debug for PasswordProvider {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("PasswordProvider")
  }
}

/// Two providers are the same only when they are the same function object.
impl PartialEq for PasswordProvider {
  fn eq(&self, other: &Self) -> bool {
    Arc::ptr_eq(&self.0, &other.0)
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

/// One server of a pool: where its connections go (host and port) and as whom. A pool's
/// identity holds one per server (`Servers`).
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

/// SCRAM channel binding, as libpq's `channel_binding`: binds the authentication to the TLS
/// connection (SCRAM-SHA-256-PLUS, `tls-server-end-point`), so a man in the middle who
/// terminates TLS cannot relay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
  Disable,
  /// Bind when the connection uses TLS and the server offers it (libpq's default).
  Prefer,
  /// Fail unless the server authenticated with channel binding.
  Require,
}

/// How TLS starts, as libpq's `sslnegotiation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslNegotiation {
  /// An SSLRequest first, then TLS if the server agrees (every PostgreSQL version).
  Postgres,
  /// The TLS handshake at once, with ALPN `postgresql` (PostgreSQL 17 and later): one round
  /// trip less.
  Direct,
}

/// How each new connection is opened. May change live under the same identity.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnSettings {
  pub password: Option<Secret>,
  /// Asked for a password for each new connection; wins over `password`.
  pub password_provider: Option<PasswordProvider>,
  /// node-postgres's `options`: command-line options sent in the startup packet
  /// (`-c lock_timeout=1000`), after onepool's own.
  pub startup_options: Option<String>,
  pub application_name: String,
  pub connect_timeout: Duration,
  pub ssl_mode: SslMode,
  /// PEM of the CA(s) that verify-ca / verify-full trust; `None` = the public web roots.
  pub ssl_root_cert: Option<String>,
  /// The certificate and key offered when the server asks for one (TLS only).
  pub client_cert: Option<Arc<ClientCert>>,
  pub channel_binding: ChannelBinding,
  pub ssl_negotiation: SslNegotiation,
  pub search_path: Option<String>,
  /// The schema the user asked for (URL `schema` or `searchPath`), also when not applied.
  pub schema: Option<String>,
  pub statement_timeout: Option<Duration>,
  pub keepalive: bool,
  /// Prepared statements kept per connection; 0 (always behind PgBouncer) = unnamed only.
  pub statement_cache_size: usize,
  /// The largest message body accepted from the server; a longer claim is a protocol error.
  pub max_message_size: usize,
}

/// How the pool behaves. May change live under the same identity.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
  pub max: usize,
  /// Idle connections are not closed for idleness below this many (node-postgres's `min`;
  /// never above `max`).
  pub min: usize,
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
  /// The server a pool of one server connects to: the first of `servers.hosts`. A pool with
  /// several servers gives each server's pool a config of its own (`for_server`).
  pub target: Target,
  /// Every server the pool may connect to: with `name`, what makes two pools the same.
  pub servers: Servers,
  /// How a request picks one of several servers.
  pub routing: Routing,
  pub conn: ConnSettings,
  pub pool: PoolSettings,
  pub pgbouncer: bool,
  /// The pool the listening connection comes from instead of this one (`listenUrl`): one
  /// connection, straight to Postgres.
  pub listen: Option<Box<PoolConfig>>,
}

/// Everything JavaScript may pass; `None` means "not given". Types are already checked in JS.
#[derive(Debug, Default, Clone)]
pub struct ConfigInput {
  pub name: Option<String>,
  pub connection_string: Option<String>,
  /// One host or a comma-separated host list.
  pub host: Option<String>,
  /// One port or a comma-separated port list.
  pub port: Option<String>,
  pub user: Option<String>,
  pub password: Option<String>,
  pub password_provider: Option<PasswordProvider>,
  pub database: Option<String>,
  pub application_name: Option<String>,
  pub ssl_mode: Option<String>,
  /// PEM text of trusted CA certificates (node-postgres's `ssl.ca`).
  pub ssl_root_cert: Option<String>,
  /// PEM text of the client certificate (chain) and its private key (node-postgres's `ssl.cert`,
  /// `ssl.key`), and the key's passphrase (`ssl.passphrase`).
  pub ssl_cert: Option<String>,
  pub ssl_key: Option<String>,
  pub ssl_password: Option<String>,
  /// `disable`, `prefer` or `require` (libpq's `channel_binding`).
  pub channel_binding: Option<String>,
  /// `postgres` or `direct` (libpq's `sslnegotiation`).
  pub ssl_negotiation: Option<String>,
  /// node-postgres's `options` (startup command-line options).
  pub options: Option<String>,
  pub max: Option<u32>,
  pub min: Option<u32>,
  pub acquire_timeout_ms: Option<f64>,
  pub connect_timeout_ms: Option<f64>,
  pub idle_timeout_ms: Option<f64>,
  pub max_lifetime_sec: Option<f64>,
  pub statement_timeout_ms: Option<f64>,
  pub search_path: Option<String>,
  pub pgbouncer: Option<bool>,
  pub keepalive: Option<bool>,
  pub statement_cache_size: Option<u32>,
  pub max_message_bytes: Option<u32>,
  pub machine_max: Option<u32>,
  /// A direct connection string for the listening connection (behind PgBouncer).
  pub listen_url: Option<String>,
  pub target_session_attrs: Option<String>,
  pub load_balance_hosts: Option<String>,
  /// Servers only reads go to: `host`, `host:port` or connection strings.
  pub replicas: Vec<String>,
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
/// 1 GiB: PostgreSQL's own limit for a message body (MaxAllocSize, 1 GiB - 1), so no real
/// server's message is refused, while a length read from another protocol's bytes mostly is.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

impl PoolConfig {
  pub fn from_input(input: &ConfigInput) -> CoreResult<PoolConfig> {
    resolve::pool_config(input)
  }

  /// This config for the pool of one of its servers.
  pub fn for_server(&self, target: &Target) -> PoolConfig {
    PoolConfig { target: target.clone(), ..self.clone() }
  }
}
