//! Multi-host targets, read as libpq reads them: a host list (`h1:5432,h2:5433` in a URL's
//! authority, `host=a,b&port=1,2` parameters, `host`/`port` lists in the options, `PGHOST` /
//! `PGPORT`), which kind of server a connection must land on (`target_session_attrs`), whether
//! hosts are tried in random order (`load_balance_hosts`), and the read replicas.

use std::fmt;

use super::{Host, Target};
use crate::error::{CoreError, CoreResult};

/// libpq's `target_session_attrs`: which kind of server a connection must land on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionAttrs {
  #[default]
  Any,
  /// Not in hot standby and `default_transaction_read_only` off.
  ReadWrite,
  /// In hot standby, or `default_transaction_read_only` on.
  ReadOnly,
  /// Not in hot standby.
  Primary,
  /// In hot standby.
  Standby,
  /// A standby when one is up, else any server.
  PreferStandby,
}

impl SessionAttrs {
  pub fn parse(v: &str) -> CoreResult<SessionAttrs> {
    Ok(match v {
      "any" => SessionAttrs::Any,
      "read-write" => SessionAttrs::ReadWrite,
      "read-only" => SessionAttrs::ReadOnly,
      "primary" => SessionAttrs::Primary,
      "standby" => SessionAttrs::Standby,
      "prefer-standby" => SessionAttrs::PreferStandby,
      other => {
        return Err(CoreError::config(format!(
          "target_session_attrs \"{other}\" is not one of any, read-write, read-only, primary, standby, prefer-standby"
        )))
      }
    })
  }

  pub fn as_str(self) -> &'static str {
    match self {
      SessionAttrs::Any => "any",
      SessionAttrs::ReadWrite => "read-write",
      SessionAttrs::ReadOnly => "read-only",
      SessionAttrs::Primary => "primary",
      SessionAttrs::Standby => "standby",
      SessionAttrs::PreferStandby => "prefer-standby",
    }
  }
}

/// libpq's `load_balance_hosts`: hosts in the listed order, or in random order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoadBalance {
  #[default]
  Disable,
  Random,
}

impl LoadBalance {
  pub fn parse(v: &str) -> CoreResult<LoadBalance> {
    match v {
      "disable" => Ok(LoadBalance::Disable),
      "random" => Ok(LoadBalance::Random),
      other => {
        Err(CoreError::config(format!("load_balance_hosts \"{other}\" is not one of disable, random")))
      }
    }
  }
}

/// Every server a pool may connect to: with `name`, its identity. `hosts` is the host list in
/// its order (one server for most pools); `replicas` are servers only reads go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Servers {
  pub hosts: Vec<Target>,
  pub replicas: Vec<Target>,
}

impl Servers {
  /// One server and no replicas: nothing to choose between.
  pub fn is_single(&self) -> bool {
    self.hosts.len() == 1 && self.replicas.is_empty()
  }
}

impl Target {
  /// `host:port` (`[v6]:port`), as a host list shows it.
  pub fn endpoint(&self) -> String {
    match &self.host {
      Host::Tcp(h) if h.contains(':') => format!("[{h}]:{}", self.port),
      h => format!("{h}:{}", self.port),
    }
  }
}

/// `user@h1:5432,h2:5433/db`, and the replicas after it: `user@h1:5432/db replicas r1:5432`.
impl fmt::Display for Servers {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(first) = self.hosts.first() else { return f.write_str("(no server)") };
    if self.hosts.len() == 1 {
      // As a single-server target always printed (IPv6 without brackets included).
      write!(f, "{first}")?;
    } else {
      let list: Vec<String> = self.hosts.iter().map(Target::endpoint).collect();
      write!(f, "{}@{}/{}", first.user, list.join(","), first.database)?;
    }
    if !self.replicas.is_empty() {
      let list: Vec<String> = self.replicas.iter().map(Target::endpoint).collect();
      write!(f, " replicas {}", list.join(","))?;
    }
    Ok(())
  }
}

/// How a pool with several servers picks one. May change live under the same identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Routing {
  pub session_attrs: SessionAttrs,
  pub load_balance: LoadBalance,
}

