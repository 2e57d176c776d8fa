//! The byte breakdown of `many --memory`: a counting allocator that keeps
//! live allocations by size (exact sizes up to `EXACT`, powers of two
//! above; counting only while [`COUNTING`] is on, a relaxed load per
//! allocation otherwise), its snapshots, and the report of one run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

use super::clients;

const EXACT: usize = 16 * 1024;
const BIG_CLASSES: usize = 64;

pub static COUNTING: AtomicBool = AtomicBool::new(false);
static BY_SIZE: [AtomicIsize; EXACT + 1] = [const { AtomicIsize::new(0) }; EXACT + 1];
static BIG_COUNT: [AtomicIsize; BIG_CLASSES] = [const { AtomicIsize::new(0) }; BIG_CLASSES];
static BIG_BYTES: [AtomicIsize; BIG_CLASSES] = [const { AtomicIsize::new(0) }; BIG_CLASSES];

struct BySize;

fn count(size: usize, sign: isize) {
    if size <= EXACT {
        BY_SIZE[size].fetch_add(sign, Relaxed);
    } else {
        let class = (usize::BITS - (size - 1).leading_zeros()) as usize; // ceil(log2)
        BIG_COUNT[class].fetch_add(sign, Relaxed);
        BIG_BYTES[class].fetch_add(sign * size as isize, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes.
unsafe impl GlobalAlloc for BySize {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            count(layout.size(), 1);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            count(layout.size(), -1);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            count(layout.size(), -1);
            count(new_size, 1);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: BySize = BySize;

/// The live allocations at one moment: count by exact size, and (count,
/// bytes) by power-of-two class above `EXACT`.
pub struct Snapshot {
    by_size: Vec<isize>,
    big: Vec<(isize, isize)>,
}

impl Snapshot {
    /// The counts now (the snapshot's own allocations not counted). Counting
    /// is off only around those two allocations: other threads (the blocking
    /// client's) allocate on meanwhile.
    pub fn take() -> Snapshot {
        let was = COUNTING.swap(false, Relaxed);
        let mut by_size = Vec::with_capacity(EXACT + 1);
        let mut big = Vec::with_capacity(BIG_CLASSES);
        COUNTING.store(was, Relaxed);
        by_size.extend(BY_SIZE.iter().map(|n| n.load(Relaxed)));
        big.extend(
            (0..BIG_CLASSES).map(|c| (BIG_COUNT[c].load(Relaxed), BIG_BYTES[c].load(Relaxed))),
        );
        Snapshot { by_size, big }
    }

    fn bytes(&self) -> isize {
        let exact: isize = (self.by_size.iter().enumerate())
            .map(|(size, n)| size as isize * n)
            .sum();
        exact + self.big.iter().map(|(_, b)| b).sum::<isize>()
    }

    /// Prints, per connection, what `self` holds beyond `base`: the sizes
    /// with the most bytes, then the rest together.
    fn report_since(&self, base: &Snapshot, conns: usize, title: &str) {
        let n = conns as f64;
        let mut rows: Vec<(String, isize, isize)> = Vec::new();
        for size in 0..=EXACT {
            let d = self.by_size[size] - base.by_size[size];
            if d != 0 {
                rows.push((format!("{size}"), d, d * size as isize));
            }
        }
        for c in 0..BIG_CLASSES {
            let (dn, db) = (self.big[c].0 - base.big[c].0, self.big[c].1 - base.big[c].1);
            if dn != 0 || db != 0 {
                let low = (1usize << c.saturating_sub(1)) + 1;
                rows.push((format!("{low}..={} (together)", 1usize << c), dn, db));
            }
        }
        rows.sort_by_key(|r| -r.2.abs());
        let total = self.bytes() - base.bytes();
        println!("\n#### {title}: live heap bytes by allocation size, per connection\n");
        println!(
            "Live heap beyond the start: {total} bytes, {:.0} per connection.\n",
            total as f64 / n
        );
        println!(
            "| allocation size (bytes) | live allocations | per connection | bytes per connection |"
        );
        println!("|---:|---:|---:|---:|");
        let shown = 14;
        for (size, count, bytes) in rows.iter().take(shown) {
            println!(
                "| {size} | {count} | {:.2} | {:.0} |",
                *count as f64 / n,
                *bytes as f64 / n
            );
        }
        let (rest_n, rest_b) = rows
            .iter()
            .skip(shown)
            .fold((0, 0), |(a, b), r| (a + r.1, b + r.2));
        if rows.len() > shown {
            println!(
                "| {} other sizes | {rest_n} | {:.2} | {:.0} |",
                rows.len() - shown,
                rest_n as f64 / n,
                rest_b as f64 / n
            );
        }
    }
}

/// What one `--memory` run measured: live allocations and RSS (KiB) before
/// the first connection, with all N requests in flight, at the peak, and
/// with the N connections idle.
pub struct Breakdown {
    pub requests: u64,
    pub base: Snapshot,
    pub rss_before: u64,
    pub in_flight: Option<(Snapshot, u64)>,
    pub hwm: u64,
    pub idle: Snapshot,
    pub rss_idle: u64,
    pub rss_idle_trimmed: u64,
    /// Resident bytes of the client threads' stacks, summed (blocking).
    pub stacks: Option<u64>,
}

impl Breakdown {
    pub fn print(self, n: usize) {
        let (full, rss_full) = self
            .in_flight
            .expect("a moment with every request in flight");
        let per = |kib: u64| (kib as f64 - self.rss_before as f64) * 1024.0 / n as f64;
        println!(
            "{n} connections, {} requests; RSS beyond the start, per connection: {:.0} B with all \
             {n} in flight (sampled), {:.0} B at the peak (VmHWM), {:.0} B idle, {:.0} B idle after \
             malloc_trim",
            self.requests,
            per(rss_full),
            per(self.hwm),
            per(self.rss_idle),
            per(self.rss_idle_trimmed)
        );
        if let Some(stacks) = self.stacks {
            println!(
                "\nOf that RSS, the client threads' stacks ({} KiB each, outside the heap): {:.0} B \
                 resident per connection when the threads ended.",
                clients::STACK / 1024,
                stacks as f64 / n as f64
            );
        }
        full.report_since(&self.base, n, &format!("All {n} requests in flight"));
        (self.idle).report_since(
            &self.base,
            n,
            &format!("All {n} connections idle in the pool"),
        );
    }
}
