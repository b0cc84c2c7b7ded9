//! Work on a result's columns done on the I/O thread, so that the JavaScript thread (which
//! decodes every row, and is the bottleneck for large results) does less. Nothing here replaces
//! the text cells: JavaScript uses a column's extra only while node-postgres's default parser is
//! in effect for its type, and falls back to the text for any cell marked "parse it yourself".
//!
//! - every column: whether all its cells are ASCII (a Latin-1 string is cheaper to make than a
//!   UTF-8 one, and the same string for ASCII);
//! - float4, float8 and timestamptz: one little-endian f64 per row (the number, or the Date's
//!   milliseconds), NaN where JavaScript must parse the text;
//! - json and jsonb: the column's values as JSON arrays of `JSON_CHUNK` rows (each after its
//!   u32 little-endian length), parsed by one `JSON.parse` call per chunk instead of one per row
//!   (one call's overhead shared by many small documents). Chunks, not one array: one array of a
//!   whole large result would be held in memory twice while it is parsed.

use crate::conn::Field;

pub const ASCII: u32 = 1;
pub const NUMBERS: u32 = 2;
pub const JSON_ARRAY: u32 = 4;

const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const TIMESTAMPTZ: u32 = 1184;
const JSON: u32 = 114;
const JSONB: u32 = 3802;

/// A bigger JSON column is parsed row by row: the arrays would double its memory.
const MAX_JSON_ARRAY: usize = 16 << 20;
/// Rows per JSON array (`lib/readers.js` relies on it).
pub const JSON_CHUNK: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
  Plain,
  Float,
  Timestamptz,
  Json,
}

/// What the description says about one column, and its extra bytes.
pub struct Column {
  kind: Kind,
  ascii: bool,
  pub extra: Vec<u8>,
  /// JSON: where the open chunk's length goes, and how many values it holds.
  chunk_at: usize,
  in_chunk: usize,
}

impl Column {
  fn new(type_oid: u32, rows: usize) -> Column {
    let (kind, extra) = match type_oid {
      FLOAT4 | FLOAT8 => (Kind::Float, Vec::with_capacity(rows * 8)),
      TIMESTAMPTZ => (Kind::Timestamptz, Vec::with_capacity(rows * 8)),
      JSON | JSONB => (Kind::Json, Vec::new()),
      _ => (Kind::Plain, Vec::new()),
    };
    Column { kind, ascii: true, extra, chunk_at: 0, in_chunk: 0 }
  }

  fn plain() -> Column {
    Column { kind: Kind::Plain, ascii: false, extra: Vec::new(), chunk_at: 0, in_chunk: 0 }
  }

  pub fn flags(&self) -> u32 {
    let ascii = if self.ascii { ASCII } else { 0 };
    ascii
      | match self.kind {
        Kind::Plain => 0,
        Kind::Float | Kind::Timestamptz => NUMBERS,
        Kind::Json => JSON_ARRAY,
      }
  }

  fn add(&mut self, cell: Option<&[u8]>) {
    if self.ascii && cell.is_some_and(|v| !v.is_ascii()) {
      self.ascii = false;
    }
    match self.kind {
      Kind::Plain => {}
      Kind::Float => self.push_number(cell.and_then(float)),
      Kind::Timestamptz => self.push_number(cell.and_then(timestamptz_ms)),
      Kind::Json => {
        if self.in_chunk == 0 {
          self.chunk_at = self.extra.len();
          self.extra.extend_from_slice(&[0, 0, 0, 0, b'[']);
        } else {
          self.extra.push(b',');
        }
        self.extra.extend_from_slice(cell.unwrap_or(b"null"));
        self.in_chunk += 1;
        if self.in_chunk == JSON_CHUNK {
          self.close_chunk();
        }
        if self.extra.len() > MAX_JSON_ARRAY {
          self.kind = Kind::Plain;
          self.extra = Vec::new();
        }
      }
    }
  }

  fn push_number(&mut self, n: Option<f64>) {
    self.extra.extend_from_slice(&n.unwrap_or(f64::NAN).to_le_bytes());
  }

  fn close_chunk(&mut self) {
    self.extra.push(b']');
    let len = (self.extra.len() - self.chunk_at - 4) as u32;
    self.extra[self.chunk_at..self.chunk_at + 4].copy_from_slice(&len.to_le_bytes());
    self.in_chunk = 0;
  }

