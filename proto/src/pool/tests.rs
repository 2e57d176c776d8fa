//! Unit tests of the pool policy.

use super::*;
use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::vec::Vec;

type P = Pool<u32>;

fn t(secs: u64) -> Instant {
    Instant::from_origin(Duration::from_secs(secs))
}
fn key(host: &str) -> Key {
    Key::new(Scheme::Http, host, 80)
}
fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}
fn dial(pool: &mut P, key: &Key, now: Instant) -> ConnId {
    match pool.checkout(key, now) {
        Checkout::Dial(permit) => {
            let id = permit.id();
            pool.dial_succeeded(permit);
            id
        }
        other => panic!("expected a dial, got {other:?}"),
    }
}
fn idle(pool: &mut P, key: &Key, now: Instant) -> Idle<u32> {
    match pool.checkout(key, now) {
        Checkout::Idle(idle) => idle,
        other => panic!("expected an idle conn, got {other:?}"),
    }
}
fn wait(pool: &mut P, key: &Key, now: Instant) -> Ticket {
    match pool.checkout(key, now) {
        Checkout::Wait(ticket) => ticket,
        other => panic!("expected to wait, got {other:?}"),
    }
}
fn park(pool: &mut P, id: ConnId, key: &Key, handle: u32, now: Instant) {
    assert!(
        pool.checkin(id, key, handle, Reuse::Yes, None, now)
            .is_none()
    );
    pool.check_invariants();
}
fn closed(pool: &mut P) -> Vec<(u32, CloseReason)> {
    core::iter::from_fn(|| pool.take_closed()).collect()
}

#[test]
fn close_reason_all_is_in_declaration_order() {
    for (i, r) in CloseReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
}

#[test]
fn key_lowercases_host() {
    assert_eq!(Key::new(Scheme::Http, "A.Example", 80), key("a.example"));
    assert_eq!(
        Key::new(Scheme::Http, "::1", 80).to_string(),
        "http://[::1]:80"
    );
    assert_ne!(Key::new(Scheme::Https, "a", 80), key("a"));
}

#[test]
fn idle_conns_are_taken_most_recently_used_first() {
    let mut pool = P::default();
    let k = key("a");
    let ids: Vec<ConnId> = (0..3).map(|_| dial(&mut pool, &k, t(0))).collect();
    for (i, id) in ids.iter().enumerate() {
        park(&mut pool, *id, &k, i as u32, t(i as u64 + 1));
    }
    for (i, want) in [2u32, 1, 0].into_iter().enumerate() {
        let got = idle(&mut pool, &k, t(10));
        assert_eq!((got.handle, got.id), (want, ids[want as usize]));
        assert_eq!(
            got.idle_for,
            Duration::from_secs(10 - 1 - want as u64),
            "take {i}"
        );
    }
    let s = pool.stats();
    assert_eq!((s.dials, s.reuses, s.in_use, s.idle), (3, 3, 3, 0));
}

#[test]
fn max_idle_per_host_evicts_that_hosts_oldest() {
    let mut pool = P::new(PoolConfig::default().max_idle_per_host(2));
    let (a, b) = (key("a"), key("b"));
    let ids: Vec<ConnId> = (0..3).map(|_| dial(&mut pool, &a, t(0))).collect();
    let other = dial(&mut pool, &b, t(0));
    park(&mut pool, other, &b, 9, t(0));
    for (i, id) in ids.iter().enumerate() {
        park(&mut pool, *id, &a, i as u32, t(1 + i as u64));
    }
    assert_eq!(closed(&mut pool), [(0, CloseReason::MaxIdlePerHost)]);
    assert_eq!(pool.stats_for(&a).idle, 2);
    assert_eq!(pool.stats_for(&b).idle, 1);
    assert_eq!(pool.stats().closed.get(CloseReason::MaxIdlePerHost), 1);
}

#[test]
fn max_idle_total_evicts_the_globally_oldest() {
    let mut pool = P::new(PoolConfig::default().max_idle_total(2));
    let keys = [key("a"), key("b"), key("c")];
    let ids: Vec<ConnId> = keys.iter().map(|k| dial(&mut pool, k, t(0))).collect();
    for (i, k) in keys.iter().enumerate() {
        park(&mut pool, ids[i], k, i as u32, t(1));
    }
    assert_eq!(closed(&mut pool), [(0, CloseReason::MaxIdleTotal)]);
    assert!(
        !pool.hosts.contains_key(&keys[0]),
        "emptied host entry dropped"
    );
    assert_eq!(pool.stats().idle, 2);
    assert_eq!(pool.stats().closed.total(), 1);
}

