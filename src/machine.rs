//! The machine-wide budget (`machineMax`): all processes on this machine that use the same
//! target hold at most N connections together. No daemon: each connection holds an advisory
//! lock on one of N slot files in a per-user runtime directory, and the kernel drops the locks of
//! a process that dies, however it dies (SIGKILL included). Locks are `flock` on Linux and macOS
//! and `LockFileEx` on Windows, through `std::fs::File::try_lock`.
//!
//! A process waiting for a slot holds a `want-*` lock file; pools that see one close an idle
//! connection (their reaper checks twice a second), so idle connections elsewhere never starve it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// Marks this process as waiting for a slot while it lives.
pub struct WantMarker {
  path: PathBuf,
  _file: File,
}

impl WantMarker {
  pub fn new(dir: &Path) -> io::Result<WantMarker> {
    let n = NEXT_WANT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("want-{}-{n}.lock", std::process::id()));
    let file = open_lock_file(&path)?;
    file.lock()?;
    Ok(WantMarker { path, _file: file })
  }
}

impl Drop for WantMarker {
  fn drop(&mut self) {
    let _ = fs::remove_file(&self.path);
  }
}

/// Whether some process (maybe this one) waits for a slot; stale markers of dead processes
/// are removed on the way.
pub fn someone_waits(dir: &Path) -> bool {
  let Ok(entries) = fs::read_dir(dir) else { return false };
  let mut waits = false;
  for entry in entries.flatten() {
    let name = entry.file_name();
    if !name.to_string_lossy().starts_with("want-") {
      continue;
    }
    let Ok(file) = open_lock_file(&entry.path()) else { continue };
    match file.try_lock() {
      Err(fs::TryLockError::WouldBlock) => waits = true,
      Ok(()) => {
        let _ = fs::remove_file(entry.path());
      }
      Err(_) => {}
    }
  }
  waits
}

/// Polls for a slot until `deadline`; `None` on timeout.
pub async fn acquire(
  dir: &Path,
  max: usize,
  deadline: tokio::time::Instant,
) -> io::Result<Option<MachineSlot>> {
  if let Some(slot) = try_acquire(dir, max)? {
    return Ok(Some(slot));
  }
  let _want = WantMarker::new(dir)?;
  let mut pause = Duration::from_millis(5);
  loop {
    if tokio::time::Instant::now() + pause > deadline {
      return Ok(None);
    }
    tokio::time::sleep(pause).await;
    if let Some(slot) = try_acquire(dir, max)? {
      return Ok(Some(slot));
    }
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
