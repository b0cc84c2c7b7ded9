//! The pool's listening connection (`pool.listen`): one per pool, opened with the first
//! subscription and closed after the last. It is checked out like any other connection, so it
//! counts in `max` and the budgets, and kept out of circulation. It LISTENs to every channel
//! somebody subscribed to and hands each notification to that channel's subscribers, in the
//! order the server sent them.
//!
//! When the connection is lost, the pool opens another at once and then with backoff (100 ms
//! doubling to 10 s, jittered) for as long as anybody subscribes, issues every LISTEN again and
//! tells the subscribers (`Resumed`): notifications sent meanwhile are lost, and they may want
//! to catch up.
//!
//! A pool of several servers (`crate::cluster`) takes it from a primary its cluster picks
//! (`listen_via`). With `listenUrl` (a pool behind PgBouncer, where LISTEN cannot work) it comes
//! from a one-connection pool of its own to that URL, which this pool owns.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::*;
use crate::conn::Notification;

/// What a subscriber hears about one of its subscriptions, in this order: `Listening` (or
/// `Failed`) once, then notifications, `Resumed` after each outage, and `Ended` if the
/// subscription ends without `unsubscribe`.
pub enum ListenEvent {
  Notification(Arc<Notification>),
  /// The LISTEN for its channel is in effect.
  Listening,
  /// The first attempt to listen failed; the pool keeps trying (then `Resumed`).
  Failed(CoreError),
  /// Listening again after an outage, during which notifications were lost.
  Resumed(Outage),
  /// Replaced by a newer subscription with the same key (no reason), or its pool was ended.
  Ended(Option<CoreError>),
}

/// A time without a listening connection.
#[derive(Debug, Clone)]
pub struct Outage {
  /// When listening stopped (or the first attempt failed).
  pub since: SystemTime,
  /// Connection attempts it took to listen again, the successful one included.
  pub attempts: u32,
  /// Why listening stopped: how the connection was lost, or why the first attempt failed.
  pub cause: CoreError,
}

/// Where a subscription's events go (a JavaScript environment's queue).
pub trait Subscriber: Send + Sync {
  /// Called with the pool's listening state locked, so events arrive in order: must not block
  /// and must not call back into the pool.
  fn deliver(&self, sub: u64, event: ListenEvent);
  /// True once nobody can receive events any more (its environment is gone).
  fn is_gone(&self) -> bool;
}

/// Where a pool of several servers takes its listening connection from (its cluster, which picks
/// a primary): the pool it came from, and the connection.
pub trait ListenVia: Send + Sync {
  fn acquire(&self) -> BoxFuture<'static, CoreResult<(Arc<Pool>, Conn)>>;
}

/// Subscription ids are unique in the process: a key may move a subscription from one pool to
/// another (`crate::listen`).
static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(1);

/// Backoff between attempts to open the listening connection again.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Notifications handed to subscribers under one lock.
const DISPATCH_BATCH: usize = 256;

/// Channel names are identifiers: longer ones would be truncated by the server, and their
/// notifications would then come under a name nobody subscribed to.
const CHANNEL_MAX_BYTES: usize = 63;

/// Lock order: this state, then the pool's (`Pool::lock`), never the other way round.
#[derive(Default)]
pub(super) struct Listening {
  state: Mutex<ListenState>,
  /// Subscriptions changed or the pool closed: the task looks again.
  changed: Notify,
  /// Where the connection comes from instead of this pool (`listen_via`).
  via: std::sync::OnceLock<Arc<dyn ListenVia>>,
  /// How many of this pool's connections a listener holds (this pool's or its cluster's): they
  /// count in `size`, not in `in_use`.
  lent: AtomicUsize,
}

#[derive(Default)]
struct ListenState {
  subs: BTreeMap<u64, Sub>,
  /// The listening connection, while open, and the pool it came from.
  conn: Option<(Conn, Arc<Pool>)>,
  /// Numbers the connections installed, so a task knows whether `conn` is still its own.
  generation: u64,
  /// Channels the connection LISTENs to.
  active: HashSet<String>,
  /// A task keeps the connection (or tries to open one).
  running: bool,
  /// Since when nobody listens although somebody subscribes, and why.
  outage: Option<Outage>,
  /// With `listenUrl`: the pool the connection comes from, and the settings it was made with.
  companion: Option<(PoolConfig, Arc<Pool>)>,
}

