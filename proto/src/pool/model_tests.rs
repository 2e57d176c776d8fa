//! The pool against its model (`model.rs`), driven by proptest, and
//! targeted tests of the constant-time structures (`idle.rs`, `slab.rs`):
//! expiry through the LRU tail and the deadline heaps, eviction order
//! across keys, `poll_timeout` exactness, also when `now` goes back.

use super::model::{Harness, KEYS, Op, key};
use super::*;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

type P = Pool<u32>;

fn op() -> impl Strategy<Value = Op> {
    let i = 0..64usize;
    prop_oneof![
        4 => (0..KEYS).prop_map(Op::Checkout),
        2 => i.clone().prop_map(Op::DialSucceeded),
        1 => i.clone().prop_map(Op::DialFailed),
        4 => (
            i.clone(),
            proptest::option::weighted(0.2, 0..CloseReason::ALL.len()),
            proptest::option::of(0..30u64),
        )
            .prop_map(|(c, v, h)| Op::Checkin(c, v, h)),
        1 => (
            i.clone(),
            proptest::option::weighted(0.2, 0..CloseReason::ALL.len()),
            proptest::option::of(0..30u64),
            0..20_000u64,
        )
            .prop_map(|(c, v, h, b)| Op::CheckinSince(c, v, h, b)),
        1 => (i.clone(), 0..CloseReason::ALL.len()).prop_map(|(c, r)| Op::Discard(c, r)),
        1 => i.clone().prop_map(Op::CancelWait),
        1 => (0..KEYS, i, any::<bool>()).prop_map(|(k, c, w)| Op::RemoveIdle(k, c, w)),
        2 => (0..8_000u64).prop_map(Op::AdvanceMs),
        1 => (0..3_000u64).prop_map(Op::RewindMs),
        1 => Just(Op::HandleTimeout),
        1 => Just(Op::CloseIdle),
        2 => Just(Op::TakeClosed),
    ]
}

