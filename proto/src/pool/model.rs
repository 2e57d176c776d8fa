//! The pool against a model that predicts every answer: a plain list of
//! idle connections per key with their check-in number, searched linearly.
//! The most recently used is the largest number, an eviction takes the
//! smallest (of the key, or of all keys), an expiry is every connection
//! whose deadline is at most `now`, and the next deadline is the smallest.
//!
//! One model for the property test (`model_tests.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/pool.rs`); compiled for tests and under
//! `cfg(fuzzing)` only.

use super::*;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

type P = Pool<u32>;

/// How many keys the operations spread over.
pub const KEYS: usize = 4;

/// The key numbered `k` (taken modulo [`KEYS`]): two origins, one over
/// TLS, and one through a proxy.
pub fn key(k: usize) -> Key {
    match k % KEYS {
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

/// One call on the pool (or a move of the clock). Indices pick among what
/// exists (modulo its count); an operation on an empty list does nothing.
#[derive(Clone, Debug)]
pub enum Op {
    Checkout(usize),
    DialSucceeded(usize),
    DialFailed(usize),
    /// In-use connection (index), `Some(reason index)` for `Reuse::No`,
    /// Keep-Alive hint in seconds.
    Checkin(usize, Option<usize>, Option<u64>),
    /// As `Checkin`, through `checkin_since`: idle since this many
    /// milliseconds ago (a grant given back).
    CheckinSince(usize, Option<usize>, Option<u64>, u64),
    Discard(usize, usize),
    CancelWait(usize),
    /// Key, idle connection index, and whether to name the wrong key.
    RemoveIdle(usize, usize, bool),
    AdvanceMs(u64),
    /// The clock goes back (a caller's `now` read before another's).
    RewindMs(u64),
    HandleTimeout,
    CloseIdle,
    TakeClosed,
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

/// The pool under test beside its model, and the clock.
pub struct Harness {
    pool: P,
    config: PoolConfig,
    cap: usize,
    m: Model,
    now: Instant,
}

impl Harness {
    /// A pool with `config` and an empty model.
    pub fn new(config: PoolConfig) -> Self {
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

    /// The documented expiry of a connection idle since `since`: the
    /// earlier of the idle timeout and the Keep-Alive hint minus the
    /// margin (the hint wins a tie).
    fn expiry(&self, hint: Option<Duration>, since: Instant) -> Option<(Instant, CloseReason)> {
        let idle = self
            .config
            .idle_timeout
            .map(|d| (since + d, CloseReason::IdleTimeout));
        let hint = hint.map(|n| {
            let d = n.saturating_sub(self.config.keep_alive_margin);
            (since + d, CloseReason::KeepAliveTimeout)
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

    /// A check-in of in-use connection `i`, idle since `back` ago (`None`:
    /// a plain `checkin`).
    fn checkin(
        &mut self,
        i: usize,
        verdict: Option<usize>,
        hint: Option<u64>,
        back: Option<Duration>,
    ) {
        let (id, k) = self.m.in_use.remove(i % self.m.in_use.len());
        let handle = self.m.next_handle;
        self.m.next_handle += 1;
        let verdict = match verdict {
            None => Reuse::Yes,
            Some(r) => Reuse::No(CloseReason::ALL[r % CloseReason::ALL.len()]),
        };
        let hint = hint.map(Duration::from_secs);
        let ago = back.unwrap_or_default();
        let since = Instant::from_origin(self.now.since_origin().saturating_sub(ago));
        let expiry = self.expiry(hint, since);
        let got = match back {
            None => self
                .pool
                .checkin(id, &key(k), handle, verdict, hint, self.now),
            Some(_) => self
                .pool
                .checkin_since(id, &key(k), handle, verdict, hint, since, self.now),
        };
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
                (idle.handle, idle.id, idle.idle_for, idle.since),
                (handle, id, self.now.saturating_since(since), since)
            );
            self.m.in_use.push((id, k));
            self.m.reuses += 1;
        } else {
            assert!(got.is_none(), "grant without a waiter: {got:?}");
            self.m.seq += 1;
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

    /// Carries `op` out on the pool, checking each answer against the model.
    pub fn op(&mut self, op: &Op) {
        match *op {
            Op::Checkout(k) => self.checkout(k % KEYS),
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
                self.checkin(i, verdict, hint, None)
            }
            Op::CheckinSince(i, verdict, hint, back_ms) if !self.m.in_use.is_empty() => {
                self.checkin(i, verdict, hint, Some(Duration::from_millis(back_ms)))
            }
            Op::Discard(i, r) if !self.m.in_use.is_empty() => {
                let (id, k) = self.m.in_use.remove(i % self.m.in_use.len());
                let reason = CloseReason::ALL[r % CloseReason::ALL.len()];
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
            Op::RemoveIdle(k, i, wrong) => self.remove_idle(k % KEYS, i, wrong),
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
            Op::CloseIdle => {
                for k in 0..KEYS {
                    for c in core::mem::take(&mut self.m.idle[k]) {
                        self.close(c.handle, CloseReason::ClientClose);
                    }
                }
                self.pool.close_idle();
            }
            Op::TakeClosed => self.drain(),
            _ => {} // an operation on an empty list: nothing to do
        }
    }

    /// Takes every connection the pool closed: exactly those the model closed.
    pub fn drain(&mut self) {
        while let Some((handle, reason)) = self.pool.take_closed() {
            let want = self.m.must_close.remove(&handle);
            assert_eq!(want, Some(reason), "take_closed gave {handle} ({reason:?})");
        }
        let left = &self.m.must_close;
        assert!(left.is_empty(), "not closed: {left:?}");
    }

    /// The pool's invariants, its gauges, counters and next deadline
    /// against the model, and the limits of its configuration.
    pub fn check(&self) {
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
            let conns = s.idle + s.in_use + s.dialing;
            assert!(conns <= self.cap, "key {k}: {conns} conns over the cap");
            let free = conns < self.cap || s.idle > 0;
            assert!(
                s.waiters == 0 || !free,
                "key {k}: waiters beside a free slot"
            );
            assert!(s.idle <= self.config.max_idle_per_host);
            total_idle += s.idle;
        }
        let st = self.pool.stats();
        assert_eq!(st.idle, total_idle);
        assert!(st.idle <= self.config.max_idle_total);
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
