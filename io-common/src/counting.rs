//! Not part of the public API; used by the tests of the backends.
//!
//! A global allocator that counts the allocations of each thread (a test's
//! loopback origin allocates on threads of its own, uncounted), for tests
//! that assert how many allocations a request costs. A test binary makes
//! it its allocator:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: roundtrip_io::counting::ThreadCounting = roundtrip_io::counting::ThreadCounting;
//!
//! let before = roundtrip_io::counting::thread_allocs();
//! let v = vec![1u8; 16];
//! assert_eq!(roundtrip_io::counting::thread_allocs() - before, 1);
//! # drop(v);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting each thread's allocations and
/// reallocations ([`thread_allocs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadCounting;

// SAFETY: every call is passed to the system allocator unchanged; the
// count is a thread-local cell (no allocation, `try_with` once the
// thread's locals are gone).
unsafe impl GlobalAlloc for ThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations (and reallocations) this thread made so far under
/// [`ThreadCounting`]; 0 under another allocator.
pub fn thread_allocs() -> u64 {
    ALLOCS.try_with(Cell::get).unwrap_or(0)
}
