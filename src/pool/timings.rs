//! How fast statements run on this pool: what the sharing rule (`shared`) calls "known to be
//! fast", and the round trip it is measured against.

use std::collections::HashMap;

use super::*;

/// How long a statement may run, beyond the round trip, and still count as fast.
pub(super) const FAST: Duration = Duration::from_millis(2);

/// Statement texts whose timings the pool keeps; past this, it starts over.
const TIMINGS_KEPT: usize = 4096;

/// What the pool has seen of one statement text.
#[derive(Default, Clone, Copy)]
pub(super) struct Timing {
  /// Runs seen and, of the latest of them, how many in a row were fast (both up to 3).
  runs: u8,
  fast_streak: u8,
}

impl Timing {
  fn is_fast(self) -> bool {
    self.runs > 0 && self.fast_streak >= self.runs
  }

  fn record(&mut self, fast: bool) {
    self.runs = (self.runs + 1).min(3);
    self.fast_streak = if fast { (self.fast_streak + 1).min(3) } else { 0 };
  }
}

/// The pool's view of statement speeds and of the round trip to the server.
#[derive(Default)]
pub(super) struct Timings {
  statements: HashMap<u64, Timing>,
  /// The round trip, from the empty queries that open and check connections. It drops at once
  /// and rises slowly, so one slow moment does not make every statement look fast.
  rtt: Option<Duration>,
}

impl Timings {
  pub(super) fn is_fast(&self, statement: u64) -> bool {
    self.statements.get(&statement).is_some_and(|t| t.is_fast())
  }

  pub(super) fn rtt(&self) -> Duration {
    self.rtt.unwrap_or(Duration::ZERO)
  }

  pub(super) fn record_round_trip(&mut self, sample: Duration) {
    self.rtt = Some(match self.rtt {
      Some(rtt) if sample >= rtt => rtt + (sample - rtt) / 8,
      _ => sample,
    });
  }

  /// Statement `statement` was served in `served`; `first`: it was sent to an idle connection.
  pub(super) fn record(&mut self, statement: u64, first: bool, served: Duration) {
    // Sent to an idle connection, its time includes a round trip; pipelined, the round trip
    // overlapped with the requests ahead of it.
    let beyond_rtt = if first { served.saturating_sub(self.rtt()) } else { served };
    if self.statements.len() >= TIMINGS_KEPT && !self.statements.contains_key(&statement) {
      self.statements.clear();
    }
    self.statements.entry(statement).or_default().record(beyond_rtt <= FAST);
  }
}
