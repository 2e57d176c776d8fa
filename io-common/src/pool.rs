//! Not part of the public API; used by the backends.
//!
//! The pool glue of the threaded backends: `proto::pool::Pool` behind a
//! mutex, closing and reporting what it gives up. Every decision is the
//! core's; a backend adds only its waiting primitive ([`Waiting`]: a
//! condition variable for blocking threads, a oneshot channel per tokio
//! task) and the checkout that parks on it.
//!
//! ```
//! use std::collections::HashMap;
//! use roundtrip_io::pool::{Got, PoolConn, SharedPool, Waiting};
//! use roundtrip_io::proto::conn::{ConnConfig, Connection};
//! use roundtrip_io::proto::pool::{ConnId, Grant, Key, PoolConfig, Scheme, Ticket};
//! use roundtrip_io::proto::CloseReason;
//! use roundtrip_io::proto::time::Instant;
//! use roundtrip_io::Clock;
//!
//! struct Conn { id: ConnId, key: Key, proto: Connection }
//! impl PoolConn for Conn {
//!     fn id(&self) -> ConnId { self.id }
//!     fn key(&self) -> &Key { &self.key }
//!     fn proto(&self) -> &Connection { &self.proto }
//!     fn shrink_for_idle(&mut self) {}
//! }
//!
//! /// Grants wait in a map until their waiter looks.
//! struct Polling;
//! impl Waiting<Conn> for Polling {
//!     type Parked = HashMap<Ticket, Grant<Conn>>;
//!     fn hand_over(&self, parked: &mut Self::Parked, grant: Grant<Conn>) -> Result<(), Grant<Conn>> {
//!         parked.insert(grant.ticket(), grant);
//!         Ok(())
//!     }
//! }
//!
//! let pool = SharedPool::new(PoolConfig::default(), Polling, Clock::new(), None);
//! let key = Key::new(Scheme::Http, "example.com", 80);
//! let Ok(Got::Dial(permit)) = pool.checkout(&key, Instant::ZERO, |_, ticket| ticket) else { panic!("a dial") };
//! let conn = Conn { id: permit.id(), key: key.clone(), proto: Connection::new(ConnConfig::default()) };
//! pool.dial_succeeded(permit);
//! assert_eq!(pool.stats().in_use, 1);
//! pool.discard(conn, CloseReason::Error);
//! assert_eq!(pool.stats().in_use, 0);
//! ```

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use roundtrip_proto::conn::Connection;
use roundtrip_proto::pool::{
    Checkout, ConnId, DialPermit, Grant, Key, Pool, PoolConfig, PoolStats, Ticket,
};
use roundtrip_proto::time::Instant;
use roundtrip_proto::trace::TraceEvent;
use roundtrip_proto::{CloseReason, Reuse};

use crate::{Clock, Tracer};

/// What the shared pool needs of a backend's connection.
pub trait PoolConn {
    /// The id the pool knows it by.
    fn id(&self) -> ConnId;
    /// Where it is connected.
    fn key(&self) -> &Key;
    /// The core's state of it, which gives the check-in verdict.
    fn proto(&self) -> &Connection;
    /// Before it goes idle: gives back memory beyond what an idle connection
    /// may hold ([`buf::shrink_for_idle`](crate::buf::shrink_for_idle)).
    fn shrink_for_idle(&mut self);
    /// The request it carries, taken when it is checked in or closed so
    /// the pool's trace events name it; `None` for connection types that do
    /// not keep it.
    fn take_request(&mut self) -> Option<crate::trace::RequestId> {
        None
    }
    /// Just before the pool closes it (by dropping it): sends what must go
    /// out first, without waiting ([`Link::goodbye`](crate::exchange::Link::goodbye):
    /// a TLS `close_notify`). Nothing by default.
    fn goodbye(&mut self) {}
}

