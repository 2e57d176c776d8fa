//! The idle connections of a pool, each reachable in constant time by id,
//! by key (most recently used first), by age across keys (for the global
//! LRU eviction) and by deadline.
//!
//! # Which idle connection expires next
//!
//! Every idle connection is on two lists of a [`Slab`], most recently
//! checked in first: its key's ([`HostIdle`]) and the pool's. Its expiry is
//! the earlier of `since + idle_timeout` and the server's Keep-Alive hint.
//! A connection whose expiry is `since + idle_timeout` and whose `since` is
//! no earlier than any check-in before it *follows the check-in order*, and
//! so does one that never expires (no idle timeout, no hint); the others (a
//! Keep-Alive hint earlier than the idle timeout, no idle timeout but a
//! hint, or a `now` earlier than a previous check-in's) are also kept in two
//! deadline heaps, the pool's and their key's.
//!
//! Claim: on either list, if the oldest connection `X` has not expired, no
//! connection that follows the order has. Such a connection `N` was checked
//! in after `X`, so `since(X) <= since(N)`, and every expiry is at most
//! `since + idle_timeout`: `expiry(X) <= since(X) + idle_timeout <=
//! since(N) + idle_timeout = expiry(N)`. (With no idle timeout, `N` never
//! expires.) So:
//!
//! - the next expiry is the earlier of the oldest connection's and the
//!   heap's first ([`IdleSet::next_expiry`], O(1));
//! - an expired connection, if any, is the oldest one or the heap's first
//!   ([`IdleSet::due`], [`IdleSet::due_in`], O(1)); removing them one by one
//!   finds every expired connection, each at constant cost.
//!
//! Costs: insert and remove are O(1), plus O(log d) for a connection in the
//! heaps (d: connections in them, at most the idle count); a lookup by id
//! is one hash of a counter (after the first, which indexes them all).

use core::hash::BuildHasherDefault;

use super::slab::{Heap, Linked, Links, List, NIL, Slab, Timed};
use super::*;

/// List kinds: a key's idle connections, and all of them.
const IN_HOST: usize = 0;
const IN_POOL: usize = 1;
/// Heap kinds (indices into [`IdleConn::places`]).
const POOL_HEAP: usize = 0;
const HOST_HEAP: usize = 1;

#[derive(Clone, Copy, Debug)]
pub(super) struct Expiry {
    pub(super) at: Instant,
    pub(super) reason: CloseReason,
}

pub(super) struct IdleConn<H> {
    pub(super) handle: H,
    pub(super) id: ConnId,
    /// Its key's slot in the pool's host slab.
    pub(super) host: usize,
    /// Check-in order: larger is more recent.
    seq: u64,
    pub(super) since: Instant,
    pub(super) expiry: Option<Expiry>,
    in_host: Links,
    in_pool: Links,
    /// Places in the pool's and the key's deadline heaps; both [`NIL`] when
    /// the connection follows the check-in order (see the module docs).
    places: [usize; 2],
}

impl<H> IdleConn<H> {
    fn expired(&self, now: Instant) -> Option<CloseReason> {
        self.expiry.filter(|e| e.at <= now).map(|e| e.reason)
    }
    fn in_heaps(&self) -> bool {
        self.places[POOL_HEAP] != NIL
    }
}

impl<H> Linked<IN_HOST> for IdleConn<H> {
    fn links(&self) -> &Links {
        &self.in_host
    }
    fn links_mut(&mut self) -> &mut Links {
        &mut self.in_host
    }
}

impl<H> Linked<IN_POOL> for IdleConn<H> {
    fn links(&self) -> &Links {
        &self.in_pool
    }
    fn links_mut(&mut self) -> &mut Links {
        &mut self.in_pool
    }
}

impl<H, const C: usize> Timed<C> for IdleConn<H> {
    fn due(&self) -> (Instant, u64) {
        // Only connections with an expiry enter a heap (see `insert`).
        let at = self.expiry.map_or(Instant::ZERO, |e| e.at);
        (at, self.seq)
    }
    fn place(&self) -> usize {
        self.places[C]
    }
    fn place_mut(&mut self) -> &mut usize {
        &mut self.places[C]
    }
}

/// Hashes the pool's own counters (connection ids, tickets): numbers the
/// pool hands out in sequence, which no peer chooses, so no secret key is
/// needed. One multiply by an odd constant: the low bits (the bucket) of a
/// run of consecutive numbers are all different, the top bits (hashbrown's
/// tag) are mixed.
#[derive(Default)]
pub(super) struct CounterHasher(u64);