/// Pairs a host list with a port list as libpq does: one port for every host, or one port per
/// host; an empty port is `default_port`.
pub(super) fn pair_up(hosts: &str, ports: Option<&str>, default_port: u16) -> CoreResult<Vec<(Host, u16)>> {
  let names: Vec<&str> = hosts.split(',').map(str::trim).collect();
  let ports: Vec<u16> = match ports {
    None => vec![default_port],
    Some(list) => list.split(',').map(|p| port(p.trim(), default_port)).collect::<CoreResult<_>>()?,
  };
  if ports.len() != 1 && ports.len() != names.len() {
    return Err(CoreError::config(format!(
      "{} ports given for {} hosts: give one port for all hosts, or one per host",
      ports.len(),
      names.len()
    )));
  }
  names
    .iter()
    .enumerate()
    .map(|(i, name)| {
      if name.is_empty() {
        return Err(CoreError::config(if names.len() == 1 {
          "host is empty".to_string()
        } else {
          format!("host list entry {} is empty", i + 1)
        }));
      }
      let host = if name.starts_with('/') { Host::Unix(name.into()) } else { Host::Tcp(name.to_string()) };
      Ok((host, ports[if ports.len() == 1 { 0 } else { i }]))
    })
    .collect()
}

fn port(text: &str, default_port: u16) -> CoreResult<u16> {
  if text.is_empty() {
    return Ok(default_port);
  }
  text
    .parse::<u16>()
    .ok()
    .filter(|p| *p > 0)
    .ok_or_else(|| CoreError::config(format!("port {text} is not a port number (1 to 65535)")))
}

/// The host list of a multi-host URL (`postgres://u@h1:5432,h2:5433/db`), which the `url`
/// crate cannot read as one authority: the URL with a placeholder host in its place, the hosts
/// (percent-decoded, IPv6 without brackets) and their ports, each joined with commas. `None`
/// for a URL with one host (or none).
pub(super) fn split_authority(raw: &str) -> Option<(String, String, String)> {
  let start = raw.find("://")? + 3;
  let rest = &raw[start..];
  let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
  let authority = &rest[..end];
  let at = authority.rfind('@').map_or(0, |i| i + 1);
  let list = &authority[at..];
  if !list.contains(',') {
    return None;
  }
  let mut hosts = Vec::new();
  let mut ports = Vec::new();
  for item in list.split(',') {
    let (host, port) = match item.strip_prefix('[') {
      Some(v6) => match v6.split_once(']') {
        Some((h, tail)) => (h, tail.strip_prefix(':').unwrap_or(tail)),
        None => (item, ""),
      },
      None => item.rsplit_once(':').unwrap_or((item, "")),
    };
    hosts.push(percent_encoding::percent_decode_str(host).decode_utf8_lossy().into_owned());
    ports.push(port.to_string());
  }
  let placeholder = format!("{}{}{PLACEHOLDER}{}", &raw[..start], &authority[..at], &rest[end..]);
  Some((placeholder, hosts.join(","), ports.join(",")))
}