struct Sub {
  channel: String,
  to: Arc<dyn Subscriber>,
  heard: Heard,
}

/// What a subscriber was told about its channel's LISTEN.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heard {
  Nothing,
  Listening,
  Failed,
}

/// A request on the listening connection.
type Request = std::pin::Pin<Box<dyn Future<Output = CoreResult<crate::conn::Response>> + Send>>;

/// Channels to LISTEN to and UNLISTEN in one request.
struct Listens {
  listen: Vec<String>,
  unlisten: Vec<String>,
}

/// Sends `sql` on the listening connection (`None` if there is none).
fn send(ls: &ListenState, sql: &str) -> Option<Request> {
  let query = Query::new(sql.to_string(), Vec::new()).ok()?;
  let (conn, _) = ls.conn.as_ref()?;
  Some(Box::pin(conn.run(query)))
}

/// How often a quiet listening connection is checked (`ONEPOOL_LISTEN_CHECK_MS`, default 30 s).
fn check_every() -> Duration {
  static EVERY: once_cell::sync::Lazy<Duration> = once_cell::sync::Lazy::new(|| {
    let ms = std::env::var("ONEPOOL_LISTEN_CHECK_MS").ok().and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_millis(ms.filter(|ms| *ms > 0).unwrap_or(30_000))
  });
  *EVERY
}

/// How serving a listening connection ended.
enum Served {
  /// Nobody subscribes any more, or the pool closed: the task ends.
  Done,
  /// The connection was lost (or refused a LISTEN), for this reason.
  Lost(CoreError),
  /// It was taken away (the pool closed): the task looks again.
  TakenAway,
}

/// Where the next listening connection comes from.
enum Source {
  Pool(Arc<Pool>),
  Via(Arc<dyn ListenVia>),
}

impl Source {
  async fn acquire(self) -> CoreResult<(Arc<Pool>, Conn)> {
    match self {
      Source::Pool(pool) => {
        let conn = pool.acquire().await?;
        Ok((pool, conn))
      }
      Source::Via(via) => via.acquire().await,
    }
  }
}

impl ListenState {
  /// Forgets subscribers that are gone; the channels somebody still subscribes to.
  fn wanted(&mut self) -> HashSet<String> {
    self.subs.retain(|_, s| !s.to.is_gone());
    self.subs.values().map(|s| s.channel.clone()).collect()
  }
}

/// `LISTEN "a"; UNLISTEN "b"`: one round trip for every change.
fn listen_sql(listen: &[String], unlisten: &[String]) -> String {
  let quote = |c: &String| format!("\"{}\"", c.replace('"', "\"\""));
  listen
    .iter()
    .map(|c| format!("LISTEN {};", quote(c)))
    .chain(unlisten.iter().map(|c| format!("UNLISTEN {};", quote(c))))
    .collect::<Vec<_>>()
    .join(" ")
}

/// A channel name the server will keep exactly as given.
fn check_channel(channel: &str) -> CoreResult<()> {
  if channel.is_empty() {
    return Err(CoreError::ParamInvalid("the channel name is empty".into()));
  }
  if channel.contains('\0') {
    return Err(CoreError::ParamInvalid("the channel name contains a NUL character".into()));
  }
  if channel.len() > CHANNEL_MAX_BYTES {
    return Err(CoreError::ParamInvalid(format!(
      "the channel name is {} bytes long; Postgres keeps at most {CHANNEL_MAX_BYTES} (it would truncate it)",
      channel.len()
    )));
  }
  Ok(())
}

fn backoff(failed: u32) -> Duration {
  let doubled = BACKOFF_FIRST.saturating_mul(1u32 << failed.saturating_sub(1).min(16));
  doubled.min(BACKOFF_MAX).mul_f64(rand::rng().random_range(0.5..=1.0))
}

fn lost(cause: Option<CoreError>) -> CoreError {
  cause
    .unwrap_or_else(|| CoreError::ConnectionLost("connection lost: the listening connection closed".into()))
}

