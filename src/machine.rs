//! The machine-wide budget (`machineMax`): all processes on this machine that use the same
//! target hold at most N connections together. No daemon: each connection holds an advisory
//! lock on one of N slot files in a per-user runtime directory, and the kernel drops the locks of
//! a process that dies, however it dies (SIGKILL included). Locks are `flock` on Linux and macOS
//! and `LockFileEx` on Windows, through `std::fs::File::try_lock`.
//!
//! A process waiting for a slot holds a `want-<since>-*` lock file. Waiters are served first come,
//! first served across processes: a free slot is taken only by the longest waiter, and a process
//! whose connection comes back while another process waits closes it, so the slot goes to the
//! longest waiter (`should_yield`). Idle connections close too when someone waits (the reaper
//! checks twice a second).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use once_cell::sync::Lazy;

use crate::config::Target;

/// One connection's slot; dropping it (or the process dying) releases the lock.
pub struct MachineSlot {
  _file: File,
}

static NEXT_WANT: AtomicU64 = AtomicU64::new(0);

/// Where this user's slot files live.
fn runtime_dir() -> PathBuf {
  if let Some(dir) = std::env::var_os("ONEPOOL_RUNTIME_DIR") {
    return PathBuf::from(dir);
  }
  #[cfg(unix)]
  {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
      return PathBuf::from(dir).join("onepool");
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("onepool-{uid}"))
  }
  #[cfg(not(unix))]
  {
    let user = std::env::var("USERNAME").unwrap_or_else(|_| "user".into());
    std::env::temp_dir().join(format!("onepool-{user}"))
  }
}

/// FNV-1a: a stable directory name for a target, the same in every process.
fn fnv(text: &str) -> u64 {
  text.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

pub fn dir_for(target: &Target) -> io::Result<PathBuf> {
  let dir = runtime_dir().join(format!("{:016x}", fnv(&target.to_string())));
  fs::create_dir_all(&dir)?;
  #[cfg(unix)]
  {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir.parent().unwrap_or(&dir), fs::Permissions::from_mode(0o700));
  }
  Ok(dir)
}

