//! A connection's socket as a reader and a writer.
//!
//! A plain socket (TCP or unix, native builds) can be written by any thread without waiting:
//! a request sent while the connection is idle then goes out from the caller's own thread,
//! with no hand-off to an I/O thread (one thread wake-up less per query). It can be read the
//! same way: a JavaScript thread waiting for a lone reply reads it itself (`conn::io::Inbox`).
//! TLS streams and the sockets JavaScript owns (WebAssembly) are read and written by the I/O
//! task only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWriteExt, WriteHalf};

use super::Stream;

pub enum Reader {
  Direct(Arc<dyn DirectRead>),
  Task(Box<dyn AsyncRead + Send + Unpin>),
}

/// A socket half that any thread may read without blocking.
pub trait DirectRead: Send + Sync {
  /// Reads what the socket holds now, for the I/O task (`WouldBlock` when nothing, which also
  /// re-arms `readable`).
  fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
  fn readable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>>;
  /// Reads what the socket holds now, from a thread outside the I/O runtime. Unlike
  /// `try_read_buf` it does not trust the runtime's readiness, which may lag behind the socket.
  #[cfg(unix)]
  fn read_now(&self, buf: &mut BytesMut) -> io::Result<usize>;
  /// The descriptor a JavaScript thread waits on.
  #[cfg(unix)]
  fn raw_fd(&self) -> i32;
  /// `read_now` where there is one: what the socket holds, whatever `readable` last said
  /// (which does not show less than the low-water mark).
  fn read_past_readiness(&self, buf: &mut BytesMut) -> io::Result<usize> {
    #[cfg(unix)]
    return self.read_now(buf);
    #[cfg(not(unix))]
    return self.try_read_buf(buf);
  }
  /// How many bytes must have come before the socket counts as readable (`SO_RCVLOWAT`; 1 is
  /// the usual). False when the mark did not change (or the socket has none).
  fn set_low_water(&self, _bytes: usize) -> bool {
    false
  }
}

/// A socket half that any thread may write to without blocking.
pub trait DirectWrite: Send + Sync {
  /// Writes what the socket takes now; `WouldBlock` when it takes nothing.
  fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
  /// Like `try_write`, for several buffers in one go (one segment for a message's header and
  /// body, where two writes would be two).
  fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    match bufs.iter().find(|b| !b.is_empty()) {
      Some(first) => self.try_write(first),
      None => Ok(0),
    }
  }
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
        return (Reader::Direct(Arc::new(rd)), Writer::Direct(Arc::new(wr)));
      }
      unreachable!("the stream was checked to be a TcpStream");
    }
    #[cfg(unix)]
    {
      use tokio::net::UnixStream;
      if (*stream).as_any().is::<UnixStream>() {
        if let Ok(unix) = stream.into_any().downcast::<UnixStream>() {
          let (rd, wr) = unix.into_split();
          return (Reader::Direct(Arc::new(rd)), Writer::Direct(Arc::new(wr)));
        }
        unreachable!("the stream was checked to be a UnixStream");
      }
    }
  }
  let (rd, wr) = tokio::io::split(stream);
  (Reader::Task(Box::new(rd)), Writer::Task(wr))
}

#[cfg(not(target_family = "wasm"))]
impl DirectWrite for tokio::net::tcp::OwnedWriteHalf {
  fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
    tokio::net::tcp::OwnedWriteHalf::try_write(self, buf)
  }
  fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    tokio::net::tcp::OwnedWriteHalf::try_write_vectored(self, bufs)
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
  fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    tokio::net::unix::OwnedWriteHalf::try_write_vectored(self, bufs)
  }
  fn writable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>> {
    Box::pin(tokio::net::unix::OwnedWriteHalf::writable(self))
  }
}

/// `DirectRead` for the read half of tokio's TCP and unix sockets.
#[cfg(not(target_family = "wasm"))]
macro_rules! direct_read {
  ($half:ty, $stream:ty) => {
    impl DirectRead for $half {
      fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        <$half>::try_read_buf(self, buf)
      }
      fn readable(&self) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + '_>> {
        Box::pin(<$half>::readable(self))
      }
      #[cfg(unix)]
      fn read_now(&self, buf: &mut BytesMut) -> io::Result<usize> {
        recv_now(self.raw_fd(), buf)
      }
      #[cfg(unix)]
      fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        AsRef::<$stream>::as_ref(self).as_raw_fd()
      }
      #[cfg(unix)]
      fn set_low_water(&self, bytes: usize) -> bool {
        set_low_water(self.raw_fd(), bytes)
      }
    }
  };
}

#[cfg(not(target_family = "wasm"))]
direct_read!(tokio::net::tcp::OwnedReadHalf, tokio::net::TcpStream);
#[cfg(unix)]
direct_read!(tokio::net::unix::OwnedReadHalf, tokio::net::UnixStream);

#[cfg(unix)]
fn set_low_water(fd: i32, bytes: usize) -> bool {
  let value = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
  // SAFETY: `value` outlives the call, which reads exactly `size_of::<c_int>()` bytes of it.
  let status = unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_RCVLOWAT,
      (&value as *const libc::c_int).cast(),
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  status == 0
}

/// One non-blocking `recv` into `buf`'s spare capacity.
#[cfg(unix)]
fn recv_now(fd: i32, buf: &mut BytesMut) -> io::Result<usize> {
  let spare = buf.spare_capacity_mut();
  // SAFETY: `recv` writes at most `spare.len()` bytes into memory `buf` owns; `set_len` then
  // covers exactly the bytes it reported written.
  let n = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), libc::MSG_DONTWAIT) };
  if n < 0 {
    return Err(io::Error::last_os_error());
  }
  let n = n as usize;
  // SAFETY: see above: `recv` initialised the first `n` bytes of the spare capacity.
  unsafe { buf.set_len(buf.len() + n) };
  Ok(n)
}