impl core::hash::Hasher for CounterHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map from one of the pool's counters to a slab index.
pub(super) type CounterMap<K> = hashbrown::HashMap<K, usize, BuildHasherDefault<CounterHasher>>;

/// One key's idle connections.
pub(super) struct HostIdle {
    /// Most recently used first.
    list: List<IN_HOST>,
    /// Those not following the check-in order, by expiry.
    deadlines: Heap<HOST_HEAP>,
}

impl HostIdle {
    pub(super) const fn new() -> Self {
        HostIdle {
            list: List::new(),
            deadlines: Heap::new(),
        }
    }
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }
    #[cfg(any(test, fuzzing))]
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The most recently used.
    pub(super) fn newest(&self) -> Option<usize> {
        self.list.front()
    }
    /// The least recently used.
    pub(super) fn oldest(&self) -> Option<usize> {
        self.list.back()
    }
}

/// Every idle connection of a pool.
pub(super) struct IdleSet<H> {
    conns: Slab<IdleConn<H>>,
    /// Every idle connection, most recently used first.
    lru: List<IN_POOL>,
    /// Those not following the check-in order, by expiry.
    deadlines: Heap<POOL_HEAP>,
    /// Each idle connection's slot by id, for [`find`](Self::find). Built
    /// at the first `find` (O(idle connections), once) and kept from then
    /// on: only an adapter that watches idle sockets asks (mio's
    /// `remove_idle`), so the others do not pay two hash-map updates per
    /// check-in and checkout.
    ids: Option<CounterMap<ConnId>>,
    /// The latest `since` of any check-in so far.
    latest_since: Instant,
    last_seq: u64,
    idle_timeout: Option<Duration>,
}

