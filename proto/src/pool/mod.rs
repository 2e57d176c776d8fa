//! Connection pool policy: the decisions of Go's `http.Transport` pool, sans-IO.
//!
//! # Theory of operation
//!
//! [`Pool`] decides; the adapter executes. The pool is generic over an opaque
//! connection handle `H` (the adapter's socket wrapper). It stores the handles
//! of *idle* connections only; a connection in use lives with the adapter and
//! is merely counted, per [`Key`] (scheme, host, port). Every call that can
//! move time takes `now`, so expiry needs no background task: the adapter arms
//! one timer from [`Pool::poll_timeout`] and calls [`Pool::handle_timeout`]
//! when it fires, and [`Pool::checkout`] also skips what has expired.
//!
//! A request asks for a connection with [`Pool::checkout`] and gets one of
//! three answers: an idle connection (the most recently used one), permission
//! to dial (a slot is reserved against
//! [`max_conns_per_host`](PoolConfig::max_conns_per_host)), or a [`Ticket`] in
//! a FIFO queue for its key. Queued tickets are served by later calls: a
//! reusable connection checked in goes straight to the first waiter (late
//! binding, as in Go), and a freed slot becomes a permit to dial for it. Those
//! calls return a [`Grant`] that the adapter delivers to the waiter.
//!
//! ```text
//!   checkout -> Dial(permit)
//!        |
//!        v                 dial_failed
//!   +---------+ ------------------------------> (slot freed, next waiter dials)
//!   | dialing |
//!   +---------+
//!        | dial_succeeded
//!        v            checkin(No) / discard / expired on checkin
//!   +---------+ ----------------------------------------------------> closed
//!   | in use  | <-- checkin(Yes) with a waiter queued: Grant::Conn       ^
//!   +---------+                                                         |
//!     ^     | checkin(Yes)                                              |
//!     |     v                                                           |
//!   +---------+  idle_timeout / Keep-Alive expiry / max_idle_* eviction |
//!   |  idle   | --------------------------------------------------------+
//!   +---------+
//!     checkout (most recently used first)
//! ```
//!
//! After every call the adapter drains [`Pool::take_closed`] and closes those
//! handles, delivers any returned [`Grant`], and re-arms its timer from
//! [`Pool::poll_timeout`].
//!
//! # The cancellation race
//!
//! A waiter that gives up calls [`Pool::cancel_wait`]. When it returns `false`
//! the ticket was already granted (or never queued): a [`Grant`] for it is on
//! its way through the adapter. Whoever holds that grant must then give it
//! back: a [`Grant::Conn`] with [`Pool::checkin_since`] (passing the
//! Keep-Alive hint the adapter last saw for it, or `None`, and the grant's
//! [`Idle::since`]), a [`Grant::Dial`] with
//! [`Pool::dial_failed`], which may in turn grant the next waiter.
//!
//! # Cost of each call
//!
//! Constant time, whatever the number of keys and idle connections (issue
//! #16 measured 10 to 10,000 of each; see `BENCHMARKS.md`), except where a
//! server's Keep-Alive hint makes a deadline that breaks the check-in order:
//!
//! | call | cost |
//! |---|---|
//! | [`checkout`](Pool::checkout) | O(1) + O(1) per expired connection it closes |
//! | [`checkin`](Pool::checkin) | O(1) + O(1) per connection it evicts |
//! | [`dial_succeeded`](Pool::dial_succeeded), [`dial_failed`](Pool::dial_failed), [`discard`](Pool::discard), [`cancel_wait`](Pool::cancel_wait) | O(1) |
//! | [`remove_idle`](Pool::remove_idle) | O(1) (the first call indexes the idle connections by id: O(idle), once) |
//! | [`poll_timeout`](Pool::poll_timeout) | O(1) |
//! | [`handle_timeout`](Pool::handle_timeout) | O(1) + O(1) per expired connection |
//!
//! Plus O(log d) whenever a connection enters or leaves the deadline heaps,
//! where d is the number of idle connections in them: those whose Keep-Alive
//! hint expires before the idle timeout (or that have a hint and no idle
//! timeout), or checked in with a `now` earlier than a previous check-in's.
//! O(1) means expected O(1) for the hash lookups of keys (O(log keys)
//! without `std`, see `HostMap`).
//!
//! How (module `idle`, whose docs hold the proof): idle connections live in
//! a slab, each linked into its key's list (most recent first: checkout
//! takes the front, per-key eviction the back) and into the pool's list
//! (global LRU eviction takes the back). With one idle timeout for all, the
//! check-in order is the expiry order, so the oldest connection is the next
//! to expire unless a deadline heap holds an earlier one. Waiters are a FIFO
//! list per key in another slab, found by ticket through a hash map. Once
//! the slabs, lists and maps have grown to their largest, no call allocates
//! (`proto/tests/alloc.rs`), except when a `Key` that holds a proxy (a
//! boxed `Via`) is cloned: for a new key's entry and for each dial permit.

