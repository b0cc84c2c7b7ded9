//! The addon's allocator: large blocks are their own memory mappings.
//!
//! A result buffer is filled on an I/O thread and freed on the JavaScript thread after the GC
//! collects it. glibc raises its mmap threshold to the size of every mapped block it frees, so
//! after the first large result every later one is carved out of the I/O thread's arena, and the
//! arena keeps those pages once they are free (RSS grows by tens of MB under a large-result
//! workload). Mapping each large block directly hands its pages back to the kernel on free.
//! This applies to onepool's own allocations only; the rest of the process keeps its malloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Blocks at least this large are mapped; smaller ones use the system allocator.
const LARGE: usize = 256 * 1024;
const PAGE: usize = 4096;

pub struct Allocator;

#[global_allocator]
static GLOBAL: Allocator = Allocator;

fn is_large(layout: &Layout) -> bool {
  layout.size() >= LARGE && layout.align() <= PAGE
}

unsafe fn map(size: usize) -> *mut u8 {
  let p = libc::mmap(
    ptr::null_mut(),
    size,
    libc::PROT_READ | libc::PROT_WRITE,
    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
    -1,
    0,
  );
  if p == libc::MAP_FAILED {
    ptr::null_mut()
  } else {
    p.cast()
  }
}

// SAFETY: GlobalAlloc's contract holds for both kinds of block. A large block (page-aligned at
// most, `is_large`) is an anonymous private mapping of exactly `layout.size()` bytes: page
// aligned, zeroed, owned by nobody else, and unmapped (or remapped) with the same size that the
// layout passed back says it has. Every other block is the system allocator's, and a block never
// changes kind without being copied into a fresh block of the other kind first (`realloc`).
unsafe impl GlobalAlloc for Allocator {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    if is_large(&layout) {
      map(layout.size())
    } else {
      System.alloc(layout)
    }
  }

  unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
    if is_large(&layout) {
      map(layout.size()) // fresh anonymous mappings are zeroed
    } else {
      System.alloc_zeroed(layout)
    }
  }

  unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
    if is_large(&layout) {
      libc::munmap(p.cast(), layout.size());
    } else {
      System.dealloc(p, layout)
    }
  }

  unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
    match (is_large(&layout), is_large(&new_layout)) {
      (false, false) => System.realloc(p, layout, new_size),
      (true, true) => {
        let q = libc::mremap(p.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE);
        if q == libc::MAP_FAILED {
          ptr::null_mut()
        } else {
          q.cast()
        }
      }
      _ => {
        let q = self.alloc(new_layout);
        if !q.is_null() {
          ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
          self.dealloc(p, layout);
        }
        q
      }
    }
  }
}