impl Pool {
  fn listen_state(&self) -> MutexGuard<'_, ListenState> {
    self.listening.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Subscribes `to` to `channel`; returns the subscription's id. The subscriber hears
  /// `Listening` once the LISTEN is in effect (at once if the channel is already listened to).
  pub fn subscribe(self: &Arc<Self>, channel: &str, to: Arc<dyn Subscriber>) -> CoreResult<u64> {
    check_channel(channel)?;
    if self.is_closed() {
      return Err(self.closed_error());
    }
    {
      let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
      if s.pgbouncer && s.listen.is_none() {
        return Err(CoreError::config(format!(
          "listen() needs a session of its own, which PgBouncer in transaction mode does not give (pool \"{}\", \
           pgbouncer: true): notifications would never arrive. Give the pool a direct connection to Postgres for \
           listening: createPool({{ ..., listenUrl: 'postgres://...' }}) (directUrl is accepted too)",
          self.name
        )));
      }
    }
    let id = NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed);
    let start = {
      let mut ls = self.listen_state();
      // Checked again under this lock: `close` marks the pool closed, then ends the subscriptions
      // under it, so one added meanwhile cannot outlive the pool unheard.
      if self.lock().closed {
        return Err(self.closed_error());
      }
      let heard = if ls.conn.is_some() && ls.active.contains(channel) {
        to.deliver(id, ListenEvent::Listening);
        Heard::Listening
      } else if let Some(outage) = ls.outage.as_ref().filter(|o| o.attempts > 0) {
        // Listening is down and the last attempt failed: say so now rather than after the next.
        to.deliver(id, ListenEvent::Failed(outage.cause.clone()));
        Heard::Failed
      } else {
        Heard::Nothing
      };
      ls.subs.insert(id, Sub { channel: channel.to_string(), to, heard });
      !std::mem::replace(&mut ls.running, true)
    };
    if start {
      crate::runtime::spawn(keep_listening(Arc::downgrade(self)));
    } else {
      self.listening.changed.notify_one();
    }
    Ok(id)
  }

  /// Ends subscription `id` (no further events); false if it is not this pool's.
  pub fn unsubscribe(&self, id: u64) -> bool {
    let removed = self.listen_state().subs.remove(&id).is_some();
    if removed {
      self.listening.changed.notify_one();
    }
    removed
  }

  /// Ends subscription `id`, telling its subscriber (`Ended`) after everything it was sent.
  pub fn end_subscription(&self, id: u64) -> bool {
    let removed = {
      let mut ls = self.listen_state();
      let removed = ls.subs.remove(&id);
      if let Some(sub) = &removed {
        sub.to.deliver(id, ListenEvent::Ended(None));
      }
      removed.is_some()
    };
    if removed {
      self.listening.changed.notify_one();
    }
    removed
  }

  /// Whether subscription `id` is this pool's.
  pub fn has_subscription(&self, id: u64) -> bool {
    self.listen_state().subs.contains_key(&id)
  }

  /// Drops the subscriptions of subscribers that are gone, now rather than at the next event.
  pub fn forget_gone_subscribers(&self) {
    let forgot = {
      let mut ls = self.listen_state();
      let before = ls.subs.len();
      ls.wanted();
      ls.subs.len() < before
    };
    if forgot {
      self.listening.changed.notify_one();
    }
  }

  /// Whether this pool's listening connection is open, and how many of this pool's connections
  /// listeners hold (with `listenUrl` or several servers the connection may be another pool's).
  pub(super) fn listening_stats(&self) -> (bool, usize) {
    let open = self.listen_state().conn.is_some();
    (open, self.listening.lent.load(Ordering::Acquire))
  }

  /// Takes the listening connection from `via` (the pool's cluster) rather than from this pool.
  pub fn listen_via(&self, via: Arc<dyn ListenVia>) {
    let _ = self.listening.via.set(via);
  }

  /// The pool closes: the listening connection with it, and every subscription ends.
  pub(super) fn stop_listening(&self) {
    let (conn, companion) = {
      let mut ls = self.listen_state();
      for (id, sub) in std::mem::take(&mut ls.subs) {
        sub.to.deliver(id, ListenEvent::Ended(Some(self.closed_error())));
      }
      ls.active.clear();
      (ls.conn.take(), ls.companion.take())
    };
    if let Some((conn, from)) = conn {
      release_listening(conn, &from);
    }
    if let Some((_, pool)) = companion {
      pool.close();
    }
    self.listening.changed.notify_one();
  }

  /// Where the listening connection comes from: the pool to `listenUrl`, else the pool's
  /// cluster, else this pool.
  fn listen_source(self: &Arc<Self>) -> Source {
    let Some(cfg) = self.settings().listen else {
      return match self.listening.via.get() {
        Some(via) => Source::Via(via.clone()),
        None => Source::Pool(self.clone()),
      };
    };
    let mut ls = self.listen_state();
    if let Some((made_with, pool)) = &ls.companion {
      if *made_with == *cfg && !pool.is_closed() {
        return Source::Pool(pool.clone());
      }
    }
    let pool = Pool::new(&cfg);
    if let Some((_, old)) = ls.companion.replace((*cfg, pool.clone())) {
      old.close();
    }
    Source::Pool(pool)
  }

  /// True (and the task may end) when nobody subscribes any more or the pool is closed.
  fn listening_done(&self) -> bool {
    let closed = self.is_closed();
    let mut ls = self.listen_state();
    let done = closed || ls.wanted().is_empty();
    if done {
      ls.running = false;
      ls.outage = None;
    }
    done
  }

  /// An attempt to open the listening connection (or to LISTEN on it) failed.
  fn listen_attempt_failed(&self, err: CoreError) {
    let mut ls = self.listen_state();
    let outage =
      ls.outage.get_or_insert_with(|| Outage { since: SystemTime::now(), attempts: 0, cause: err.clone() });
    outage.attempts += 1;
    for (id, sub) in ls.subs.iter_mut().filter(|(_, s)| s.heard == Heard::Nothing) {
      sub.to.deliver(*id, ListenEvent::Failed(err.clone()));
      sub.heard = Heard::Failed;
    }
  }

  /// Makes `conn` (of pool `from`) the listening connection; its generation, or `None` (and it
  /// is closed) when the pool closed or nobody subscribes any more.
  fn install_listening(&self, conn: Conn, from: Arc<Pool>) -> Option<u64> {
    let closed = self.is_closed();
    from.listening.lent.fetch_add(1, Ordering::AcqRel);
    let refused = {
      let mut ls = self.listen_state();
      if closed || ls.wanted().is_empty() || ls.conn.is_some() {
        Some((conn, from))
      } else {
        ls.generation += 1;
        ls.active.clear();
        ls.conn = Some((conn, from));
        return Some(ls.generation);
      }
    };
    if let Some((conn, from)) = refused {
      release_listening(conn, &from);
    }
    None
  }

  /// Takes the listening connection away if it is still generation `generation`, and closes it.
  fn drop_listening(&self, generation: u64) -> bool {
    let conn = {
      let mut ls = self.listen_state();
      if ls.generation != generation || ls.conn.is_none() {
        return false;
      }
      ls.active.clear();
      ls.conn.take()
    };
    if let Some((conn, from)) = conn {
      release_listening(conn, &from);
    }
    true
  }

  /// Hands notifications to the subscribers of their channels; the connection's end, if it
  /// came with them.
  fn dispatch(&self, batch: &mut Vec<Result<Notification, CoreError>>) -> Option<CoreError> {
    let ls = self.listen_state();
    for item in batch.drain(..) {
      match item {
        Ok(n) => {
          let n = Arc::new(n);
          for (id, sub) in ls.subs.iter().filter(|(_, s)| s.channel == n.channel) {
            sub.to.deliver(*id, ListenEvent::Notification(n.clone()));
          }
        }
        Err(e) => return Some(e),
      }
    }
    None
  }

  /// The LISTENs for `listened` (and UNLISTENs for `unlistened`) are in effect on generation
  /// `generation`: subscribers of those channels hear that they are listened to.
  fn listens_done(&self, generation: u64, listened: &[String], unlistened: &[String], attempts: u32) {
    let mut ls = self.listen_state();
    if ls.generation != generation || ls.conn.is_none() {
      return;
    }
    for c in unlistened {
      ls.active.remove(c);
    }
    ls.active.extend(listened.iter().cloned());
    let outage = ls.outage.clone().map(|o| Outage { attempts: attempts + 1, ..o });
    for (id, sub) in ls.subs.iter_mut().filter(|(_, s)| listened.contains(&s.channel)) {
      match (sub.heard, &outage) {
        (Heard::Nothing, _) => sub.to.deliver(*id, ListenEvent::Listening),
        (Heard::Failed, Some(o)) | (Heard::Listening, Some(o)) => {
          sub.to.deliver(*id, ListenEvent::Resumed(o.clone()))
        }
        (Heard::Failed, None) => sub.to.deliver(*id, ListenEvent::Listening),
        (Heard::Listening, None) => {}
      }
      sub.heard = Heard::Listening;
    }
    let wanted = ls.wanted();
    if wanted.iter().all(|c| ls.active.contains(c)) {
      ls.outage = None;
    }
  }

  /// What the listening connection must LISTEN to and UNLISTEN now, with the request doing it
  /// (`None`: it is up to date); `Err(())` when it is no longer generation `generation`.
  fn listens_to_send(&self, generation: u64) -> Result<Option<(Listens, Request)>, ()> {
    let mut ls = self.listen_state();
    if ls.generation != generation {
      return Err(());
    }
    let wanted = ls.wanted();
    let mut listen: Vec<String> = wanted.iter().filter(|c| !ls.active.contains(*c)).cloned().collect();
    let mut unlisten: Vec<String> = ls.active.iter().filter(|c| !wanted.contains(*c)).cloned().collect();
    if listen.is_empty() && unlisten.is_empty() {
      return Ok(None);
    }
    listen.sort();
    unlisten.sort();
    let request = send(&ls, &listen_sql(&listen, &unlisten)).ok_or(())?;
    Ok(Some((Listens { listen, unlisten }, request)))
  }

  /// An empty query on listening connection `generation`, to learn whether it still answers.
  fn check_request(&self, generation: u64) -> Option<Request> {
    let ls = self.listen_state();
    if ls.generation != generation {
      return None;
    }
    send(&ls, "")
  }

  /// Kills listening connection `generation` (it stopped answering).
  fn kill_listening(&self, generation: u64) {
    let ls = self.listen_state();
    if let Some((conn, _)) = ls.conn.as_ref().filter(|_| ls.generation == generation) {
      conn.kill();
    }
  }

  /// Runs `request` on the listening connection, handing out the notifications that arrive
  /// meanwhile; its outcome, and the connection's end if that came with the notifications.
  async fn run_listening(
    &self,
    request: Request,
    rx: &mut mpsc::UnboundedReceiver<Result<Notification, CoreError>>,
    batch: &mut Vec<Result<Notification, CoreError>>,
  ) -> (CoreResult<crate::conn::Response>, Option<CoreError>) {
    tokio::pin!(request);
    let mut ended = None;
    let outcome = loop {
      tokio::select! {
        // The reply first: a notification read right behind it comes after `Listening`.
        biased;
        r = &mut request => break r,
        n = rx.recv_many(batch, DISPATCH_BATCH), if ended.is_none() => {
          ended = if n == 0 { Some(lost(None)) } else { self.dispatch(batch) };
        }
      }
    };
    (outcome, ended)
  }

  /// Serves listening connection `generation` until nobody subscribes, the pool closes or the
  /// connection is lost. After `check_every()` without traffic it checks that the connection
  /// still answers (within the connect timeout, as LISTENs must): a connection cut without a word
  /// (a network change, a NAT that forgot it) would otherwise listen to nothing, silently.
  async fn serve_listening(
    &self,
    generation: u64,
    mut rx: mpsc::UnboundedReceiver<Result<Notification, CoreError>>,
    attempts: u32,
  ) -> Served {
    let mut batch = Vec::with_capacity(DISPATCH_BATCH);
    let lost_now = |cause: CoreError| {
      if self.drop_listening(generation) {
        Served::Lost(cause)
      } else {
        Served::TakenAway
      }
    };
    loop {
      if self.listening_done() {
        self.drop_listening(generation);
        return Served::Done;
      }
      let (listens, request) = match self.listens_to_send(generation) {
        Err(()) => return Served::TakenAway,
        Ok(Some((listens, request))) => (Some(listens), request),
        Ok(None) => {
          tokio::select! {
            n = rx.recv_many(&mut batch, DISPATCH_BATCH) => {
              let ended = if n == 0 { Some(lost(None)) } else { self.dispatch(&mut batch) };
              if let Some(cause) = ended {
                return lost_now(cause);
              }
              continue;
            }
            _ = self.listening.changed.notified() => continue,
            _ = tokio::time::sleep(check_every()) => {}
          }
          match self.check_request(generation) {
            Some(request) => (None, request),
            None => return Served::TakenAway,
          }
        }
      };
      // A healthy server answers LISTEN and an empty query at once.
      let bound = self.settings().conn.connect_timeout;
      let (outcome, ended) =
        match tokio::time::timeout(bound, self.run_listening(request, &mut rx, &mut batch)).await {
          Ok(done) => done,
          Err(_) => {
            self.kill_listening(generation);
            return lost_now(CoreError::ConnectionLost(format!(
              "connection lost: the listening connection did not answer within {} ms",
              bound.as_millis()
            )));
          }
        };
      match (outcome, ended) {
        (Ok(_), None) => {
          if let Some(l) = listens {
            self.listens_done(generation, &l.listen, &l.unlisten, attempts);
          }
        }
        // Lost, or refused (a standby refuses LISTEN): either way, this connection is done.
        (Ok(_), Some(cause)) | (Err(_), Some(cause)) | (Err(cause), None) => return lost_now(cause),
      }
    }
  }

  /// Sleeps `delay` unless nobody subscribes any more meanwhile; false then.
  async fn listen_backoff(&self, delay: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + delay;
    loop {
      tokio::select! {
        _ = tokio::time::sleep_until(deadline) => return true,
        _ = self.listening.changed.notified() => {
          if self.listening_done() {
            return false;
          }
        }
      }
    }
  }

  /// Something went wrong with listening (no connection, or a LISTEN refused): subscribers
  /// that wait for their first LISTEN hear it, and the next attempt waits a little.
  async fn after_failed_attempt(&self, err: CoreError, failed: u32) -> bool {
    self.listen_attempt_failed(err);
    self.listen_backoff(backoff(failed)).await
  }
}