/// Implements [`PoolConn`] for a connection type with the fields `id:
/// ConnId`, `key: Key`, `proto: Connection`, `read_buf: BytesMut`,
/// `write_buf: Vec<u8>`, `tail_buf: Vec<u8>`, `sizer: ReadSizer` and
/// `idle_since: std::time::Instant` (the blocking and tokio backends' `Conn`).
///
/// ```
/// use roundtrip_io::proto::conn::Connection;
/// use roundtrip_io::proto::pool::{ConnId, Key};
///
/// struct Conn {
///     id: ConnId,
///     key: Key,
///     proto: Connection,
///     read_buf: bytes::BytesMut,
///     write_buf: Vec<u8>,
///     tail_buf: Vec<u8>,
///     sizer: roundtrip_io::buf::ReadSizer,
///     idle_since: std::time::Instant,
/// }
/// roundtrip_io::impl_pool_conn!(Conn);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! impl_pool_conn {
    ($conn:ty) => {
        impl $crate::pool::PoolConn for $conn {
            fn id(&self) -> $crate::proto::pool::ConnId {
                self.id
            }
            fn key(&self) -> &$crate::proto::pool::Key {
                &self.key
            }
            fn proto(&self) -> &$crate::proto::conn::Connection {
                &self.proto
            }
            fn shrink_for_idle(&mut self) {
                $crate::buf::shrink_for_idle(
                    &mut self.read_buf,
                    &mut self.write_buf,
                    &mut self.tail_buf,
                );
                self.sizer.end_exchange(&mut self.read_buf);
                self.idle_since = ::std::time::Instant::now();
            }
        }
    };
}

/// A backend's waiting primitive: how a grant reaches the waiter it names.
pub trait Waiting<C> {
    /// The waiters, kept under the pool's lock.
    type Parked: Default;
    /// Hands `grant` to its waiter, under the lock; gives it back when
    /// no waiter takes it (it is then returned to the pool).
    fn hand_over(&self, parked: &mut Self::Parked, grant: Grant<C>) -> Result<(), Grant<C>>;
}

/// What a checkout gave.
// Short-lived (returned once per checkout, then unpacked): boxing the
// connection would cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Got<C> {
    /// A connection from the idle set, to be checked for staleness by the
    /// caller, and how long it sat idle.
    Idle(C, Duration),
    /// A connection a check-in handed to this waiter, and how long ago
    /// (the waiter may have been slow to take it): checked like an idle
    /// one.
    Handed(C, Duration),
    /// Permission to dial a new one.
    Dial(DialPermit),
}

impl<C> Got<C> {
    /// What a waiter's `grant` gives it, taken at `now`: a connection a
    /// check-in handed over counts as idle since that check-in, so one
    /// whose waiter was slow to take it (an async task not polled for a
    /// while) is probed like any other connection idle that long.
    pub fn granted(grant: Grant<C>, now: Instant) -> Self {
        match grant {
            Grant::Conn { idle, .. } => {
                let waited = idle.idle_at(now);
                Got::Handed(idle.handle, waited)
            }
            Grant::Dial { permit, .. } => Got::Dial(permit),
        }
    }
}

/// What the pool's lock guards: the core's pool and the parked waiters.
#[derive(Debug)]
pub struct PoolState<C, P> {
    /// The core's pool over the backend's connections.
    pub pool: Pool<C>,
    /// The waiters ([`Waiting::Parked`]).
    pub parked: P,
    /// The latest time a caller brought: times are read outside the lock,
    /// so a later call may bring an earlier one; the pool sees them in
    /// order (its idle lists rely on it).
    now: Instant,
    /// When the backend's alarm ([`SharedPool::set_alarm`]) was last asked
    /// to run [`SharedPool::expire`]; `None` once it did, or never asked.
    armed: Option<Instant>,
    /// The times the alarm was called with that have not gone off yet
    /// (each a task or an entry waiting in the backend): the alarm is not
    /// called twice for one time. Those past are forgotten, so the list
    /// holds future times only, one per alarm pending.
    pending: Vec<Instant>,
}

impl<C, P> PoolState<C, P> {
    /// `now`, or the latest time the pool saw if that is later.
    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }
}

