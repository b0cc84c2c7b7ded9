//! Which server takes a request.
//!
//! The pool's own requests (`Intent::Target`) go to a server of the host list that
//! `target_session_attrs` accepts: the first in the list's order, or a random one with
//! `load_balance_hosts=random`. Reads sent through `pool.replica` (`Intent::Replica`) go to a
//! standby (a replica, or a standby of the host list), a random one of those up, and to the
//! pool's own server when no standby is up. The listening connection (`Intent::Listen`) goes to
//! a primary of the host list, whatever `target_session_attrs` says: notifications exist only
//! there (a standby refuses LISTEN and NOTIFY alike).
//!
//! Only servers known to be up and of the right kind are picked. When none is, the request
//! waits while a server may still turn out right (its kind is unknown yet, it is due to be tried
//! again, or it is up but of another kind: a failover may be under way) and fails at once when
//! every server is down.

use rand::seq::{IndexedRandom, SliceRandom};

use super::check::{availability, Availability};
use super::*;
use crate::config::LoadBalance;
use crate::conn::ServerState;
use crate::error::{ConnectCause, CoreError};

/// What a request needs of its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
  /// The pool's own requests: `target_session_attrs` over the host list.
  Target,
  /// Reads for a standby (`pool.replica`).
  Replica,
  /// The listening connection (`pool.listen`): a primary of the host list.
  Listen,
}

impl Intent {
  /// What this intent needs of a server of the host list, given the pool's `target_session_attrs`.
  fn session_attrs(self, pool: SessionAttrs) -> SessionAttrs {
    match self {
      Intent::Listen => SessionAttrs::Primary,
      Intent::Target | Intent::Replica => pool,
    }
  }
}

pub(super) enum Pick {
  Use(usize),
  /// Nothing fits now, but something may soon.
  Wait,
  Fail(CoreError),
}

/// Whether `attrs` accepts a server in `state` (libpq's rules). `prefer-standby` accepts any;
/// its preference is applied by the order of the search.
pub(super) fn accepts(attrs: SessionAttrs, state: &ServerState) -> bool {
  match attrs {
    SessionAttrs::Any | SessionAttrs::PreferStandby => true,
    SessionAttrs::ReadWrite => state.is_read_write(),
    SessionAttrs::ReadOnly => state.read_only == Some(true),
    SessionAttrs::Primary => state.standby == Some(false),
    SessionAttrs::Standby => state.is_standby(),
  }
}

impl Cluster {
  /// Picks a server for a request now; kicks checks of servers whose state is unknown or due
  /// to be looked at again.
  pub(super) fn pick(&self, intent: Intent) -> Pick {
    let now = Instant::now();
    let routing = self.routing();
    let attrs = intent.session_attrs(routing.session_attrs);
    let avail: Vec<Availability> = self.members.iter().map(|m| availability(m.pool.server(), now)).collect();
    // Servers nobody has heard from, and those due to be tried again, are looked at now.
    for (i, a) in avail.iter().enumerate() {
      if matches!(a, Availability::Unknown | Availability::Down { due: true }) {
        self.recheck(i, now);
      }
    }
    if intent == Intent::Replica {
      let standbys: Vec<usize> = (0..self.members.len())
        .filter(|&i| matches!(&avail[i], Availability::Up(s) if s.is_standby()))
        .collect();
      if let Some(&i) = standbys.choose(&mut rand::rng()) {
        return Pick::Use(i);
      }
    }
    let mut order: Vec<usize> = (0..self.members.len()).filter(|&i| self.members[i].listed).collect();
    if routing.load_balance == LoadBalance::Random {
      order.shuffle(&mut rand::rng());
    }
    // The first server in `order` that fits. As libpq tries hosts in their order, one not heard
    // from yet is waited for; in random order, any that fits will do.
    let first = |standby_only: bool, strict: bool| {
      for &i in &order {
        match &avail[i] {
          Availability::Up(s) if accepts(attrs, s) && (!standby_only || s.is_standby()) => {
            return Some(Pick::Use(i))
          }
          Availability::Unknown if strict => return Some(Pick::Wait),
          _ => {}
        }
      }
      None
    };
    let in_order = routing.load_balance == LoadBalance::Disable;
    if attrs == SessionAttrs::PreferStandby {
      // A standby may be among those not heard from yet: libpq tries every host for one first.
      if let Some(pick) = first(true, true) {
        return pick;
      }
    }
    if let Some(pick) = first(false, in_order) {
      return pick;
    }
    let may_change = order.iter().any(|&i| !matches!(avail[i], Availability::Down { due: false }));
    if !may_change {
      return Pick::Fail(self.all_down(&order));
    }
    // Up, but of another kind: look again soon, it may be promoted.
    for &i in &order {
      if matches!(avail[i], Availability::Up(_)) {
        self.recheck(i, now);
      }
    }
    Pick::Wait
  }