#[test]
fn waiters_get_checked_in_conns_in_fifo_order() {
    let mut pool = P::new(PoolConfig::default().max_conns_per_host(Some(1)));
    let (a, b) = (key("a"), key("b"));
    let id = dial(&mut pool, &a, t(0));
    let (w1, w2) = (wait(&mut pool, &a, t(0)), wait(&mut pool, &a, t(0)));
    assert_ne!(w1, w2);
    dial(&mut pool, &b, t(0)); // another key has its own cap
    pool.check_invariants();
    for (want, handle) in [(w1, 7), (w2, 8)] {
        match pool.checkin(id, &a, handle, Reuse::Yes, None, t(1)) {
            Some(Grant::Conn { ticket, idle }) => {
                assert_eq!((ticket, idle.handle, idle.id), (want, handle, id));
                assert_eq!(idle.idle_for, Duration::ZERO);
                // Idle from the check-in: a waiter that takes it later
                // has had it idle that much longer.
                assert_eq!(idle.since, t(1));
                assert_eq!(idle.idle_at(t(4)), Duration::from_secs(3));
            }
            other => panic!("expected a handover, got {other:?}"),
        }
        pool.check_invariants();
    }
    let s = pool.stats_for(&a);
    assert_eq!((s.in_use, s.waiters, s.idle), (1, 0, 0));
    park(&mut pool, id, &a, 9, t(2));
    assert_eq!(pool.stats().reuses, 2);
}

fn expect_dial_grant(grant: Option<Grant<u32>>, want: Ticket) -> DialPermit {
    match grant {
        Some(Grant::Dial { ticket, permit }) if ticket == want => permit,
        other => panic!("expected a dial grant for {want:?}, got {other:?}"),
    }
}

#[test]
fn freed_slots_become_dial_grants() {
    let mut pool = P::new(PoolConfig::default().max_conns_per_host(Some(1)));
    let a = key("a");
    let Checkout::Dial(permit) = pool.checkout(&a, t(0)) else {
        panic!("expected a dial")
    };
    let w: Vec<Ticket> = (0..3).map(|_| wait(&mut pool, &a, t(0))).collect();
    let p1 = expect_dial_grant(pool.dial_failed(permit), w[0]);
    assert_eq!(p1.key(), &a);
    let id1 = p1.id();
    pool.dial_succeeded(p1);
    pool.check_invariants();
    let p2 = expect_dial_grant(pool.discard(id1, &a, CloseReason::Error), w[1]);
    let id2 = p2.id();
    assert_ne!(id1, id2);
    pool.dial_succeeded(p2);
    let not_reusable = Reuse::No(CloseReason::ServerClose);
    let p3 = expect_dial_grant(pool.checkin(id2, &a, 5, not_reusable, None, t(1)), w[2]);
    pool.check_invariants();
    assert_eq!(closed(&mut pool), [(5, CloseReason::ServerClose)]);
    assert!(pool.dial_failed(p3).is_none());
    assert!(pool.hosts.is_empty());
    let c = pool.stats().closed;
    assert_eq!(
        (
            c.get(CloseReason::Error),
            c.get(CloseReason::ServerClose),
            c.total()
        ),
        (1, 1, 2)
    );
    assert_eq!(pool.stats().dials, 2);
}

#[test]
fn cancel_wait_and_the_grant_race() {
    let mut pool = P::new(PoolConfig::default().max_conns_per_host(Some(1)));
    let a = key("a");
    let id = dial(&mut pool, &a, t(0));
    let (w1, w2) = (wait(&mut pool, &a, t(0)), wait(&mut pool, &a, t(0)));
    assert!(pool.cancel_wait(w1));
    assert!(!pool.cancel_wait(w1));
    pool.check_invariants();
    let Some(Grant::Conn { ticket, idle }) = pool.checkin(id, &a, 1, Reuse::Yes, None, t(1)) else {
        panic!("expected a handover")
    };
    assert_eq!(ticket, w2);
    // w2 gave up meanwhile: too late to cancel, so the conn is given back.
    assert!(!pool.cancel_wait(w2));
    park(&mut pool, idle.id, &a, idle.handle, t(1));
    assert_eq!(pool.stats_for(&a).idle, 1);
}

