//! The config module's behaviour: parsing, precedence, redaction, validation.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn cfg(url: &str) -> PoolConfig {
  PoolConfig::from_input(&ConfigInput { connection_string: Some(url.into()), ..Default::default() }).unwrap()
}

#[test]
fn parses_full_url_with_encoded_password() {
  let c = cfg("postgresql://app:p%40ss%3Aw0rd@db.example.com:6543/shop?sslmode=prefer&application_name=web");
  assert_eq!(c.target.host, Host::Tcp("db.example.com".into()));
  assert_eq!(c.target.port, 6543);
  assert_eq!(c.target.user, "app");
  assert_eq!(c.target.database, "shop");
  assert_eq!(c.conn.password, Some(Secret("p@ss:w0rd".into())));
  assert_eq!(c.conn.ssl_mode, SslMode::Prefer);
  assert!(c.conn.application_name.starts_with("web ["), "{}", c.conn.application_name);
}

#[test]
fn unix_socket_forms() {
  let a = cfg("postgres:///shop?host=/var/run/postgresql");
  assert_eq!(a.target.host, Host::Unix("/var/run/postgresql".into()));
  let b = cfg("postgres://u@%2Ftmp%2Fpg/shop");
  assert_eq!(b.target.host, Host::Unix("/tmp/pg".into()));
}

#[test]
fn prisma_parameters_map_to_pool_options() {
  let c =
    cfg("postgres://u:p@h/d?connection_limit=3&pool_timeout=2&connect_timeout=4&schema=app&pgbouncer=true");
  assert_eq!(c.pool.max, 3);
  assert_eq!(c.pool.acquire_timeout, Duration::from_secs(2));
  assert_eq!(c.conn.connect_timeout, Duration::from_secs(4));
  assert_eq!(c.conn.search_path, None, "no session state behind PgBouncer");
  assert_eq!(c.conn.schema.as_deref(), Some("app"));
  assert!(c.pgbouncer);
  let direct = cfg("postgres://u:p@h/d?schema=app");
  assert_eq!(direct.conn.search_path.as_deref(), Some("app"));
}

#[test]
fn url_wins_over_fields_and_fields_over_env() {
  let mut env = HashMap::new();
  env.insert("PGHOST".to_string(), "envhost".to_string());
  env.insert("PGUSER".to_string(), "envuser".to_string());
  env.insert("PGDATABASE".to_string(), "envdb".to_string());
  let input = ConfigInput {
    connection_string: Some("postgres://urluser@urlhost/".into()),
    user: Some("fielduser".into()),
    database: Some("fielddb".into()),
    env,
    ..Default::default()
  };
  let c = PoolConfig::from_input(&input).unwrap();
  assert_eq!(c.target.host, Host::Tcp("urlhost".into()));
  assert_eq!(c.target.user, "urluser");
  assert_eq!(c.target.database, "fielddb");
}

#[test]
fn env_only() {
  let mut env = HashMap::new();
  env.insert("PGHOST".to_string(), "h".to_string());
  env.insert("PGPORT".to_string(), "7777".to_string());
  env.insert("USER".to_string(), "me".to_string());
  let c = PoolConfig::from_input(&ConfigInput { env, ..Default::default() }).unwrap();
  assert_eq!(c.target.port, 7777);
  assert_eq!(c.target.user, "me");
  assert_eq!(c.target.database, "me");
}

