//! Who this process is: its id and the machine's host name, for the `application_name` tag that
//! lets `onepool doctor` tell live connections from orphaned ones. WASI can tell neither, so the
//! WebAssembly build's JavaScript reports them (`report`) when it connects its sockets.

use std::sync::Mutex;

static REPORTED: Mutex<Option<(u32, String)>> = Mutex::new(None);

/// The process id and host name as JavaScript sees them (the WebAssembly build).
pub fn report(pid: u32, hostname: String) {
  *REPORTED.lock().unwrap_or_else(|e| e.into_inner()) = Some((pid, hostname));
}

fn reported() -> Option<(u32, String)> {
  REPORTED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// This process's id.
pub fn id() -> u32 {
  if cfg!(target_family = "wasm") {
    return reported().map_or(0, |r| r.0);
  }
  std::process::id()
}

/// This machine's host name (short form).
pub fn hostname() -> String {
  if let Some((_, name)) = reported() {
    return short(&name);
  }
  #[cfg(unix)]
  {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if ok {
      let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
      return short(&String::from_utf8_lossy(&buf[..end]));
    }
  }
  std::env::var("COMPUTERNAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "localhost".into())
}

fn short(name: &str) -> String {
  name.split('.').next().unwrap_or("").to_string()
}
