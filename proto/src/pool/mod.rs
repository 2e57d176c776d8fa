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
//! back: a [`Grant::Conn`] with [`Pool::checkin`] (passing the Keep-Alive hint
//! the adapter last saw for it, or `None`), a [`Grant::Dial`] with
//! [`Pool::dial_failed`], which may in turn grant the next waiter.

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;
use core::time::Duration;
use smol_str::{SmolStr, StrExt};

use crate::time::Instant;

/// The reuse verdict and close reasons are the connection core's own types.
pub use crate::framing::{CloseReason, Reuse};
#[derive(Clone, Copy, Debug)]
struct Expiry {
    at: Instant,
    reason: CloseReason,
}

struct IdleConn<H> {
    handle: H,
    id: ConnId,
    /// Check-in order: larger is more recent (global LRU across hosts).
    seq: u64,
    since: Instant,
    expiry: Option<Expiry>,
}

impl<H> IdleConn<H> {
    fn expired(&self, now: Instant) -> Option<CloseReason> {
        self.expiry.filter(|e| e.at <= now).map(|e| e.reason)
    }
}

/// One key's state. Idle connections are ordered most recently used first.
struct Host<H> {
    idle: VecDeque<IdleConn<H>>,
    /// The earliest expiry of an idle connection (`None`: none has one),
    /// kept exact at every check-in and removal, so that checkout and
    /// `poll_timeout` scan the idle list only when something is due (or
    /// when the connection taken out was the one due first).
    next_expiry: Option<Instant>,
    in_use: usize,
    dialing: usize,
    waiters: VecDeque<Ticket>,
}

impl<H> Host<H> {
    fn new() -> Self {
        Host {
            idle: VecDeque::new(),
            next_expiry: None,
            in_use: 0,
            dialing: 0,
            waiters: VecDeque::new(),
        }
    }
    fn conns(&self) -> usize {
        self.idle.len() + self.in_use + self.dialing
    }
    fn is_empty(&self) -> bool {
        self.conns() == 0 && self.waiters.is_empty()
    }
    /// Keeps `next_expiry` exact after `conn` left the idle list.
    fn took(&mut self, conn: &IdleConn<H>) {
        if conn.expiry.is_some_and(|e| Some(e.at) == self.next_expiry) {
            self.next_expiry = self.earliest_expiry();
        }
    }

    fn earliest_expiry(&self) -> Option<Instant> {
        self.idle
            .iter()
            .filter_map(|c| c.expiry.map(|e| e.at))
            .min()
    }

