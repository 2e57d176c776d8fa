//! The pool against a model that predicts every answer, and targeted tests
//! of the constant-time structures (`idle.rs`, `slab.rs`): expiry through
//! the LRU tail and the deadline heaps, eviction order across keys,
//! `poll_timeout` exactness, also when `now` goes back.
//!
//! The model is a plain list of idle connections per key with their
//! check-in number, searched linearly: the most recently used is the largest
//! number, an eviction takes the smallest (of the key, or of all keys), an
//! expiry is every connection whose deadline is at most `now`, and the next
//! deadline is the smallest. The same model drives the fuzz target
//! `fuzz/fuzz_targets/pool.rs`; this one also rewinds the clock and calls
//! `remove_idle`.

use super::*;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

type P = Pool<u32>;

const KEYS: usize = 4;

fn key(k: usize) -> Key {
    match k {
        0 => Key::new(Scheme::Http, "a.example", 80),
        1 => Key::new(Scheme::Http, "b.example", 80),
        2 => Key::new(Scheme::Https, "a.example", 443),
        _ => Key::new(Scheme::Https, "a.example", 443).with_via(Via::new(
            ProxyMode::Connect,
            false,
            "proxy.example",
            3128,
            0,
        )),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Checkout(usize),
    DialSucceeded(usize),
    DialFailed(usize),
    /// In-use connection (index), `Some(reason index)` for `Reuse::No`,
    /// Keep-Alive hint in seconds.
    Checkin(usize, Option<usize>, Option<u64>),
    Discard(usize, usize),
    CancelWait(usize),
    /// Key, idle connection index, and whether to name the wrong key.
    RemoveIdle(usize, usize, bool),
    AdvanceMs(u64),
    /// The clock goes back (a caller's `now` read before another's).
    RewindMs(u64),
    HandleTimeout,
    TakeClosed,
}

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
        1 => (i.clone(), 0..CloseReason::ALL.len()).prop_map(|(c, r)| Op::Discard(c, r)),
        1 => i.clone().prop_map(Op::CancelWait),
        1 => (0..KEYS, i, any::<bool>()).prop_map(|(k, c, w)| Op::RemoveIdle(k, c, w)),
        2 => (0..8_000u64).prop_map(Op::AdvanceMs),
        1 => (0..3_000u64).prop_map(Op::RewindMs),
        1 => Just(Op::HandleTimeout),
        2 => Just(Op::TakeClosed),
    ]
}

#[derive(Debug)]
struct IdleM {
    handle: u32,
    id: ConnId,
    seq: u64,
    since: Instant,
    expiry: Option<(Instant, CloseReason)>,
}

#[derive(Default)]
struct Model {
    permits: Vec<(DialPermit, usize)>,
    in_use: Vec<(ConnId, usize)>,
    waiting: [VecDeque<Ticket>; KEYS],
    tickets: Vec<Ticket>,
    idle: [Vec<IdleM>; KEYS],
    /// Handles the pool must hand to `take_closed`, with the reason.
    must_close: BTreeMap<u32, CloseReason>,
    closed_counts: [u64; CloseReason::ALL.len()],
    ids: BTreeSet<ConnId>,
    seq: u64,
    next_handle: u32,
    dials: u64,
    reuses: u64,
}

struct Harness {
    pool: P,
    config: PoolConfig,
    cap: usize,
    m: Model,
    now: Instant,
}

impl Harness {
    fn new(config: PoolConfig) -> Self {
        Harness {
            pool: P::new(config),
            config,
            cap: config.max_conns_per_host.map_or(usize::MAX, |n| n.max(1)),
            m: Model::default(),
            // Far enough from zero that rewinding stays meaningful.
            now: Instant::from_origin(Duration::from_secs(100)),
        }
    }

    fn conns(&self, k: usize) -> usize {
        self.m.idle[k].len()
            + self.m.in_use.iter().filter(|c| c.1 == k).count()
            + self.m.permits.iter().filter(|p| p.1 == k).count()
    }

    /// The documented expiry: the earlier of the idle timeout and the
    /// Keep-Alive hint minus the margin (the hint wins a tie).
    fn expiry(&self, hint: Option<Duration>) -> Option<(Instant, CloseReason)> {
        let idle = self
            .config
            .idle_timeout
            .map(|d| (self.now + d, CloseReason::IdleTimeout));
        let hint = hint.map(|n| {
            let d = n.saturating_sub(self.config.keep_alive_margin);
            (self.now + d, CloseReason::KeepAliveTimeout)
        });
        match (idle, hint) {
            (Some(i), Some(h)) => Some(if h.0 <= i.0 { h } else { i }),
            (i, h) => i.or(h),
        }
    }

    fn close(&mut self, handle: u32, reason: CloseReason) {
        self.m.closed_counts[reason as usize] += 1;
        let fresh = self.m.must_close.insert(handle, reason).is_none();
        assert!(fresh, "handle {handle} closed twice");
    }

