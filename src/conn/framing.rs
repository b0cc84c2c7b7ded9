//! Cutting the server's byte stream into messages without trusting what it claims.
//!
//! A message header (a tag and a 4-byte length) is checked before anything is done with it: a
//! length under 4 or above the maximum is a protocol error at once. Buffers grow with the bytes
//! that actually arrived, never to a length a header claims (an HTTP server's reply reads as a
//! 1.4 GB message, and reserving that aborts the process where memory is limited), and every
//! growth is fallible: a failed allocation ends the connection, not the process.
//! `Message::parse` is only called on a message that is all in, so it never reserves either.

use bytes::{Bytes, BytesMut};
use postgres_protocol::message::backend::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::CoreError;

/// The largest message body accepted while opening a connection. The server sends small
/// messages then (authentication requests, ParameterStatus, BackendKeyData, an ErrorResponse;
/// libpq itself calls anything but an error or a notice over 30,000 bytes corrupt); 1 MiB
/// leaves room for long reported settings and verbose errors, and bounds what a peer that is not
/// PostgreSQL can make us buffer before we can say so.
pub const STARTUP_MAX_MESSAGE: usize = 1 << 20;

/// Spare room a read is given at least: below it the buffer is compacted or grown first.
const MIN_READ: usize = 4096;

/// Why the next message could not be read.
#[derive(Debug)]
pub enum ReadError {
  /// The socket failed or was closed.
  Io(std::io::Error),
  /// A header whose length is out of bounds (the header is left at the front of the buffer).
  BadHeader(String),
  /// A whole message that is not well-formed: an unknown tag, a body that does not parse.
  Malformed(String),
  /// No memory to grow a buffer that held this many bytes.
  NoMemory(usize),
}

impl From<std::io::Error> for ReadError {
  fn from(e: std::io::Error) -> Self {
    ReadError::Io(e)
  }
}

impl ReadError {
  /// What the callers of an established connection see.
  pub fn into_core(self) -> CoreError {
    match self {
      ReadError::Io(e) => CoreError::lost(&e),
      ReadError::BadHeader(what) | ReadError::Malformed(what) => {
        CoreError::Protocol(format!("protocol error: {what}"))
      }
      ReadError::NoMemory(n) => CoreError::ConnectionLost(format!(
        "connection closed: out of memory reading from the server ({n} bytes held)"
      )),
    }
  }
}

/// The next message in `buf` once all of it is in; `Ok(None)` until then. The body (the bytes
/// after the length field) may be at most `max` bytes.
#[inline]
pub fn next_message(buf: &mut BytesMut, max: usize) -> Result<Option<Message>, ReadError> {
  let Some(head) = buf.get(..5) else { return Ok(None) };
  let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
  if len < 4 || len - 4 > max {
    return Err(ReadError::BadHeader(bad_length(head[0], len, max)));
  }
  if buf.len() <= len {
    return Ok(None);
  }
  match Message::parse(buf) {
    Ok(m) => Ok(m),
    Err(e) => Err(ReadError::Malformed(format!("malformed message: {e}"))),
  }
}

#[cold]
fn bad_length(tag: u8, len: usize, max: usize) -> String {
  let tag = tag_name(tag);
  if len < 4 {
    format!("message {tag} claims a length of {len} bytes, less than its own length field")
  } else {
    format!("message {tag} claims {} bytes, more than the {max}-byte maximum", len - 4)
  }
}

fn tag_name(tag: u8) -> String {
  if tag.is_ascii_graphic() {
    format!("'{}'", tag as char)
  } else {
    format!("0x{tag:02x}")
  }
}

/// The first bytes of `bytes` as text a person can read: printable ASCII as is, the rest as
/// `\xNN` (what a server that is not PostgreSQL answered: `HTTP/1.1 400 ...`, `SSH-2.0-...`).
pub fn preview(bytes: &[u8]) -> String {
  let mut out = String::new();
  for &b in bytes.iter().take(24) {
    match b {
      b'"' | b'\\' => out.push_str(&format!("\\{}", b as char)),
      b' '..=b'~' => out.push(b as char),
      b'\r' => out.push_str("\\r"),
      b'\n' => out.push_str("\\n"),
      _ => out.push_str(&format!("\\x{b:02x}")),
    }
  }
  if bytes.len() > 24 {
    out.push_str("...");
  }
  format!("\"{out}\"")
}