    /// Moves expired idle connections to `closed`; returns how many.
    /// Constant time until the earliest expiry is due.
    fn expire(&mut self, now: Instant, closed: &mut Closed<H>) -> usize {
        if self.next_expiry.is_none_or(|at| at > now) {
            return 0;
        }
        let before = self.idle.len();
        let mut i = 0;
        while i < self.idle.len() {
            match self.idle[i].expired(now) {
                Some(reason) => {
                    if let Some(conn) = self.idle.remove(i) {
                        closed.close(conn.handle, reason);
                    }
                }
                None => i += 1,
            }
        }
        self.next_expiry = self.earliest_expiry();
        before - self.idle.len()
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
    idle: usize,
    in_use: usize,
    dialing: usize,
    waiters: usize,
    dials: u64,
    reuses: u64,
}

/// The next number of a counter (connection ids, tickets, check-in order).
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
    hosts: BTreeMap<Key, Host<H>>,
    closed: Closed<H>,
    totals: Totals,
    last_conn: u64,
    last_ticket: u64,
    last_seq: u64,
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
            hosts: BTreeMap::new(),
            closed: Closed {
                queue: VecDeque::new(),
                counts: ClosedCounts::default(),
            },
            totals: Totals::default(),
            last_conn: 0,
            last_ticket: 0,
            last_seq: 0,
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
        let cap = self.config.conn_cap();
        // One search of the map; the key's clone copies a short host inline.
        let host = self.hosts.entry(key.clone()).or_insert_with(Host::new);
        self.totals.idle -= host.expire(now, &mut self.closed);
        if let Some(conn) = host.idle.pop_front() {
            host.took(&conn);
            host.in_use += 1;
            self.totals.idle -= 1;
            self.totals.in_use += 1;
            self.totals.reuses += 1;
            let idle_for = now.saturating_since(conn.since);
            return Checkout::Idle(Idle {
                handle: conn.handle,
                id: conn.id,
                idle_for,
            });
        }
        if host.conns() < cap {
            host.dialing += 1;
            self.totals.dialing += 1;
            return Checkout::Dial(DialPermit {
                id: ConnId(bump(&mut self.last_conn)),
                key: key.clone(),
            });
        }
        let ticket = Ticket(bump(&mut self.last_ticket));
        host.waiters.push_back(ticket);
        self.totals.waiters += 1;
        Checkout::Wait(ticket)
    }

    /// The dial of `permit` succeeded: its connection is now in use.
    pub fn dial_succeeded(&mut self, permit: DialPermit) {
        let host = self.hosts.get_mut(&permit.key).filter(|h| h.dialing > 0);
        debug_assert!(host.is_some(), "dial_succeeded: permit not from this pool");
        if let Some(host) = host {
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
        let host = self.hosts.get_mut(&permit.key).filter(|h| h.dialing > 0);
        debug_assert!(host.is_some(), "dial_failed: permit not from this pool");
        let host = host?;
        host.dialing -= 1;
        self.totals.dialing -= 1;
        self.release_slot(&permit.key)
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
        let expiry = self.config.expiry(keep_alive_timeout, now);
        let host = self.hosts.get_mut(key).filter(|h| h.in_use > 0);
        debug_assert!(host.is_some(), "checkin: no connection in use");
        let Some(host) = host else {
            self.closed.close(handle, CloseReason::Error);
            return None;
        };
        let close = match verdict {
            Reuse::No(reason) => Some(reason),
            Reuse::Yes => expiry.filter(|e| e.at <= now).map(|e| e.reason),
        };
        if let Some(reason) = close {
            host.in_use -= 1;
            self.totals.in_use -= 1;
            self.closed.close(handle, reason);
            return self.release_slot(key);
        }
        if let Some(ticket) = host.waiters.pop_front() {
            // Late binding: the connection stays in use, by the first waiter.
            self.totals.waiters -= 1;
            self.totals.reuses += 1;
            let idle = Idle {
                handle,
                id,
                idle_for: Duration::ZERO,
            };
            return Some(Grant::Conn { ticket, idle });
        }
        host.in_use -= 1;
        let seq = bump(&mut self.last_seq);
        if let Some(e) = &expiry {
            host.next_expiry = Some(host.next_expiry.map_or(e.at, |at| at.min(e.at)));
        }
        host.idle.push_front(IdleConn {
            handle,
            id,
            seq,
            since: now,
            expiry,
        });
        let over_per_host = host.idle.len() > self.config.max_idle_per_host;
        self.totals.in_use -= 1;
        self.totals.idle += 1;
        if over_per_host || self.totals.idle > self.config.max_idle_total {
            self.enforce_idle_limits(key);
        }
        None
    }

    /// Connection `id` of `key`, in use, will not come back (an error, an
    /// abandoned body, the adapter's stale check failed): its slot is freed,
    /// counted under `reason`, and the first waiter, if any, is granted a dial.
    /// The adapter closes the handle itself.
    #[must_use = "a returned grant must be delivered to its waiter"]
    pub fn discard(&mut self, id: ConnId, key: &Key, reason: CloseReason) -> Option<Grant<H>> {
        // In-use connections are counted, not stored: `id` serves the caller's traces.
        let _ = id;
        let host = self.hosts.get_mut(key).filter(|h| h.in_use > 0);
        debug_assert!(host.is_some(), "discard: no connection in use");
        let host = host?;
        host.in_use -= 1;
        self.totals.in_use -= 1;
        if reason == CloseReason::Stale {
            // Found closed when taken from the pool: it carried nothing, so
            // its checkout was no reuse.
            self.totals.reuses = self.totals.reuses.saturating_sub(1);
        }
        self.closed.counts.add(reason);
        self.release_slot(key)
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
        let host = self.hosts.get_mut(key)?;
        let pos = host.idle.iter().position(|c| c.id == id)?;
        let conn = host.idle.remove(pos)?;
        host.took(&conn);
        self.totals.idle -= 1;
        self.closed.counts.add(reason);
        if host.is_empty() {
            self.hosts.remove(key);
        }
        Some(conn.handle)
    }

    /// Removes `ticket` from its queue. Returns `false` if it was not queued:
    /// then it may already have been granted, and the adapter must give the
    /// grant back ([`checkin`](Self::checkin) or [`dial_failed`](Self::dial_failed)).
    pub fn cancel_wait(&mut self, ticket: Ticket) -> bool {
        if self.totals.waiters == 0 {
            return false;
        }
        for host in self.hosts.values_mut() {
            if let Some(pos) = host.waiters.iter().position(|&t| t == ticket) {
                host.waiters.remove(pos);
                self.totals.waiters -= 1;
                // A host with waiters is at its cap (>= 1 conn): never left empty.
                return true;
            }
        }
        false
    }

    /// The earliest instant an idle connection expires, if any. Linear in the
    /// number of hosts, not of connections.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hosts.values().filter_map(|h| h.next_expiry).min()
    }

    /// Closes every idle connection expired at `now` (see
    /// [`take_closed`](Self::take_closed)). Early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (closed, totals) = (&mut self.closed, &mut self.totals);
        self.hosts.retain(|_, host| {
            totals.idle -= host.expire(now, closed);
            !host.is_empty()
        });
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
            idle: t.idle,
            in_use: t.in_use,
            dialing: t.dialing,
            waiters: t.waiters,
            closed: self.closed.counts,
        }
    }

    /// The gauges of one key (all zero for a key the pool holds nothing for).
    pub fn stats_for(&self, key: &Key) -> HostStats {
        self.hosts
            .get(key)
            .map_or_else(HostStats::default, |h| HostStats {
                idle: h.idle.len(),
                in_use: h.in_use,
                dialing: h.dialing,
                waiters: h.waiters.len(),
            })
    }

    /// After one slot of `key` was freed: grant it to the first waiter, or drop
    /// the host entry if nothing is left in it.
    fn release_slot(&mut self, key: &Key) -> Option<Grant<H>> {
        let host = self.hosts.get_mut(key)?;
        let Some(ticket) = host.waiters.pop_front() else {
            if host.is_empty() {
                self.hosts.remove(key);
            }
            return None;
        };
        host.dialing += 1;
        self.totals.waiters -= 1;
        self.totals.dialing += 1;
        let permit = DialPermit {
            id: ConnId(bump(&mut self.last_conn)),
            key: key.clone(),
        };
        Some(Grant::Dial { ticket, permit })
    }

    /// Evicts least recently used idle connections after a check-in to `key`.
    fn enforce_idle_limits(&mut self, key: &Key) {
        if let Some(host) = self.hosts.get_mut(key)
            && host.idle.len() > self.config.max_idle_per_host
            && let Some(conn) = host.idle.pop_back()
        {
            host.took(&conn);
            self.totals.idle -= 1;
            self.closed.close(conn.handle, CloseReason::MaxIdlePerHost);
            if host.is_empty() {
                self.hosts.remove(key);
            }
        }
        if self.totals.idle <= self.config.max_idle_total {
            return;
        }
        // Global LRU: each host's back is its oldest; the smallest `seq` wins.
        while self.totals.idle > self.config.max_idle_total {
            let hosts = self.hosts.values_mut();
            let oldest = hosts.min_by_key(|h| h.idle.back().map_or(u64::MAX, |c| c.seq));
            let Some((host, conn)) = oldest.and_then(|h| h.idle.pop_back().map(|c| (h, c))) else {
                break;
            };
            host.took(&conn);
            self.totals.idle -= 1;
            self.closed.close(conn.handle, CloseReason::MaxIdleTotal);
        }
        // The evicted conn's host may now hold nothing: drop such entries.
        self.hosts.retain(|_, h| !h.is_empty());
    }

    /// Panics if the pool's bookkeeping is inconsistent. For tests and fuzzing.
    #[cfg(any(test, fuzzing))]
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let (cap, config) = (self.config.conn_cap(), &self.config);
        let mut sums = [0; 4]; // idle, in use, dialing, waiters
        let mut tickets = alloc::collections::BTreeSet::new();
        for (key, h) in &self.hosts {
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
            let mut pairs = h.idle.iter().zip(h.idle.iter().skip(1));
            assert!(pairs.all(|(a, b)| a.seq > b.seq), "{key}: not MRU");
            assert_eq!(h.next_expiry, h.earliest_expiry(), "{key}: next_expiry");
            assert!(
                h.waiters.iter().all(|t| tickets.insert(*t)),
                "ticket queued twice"
            );
            let counts = [h.idle.len(), h.in_use, h.dialing, h.waiters.len()];
            sums.iter_mut().zip(counts).for_each(|(sum, n)| *sum += n);
        }
        let t = &self.totals;
        assert_eq!(
            sums,
            [t.idle, t.in_use, t.dialing, t.waiters],
            "totals out of step"
        );
        assert!(t.idle <= config.max_idle_total, "over max_idle_total");
    }
}

mod checkout;
mod config;
mod stats;

pub use checkout::{Checkout, ConnId, DialPermit, Grant, Idle, Ticket};
pub use config::{Key, PoolConfig, ProxyMode, Scheme, Via};
pub use stats::{ClosedCounts, HostStats, PoolStats};

#[cfg(test)]
mod tests;
