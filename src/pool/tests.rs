//! The pool's rules, tested with fake connections (`crate::testing`): fairness, live resizing,
//! the process budget across pools, failing and hanging connects, cancelled waiters.

use std::sync::Arc;
use std::time::Duration;

use crate::budget::Budget;
use crate::config::{ConfigInput, PoolConfig};
use crate::testing::{fake_pool, fake_pool_in, run, until, FakeConnector};

/// The fake pools' settings, applied live: `max`, and the idle timeout when given.
fn reconfigured(max: u32, idle_timeout_ms: Option<f64>) -> PoolConfig {
  PoolConfig::from_input(&ConfigInput {
    connection_string: Some("postgres://u@fake/db".into()),
    max: Some(max),
    idle_timeout_ms,
    ..Default::default()
  })
  .unwrap()
}

fn resized(max: u32) -> PoolConfig {
  reconfigured(max, None)
}

#[test]
fn waiters_are_served_first_come_first_served() {
  run(async {
    let (pool, _) = fake_pool(1, 5_000.0, None);
    let held = pool.acquire().await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
      let (pool2, order2) = (pool.clone(), order.clone());
      tasks.push(tokio::spawn(async move {
        let conn = pool2.acquire().await.unwrap();
        order2.lock().unwrap().push(i);
        pool2.give_back(conn, None);
      }));
      // Each waiter is queued before the next one starts.
      until("the waiter is queued", || pool.stats().waiting == i + 1).await;
    }
    pool.give_back(held, None);
    for t in tasks {
      t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(pool.stats().size, 1, "one connection served them all");
  });
}

#[test]
fn a_live_shrink_closes_busy_connections_as_they_come_back() {
  run(async {
    let (pool, connector) = fake_pool(3, 5_000.0, None);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let c = pool.acquire().await.unwrap();
    pool.apply(&resized(1));
    let s = pool.stats();
    assert_eq!((s.max, s.size, s.in_use), (1, 3, 3), "busy connections are not taken away");
    pool.give_back(a, None);
    assert_eq!((pool.stats().size, pool.stats().idle), (2, 0), "a surplus connection closes on return");
    pool.give_back(b, None);
    assert_eq!((pool.stats().size, pool.stats().idle), (1, 0));
    pool.give_back(c, None);
    assert_eq!((pool.stats().size, pool.stats().idle), (1, 1), "the last one within max stays idle");
    assert_eq!(connector.attempts.load(std::sync::atomic::Ordering::SeqCst), 3);
  });
}

#[test]
fn a_budget_waiter_gets_an_idle_connection_of_another_pool() {
  run(async {
    let budget: &'static Budget = Box::leak(Box::new(Budget::new(Some(1))));
    let connector = Arc::new(FakeConnector::default());
    let a = fake_pool_in(2, 2_000.0, budget, connector.clone());
    let b = fake_pool_in(2, 2_000.0, budget, connector.clone());
    let conn = a.acquire().await.unwrap();
    a.give_back(conn, None);
    assert_eq!(a.stats().idle, 1);
    // The budget is spent on A's idle connection: B's acquire closes it and opens its own.
    let conn = b.acquire().await.unwrap();
    assert_eq!((a.stats().size, b.stats().size), (0, 1));
    assert_eq!(budget.stats().used, 1);
    b.give_back(conn, None);
  });
}

#[test]
fn a_connection_that_fails_to_open_frees_its_slot() {
  run(async {
    let (pool, connector) = fake_pool(2, 2_000.0, None);
    connector.fail.lock().unwrap().push(2);
    let first = pool.acquire().await.unwrap();
    let err = pool.acquire().await.err().expect("the second open fails");
    assert_eq!(err.code(), "CONNECT_FAILED");
    assert_eq!(pool.stats().size, 1, "the failed open does not hold a slot");
    let third = pool.acquire().await.unwrap();
    assert_eq!(pool.stats().size, 2);
    pool.give_back(first, None);
    pool.give_back(third, None);
  });
}

