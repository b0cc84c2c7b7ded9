//! The sharing rule (`pool::shared`), observed with fake connections: which connection each
//! request reached, and whether it waited in the pool's queue.

use std::sync::atomic::Ordering;

use crate::testing::{conns_that_ran, fake_pool, run, submit, until};

/// Runs `sql` three times one after another, so the pool knows it as fast.
async fn learn(pool: &std::sync::Arc<super::Pool>, sql: &str) {
  for _ in 0..3 {
    submit(pool, sql).await.unwrap().unwrap();
  }
}

#[test]
fn with_room_to_open_a_burst_never_lands_behind_a_running_query() {
  run(async {
    let (pool, connector) = fake_pool(4, 5_000.0, None);
    learn(&pool, "select 1").await;
    let learned = conns_that_ran(&connector, "select 1").len();
    // The burst arrives together with the slow query, before anything shows that it is slow.
    let slow = submit(&pool, "select sleep 300");
    let burst: Vec<_> = (0..12).map(|_| submit(&pool, "select 1")).collect();
    for r in burst {
      r.await.unwrap().unwrap();
    }
    until("the server saw the slow query", || conns_that_ran(&connector, "select sleep 300").len() == 1)
      .await;
    let slow_conn = conns_that_ran(&connector, "select sleep 300")[0];
    assert!(
      !conns_that_ran(&connector, "select 1")[learned..].contains(&slow_conn),
      "a fast query went behind the slow one while connections could be opened: {:?}",
      connector.log.lock().unwrap()
    );
    assert!(pool.stats().size <= 4);
    slow.await.unwrap().unwrap();
  });
}

#[test]
fn at_max_fast_queries_pipeline_behind_fast_work_only() {
  run(async {
    let (pool, connector) = fake_pool(2, 5_000.0, None);
    learn(&pool, "select 1").await;
    // Two connections: one runs a slow query, the other takes the burst.
    let warm = [submit(&pool, "select sleep 1"), submit(&pool, "select sleep 1")];
    for w in warm {
      w.await.unwrap().unwrap();
    }
    assert_eq!(pool.stats().size, 2);
    let slow = submit(&pool, "select sleep 300");
    until("the slow query runs", || conns_that_ran(&connector, "select sleep 300").len() == 1).await;
    let slow_conn = conns_that_ran(&connector, "select sleep 300")[0];
    let mut slow = Box::pin(slow);
    let burst: Vec<_> = (0..30).map(|_| submit(&pool, "select 1")).collect();
    for r in burst {
      tokio::select! {
        biased;
        done = r => { done.unwrap().unwrap(); }
        _ = &mut slow => panic!("a fast query waited for the slow one"),
      }
    }
    assert!(!conns_that_ran(&connector, "select 1")[3..].contains(&slow_conn));
    slow.await.unwrap().unwrap();
  });
}

#[test]
fn a_statement_not_known_to_be_fast_is_never_joined() {
  run(async {
    let (pool, _) = fake_pool(1, 5_000.0, None);
    learn(&pool, "select 1").await;
    let unknown = submit(&pool, "select sleep 100");
    until("it runs", || pool.stats().idle == 0).await;
    let fast = submit(&pool, "select 1");
    assert_eq!(pool.stats().waiting, 1, "the fast query waits in the queue, not behind the unknown one");
    unknown.await.unwrap().unwrap();
    fast.await.unwrap().unwrap();
  });
}

#[test]
fn a_fast_statement_that_overruns_stops_others_from_joining() {
  run(async {
    let (pool, connector) = fake_pool(1, 5_000.0, None);
    learn(&pool, "select flaky").await;
    learn(&pool, "select 1").await;
    connector.flaky_ms.store(300, Ordering::SeqCst);
    let flaky = submit(&pool, "select flaky");
    // Known fast, so a request may join it at first; once it overruns the bound, none may.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let fast = submit(&pool, "select 1");
    assert_eq!(pool.stats().waiting, 1, "queued, not pipelined behind the overrunning query");
    flaky.await.unwrap().unwrap();
    fast.await.unwrap().unwrap();
    // Its slow run makes it unknown again: nothing joins it next time either.
    connector.flaky_ms.store(100, Ordering::SeqCst);
    let flaky = submit(&pool, "select flaky");
    until("it runs", || pool.stats().idle == 0).await;
    let fast = submit(&pool, "select 1");
    assert_eq!(pool.stats().waiting, 1);
    flaky.await.unwrap().unwrap();
    fast.await.unwrap().unwrap();
  });
}