/// Makes room for at least `additional` more bytes: reuses the space of messages already taken
/// off the front when it can, else grows as `Vec` does (doubling, in place when the allocator
/// can) but fallibly. Growing is the caller's decision, driven by bytes that arrived.
pub fn make_room(buf: &mut BytesMut, additional: usize) -> Result<(), ReadError> {
  if buf.capacity() - buf.len() >= additional || buf.try_reclaim(additional) {
    return Ok(());
  }
  // Zero-copy both ways while this buffer is the only owner of its memory (it is: messages are
  // dropped before the next read), a copy of what is buffered otherwise.
  let mut v = Vec::from(std::mem::take(buf));
  let grown = v.try_reserve(additional);
  *buf = BytesMut::from(Bytes::from(v));
  grown.map_err(|_| ReadError::NoMemory(buf.len()))
}

/// Reads the next message from `s`, buffering in `buf` (bytes after it stay there).
pub async fn read_message<S: AsyncRead + Unpin + ?Sized>(
  s: &mut S,
  buf: &mut BytesMut,
  max: usize,
) -> Result<Message, ReadError> {
  loop {
    if let Some(m) = next_message(buf, max)? {
      return Ok(m);
    }
    if buf.capacity() - buf.len() < MIN_READ {
      make_room(buf, 2 * MIN_READ)?;
    }
    if s.read_buf(buf).await? == 0 {
      return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn header(tag: u8, len: u32) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&len.to_be_bytes());
    v
  }

  #[test]
  fn headers_out_of_bounds_are_malformed_at_once() {
    for (len, max) in
      [(0u32, 1 << 30), (3, 1 << 30), (0x7fff_ffff, 1 << 30), (u32::MAX, 1 << 30), (1029, 1024)]
    {
      let mut buf = BytesMut::from(&header(b'D', len)[..]);
      let cap = buf.capacity();
      match next_message(&mut buf, max) {
        Err(ReadError::BadHeader(what)) => assert!(what.contains("'D'"), "{what}"),
        Err(other) => panic!("length {len}: {other:?}"),
        Ok(_) => panic!("length {len}: accepted"),
      }
      assert_eq!(buf.capacity(), cap, "length {len}: nothing reserved");
    }
    // At the maximum exactly: wait for the rest, reserving nothing.
    let mut buf = BytesMut::from(&header(b'D', 1028)[..]);
    let cap = buf.capacity();
    assert!(matches!(next_message(&mut buf, 1024), Ok(None)));
    assert_eq!(buf.capacity(), cap);
  }

  #[test]
  fn a_complete_message_parses_and_unknown_tags_are_malformed() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&header(b'Z', 5));
    buf.extend_from_slice(b"I");
    buf.extend_from_slice(&header(b'x', 4));
    assert!(matches!(next_message(&mut buf, 1024), Ok(Some(Message::ReadyForQuery(_)))));
    assert!(matches!(next_message(&mut buf, 1024), Err(ReadError::Malformed(_))));
  }

  /// A reader that hands out `data` in small pieces, then reports EOF.
  struct Trickle {
    data: Vec<u8>,
    at: usize,
  }

  impl AsyncRead for Trickle {
    fn poll_read(
      mut self: std::pin::Pin<&mut Self>,
      _cx: &mut std::task::Context<'_>,
      out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
      let n = (self.data.len() - self.at).min(out.remaining()).min(1000);
      let at = self.at;
      out.put_slice(&self.data[at..at + n]);
      self.at += n;
      std::task::Poll::Ready(Ok(()))
    }
  }

  #[test]
  fn read_message_grows_with_the_bytes_that_came_not_with_the_claim() {
    // Claims ~1 GiB (under the maximum), sends 100 kB, then closes.
    let mut data = header(b'D', (1 << 30) - 1);
    data.extend(std::iter::repeat_n(0u8, 100_000));
    let mut s = Trickle { data, at: 0 };
    let mut buf = BytesMut::with_capacity(8192);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let got = rt.block_on(read_message(&mut s, &mut buf, 1 << 30));
    assert!(matches!(got, Err(ReadError::Io(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof));
    assert_eq!(buf.len(), 100_005);
    assert!(buf.capacity() < 1 << 20, "capacity {} for 100 kB received", buf.capacity());
  }

  #[test]
  fn make_room_reuses_consumed_space_then_doubles() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&[1; 60]);
    let _ = buf.split_to(56);
    make_room(&mut buf, 32).unwrap();
    assert_eq!(&buf[..], &[1; 4]);
    assert!(buf.capacity() >= 36);
    buf.extend_from_slice(&[2; 32]);
    make_room(&mut buf, 1000).unwrap();
    assert!(buf.capacity() - buf.len() >= 1000);
    assert_eq!(buf.len(), 36);
    assert!(matches!(make_room(&mut buf, usize::MAX / 2), Err(ReadError::NoMemory(_))));
    assert_eq!(buf.len(), 36, "a failed growth keeps what was buffered");
  }
}