use alloc::collections::VecDeque;
use core::fmt;
use core::time::Duration;
use smol_str::{SmolStr, StrExt};

use crate::time::Instant;

use idle::{CounterMap, Expiry, HostIdle, IdleSet};
use slab::{Linked, Links, List, Slab};

/// The reuse verdict and close reasons are the connection core's own types.
pub use crate::framing::{CloseReason, Reuse};

/// Where each key's state lives: its slot in the pool's host slab.
///
/// With `std`, a hash map keyed with std's `RandomState` (SipHash-1-3 under
/// per-process random keys): host names may come from peers (a redirect's
/// `Location`), so the hash must not be predictable, or a peer could pick
/// names that all collide. The random keys only place entries in the table;
/// no decision and no output order depends on them (the pool never walks
/// this map outside its invariant checks). Without `std` there is no random
/// source, so an ordered map (O(log keys) per lookup, never degenerate).
#[cfg(feature = "std")]
type HostMap = hashbrown::HashMap<Key, usize, std::hash::RandomState>;
#[cfg(not(feature = "std"))]
type HostMap = alloc::collections::BTreeMap<Key, usize>;

/// List kind of the waiters of a key.
const QUEUE: usize = 0;

/// A request queued for a key.
struct Waiter {
    ticket: Ticket,
    /// Its key's slot in the host slab.
    host: usize,
    links: Links,
}

impl Linked<QUEUE> for Waiter {
    fn links(&self) -> &Links {
        &self.links
    }
    fn links_mut(&mut self) -> &mut Links {
        &mut self.links
    }
}

/// One key's state.
struct Host {
    /// Kept to remove the map entry when the key's last connection goes
    /// (an eviction or expiry finds the host by its slot, not its key).
    key: Key,
    idle: HostIdle,
    in_use: usize,
    dialing: usize,
    /// Oldest first.
    waiters: List<QUEUE>,
}

impl Host {
    fn new(key: Key) -> Self {
        Host {
            key,
            idle: HostIdle::new(),
            in_use: 0,
            dialing: 0,
            waiters: List::new(),
        }
    }
    fn conns(&self) -> usize {
        self.idle.len() + self.in_use + self.dialing
    }
    fn is_empty(&self) -> bool {
        self.conns() == 0 && self.waiters.is_empty()
    }
}

/// Handles waiting to be closed by the adapter, and the counts by reason.
struct Closed<H> {
    queue: VecDeque<(H, CloseReason)>,
    counts: ClosedCounts,
}

impl<H> Closed<H> {
    fn close(&mut self, handle: H, reason: CloseReason) {
        self.counts.add(reason);
        self.queue.push_back((handle, reason));
    }
}

/// Pool-wide gauges and counters, kept in step with the hosts.
#[derive(Default)]
struct Totals {
    in_use: usize,
    dialing: usize,
    dials: u64,
    reuses: u64,
}

/// The next number of a counter (connection ids, tickets).
fn bump(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter
}

