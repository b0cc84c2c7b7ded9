//! What kind of server a connection is on: a primary or a hot standby, read-write or read-only.
//! libpq's `target_session_attrs` decides on the same facts. PostgreSQL 14 and later report them
//! at startup (`in_hot_standby`, `default_transaction_read_only` ParameterStatus messages); older
//! servers, and a pool that wants to know the standby's lag, ask with a query (`check`).

use super::{Conn, Query};
use crate::error::{CoreError, CoreResult};

/// What a server said it is; `None` where it did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerState {
  /// In hot standby (recovery): a standby.
  pub standby: Option<bool>,
  /// New transactions are read-only (a standby, or `default_transaction_read_only` on).
  pub read_only: Option<bool>,
}

impl ServerState {
  /// Takes in one ParameterStatus message.
  pub fn parameter(&mut self, name: &str, value: &str) {
    match name {
      "in_hot_standby" => self.standby = Some(value == "on"),
      "default_transaction_read_only" => self.read_only = Some(value == "on" || self.standby == Some(true)),
      _ => {}
    }
  }

  /// Both facts are known.
  pub fn is_known(&self) -> bool {
    self.standby.is_some() && self.read_only.is_some()
  }

  pub fn is_standby(&self) -> bool {
    self.standby == Some(true)
  }

  /// Writes work: not a standby, and new transactions are not read-only.
  pub fn is_read_write(&self) -> bool {
    self.standby == Some(false) && self.read_only == Some(false)
  }
}

/// What `check` found: the server's kind and, on a standby, how far behind the primary its
/// replay is (0 when it has replayed everything it received; `None` when it cannot tell).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Checked {
  pub state: ServerState,
  pub lag_ms: Option<f64>,
}

/// One statement, so that it works behind PgBouncer too. The lag is the usual measure: zero
/// when the standby replayed all it received, else the time since the last replayed commit
/// (which overstates it while the primary is idle, and says nothing of WAL not yet received).
const CHECK: &str = "select pg_catalog.pg_is_in_recovery(), \
  pg_catalog.current_setting('transaction_read_only'), \
  case when not pg_catalog.pg_is_in_recovery() then null \
       when pg_catalog.pg_last_wal_receive_lsn() is not distinct from pg_catalog.pg_last_wal_replay_lsn() then 0 \
       else extract(epoch from (pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp())) * 1000 \
  end";

/// Asks the server what it is (`pg_is_in_recovery()`, `transaction_read_only`) and its lag.
pub async fn check(conn: &Conn) -> CoreResult<Checked> {
  let query = Query::new(CHECK.to_string(), Vec::new())?;
  let response = conn.run(query).await?;
  let cells =
    response.results.first().and_then(|r| if r.row_count == 1 { text_cells(&r.rows) } else { None });
  let Some([standby, read_only, lag]) = cells.as_deref() else {
    return Err(CoreError::Protocol("protocol error: the server's kind could not be read".into()));
  };
  let flag = |v: &Option<String>| v.as_deref().map(|v| v == "t" || v == "on");
  let standby = flag(standby);
  Ok(Checked {
    state: ServerState { standby, read_only: flag(read_only).map(|r| r || standby == Some(true)) },
    lag_ms: lag.as_deref().and_then(|v| v.parse::<f64>().ok()).map(|ms| ms.max(0.0)),
  })
}

/// The cells of one DataRow body as text (`None` for NULL), or `None` if it is malformed.
fn text_cells(row: &[u8]) -> Option<Vec<Option<String>>> {
  let mut out = Vec::new();
  let mut at = 0;
  while at < row.len() {
    let len = i32::from_be_bytes(row.get(at..at + 4)?.try_into().ok()?);
    at += 4;
    if len < 0 {
      out.push(None);
      continue;
    }
    let cell = row.get(at..at + len as usize)?;
    out.push(Some(String::from_utf8_lossy(cell).into_owned()));
    at += len as usize;
  }
  Some(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn parameters_as_postgres_reports_them() {
    let mut s = ServerState::default();
    assert!(!s.is_known());
    s.parameter("in_hot_standby", "off");
    s.parameter("default_transaction_read_only", "off");
    assert!(s.is_known() && s.is_read_write() && !s.is_standby());
    s.parameter("default_transaction_read_only", "on");
    assert!(!s.is_read_write() && !s.is_standby());
    let mut standby = ServerState::default();
    standby.parameter("in_hot_standby", "on");
    standby.parameter("default_transaction_read_only", "off");
    assert!(standby.is_standby() && standby.read_only == Some(true));
  }

  #[test]
  fn cells_of_a_row() {
    let mut row = Vec::new();
    for cell in [Some("t"), None, Some("12.5")] {
      match cell {
        Some(v) => {
          row.extend_from_slice(&(v.len() as i32).to_be_bytes());
          row.extend_from_slice(v.as_bytes());
        }
        None => row.extend_from_slice(&(-1i32).to_be_bytes()),
      }
    }
    assert_eq!(text_cells(&row), Some(vec![Some("t".into()), None, Some("12.5".into())]));
    assert_eq!(text_cells(&row[..row.len() - 1]), None);
  }
}
