//! Pool operations at 10, 1,000 and 10,000 idle connections (issue #16).
//!
//! A plain `harness = false` program (no criterion): several operations
//! consume the pool's state (an eviction closes a connection, an expiry
//! another), so each round builds a fresh pool outside the timed region,
//! then times one batch of operations with `std::time::Instant`. A cell is
//! the median over the rounds of (batch time / operations in the batch).
//!
//! Layouts: `one host` (every idle connection under one key) and `host per
//! conn` (as many keys as idle connections, one idle connection each).
//! Idle connections are checked in 100 µs apart, so they expire one at a
//! time. The configuration keeps every connection: `max_idle_per_host` and
//! `max_idle_total` equal the idle count, `idle_timeout` 90 s.
//!
//! Operations (each includes the `take_closed` an adapter does after it):
//!
//! - `reuse`: `checkout` of the most recently used idle connection of a key,
//!   then its `checkin` (the keep-alive steady state); with many hosts the
//!   keys are visited in turn.
//! - `reuse, Keep-Alive`: the same with every connection carrying a server
//!   `Keep-Alive: timeout=5` hint (so its expiry is not the idle timeout's).
//! - `evict`: `checkin` of a connection that was in use, at the idle cap:
//!   the least recently used idle connection (another key's, with many
//!   hosts) is closed. The batch checks in `k` connections (`k` as below),
//!   each on a key of its own with many hosts, so the pool knows between
//!   `n` and `n + k` keys meanwhile.
//! - `timer, none due`: `poll_timeout` then `handle_timeout(now)` with
//!   nothing due (the threaded adapters call `handle_timeout` at every
//!   checkout).
//! - `expire one`: `poll_timeout`, `handle_timeout` at that instant, which
//!   closes exactly one connection. The batch starts with `n + k` idle
//!   connections and expires `k` of them (`k` = n/10, at least 10, at most
//!   1,000), so the pool holds between `n` and `n + k` meanwhile.
//!
//! Run: `cargo bench -p roundtrip-proto --bench pool` (pin it with
//! `taskset -c 1`); `-- --quick` runs fewer rounds, `-- evict` only the
//! operations whose name contains `evict`.

// A bench binary: its helpers need no docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant as Clock};

use roundtrip_proto::pool::{Checkout, ConnId, Key, Pool, PoolConfig, Reuse, Scheme};
use roundtrip_proto::time::Instant;

const SIZES: [usize; 3] = [10, 1_000, 10_000];
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const HINT: Option<Duration> = Some(Duration::from_secs(5));
/// Between two check-ins of the bed (11,000 of them fit in the hint).
const STEP: Duration = Duration::from_micros(100);

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    OneHost,
    HostPerConn,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::OneHost => "one host",
            Layout::HostPerConn => "host per conn",
        }
    }
}

/// A pool with `n` idle connections, and `spare` more connections in use.
struct Bed {
    pool: Pool<u32>,
    keys: Vec<Key>,
    /// The idle connections' keys (index into `keys`), oldest first.
    idle_keys: usize,
    /// Connections in use: (id, index of its key).
    spare: Vec<(ConnId, usize)>,
    now: Instant,
}

fn key(i: usize) -> Key {
    Key::new(Scheme::Http, &format!("h{i}.example"), 80)
}

/// Builds the pool: `n` idle connections checked in `STEP` apart (with `hint`),
/// and `spare` connections in use (on the one key, or on `spare` new keys).
fn bed(layout: Layout, n: usize, spare: usize, cap: usize, hint: Option<Duration>) -> Bed {
    let config = PoolConfig::default()
        .max_idle_per_host(cap)
        .max_idle_total(cap)
        .idle_timeout(Some(IDLE_TIMEOUT));
    let mut pool = Pool::new(config);
    let hosts = match layout {
        Layout::OneHost => 1,
        Layout::HostPerConn => n + spare,
    };
    let keys: Vec<Key> = (0..hosts).map(key).collect();
    let key_of = |i: usize| if layout == Layout::OneHost { 0 } else { i };
    // Dial everything first: with one host, a checkout finds no idle
    // connection only before the first check-in.
    let mut conns = Vec::with_capacity(n + spare);
    for i in 0..n + spare {
        let k = key_of(i);
        match pool.checkout(&keys[k], Instant::ZERO) {
            Checkout::Dial(permit) => {
                conns.push((permit.id(), k));
                pool.dial_succeeded(permit);
            }
            _ => panic!("expected a dial"),
        }
    }
    let spare = conns.split_off(n);
    let mut now = Instant::ZERO;
    for (i, &(id, k)) in conns.iter().enumerate() {
        now = Instant::from_origin(STEP * (1 + i as u32));
        let kept = pool.checkin(id, &keys[k], i as u32, Reuse::Yes, hint, now);
        assert!(kept.is_none());
    }
    assert!(pool.take_closed().is_none(), "the bed closes nothing");
    assert_eq!(pool.stats().idle, n);
    Bed {
        pool,
        idle_keys: if layout == Layout::OneHost { 1 } else { n },
        keys,
        spare,
        now,
    }
}