/// The pool policy: which connection a request uses, which are kept, which
/// are closed, who waits. See the [module docs](self) for the life of a
/// connection and the call order.
///
/// ```
/// use core::time::Duration;
/// use roundtrip_proto::pool::{Checkout, Key, Pool, PoolConfig, Reuse, Scheme};
/// use roundtrip_proto::time::Instant;
///
/// let mut pool: Pool<&str> = Pool::new(PoolConfig::default());
/// let key = Key::new(Scheme::Http, "example.com", 80);
/// let t0 = Instant::ZERO;
///
/// // Nothing idle yet: the pool grants a dial.
/// let Checkout::Dial(permit) = pool.checkout(&key, t0) else { panic!("expected a dial") };
/// let id = permit.id();
/// // ... the adapter connects a socket ...
/// pool.dial_succeeded(permit);
///
/// // The exchange ended and the connection core said it can be reused.
/// let t1 = t0 + Duration::from_secs(1);
/// assert!(pool.checkin(id, &key, "socket 1", Reuse::Yes, None, t1).is_none());
/// assert_eq!(pool.poll_timeout(), Some(t1 + Duration::from_secs(90)));
///
/// // The next request reuses it.
/// let t2 = t1 + Duration::from_secs(2);
/// let Checkout::Idle(idle) = pool.checkout(&key, t2) else { panic!("expected reuse") };
/// assert_eq!((idle.handle, idle.id, idle.idle_for), ("socket 1", id, Duration::from_secs(2)));
/// let stats = pool.stats();
/// assert_eq!((stats.dials, stats.reuses, stats.in_use, stats.idle), (1, 1, 1, 0));
/// assert!(pool.take_closed().is_none());
/// ```
pub struct Pool<H> {
    config: PoolConfig,
    /// Each key's slot in `host_slots`.
    hosts: HostMap,
    host_slots: Slab<Host>,
    /// The host slot found last: a run of requests to one key (the
    /// keep-alive steady state) compares the key instead of hashing it.
    last_host: Option<usize>,
    idle: IdleSet<H>,
    /// Every queued request, on its key's `waiters` list.
    waiters: Slab<Waiter>,
    /// Each queued ticket's slot in `waiters`.
    tickets: CounterMap<Ticket>,
    closed: Closed<H>,
    totals: Totals,
    last_conn: u64,
    last_ticket: u64,
}

impl<H> Default for Pool<H> {
    fn default() -> Self {
        Pool::new(PoolConfig::default())
    }
}

impl<H> fmt::Debug for Pool<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<H> Pool<H> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Pool {
            config,
            hosts: HostMap::default(),
            host_slots: Slab::new(),
            last_host: None,
            idle: IdleSet::new(config.idle_timeout),
            waiters: Slab::new(),
            tickets: CounterMap::default(),
            closed: Closed {
                queue: VecDeque::new(),
                counts: ClosedCounts::default(),
            },
            totals: Totals::default(),
            last_conn: 0,
            last_ticket: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// A connection for `key`: the most recently used idle one that has not
    /// expired (expired ones go to [`take_closed`](Self::take_closed)), else a
    /// permit to dial while under [`max_conns_per_host`](PoolConfig::max_conns_per_host),
    /// else a place in the FIFO queue for `key`.
    pub fn checkout(&mut self, key: &Key, now: Instant) -> Checkout<H> {
        let h = match self.find_host(key) {
            Some(h) => h,
            None => {
                let h = self.host_slots.insert(Host::new(key.clone()));
                self.hosts.insert(key.clone(), h);
                self.last_host = Some(h);
                h
            }
        };
        let host = &mut self.host_slots[h];
        while let Some((at, reason)) = self.idle.due_in(&host.idle, now) {
            let conn = self.idle.remove(&mut host.idle, at);
            self.closed.close(conn.handle, reason);
        }
        if let Some(at) = host.idle.newest() {
            let conn = self.idle.remove(&mut host.idle, at);
            host.in_use += 1;
            self.totals.in_use += 1;
            self.totals.reuses += 1;
            return Checkout::Idle(Idle {
                handle: conn.handle,
                id: conn.id,
                idle_for: now.saturating_since(conn.since),
                since: conn.since,
            });
        }
        if host.conns() < self.config.conn_cap() {
            host.dialing += 1;
            self.totals.dialing += 1;
            return Checkout::Dial(DialPermit {
                id: ConnId(bump(&mut self.last_conn)),
                key: key.clone(),
            });
        }
        let ticket = Ticket(bump(&mut self.last_ticket));
        let at = self.waiters.insert(Waiter {
            ticket,
            host: h,
            links: Links::NONE,
        });
        host.waiters.push_back(&mut self.waiters, at);
        self.tickets.insert(ticket, at);
        Checkout::Wait(ticket)
    }