#[test]
fn a_connect_that_never_answers_times_out_and_its_waiters_too() {
  run(async {
    let (pool, connector) = fake_pool(1, 100.0, None);
    connector.hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let opener = tokio::spawn({
      let pool = pool.clone();
      async move { pool.acquire().await.err().map(|e| e.to_string()) }
    });
    until("the open is under way", || pool.stats().size == 1).await;
    // Queued behind the hanging open: bounded by the acquire timeout.
    let waiter = pool.acquire().await.err().expect("the waiter times out");
    assert_eq!(waiter.code(), "POOL_TIMEOUT");
    // The open itself is bounded by the connect timeout (300 ms in `fake_pool`).
    let opened = opener.await.unwrap().expect("the open fails");
    assert!(opened.contains("timeout expired"), "{opened}");
    assert_eq!(pool.stats().size, 0);
    connector.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let conn = pool.acquire().await.unwrap();
    pool.give_back(conn, None);
  });
}

#[test]
fn a_cancelled_waiter_loses_no_connection() {
  run(async {
    let (pool, _) = fake_pool(1, 5_000.0, None);
    let held = pool.acquire().await.unwrap();
    let waiter = tokio::spawn({
      let pool = pool.clone();
      async move { pool.acquire().await.map(|c| c.id) }
    });
    until("the waiter is queued", || pool.stats().waiting == 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    pool.give_back(held, None);
    let s = pool.stats();
    assert_eq!(
      (s.size, s.idle, s.waiting),
      (1, 1, 0),
      "the connection came back, not to the cancelled waiter"
    );
    let again = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await;
    assert!(matches!(again, Ok(Ok(_))), "the next acquire gets it at once");
  });
}

#[test]
fn end_closes_connections_still_busy_at_its_deadline() {
  run(async {
    let (pool, _) = fake_pool(2, 5_000.0, None);
    let conn = pool.acquire().await.unwrap();
    let query = crate::conn::Query::new("select hang".into(), Vec::new()).unwrap();
    let running = conn.run(query);
    let all_closed = pool.end(Duration::from_millis(100)).await;
    assert!(!all_closed, "a connection was still busy at the deadline");
    let err = running.await.expect_err("the stuck query fails");
    assert_eq!(err.code(), "POOL_CLOSED", "{err}");
    pool.give_back(conn, None);
    assert_eq!(pool.stats().size, 0);
  });
}

#[test]
fn a_connection_going_idle_goes_to_another_pool_waiting_for_the_budget() {
  run(async {
    let budget: &'static Budget = Box::leak(Box::new(Budget::new(Some(1))));
    let connector = Arc::new(FakeConnector::default());
    let a = fake_pool_in(1, 5_000.0, budget, connector.clone());
    let b = fake_pool_in(1, 5_000.0, budget, connector.clone());
    let busy = a.acquire().await.unwrap();
    let waiting = tokio::spawn({
      let b = b.clone();
      async move { b.acquire().await }
    });
    until("B waits for the budget", || budget.stats().waiting == 1).await;
    // A's only connection goes idle: B must not wait for A's idle timeout.
    a.give_back(busy, None);
    let got = tokio::time::timeout(Duration::from_secs(2), waiting).await;
    let Ok(Ok(Ok(conn))) = got else { panic!("B got no connection when A's went idle") };
    assert_eq!((a.stats().size, b.stats().size, budget.stats().used), (0, 1, 1));
    b.give_back(conn, None);
  });
}

#[test]
fn the_counts_never_show_a_connection_past_its_idle_timeout() {
  run(async {
    let (pool, connector) = fake_pool(2, 5_000.0, None);
    pool.apply(&reconfigured(2, Some(3.0)));
    for _ in 0..10 {
      let conn = pool.acquire().await.unwrap();
      pool.give_back(conn, None);
      tokio::time::sleep(Duration::from_millis(4)).await;
      let s = pool.stats();
      assert_eq!((s.size, s.idle), (0, 0), "read after the timeout, the counts have closed it");
    }
    assert_eq!(connector.attempts.load(std::sync::atomic::Ordering::SeqCst), 10);
  });
}

#[test]
fn close_idle_closes_an_idle_connection_now_and_ignores_others() {
  run(async {
    let (pool, _) = fake_pool(2, 5_000.0, None);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let (a_id, b_id) = (a.id, b.id);
    pool.give_back(a, None);
    assert!(!pool.close_idle(b_id), "a checked-out connection is not the pool's to close");
    assert!(!pool.close_idle(u64::MAX));
    assert_eq!((pool.stats().size, pool.stats().idle), (2, 1));
    assert!(pool.close_idle(a_id));
    assert_eq!((pool.stats().size, pool.stats().idle), (1, 0), "closed at once");
    assert!(!pool.close_idle(a_id), "and only once");
    pool.give_back(b, None);
    assert_eq!((pool.stats().size, pool.stats().idle), (1, 1));
  });
}
