//! `NativeRowStream` and `NativeCopy`: a row stream or a COPY on a pinned connection
//! (`NativeSession.stream`, `NativeSession.copy`). Each step answers through the environment's
//! completion queue under its request id, like a query; JavaScript asks for one batch, chunk or
//! write at a time, and that is the backpressure (`lib/stream.js`, `lib/copy.js`).

use napi::bindgen_prelude::{BufferSlice, Either, Int32ArraySlice, Utf16String};
use napi_derive::napi;

use super::completions;
use super::objects::{request_params, NativeError, ParamInput, RequestTag};
use super::session::NativeSession;
use crate::conn::{Chunk, Copy, CopyDirection, Query, RowStream};
use crate::{route, wire};

/// A COPY TO read's answer starts with one of these bytes: data follows, or the end and then its
/// result (the command tag `COPY n`, and the COPY's notices) as a result buffer.
const DATA: u8 = b'D';
const END: u8 = b'E';

#[napi]
impl NativeSession {
  /// Starts a row stream: `batchSize` rows per batch; `prefetch` asks for the next batch as soon
  /// as one is taken. Parameters as in `submit`.
  #[napi(catch_unwind)]
  pub fn stream(
    &self,
    sql: String,
    values: Either<Vec<ParamInput>, Utf16String>,
    lengths: Option<Int32ArraySlice<'_>>,
    batch_size: u32,
    prefetch: bool,
  ) -> napi::Result<Either<NativeRowStream, NativeError>> {
    let query = match Query::new(sql, request_params(values, lengths.as_deref())?) {
      Ok(q) => q,
      Err(e) => return Ok(Either::B(NativeError::from(&e))),
    };
    Ok(match route::stream_on_session(&self.inner, &query, batch_size, prefetch) {
      Ok(inner) => Either::A(NativeRowStream { inner }),
      Err(e) => Either::B(NativeError::from(&e)),
    })
  }

  /// Starts a COPY statement; `toClient`: `COPY ... TO STDOUT` is expected, else
  /// `COPY ... FROM STDIN`.
  #[napi(catch_unwind)]
  pub fn copy(&self, sql: String, to_client: bool) -> Either<NativeCopy, NativeError> {
    let expect = if to_client { CopyDirection::Out } else { CopyDirection::In };
    let started = Query::new(sql, Vec::new()).and_then(|q| route::copy_on_session(&self.inner, &q, expect));
    match started {
      Ok(inner) => Either::A(NativeCopy { inner }),
      Err(e) => Either::B(NativeError::from(&e)),
    }
  }
}

#[napi]
pub struct NativeRowStream {
  inner: RowStream,
}

#[napi]
impl NativeRowStream {
  /// The next batch of at most `rows` rows, as a result buffer: the last batch carries the
  /// statement's command tag (or has no rows); one with more to come has rows and no tag.
  #[napi(catch_unwind)]
  pub fn read(&self, rows: u32, request: RequestTag) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    self.inner.next(rows, queue.done(request.id));
    Ok(())
  }

  /// Closes the stream (`abort` also cancels a batch still running); answered once the
  /// connection is clean.
  #[napi(catch_unwind)]
  pub fn close(&self, abort: bool, request: RequestTag) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    self.inner.close(abort, queue.done(request.id));
    Ok(())
  }
}

#[napi]
pub struct NativeCopy {
  inner: Copy,
}

#[napi]
impl NativeCopy {
  /// COPY FROM: answered once the server waits for data, or with the error that ended it.
  #[napi(catch_unwind)]
  pub fn started(&self, request: RequestTag) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    self.inner.started(queue.done(request.id));
    Ok(())
  }

  /// COPY FROM: sends `data`. True when more may be sent at once (nothing is answered under
  /// `request`); false: answered when more may be sent, or with the error that ended the COPY.
  #[napi(catch_unwind)]
  pub fn write(&self, data: BufferSlice<'_>, request: RequestTag) -> napi::Result<bool> {
    let queue = completions::queue(request.env)?;
    Ok(self.inner.write(&data, queue.done(request.id)))
  }

  /// COPY FROM: ends the data; answered with the result (`COPY n`) or the error.
  #[napi(catch_unwind)]
  pub fn finish(&self, request: RequestTag) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    self.inner.finish(queue.done(request.id));
    Ok(())
  }

  /// COPY TO: the data that came, as bytes after a `D`, or the end: `E` and a result buffer
  /// (`COPY n`, with the COPY's notices).
  #[napi(catch_unwind)]
  pub fn read(&self, request: RequestTag) -> napi::Result<()> {
    let done = completions::queue(request.env)?.done_bytes(request.id);
    self.inner.read(Box::new(move |chunk| {
      done(chunk.map(|chunk| match chunk {
        Chunk::Data(mut bytes) => {
          bytes.insert(0, DATA);
          // The Buffer is freed only when V8 collects it, and V8 counts its length, not the
          // spare capacity a Vec grown by doubling holds.
          bytes.shrink_to_fit();
          bytes
        }
        Chunk::End(result) => {
          let mut bytes = wire::encode(result);
          bytes.insert(0, END);
          bytes
        }
      }))
    }));
    Ok(())
  }

  /// Stops the COPY (CopyFail with `reason`, or a cancel for COPY TO); answered once the
  /// connection is clean.
  #[napi(catch_unwind)]
  pub fn close(&self, reason: String, request: RequestTag) -> napi::Result<()> {
    let queue = completions::queue(request.env)?;
    self.inner.close(&reason, queue.done(request.id));
    Ok(())
  }
}
