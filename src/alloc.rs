//! The global allocator: the system allocator, except that huge allocations are served by
//! lazily committed anonymous mappings.
//!
//! Why: `kafka-protocol` preallocates arrays with `Vec::with_capacity(count)` using a count
//! read from the wire, before checking that the bytes exist. A 5-byte request can ask for
//! 150+ GB; the system allocator fails and Rust *aborts the process* (not a panic that a task
//! boundary could contain). Serving every allocation of at least [`HUGE`] bytes with
//! `mmap(MAP_NORESERVE)` turns that into an address-space reservation that costs nothing
//! until touched; the decoder then fails on the missing bytes and the mapping is unmapped.
//! Memory actually used stays bounded by what is decoded, which is bounded by the request
//! size (`socket.request.max.bytes`, and the smaller per-API caps in `protocol::guard`).
//!
//! This covers the whole class (every array, record and header decoder in the crate, present
//! and future) without patching the crate. Its limit: with `vm.overcommit_memory = 2` (strict
//! accounting) the kernel refuses such mappings and the process aborts as before.
//!
//! No legitimate allocation in weir comes near [`HUGE`]: frames are capped at
//! `socket.request.max.bytes` (100 MiB by default) and record data lives in the page cache.

#![allow(unsafe_code)] // an allocator is unsafe by definition: see the SAFETY notes

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of this size or more are served by anonymous `MAP_NORESERVE` mappings.
pub const HUGE: usize = 1 << 30;

/// See the module docs.
#[derive(Debug)]
pub struct WeirAlloc;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= 4096
}

// SAFETY: small allocations are forwarded to `System` unchanged. Huge ones come from mmap,
// which returns page-aligned (4096 ≥ align, checked by `is_huge`), zero-filled memory of at
// least `size` bytes or MAP_FAILED (reported as null, which GlobalAlloc allows); `dealloc`
// and `realloc` route by the same `is_huge(layout)` test, so each block goes back to where it
// came from.
unsafe impl GlobalAlloc for WeirAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: anonymous private mapping; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            return p.cast();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: anonymous mappings are zero-filled.
            return unsafe { self.alloc(layout) };
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from the mmap above with this size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `layout.align()` and `new_size` form a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate in the right place, copy the overlap, free the old block.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