/// The core's pool behind a mutex, shared by the clones of a client.
/// Dropped (with the last clone), it closes its idle connections as
/// [`close_idle`](Self::close_idle) does.
pub struct SharedPool<C: PoolConn, W: Waiting<C>> {
    state: Mutex<PoolState<C, W::Parked>>,
    waiting: W,
    clock: Clock,
    /// Reports connections kept and closed; called only outside the lock.
    trace: Option<Tracer>,
    /// How the backend runs [`expire`](Self::expire) at a time it is given.
    alarm: OnceLock<Alarm>,
}

/// A backend's alarm: called (outside the pool's lock) with the time the
/// pool's next idle connection expires, whenever that is earlier than the
/// time it was last called with, it makes [`SharedPool::expire`] run then,
/// with that time (a thread that sleeps until then, a runtime task with a
/// timer). Go closes an idle connection on its own timer in the same way
/// (`IdleConnTimeout`); without an alarm, expired connections are closed
/// at the pool's next checkout.
pub type Alarm = Box<dyn Fn(Instant) + Send + Sync>;

impl<C: PoolConn, W: Waiting<C>> SharedPool<C, W> {
    /// An empty pool with `config`'s policy.
    pub fn new(config: PoolConfig, waiting: W, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool {
            state: Mutex::new(PoolState {
                pool: Pool::new(config),
                parked: W::Parked::default(),
                now: Instant::ZERO,
                armed: None,
                pending: Vec::new(),
            }),
            waiting,
            clock,
            trace,
            alarm: OnceLock::new(),
        }
    }

    /// Sets the backend's [`Alarm`] (once; later calls are ignored).
    pub fn set_alarm(&self, alarm: Alarm) {
        let _ = self.alarm.set(alarm);
    }

    /// The alarm went off for `fired_for` (a time it was called with), at
    /// `now`: closes the idle connections expired by then, and calls the
    /// alarm again for the next expiry.
    pub fn expire(&self, fired_for: Instant, now: Instant) {
        let mut st = self.lock();
        let now = st.advance(now);
        // This alarm, or an earlier one that was lost (a task with no
        // runtime left to run it): asked again below for what is next.
        if st
            .armed
            .is_some_and(|armed| armed == fired_for || armed <= now)
        {
            st.armed = None;
        }
        st.pending.retain(|&at| at != fired_for && at > now);
        st.pool.handle_timeout(now);
        self.settle(st);
    }

    /// Lets the lock go, then closes what the pool gave up and calls the
    /// alarm if the next expiry moved earlier: after any call that may
    /// have checked a connection in (with [`redeliver`](Self::redeliver)).
    pub fn settle(&self, mut st: MutexGuard<'_, PoolState<C, W::Parked>>) {
        let closed = take_closed(&mut st);
        let wake = self.wake_at(&mut st);
        drop(st);
        self.close(closed, None);
        self.ring(wake);
    }

    /// The time to call the alarm with, if the pool's next expiry is
    /// earlier than the time it was last called with, or it went off.
    #[inline]
    fn wake_at(&self, st: &mut PoolState<C, W::Parked>) -> Option<Instant> {
        self.alarm.get()?;
        let next = st.pool.poll_timeout()?;
        if st.armed.is_some_and(|armed| armed <= next) {
            return None;
        }
        st.armed = Some(next);
        // An alarm still pending for this very time (a connection idle
        // without a hint, while a hinted one came and went) goes off then.
        if st.pending.contains(&next) {
            return None;
        }
        st.pending.push(next);
        Some(next)
    }

    /// Calls the alarm for `wake`; outside the lock.
    #[inline]
    fn ring(&self, wake: Option<Instant>) {
        if let (Some(at), Some(alarm)) = (wake, self.alarm.get()) {
            alarm(at);
        }
    }

    /// The state, locked. A panic while it was held cannot leave the
    /// pool's counters half-updated in a way that matters more than losing
    /// the client, so a poisoned lock is taken as it is.
    pub fn lock(&self) -> MutexGuard<'_, PoolState<C, W::Parked>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The waiting primitive.
    pub fn waiting(&self) -> &W {
        &self.waiting
    }