fn open_lock_file(path: &Path) -> io::Result<File> {
  OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// A free slot right now, if any.
pub fn try_acquire(dir: &Path, max: usize) -> io::Result<Option<MachineSlot>> {
  // Start at a random slot so processes do not all contend for slot 0.
  let start = rand::random_range(0..max.max(1));
  for k in 0..max {
    let file = open_lock_file(&dir.join(format!("slot-{}.lock", (start + k) % max)))?;
    match file.try_lock() {
      Ok(()) => return Ok(Some(MachineSlot { _file: file })),
      Err(fs::TryLockError::WouldBlock) => continue,
      Err(fs::TryLockError::Error(e)) => return Err(e),
    }
  }
  Ok(None)
}

fn now_nanos() -> u128 {
  SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Marks this process as waiting for a slot while it lives. The file name carries when it
/// started waiting, so that waiters across processes can be served in that order.
pub struct WantMarker {
  path: PathBuf,
  since: u128,
  _file: File,
}

impl WantMarker {
  pub fn new(dir: &Path) -> io::Result<WantMarker> {
    let n = NEXT_WANT.fetch_add(1, Ordering::Relaxed);
    let since = now_nanos();
    let path = dir.join(format!("want-{since:039}-{}-{n}.lock", std::process::id()));
    let file = open_lock_file(&path)?;
    file.lock()?;
    Ok(WantMarker { path, since, _file: file })
  }
}

impl Drop for WantMarker {
  fn drop(&mut self) {
    let _ = fs::remove_file(&self.path);
  }
}

/// When the longest-waiting *other* process started waiting for a slot in `dir`, if any.
fn oldest_other_want(dir: &Path) -> Option<u128> {
  oldest_want(dir, Some(&std::process::id().to_string()))
}

/// When the longest waiter (of any process but `skip`) started waiting for a slot in `dir`, if
/// any; markers of dead processes are removed on the way.
fn oldest_want(dir: &Path, skip: Option<&str>) -> Option<u128> {
  let Ok(entries) = fs::read_dir(dir) else { return None };
  let mut oldest = None;
  for entry in entries.flatten() {
    let name = entry.file_name();
    let name = name.to_string_lossy();
    let Some(rest) = name.strip_prefix("want-") else { continue };
    let mut parts = rest.split('-');
    let (Some(since), Some(owner)) = (parts.next().and_then(|s| s.parse::<u128>().ok()), parts.next()) else {
      continue;
    };
    if skip == Some(owner) {
      continue;
    }
    let Ok(file) = open_lock_file(&entry.path()) else { continue };
    match file.try_lock() {
      Err(fs::TryLockError::WouldBlock) => oldest = Some(oldest.map_or(since, |o: u128| o.min(since))),
      Ok(()) => {
        let _ = fs::remove_file(entry.path());
      }
      Err(_) => {}
    }
  }
  oldest
}

/// Whether another process has waited for a slot in `dir` for `YIELD_AFTER`: then a connection
/// this process is done with closes, and its slot goes to the longest waiter (`acquire` serves them in order), rather
/// than serving this process again while the other waits — a busy process would otherwise keep
/// its slots for as long as it stays busy. Looked up at most every `LOOK_EVERY` (connections come
/// back often).
pub fn should_yield(dir: &Path) -> bool {
  /// Per directory: when it was last looked at, and whether another process waited then.
  type Seen = HashMap<PathBuf, (Instant, bool)>;
  static SEEN: Lazy<Mutex<Seen>> = Lazy::new(|| Mutex::new(HashMap::new()));
  let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
  match seen.get(dir) {
    Some((at, waits)) if at.elapsed() < LOOK_EVERY => *waits,
    _ => {
      let waits = oldest_other_want(dir)
        .is_some_and(|since| now_nanos().saturating_sub(since) >= YIELD_AFTER.as_nanos());
      seen.insert(dir.to_path_buf(), (Instant::now(), waits));
      waits
    }
  }
}

const LOOK_EVERY: Duration = Duration::from_millis(20);

/// How long another process must have waited before a connection here is closed for it: a
/// moment's wait is cheaper than closing a connection and opening another.
const YIELD_AFTER: Duration = Duration::from_millis(100);

/// Whether some process (maybe this one) waits for a slot; stale markers of dead processes are
/// removed on the way.
pub fn someone_waits(dir: &Path) -> bool {
  oldest_want(dir, None).is_some()
}

/// Waits for a slot until `deadline`, first come first served across processes: a free slot
/// is taken only when no other process has been waiting longer. `None` on timeout.
pub async fn acquire(
  dir: &Path,
  max: usize,
  deadline: tokio::time::Instant,
) -> io::Result<Option<MachineSlot>> {
  if oldest_other_want(dir).is_none() {
    if let Some(slot) = try_acquire(dir, max)? {
      return Ok(Some(slot));
    }
  }
  let want = WantMarker::new(dir)?;
  let mut pause = Duration::from_millis(5);
  loop {
    if oldest_other_want(dir).is_none_or(|other| other > want.since) {
      if let Some(slot) = try_acquire(dir, max)? {
        return Ok(Some(slot));
      }
    }
    if tokio::time::Instant::now() + pause > deadline {
      return Ok(None);
    }
    tokio::time::sleep(pause).await;
    pause = (pause * 2).min(Duration::from_millis(50));
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn slots_are_exclusive_and_released_on_drop() {
    let dir = std::env::temp_dir().join(format!("onepool-machine-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let a = try_acquire(&dir, 2).unwrap().expect("first slot");
    let b = try_acquire(&dir, 2).unwrap().expect("second slot");
    assert!(try_acquire(&dir, 2).unwrap().is_none(), "only two slots");
    drop(a);
    let c = try_acquire(&dir, 2).unwrap().expect("a released slot is free again");
    assert!(!someone_waits(&dir));
    let want = WantMarker::new(&dir).unwrap();
    // Another open file description cannot take the marker's lock: it counts as waiting.
    assert!(someone_waits(&dir));
    drop(want);
    assert!(!someone_waits(&dir));
    drop((b, c));
    fs::remove_dir_all(&dir).unwrap();
  }
}
