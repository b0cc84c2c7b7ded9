//! onepool: a process-global Postgres connection pool for Node.js.
//!
//! The core (`config`, `conn`, `pool`, `cluster`, `budget`, `registry`, `session`, `wire`, `columns`) is plain Rust;
//! `napi/` is the only code that talks to Node.

#![deny(clippy::unwrap_used)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod abort;
#[cfg(target_os = "linux")]
mod alloc;
pub mod budget;
pub mod cluster;
pub mod columns;
pub mod config;
pub mod conn;
pub mod error;
pub mod listen;
pub mod machine;
mod napi;
mod pin;
pub mod pool;
pub mod process;
pub mod registry;
pub mod route;
pub mod runtime;
pub mod session;
pub mod shutdown;
#[cfg(test)]
mod testing;
pub mod wire;
