//! Options and connection strings → a validated `PoolConfig`.
//!
//! Precedence follows node-postgres so that switching is one import: values in the connection
//! string win over explicit `host`/`user`/... options, which win over `PG*` environment variables,
//! which win over defaults. Pool options given explicitly win over Prisma-style URL parameters.
//!
//! - this file: the settings' types and defaults;
//! - `conn_string`: connection strings, parsed and redacted;
//! - `resolve`: options, connection string and environment → settings, one concern at a time.

mod conn_string;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::CoreResult;

pub use conn_string::redact_url;
pub use resolve::tag_application_name;

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
  /// The pool the listening connection comes from instead of this one (`listenUrl`): one
  /// connection, straight to Postgres.
  pub listen: Option<Box<PoolConfig>>,
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
  /// A direct connection string for the listening connection (behind PgBouncer).
  pub listen_url: Option<String>,
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

impl PoolConfig {
  pub fn from_input(input: &ConfigInput) -> CoreResult<PoolConfig> {
    resolve::pool_config(input)
  }
}