    /// After expiring idle connections: an idle connection or permission to
    /// dial; or, when the host is at `max_conns_per_host`, a place in the
    /// FIFO queue, which `park` registers under the same lock (so no grant
    /// can come before the waiter) and whose value is returned. `now` is
    /// the caller's time, read on its [`Clock`] (the pool reads none).
    pub fn checkout<T>(
        &self,
        key: &Key,
        now: Instant,
        park: impl FnOnce(&mut W::Parked, Ticket) -> T,
    ) -> Result<Got<C>, T> {
        let mut st = self.lock();
        let now = st.advance(now);
        st.pool.handle_timeout(now);
        // An alarm that should have gone off and did not (its task had no
        // runtime to run on) is asked again at the next check-in.
        if st.armed.is_some_and(|armed| armed <= now) {
            st.armed = None;
            st.pending.retain(|&at| at > now);
        }
        // Connections that expired meanwhile are closed (and traced) before
        // the checkout takes anything: a tracer that panics then leaves no
        // connection, permit or place in the queue in the air.
        let expired = take_closed(&mut st);
        if !expired.is_empty() {
            drop(st);
            self.close(expired, None);
            st = self.lock();
        }
        let got = match st.pool.checkout(key, now) {
            Checkout::Idle(idle) => Ok(Got::Idle(idle.handle, idle.idle_for)),
            Checkout::Dial(permit) => Ok(Got::Dial(permit)),
            Checkout::Wait(ticket) => Err(park(&mut st.parked, ticket)),
        };
        let closed = take_closed(&mut st);
        drop(st);
        self.close(closed, None);
        got
    }

    /// A connection will not come back (stale, broken, or abandoned mid-way):
    /// close it, free its slot.
    pub fn discard(&self, mut conn: C, reason: CloseReason) {
        let request = conn.take_request();
        let mut st = self.lock();
        let grant = st.pool.discard(conn.id(), conn.key(), reason);
        self.deliver(&mut st, grant);
        self.settle(st);
        self.close(vec![(conn, reason)], request);
    }

    /// Returns a connection after its exchange, at `now`; the core's
    /// verdict decides whether it is kept, handed to a waiter, or closed.
    pub fn checkin(&self, mut conn: C, now: Instant) {
        let request = conn.take_request();
        let verdict = conn.proto().checkin_verdict();
        if verdict == Reuse::Yes {
            conn.shrink_for_idle();
        }
        let keep_alive = conn.proto().keep_alive_timeout();
        let (id, key) = (conn.id(), conn.key().clone());
        let mut st = self.lock();
        let now = st.advance(now);
        let grant = st.pool.checkin(id, &key, conn, verdict, keep_alive, now);
        self.deliver(&mut st, grant);
        let closed = take_closed(&mut st);
        // Without a server's hint, a connection going idle now expires
        // after every one armed for before (times only grow here): the
        // alarm needs no new time then, unless none is set.
        let wake = match st.armed.is_none() || keep_alive.is_some() {
            true => self.wake_at(&mut st),
            false => None,
        };
        drop(st);
        if let Some(trace) = &self.trace {
            let own = closed.iter().find(|(c, _)| c.id() == id).map(|&(_, r)| r);
            trace.emit_for(request, &TraceEvent::put_idle(id, own));
        }
        // Its own close, if refused, is the request's; evictions are no one's.
        let (own, others): (Vec<_>, Vec<_>) = closed.into_iter().partition(|(c, _)| c.id() == id);
        self.close(own, request);
        self.close(others, None);
        self.ring(wake);
    }

    /// The dial a checkout permitted succeeded.
    pub fn dial_succeeded(&self, permit: DialPermit) {
        self.lock().pool.dial_succeeded(permit);
    }

    /// The dial a checkout permitted failed: its slot goes to the next waiter.
    pub fn dial_failed(&self, permit: DialPermit) {
        let mut st = self.lock();
        let grant = st.pool.dial_failed(permit);
        self.deliver(&mut st, grant);
        self.settle(st);
    }

    /// What a waiter's `grant` gives it, taken now ([`Got::granted`], at
    /// the pool's time, which the grant's check-in time never passes).
    pub fn take_grant(&self, st: &mut PoolState<C, W::Parked>, grant: Grant<C>) -> Got<C> {
        let now = st.advance(self.clock.now());
        Got::granted(grant, now)
    }