/// Stands in for a host list while the `url` crate parses the rest of a multi-host URL.
pub(super) const PLACEHOLDER: &str = "onepool-host-list.invalid";

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn pairs_hosts_with_one_port_or_one_each() {
    let one = pair_up("a,b", Some("6000"), 5432).unwrap();
    assert_eq!(one, vec![(Host::Tcp("a".into()), 6000), (Host::Tcp("b".into()), 6000)]);
    let each = pair_up("a,/tmp,b", Some("1,,3"), 5432).unwrap();
    assert_eq!(
      each,
      vec![(Host::Tcp("a".into()), 1), (Host::Unix("/tmp".into()), 5432), (Host::Tcp("b".into()), 3)]
    );
    assert_eq!(pair_up("a,b", None, 7).unwrap()[1], (Host::Tcp("b".into()), 7));
    for (hosts, ports) in [("a,b,c", Some("1,2")), ("a,,b", None), ("a", Some("x")), ("a", Some("0"))] {
      assert_eq!(pair_up(hosts, ports, 5432).unwrap_err().code(), "CONFIG_INVALID", "{hosts} {ports:?}");
    }
  }

  #[test]
  fn splits_a_multi_host_authority() {
    let (url, hosts, ports) = split_authority("postgres://u:p%40@h1:5432,[::1]:5433,h3/db?x=1").unwrap();
    assert_eq!(url, format!("postgres://u:p%40@{PLACEHOLDER}/db?x=1"));
    assert_eq!(hosts, "h1,::1,h3");
    assert_eq!(ports, "5432,5433,");
    assert!(split_authority("postgres://u@h1:5432/db").is_none());
    assert!(split_authority("postgres:///db?host=a,b").is_none());
  }

  #[test]
  fn prints_the_host_list_and_replicas() {
    let t =
      |h: &str, port| Target { host: Host::Tcp(h.into()), port, database: "db".into(), user: "u".into() };
    let s = Servers { hosts: vec![t("a", 1), t("::1", 2)], replicas: vec![t("r", 3)] };
    assert_eq!(s.to_string(), "u@a:1,[::1]:2/db replicas r:3");
    let one = Servers { hosts: vec![t("a", 1)], replicas: vec![] };
    assert_eq!(one.to_string(), "u@a:1/db");
  }

  use crate::config::{ConfigInput, PoolConfig};

  fn resolve(input: ConfigInput) -> crate::error::CoreResult<PoolConfig> {
    PoolConfig::from_input(&input)
  }

  fn url(u: &str) -> ConfigInput {
    ConfigInput { connection_string: Some(u.into()), ..Default::default() }
  }

  fn endpoints(targets: &[Target]) -> Vec<String> {
    targets.iter().map(|t| format!("{}:{}", t.host, t.port)).collect()
  }

  #[test]
  fn multi_host_urls_parameters_options_and_environment() {
    let c = resolve(url("postgres://app:p%40ss@h1:5432,h2:5433,[::1]/shop?target_session_attrs=read-write"))
      .unwrap();
    assert_eq!(endpoints(&c.servers.hosts), ["h1:5432", "h2:5433", "::1:5432"]);
    assert!(c.servers.hosts.iter().all(|t| t.user == "app" && t.database == "shop"));
    assert_eq!(c.target, c.servers.hosts[0]);
    assert_eq!(c.routing.session_attrs, SessionAttrs::ReadWrite);
    assert_eq!(c.conn.password.as_ref().map(|p| p.0.as_str()), Some("p@ss"));
    assert_eq!(c.servers.to_string(), "app@h1:5432,h2:5433,[::1]:5432/shop");

    let c = resolve(url("postgres:///shop?host=a,b&port=6000,6001&load_balance_hosts=random")).unwrap();
    assert_eq!(endpoints(&c.servers.hosts), ["a:6000", "b:6001"]);
    assert_eq!(c.routing.load_balance, LoadBalance::Random);

    let c = resolve(ConfigInput {
      host: Some("a,b".into()),
      port: Some("7000".into()),
      target_session_attrs: Some("prefer-standby".into()),
      ..Default::default()
    })
    .unwrap();
    assert_eq!(endpoints(&c.servers.hosts), ["a:7000", "b:7000"]);
    assert_eq!(c.routing.session_attrs, SessionAttrs::PreferStandby);

    let env = [("PGHOST", "e1,e2"), ("PGPORT", "1,2"), ("PGTARGETSESSIONATTRS", "standby")]
      .map(|(k, v)| (k.to_string(), v.to_string()))
      .into();
    let c = resolve(ConfigInput { env, ..Default::default() }).unwrap();
    assert_eq!(endpoints(&c.servers.hosts), ["e1:1", "e2:2"]);
    assert_eq!(c.routing.session_attrs, SessionAttrs::Standby);
  }

  #[test]
  fn bad_lists_and_attributes_are_config_errors_without_the_password() {
    for bad in [
      "postgres://u:hunter2@h1:5432,h2:99999/d",
      "postgres://u:hunter2@h1,h2/d?port=1,2,3",
      "postgres://u:hunter2@h1,,h2/d",
      "postgres://u:hunter2@h1,h2/d?target_session_attrs=master",
      "postgres://u:hunter2@h1,h2/d?load_balance_hosts=yes",
    ] {
      let err = resolve(url(bad)).unwrap_err();
      assert_eq!(err.code(), "CONFIG_INVALID", "{bad}");
      assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let redacted = crate::config::redact_url("postgres://u:hunter2@h1:1,h2:2/d?password=hunter2");
    assert_eq!(redacted, "postgres://u:***@h1:1,h2:2/d?password=***");
  }

  #[test]
  fn replicas_take_the_pools_user_database_and_settings() {
    let input = ConfigInput {
      connection_string: Some("postgres://app:pw@primary/shop?sslmode=prefer".into()),
      replicas: vec![
        "r1".into(),
        "r2:6432".into(),
        "[::1]:7000".into(),
        "postgres://app:pw@r3:5433,r4/shop?sslmode=prefer".into(),
        "postgres://r5".into(),
      ],
      ..Default::default()
    };
    let c = resolve(input.clone()).unwrap();
    assert_eq!(
      endpoints(&c.servers.replicas),
      ["r1:5432", "r2:6432", "::1:7000", "r3:5433", "r4:5432", "r5:5432"]
    );
    assert!(c.servers.replicas.iter().all(|t| t.user == "app" && t.database == "shop"));
    for other in [
      "postgres://someone@r1/shop",
      "postgres://app:hunter2@r1/shop",
      "postgres://r1/elsewhere",
      "postgres://r1?sslmode=disable",
      "postgres://r1?target_session_attrs=any",
    ] {
      let err = resolve(ConfigInput { replicas: vec![other.into()], ..input.clone() }).unwrap_err();
      assert_eq!(err.code(), "CONFIG_INVALID", "{other}");
      assert!(!err.to_string().contains("hunter2"), "{err}");
    }
  }
}