#[test]
fn rejects_bad_input_without_leaking_password() {
  for bad in [
    "mysql://u:hunter2@h/d",
    "postgres://u:hunter2@h:99999/d",
    "postgres://u:hunter2@h/d?sslmode=bogus",
    "postgres://u:hunter2@h/d?connection_limit=-1",
    "postgres:/u:hunter2@h/d",
    "postgres:u:hunter2@h/d",
    "postgres//u:hunter2@h/d",
    "postgres://u@h:99999/d?password=hunter2",
    "postgres:///:hunter2@127.0.0.1",
    "postgres://u:hun#ter2@127.0.0.1/d",
    "http:hunter2@127.0.0.1",
    "postgres://:@hunter2?@",
    "postgres://:&@hunter2?@?sslmode=",
    "postgres://@:@hunter2?@:=",
    // A '?' left in the password ends the host part early: the rest of the password must not be
    // read as a host list (shown in messages and stats) or a port.
    "postgres://:%20,hunter2?=@",
    "postgres://:,hunter2?=@",
    "postgres://u:5432,hunter2?x=1@h/d",
    "postgres://u:pw,hunter2#x@h/d",
  ] {
    let err =
      PoolConfig::from_input(&ConfigInput { connection_string: Some(bad.into()), ..Default::default() })
        .unwrap_err();
    assert_eq!(err.code(), "CONFIG_INVALID", "{bad}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
  }
}

#[test]
fn an_at_sign_in_a_parameter_after_the_path_is_a_value() {
  // The shape refused above only where the '@' comes before the path.
  assert_eq!(cfg("postgres://h/d?user=me@corp").target.user, "me@corp");
  let c = cfg("postgres://h1,h2/d?user=me@corp");
  assert_eq!((c.target.host.clone(), c.target.user.as_str()), (Host::Tcp("h1".into()), "me@corp"));
}

#[test]
fn redacts_passwords() {
  assert_eq!(redact_url("postgres://u:secret@h:5/d"), "postgres://u:***@h:5/d");
  assert!(!redact_url("postgres://h/d?password=secret").contains("secret"));
  assert!(!redact_url("postgres://u:secret@[bad/d").contains("secret"));
  assert!(!redact_url("postgres://u@h:99999/d?password=secret").contains("secret"));
  assert_eq!(redact_url("postgres//u:secret@h/d"), "…");
  assert_eq!(redact_url("postgres://u:5432,secret?x=1@h/d"), "postgres:…");
  assert_eq!(format!("{:?}", Secret("x".into())), "***");
}

#[test]
fn application_name_carries_pid_and_host_within_63_bytes() {
  assert_eq!(tag_application_name("onepool", 4242, "box"), "onepool [4242@box]");
  let long = tag_application_name(&"é".repeat(40), 4294967295, "a-very-long-host-name-indeed");
  assert!(long.len() <= 63, "{long}");
  assert!(long.ends_with(" [4294967295@a-very-long-host-nam]"), "{long}");
}

#[test]
fn zero_max_is_invalid() {
  let err = PoolConfig::from_input(&ConfigInput { max: Some(0), ..Default::default() }).unwrap_err();
  assert_eq!(err.code(), "CONFIG_INVALID");
}

fn tls_cfg(url: &str, env: &[(&str, &str)]) -> CoreResult<PoolConfig> {
  let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
  PoolConfig::from_input(&ConfigInput { connection_string: Some(url.into()), env, ..Default::default() })
}

#[test]
fn sslpassword_is_redacted_like_password() {
  let shown = redact_url("postgres://u@h/d?sslmode=require&sslpassword=k3y-secret&sslkey=/k");
  assert!(!shown.contains("k3y-secret"), "{shown}");
  assert!(shown.contains("sslkey=%2Fk") || shown.contains("sslkey=/k"), "{shown}");
}

#[test]
fn channel_binding_and_ssl_negotiation_as_libpq_reads_them() {
  let c = cfg("postgres://u@h/d");
  assert_eq!(
    (c.conn.channel_binding, c.conn.ssl_negotiation),
    (ChannelBinding::Prefer, SslNegotiation::Postgres)
  );
  let c = cfg("postgres://u@h/d?sslmode=require&channel_binding=require&sslnegotiation=direct");
  assert_eq!(
    (c.conn.channel_binding, c.conn.ssl_negotiation),
    (ChannelBinding::Require, SslNegotiation::Direct)
  );
  let from_env = tls_cfg("postgres://u@h/d?sslmode=verify-ca", &[("PGCHANNELBINDING", "disable")]).unwrap();
  assert_eq!(from_env.conn.channel_binding, ChannelBinding::Disable);
  for (url, why) in [
    ("postgres://u@h/d?channel_binding=require", "sslmode is disable"),
    ("postgres://u@h/d?sslmode=prefer&sslnegotiation=direct", "needs sslmode=require"),
    ("postgres://u@h/d?channel_binding=always", "is not one of disable, prefer, require"),
    ("postgres://u@h/d?sslmode=require&sslnegotiation=fast", "is not one of postgres, direct"),
    ("postgres://u@h/d?sslcert=/c&sslkey=/k", "sent over TLS only"),
    ("postgres://u@h/d?sslmode=require&sslcert=/c", "without its private key"),
    ("postgres://u@h/d?sslmode=require&sslkey=/k", "without its certificate"),
    ("postgres://u@h/d?sslmode=require&sslcert=/nonexistent/c&sslkey=/nonexistent/k", "cannot be read"),
  ] {
    let err = tls_cfg(url, &[]).unwrap_err().to_string();
    assert!(err.contains(why), "{url}: {err}");
  }
}

#[test]
fn pgsslcert_is_used_over_tls_only() {
  // As in libpq: the variables do not break a pool without TLS.
  let env = [("PGSSLCERT", "/nonexistent/c"), ("PGSSLKEY", "/nonexistent/k")];
  assert_eq!(tls_cfg("postgres://u@h/d", &env).unwrap().conn.client_cert, None);
  let err = tls_cfg("postgres://u@h/d?sslmode=require", &env).unwrap_err().to_string();
  assert!(err.contains("PGSSLCERT /nonexistent/c cannot be read"), "{err}");
}
