//! `Pool<u32>` driven by an arbitrary sequence of operations under a small
//! random config, against a model that predicts every answer: which idle
//! connection a checkout gets (most recently used, not expired), when it may
//! dial or must wait, which waiter a grant goes to (FIFO, same key), which
//! idle connections expire or are evicted and why, and `poll_timeout`. After
//! every operation: `Pool::check_invariants` (cfg fuzzing), per-key gauges
//! equal to the model, never over `max_conns_per_host`, no waiter while a
//! slot or an idle connection is free, idle counts within their limits.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{
    Checkout, ConnId, DialPermit, Grant, Key, Pool, PoolConfig, Reuse, Scheme, Ticket,
};
use roundtrip_proto::time::Instant;

const KEYS: usize = 3;

#[derive(Arbitrary, Debug)]
struct Config {
    max_idle_per_host: u8,
    max_idle_total: u8,
    max_conns_per_host: Option<u8>,
    idle_timeout_ms: Option<u16>,
    keep_alive_margin_ms: u16,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Checkout(u8),
    DialSucceeded(u8),
    DialFailed(u8),
    /// In-use connection (index), reuse verdict (None = Yes, Some(reason index) = No), Keep-Alive hint in seconds.
    Checkin(u8, Option<u8>, Option<u8>),
    Discard(u8, u8),
    CancelWait(u8),
    AdvanceMs(u16),
    HandleTimeout,
    TakeClosed,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<Op>,
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
    ids: BTreeSet<ConnId>,
    seq: u64,
    next_handle: u32,
}

fn key(k: usize) -> Key {
    Key::new(Scheme::Http, ["a.example", "b.example", "c.example"][k], 80)
}

struct Harness {
    pool: Pool<u32>,
    config: PoolConfig,
    cap: usize,
    m: Model,
    now: Instant,
}

