//! What the test files share: a global allocator that counts the
//! allocations of the thread that asks (the origins' threads allocate
//! too). A file that declares `mod common;` counts with it.

#[global_allocator]
static GLOBAL: roundtrip_io::counting::ThreadCounting = roundtrip_io::counting::ThreadCounting;

/// Allocations this thread made so far.
pub fn allocs() -> u64 {
    roundtrip_io::counting::thread_allocs()
}