    /// Closes key `k`'s expired idle connections, as checkout and
    /// handle_timeout do.
    fn expire(&mut self, k: usize) {
        let now = self.now;
        let all = core::mem::take(&mut self.m.idle[k]);
        let (gone, kept): (Vec<IdleM>, Vec<IdleM>) = all
            .into_iter()
            .partition(|c| c.expiry.is_some_and(|e| e.0 <= now));
        self.m.idle[k] = kept;
        for c in gone {
            self.close(c.handle, c.expiry.expect("partitioned on it").1);
        }
    }

    /// A grant must go to the first waiter of its key.
    fn grant(&mut self, k: usize, grant: Option<Grant<u32>>) {
        match (self.m.waiting[k].pop_front(), grant) {
            (None, None) => {}
            (Some(t), Some(Grant::Dial { ticket, permit })) => {
                assert_eq!(ticket, t, "grant to a ticket not first in line");
                assert_eq!(*permit.key(), key(k), "dial grant for another key");
                assert!(self.m.ids.insert(permit.id()), "conn id reused");
                self.m.permits.push((permit, k));
            }
            (front, grant) => panic!("expected a dial grant to {front:?}, got {grant:?}"),
        }
    }

    fn checkout(&mut self, k: usize) {
        self.expire(k);
        let got = self.pool.checkout(&key(k), self.now);
        let mru = (0..self.m.idle[k].len()).max_by_key(|&i| self.m.idle[k][i].seq);
        match (got, mru) {
            (Checkout::Idle(idle), Some(i)) => {
                let want = self.m.idle[k].remove(i);
                let got = (idle.handle, idle.id);
                assert_eq!(got, (want.handle, want.id), "not the most recently used");
                assert_eq!(idle.idle_for, self.now.saturating_since(want.since));
                self.m.in_use.push((idle.id, k));
                self.m.reuses += 1;
            }
            (Checkout::Dial(permit), None) if self.conns(k) < self.cap => {
                assert_eq!(*permit.key(), key(k));
                assert!(self.m.ids.insert(permit.id()), "conn id reused");
                self.m.permits.push((permit, k));
            }
            (Checkout::Wait(ticket), None) if self.conns(k) >= self.cap => {
                assert!(!self.m.tickets.contains(&ticket), "ticket reused");
                self.m.tickets.push(ticket);
                self.m.waiting[k].push_back(ticket);
            }
            (got, mru) => panic!(
                "checkout: got {got:?}, idle MRU {mru:?}, conns {} cap {}",
                self.conns(k),
                self.cap
            ),
        }
    }

    fn checkin(&mut self, i: usize, verdict: Option<usize>, hint: Option<u64>) {
        let (id, k) = self.m.in_use.remove(i % self.m.in_use.len());
        let handle = self.m.next_handle;
        self.m.next_handle += 1;
        let verdict = match verdict {
            None => Reuse::Yes,
            Some(r) => Reuse::No(CloseReason::ALL[r]),
        };
        let hint = hint.map(Duration::from_secs);
        let expiry = self.expiry(hint);
        let got = self
            .pool
            .checkin(id, &key(k), handle, verdict, hint, self.now);
        let close = match verdict {
            Reuse::No(reason) => Some(reason),
            Reuse::Yes => expiry.filter(|e| e.0 <= self.now).map(|e| e.1),
        };
        if let Some(reason) = close {
            self.close(handle, reason);
            self.grant(k, got);
        } else if let Some(t) = self.m.waiting[k].pop_front() {
            let Some(Grant::Conn { ticket, idle }) = got else {
                panic!("checkin with waiter {t:?}: expected a conn grant, got {got:?}")
            };
            assert_eq!(ticket, t, "conn grant not to the first waiter");
            assert_eq!(
                (idle.handle, idle.id, idle.idle_for),
                (handle, id, Duration::ZERO)
            );
            self.m.in_use.push((id, k));
            self.m.reuses += 1;
        } else {
            assert!(got.is_none(), "grant without a waiter: {got:?}");
            self.m.seq += 1;
            let since = self.now;
            let seq = self.m.seq;
            self.m.idle[k].push(IdleM {
                handle,
                id,
                seq,
                since,
                expiry,
            });
            self.evict(k);
        }
    }

    /// The least recently used go: of key `k` over its limit, then of all.
    fn evict(&mut self, k: usize) {
        if self.m.idle[k].len() > self.config.max_idle_per_host {
            let idle = &self.m.idle[k];
            let i = (0..idle.len())
                .min_by_key(|&i| idle[i].seq)
                .expect("over a limit");
            let c = self.m.idle[k].remove(i);
            self.close(c.handle, CloseReason::MaxIdlePerHost);
        }
        while self.m.idle.iter().map(Vec::len).sum::<usize>() > self.config.max_idle_total {
            let idle = &self.m.idle;
            let all = (0..KEYS).flat_map(|k| (0..idle[k].len()).map(move |i| (k, i)));
            let (k, i) = all
                .min_by_key(|&(k, i)| idle[k][i].seq)
                .expect("over a limit");
            let c = self.m.idle[k].remove(i);
            self.close(c.handle, CloseReason::MaxIdleTotal);
        }
    }

