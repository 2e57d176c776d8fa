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

/// The URI scheme of a pooled connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS over TCP.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which connections are interchangeable: same scheme, host and port.
///
/// ```
/// use roundtrip_proto::pool::{Key, Scheme};
/// let key = Key::new(Scheme::Https, "Example.COM", 443);
/// assert_eq!(key.host(), "example.com");
/// assert_eq!(key.to_string(), "https://example.com:443");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    scheme: Scheme,
    /// Inline up to 23 bytes, so making a key per request allocates nothing.
    host: SmolStr,
    port: u16,
}

impl Key {
    /// A key for `host` (ASCII-lowercased here; IPv6 literals without brackets).
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        Key {
            scheme,
            host: host.to_ascii_lowercase_smolstr(),
            port,
        }
    }
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The lowercased host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, host, port) = (self.scheme.as_str(), &self.host, self.port);
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}")
        } else {
            write!(f, "{scheme}://{host}:{port}")
        }
    }
}

/// Pool limits and timeouts. Defaults:
///
/// | setting | default | Go `http.Transport` |
/// |---|---|---|
/// | `max_idle_per_host` | 32 | `MaxIdleConnsPerHost` |
/// | `max_idle_total` | 256 | `MaxIdleConns` |
/// | `max_conns_per_host` | `None` (unlimited) | `MaxConnsPerHost` |
/// | `idle_timeout` | `Some(90 s)` | `IdleConnTimeout` |
/// | `keep_alive_margin` | 1 s | (none) |
///
/// ```
/// use core::time::Duration;
/// use roundtrip_proto::pool::PoolConfig;
/// let config = PoolConfig::default().max_conns_per_host(Some(4)).idle_timeout(None);
/// assert_eq!(config.max_conns_per_host, Some(4));
/// assert_eq!(config.keep_alive_margin, Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most idle connections kept per key; the least recently used goes first.
    pub max_idle_per_host: usize,
    /// Most idle connections kept in all; the least recently used goes first.
    pub max_idle_total: usize,
    /// Most connections per key, dialing + in use + idle; `None` = no cap.
    /// `Some(0)` counts as `Some(1)`, since it would make every request wait.
    pub max_conns_per_host: Option<usize>,
    /// How long a connection may stay idle; `None` = as long as the server allows.
    pub idle_timeout: Option<Duration>,
    /// When the server announced `Keep-Alive: timeout=N`, an idle connection
    /// expires at `N - keep_alive_margin` (at once if `N <= margin`), so it is
    /// not used just as the server closes it. The earlier of this and
    /// `idle_timeout` wins.
    pub keep_alive_margin: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 32,
            max_idle_total: 256,
            max_conns_per_host: None,
            idle_timeout: Some(Duration::from_secs(90)),
            keep_alive_margin: Duration::from_secs(1),
        }
    }
}

impl PoolConfig {
    /// Sets [`PoolConfig::max_idle_per_host`].
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = n;
        self
    }
    /// Sets [`PoolConfig::max_idle_total`].
    pub fn max_idle_total(mut self, n: usize) -> Self {
        self.max_idle_total = n;
        self
    }
    /// Sets [`PoolConfig::max_conns_per_host`].
    pub fn max_conns_per_host(mut self, n: Option<usize>) -> Self {
        self.max_conns_per_host = n;
        self
    }
    /// Sets [`PoolConfig::idle_timeout`].
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`PoolConfig::keep_alive_margin`].
    pub fn keep_alive_margin(mut self, d: Duration) -> Self {
        self.keep_alive_margin = d;
        self
    }

    fn conn_cap(&self) -> usize {
        self.max_conns_per_host.map_or(usize::MAX, |n| n.max(1))
    }

    /// When a connection idle from `now` expires, and why: the earlier of the
    /// idle timeout and the server's Keep-Alive hint minus the margin.
    fn expiry(&self, keep_alive_timeout: Option<Duration>, now: Instant) -> Option<Expiry> {
        let idle = self.idle_timeout.map(|d| Expiry {
            at: now + d,
            reason: CloseReason::IdleTimeout,
        });
        let hint = keep_alive_timeout.map(|n| Expiry {
            at: now + n.saturating_sub(self.keep_alive_margin),
            reason: CloseReason::KeepAliveTimeout,
        });
        match (idle, hint) {
            (Some(idle), Some(hint)) => Some(if hint.at <= idle.at { hint } else { idle }),
            (idle, hint) => idle.or(hint),
        }
    }
}

