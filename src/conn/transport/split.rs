//! A connection's socket as a reader for its I/O task and a writer.
//!
//! A plain socket (TCP or unix, native builds) can be written by any thread without waiting:
//! a request sent while the connection is idle then goes out from the caller's own thread,
//! with no hand-off to an I/O thread (one thread wake-up less per query). TLS streams and the
//! sockets JavaScript owns (WebAssembly) are written by the I/O task only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWriteExt, WriteHalf};

use super::Stream;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A socket half that any thread may write to without blocking.
pub trait DirectWrite: Send + Sync {
  /// Writes what the socket takes now; `WouldBlock` when it takes nothing.
  fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
  fn writable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>>;
}

pub enum Writer {
  Direct(Arc<dyn DirectWrite>),
  Task(WriteHalf<Box<dyn Stream>>),
}

impl Writer {
  /// The half other threads may write to directly, if this stream has one.
  pub fn direct(&self) -> Option<Arc<dyn DirectWrite>> {
    match self {
      Writer::Direct(w) => Some(w.clone()),
      Writer::Task(_) => None,
    }
  }

  pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
    match self {
      Writer::Task(w) => w.write_all(buf).await,
      Writer::Direct(w) => {
        while !buf.is_empty() {
          match w.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.writable().await?,
            Err(e) => return Err(e),
          }
        }
        Ok(())
      }
    }
  }

  /// Ends the write side (a plain socket's is shut down when its last half is dropped).
  pub async fn shutdown(&mut self) {
    if let Writer::Task(w) = self {
      let _ = w.shutdown().await;
    }
  }
}

pub fn split(stream: Box<dyn Stream>) -> (Reader, Writer) {
  // `(*stream)`: the boxed socket's own type, not `Box<dyn Stream>` (itself a Stream).
  #[cfg(not(target_family = "wasm"))]
  {
    use tokio::net::TcpStream;
    if (*stream).as_any().is::<TcpStream>() {
      if let Ok(tcp) = stream.into_any().downcast::<TcpStream>() {
        let (rd, wr) = tcp.into_split();
        return (Box::new(rd), Writer::Direct(Arc::new(wr)));
      }
      unreachable!("the stream was checked to be a TcpStream");
    }
    #[cfg(unix)]
    {
      use tokio::net::UnixStream;
      if (*stream).as_any().is::<UnixStream>() {
        if let Ok(unix) = stream.into_any().downcast::<UnixStream>() {
          let (rd, wr) = unix.into_split();
          return (Box::new(rd), Writer::Direct(Arc::new(wr)));
        }
        unreachable!("the stream was checked to be a UnixStream");
      }
    }
  }
  let (rd, wr) = tokio::io::split(stream);
  (Box::new(rd), Writer::Task(wr))
}

#[cfg(not(target_family = "wasm"))]
impl DirectWrite for tokio::net::tcp::OwnedWriteHalf {
  fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
    tokio::net::tcp::OwnedWriteHalf::try_write(self, buf)
  }
  fn writable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>> {
    Box::pin(tokio::net::tcp::OwnedWriteHalf::writable(self))
  }
}

#[cfg(unix)]
impl DirectWrite for tokio::net::unix::OwnedWriteHalf {
  fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
    tokio::net::unix::OwnedWriteHalf::try_write(self, buf)
  }
  fn writable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>> {
    Box::pin(tokio::net::unix::OwnedWriteHalf::writable(self))
  }
}