    /// Pool counters.
    pub fn stats(&self) -> PoolStats {
        self.lock().pool.stats()
    }

    /// Closes every idle connection ([`Pool::close_idle`]), each after its
    /// [`goodbye`](PoolConn::goodbye).
    pub fn close_idle(&self) {
        let mut st = self.lock();
        st.pool.close_idle();
        let closed = take_closed(&mut st);
        drop(st);
        self.close(closed, None);
    }

    /// Hands a grant to its waiter; one no waiter takes goes back to the
    /// pool, which may grant it to the next.
    pub fn deliver(&self, st: &mut PoolState<C, W::Parked>, mut grant: Option<Grant<C>>) {
        // Bounded: each pass hands a grant to a different queued waiter.
        while let Some(g) = grant.take() {
            if let Err(g) = self.waiting.hand_over(&mut st.parked, g) {
                grant = self.give_back(st, g);
            }
        }
    }

    /// Returns a grant nobody took: a connection is checked in again, a
    /// dial permit counts as a failed dial. Returns the grant that frees.
    fn give_back(&self, st: &mut PoolState<C, W::Parked>, grant: Grant<C>) -> Option<Grant<C>> {
        match grant {
            Grant::Conn { idle, .. } => {
                let key = idle.handle.key().clone();
                let keep_alive = idle.handle.proto().keep_alive_timeout();
                let now = st.advance(self.clock.now());
                // Idle since the check-in that granted it, not since now.
                st.pool.give_back(idle, &key, Reuse::Yes, keep_alive, now)
            }
            Grant::Dial { permit, .. } => st.pool.dial_failed(permit),
        }
    }

    /// [`deliver`](Self::deliver)s the grant a waiter that gave up had
    /// already received, as if it had never been taken; the caller then
    /// [`settle`](Self::settle)s (a connection checked in again may evict
    /// another, and move the next expiry).
    pub fn redeliver(&self, st: &mut PoolState<C, W::Parked>, grant: Grant<C>) {
        let next = self.give_back(st, grant);
        self.deliver(st, next);
    }

    /// Closes connections the pool gave up (dropping one closes its
    /// socket), reporting each as `request`'s; called outside the lock.
    #[inline]
    fn close(&self, closed: Vec<(C, CloseReason)>, request: Option<crate::trace::RequestId>) {
        if closed.is_empty() {
            return; // the common case, three times a request
        }
        for (mut conn, reason) in closed {
            if let Some(trace) = &self.trace {
                trace.emit_for(
                    request,
                    &TraceEvent::ConnClosed {
                        id: conn.id(),
                        reason,
                    },
                );
            }
            // A switched connection's socket is the caller's now.
            if reason != CloseReason::Switched {
                conn.goodbye();
            }
            drop(conn);
        }
    }
}

impl<C: PoolConn, W: Waiting<C>> Drop for SharedPool<C, W> {
    fn drop(&mut self) {
        self.close_idle();
    }
}

