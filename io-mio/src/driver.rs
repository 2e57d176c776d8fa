//! The [`Driver`]: one `mio::Poll` (its own, or the caller's registry), a
//! slab of connections indexed by token, a slab of exchanges (each an
//! [`Exchange`](roundtrip_io::exchange::Exchange) machine, see `flow.rs`),
//! the core's pool policy over connection slots, one timer queue with one
//! timer per exchange, and the read buffer the connections share
//! (`roundtrip_io::shared_buf`).
//!
//! Every public entry point performs one input (a request, a readiness
//! event, the time), drives the exchanges it concerns, then settles: grants
//! the pool made are delivered to their waiters and the pool's timer is
//! re-armed. [`Driver::poll_timeout`] then says when to come back.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use bytes::BytesMut;

use crate::Upgraded;
use mio::event::Event;
use mio::{Events, Poll, Registry, Token};
use roundtrip_io::exchange::{Exchange, Settings};
use roundtrip_io::http;
use roundtrip_io::proto::pool::{Grant, Pool, PoolStats, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Config, Error};

use crate::RequestBuilder;
use crate::body::{Body, Receive, RequestId, Response};
use crate::conn::{Conn, ConnState};
use crate::flow::Entry;
use crate::slab::Slab;
use crate::timer::{Deadline, Popped, Target, Timers};
use roundtrip_io::shared_buf::SharedReadBuf;

/// A finished exchange: its id and its outcome.
///
/// ```no_run
/// let mut driver = roundtrip_mio::Driver::new()?;
/// driver.get("http://127.0.0.1:8080/").submit();
/// let finished: Vec<roundtrip_mio::Finished> = driver.run_until_idle()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub type Finished = (RequestId, Result<Response, Error>);

/// Most timer entries handled by one [`Driver::handle_timeout`]; the rest
/// stay due, and [`Driver::poll_timeout`] says so.
const MAX_TIMERS_PER_CALL: usize = 4096;

/// The poll and event buffer of a driver that owns its `Poll`.
struct OwnPoll {
    poll: Poll,
    events: Events,
}

/// A single-threaded HTTP/1.1 client: drives many exchanges over many
/// connections at once from one `mio::Poll`, each exchange a
/// [`roundtrip_io::exchange::Exchange`] machine (checkout, probe, retry,
/// redirects, gzip, timeouts, drain or close), with the core's pool policy
/// (`max_conns_per_host` waiters, idle expiry).
///
/// Submit requests ([`get`](Self::get) and the other verbs, a
/// [`RequestBuilder`] ended by `submit()`; or [`submit`](Self::submit) and
/// [`submit_with`](Self::submit_with) for an `http::Request` built by
/// hand), then turn the loop ([`run_once`](Self::run_once) or,
/// embedded in another event loop, [`handle_event`](Self::handle_event) +
/// [`handle_timeout`](Self::handle_timeout) + [`poll_timeout`](Self::poll_timeout))
/// and collect results with [`take_finished`](Self::take_finished).
///
/// ```no_run
/// use std::time::Duration;
/// use roundtrip_mio::{Body, Driver, http};
///
/// let mut driver = Driver::builder().max_conns_per_host(Some(4)).build()?;
/// let mut ids = Vec::new();
/// for n in 0..16 {
///     let request = http::Request::get(format!("http://127.0.0.1:8080/{n}"))
///         .body(Body::empty())
///         .unwrap();
///     ids.push(driver.submit(request));
/// }
/// while !driver.is_idle() {
///     driver.run_once(Some(Duration::from_millis(100)))?;
///     while let Some((id, result)) = driver.take_finished() {
///         match result {
///             Ok(response) => println!("{id}: {} ({} bytes)", response.status(), response.body().len()),
///             Err(e) => println!("{id}: {e}"),
///         }
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Driver {
    own: Option<OwnPoll>,
    pub(crate) registry: Registry,
    pub(crate) first_token: usize,
    /// One past the last token the driver may use (`usize::MAX`: unbounded).
    pub(crate) end_token: usize,
    /// The settings and default fields every exchange shares.
    pub(crate) settings: Arc<Settings>,
    max_body_bytes: u64,
    pub(crate) clock: Clock,
    pub(crate) conns: Slab<Conn>,
    pub(crate) exchanges: Slab<Entry>,
    /// Each exchange slot's timer.
    pub(crate) deadlines: Vec<Deadline>,
    pub(crate) pool: Pool<usize>,
    /// Exchanges queued for a connection, by ticket.
    pub(crate) waiters: HashMap<Ticket, usize>,
    /// Grants the pool made, to deliver at the next settle.
    pub(crate) grants: VecDeque<Grant<usize>>,
    pub(crate) timers: Timers,
    pub(crate) pool_timer: Deadline,
    /// The pool's idle set changed: its next expiry must be looked up.
    pub(crate) pool_dirty: bool,
    /// Exchanges cut short to be fair to others, with their serials.
    pub(crate) ready: Vec<(usize, u64)>,
    pub(crate) finished: VecDeque<Finished>,
    /// Results that came since `run_once` last returned (its count of
    /// waiting results told the caller of the others).
    pub(crate) unreported: bool,
    /// When the driver's own `Poll` last returned (`None`: never, the
    /// driver is embedded, or the batch that poll returned is still being
    /// handled): readiness that came later is not known yet.
    pub(crate) polled_at: Option<StdInstant>,
    /// A stream callback's panic, caught where it ran (its exchange
    /// failed) and passed on to the caller once the call is done, so that
    /// the other exchanges of the turn are not left undriven.
    pub(crate) panicked: Option<Box<dyn std::any::Any + Send>>,
    /// Switched connections waiting for [`Driver::take_upgraded`].
    pub(crate) upgraded: HashMap<RequestId, Upgraded>,
    /// Where request body pieces are read (reused).
    pub(crate) upload: BytesMut,
    /// The read buffer connections borrow for a read while they hold no
    /// bytes of their own.
    pub(crate) shared_read: SharedReadBuf,
    /// The exchanges whose lookup runs (slot, serial): while any does,
    /// the loop looks every [`LOOKUP_POLL`] at those whose lookup ended.
    pub(crate) looking: Vec<(usize, u64)>,
    /// The exchanges whose lookup ended (slot, serial), told by their
    /// lookups' wakers from the resolver's threads.
    pub(crate) lookups_ended: Arc<Mutex<Vec<(usize, u64)>>>,
}

