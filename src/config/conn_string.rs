//! Connection strings: `postgres://` URLs (libpq's keys and Prisma's pool parameters) parsed
//! into their parts, and redacted for printing.

use percent_encoding::percent_decode_str;
use url::Url;

use super::hosts::{split_authority, PLACEHOLDER};
use crate::error::{CoreError, CoreResult};

/// Values found in a connection string.
#[derive(Debug, Default)]
pub(super) struct UrlParts {
  /// One host, or a comma-separated host list (`h1,h2`).
  pub(super) host: Option<String>,
  /// One port, or a comma-separated port list (`5432,5433`; an empty entry is the default).
  pub(super) port: Option<String>,
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
  pub(super) target_session_attrs: Option<String>,
  pub(super) load_balance_hosts: Option<String>,
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
  let encode_hint = "'@', ':', '/', '?', '#' and '&' in a password must be percent-encoded";
  if user_info_cut_short(raw) {
    return Err(invalid(format!(
      "invalid connection string {shown}: an '@' comes after a '?' or '#' in the host part; {encode_hint}"
    )));
  }
  // libpq's multi-host form (`h1:5432,h2:5433`) is not one authority to the `url` crate: the
  // host list is taken out first, and the rest parsed around a placeholder.
  let host_list = split_authority(raw);
  let parsed = host_list.as_ref().map_or(raw, |(placeholder, _, _)| placeholder.as_str());
  let url = Url::parse(parsed).map_err(|e| invalid(format!("invalid connection string {shown}: {e}")))?;
  if url.scheme() != "postgres" && url.scheme() != "postgresql" {
    return Err(invalid(format!(
      "invalid connection string {shown}: the scheme must be postgres:// or postgresql://"
    )));
  }
  // Unencoded special characters in a password split the URL in the wrong places (the rest of
  // the password can end up as the host, the database or a parameter). Refuse the shapes that
  // reveal it rather than connect somewhere unintended or print the password.
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
  if let Some((_, hosts, ports)) = host_list {
    parts.host = Some(hosts);
    parts.port = Some(check_ports(&shown, &ports)?);
  } else {
    if let Some(h) = url.host_str() {
      if !h.is_empty() {
        let h = decode(h);
        // IPv6 literals come back bracketed.
        parts.host = Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
      }
    }
    parts.port = url.port().map(|p| p.to_string());
  }
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
      "port" => parts.port = Some(check_ports(&shown, &v)?),
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
      "target_session_attrs" => parts.target_session_attrs = Some(v),
      "load_balance_hosts" => parts.load_balance_hosts = Some(v),
      // Parameters other clients understand (statement_cache_size, sslcompression, ...) are
      // accepted and ignored, so a pasted dashboard URL never fails on them.
      _ => {}
    }
  }
  Ok(parts)
}

/// A port or a port list, each entry a port number or empty (the default port).
fn check_ports(shown: &str, list: &str) -> CoreResult<String> {
  for p in list.split(',').map(str::trim) {
    if !p.is_empty() && p.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
      return Err(invalid(format!("invalid connection string {shown}: port {p} is not a port number")));
    }
  }
  Ok(list.to_string())
}

/// Whether an '@' comes after a '?' or '#' before the path: a '?' or '#' left unencoded in the
/// user info ended the host part early (`postgres://u:pa?ss@h/d`), so what would be read as the
/// host, a host list or a port may be a piece of the password. (libpq reads the user info up to
/// that '@'; the URL standard, and so `pg`, does not.)
fn user_info_cut_short(raw: &str) -> bool {
  let Some(start) = raw.find("://") else { return false };
  let rest = &raw[start + 3..];
  let before_path = &rest[..rest.find('/').unwrap_or(rest.len())];
  before_path.find(['?', '#']).is_some_and(|cut| before_path[cut..].contains('@'))
}

/// The connection string with its password replaced by `***`, safe to print.
pub fn redact_url(raw: &str) -> String {
  if user_info_cut_short(raw) {
    return scheme_only(raw);
  }
  // A multi-host URL: redacted around a placeholder, then its host list put back.
  if let Some((placeholder, _, _)) = split_authority(raw) {
    let list = raw.find("://").and_then(|start| {
      let rest = &raw[start + 3..];
      let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
      authority.rsplit('@').next()
    });
    let redacted = redact_one(&placeholder);
    return match list {
      Some(list) if redacted.contains(PLACEHOLDER) => redacted.replacen(PLACEHOLDER, list, 1),
      _ => redacted,
    };
  }
  redact_one(raw)
}

fn redact_one(raw: &str) -> String {
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
  scheme_only(raw)
}

fn scheme_only(raw: &str) -> String {
  let scheme: String = raw.chars().take_while(|c| c.is_ascii_alphanumeric() || "+.-".contains(*c)).collect();
  if !scheme.is_empty() && raw[scheme.len()..].starts_with(':') {
    format!("{scheme}:…")
  } else {
    "…".to_string()
  }
}