#[test]
fn a_queued_request_times_out_with_pool_timeout() {
  run(async {
    let (pool, _) = fake_pool(1, 100.0, None);
    let hung = submit(&pool, "select hang");
    until("it runs", || pool.stats().idle == 0 && pool.stats().size == 1).await;
    let err = submit(&pool, "select 1").await.unwrap().expect_err("times out");
    assert_eq!(err.code(), "POOL_TIMEOUT");
    assert!(matches!(err, crate::error::CoreError::PoolTimeout(crate::error::TimeoutKind::Acquire, _)));
    assert_eq!(pool.stats().waiting, 0);
    drop(hung);
  });
}

#[test]
fn queued_requests_and_checkouts_are_served_in_arrival_order() {
  run(async {
    let (pool, connector) = fake_pool(1, 5_000.0, None);
    let held = pool.acquire().await.unwrap();
    let first = submit(&pool, "select sleep 1");
    let checkout = tokio::spawn({
      let pool = pool.clone();
      async move {
        let conn = pool.acquire().await.unwrap();
        let ran = conns_len(&pool);
        pool.give_back(conn, None);
        ran
      }
    });
    until("both wait", || pool.stats().waiting == 2).await;
    let last = submit(&pool, "select sleep 2");
    pool.give_back(held, None);
    first.await.unwrap().unwrap();
    checkout.await.unwrap();
    last.await.unwrap().unwrap();
    let log: Vec<String> =
      connector.log.lock().unwrap().iter().filter(|(_, s)| !s.is_empty()).map(|(_, s)| s.clone()).collect();
    assert_eq!(log, vec!["select sleep 1".to_string(), "select sleep 2".to_string()]);
  });
}

fn conns_len(pool: &std::sync::Arc<super::Pool>) -> usize {
  pool.stats().size
}

#[test]
fn a_slow_statement_stays_slow_however_often_it_runs_alone() {
  run(async {
    let (pool, _) = fake_pool(1, 5_000.0, None);
    // Each run goes to an idle connection: its time is round trip plus 20 ms of work, and only
    // the pings measure the round trip, so the work is never mistaken for it.
    learn(&pool, "select sleep 20").await;
    learn(&pool, "select 1").await;
    let slow = submit(&pool, "select sleep 20");
    until("it runs", || pool.stats().idle == 0).await;
    let fast = submit(&pool, "select 1");
    assert_eq!(pool.stats().waiting, 1, "queued, not pipelined behind a slow statement");
    slow.await.unwrap().unwrap();
    fast.await.unwrap().unwrap();
  });
}

#[test]
fn queued_fast_requests_go_ahead_of_a_slow_one_on_the_connection_it_gets() {
  run(async {
    let (pool, connector) = fake_pool(1, 5_000.0, None);
    learn(&pool, "select 1").await;
    let held = pool.acquire().await.unwrap();
    let slow = submit(&pool, "select sleep 200");
    let fast: Vec<_> = (0..5).map(|_| submit(&pool, "select 1")).collect();
    assert_eq!(pool.stats().waiting, 6);
    pool.give_back(held, None);
    let mut slow = Box::pin(slow);
    for r in fast {
      tokio::select! {
        biased;
        done = r => { done.unwrap().unwrap(); }
        _ = &mut slow => panic!("a fast query waited for the slow one queued before it"),
      }
    }
    slow.await.unwrap().unwrap();
    let order: Vec<String> = connector
      .log
      .lock()
      .unwrap()
      .iter()
      .filter(|(_, s)| !s.is_empty())
      .map(|(_, s)| s.clone())
      .skip(3)
      .collect();
    assert_eq!(order.last().map(String::as_str), Some("select sleep 200"));
  });
}
