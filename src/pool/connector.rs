//! How the pool opens a connection: the seam between the pool and the network. The pool opens
//! real ones (`Postgres`); its unit tests give it fake ones over in-memory streams.

use std::time::Instant;

use futures_util::future::BoxFuture;

use crate::budget::Lease;
use crate::config::{ConnSettings, Target};
use crate::conn::Conn;
use crate::error::CoreResult;

pub trait Connector: Send + Sync {
  /// Opens one connection; the pool bounds the wait by the connect timeout.
  fn connect<'a>(
    &'a self,
    target: &'a Target,
    settings: &'a ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> BoxFuture<'a, CoreResult<Conn>>;
}

/// A socket to the target's server (TLS as configured), then the startup handshake.
pub struct Postgres;

impl Connector for Postgres {
  fn connect<'a>(
    &'a self,
    target: &'a Target,
    settings: &'a ConnSettings,
    lease: Lease,
    id: u64,
    retire_at: Option<Instant>,
  ) -> BoxFuture<'a, CoreResult<Conn>> {
    Box::pin(Conn::connect(target, settings, lease, id, retire_at))
  }
}