/// What the pool evicted, expired or refused at check-in, to close once the
/// lock is let go.
fn take_closed<C, P>(st: &mut PoolState<C, P>) -> Vec<(C, CloseReason)> {
    // Bounded: each pass takes one handle off the pool's queue.
    std::iter::from_fn(|| st.pool.take_closed()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::BytesMut;
    use roundtrip_proto::conn::{ConnConfig, Connection};
    use roundtrip_proto::pool::{Scheme, Ticket};

    use super::*;

    /// A connection that counts its closes.
    struct TestConn {
        id: ConnId,
        key: Key,
        proto: Connection,
        closes: Arc<AtomicUsize>,
    }

    impl PoolConn for TestConn {
        fn id(&self) -> ConnId {
            self.id
        }
        fn key(&self) -> &Key {
            &self.key
        }
        fn proto(&self) -> &Connection {
            &self.proto
        }
        fn shrink_for_idle(&mut self) {}
    }

    impl Drop for TestConn {
        fn drop(&mut self) {
            self.closes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Grants wait in a map until their waiter looks.
    struct Polling;

    impl Waiting<TestConn> for Polling {
        type Parked = HashMap<Ticket, Grant<TestConn>>;
        fn hand_over(
            &self,
            parked: &mut Self::Parked,
            grant: Grant<TestConn>,
        ) -> Result<(), Grant<TestConn>> {
            parked.insert(grant.ticket(), grant);
            Ok(())
        }
    }

    type Rings = Arc<Mutex<Vec<Duration>>>;

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    /// A pool whose alarm records the times it is called with.
    fn pool(config: PoolConfig) -> (SharedPool<TestConn, Polling>, Rings) {
        let pool = SharedPool::new(config, Polling, Clock::new(), None);
        let rings = Rings::default();
        let seen = rings.clone();
        pool.set_alarm(Box::new(move |at| {
            seen.lock()
                .unwrap()
                .push(at.saturating_since(Instant::ZERO));
        }));
        (pool, rings)
    }

    /// A connection that carried one GET, answered with `fields`.
    fn dialed(
        pool: &SharedPool<TestConn, Polling>,
        key: &Key,
        fields: &str,
        closes: &Arc<AtomicUsize>,
    ) -> TestConn {
        let Ok(Got::Dial(permit)) = pool.checkout(key, at(0), |_, t| t) else {
            panic!("a dial")
        };
        let id = permit.id();
        pool.dial_succeeded(permit);
        let mut proto = Connection::new(ConnConfig::default());
        let mut out = Vec::new();
        let head = roundtrip_proto::encode::RequestHead {
            method: b"GET",
            target: b"/",
            host: Some(b"h"),
            body: roundtrip_proto::encode::BodyFraming::None,
            preset: None,
            expect_continue: false,
            close: false,
        };
        let none: [(&[u8], &[u8]); 0] = [];
        proto.start(&head, none, at(0), &mut out).expect("started");
        proto.handle_written(out.len(), at(0));
        let answer = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 0\r\n\r\n");
        let mut buf = BytesMut::from(answer.as_bytes());
        while proto.poll_event(&mut buf).expect("decoded").is_some() {}
        let closes = closes.clone();
        TestConn {
            id,
            key: key.clone(),
            proto,
            closes,
        }
    }

    /// A pool with its alarm recorded, one host, and a close counter.
    struct Harness {
        pool: SharedPool<TestConn, Polling>,
        rings: Rings,
        key: Key,
        closes: Arc<AtomicUsize>,
    }

    impl Harness {
        fn new(config: PoolConfig) -> Harness {
            let (pool, rings) = pool(config);
            let key = Key::new(Scheme::Http, "h", 80);
            let closes = Arc::new(AtomicUsize::new(0));
            Harness {
                pool,
                rings,
                key,
                closes,
            }
        }

        /// A connection in use, its answer's extra `fields` read.
        fn conn(&self, fields: &str) -> TestConn {
            dialed(&self.pool, &self.key, fields, &self.closes)
        }

        /// The times the alarm was called with, in seconds.
        fn rings(&self) -> Vec<u64> {
            self.rings
                .lock()
                .unwrap()
                .iter()
                .map(Duration::as_secs)
                .collect()
        }

        fn closes(&self) -> usize {
            self.closes.load(Ordering::SeqCst)
        }
    }

    fn idle_10s() -> PoolConfig {
        PoolConfig::default().idle_timeout(Some(Duration::from_secs(10)))
    }

    /// A connection going idle asks the alarm for its expiry when that is
    /// the pool's earliest; the alarm's call closes it then, and asks for
    /// the next.
    #[test]
    fn idle_connections_expire_on_the_alarm() {
        let h = Harness::new(idle_10s());
        let (a, b) = (h.conn(""), h.conn(""));
        h.pool.checkin(a, at(1));
        h.pool.checkin(b, at(2));
        assert_eq!(h.rings(), [11]);
        h.pool.expire(at(11), at(11));
        assert_eq!((h.closes(), h.pool.stats().idle), (1, 1));
        h.pool.expire(at(12), at(12));
        assert_eq!(h.closes(), 2);
        assert_eq!(h.rings(), [11, 12]);
    }

    /// A tracer that panics on the close of a connection a checkout found
    /// expired leaves nothing in the air: before, the checkout had taken
    /// its permit to dial when the trace panicked, and the host counted a
    /// dial for ever.
    #[test]
    fn a_tracer_panicking_at_an_expiry_leaves_no_permit() {
        let tracer = crate::Tracer::new(|event| {
            if matches!(event, TraceEvent::ConnClosed { .. }) {
                panic!("a tracer bug");
            }
        });
        let pool = SharedPool::new(idle_10s(), Polling, Clock::new(), Some(tracer));
        let key = Key::new(Scheme::Http, "h", 80);
        let closes = Arc::new(AtomicUsize::new(0));
        let conn = dialed(&pool, &key, "", &closes);
        pool.checkin(conn, at(1)); // no alarm: its expiry is found at the next checkout
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.checkout(&key, at(20), |_, t| t).is_ok()
        }));
        assert!(taken.is_err(), "the tracer's panic comes through");
        let stats = pool.stats();
        assert_eq!(
            (stats.dialing, stats.in_use, stats.idle),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(closes.load(Ordering::SeqCst), 1);
        assert!(matches!(
            pool.checkout(&key, at(20), |_, t| t),
            Ok(Got::Dial(_))
        ));
    }

    /// An alarm that was lost (its task never ran) does not stop the
    /// alarms: the next one that goes off sets the alarm again.
    #[test]
    fn a_lost_alarm_does_not_stop_the_next() {
        let h = Harness::new(idle_10s());
        let (a, b, c) = (h.conn(""), h.conn("Keep-Alive: timeout=3\r\n"), h.conn(""));
        h.pool.checkin(a, at(1)); // rings for 11 s
        h.pool.checkin(b, at(2)); // rings for 2 + 3 - 1 = 4 s: lost
        h.pool.expire(at(11), at(11));
        assert_eq!(h.closes(), 2);
        h.pool.checkin(c, at(12));
        assert_eq!(h.rings(), [11, 4, 22]);
    }

    /// One alarm per time: a connection idle without a hint keeps the
    /// alarm set for it while a hinted one's alarm comes and goes.
    #[test]
    fn an_alarm_pending_is_not_set_again() {
        let h = Harness::new(idle_10s());
        let (a, b) = (h.conn(""), h.conn("Keep-Alive: timeout=3\r\n"));
        h.pool.checkin(a, at(1)); // rings for 11 s
        h.pool.checkin(b, at(2)); // rings for 2 + 3 - 1 = 4 s
        h.pool.expire(at(4), at(4)); // closes b; a's 11 s is pending still
        assert_eq!(h.closes(), 1);
        assert_eq!(h.rings(), [11, 4]);
        h.pool.expire(at(11), at(11));
        assert_eq!((h.closes(), h.pool.stats().idle), (2, 0));
    }

    /// A grant its waiter gave up goes back idle with the server's
    /// `Keep-Alive` hint (not the pool's longer idle timeout), and a
    /// connection its return evicts is closed at once.
    #[test]
    fn a_grant_given_back_keeps_its_hint_and_closes_what_it_evicts() {
        let h = Harness::new(
            PoolConfig::default()
                .idle_timeout(Some(Duration::from_secs(90)))
                .max_conns_per_host(Some(2))
                .max_idle_per_host(1),
        );
        let (a, b) = (h.conn("Keep-Alive: timeout=5\r\n"), h.conn(""));
        let Err(ticket) = h.pool.checkout(&h.key, at(1), |_, t| t) else {
            panic!("a wait at the cap")
        };
        h.pool.checkin(a, at(1)); // handed to the waiter
        h.pool.checkin(b, at(2)); // idle
        assert_eq!(h.rings(), [92]);
        let mut st = h.pool.lock();
        let grant = st.parked.remove(&ticket).expect("granted");
        h.pool.redeliver(&mut st, grant);
        h.pool.settle(st);
        // `a` is idle from 1 s (the check-in that granted it, as the
        // server counts) until 1 + 5 - 1 s (the 1 s margin), not 92 s;
        // `b`, evicted, is closed.
        assert_eq!((h.closes(), h.pool.stats().idle), (1, 1));
        assert_eq!(h.rings(), [92, 5]);
    }
}