    /// The slot of `key`'s host.
    fn find_host(&mut self, key: &Key) -> Option<usize> {
        if let Some(h) = self.last_host
            && self.host_slots[h].key == *key
        {
            return Some(h);
        }
        let h = *self.hosts.get(key)?;
        self.last_host = Some(h);
        Some(h)
    }

    /// The slot of `key`'s host, if it passes `check`.
    fn host_where(&mut self, key: &Key, check: impl Fn(&Host) -> bool) -> Option<usize> {
        let h = self.find_host(key)?;
        check(&self.host_slots[h]).then_some(h)
    }

    /// The dial of `permit` succeeded: its connection is now in use.
    pub fn dial_succeeded(&mut self, permit: DialPermit) {
        let h = self.host_where(&permit.key, |h| h.dialing > 0);
        debug_assert!(h.is_some(), "dial_succeeded: permit not from this pool");
        if let Some(h) = h {
            let host = &mut self.host_slots[h];
            host.dialing -= 1;
            host.in_use += 1;
            self.totals.dialing -= 1;
            self.totals.in_use += 1;
            self.totals.dials += 1;
        }
    }

    /// The dial of `permit` failed (or its waiter gave up): the slot is freed,
    /// and the first waiter for its key, if any, is granted a dial instead.
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn dial_failed(&mut self, permit: DialPermit) -> Option<Grant<H>> {
        let h = self.host_where(&permit.key, |h| h.dialing > 0);
        debug_assert!(h.is_some(), "dial_failed: permit not from this pool");
        let h = h?;
        self.host_slots[h].dialing -= 1;
        self.totals.dialing -= 1;
        self.release_slot(h)
    }

    /// Gives back connection `id` of `key` after an exchange.
    ///
    /// - `verdict` [`Reuse::No`]: `handle` is closed (via
    ///   [`take_closed`](Self::take_closed)) and its slot freed; the first
    ///   waiter, if any, is granted a dial.
    /// - [`Reuse::Yes`] but its idle expiry is already due (`idle_timeout` of
    ///   zero, or a `keep_alive_timeout` hint at most the margin): the same,
    ///   with reason [`CloseReason::IdleTimeout`] or [`CloseReason::KeepAliveTimeout`].
    /// - [`Reuse::Yes`] with a waiter queued: handed to it, as [`Grant::Conn`].
    /// - [`Reuse::Yes`] otherwise: kept idle as the most recently used; if
    ///   that exceeds an idle limit, the least recently used idle connection
    ///   (of this key, or of all keys) is closed.
    ///
    /// `keep_alive_timeout` is the `timeout` the server announced in its
    /// `Keep-Alive` field, if any.
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn checkin(
        &mut self,
        id: ConnId,
        key: &Key,
        handle: H,
        verdict: Reuse,
        keep_alive_timeout: Option<Duration>,
        now: Instant,
    ) -> Option<Grant<H>> {
        self.checkin_since(id, key, handle, verdict, keep_alive_timeout, now, now)
    }