/// A connection's identity, assigned when the pool permits its dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

impl ConnId {
    /// The number, for traces.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A place in the queue of requests waiting for a key; unique per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The number, for traces.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

/// An established connection handed out by the pool.
#[derive(Debug)]
pub struct Idle<H> {
    /// The adapter's handle.
    pub handle: H,
    /// Its identity, to pass back to [`Pool::checkin`] or [`Pool::discard`].
    pub id: ConnId,
    /// How long it sat idle; zero when handed over directly by a check-in.
    pub idle_for: Duration,
}

/// Permission to open one connection; its slot is reserved until the permit is
/// spent with [`Pool::dial_succeeded`] or returned with [`Pool::dial_failed`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "spend the permit with dial_succeeded or return it with dial_failed"]
pub struct DialPermit {
    id: ConnId,
    key: Key,
}

impl DialPermit {
    /// The id the new connection will have.
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// Where to dial.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// The answer to [`Pool::checkout`].
#[derive(Debug)]
#[must_use]
pub enum Checkout<H> {
    /// Use this idle connection (the most recently used one).
    Idle(Idle<H>),
    /// Open a new connection.
    Dial(DialPermit),
    /// Wait: a later call will return a [`Grant`] for this ticket.
    Wait(Ticket),
}

/// What a queued waiter receives; the adapter delivers it to the ticket holder.
#[derive(Debug)]
#[must_use = "deliver the grant to its waiter, or give it back to the pool"]
pub enum Grant<H> {
    /// A connection checked in by another request (late binding).
    Conn {
        /// The waiter served.
        ticket: Ticket,
        /// The connection, now in use by that waiter.
        idle: Idle<H>,
    },
    /// A slot freed up: the waiter may dial.
    Dial {
        /// The waiter served.
        ticket: Ticket,
        /// Its permit.
        permit: DialPermit,
    },
}

impl<H> Grant<H> {
    /// The waiter this grant is for.
    pub fn ticket(&self) -> Ticket {
        match self {
            Grant::Conn { ticket, .. } | Grant::Dial { ticket, .. } => *ticket,
        }
    }
}

/// How many connections were closed, per [`CloseReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedCounts {
    // Indexed by `reason as usize`: `CloseReason::ALL` is in declaration order
    // (checked by the test `close_reason_all_is_in_declaration_order`).
    counts: [u64; CloseReason::ALL.len()],
}

impl ClosedCounts {
    /// Connections closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.counts[reason as usize]
    }
    /// Connections closed for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|&r| (r, self.get(r)))
    }
    fn add(&mut self, reason: CloseReason) {
        self.counts[reason as usize] += 1;
    }
}

impl fmt::Debug for ClosedCounts {
    /// Only the reasons that occurred, by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().filter(|&(_, n)| n > 0))
            .finish()
    }
}

/// Pool-wide counters, from [`Pool::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections dialed successfully.
    pub dials: u64,
    /// Connections reused: idle ones checked out plus check-in handovers.
    pub reuses: u64,
    /// Idle connections now.
    pub idle: usize,
    /// Connections in use now.
    pub in_use: usize,
    /// Dials in progress now.
    pub dialing: usize,
    /// Requests queued now.
    pub waiters: usize,
    /// Connections closed so far, per reason.
    pub closed: ClosedCounts,
}

/// One key's gauges, from [`Pool::stats_for`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostStats {
    /// Idle connections.
    pub idle: usize,
    /// Connections in use.
    pub in_use: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Requests queued.
    pub waiters: usize,
}

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

#[cfg(test)]
mod tests {
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
        let Some(Grant::Conn { ticket, idle }) = pool.checkin(id, &a, 1, Reuse::Yes, None, t(1))
        else {
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
}
