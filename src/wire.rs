//! The compact form in which results cross to JavaScript: one buffer per query, decoded by
//! `lib/result.js`. All integers are big-endian u32. Layout:
//! `nresults` then per result: `command` (len + utf8), `nfields`, per field `oid` + name
//! (len + utf8), `nrows`, `rowsLen` + the DataRow cells (i32 length, -1 for NULL, + text bytes).

use crate::conn::Response;

fn put_u32(out: &mut Vec<u8>, n: usize) {
  out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
  put_u32(out, s.len());
  out.extend_from_slice(s.as_bytes());
}

pub fn encode(resp: &Response) -> Vec<u8> {
  let size: usize = resp
    .results
    .iter()
    .map(|r| {
      16 + r.command.len() + r.fields.iter().map(|f| 8 + f.name.len()).sum::<usize>() + r.rows.len() + 4
    })
    .sum();
  let mut out = Vec::with_capacity(size + 4);
  put_u32(&mut out, resp.results.len());
  for r in &resp.results {
    put_str(&mut out, &r.command);
    put_u32(&mut out, r.fields.len());
    for f in &r.fields {
      out.extend_from_slice(&f.type_oid.to_be_bytes());
      put_str(&mut out, &f.name);
    }
    put_u32(&mut out, r.row_count as usize);
    put_u32(&mut out, r.rows.len());
    out.extend_from_slice(&r.rows);
  }
  out
}