/// The waker of an exchange's lookup: its end puts the exchange on the
/// list the loop looks at ([`Driver::lookups_ended`]).
pub(crate) struct LookupEnded {
    ended: Arc<Mutex<Vec<(usize, u64)>>>,
    exchange: (usize, u64),
}

impl LookupEnded {
    pub(crate) fn waker(
        ended: &Arc<Mutex<Vec<(usize, u64)>>>,
        slot: usize,
        serial: u64,
    ) -> std::task::Waker {
        std::task::Waker::from(Arc::new(LookupEnded {
            ended: Arc::clone(ended),
            exchange: (slot, serial),
        }))
    }
}

impl std::task::Wake for LookupEnded {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // A panic under this lock leaves plain data: go on with it.
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.push(self.exchange);
    }
}

/// How often the loop looks for finished lookups while any runs. (Not a
/// `mio::Waker`: a `Poll` may have only one, and an embedding caller may
/// own it; nor a token of the driver's range, which is its connections'.)
const LOOKUP_POLL: Duration = Duration::from_millis(2);

/// Dropped, the driver closes its idle connections as
/// [`close_idle`](Driver::close_idle) does (a TLS one says `close_notify`).
impl Drop for Driver {
    fn drop(&mut self) {
        self.close_idle();
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("exchanges", &self.exchanges.len())
            .field("connections", &self.conns.len())
            .field("finished", &self.finished.len())
            .field("pool", &self.pool.stats())
            .finish()
    }
}