#[test]
fn idle_timeout_expires_via_poll_and_handle_timeout() {
    let mut pool = P::new(PoolConfig::default().idle_timeout(secs(10)));
    let a = key("a");
    let id = dial(&mut pool, &a, t(0));
    assert_eq!(pool.poll_timeout(), None);
    park(&mut pool, id, &a, 1, t(5));
    assert_eq!(pool.poll_timeout(), Some(t(15)));
    pool.handle_timeout(t(14)); // early: harmless
    assert_eq!(pool.stats_for(&a).idle, 1);
    pool.handle_timeout(t(15));
    pool.handle_timeout(t(15)); // repeated: harmless
    assert_eq!(closed(&mut pool), [(1, CloseReason::IdleTimeout)]);
    assert_eq!(pool.poll_timeout(), None);
    assert!(pool.hosts.is_empty());
    pool.check_invariants();
}

#[test]
fn keep_alive_hint_expires_a_margin_early() {
    let config = PoolConfig::default()
        .idle_timeout(secs(90))
        .max_conns_per_host(Some(1));
    let mut pool = P::new(config);
    let a = key("a");
    let id = dial(&mut pool, &a, t(0));
    assert!(pool.checkin(id, &a, 1, Reuse::Yes, secs(5), t(0)).is_none());
    assert_eq!(pool.poll_timeout(), Some(t(4)), "5 s hint minus 1 s margin");
    let id = idle(&mut pool, &a, t(1)).id;
    assert!(
        pool.checkin(id, &a, 1, Reuse::Yes, secs(100), t(1))
            .is_none()
    );
    assert_eq!(pool.poll_timeout(), Some(t(91)), "idle_timeout is earlier");
    let id = idle(&mut pool, &a, t(2)).id;
    let w = wait(&mut pool, &a, t(2));
    // A hint no longer than the margin: unusable at once, its slot goes to w.
    let permit = expect_dial_grant(pool.checkin(id, &a, 1, Reuse::Yes, secs(1), t(2)), w);
    assert_eq!(closed(&mut pool), [(1, CloseReason::KeepAliveTimeout)]);
    pool.dial_succeeded(permit);
    pool.check_invariants();
}

#[test]
fn expired_conns_are_skipped_at_checkout() {
    let mut pool = P::new(PoolConfig::default().idle_timeout(None));
    let a = key("a");
    let (old, new) = (dial(&mut pool, &a, t(0)), dial(&mut pool, &a, t(0)));
    assert!(pool.checkin(old, &a, 1, Reuse::Yes, None, t(0)).is_none());
    assert!(
        pool.checkin(new, &a, 2, Reuse::Yes, secs(3), t(0))
            .is_none()
    );
    let got = idle(&mut pool, &a, t(5));
    assert_eq!((got.handle, got.idle_for), (1, Duration::from_secs(5)));
    assert_eq!(closed(&mut pool), [(2, CloseReason::KeepAliveTimeout)]);
    pool.check_invariants();
}

#[test]
fn zero_cap_counts_as_one() {
    let mut pool = P::new(PoolConfig::default().max_conns_per_host(Some(0)));
    let a = key("a");
    dial(&mut pool, &a, t(0));
    wait(&mut pool, &a, t(0));
    pool.check_invariants();
}