    fn remove_idle(&mut self, k: usize, i: usize, wrong_key: bool) {
        let reason = CloseReason::PeerClosed;
        if self.m.idle[k].is_empty() {
            // An id in use (or none): not idle, nothing happens.
            if let Some(&(id, k)) = self.m.in_use.first() {
                assert_eq!(self.pool.remove_idle(id, &key(k), reason), None);
            }
            return;
        }
        let i = i % self.m.idle[k].len();
        let id = self.m.idle[k][i].id;
        if wrong_key {
            let other = key((k + 1) % KEYS);
            assert_eq!(self.pool.remove_idle(id, &other, reason), None);
            return;
        }
        let c = self.m.idle[k].remove(i);
        assert_eq!(self.pool.remove_idle(id, &key(k), reason), Some(c.handle));
        self.m.closed_counts[reason as usize] += 1;
    }

    fn op(&mut self, op: &Op) {
        match *op {
            Op::Checkout(k) => self.checkout(k),
            Op::DialSucceeded(i) if !self.m.permits.is_empty() => {
                let (permit, k) = self.m.permits.remove(i % self.m.permits.len());
                self.m.in_use.push((permit.id(), k));
                self.pool.dial_succeeded(permit);
                self.m.dials += 1;
            }
            Op::DialFailed(i) if !self.m.permits.is_empty() => {
                let (permit, k) = self.m.permits.remove(i % self.m.permits.len());
                let grant = self.pool.dial_failed(permit);
                self.grant(k, grant);
            }
            Op::Checkin(i, verdict, hint) if !self.m.in_use.is_empty() => {
                self.checkin(i, verdict, hint)
            }
            Op::Discard(i, r) if !self.m.in_use.is_empty() => {
                let (id, k) = self.m.in_use.remove(i % self.m.in_use.len());
                let reason = CloseReason::ALL[r];
                self.m.closed_counts[reason as usize] += 1;
                if reason == CloseReason::Stale {
                    self.m.reuses = self.m.reuses.saturating_sub(1);
                }
                let got = self.pool.discard(id, &key(k), reason);
                self.grant(k, got);
            }
            Op::CancelWait(j) if !self.m.tickets.is_empty() => {
                let t = self.m.tickets[j % self.m.tickets.len()];
                let queued = self
                    .m
                    .waiting
                    .iter_mut()
                    .find_map(|q| q.iter().position(|&x| x == t).map(|p| (q, p)));
                let want = queued.is_some();
                if let Some((q, p)) = queued {
                    q.remove(p);
                }
                assert_eq!(self.pool.cancel_wait(t), want, "cancel_wait({t:?})");
            }
            Op::RemoveIdle(k, i, wrong) => self.remove_idle(k, i, wrong),
            Op::AdvanceMs(ms) => self.now = self.now + Duration::from_millis(ms),
            Op::RewindMs(ms) => {
                let back = self
                    .now
                    .since_origin()
                    .saturating_sub(Duration::from_millis(ms));
                self.now = Instant::from_origin(back);
            }
            Op::HandleTimeout => {
                (0..KEYS).for_each(|k| self.expire(k));
                self.pool.handle_timeout(self.now);
            }
            Op::TakeClosed => self.drain(),
            _ => {} // an operation on an empty list: nothing to do
        }
    }

    fn drain(&mut self) {
        while let Some((handle, reason)) = self.pool.take_closed() {
            let want = self.m.must_close.remove(&handle);
            assert_eq!(want, Some(reason), "take_closed gave {handle} ({reason:?})");
        }
        let left = &self.m.must_close;
        assert!(left.is_empty(), "not closed: {left:?}");
    }

    fn check(&self) {
        self.pool.check_invariants();
        let mut total_idle = 0;
        for k in 0..KEYS {
            let s = self.pool.stats_for(&key(k));
            let in_use = self.m.in_use.iter().filter(|c| c.1 == k).count();
            let dialing = self.m.permits.iter().filter(|p| p.1 == k).count();
            let model = (
                self.m.idle[k].len(),
                in_use,
                dialing,
                self.m.waiting[k].len(),
            );
            let got = (s.idle, s.in_use, s.dialing, s.waiters);
            assert_eq!(got, model, "key {k} (idle, in use, dialing, waiters)");
            total_idle += s.idle;
        }
        let st = self.pool.stats();
        assert_eq!(st.idle, total_idle);
        assert_eq!((st.dials, st.reuses), (self.m.dials, self.m.reuses));
        for (reason, n) in st.closed.iter() {
            let want = self.m.closed_counts[reason as usize];
            assert_eq!(n, want, "closed for {reason:?}");
        }
        let next = self
            .m
            .idle
            .iter()
            .flatten()
            .filter_map(|c| c.expiry.map(|e| e.0))
            .min();
        assert_eq!(self.pool.poll_timeout(), next, "poll_timeout");
    }
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