    /// [`checkin`](Self::checkin) of a connection idle since `since` (at
    /// most `now`): a grant its waiter never took, given back. Its idle
    /// time, its expiry and the grant it may go to next count from then,
    /// as the server's own idle clock does.
    ///
    /// ```
    /// use roundtrip_proto::pool::{Checkout, Key, Pool, PoolConfig, Reuse, Scheme};
    /// use roundtrip_proto::time::Instant;
    /// use std::time::Duration;
    /// let at = |s| Instant::from_origin(Duration::from_secs(s));
    /// let mut pool = Pool::new(PoolConfig::default());
    /// let key = Key::new(Scheme::Http, "example.com", 80);
    /// let Checkout::Dial(permit) = pool.checkout(&key, at(0)) else { panic!() };
    /// let id = permit.id();
    /// pool.dial_succeeded(permit);
    /// assert!(pool.checkin_since(id, &key, "conn", Reuse::Yes, None, at(1), at(5)).is_none());
    /// // Idle from 1 s: 90 s of idle timeout from then.
    /// assert_eq!(pool.poll_timeout(), Some(at(91)));
    /// let Checkout::Idle(idle) = pool.checkout(&key, at(7)) else { panic!() };
    /// assert_eq!(idle.idle_for, Duration::from_secs(6));
    /// ```
    #[allow(clippy::too_many_arguments)]
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn checkin_since(
        &mut self,
        id: ConnId,
        key: &Key,
        handle: H,
        verdict: Reuse,
        keep_alive_timeout: Option<Duration>,
        since: Instant,
        now: Instant,
    ) -> Option<Grant<H>> {
        let since = since.min(now);
        let expiry = self.config.expiry(keep_alive_timeout, since);
        let h = self.host_where(key, |h| h.in_use > 0);
        debug_assert!(h.is_some(), "checkin: no connection in use");
        let Some(h) = h else {
            self.closed.close(handle, CloseReason::Error);
            return None;
        };
        let close = match verdict {
            Reuse::No(reason) => Some(reason),
            Reuse::Yes => expiry.filter(|e| e.at <= now).map(|e| e.reason),
        };
        if let Some(reason) = close {
            self.host_slots[h].in_use -= 1;
            self.totals.in_use -= 1;
            self.closed.close(handle, reason);
            return self.release_slot(h);
        }
        if let Some(ticket) = self.pop_waiter(h) {
            // Late binding: the connection stays in use, by the first waiter.
            self.totals.reuses += 1;
            let idle = Idle {
                handle,
                id,
                idle_for: now.saturating_since(since),
                since,
            };
            return Some(Grant::Conn { ticket, idle });
        }
        let host = &mut self.host_slots[h];
        host.in_use -= 1;
        self.totals.in_use -= 1;
        self.idle
            .insert(&mut host.idle, h, handle, id, since, expiry);
        let over_per_host = host.idle.len() > self.config.max_idle_per_host;
        if over_per_host || self.idle.len() > self.config.max_idle_total {
            self.enforce_idle_limits(h);
        }
        None
    }

    /// A grant no waiter took (it gave up first), given back: its
    /// connection is checked in as idle since the check-in that granted it
    /// ([`checkin_since`](Self::checkin_since)), and the handover it was
    /// counted as in [`PoolStats::reuses`] is taken back (it never
    /// happened).
    ///
    /// ```
    /// use roundtrip_proto::pool::{Checkout, Grant, Key, Pool, PoolConfig, Reuse, Scheme};
    /// use roundtrip_proto::time::Instant;
    /// let mut pool = Pool::new(PoolConfig::default().max_conns_per_host(Some(1)));
    /// let key = Key::new(Scheme::Http, "example.com", 80);
    /// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { panic!() };
    /// let id = permit.id();
    /// pool.dial_succeeded(permit);
    /// let Checkout::Wait(_) = pool.checkout(&key, Instant::ZERO) else { panic!() };
    /// let Some(Grant::Conn { idle, .. }) = pool.checkin(id, &key, "conn", Reuse::Yes, None, Instant::ZERO) else { panic!() };
    /// assert_eq!(pool.stats().reuses, 1);
    /// // Its waiter gave up: the connection goes back, unused.
    /// assert!(pool.give_back(idle, &key, Reuse::Yes, None, Instant::ZERO).is_none());
    /// assert_eq!((pool.stats().reuses, pool.stats().idle), (0, 1));
    /// ```
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn give_back(
        &mut self,
        idle: Idle<H>,
        key: &Key,
        verdict: Reuse,
        keep_alive_timeout: Option<Duration>,
        now: Instant,
    ) -> Option<Grant<H>> {
        self.totals.reuses = self.totals.reuses.saturating_sub(1);
        let (id, since) = (idle.id, idle.since);
        self.checkin_since(
            id,
            key,
            idle.handle,
            verdict,
            keep_alive_timeout,
            since,
            now,
        )
    }