/// The adapter side of the random test: what is out of the pool.
#[derive(Default)]
struct Model {
    in_use: Vec<(ConnId, Key, u32)>,
    permits: Vec<DialPermit>,
    waiters: Vec<Ticket>,
    closed: BTreeSet<u32>,
    next_handle: u32,
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

impl Model {
    /// Delivers a grant for `key`; sometimes its waiter gave up and gives it back.
    fn deliver(
        &mut self,
        pool: &mut P,
        rng: &mut Lcg,
        key: &Key,
        now: Instant,
        grant: Option<Grant<u32>>,
    ) {
        let mut grant = grant;
        while let Some(g) = grant.take() {
            let pos = self
                .waiters
                .iter()
                .position(|&t| t == g.ticket())
                .expect("granted a waiter");
            self.waiters.swap_remove(pos);
            let gave_up = rng.below(4) == 0;
            grant = match g {
                Grant::Conn { idle, .. } if gave_up => {
                    pool.checkin(idle.id, key, idle.handle, Reuse::Yes, None, now)
                }
                Grant::Conn { idle, .. } => {
                    self.in_use.push((idle.id, key.clone(), idle.handle));
                    None
                }
                Grant::Dial { permit, .. } if gave_up => pool.dial_failed(permit),
                Grant::Dial { permit, .. } => {
                    assert_eq!(permit.key(), key);
                    self.permits.push(permit);
                    None
                }
            };
        }
    }
}

fn random_step(pool: &mut P, m: &mut Model, rng: &mut Lcg, keys: &[Key], now: Instant) {
    let k = &keys[rng.below(keys.len())];
    match rng.below(8) {
        0 | 1 => match pool.checkout(k, now) {
            Checkout::Idle(idle) => {
                assert!(!m.closed.contains(&idle.handle), "closed handle reused");
                m.in_use.push((idle.id, k.clone(), idle.handle));
            }
            Checkout::Dial(permit) => m.permits.push(permit),
            Checkout::Wait(ticket) => m.waiters.push(ticket),
        },
        2 if !m.permits.is_empty() => {
            let permit = m.permits.swap_remove(rng.below(m.permits.len()));
            m.next_handle += 1;
            m.in_use
                .push((permit.id(), permit.key().clone(), m.next_handle));
            pool.dial_succeeded(permit);
        }
        3 if !m.permits.is_empty() => {
            let permit = m.permits.swap_remove(rng.below(m.permits.len()));
            let key = permit.key().clone();
            let g = pool.dial_failed(permit);
            m.deliver(pool, rng, &key, now, g);
        }
        4 | 5 if !m.in_use.is_empty() => {
            let (id, key, handle) = m.in_use.swap_remove(rng.below(m.in_use.len()));
            let verdict =
                [Reuse::Yes, Reuse::Yes, Reuse::No(CloseReason::ServerClose)][rng.below(3)];
            let hint = [None, secs(1), secs(5), secs(60)][rng.below(4)];
            let g = pool.checkin(id, &key, handle, verdict, hint, now);
            m.deliver(pool, rng, &key, now, g);
        }
        6 if !m.in_use.is_empty() => {
            let (id, key, _) = m.in_use.swap_remove(rng.below(m.in_use.len()));
            let g = pool.discard(id, &key, CloseReason::Abandoned);
            m.deliver(pool, rng, &key, now, g);
        }
        7 if !m.waiters.is_empty() => {
            let ticket = m.waiters.swap_remove(rng.below(m.waiters.len()));
            assert!(
                pool.cancel_wait(ticket),
                "an undelivered ticket is still queued"
            );
        }
        _ => {}
    }
}

/// Runs `steps` random operations from `seed`, checking invariants after each.
fn run_random(config: PoolConfig, seed: u64, steps: usize) -> PoolStats {
    let mut pool = P::new(config);
    let keys = [
        key("a"),
        key("b"),
        key("c"),
        Key::new(Scheme::Https, "a", 443),
    ];
    let (mut m, mut rng, mut now) = (Model::default(), Lcg(seed), t(0));
    for _ in 0..steps {
        if rng.below(10) == 0 {
            now = now + Duration::from_secs(rng.below(20) as u64);
            if let Some(at) = pool.poll_timeout().filter(|&at| at <= now) {
                pool.handle_timeout(at);
            }
        }
        random_step(&mut pool, &mut m, &mut rng, &keys, now);
        pool.check_invariants();
        let s = pool.stats();
        assert_eq!(
            (s.in_use, s.dialing, s.waiters),
            (m.in_use.len(), m.permits.len(), m.waiters.len())
        );
        while let Some((handle, _)) = pool.take_closed() {
            assert!(m.closed.insert(handle), "handle {handle} closed twice");
        }
    }
    // Wind down: everything given back leaves an empty pool.
    for ticket in core::mem::take(&mut m.waiters) {
        assert!(pool.cancel_wait(ticket));
    }
    for permit in core::mem::take(&mut m.permits) {
        assert!(pool.dial_failed(permit).is_none());
    }
    for (id, key, handle) in core::mem::take(&mut m.in_use) {
        assert!(
            pool.checkin(id, &key, handle, Reuse::Yes, None, now)
                .is_none()
        );
    }
    pool.handle_timeout(now + Duration::from_secs(30));
    pool.check_invariants();
    assert!(pool.hosts.is_empty(), "per-host entries cleaned up");
    pool.stats()
}

#[test]
fn random_operations_keep_invariants() {
    let base = PoolConfig::default().idle_timeout(secs(30));
    let roomy = base
        .max_conns_per_host(Some(4))
        .max_idle_per_host(2)
        .max_idle_total(5);
    let tight = base
        .max_conns_per_host(Some(3))
        .max_idle_per_host(3)
        .max_idle_total(2);
    for (config, seed) in [(roomy, 0x5eed), (tight, 42), (base, 7)] {
        let s = run_random(config, seed, 10_000);
        assert!(
            s.dials > 100 && s.reuses > 100 && s.closed.total() > 100,
            "{s:?}"
        );
    }
}
