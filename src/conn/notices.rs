//! The server's notices (NoticeResponse) travel with the request they came with, encoded as
//! they cross into JavaScript (`wire` places them after the results; `lib/notices.js` reads them):
//! each field as its type byte, u32 big-endian length and bytes, the notice ended by a 0 byte.

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorFields;

/// Appends one NoticeResponse's fields to `out`.
pub fn append_notice(out: &mut Vec<u8>, fields: &mut ErrorFields<'_>) -> std::io::Result<()> {
  while let Some(f) = fields.next()? {
    out.push(f.type_());
    out.extend_from_slice(&(f.value_bytes().len() as u32).to_be_bytes());
    out.extend_from_slice(f.value_bytes());
  }
  out.push(0);
  Ok(())
}