/// Closes a listening connection of pool `from` (it never goes back to the idle ones: it
/// LISTENs).
fn release_listening(conn: Conn, from: &Pool) {
  from.listening.lent.fetch_sub(1, Ordering::AcqRel);
  from.discard(conn);
}

/// Keeps a listening connection for `pool` while anybody subscribes.
async fn keep_listening(pool: Weak<Pool>) {
  // Attempts that failed since listening last worked.
  let mut failed: u32 = 0;
  loop {
    let Some(pool) = pool.upgrade() else { return };
    if pool.listening_done() {
      return;
    }
    let (from, conn) = match pool.listen_source().acquire().await {
      Ok(acquired) => acquired,
      Err(e) => {
        failed += 1;
        if !pool.after_failed_attempt(e, failed).await {
          return;
        }
        continue;
      }
    };
    let rx = conn.notifications();
    let Some(generation) = pool.install_listening(conn, from) else { continue };
    let cause = match pool.serve_listening(generation, rx, failed).await {
      Served::Done => return,
      Served::TakenAway => continue,
      Served::Lost(cause) => cause,
    };
    let was_listening = {
      let mut ls = pool.listen_state();
      let was_listening = ls.subs.values().any(|s| s.heard == Heard::Listening) && ls.outage.is_none();
      if was_listening {
        ls.outage = Some(Outage { since: SystemTime::now(), attempts: 0, cause: cause.clone() });
      }
      was_listening
    };
    if was_listening {
      // It worked until now: try again at once (a terminated backend, a restarted server).
      failed = 0;
    } else {
      failed += 1;
      if !pool.after_failed_attempt(cause, failed).await {
        return;
      }
    }
  }
}