impl Harness {
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
            (
                self.now + n.saturating_sub(self.config.keep_alive_margin),
                CloseReason::KeepAliveTimeout,
            )
        });
        match (idle, hint) {
            (Some(i), Some(h)) => Some(if h.0 <= i.0 { h } else { i }),
            (i, h) => i.or(h),
        }
    }

    fn close(&mut self, handle: u32, reason: CloseReason) {
        assert!(
            self.m.must_close.insert(handle, reason).is_none(),
            "handle {handle} closed twice"
        );
    }

    /// Collects key `k`'s expired idle connections, as checkout and handle_timeout do.
    fn expire(&mut self, k: usize) {
        let now = self.now;
        let (gone, kept): (Vec<IdleM>, Vec<IdleM>) = std::mem::take(&mut self.m.idle[k])
            .into_iter()
            .partition(|c| c.expiry.is_some_and(|e| e.0 <= now));
        self.m.idle[k] = kept;
        for c in gone {
            self.close(c.handle, c.expiry.unwrap().1);
        }
    }

    /// A grant must go to the first waiter of its key.
    fn grant(&mut self, k: usize, grant: Option<Grant<u32>>) {
        let front = self.m.waiting[k].pop_front();
        match (front, grant) {
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

    fn op(&mut self, op: &Op) {
        match *op {
            Op::Checkout(k) => {
                let k = k as usize % KEYS;
                self.expire(k);
                let got = self.pool.checkout(&key(k), self.now);
                let mru = (0..self.m.idle[k].len()).max_by_key(|&i| self.m.idle[k][i].seq);
                match (got, mru) {
                    (Checkout::Idle(idle), Some(i)) => {
                        let want = self.m.idle[k].remove(i);
                        assert_eq!(
                            (idle.handle, idle.id),
                            (want.handle, want.id),
                            "not the most recently used"
                        );
                        assert_eq!(idle.idle_for, self.now.saturating_since(want.since));
                        self.m.in_use.push((idle.id, k));
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
            Op::DialSucceeded(i) if !self.m.permits.is_empty() => {
                let (permit, k) = self.m.permits.remove(i as usize % self.m.permits.len());
                self.m.in_use.push((permit.id(), k));
                self.pool.dial_succeeded(permit);
            }
            Op::DialFailed(i) if !self.m.permits.is_empty() => {
                let (permit, k) = self.m.permits.remove(i as usize % self.m.permits.len());
                let grant = self.pool.dial_failed(permit);
                self.grant(k, grant);
            }
            Op::Checkin(i, verdict, hint) if !self.m.in_use.is_empty() => {
                let (id, k) = self.m.in_use.remove(i as usize % self.m.in_use.len());
                let handle = self.m.next_handle;
                self.m.next_handle += 1;
                let verdict = match verdict {
                    None => Reuse::Yes,
                    Some(r) => Reuse::No(CloseReason::ALL[r as usize % CloseReason::ALL.len()]),
                };
                let hint = hint.map(|s| Duration::from_secs(s as u64));
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
                    match got {
                        Some(Grant::Conn { ticket, idle }) => {
                            assert_eq!(ticket, t, "conn grant not to the first waiter");
                            assert_eq!(
                                (idle.handle, idle.id, idle.idle_for),
                                (handle, id, Duration::ZERO)
                            );
                            self.m.in_use.push((id, k));
                        }
                        other => panic!(
                            "checkin with waiter {t:?}: expected a conn grant, got {other:?}"
                        ),
                    }
                } else {
                    assert!(got.is_none(), "grant without a waiter: {got:?}");
                    self.m.seq += 1;
                    self.m.idle[k].push(IdleM {
                        handle,
                        id,
                        seq: self.m.seq,
                        since: self.now,
                        expiry,
                    });
                    if self.m.idle[k].len() > self.config.max_idle_per_host {
                        let i = (0..self.m.idle[k].len())
                            .min_by_key(|&i| self.m.idle[k][i].seq)
                            .unwrap();
                        let c = self.m.idle[k].remove(i);
                        self.close(c.handle, CloseReason::MaxIdlePerHost);
                    }
                    while self.m.idle.iter().map(Vec::len).sum::<usize>()
                        > self.config.max_idle_total
                    {
                        let (k, i) = (0..KEYS)
                            .flat_map(|k| (0..self.m.idle[k].len()).map(move |i| (k, i)))
                            .min_by_key(|&(k, i)| self.m.idle[k][i].seq)
                            .unwrap();
                        let c = self.m.idle[k].remove(i);
                        self.close(c.handle, CloseReason::MaxIdleTotal);
                    }
                }
            }
            Op::Discard(i, r) if !self.m.in_use.is_empty() => {
                let (id, k) = self.m.in_use.remove(i as usize % self.m.in_use.len());
                let reason = CloseReason::ALL[r as usize % CloseReason::ALL.len()];
                let got = self.pool.discard(id, &key(k), reason);
                self.grant(k, got);
            }
            Op::CancelWait(j) if !self.m.tickets.is_empty() => {
                let t = self.m.tickets[j as usize % self.m.tickets.len()];
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
            Op::AdvanceMs(ms) => self.now = self.now + Duration::from_millis(ms as u64),
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
            assert_eq!(
                want,
                Some(reason),
                "take_closed gave handle {handle} ({reason:?})"
            );
        }
        assert!(
            self.m.must_close.is_empty(),
            "not closed: {:?}",
            self.m.must_close
        );
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
            assert_eq!(
                (s.idle, s.in_use, s.dialing, s.waiters),
                model,
                "gauges of key {k} (idle, in use, dialing, waiters)"
            );
            let conns = s.idle + s.in_use + s.dialing;
            assert!(
                conns <= self.cap,
                "key {k}: {conns} conns over the cap {}",
                self.cap
            );
            if s.waiters > 0 {
                assert!(
                    conns == self.cap && s.idle == 0,
                    "key {k}: waiters while a slot or an idle conn is free"
                );
            }
            assert!(s.idle <= self.config.max_idle_per_host);
            total_idle += s.idle;
        }
        let st = self.pool.stats();
        assert_eq!(st.idle, total_idle);
        assert!(st.idle <= self.config.max_idle_total);
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

fuzz_target!(|input: Input| {
    let c = &input.config;
    let config = PoolConfig::default()
        .max_idle_per_host(c.max_idle_per_host as usize % 5)
        .max_idle_total(c.max_idle_total as usize % 7)
        .max_conns_per_host(c.max_conns_per_host.map(|n| n as usize % 4))
        .idle_timeout(c.idle_timeout_ms.map(|ms| Duration::from_millis(ms as u64)))
        .keep_alive_margin(Duration::from_millis(c.keep_alive_margin_ms as u64 % 3000));
    let mut h = Harness {
        pool: Pool::new(config),
        config,
        cap: config.max_conns_per_host.map_or(usize::MAX, |n| n.max(1)),
        m: Model::default(),
        now: Instant::ZERO,
    };
    for op in input.ops.iter().take(256) {
        h.op(op);
        h.check();
    }
    h.drain();
});