    /// Connection `id` of `key`, in use, will not come back (an error, an
    /// abandoned body, the adapter's stale check failed): its slot is freed,
    /// counted under `reason`, and the first waiter, if any, is granted a dial.
    /// The adapter closes the handle itself.
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn discard(&mut self, id: ConnId, key: &Key, reason: CloseReason) -> Option<Grant<H>> {
        // In-use connections are counted, not stored: `id` serves the caller's traces.
        let _ = id;
        let h = self.host_where(key, |h| h.in_use > 0);
        debug_assert!(h.is_some(), "discard: no connection in use");
        let h = h?;
        self.host_slots[h].in_use -= 1;
        self.totals.in_use -= 1;
        if reason == CloseReason::Stale {
            // Found closed when taken from the pool: it carried nothing, so
            // its checkout was no reuse.
            self.totals.reuses = self.totals.reuses.saturating_sub(1);
        }
        self.closed.counts.add(reason);
        self.release_slot(h)
    }

    /// An idle connection `id` of `key` turned out dead while it sat in the
    /// pool (an event loop saw the server close it, or bytes nobody asked
    /// for): it is removed now, counted under `reason`, and its handle
    /// returned for the adapter to close. `None` if it is not idle here.
    ///
    /// ```
    /// use roundtrip_proto::pool::{Checkout, CloseReason, Key, Pool, Reuse, Scheme};
    /// use roundtrip_proto::time::Instant;
    ///
    /// let mut pool: Pool<u32> = Pool::default();
    /// let key = Key::new(Scheme::Http, "127.0.0.1", 8080);
    /// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { unreachable!() };
    /// let id = permit.id();
    /// pool.dial_succeeded(permit);
    /// let _ = pool.checkin(id, &key, 7, Reuse::Yes, None, Instant::ZERO);
    /// assert_eq!(pool.remove_idle(id, &key, CloseReason::Stale), Some(7));
    /// assert_eq!(pool.stats().idle, 0);
    /// ```
    pub fn remove_idle(&mut self, id: ConnId, key: &Key, reason: CloseReason) -> Option<H> {
        let at = self.idle.find(id)?;
        let h = self.idle.get(at).host;
        if self.host_slots[h].key != *key {
            return None; // idle, but under another key
        }
        let conn = self.idle.remove(&mut self.host_slots[h].idle, at);
        self.closed.counts.add(reason);
        self.drop_host_if_empty(h);
        Some(conn.handle)
    }

    /// Removes `ticket` from its queue. Returns `false` if it was not queued:
    /// then it may already have been granted, and the adapter must give the
    /// grant back ([`checkin_since`](Self::checkin_since) or [`dial_failed`](Self::dial_failed)).
    pub fn cancel_wait(&mut self, ticket: Ticket) -> bool {
        let Some(at) = self.tickets.remove(&ticket) else {
            return false;
        };
        let h = self.waiters[at].host;
        // A host with waiters is at its cap (>= 1 conn): never left empty.
        self.host_slots[h].waiters.unlink(&mut self.waiters, at);
        self.waiters.remove(at);
        true
    }