impl<H> IdleSet<H> {
    pub(super) fn new(idle_timeout: Option<Duration>) -> Self {
        IdleSet {
            conns: Slab::new(),
            lru: List::new(),
            deadlines: Heap::new(),
            ids: None,
            latest_since: Instant::ZERO,
            last_seq: 0,
            idle_timeout,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn get(&self, at: usize) -> &IdleConn<H> {
        &self.conns[at]
    }

    /// The slot of idle connection `id`.
    pub(super) fn find(&mut self, id: ConnId) -> Option<usize> {
        let conns = &self.conns;
        let ids = self
            .ids
            .get_or_insert_with(|| conns.iter().map(|(at, c)| (c.id, at)).collect());
        ids.get(&id).copied()
    }

    /// The least recently used of all.
    pub(super) fn oldest(&self) -> Option<usize> {
        self.lru.back()
    }

    /// Adds a connection of the key in slot `host_at` as its most recently
    /// used and the pool's; returns its slot.
    pub(super) fn insert(
        &mut self,
        host: &mut HostIdle,
        host_at: usize,
        handle: H,
        id: ConnId,
        now: Instant,
        expiry: Option<Expiry>,
    ) -> usize {
        // One that never expires (no idle timeout, no hint) needs no heap,
        // whenever it came.
        let follows_order = match expiry {
            None => true,
            Some(e) => now >= self.latest_since && Some(e.at) == self.idle_timeout.map(|d| now + d),
        };
        self.latest_since = self.latest_since.max(now);
        self.last_seq += 1;
        let at = self.conns.insert(IdleConn {
            handle,
            id,
            host: host_at,
            seq: self.last_seq,
            since: now,
            expiry,
            in_host: Links::NONE,
            in_pool: Links::NONE,
            places: [NIL; 2],
        });
        host.list.push_front(&mut self.conns, at);
        self.lru.push_front(&mut self.conns, at);
        if !follows_order {
            self.deadlines.push(&mut self.conns, at);
            host.deadlines.push(&mut self.conns, at);
        }
        if let Some(ids) = &mut self.ids {
            ids.insert(id, at);
        }
        at
    }

    /// Takes the connection in slot `at`, of `host`, out of the pool.
    pub(super) fn remove(&mut self, host: &mut HostIdle, at: usize) -> IdleConn<H> {
        host.list.unlink(&mut self.conns, at);
        self.lru.unlink(&mut self.conns, at);
        if self.conns[at].in_heaps() {
            self.deadlines.remove(&mut self.conns, at);
            host.deadlines.remove(&mut self.conns, at);
        }
        let conn = self.conns.remove(at);
        if let Some(ids) = &mut self.ids {
            ids.remove(&conn.id);
        }
        conn
    }

    /// An expired connection of `host` at `now`, and why, if any.
    pub(super) fn due_in(&self, host: &HostIdle, now: Instant) -> Option<(usize, CloseReason)> {
        self.due_of([host.list.back(), host.deadlines.first()], now)
    }

    /// An expired connection at `now`, and why, if any.
    pub(super) fn due(&self, now: Instant) -> Option<(usize, CloseReason)> {
        self.due_of([self.lru.back(), self.deadlines.first()], now)
    }

    fn due_of(&self, candidates: [Option<usize>; 2], now: Instant) -> Option<(usize, CloseReason)> {
        let mut candidates = candidates.into_iter().flatten();
        candidates.find_map(|at| self.conns[at].expired(now).map(|reason| (at, reason)))
    }

    /// The earliest expiry of all.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let candidates = [self.lru.back(), self.deadlines.first()]
            .into_iter()
            .flatten();
        let expiries = candidates.filter_map(|at| self.conns[at].expiry.map(|e| e.at));
        expiries.min()
    }

    /// Panics if the structure is inconsistent; `hosts` are the hosts' idle
    /// sets with their slots. For tests and fuzzing.
    #[cfg(any(test, fuzzing))]
    pub(super) fn check_invariants<'a>(&self, hosts: impl Iterator<Item = (usize, &'a HostIdle)>) {
        use alloc::collections::BTreeSet;
        let conns = &self.conns;
        let lru = self.lru.checked(conns);
        assert_eq!(lru.len(), conns.len(), "every idle conn is on the LRU list");
        if let Some(ids) = &self.ids {
            assert_eq!(ids.len(), conns.len(), "ids");
        }
        let seqs = lru.iter().map(|&at| conns[at].seq);
        assert!(
            seqs.clone().zip(seqs.skip(1)).all(|(a, b)| a > b),
            "LRU order"
        );
        // Oldest first: each conn outside the heaps has the idle timeout's
        // expiry and a `since` no earlier than any older one's.
        let mut latest = Instant::ZERO;
        for &at in lru.iter().rev() {
            let c = &conns[at];
            if let Some(ids) = &self.ids {
                assert_eq!(ids.get(&c.id), Some(&at), "{}: id map", c.id);
            }
            let idle_expiry = self.idle_timeout.map(|d| c.since + d);
            if !c.in_heaps() {
                assert_eq!(c.expiry.map(|e| e.at), idle_expiry, "{}: expiry", c.id);
                let ordered = c.expiry.is_none() || c.since >= latest;
                assert!(ordered, "{}: out of order, not in the heaps", c.id);
            } else {
                assert!(c.expiry.is_some(), "{}: in the heaps without expiry", c.id);
            }
            if let (Some(e), Some(idle)) = (c.expiry, idle_expiry) {
                assert!(e.at <= idle, "{}: expiry after the idle timeout's", c.id);
            }
            latest = latest.max(c.since);
        }
        assert!(latest <= self.latest_since, "latest_since");
        let in_heaps: BTreeSet<usize> = lru
            .iter()
            .copied()
            .filter(|&at| conns[at].in_heaps())
            .collect();
        let heap: BTreeSet<usize> = self.deadlines.checked(conns).into_iter().collect();
        assert_eq!(heap, in_heaps, "the pool's deadline heap");
        let mut on_hosts = 0;
        for (h, host) in hosts {
            let list = host.list.checked(conns);
            assert!(
                list.iter().all(|&at| conns[at].host == h),
                "host {h}: a conn of another host"
            );
            let seqs = list.iter().map(|&at| conns[at].seq);
            assert!(
                seqs.clone().zip(seqs.skip(1)).all(|(a, b)| a > b),
                "host {h}: MRU order"
            );
            let in_heaps: BTreeSet<usize> = list
                .iter()
                .copied()
                .filter(|&at| conns[at].in_heaps())
                .collect();
            let heap: BTreeSet<usize> = host.deadlines.checked(conns).into_iter().collect();
            assert_eq!(heap, in_heaps, "host {h}: deadline heap");
            on_hosts += list.len();
        }
        assert_eq!(
            on_hosts,
            conns.len(),
            "every idle conn is on its host's list"
        );
        let earliest = conns
            .iter()
            .filter_map(|(_, c)| c.expiry.map(|e| e.at))
            .min();
        assert_eq!(self.next_expiry(), earliest, "next_expiry");
    }
}
