//! Pins this shared library in memory. Node never unloads an addon loaded by the main thread,
//! but one loaded only by worker threads can be unloaded when the last worker exits; our
//! statics (registry, runtime threads) must outlive that.

#[cfg(unix)]
pub fn pin_this_image() {
  // SAFETY: dladdr/dlopen are called with a valid address inside this image and a C string
  // returned by dladdr; RTLD_NOLOAD never loads anything new, RTLD_NODELETE only pins.
  unsafe {
    let mut info: libc::Dl_info = std::mem::zeroed();
    let addr = pin_this_image as *const libc::c_void;
    if libc::dladdr(addr, &mut info) != 0 && !info.dli_fname.is_null() {
      libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE);
    }
  }
}

#[cfg(windows)]
pub fn pin_this_image() {
  const GET_MODULE_HANDLE_EX_FLAG_PIN: u32 = 0x1;
  const GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS: u32 = 0x4;
  #[link(name = "kernel32")]
  extern "system" {
    fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut *mut core::ffi::c_void) -> i32;
  }
  let mut module = std::ptr::null_mut();
  // SAFETY: FROM_ADDRESS treats `name` as an address inside this module; PIN keeps it loaded.
  unsafe {
    GetModuleHandleExW(
      GET_MODULE_HANDLE_EX_FLAG_PIN | GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
      pin_this_image as *const u16,
      &mut module,
    );
  }
}

#[cfg(not(any(unix, windows)))]
pub fn pin_this_image() {}
