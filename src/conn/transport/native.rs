//! Native sockets: TCP (every resolved address in turn, no Nagle, optional keepalive) or a
//! unix socket in the given directory.

use std::time::Duration;

use tokio::net::TcpStream;

use super::Stream;
use crate::config::Host;
use crate::error::SocketError;

pub type Socket = Box<dyn Stream>;

pub fn into_stream(socket: Socket) -> Box<dyn Stream> {
  socket
}

pub async fn connect(host: &Host, port: u16, keepalive: bool) -> std::io::Result<Socket> {
  match host {
    Host::Tcp(name) => {
      let not_found = |detail: String| {
        let message = format!("getaddrinfo ENOTFOUND {name}{detail}");
        std::io::Error::new(std::io::ErrorKind::NotFound, SocketError { code: "ENOTFOUND".into(), message })
      };
      let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .map_err(|e| not_found(format!(": {e}")))?
        .collect();
      let mut last = not_found(String::new());
      for addr in addrs {
        match TcpStream::connect(addr).await {
          Ok(s) => {
            s.set_nodelay(true)?;
            if keepalive {
              let ka = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10));
              socket2::SockRef::from(&s).set_tcp_keepalive(&ka)?;
            }
            return Ok(Box::new(s));
          }
          Err(e) => last = e,
        }
      }
      Err(last)
    }
    #[cfg(unix)]
    Host::Unix(dir) => {
      let path = dir.join(format!(".s.PGSQL.{port}"));
      Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
    }
    #[cfg(not(unix))]
    Host::Unix(_) => Err(std::io::Error::new(
      std::io::ErrorKind::Unsupported,
      "unix sockets are not supported on this platform",
    )),
  }
}
