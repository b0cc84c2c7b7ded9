//! Connection strings: `postgres://` URLs (libpq's keys and Prisma's pool parameters) parsed
//! into their parts, and redacted for printing.

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{CoreError, CoreResult};

/// Values found in a connection string.
#[derive(Debug, Default)]
pub(super) struct UrlParts {
  pub(super) host: Option<String>,
  pub(super) port: Option<u16>,
  pub(super) user: Option<String>,
  pub(super) password: Option<String>,
  pub(super) database: Option<String>,
  pub(super) application_name: Option<String>,
  pub(super) ssl_mode: Option<String>,
  pub(super) ssl_root_cert_path: Option<String>,
  pub(super) ssl_cert_path: Option<String>,
  pub(super) ssl_key_path: Option<String>,
  pub(super) ssl_password: Option<String>,
  pub(super) channel_binding: Option<String>,
  pub(super) ssl_negotiation: Option<String>,
  pub(super) connect_timeout_sec: Option<f64>,
  pub(super) connection_limit: Option<u32>,
  pub(super) pool_timeout_sec: Option<f64>,
  pub(super) schema: Option<String>,
  pub(super) pgbouncer: Option<bool>,
}

fn invalid(msg: String) -> CoreError {
  CoreError::config(msg)
}

fn decode(s: &str) -> String {
  percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_bool(key: &str, v: &str) -> CoreResult<bool> {
  match v.to_ascii_lowercase().as_str() {
    "true" | "1" | "yes" | "on" => Ok(true),
    "false" | "0" | "no" | "off" => Ok(false),
    _ => Err(invalid(format!("connection string parameter {key}={v} is not a boolean"))),
  }
}

fn parse_num(key: &str, v: &str) -> CoreResult<f64> {
  v.parse::<f64>()
    .ok()
    .filter(|n| n.is_finite() && *n >= 0.0)
    .ok_or_else(|| invalid(format!("connection string parameter {key}={v} is not a non-negative number")))
}

/// Parses `postgres://` / `postgresql://` URLs, including unix-socket forms
/// (`postgres:///db?host=/run/postgresql`, `postgres://%2Frun%2Fpostgresql/db`).
pub(super) fn parse_url(raw: &str) -> CoreResult<UrlParts> {
  // Messages show the URL without its parameters (which may hold a password) and, when its
  // shape is off, only the scheme.
  let shown = redact_url(raw).split(['?', '#']).next().unwrap_or("").to_string();
  let lower = raw.get(..13).unwrap_or(raw).to_ascii_lowercase();
  if !lower.starts_with("postgres://") && !lower.starts_with("postgresql://") {
    return Err(invalid(format!(
      "invalid connection string {shown}: it must start with postgres:// or postgresql://"
    )));
  }
  let url = Url::parse(raw).map_err(|e| invalid(format!("invalid connection string {shown}: {e}")))?;
  if url.scheme() != "postgres" && url.scheme() != "postgresql" {
    return Err(invalid(format!(
      "invalid connection string {shown}: the scheme must be postgres:// or postgresql://"
    )));
  }
  // Unencoded special characters in a password split the URL in the wrong places (the rest of
  // the password can end up as the host, the database or a parameter). Refuse the shapes that
  // reveal it rather than connect somewhere unintended or print the password.
  let encode_hint = "'@', ':', '/', '?', '#' and '&' in a password must be percent-encoded";
  let misshapen =
    |what: &str| invalid(format!("invalid connection string {}://…: {what}; {encode_hint}", url.scheme()));
  if url.fragment().is_some() {
    return Err(misshapen("it contains '#'"));
  }
  if url.path().contains('@') {
    return Err(misshapen(
      "the database name contains '@' (credentials go before the host: postgres://user:password@host/db)",
    ));
  }
  if url.username().is_empty() && url.password().is_some() {
    return Err(misshapen("it has a password but no user name"));
  }
  if url
    .query()
    .is_some_and(|q| q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k.contains('@'))))
  {
    return Err(misshapen("a parameter name contains '@'"));
  }
  let mut parts = UrlParts::default();
  if let Some(h) = url.host_str() {
    if !h.is_empty() {
      let h = decode(h);
      // IPv6 literals come back bracketed.
      parts.host = Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
    }
  }
  parts.port = url.port();
  if !url.username().is_empty() {
    parts.user = Some(decode(url.username()));
  }
  parts.password = url.password().map(decode);
  let path = url.path().trim_start_matches('/');
  if !path.is_empty() {
    parts.database = Some(decode(path));
  }
  for (k, v) in url.query_pairs() {
    let v = v.into_owned();
    match k.as_ref() {
      "host" => parts.host = Some(v),
      "port" => {
        parts.port = Some(v.parse().map_err(|_| {
          invalid(format!("invalid connection string {shown}: port {v} is not a port number"))
        })?)
      }
      "user" => parts.user = Some(v),
      "password" => parts.password = Some(v),
      "dbname" | "database" => parts.database = Some(v),
      "application_name" => parts.application_name = Some(v),
      "sslmode" => parts.ssl_mode = Some(v),
      "sslrootcert" => parts.ssl_root_cert_path = Some(v),
      "sslcert" => parts.ssl_cert_path = Some(v),
      "sslkey" => parts.ssl_key_path = Some(v),
      "sslpassword" => parts.ssl_password = Some(v),
      "channel_binding" => parts.channel_binding = Some(v),
      "sslnegotiation" => parts.ssl_negotiation = Some(v),
      "ssl" if parse_bool("ssl", &v)? => {
        parts.ssl_mode.get_or_insert_with(|| "require".into());
      }
      "ssl" => {}
      "connect_timeout" => parts.connect_timeout_sec = Some(parse_num("connect_timeout", &v)?),
      "connection_limit" => {
        let n = parse_num("connection_limit", &v)?;
        parts.connection_limit = Some(n as u32);
      }
      "pool_timeout" => parts.pool_timeout_sec = Some(parse_num("pool_timeout", &v)?),
      "schema" => parts.schema = Some(v),
      "pgbouncer" => parts.pgbouncer = Some(parse_bool("pgbouncer", &v)?),
      // Parameters other clients understand (statement_cache_size, sslcompression, ...) are
      // accepted and ignored, so a pasted dashboard URL never fails on them.
      _ => {}
    }
  }
  Ok(parts)
}

