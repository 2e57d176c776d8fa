//! `--memory`: what one idle pooled TLS connection holds, measured with a
//! counting global allocator (and malloc's own statistics, which also see
//! aws-lc's C allocations).

use std::sync::atomic::Ordering::Relaxed;

use roundtrip_tests::origin::{BIG_LEN, SMALL_BODY};

use crate::common::{ALLOCS, COUNTING, Counting, LIVE, median, set_affinity};
use crate::peers::{AsyncPeer, Conns, Peer, Target};
use crate::{Kind, Opts, current_thread, target};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes malloc has handed out and not got back (main arena), which also
/// sees aws-lc's C allocations (they bypass the Rust allocator).
fn malloc_in_use() -> isize {
    // SAFETY: `mallinfo2` only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.uordblks as isize
}

// ---------------------------------------------------------------------------
// `--memory`: what one idle pooled connection holds.

/// Heap bytes (Rust allocator, malloc) and allocations added by one GET of
/// `path` on a new client, the client kept with its connection idle in
/// its pool. Not counted: the client, its runtime, and what it builds on
/// its first https request (roundtrip and ureq build their rustls
/// configuration and session cache then; hyper-rustls and reqwest are
/// handed theirs): before counting, each client but the raw loop (one
/// connection, its configuration built with it) serves one GET of
/// `https://localhost:PORT/small`, the same server under another pool key,
/// and keeps that connection too.
fn idle_after(kind: Kind, t: &Target, path: &str) -> (isize, isize, usize) {
    let count = |get: &mut dyn FnMut() -> usize| {
        let expect = if path == "/64k" {
            BIG_LEN
        } else {
            SMALL_BODY.len()
        };
        let before = malloc_in_use();
        LIVE.store(0, Relaxed);
        ALLOCS.store(0, Relaxed);
        COUNTING.store(true, Relaxed);
        let got = get();
        COUNTING.store(false, Relaxed);
        assert_eq!(got, expect, "body length");
        (
            LIVE.load(Relaxed),
            malloc_in_use() - before,
            ALLOCS.load(Relaxed),
        )
    };
    if kind.is_async() {
        let rt = current_thread();
        let mut peer = {
            let _in_rt = rt.enter();
            AsyncPeer::new(kind.name(), t, path, Conns::KeepAlive)
        };
        let url = std::mem::replace(&mut peer.url, t.url_by_name("/small").into());
        rt.block_on(peer.get());
        peer.url = url;
        let held = count(&mut || {
            rt.block_on(async {
                let n = peer.get().await;
                // Let the connection task park its connection in the pool.
                for _ in 0..16 {
                    tokio::task::yield_now().await;
                }
                n
            })
        });
        drop(peer);
        held
    } else {
        let mut peer = Peer::new(kind.name(), t, path, Conns::KeepAlive);
        if kind != Kind::Raw {
            let url = std::mem::replace(&mut peer.url, t.url_by_name("/small"));
            peer.get();
            peer.url = url;
        }
        let held = count(&mut || peer.get());
        drop(peer);
        held
    }
}

/// Each cell of `--memory` is measured this many times (on new clients):
/// what an idle connection keeps depends on how the ciphertext arrived
/// (rustls shrinks its receive buffer only when a read finds it empty).
const MEMORY_REPS: usize = 7;

pub fn memory(o: &Opts) {
    let t = target(o.origin.expect("--memory needs --origin ADDR"), o);
    set_affinity(&[0]);
    println!(
        "| client | after one 13 B GET: Rust heap, median (min–max) | after one 64 KiB GET: Rust heap, median (min–max) | malloc in use, median | allocations of that GET (dial included) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let kinds = [
        Kind::Raw,
        Kind::Blocking,
        Kind::Mio,
        Kind::Tokio,
        Kind::Hyper,
        Kind::Ureq,
        Kind::Reqwest,
    ];
    for kind in kinds.into_iter().filter(|k| o.clients.contains(k)) {
        // Warm-up with throwaway clients: one-time statics are not the
        // connection's.
        for path in ["/small", "/64k"] {
            idle_after(kind, &t, path);
        }
        let reps = |path| {
            (0..MEMORY_REPS)
                .map(|_| idle_after(kind, &t, path))
                .collect::<Vec<_>>()
        };
        let (small, big) = (reps("/small"), reps("/64k"));
        let med = |v: &[(isize, isize, usize)], f: fn(&(isize, isize, usize)) -> f64| {
            median(v.iter().map(f).collect())
        };
        let spread = |v: &[(isize, isize, usize)]| {
            let min = v.iter().map(|x| x.0).min().unwrap_or(0);
            let max = v.iter().map(|x| x.0).max().unwrap_or(0);
            format!("({min}–{max})")
        };
        println!(
            "| {} | {:.0} B {} | **{:.0} B** {} | {:.0} B | {:.0} |",
            kind.label(),
            med(&small, |x| x.0 as f64),
            spread(&small),
            med(&big, |x| x.0 as f64),
            spread(&big),
            med(&big, |x| x.1 as f64),
            med(&big, |x| x.2 as f64),
        );
    }
}
