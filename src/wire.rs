//! The compact form in which results cross to JavaScript: one buffer per query, decoded by
//! `lib/result.js`. All integers are big-endian u32. Each statement's result is its DataRow
//! cells (i32 length, -1 for NULL, + text bytes), its columns' extras (`columns.rs`) and its
//! description, so the cells the I/O thread collected become the buffer as they are, without a
//! copy: `cells` `extras` `nrows` `cellsLen` `extrasLen` `nfields` (per field: `oid`, `flags`,
//! `extraLen`, name as len + utf8) `command` (len + utf8) `descriptionLen`; after the last
//! result, `nresults`. When the server sent notices, they come between the last result and
//! `nresults`, followed by their length, and `nresults` has its top bit (`HAS_NOTICES`) set.
//! Each notice is its fields as the protocol sends them (a type byte, then the value: here
//! as len + utf8), ended by a 0 byte (`lib/notices.js` reads them).

use crate::columns;
use crate::conn::Response;

/// In the trailing result count: notices precede it.
const HAS_NOTICES: u32 = 0x8000_0000;

fn put_u32(out: &mut Vec<u8>, n: usize) {
  out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
  put_u32(out, s.len());
  out.extend_from_slice(s.as_bytes());
}

pub fn encode(resp: Response) -> Vec<u8> {
  let count = resp.results.len();
  let mut out = Vec::new();
  for (i, r) in resp.results.into_iter().enumerate() {
    let cells = r.rows.len();
    let columns = columns::analyse(&r.rows, r.row_count as usize, &r.fields);
    if i == 0 {
      out = r.rows;
    } else {
      out.extend_from_slice(&r.rows);
    }
    let extras = columns.iter().map(|c| c.extra.len()).sum::<usize>();
    let description = 24 + r.command.len() + r.fields.iter().map(|f| 16 + f.name.len()).sum::<usize>();
    out.reserve(extras + description);
    for c in &columns {
      out.extend_from_slice(&c.extra);
    }
    let start = out.len();
    put_u32(&mut out, r.row_count as usize);
    put_u32(&mut out, cells);
    put_u32(&mut out, extras);
    put_u32(&mut out, r.fields.len());
    for (f, c) in r.fields.iter().zip(&columns) {
      out.extend_from_slice(&f.type_oid.to_be_bytes());
      put_u32(&mut out, c.flags() as usize);
      put_u32(&mut out, c.extra.len());
      put_str(&mut out, &f.name);
    }
    put_str(&mut out, &r.command);
    let len = out.len() - start;
    put_u32(&mut out, len);
  }
  if resp.notices.is_empty() {
    put_u32(&mut out, count);
  } else {
    out.extend_from_slice(&resp.notices);
    put_u32(&mut out, resp.notices.len());
    out.extend_from_slice(&(count as u32 | HAS_NOTICES).to_be_bytes());
  }
  out
}