/// The connection string with its password replaced by `***`, safe to print.
pub fn redact_url(raw: &str) -> String {
  // Without an authority part (`postgres:/u:pw@h`), with a '#', or with an '@' in the path, a
  // password with unencoded characters split the URL and its pieces could be anywhere: treat
  // such a string as unparsable.
  let well_formed = |u: &Url| {
    matches!(u.scheme(), "postgres" | "postgresql")
      && raw.get(u.scheme().len()..u.scheme().len() + 3) == Some("://")
      && u.has_authority()
      && u.fragment().is_none()
      && !u.path().contains('@')
      && u.host_str().is_some_and(|h| !h.is_empty())
  };
  if let Ok(mut url) =
    Url::parse(raw).map_err(|_| ()).and_then(|u| if well_formed(&u) { Ok(u) } else { Err(()) })
  {
    if url.password().is_some() {
      let _ = url.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = url
      .query_pairs()
      .map(|(k, v)| {
        let secret = k == "password" || k == "sslpassword";
        let v = if secret { "***".to_string() } else { v.into_owned() };
        (k.into_owned(), v)
      })
      .collect();
    if pairs.iter().any(|(k, _)| k == "password" || k == "sslpassword") {
      url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    return url.to_string();
  }
  // Unparsable: anything after the scheme could hold a password, so show only the scheme.
  let scheme: String = raw.chars().take_while(|c| c.is_ascii_alphanumeric() || "+.-".contains(*c)).collect();
  if !scheme.is_empty() && raw[scheme.len()..].starts_with(':') {
    format!("{scheme}:…")
  } else {
    "…".to_string()
  }
}