impl Driver {
    /// A driver with the default settings and its own `Poll`.
    ///
    /// ```no_run
    /// let driver = roundtrip_mio::Driver::new()?;
    /// assert!(driver.is_idle());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Driver> {
        Driver::builder().build()
    }

    /// A builder to change the settings.
    ///
    /// ```no_run
    /// let driver = roundtrip_mio::Driver::builder().max_conns_per_host(Some(16)).build()?;
    /// assert_eq!(driver.config().pool.max_conns_per_host, Some(16));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> crate::DriverBuilder {
        crate::DriverBuilder::default()
    }

    pub(crate) fn with_parts(
        own: Option<(Poll, Events)>,
        registry: Registry,
        tokens: std::ops::Range<usize>,
        config: Config,
        max_body_bytes: u64,
    ) -> Driver {
        Driver {
            own: own.map(|(poll, events)| OwnPoll { poll, events }),
            registry,
            first_token: tokens.start,
            end_token: tokens.end,
            pool: Pool::new(config.pool),
            settings: Arc::new(Settings::new(config)),
            max_body_bytes,
            clock: Clock::new(),
            conns: Slab::new(),
            exchanges: Slab::new(),
            deadlines: Vec::new(),
            waiters: HashMap::new(),
            grants: VecDeque::new(),
            timers: Timers::default(),
            pool_timer: Deadline::default(),
            pool_dirty: false,
            ready: Vec::new(),
            finished: VecDeque::new(),
            unreported: false,
            polled_at: None,
            panicked: None,
            upgraded: HashMap::new(),
            upload: BytesMut::new(),
            shared_read: SharedReadBuf::default(),
            looking: Vec::new(),
            lookups_ended: Arc::default(),
        }
    }

    /// Lookups that ended: each exchange still waiting for its own goes on
    /// with its dial.
    fn on_lookups(&mut self, now: Instant) {
        if self.looking.is_empty() {
            return;
        }
        let ended =
            std::mem::take(&mut *self.lookups_ended.lock().unwrap_or_else(|p| p.into_inner()));
        for (ex, serial) in ended {
            let waiting =
                (self.exchanges.get(ex)).is_some_and(|e| e.serial == serial && e.lookup.is_some());
            if waiting && self.poll_lookup(ex, now) {
                self.drive(ex, now);
            }
        }
        // Those that got their answer, or ended, are no longer looked for.
        let exchanges = &self.exchanges;
        self.looking.retain(|&(ex, serial)| {
            exchanges
                .get(ex)
                .is_some_and(|e| e.serial == serial && e.lookup.is_some())
        });
    }

    /// The settings in force.
    ///
    /// ```no_run
    /// let driver = roundtrip_mio::Driver::new()?;
    /// assert!(driver.config().keep_alive);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.settings.config
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    ///
    /// ```no_run
    /// let driver = roundtrip_mio::Driver::new()?;
    /// assert_eq!(driver.stats().dials, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Closes the idle connections in the pool, a TLS one after its
    /// `close_notify` (Go's `CloseIdleConnections`); those in use are left
    /// to their requests. Dropping the driver does the same.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// driver.close_idle();
    /// assert_eq!(driver.stats().idle, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close_idle(&mut self) {
        self.pool.close_idle();
        self.reap();
        self.pool_dirty = true;
    }

    /// True when no exchange is in flight (finished ones may wait in
    /// [`take_finished`](Self::take_finished)).
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// driver.get("http://127.0.0.1:8080/").submit();
    /// assert!(!driver.is_idle());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_idle(&self) -> bool {
        self.exchanges.is_empty()
    }

    /// Whether `token` is in this driver's range: every token from the
    /// `first_token` it was built with upward
    /// ([`build_in`](crate::DriverBuilder::build_in)), or the range it was
    /// given ([`build_in_range`](crate::DriverBuilder::build_in_range)).
    ///
    /// ```no_run
    /// use mio::{Poll, Token};
    /// let poll = Poll::new()?;
    /// let driver = roundtrip_mio::Driver::builder().build_in(poll.registry(), Token(10))?;
    /// assert!(driver.owns(Token(10)) && !driver.owns(Token(3)));
    /// let driver = roundtrip_mio::Driver::builder().build_in_range(poll.registry(), 10..20)?;
    /// assert!(driver.owns(Token(19)) && !driver.owns(Token(20)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn owns(&self, token: Token) -> bool {
        (self.first_token..self.end_token).contains(&token.0)
    }

    /// Starts a `method` request of `uri`: a [`RequestBuilder`] to add
    /// headers, a query, auth, a body to, then
    /// [`submit`](RequestBuilder::submit) (body collected in memory) or
    /// [`submit_with`](RequestBuilder::submit_with). A `uri` that does not
    /// parse finishes the request at once with the error.
    ///
    /// ```no_run
    /// use roundtrip_mio::http::Method;
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let id = driver.request(Method::OPTIONS, "http://127.0.0.1:8080/").submit();
    /// let results = driver.run_until_idle()?;
    /// assert_eq!(results[0].0, id);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn request(
        &mut self,
        method: http::Method,
        uri: impl roundtrip_io::IntoUri,
    ) -> RequestBuilder<'_> {
        RequestBuilder::new(self, method, uri)
    }

    roundtrip_io::request_methods! {
        receiver: &mut,
        builder: RequestBuilder<'_>,
        setup: "let mut driver = roundtrip_mio::Driver::new().unwrap();",
        client: "driver",
    }

    /// A request that cannot be sent: it finishes at once with `error`,
    /// under an id no exchange holds.
    pub(crate) fn refuse(&mut self, error: Error) -> RequestId {
        let id = RequestId {
            serial: self.next_serial(),
            slot: usize::MAX,
        };
        self.finish_with(id, Err(error));
        id
    }

    /// A result for [`take_finished`](Self::take_finished).
    pub(crate) fn finish_with(&mut self, id: RequestId, result: Result<Response, Error>) {
        self.finished.push_back((id, result));
        self.unreported = true;
    }

    /// Submits `request`, built by hand; its body is collected in memory
    /// up to the builder's `max_body_bytes`. What
    /// [`RequestBuilder::submit`] calls. The result comes back from
    /// [`take_finished`](Self::take_finished) under the returned id.
    ///
    /// ```no_run
    /// use roundtrip_mio::{Body, Driver, http};
    /// let mut driver = Driver::new()?;
    /// let request = http::Request::post("http://127.0.0.1:8080/upload")
    ///     .body(Body::from("hello"))
    ///     .unwrap();
    /// let id = driver.submit(request);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit(&mut self, request: http::Request<Body>) -> RequestId {
        let max_bytes = self.max_body_bytes;
        self.submit_with(request, Receive::Collect { max_bytes })
    }

    /// Submits `request`, receiving its body as `receive` says.
    ///
    /// The request starts at once: on an idle pooled connection, on a new
    /// one, or queued when its host is at `max_conns_per_host`. A request
    /// that fails on a pooled connection is sent again on another
    /// connection when that is provably safe (nothing of it was written, or
    /// its method is idempotent and no byte of a response arrived, and its
    /// body can be sent again).
    ///
    /// ```no_run
    /// use roundtrip_mio::{Body, Driver, Flow, Receive, http};
    /// let mut driver = Driver::new()?;
    /// let request = http::Request::get("http://127.0.0.1:8080/big").body(Body::empty()).unwrap();
    /// let mut total = 0usize;
    /// driver.submit_with(request, Receive::stream(move |_head, data| {
    ///     total += data.len();
    ///     if total < 1 << 20 { Flow::Continue } else { Flow::Stop }
    /// }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_with(&mut self, request: http::Request<Body>, receive: Receive) -> RequestId {
        let now = self.clock.now();
        let serial = self.next_serial();
        let (parts, body) = request.into_parts();
        let settings = Arc::clone(&self.settings);
        let slot = self.exchanges.insert_with(|| {
            let ex = Exchange::new(settings, parts, body, now);
            Entry::new(ex, serial, receive)
        });
        if self.deadlines.len() <= slot {
            self.deadlines.resize(slot + 1, Deadline::default());
        }
        self.drive(slot, now);
        self.settle(now);
        self.pass_on_panic();
        RequestId { serial, slot }
    }

    /// Gives up on a request. Its result is never reported; a connection it
    /// was using is drained or closed as the core decides, then pooled or
    /// dropped. Returns false for an id that already finished.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let id = driver.get("http://127.0.0.1:8080/slow").submit();
    /// assert!(driver.cancel(id));
    /// assert!(!driver.cancel(id));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let Some(entry) = self.exchanges.get_mut(id.slot) else {
            return false;
        };
        if entry.serial != id.serial || entry.cancelled {
            return false;
        }
        entry.cancelled = true;
        let now = self.clock.now();
        let conn = entry.conn.and_then(|slot| self.conns.get_mut(slot));
        let link = conn
            .filter(|c| matches!(c.state, ConnState::Busy(ex) if ex == id.slot))
            .map(|c| &mut c.link);
        entry.ex.cancel(link, now);
        self.drive(id.slot, now);
        self.settle(now);
        self.pass_on_panic();
        true
    }

    /// Unwinds with a stream callback's panic caught during this call.
    fn pass_on_panic(&mut self) {
        if let Some(panic) = self.panicked.take() {
            std::panic::resume_unwind(panic);
        }
    }

    /// The connection of a request answered `101 Switching
    /// Protocols` (or a 2xx to CONNECT), handed over: its socket, no longer
    /// registered with the driver's poll (register
    /// [`socket_mut`](Upgraded::socket_mut) with your own), and the bytes
    /// that came after the head. It is a non-blocking `Read + Write`
    /// (`WouldBlock` comes through); over `https` its TLS session goes on
    /// in it (reads give plaintext, writes are sealed; records a write
    /// left waiting for the socket go with the next read, write or
    /// `flush`: watch for writability while
    /// [`wants_write`](Upgraded::wants_write) holds). The response itself
    /// finished with an empty
    /// body. `None` for any other request, or once taken. A switched
    /// connection waits here until taken: take it when its response
    /// finishes.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use roundtrip_mio::{Body, Driver, http};
    /// let mut driver = Driver::new()?;
    /// let request = http::Request::get("http://127.0.0.1:8080/chat")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "websocket")
    ///     .body(Body::empty())
    ///     .unwrap();
    /// let id = driver.submit(request);
    /// for (done, result) in driver.run_until_idle()? {
    ///     assert_eq!(done, id);
    ///     assert_eq!(result.map(|r| r.status().as_u16()).ok(), Some(101));
    /// }
    /// let mut upgraded = driver.take_upgraded(id).expect("switched");
    /// upgraded.write_all(b"hello")?; // non-blocking: register it with a Poll
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_upgraded(&mut self, id: RequestId) -> Option<Upgraded> {
        self.upgraded.remove(&id)
    }

    /// The next finished exchange, if any. Drain it after every call that
    /// moves the driver.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// driver.run_once(None)?;
    /// while let Some((id, result)) = driver.take_finished() {
    ///     println!("{id}: {:?}", result.map(|r| r.status()));
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_finished(&mut self) -> Option<Finished> {
        self.finished.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, at
    /// the latest: now when work is pending (reads or writes cut short for
    /// fairness, or results that came since [`run_once`](Self::run_once) or
    /// `handle_timeout` last returned: results already told of, taken or
    /// not, do not shorten the next wait). Waking earlier is harmless.
    ///
    /// ```no_run
    /// let driver = roundtrip_mio::Driver::new()?;
    /// assert_eq!(driver.poll_timeout(), None); // nothing in flight
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_timeout(&self) -> Option<StdInstant> {
        let unreported = self.unreported && !self.finished.is_empty();
        if !self.ready.is_empty() || !self.grants.is_empty() || unreported {
            return Some(StdInstant::now());
        }
        let next = self.timers.next().map(|at| self.clock.to_std(at));
        if self.looking.is_empty() {
            return next;
        }
        let soon = StdInstant::now() + LOOKUP_POLL;
        Some(next.map_or(soon, |at| at.min(soon)))
    }

    /// Handles one readiness event from the `Poll` the driver registered
    /// with. Returns false (and does nothing) for a token outside the
    /// driver's range ([`owns`](Self::owns)): one of the caller's sources.
    ///
    /// The range is the driver's alone: a token in it that no connection of
    /// the driver holds (a late event of a connection it just closed) is
    /// ignored, and true returned. The caller must register none of its own
    /// sources in the range; [`build_in_range`](crate::DriverBuilder::build_in_range)
    /// bounds it so the caller's tokens above it are safe too.
    ///
    /// ```no_run
    /// use mio::{Events, Poll, Token};
    /// let mut poll = Poll::new()?;
    /// let mut driver = roundtrip_mio::Driver::builder().build_in(poll.registry(), Token(1))?;
    /// let mut events = Events::with_capacity(256);
    /// poll.poll(&mut events, Some(std::time::Duration::from_millis(10)))?;
    /// for event in events.iter() {
    ///     if !driver.handle_event(event) {
    ///         // one of the caller's own sources
    ///     }
    /// }
    /// driver.handle_timeout(std::time::Instant::now());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle_event(&mut self, event: &Event) -> bool {
        if !self.owns(event.token()) {
            return false;
        }
        let now = self.clock.now();
        let slot = event.token().0 - self.first_token;
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_write_closed() || event.is_error();
        let closed = event.is_read_closed() || event.is_error();
        self.on_conn_event(slot, readable, writable, closed, now);
        self.settle(now);
        self.pass_on_panic();
        true
    }

    /// Acts on every deadline that passed by `now` (connect, read and write
    /// timeouts, the core's 100-continue, response-head and drain deadlines,
    /// total deadlines, idle expiry), and resumes work cut short for
    /// fairness. Early calls are harmless.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// driver.handle_timeout(std::time::Instant::now());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle_timeout(&mut self, now: StdInstant) {
        let now = self.clock.from_std(now);
        self.on_lookups(now);
        for (slot, serial) in std::mem::take(&mut self.ready) {
            if self.exchanges.get(slot).is_some_and(|e| e.serial == serial) {
                self.drive(slot, now);
            }
        }
        for _ in 0..MAX_TIMERS_PER_CALL {
            let Some((at, target)) = self.timers.pop_due(now) else {
                break;
            };
            self.on_timer(at, target, now);
        }
        self.settle(now);
        // What finished is there for `take_finished` now: an embedder that
        // takes results later is not woken at once for them again and again.
        self.unreported = false;
        self.pass_on_panic();
    }

    /// One turn of the loop on the driver's own `Poll`: waits for readiness
    /// or the next deadline (at most `timeout`; `None` = no limit of its own),
    /// handles what happened, and returns how many finished exchanges wait in
    /// [`take_finished`](Self::take_finished). A driver built with
    /// [`build_in`](crate::DriverBuilder::build_in) has no `Poll` of its own
    /// and returns an error.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// let id = driver.get("http://127.0.0.1:8080/").submit();
    /// while !driver.is_idle() {
    ///     driver.run_once(Some(Duration::from_secs(1)))?;
    /// }
    /// let (done, result) = driver.take_finished().expect("finished");
    /// assert_eq!(done, id);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let unreported = self.unreported && !self.finished.is_empty();
        let idle = self.is_idle() && self.conns.is_empty() && !unreported;
        if idle && timeout.is_none() && self.own.is_some() {
            // Nothing in flight and no connection to watch: nothing can
            // happen, however long it waits.
            return Ok(self.finished.len());
        }
        let Some(mut own) = self.own.take() else {
            return Err(io::Error::other(
                "this driver is embedded in another poll: use handle_event and handle_timeout",
            ));
        };
        let wait = match self.poll_timeout() {
            Some(at) => {
                let left = at.saturating_duration_since(StdInstant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        };
        let polled = match own.poll.poll(&mut own.events, wait) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        };
        // When the kernel was last asked: readiness after this is unknown.
        // Known only once the whole batch is applied: while its events are
        // handled, a checkout's probe must not trust it (a close later in
        // the batch is not seen yet).
        let polled_at = StdInstant::now();
        self.polled_at = None;
        // A stream callback that panics unwinds through here: the driver's
        // own `Poll` goes back first, or every later `run_once` would call
        // the driver embedded.
        // Each event on its own: the others of the batch (edge-triggered,
        // not reported again) are still handled after a panic.
        let mut first_panic = None;
        for event in own.events.iter() {
            let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.handle_event(event);
            }));
            if let Err(panic) = handled {
                first_panic.get_or_insert(panic);
            }
        }
        self.own = Some(own);
        self.polled_at = Some(polled_at);
        if let Some(panic) = first_panic {
            std::panic::resume_unwind(panic);
        }
        polled?;
        self.handle_timeout(StdInstant::now());
        self.unreported = false;
        Ok(self.finished.len())
    }

    /// Runs the loop until no exchange is in flight and returns every
    /// finished one. Each exchange is bounded by the configured timeouts;
    /// with all of them off, a server that never answers keeps this waiting.
    ///
    /// ```no_run
    /// let mut driver = roundtrip_mio::Driver::new()?;
    /// driver.get("http://127.0.0.1:8080/a").submit();
    /// driver.get("http://127.0.0.1:8080/b").submit();
    /// for (id, result) in driver.run_until_idle()? {
    ///     println!("{id}: {:?}", result.map(|r| r.status()));
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_until_idle(&mut self) -> io::Result<Vec<Finished>> {
        // Bounded by the exchanges' deadlines (see above). The results stay
        // in the driver until the end: a `run_once` that fails (a poll
        // error, an embedded driver, a callback's panic) leaves them to
        // `take_finished`.
        while !self.exchanges.is_empty() {
            self.run_once(None)?;
        }
        Ok(self.finished.drain(..).collect())
    }

    pub(crate) fn next_serial(&mut self) -> u64 {
        // One counter for every driver of the process: a `RequestId` of
        // another driver names none of this one's requests (each driver
        // counting from 1, `cancel` took another's id for one of its own).
        static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The token of the connection in `slot`; `None` beyond the range.
    pub(crate) fn token(&self, slot: usize) -> Option<Token> {
        let token = self.first_token.checked_add(slot)?;
        (token < self.end_token).then_some(Token(token))
    }

    /// Delivers pending grants and re-arms the pool's timer.
    pub(crate) fn settle(&mut self, now: Instant) {
        self.deliver_grants(now);
        if self.pool_dirty {
            self.pool_dirty = false;
            if let Some(at) = self.pool_timer.set(self.pool.poll_timeout()) {
                self.timers.push(at, Target::Pool);
            }
        }
    }

    fn on_timer(&mut self, at: Instant, target: Target, now: Instant) {
        let popped = match target {
            Target::Pool => self.pool_timer.on_pop(at, now),
            Target::Exchange { slot } => match self.deadlines.get_mut(slot) {
                Some(deadline) => deadline.on_pop(at, now),
                None => Popped::Stale,
            },
        };
        match (popped, target) {
            (Popped::Stale, _) => {}
            (Popped::Requeue(at), target) => self.timers.push(at, target),
            (Popped::Fire, Target::Pool) => {
                self.pool.handle_timeout(now);
                self.reap();
                self.pool_dirty = true;
            }
            (Popped::Fire, Target::Exchange { slot }) => self.on_deadline(slot, now),
        }
    }

    /// A readiness event for the connection in `slot`.
    fn on_conn_event(
        &mut self,
        slot: usize,
        readable: bool,
        writable: bool,
        closed: bool,
        now: Instant,
    ) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        // Hints, not facts: the event may be a late one of the connection
        // that held this slot (token) before, closed earlier in the same
        // batch. A stale `readable` costs one read that finds nothing; a
        // stale `closed` is checked on the socket before it counts
        // (`release_conn`).
        conn.peer_closed |= closed;
        conn.read_pending |= readable;
        match conn.state {
            ConnState::Connecting { .. } => self.on_connect_ready(slot, now),
            ConnState::Busy(ex) if readable || writable => self.drive(ex, now),
            ConnState::Busy(_) => {}
            ConnState::Idle if readable => self.on_idle_readable(slot),
            ConnState::Idle => {}
        }
    }

    /// Brings a connection's registered interest in line with its state
    /// (reregistering only on change).
    pub(crate) fn settle_conn(&mut self, slot: usize) {
        let Some(token) = self.token(slot) else {
            return; // never registered: no token in range
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let want = conn.wanted_interest();
        if want != conn.interest
            && self
                .registry
                .reregister(&mut conn.socket, token, want)
                .is_ok()
        {
            conn.interest = want;
        }
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn send<T: Send>() {}
    send::<Driver>();
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    /// A late event of a connection closed earlier in the same batch
    /// reaches the connection dialed into its slot (its token) meanwhile:
    /// its "closed" is a hint the socket must confirm, or a healthy
    /// connection is closed after its first exchange.
    #[test]
    fn a_late_close_event_does_not_close_a_healthy_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 4096];
            for _ in 0..2 {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if socket.write_all(answer).is_err() {
                    return;
                }
            }
        });
        let mut driver = crate::Driver::builder()
            .timeout(Some(Duration::from_secs(5)))
            .build()
            .unwrap();
        let url = format!("http://{addr}/");
        let first = driver.get(&url).submit();
        // The connection is dialing in slot 0; the late event of another
        // connection that held the slot says "closed".
        assert!(driver.conns.get(0).is_some(), "dialed at submit");
        let now = driver.clock.now();
        driver.on_conn_event(0, true, false, true, now);
        let done = driver.run_until_idle().unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, first);
        assert_eq!(done[0].1.as_ref().unwrap().body().as_ref(), b"ok");
        let idle = driver.conns.get(0).expect("kept");
        assert!(!idle.peer_closed, "a disproved hint goes");
        let second = driver.get(&url).submit();
        let done = driver.run_until_idle().unwrap();
        assert_eq!(done[0].0, second);
        assert!(done[0].1.is_ok(), "{:?}", done[0].1.as_ref().err());
        let stats = driver.stats();
        assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
        drop(driver);
        server.join().unwrap();
    }
}