  fn finish(&mut self) {
    if self.kind == Kind::Json && self.in_chunk > 0 {
      self.close_chunk();
    }
  }
}

/// The columns of a statement whose DataRow cells (`i32` length, -1 for NULL, then the bytes)
/// are `cells`. Cells that do not match `fields` get no extras: JavaScript reports them.
pub fn analyse(cells: &[u8], rows: usize, fields: &[Field]) -> Vec<Column> {
  let mut columns: Vec<Column> = fields.iter().map(|f| Column::new(f.type_oid, rows)).collect();
  if columns.is_empty() || walk(cells, &mut columns).is_none() {
    return fields.iter().map(|_| Column::plain()).collect();
  }
  columns.iter_mut().for_each(Column::finish);
  columns
}

fn walk(cells: &[u8], columns: &mut [Column]) -> Option<()> {
  let mut at = 0;
  while at < cells.len() {
    for column in columns.iter_mut() {
      let len = i32::from_be_bytes(cells.get(at..at + 4)?.try_into().ok()?);
      at += 4;
      let cell = if len < 0 {
        None
      } else {
        let end = at + len as usize;
        let bytes = cells.get(at..end)?;
        at = end;
        Some(bytes)
      };
      column.add(cell);
    }
  }
  Some(())
}

/// What `parseFloat` gives for Postgres's float text; None (JavaScript parses it) for NaN and
/// the infinities, whose spellings Rust and JavaScript read differently.
fn float(text: &[u8]) -> Option<f64> {
  if !text.iter().all(|c| matches!(c, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
    return None;
  }
  std::str::from_utf8(text).ok()?.parse().ok()
}

fn digits(text: &[u8], at: usize, count: usize) -> Option<i64> {
  let mut n = 0;
  for &c in text.get(at..at + count)? {
    if !c.is_ascii_digit() {
      return None;
    }
    n = n * 10 + i64::from(c - b'0');
  }
  Some(n)
}

const POW10: [f64; 10] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The milliseconds of the Date that `lib/readers.js`'s timestamptz reader (and so
/// postgres-date) makes of `YYYY-MM-DD HH:MM:SS[.f][±HH[:MM[:SS]]]`, computed the same way
/// (including how the fraction is rounded). Anything else (BC, infinity, years before 1000 or
/// after 9999) is None: JavaScript parses those.
fn timestamptz_ms(t: &[u8]) -> Option<f64> {
  if t.len() < 19
    || t[4] != b'-'
    || t[7] != b'-'
    || t[10] != b' '
    || t[13] != b':'
    || t[16] != b':'
    || t[0] == b'0'
  {
    return None;
  }
  let year = digits(t, 0, 4)?;
  let month = digits(t, 5, 2)?;
  let day = digits(t, 8, 2)?;
  let hour = digits(t, 11, 2)?;
  let minute = digits(t, 14, 2)?;
  let second = digits(t, 17, 2)?;
  if !(1..=12).contains(&month) {
    return None;
  }
  let mut i = 19;
  let mut ms = 0.0;
  if t.get(i) == Some(&b'.') {
    i += 1;
    let (mut frac, mut n) = (0u64, 0usize);
    while i < t.len() && t[i].is_ascii_digit() {
      if n < 9 {
        frac = frac * 10 + u64::from(t[i] - b'0');
        n += 1;
      }
      i += 1;
    }
    if n == 0 {
      return None;
    }
    // As postgres-date: a fraction of a second, times 1000, truncated by Date.UTC.
    ms = 1000.0 * (frac as f64 / POW10[n]);
  }
  let sign = match t.get(i) {
    Some(b'+') => 1,
    Some(b'-') => -1,
    _ => return None,
  };
  let mut offset = digits(t, i + 1, 2)? * 3600;
  i += 3;
  if t.get(i) == Some(&b':') {
    offset += digits(t, i + 1, 2)? * 60;
    i += 3;
    if t.get(i) == Some(&b':') {
      offset += digits(t, i + 1, 2)?;
      i += 3;
    }
  }
  if i != t.len() {
    return None;
  }
  // Date.UTC: days and times add up linearly, milliseconds truncated.
  let days = days_from_civil(year, month, 1) + day - 1;
  let utc = days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms.trunc() as i64;
  Some((utc - sign * offset * 1000) as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
  let y = if month <= 2 { year - 1 } else { year };
  let era = y.div_euclid(400);
  let yoe = y - era * 400;
  let mp = (month + 9) % 12;
  let doy = (153 * mp + 2) / 5 + day - 1;
  let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
  use super::*;

  fn cells(values: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
      match v {
        Some(s) => {
          out.extend_from_slice(&(s.len() as i32).to_be_bytes());
          out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
      }
    }
    out
  }

  fn field(oid: u32) -> Field {
    Field { name: "c".into(), type_oid: oid }
  }

  fn numbers(extra: &[u8]) -> Vec<f64> {
    extra.chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
  }

  #[test]
  fn timestamps_match_javascript_dates() {
    // Values from `new Date(Date.UTC(...)) - offset` in Node.
    assert_eq!(timestamptz_ms(b"1970-01-01 00:00:00+00"), Some(0.0));
    assert_eq!(timestamptz_ms(b"2024-01-01 00:01:00+00"), Some(1_704_067_260_000.0));
    assert_eq!(timestamptz_ms(b"2024-02-29 23:59:59.999999+05:30"), Some(1_709_231_399_999.0));
    assert_eq!(timestamptz_ms(b"1900-03-01 12:00:00.5-08"), Some(-2_203_819_199_500.0));
    assert_eq!(timestamptz_ms(b"1000-01-01 00:00:00+00:00:10"), Some(-30_610_224_010_000.0));
    for js_parses in
      ["infinity", "0999-01-01 00:00:00+00", "2024-01-01 00:00:00+00 BC", "2024-01-01 00:00:00"]
    {
      assert_eq!(timestamptz_ms(js_parses.as_bytes()), None, "{js_parses}");
    }
  }

  #[test]
  fn floats_leave_special_spellings_to_javascript() {
    assert_eq!(float(b"1428.5714285714287"), Some(1428.5714285714287));
    assert_eq!(float(b"-1.5e+20"), Some(-1.5e20));
    assert_eq!(float(b"1e-05"), Some(1e-5));
    for js_parses in ["NaN", "Infinity", "-Infinity", "inf"] {
      assert_eq!(float(js_parses.as_bytes()), None);
    }
  }

  #[test]
  fn extras_per_column() {
    let fields = [field(701), field(25), field(3802)];
    let data = cells(&[Some("1.5"), Some("é"), Some("{\"a\": 1}"), None, Some("b"), None]);
    let cols = analyse(&data, 2, &fields);
    assert_eq!(cols[0].flags(), NUMBERS | ASCII);
    let n = numbers(&cols[0].extra);
    assert_eq!(n[0], 1.5);
    assert!(n[1].is_nan());
    assert_eq!(cols[1].flags(), 0, "é is not ASCII");
    assert_eq!(cols[2].flags(), JSON_ARRAY | ASCII);
    assert_eq!(cols[2].extra, b"\x0f\0\0\0[{\"a\": 1},null]");
  }

  #[test]
  fn json_comes_in_chunks_of_rows() {
    let values: Vec<Option<&str>> =
      (0..JSON_CHUNK + 2).map(|i| if i % 2 == 0 { Some("1") } else { None }).collect();
    let cols = analyse(&cells(&values), values.len(), &[field(114)]);
    let extra = &cols[0].extra;
    let first = u32::from_le_bytes(extra[..4].try_into().unwrap()) as usize;
    let chunk: Vec<&str> = std::str::from_utf8(&extra[5..3 + first]).unwrap().split(',').collect();
    assert_eq!(chunk.len(), JSON_CHUNK);
    assert_eq!(&chunk[..2], ["1", "null"]);
    assert_eq!(&extra[4 + first..], b"\x08\0\0\0[1,null]");
  }

  #[test]
  fn malformed_cells_get_no_extras() {
    let mut data = cells(&[Some("1.5")]);
    data.truncate(data.len() - 1);
    let cols = analyse(&data, 1, &[field(701)]);
    assert_eq!(cols[0].flags(), 0);
    assert!(cols[0].extra.is_empty());
    assert!(analyse(&cells(&[Some("x")]), 1, &[]).is_empty());
  }
}