/// One round: returns nanoseconds per operation.
type Round = fn(Layout, usize) -> f64;

fn per_op(start: Clock, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn reuse_with(layout: Layout, n: usize, hint: Option<Duration>) -> f64 {
    let mut b = bed(layout, n, 0, n, hint);
    let ops = 20_000;
    let now = b.now;
    let start = Clock::now();
    for i in 0..ops {
        let key = &b.keys[i % b.idle_keys];
        let Checkout::Idle(idle) = b.pool.checkout(black_box(key), now) else {
            panic!("expected an idle connection")
        };
        let grant = b
            .pool
            .checkin(idle.id, key, idle.handle, Reuse::Yes, hint, now);
        black_box(grant);
        black_box(b.pool.take_closed());
    }
    per_op(start, ops)
}

fn reuse(layout: Layout, n: usize) -> f64 {
    reuse_with(layout, n, None)
}

fn reuse_hinted(layout: Layout, n: usize) -> f64 {
    reuse_with(layout, n, HINT)
}

/// How many operations a batch that consumes the bed does, for `n` idle.
fn batch(n: usize) -> usize {
    (n / 10).clamp(10, 1_000)
}

fn evict(layout: Layout, n: usize) -> f64 {
    let ops = batch(n);
    let mut b = bed(layout, n, ops, n, None);
    let now = b.now + STEP;
    let spare = std::mem::take(&mut b.spare);
    let start = Clock::now();
    for (i, &(id, k)) in spare.iter().enumerate() {
        let grant = b
            .pool
            .checkin(id, &b.keys[k], i as u32, Reuse::Yes, None, now);
        black_box(grant);
        black_box(b.pool.take_closed().expect("one evicted"));
    }
    let ns = per_op(start, ops);
    assert_eq!(b.pool.stats().idle, n);
    ns
}

fn timer_idle(layout: Layout, n: usize) -> f64 {
    let mut b = bed(layout, n, 0, n, None);
    let ops = 20_000;
    let now = b.now;
    let start = Clock::now();
    for _ in 0..ops {
        black_box(b.pool.poll_timeout());
        b.pool.handle_timeout(black_box(now));
        black_box(b.pool.take_closed());
    }
    let ns = per_op(start, ops);
    assert_eq!(b.pool.stats().idle, n);
    ns
}

fn expire_one(layout: Layout, n: usize) -> f64 {
    let k = batch(n);
    let mut b = bed(layout, n + k, 0, n + k, None);
    let start = Clock::now();
    for _ in 0..k {
        let at = b.pool.poll_timeout().expect("a deadline");
        b.pool.handle_timeout(at);
        black_box(b.pool.take_closed().expect("one expired"));
    }
    let ns = per_op(start, k);
    assert_eq!(b.pool.stats().idle, n);
    assert!(b.pool.take_closed().is_none(), "exactly one per deadline");
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else we ignore but `--quick`.
    let quick = std::env::args().any(|a| a == "--quick");
    // Any other argument not starting with `-` keeps the operations whose
    // name contains it (for profiling one of them).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rounds = if quick { 5 } else { 21 };
    let ops: [(&str, Round); 5] = [
        ("reuse (checkout + checkin)", reuse),
        ("reuse, Keep-Alive hint", reuse_hinted),
        ("evict LRU at the cap (checkin)", evict),
        ("poll_timeout + handle_timeout, none due", timer_idle),
        ("expire one due", expire_one),
    ];
    println!("median ns/op over {rounds} rounds (a fresh pool per round)\n");
    println!("| operation | layout | 10 | 1,000 | 10,000 |");
    println!("|---|---|---:|---:|---:|");
    for (name, round) in ops {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        for layout in [Layout::OneHost, Layout::HostPerConn] {
            let mut cells = Vec::new();
            for n in SIZES {
                round(layout, n); // warm-up
                let ns: Vec<f64> = (0..rounds).map(|_| round(layout, n)).collect();
                cells.push(format!("{:.0}", median(ns)));
            }
            println!("| {name} | {} | {} |", layout.name(), cells.join(" | "));
        }
    }
}