    /// The earliest instant an idle connection expires, if any. Constant
    /// time (see the module docs).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.idle.next_expiry()
    }

    /// Closes every idle connection expired at `now` (see
    /// [`take_closed`](Self::take_closed)). Early or repeated calls are
    /// harmless, and cost constant time when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, reason)) = self.idle.due(now) {
            let h = self.idle.get(at).host;
            let conn = self.idle.remove(&mut self.host_slots[h].idle, at);
            self.closed.close(conn.handle, reason);
            self.drop_host_if_empty(h);
        }
    }

    /// Closes every idle connection, under [`CloseReason::ClientClose`]
    /// (see [`take_closed`](Self::take_closed)), as Go's
    /// `Transport.CloseIdleConnections`: before a client is dropped, or to
    /// let a server go. Connections in use are left to their exchanges.
    ///
    /// ```
    /// use roundtrip_proto::pool::{Checkout, CloseReason, Key, Pool, Reuse, Scheme};
    /// use roundtrip_proto::time::Instant;
    ///
    /// let mut pool: Pool<u32> = Pool::default();
    /// let key = Key::new(Scheme::Http, "127.0.0.1", 8080);
    /// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { unreachable!() };
    /// let id = permit.id();
    /// pool.dial_succeeded(permit);
    /// let _ = pool.checkin(id, &key, 7, Reuse::Yes, None, Instant::ZERO);
    /// pool.close_idle();
    /// assert_eq!(pool.take_closed(), Some((7, CloseReason::ClientClose)));
    /// assert_eq!(pool.stats().idle, 0);
    /// ```
    pub fn close_idle(&mut self) {
        // Bounded: each pass removes one idle connection.
        while let Some(at) = self.idle.oldest() {
            let h = self.idle.get(at).host;
            let conn = self.idle.remove(&mut self.host_slots[h].idle, at);
            self.closed.close(conn.handle, CloseReason::ClientClose);
            self.drop_host_if_empty(h);
        }
    }

    /// The next handle the adapter must close, and why. Drain after every call.
    pub fn take_closed(&mut self) -> Option<(H, CloseReason)> {
        self.closed.queue.pop_front()
    }

    /// Pool-wide counters.
    pub fn stats(&self) -> PoolStats {
        let t = &self.totals;
        PoolStats {
            dials: t.dials,
            reuses: t.reuses,
            idle: self.idle.len(),
            in_use: t.in_use,
            dialing: t.dialing,
            waiters: self.waiters.len(),
            closed: self.closed.counts,
        }
    }

    /// The gauges of one key (all zero for a key the pool holds nothing for).
    pub fn stats_for(&self, key: &Key) -> HostStats {
        self.hosts.get(key).map_or_else(HostStats::default, |&h| {
            let h = &self.host_slots[h];
            HostStats {
                idle: h.idle.len(),
                in_use: h.in_use,
                dialing: h.dialing,
                waiters: h.waiters.len(),
            }
        })
    }

    /// Takes the first waiter of host `h` off its queue.
    fn pop_waiter(&mut self, h: usize) -> Option<Ticket> {
        let host = &mut self.host_slots[h];
        let at = host.waiters.front()?;
        host.waiters.unlink(&mut self.waiters, at);
        let ticket = self.waiters.remove(at).ticket;
        self.tickets.remove(&ticket);
        Some(ticket)
    }

    /// After one slot of host `h` was freed: grant it to the first waiter, or
    /// drop the host entry if nothing is left in it.
    fn release_slot(&mut self, h: usize) -> Option<Grant<H>> {
        let Some(ticket) = self.pop_waiter(h) else {
            self.drop_host_if_empty(h);
            return None;
        };
        let host = &mut self.host_slots[h];
        host.dialing += 1;
        self.totals.dialing += 1;
        let permit = DialPermit {
            id: ConnId(bump(&mut self.last_conn)),
            key: host.key.clone(),
        };
        Some(Grant::Dial { ticket, permit })
    }

    /// Forgets host `h` if it holds nothing.
    fn drop_host_if_empty(&mut self, h: usize) {
        if self.host_slots[h].is_empty() {
            let host = self.host_slots.remove(h);
            self.hosts.remove(&host.key);
            if self.last_host == Some(h) {
                self.last_host = None;
            }
        }
    }

    /// Evicts least recently used idle connections after a check-in to host `h`.
    fn enforce_idle_limits(&mut self, h: usize) {
        let host = &mut self.host_slots[h];
        if host.idle.len() > self.config.max_idle_per_host
            && let Some(at) = host.idle.oldest()
        {
            let conn = self.idle.remove(&mut host.idle, at);
            self.closed.close(conn.handle, CloseReason::MaxIdlePerHost);
            self.drop_host_if_empty(h);
        }
        // Global LRU: the oldest idle connection of all keys goes first.
        while self.idle.len() > self.config.max_idle_total {
            let Some(at) = self.idle.oldest() else { break };
            let h = self.idle.get(at).host;
            let conn = self.idle.remove(&mut self.host_slots[h].idle, at);
            self.closed.close(conn.handle, CloseReason::MaxIdleTotal);
            self.drop_host_if_empty(h);
        }
    }

    /// Panics if the pool's bookkeeping is inconsistent. For tests and fuzzing.
    #[cfg(any(test, fuzzing))]
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let (cap, config) = (self.config.conn_cap(), &self.config);
        let mut sums = [0; 4]; // idle, in use, dialing, waiters
        let mut tickets = alloc::collections::BTreeSet::new();
        assert_eq!(self.hosts.len(), self.host_slots.len(), "host map and slab");
        if let Some(h) = self.last_host {
            let key = &self.host_slots[h].key; // panics if the slot was freed
            assert_eq!(self.hosts.get(key), Some(&h), "last_host");
        }
        for (key, &h) in &self.hosts {
            let h = &self.host_slots[h];
            assert_eq!(&h.key, key, "{key}: host slot of another key");
            assert!(!h.is_empty(), "{key}: empty host entry kept");
            assert!(h.conns() <= cap, "{key}: over max_conns_per_host");
            assert!(
                h.idle.len() <= config.max_idle_per_host,
                "{key}: over max_idle_per_host"
            );
            if !h.waiters.is_empty() {
                assert!(h.idle.is_empty(), "{key}: waiters beside idle conns");
                assert_eq!(h.conns(), cap, "{key}: waiters while under the cap");
            }
            for at in h.waiters.checked(&self.waiters) {
                let Waiter { ticket, host, .. } = self.waiters[at];
                assert!(tickets.insert(ticket), "ticket queued twice");
                assert_eq!(self.tickets.get(&ticket), Some(&at), "ticket map");
                assert_eq!(self.hosts.get(key), Some(&host), "{key}: waiter's host");
            }
            let counts = [h.idle.len(), h.in_use, h.dialing, h.waiters.len()];
            sums.iter_mut().zip(counts).for_each(|(sum, n)| *sum += n);
        }
        assert_eq!(
            tickets.len(),
            self.tickets.len(),
            "stale ticket map entries"
        );
        let t = &self.totals;
        assert_eq!(
            sums,
            [self.idle.len(), t.in_use, t.dialing, self.waiters.len()],
            "totals out of step"
        );
        assert!(
            self.idle.len() <= config.max_idle_total,
            "over max_idle_total"
        );
        self.idle
            .check_invariants(self.host_slots.iter().map(|(h, host)| (h, &host.idle)));
    }
}

mod checkout;
mod config;
mod idle;
mod slab;
mod stats;

pub use checkout::{Checkout, ConnId, DialPermit, Grant, Idle, Ticket};
pub use config::{Key, PoolConfig, ProxyMode, Scheme, Via};
pub use stats::{ClosedCounts, HostStats, PoolStats};

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod model;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