  /// Every server of `order` failed to open a connection: the first one's cause, with each
  /// server's reason when there are several.
  fn all_down(&self, order: &[usize]) -> CoreError {
    let failures: Vec<(String, CoreError)> = order
      .iter()
      .filter_map(|&i| {
        let failure = self.members[i].pool.server().get().failure?;
        Some((self.members[i].target.endpoint(), failure.error))
      })
      .collect();
    let Some((_, first)) = failures.first() else {
      return self.no_server("no server is up".into());
    };
    if failures.len() == 1 {
      return first.clone();
    }
    let each: Vec<String> = failures.iter().map(|(at, e)| format!("{at}: {}", reason(e))).collect();
    let message = each.join("; ");
    let cause = match first {
      CoreError::ConnectFailed { cause: ConnectCause::Os { code, .. }, .. } => {
        ConnectCause::Os { code: code.clone(), message }
      }
      CoreError::ConnectFailed { cause: ConnectCause::Server(db), .. } => ConnectCause::Server(db.clone()),
      _ => ConnectCause::Other(message),
    };
    CoreError::ConnectFailed { target: self.servers.to_string(), cause }
  }

  /// No server of the kind `intent` needs turned up in time: what each one is.
  pub(super) fn none_fits(&self, intent: Intent) -> CoreError {
    let now = Instant::now();
    let attrs = intent.session_attrs(self.routing().session_attrs);
    let each: Vec<String> = self
      .members
      .iter()
      .filter(|m| m.listed || intent == Intent::Replica)
      .map(|m| {
        let server = m.pool.server().get();
        let what = match availability(m.pool.server(), now) {
          Availability::Up(s) if s.is_standby() => "a standby".to_string(),
          Availability::Up(s) if s.read_only == Some(true) => "a read-only primary".to_string(),
          Availability::Up(_) => "a primary".to_string(),
          Availability::Down { .. } => match &server.failure {
            Some(f) => format!("down ({})", reason(&f.error)),
            None => "down".to_string(),
          },
          Availability::Unknown => "not reached yet".to_string(),
        };
        format!("{}: {what}", m.target.endpoint())
      })
      .collect();
    let wanted = match intent {
      Intent::Listen => "no primary to LISTEN on (a standby refuses LISTEN)".to_string(),
      _ => format!("no server accepted by target_session_attrs={}", attrs.as_str()),
    };
    self.no_server(format!("{wanted} within {} ms: {}", self.connect_timeout().as_millis(), each.join("; ")))
  }

  fn no_server(&self, message: String) -> CoreError {
    CoreError::ConnectFailed { target: self.servers.to_string(), cause: ConnectCause::Other(message) }
  }
}

/// The cause of a failed connect, without the target it names.
fn reason(e: &CoreError) -> String {
  match e {
    CoreError::ConnectFailed { cause: ConnectCause::Os { code, message }, .. } => {
      format!("{message} ({code})")
    }
    CoreError::ConnectFailed { cause: ConnectCause::Server(db), .. } => {
      format!("{} ({})", db.message, db.code)
    }
    CoreError::ConnectFailed { cause: ConnectCause::Timeout, .. } => "connect timed out".into(),
    CoreError::ConnectFailed { cause: ConnectCause::Other(m), .. } => m.clone(),
    other => other.to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn libpq_rules() {
    let primary = ServerState { standby: Some(false), read_only: Some(false) };
    let read_only_primary = ServerState { standby: Some(false), read_only: Some(true) };
    let standby = ServerState { standby: Some(true), read_only: Some(true) };
    let table = [
      (SessionAttrs::Any, [true, true, true]),
      (SessionAttrs::ReadWrite, [true, false, false]),
      (SessionAttrs::ReadOnly, [false, true, true]),
      (SessionAttrs::Primary, [true, true, false]),
      (SessionAttrs::Standby, [false, false, true]),
      (SessionAttrs::PreferStandby, [true, true, true]),
    ];
    for (attrs, expected) in table {
      let got = [primary, read_only_primary, standby].map(|s| accepts(attrs, &s));
      assert_eq!(got, expected, "{attrs:?}");
    }
  }
}
