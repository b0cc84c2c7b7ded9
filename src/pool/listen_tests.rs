//! The listening connection's rules with fake connections (`crate::testing`): opened with the
//! first subscription and counted in the pool, one LISTEN per channel, closed after the last
//! subscription; a failed first attempt, retried; subscriptions ended with the pool. Delivery of
//! real notifications and reconnects after a lost connection are tested against a real server
//! (`__test__/core/listen.test.js`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::budget::Budget;
use crate::config::{ConfigInput, PoolConfig};
use crate::pool::{ListenEvent, Pool, Subscriber};
use crate::testing::{fake_pool, run, until, FakeConnector};

#[derive(Default)]
struct Heard {
  events: Mutex<Vec<(u64, String)>>,
  gone: AtomicBool,
}

impl Heard {
  fn saw(&self, sub: u64, what: &str) -> bool {
    self.events.lock().unwrap().iter().any(|(s, w)| *s == sub && w.starts_with(what))
  }
}

impl Subscriber for Heard {
  fn deliver(&self, sub: u64, event: ListenEvent) {
    let what = match event {
      ListenEvent::Notification(n) => format!("notification {}", n.payload),
      ListenEvent::Listening => "listening".into(),
      ListenEvent::Failed(e) => format!("failed {}", e.code()),
      ListenEvent::Resumed(o) => format!("resumed after {} attempts", o.attempts),
      ListenEvent::Ended(_) => "ended".into(),
    };
    self.events.lock().unwrap().push((sub, what));
  }
  fn is_gone(&self) -> bool {
    self.gone.load(Ordering::SeqCst)
  }
}

fn listens(connector: &FakeConnector) -> Vec<String> {
  connector.log.lock().unwrap().iter().filter(|(_, s)| s.contains("LISTEN")).map(|(_, s)| s.clone()).collect()
}

#[test]
fn one_listening_connection_counted_in_the_pool_opened_first_and_closed_after_the_last() {
  run(async {
    let (pool, connector) = fake_pool(3, 5_000.0, None);
    let heard = Arc::new(Heard::default());
    let a = pool.subscribe("orders", heard.clone()).unwrap();
    until("the first subscription is listened to", || heard.saw(a, "listening")).await;
    let s = pool.stats();
    assert_eq!((s.size, s.idle, s.in_use, s.listening), (1, 0, 0, 1), "counted in size, not in use");
    // A second subscription to the same channel needs no LISTEN: it is listened to at once.
    let b = pool.subscribe("orders", heard.clone()).unwrap();
    assert!(heard.saw(b, "listening"));
    let c = pool.subscribe("Weird \"name\"", heard.clone()).unwrap();
    until("the second channel is listened to", || heard.saw(c, "listening")).await;
    assert_eq!(listens(&connector), vec![r#"LISTEN "orders";"#, r#"LISTEN "Weird ""name""";"#]);
    assert_eq!(pool.stats().size, 1, "still one connection");
    assert!(pool.unsubscribe(c));
    until("the channel is unlistened", || listens(&connector).len() == 3).await;
    assert_eq!(listens(&connector)[2], r#"UNLISTEN "Weird ""name""";"#);
    assert!(pool.unsubscribe(a) && pool.unsubscribe(b));
    assert!(!pool.unsubscribe(a), "twice is a no-op");
    until("the listening connection closes", || pool.stats().size == 0).await;
    assert_eq!(pool.stats().listening, 0);
    // The next subscription opens a new one.
    let d = pool.subscribe("orders", heard.clone()).unwrap();
    until("listened to again", || heard.saw(d, "listening")).await;
    assert_eq!(pool.stats().created, 2);
    pool.unsubscribe(d);
  });
}

#[test]
fn a_failed_first_attempt_is_reported_and_retried() {
  run(async {
    let (pool, connector) = fake_pool(2, 5_000.0, None);
    connector.fail.lock().unwrap().push(1);
    let heard = Arc::new(Heard::default());
    let a = pool.subscribe("jobs", heard.clone()).unwrap();
    until("the failure is reported", || heard.saw(a, "failed CONNECT_FAILED")).await;
    // Subscribing while listening is down hears about it at once.
    let b = pool.subscribe("jobs", heard.clone()).unwrap();
    assert!(heard.saw(b, "failed CONNECT_FAILED"));
    until("listening resumes after the backoff", || heard.saw(a, "resumed after 2 attempts")).await;
    assert!(heard.saw(b, "resumed"));
    pool.unsubscribe(a);
    pool.unsubscribe(b);
    until("closed", || pool.stats().size == 0).await;
  });
}

#[test]
fn ending_the_pool_ends_its_subscriptions_and_closes_the_listening_connection_at_once() {
  run(async {
    let (pool, _) = fake_pool(2, 5_000.0, None);
    let heard = Arc::new(Heard::default());
    let a = pool.subscribe("c", heard.clone()).unwrap();
    until("listening", || heard.saw(a, "listening")).await;
    pool.close();
    assert!(heard.saw(a, "ended"));
    assert_eq!(pool.stats().size, 0, "closed synchronously, not when a task gets to it");
    assert_eq!(pool.subscribe("c", heard.clone()).unwrap_err().code(), "POOL_CLOSED");
  });
}

#[test]
fn a_gone_subscriber_is_forgotten() {
  run(async {
    let (pool, _) = fake_pool(2, 5_000.0, None);
    let heard = Arc::new(Heard::default());
    let a = pool.subscribe("c", heard.clone()).unwrap();
    until("listening", || heard.saw(a, "listening")).await;
    heard.gone.store(true, Ordering::SeqCst);
    pool.forget_gone_subscribers();
    until("the listening connection closes", || pool.stats().size == 0).await;
    assert!(!pool.has_subscription(a));
  });
}

#[test]
fn behind_pgbouncer_listen_needs_a_direct_url() {
  let cfg = |listen_url: Option<&str>| {
    PoolConfig::from_input(&ConfigInput {
      connection_string: Some("postgres://u@fake/db?pgbouncer=true".into()),
      listen_url: listen_url.map(str::to_string),
      ..Default::default()
    })
    .unwrap()
  };
  let budget: &'static Budget = Box::leak(Box::new(Budget::new(None)));
  let pool = Pool::with(&cfg(None), Arc::new(FakeConnector::default()), budget);
  let err = pool.subscribe("c", Arc::new(Heard::default())).unwrap_err();
  assert_eq!(err.code(), "CONFIG_INVALID");
  assert!(err.to_string().contains("listenUrl"), "{err}");
  let direct = cfg(Some("postgres://u:secret@db.internal:5433/db"));
  let listen = direct.listen.as_ref().expect("a listen pool");
  assert_eq!(listen.target.to_string(), "u@db.internal:5433/db");
  assert_eq!((listen.pool.max, listen.pgbouncer), (1, false));
  pool.close();
}

#[test]
fn channel_names_are_checked() {
  run(async {
    let (pool, _) = fake_pool(2, 5_000.0, None);
    for bad in ["", "a\0b", &"x".repeat(64)] {
      assert_eq!(
        pool.subscribe(bad, Arc::new(Heard::default())).unwrap_err().code(),
        "PARAM_INVALID",
        "{bad:?}"
      );
    }
    assert_eq!(pool.stats().size, 0);
  });
}