fn config() -> impl Strategy<Value = PoolConfig> {
    (
        0..5usize,
        0..7usize,
        proptest::option::of(0..4usize),
        proptest::option::of(0..20_000u64),
        0..3_000u64,
    )
        .prop_map(|(per_host, total, cap, idle_ms, margin_ms)| {
            PoolConfig::default()
                .max_idle_per_host(per_host)
                .max_idle_total(total)
                .max_conns_per_host(cap)
                .idle_timeout(idle_ms.map(Duration::from_millis))
                .keep_alive_margin(Duration::from_millis(margin_ms))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every answer, close and deadline of the pool is the model's.
    #[test]
    fn pool_matches_the_model(config in config(), ops in proptest::collection::vec(op(), 1..200)) {
        let mut h = Harness::new(config);
        for op in &ops {
            h.op(op);
            h.check();
        }
        h.drain();
    }
}

// ---------------------------------------------------------------------------
// Targeted tests of the structure
// ---------------------------------------------------------------------------

fn at_ms(ms: u64) -> Instant {
    Instant::from_origin(Duration::from_millis(ms))
}

/// Dials `n` connections of `key` (all in use afterwards).
fn dial_n(pool: &mut P, key: &Key, n: usize) -> Vec<ConnId> {
    let dial = |pool: &mut P| match pool.checkout(key, Instant::ZERO) {
        Checkout::Dial(permit) => {
            let id = permit.id();
            pool.dial_succeeded(permit);
            id
        }
        other => panic!("expected a dial, got {other:?}"),
    };
    (0..n).map(|_| dial(pool)).collect()
}

fn park(pool: &mut P, id: ConnId, key: &Key, handle: u32, hint_ms: Option<u64>, now: Instant) {
    let hint = hint_ms.map(Duration::from_millis);
    let grant = pool.checkin(id, key, handle, Reuse::Yes, hint, now);
    assert!(grant.is_none());
    pool.check_invariants();
}

fn drain(pool: &mut P) -> Vec<(u32, CloseReason)> {
    core::iter::from_fn(|| pool.take_closed()).collect()
}

/// Walks the pool's deadlines one `poll_timeout` at a time, returning what
/// each `handle_timeout` closed.
fn walk_deadlines(pool: &mut P) -> Vec<(Instant, Vec<(u32, CloseReason)>)> {
    let mut out = Vec::new();
    while let Some(at) = pool.poll_timeout() {
        pool.handle_timeout(at);
        pool.check_invariants();
        let closed = drain(pool);
        assert!(!closed.is_empty(), "poll_timeout {at:?} closed nothing");
        out.push((at, closed));
    }
    out
}

#[test]
fn keep_alive_hints_mixed_with_idle_timeouts_expire_in_deadline_order() {
    use CloseReason::{IdleTimeout as Idle, KeepAliveTimeout as Hint};
    let config = PoolConfig::default()
        .idle_timeout(Some(Duration::from_secs(10)))
        .keep_alive_margin(Duration::from_secs(1));
    let mut pool = P::new(config);
    let (a, b) = (key(0), key(1));
    let ids_a = dial_n(&mut pool, &a, 4);
    let ids_b = dial_n(&mut pool, &b, 3);
    // (key, id, handle, hint ms, check-in at ms) -> expiry
    let plan = [
        (&a, ids_a[0], 1, None, 0),             // idle: 10 000
        (&b, ids_b[0], 2, Some(5_000), 500),    // hint: 4 500
        (&a, ids_a[1], 3, Some(30_000), 1_000), // hint later than idle: 11 000, idle
        (&b, ids_b[1], 4, Some(2_000), 2_000),  // hint: 3 000
        (&a, ids_a[2], 5, None, 3_000),         // idle: 13 000
        (&b, ids_b[2], 6, Some(11_000), 3_000), // hint = idle: 13 000, the hint's
        (&a, ids_a[3], 7, Some(9_500), 4_000),  // hint: 12 500
    ];
    let mut earliest: Option<Instant> = None;
    for (k, id, handle, hint, now) in plan {
        park(&mut pool, id, k, handle, hint, at_ms(now));
        let idle = at_ms(now + 10_000);
        let due = hint.map_or(idle, |h| idle.min(at_ms(now + h - 1_000)));
        earliest = Some(earliest.map_or(due, |e| e.min(due)));
        assert_eq!(pool.poll_timeout(), earliest, "after handle {handle}");
    }
    let walk = walk_deadlines(&mut pool);
    let want = vec![
        (at_ms(3_000), vec![(4, Hint)]),
        (at_ms(4_500), vec![(2, Hint)]),
        (at_ms(10_000), vec![(1, Idle)]),
        (at_ms(11_000), vec![(3, Idle)]),
        (at_ms(12_500), vec![(7, Hint)]),
        // Two at once: the idle timeout's (oldest first), then the hint's.
        (at_ms(13_000), vec![(5, Idle), (6, Hint)]),
    ];
    assert_eq!(walk, want);
    assert!(pool.hosts.is_empty(), "emptied keys forgotten");
}

#[test]
fn checkout_expires_every_due_conn_of_its_key_and_no_other() {
    let config = PoolConfig::default().idle_timeout(Some(Duration::from_secs(10)));
    let mut pool = P::new(config);
    let (a, b) = (key(0), key(1));
    let ids_a = dial_n(&mut pool, &a, 4);
    let id_b = dial_n(&mut pool, &b, 1)[0];
    park(&mut pool, ids_a[0], &a, 1, None, at_ms(0)); // oldest, idle-due at 10 s
    park(&mut pool, id_b, &b, 9, None, at_ms(0)); // another key's, due at 10 s
    park(&mut pool, ids_a[1], &a, 2, None, at_ms(5_000)); // due at 15 s
    park(&mut pool, ids_a[2], &a, 3, Some(3_000), at_ms(6_000)); // in the middle, due at 8 s
    park(&mut pool, ids_a[3], &a, 4, None, at_ms(7_000)); // newest, due at 17 s
    let got = match pool.checkout(&a, at_ms(12_000)) {
        Checkout::Idle(idle) => idle,
        other => panic!("expected an idle conn, got {other:?}"),
    };
    assert_eq!((got.handle, got.idle_for), (4, Duration::from_secs(5)));
    let mut closed = drain(&mut pool);
    closed.sort_unstable_by_key(|c| c.0);
    let want = [
        (1, CloseReason::IdleTimeout),
        (3, CloseReason::KeepAliveTimeout),
    ];
    assert_eq!(closed, want);
    assert_eq!(pool.stats_for(&b).idle, 1, "another key's due conn waits");
    assert_eq!(pool.poll_timeout(), Some(at_ms(10_000)));
    pool.handle_timeout(at_ms(12_000));
    assert_eq!(drain(&mut pool), [(9, CloseReason::IdleTimeout)]);
    pool.check_invariants();
}

#[test]
fn eviction_takes_the_least_recently_used_across_keys() {
    let config = PoolConfig::default().max_idle_total(3);
    let mut pool = P::new(config);
    let (a, b, c) = (key(0), key(1), key(2));
    let ids_a = dial_n(&mut pool, &a, 2);
    let ids_b = dial_n(&mut pool, &b, 1);
    let ids_c = dial_n(&mut pool, &c, 2);
    park(&mut pool, ids_a[0], &a, 1, None, at_ms(1));
    park(&mut pool, ids_b[0], &b, 2, Some(60_000), at_ms(2)); // a hint changes nothing here
    park(&mut pool, ids_a[1], &a, 3, None, at_ms(3));
    // Reusing b's connection makes it the most recently used.
    let Checkout::Idle(reused) = pool.checkout(&b, at_ms(4)) else {
        panic!("expected b's idle conn")
    };
    park(&mut pool, reused.id, &b, 2, None, at_ms(5));
    // Order now, oldest first: 1 (a), 3 (a), 2 (b).
    park(&mut pool, ids_c[0], &c, 4, None, at_ms(6));
    assert_eq!(drain(&mut pool), [(1, CloseReason::MaxIdleTotal)]);
    park(&mut pool, ids_c[1], &c, 5, None, at_ms(7));
    assert_eq!(drain(&mut pool), [(3, CloseReason::MaxIdleTotal)]);
    assert!(!pool.hosts.contains_key(&a), "a holds nothing: forgotten");
    let idle: Vec<usize> = [&a, &b, &c].map(|k| pool.stats_for(k).idle).into();
    assert_eq!(idle, [0, 1, 2]);
}

#[test]
fn poll_timeout_is_exact_when_now_goes_back() {
    let config = PoolConfig::default().idle_timeout(Some(Duration::from_secs(10)));
    let mut pool = P::new(config);
    let a = key(0);
    let ids = dial_n(&mut pool, &a, 3);
    park(&mut pool, ids[0], &a, 1, None, at_ms(10_000)); // due at 20 s
    // Two callers read the clock before taking their turn: earlier `now`s.
    park(&mut pool, ids[1], &a, 2, None, at_ms(5_000)); // due at 15 s
    park(&mut pool, ids[2], &a, 3, None, at_ms(7_000)); // due at 17 s
    assert_eq!(pool.poll_timeout(), Some(at_ms(15_000)));
    let walk = walk_deadlines(&mut pool);
    let expired = |h| vec![(h, CloseReason::IdleTimeout)];
    let want = vec![
        (at_ms(15_000), expired(2)),
        (at_ms(17_000), expired(3)),
        (at_ms(20_000), expired(1)),
    ];
    assert_eq!(walk, want);
}

#[test]
fn without_idle_timeout_only_hints_expire() {
    let config = PoolConfig::default().idle_timeout(None);
    let mut pool = P::new(config);
    let (a, b) = (key(0), key(1));
    let ids_a = dial_n(&mut pool, &a, 2);
    let id_b = dial_n(&mut pool, &b, 1)[0];
    park(&mut pool, ids_a[0], &a, 1, None, at_ms(0)); // never expires
    park(&mut pool, ids_a[1], &a, 2, Some(5_000), at_ms(1_000)); // 5 s
    park(&mut pool, id_b, &b, 3, Some(3_000), at_ms(1_500)); // 3.5 s
    let walk = walk_deadlines(&mut pool);
    let want = vec![
        (at_ms(3_500), vec![(3, CloseReason::KeepAliveTimeout)]),
        (at_ms(5_000), vec![(2, CloseReason::KeepAliveTimeout)]),
    ];
    assert_eq!(walk, want);
    assert_eq!(pool.stats_for(&a).idle, 1);
}

#[test]
fn remove_idle_finds_a_conn_anywhere_and_keeps_finding_them() {
    let mut pool = P::default();
    let (a, b) = (key(0), key(1));
    let ids = dial_n(&mut pool, &a, 5);
    for (i, &id) in ids.iter().enumerate() {
        park(&mut pool, id, &a, i as u32, None, at_ms(i as u64));
    }
    let reason = CloseReason::PeerClosed;
    assert_eq!(pool.remove_idle(ids[2], &b, reason), None, "another key");
    assert_eq!(pool.remove_idle(ids[2], &a, reason), Some(2));
    assert_eq!(pool.remove_idle(ids[2], &a, reason), None, "already gone");
    pool.check_invariants();
    // The index built by the first call follows later checkouts and check-ins.
    let Checkout::Idle(out) = pool.checkout(&a, at_ms(10)) else {
        panic!("expected an idle conn")
    };
    assert_eq!(out.handle, 4);
    assert_eq!(
        pool.remove_idle(out.id, &a, reason),
        None,
        "in use, not idle"
    );
    park(&mut pool, out.id, &a, 4, Some(60_000), at_ms(11));
    assert_eq!(pool.remove_idle(out.id, &a, reason), Some(4), "hinted");
    assert_eq!(pool.remove_idle(ids[0], &a, reason), Some(0), "the oldest");
    pool.check_invariants();
    assert_eq!(pool.stats_for(&a).idle, 2);
    assert_eq!(pool.stats().closed.get(reason), 3);
    assert!(
        drain(&mut pool).is_empty(),
        "the caller closes removed handles"
    );
}

#[test]
fn cancel_wait_from_the_middle_keeps_the_rest_in_order() {
    let config = PoolConfig::default().max_conns_per_host(Some(1));
    let mut pool = P::new(config);
    let a = key(0);
    let id = dial_n(&mut pool, &a, 1)[0];
    let wait = |pool: &mut P| match pool.checkout(&a, Instant::ZERO) {
        Checkout::Wait(t) => t,
        other => panic!("expected to wait, got {other:?}"),
    };
    let w: Vec<Ticket> = (0..4).map(|_| wait(&mut pool)).collect();
    assert!(pool.cancel_wait(w[1]));
    assert!(pool.cancel_wait(w[3]), "the last");
    pool.check_invariants();
    for want in [w[0], w[2]] {
        match pool.checkin(id, &a, 1, Reuse::Yes, None, at_ms(1)) {
            Some(Grant::Conn { ticket, .. }) => assert_eq!(ticket, want),
            other => panic!("expected a handover, got {other:?}"),
        }
        pool.check_invariants();
    }
    assert!(!pool.cancel_wait(w[0]) && !pool.cancel_wait(w[1]));
    park(&mut pool, id, &a, 1, None, at_ms(2));
}

#[test]
fn thousands_of_keys_come_and_go() {
    let config = PoolConfig::default()
        .max_idle_total(10_000)
        .idle_timeout(Some(Duration::from_secs(5)));
    let mut pool = P::new(config);
    let keys: Vec<Key> = (0..2_000)
        .map(|i| Key::new(Scheme::Http, &format!("h{i}.example"), 80))
        .collect();
    for round in 0..3u64 {
        let t0 = round * 10_000;
        for (i, k) in keys.iter().enumerate() {
            let id = dial_n(&mut pool, k, 1)[0];
            // Every third with a hint: 0.5 s + i ms after the margin.
            let hint = (i % 3 == 0).then_some(1_500 + i as u64);
            park(&mut pool, id, k, i as u32, hint, at_ms(t0 + i as u64));
        }
        pool.check_invariants();
        assert_eq!(pool.stats().idle, keys.len());
        pool.handle_timeout(at_ms(t0 + 9_000));
        assert_eq!(drain(&mut pool).len(), keys.len());
        assert!(pool.hosts.is_empty() && pool.host_slots.len() == 0);
        assert_eq!(pool.poll_timeout(), None);
        pool.check_invariants();
    }
}

/// The case the model found: without an idle timeout, a connection that
/// never expires, checked in at an earlier `now` than the one before it,
/// must not enter the deadline heaps (it would hide their real first).
#[test]
fn a_late_check_in_that_never_expires_hides_no_deadline() {
    let mut pool = P::new(PoolConfig::default().idle_timeout(None));
    let a = key(0);
    let ids = dial_n(&mut pool, &a, 3);
    park(&mut pool, ids[0], &a, 1, Some(5_000), at_ms(10_000)); // due at 14 s
    park(&mut pool, ids[1], &a, 2, None, at_ms(5_000)); // never, and earlier
    park(&mut pool, ids[2], &a, 3, Some(3_000), at_ms(6_000)); // due at 8 s
    assert_eq!(pool.poll_timeout(), Some(at_ms(8_000)));
    let walk = walk_deadlines(&mut pool);
    let hint = |h| vec![(h, CloseReason::KeepAliveTimeout)];
    assert_eq!(
        walk,
        vec![(at_ms(8_000), hint(3)), (at_ms(14_000), hint(1))]
    );
    assert_eq!(pool.stats_for(&a).idle, 1);
}
