//! `Client`: a blocking driver of [`Exchange`], the sans-IO request
//! machine. Read top to bottom: the client, then [`Flow`], which carries
//! out each [`Action`] on a socket and reports back. Every decision
//! (reuse, probe, retry, redirects, gzip, timeouts, drain) is the
//! machine's.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant as StdInstant;

use bytes::{Bytes, BytesMut};
use roundtrip_io::exchange::{Action, Exchange, Link, Settings};
use roundtrip_io::http;
use roundtrip_io::pool::Got;
use roundtrip_io::proto::pool::{DialPermit, PoolStats, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Config, Error, read_body_piece};

use crate::RequestBuilder;
use crate::body::{Body, ResponseBody};
use crate::pool::SharedPool;
use crate::transport::{Attempts, Conn, Written};

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// Actions one call may carry out without waiting on the socket or the
/// request body's reader: every wait ends at a deadline, so this only
/// stops a machine that spins (an upload of many small pieces is many
/// waits, each starting the count again).
const MAX_ACTIONS: usize = 100_000;

/// A blocking HTTP/1.1 client with a connection pool. Cheap to clone: clones
/// share the pool.
///
/// ```no_run
/// let client = roundtrip_blocking::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").send()?;
/// println!("{}", response.status());
/// let body = response.body_mut().text(1 << 20)?;
/// # Ok::<(), roundtrip_blocking::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Arc<Settings>,
    pool: SharedPool,
    clock: Clock,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", self.config())
            .finish()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default settings ([`Config`]'s table).
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder to change the settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Config::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.inner.settings.config
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Closes the idle connections in the pool, a TLS one after its
    /// `close_notify` (Go's `CloseIdleConnections`); those in use are left
    /// to their requests. The pool does the same when the last clone of
    /// the client is dropped.
    ///
    /// ```
    /// let client = roundtrip_blocking::Client::new();
    /// client.close_idle();
    /// assert_eq!(client.stats().idle, 0);
    /// ```
    pub fn close_idle(&self) {
        self.inner.pool.close_idle();
    }

    /// Starts a `method` request of `uri`: a [`RequestBuilder`] to add
    /// headers, a query, auth, a body to, then [`send`](RequestBuilder::send).
    /// A `uri` that does not parse fails the request when it is sent.
    ///
    /// ```no_run
    /// use roundtrip_blocking::http::Method;
    /// let client = roundtrip_blocking::Client::new();
    /// let response = client.request(Method::OPTIONS, "http://127.0.0.1:8080/").send()?;
    /// # Ok::<(), roundtrip_blocking::Error>(())
    /// ```
    pub fn request(&self, method: http::Method, uri: impl roundtrip_io::IntoUri) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, uri)
    }

    roundtrip_io::request_methods! {
        receiver: &,
        builder: RequestBuilder,
        setup: "let client = roundtrip_blocking::Client::new();",
        client: "client",
    }

    /// Sends `request` and returns the response once its head arrived; the
    /// body streams from the connection as it is read. What
    /// [`RequestBuilder::send`] calls, for a request built by hand.
    ///
    /// A request that fails on a pooled connection is sent again on
    /// another connection when that is provably safe (while each failure
    /// is on a pooled connection, at most `max_idle_per_host` times plus
    /// one: see the README); redirects are
    /// followed up to [`Config::max_redirects`]; a gzip body the client
    /// asked for is decoded as it is read. A [`Cancel`] in the request's
    /// extensions lets another thread give the request up.
    ///
    /// ```no_run
    /// use roundtrip_blocking::{Body, Client, http};
    /// let request = http::Request::post("http://127.0.0.1:8080/").body(Body::from("hi"))?;
    /// let response = Client::new().execute(request)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        let (parts, body) = request.into_parts();
        let cancel = parts.extensions.get::<Cancel>().cloned();
        let now = self.inner.clock.now();
        let ex = Exchange::new(self.inner.settings.clone(), parts, body, now);
        let mut flow = Flow {
            ex: Box::new(ex),
            conn: None,
            client: self.clone(),
            permit: None,
            attempts: Attempts::default(),
            ticket: None,
            cancel,
            cancelled: false,
            upload: BytesMut::new(),
            fresh: Some(now),
        };
        match flow.next(true)? {
            Some(Out::Head) => {
                let Some(head) = flow.ex.take_head() else {
                    return Err(misuse("the exchange ended without a head"));
                };
                let content_type = head.headers().get(http::header::CONTENT_TYPE).cloned();
                Ok(head.map(|url| ResponseBody::new(flow, content_type, url)))
            }
            _ => Err(misuse("the exchange ended without a head")),
        }
    }
}

fn misuse(what: &'static str) -> Error {
    let e = roundtrip_io::proto::Error::Misuse(what);
    Error::from_proto(e, roundtrip_io::Phase::Body, true)
}

/// Gives a request up from another thread (Go's context cancellation).
/// Put a clone in the request's extensions
/// ([`RequestBuilder::extension`](crate::RequestBuilder::extension));
/// [`cancel`](Self::cancel) wakes a request blocked on its socket at once
/// (the socket is shut down), and one waiting for a pool slot at its next
/// wake. The request (or its body's next read) fails with
/// [`Error::Cancelled`].
///
/// ```no_run
/// use roundtrip_blocking::{Cancel, Client};
/// let cancel = Cancel::new();
/// let request = Client::new().get("http://127.0.0.1:8080/slow").extension(cancel.clone());
/// let canceller = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(100));
///     cancel.cancel();
/// });
/// let result = request.send();
/// assert!(matches!(result, Err(roundtrip_blocking::Error::Cancelled { .. })));
/// canceller.join().unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    /// A handle on the socket of each request using the token now, to
    /// wake it, under the number its connection keeps; a request takes
    /// its own out when its connection leaves it.
    sockets: Mutex<Vec<(u64, std::net::TcpStream)>>,
    /// Numbers the watches (from 1).
    watches: std::sync::atomic::AtomicU64,
}

impl Cancel {
    /// A handle that has not fired.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Gives up every request that carries this token (a clone of it):
    /// each one waiting on its socket is woken at once.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let sockets = std::mem::take(&mut *self.sockets());
        for (_, socket) in sockets {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, Vec<(u64, std::net::TcpStream)>> {
        self.0.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Watches the socket of `conn` for a cancel, until
    /// [`unwatch`](Self::unwatch); the number goes into `conn`.
    fn watch(&self, conn: &mut Conn) {
        if let Ok(clone) = conn.stream.try_clone() {
            let id = self.0.watches.fetch_add(1, Ordering::Relaxed) + 1;
            self.sockets().push((id, clone));
            conn.watched = id;
        }
        if self.is_cancelled() {
            self.cancel();
        }
    }

    /// The connection watched as `id` left its request (pooled, closed,
    /// handed over): a later cancel must not touch it, and the clone of
    /// its socket is closed.
    fn unwatch(&self, id: u64) {
        self.sockets().retain(|(watched, _)| *watched != id);
    }
}

/// Where [`Flow::next_into`] may read body bytes: the caller's slice, or
/// the spare capacity of its vector (grown for the read, never zeroed).
pub(crate) enum Sink<'a> {
    Slice(&'a mut [u8]),
    Vec(&'a mut Vec<u8>),
}

/// What [`Flow::next`] hands the caller.
pub(crate) enum Out {
    /// The head is complete: [`Exchange::take_head`].
    Head,
    Data(Bytes),
    /// This many body bytes were read into the caller's slice, or appended
    /// to its vector ([`Flow::next_into`]).
    Direct(usize),
    End,
    Upgrade,
}

/// One exchange being driven: the machine, the connection it uses and
/// what the pool gave for it.
pub(crate) struct Flow {
    ex: Box<Exchange<Box<dyn Read + Send>>>,
    pub conn: Option<Box<Conn>>,
    client: Client,
    permit: Option<DialPermit>,
    /// The connects of the dial under way.
    attempts: Attempts,
    ticket: Option<Ticket>,
    cancel: Option<Cancel>,
    /// The exchange was told of the cancel.
    cancelled: bool,
    upload: BytesMut,
    /// The time read just before the first [`Flow::next`] (no need to
    /// read it twice); later calls read the clock.
    fresh: Option<Instant>,
}

impl Flow {
    /// Carries out actions until one is for the caller. Without
    /// `blocking`, stops (`None`) where the socket would have to be read.
    pub fn next(&mut self, blocking: bool) -> Result<Option<Out>, Error> {
        self.run(blocking, None)
    }

    /// [`next`](Self::next), blocking, for a caller reading the body into
    /// `into`: where the machine allows it
    /// ([`Exchange::direct_body_room`]), body bytes are read from the
    /// socket straight into it ([`Out::Direct`]), not into the read buffer
    /// and then copied.
    pub fn next_into(&mut self, into: Sink<'_>) -> Result<Option<Out>, Error> {
        self.run(true, Some(into))
    }

    fn run(&mut self, blocking: bool, mut into: Option<Sink<'_>>) -> Result<Option<Out>, Error> {
        let clock = self.client.inner.clock;
        // Read again after each wait on a socket or the pool (the time
        // moved), and kept across the steps that do not wait.
        let mut now = self.fresh.take().unwrap_or_else(|| clock.now());
        let mut spins = 0;
        // Bounded: by the waits' deadlines, and between waits by MAX_ACTIONS.
        loop {
            spins += 1;
            if spins > MAX_ACTIONS {
                return Err(misuse("the exchange made no progress"));
            }
            if !self.cancelled && self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                self.cancelled = true;
                self.ex
                    .cancel(self.conn.as_deref_mut().map(|c| &mut c.link), now);
            }
            let link = self.conn.as_deref_mut().map(|c| &mut c.link);
            match self.ex.poll(link, now) {
                Action::Checkout => {
                    let key = self.ex.key().ok_or_else(|| misuse("no key"))?;
                    match self.client.inner.pool.try_checkout(key, now) {
                        Ok(got) => self.got(got, now),
                        Err(ticket) => {
                            self.ticket = Some(ticket);
                            self.ex.handle_wait(now);
                        }
                    }
                }
                Action::Wait => {
                    let key = self.ex.key().cloned().ok_or_else(|| misuse("no key"))?;
                    let pool = &self.client.inner.pool;
                    // A wait that ended early gave its ticket up: queue again.
                    let ticket = match self.ticket.take() {
                        Some(ticket) => ticket,
                        None => match pool.try_checkout(&key, now) {
                            Ok(got) => {
                                self.got(got, now);
                                continue;
                            }
                            Err(ticket) => ticket,
                        },
                    };
                    let cancelled = self
                        .cancel
                        .clone()
                        .map(|cancel| move || cancel.is_cancelled());
                    let check = cancelled.as_ref().map(|c| c as &dyn Fn() -> bool);
                    let got = pool.wait(ticket, self.until(&clock), check);
                    now = clock.now();
                    match got {
                        Some(got) => self.got(got, now),
                        None => self.ex.handle_timeout(None, now),
                    }
                }
                Action::Probe => {
                    let conn = self.conn.as_mut().ok_or_else(|| misuse("no connection"))?;
                    let stale = conn.is_stale();
                    self.ex.handle_probe(&mut conn.link, stale, now);
                }
                Action::Resolve => {
                    let cancel = self.cancel.clone();
                    let cancelled = cancel.as_ref().map(|c| move || c.is_cancelled());
                    let check = cancelled.as_ref().map(|c| c as &dyn Fn() -> bool);
                    let resolved = Conn::resolve(&self.ex, &clock, check);
                    now = clock.now();
                    match resolved {
                        Some(resolved) => self.ex.handle_resolved(resolved, now),
                        // The loop's next turn tells the exchange.
                        None if cancel_pending(self.cancelled, self.cancel.as_ref()) => {}
                        None => self.ex.handle_timeout(None, now),
                    }
                }
                Action::Connect(addr) => {
                    if let Err(e) = self.attempts.start(addr) {
                        self.ex.handle_connect_failed(addr, e, now);
                    }
                }
                Action::Abort(addr) => self.attempts.abort(addr),
                Action::AwaitConnect => {
                    let until = self.until(&clock);
                    let cancel = self.cancel.clone();
                    let cancelled = cancel.as_ref().map(|c| move || c.is_cancelled());
                    let check = cancelled.as_ref().map(|c| c as &dyn Fn() -> bool);
                    let ended = self.attempts.wait(until, check);
                    now = clock.now();
                    match ended {
                        Some((addr, Ok(stream))) => self.connected(addr, stream, now)?,
                        Some((addr, Err(e))) => self.ex.handle_connect_failed(addr, e, now),
                        None => self.ex.handle_timeout(None, now),
                    }
                }
                Action::Write { watch_read } => {
                    spins = 0;
                    let until = self.until(&clock);
                    let conn = self.conn.as_mut().ok_or_else(|| misuse("no connection"))?;
                    let written = conn.write(watch_read, until, clock.to_std(now));
                    now = clock.now();
                    let link = &mut conn.link;
                    match written {
                        // Bytes sent are the core's to count even when the
                        // request was just cancelled: the cancel's error
                        // says whether the request may have reached the
                        // server.
                        Ok(Written::Bytes(n)) => self.ex.handle_written(link, n, now),
                        _ if cancel_pending(self.cancelled, self.cancel.as_ref()) => {}
                        Ok(Written::Answer(0)) => self.ex.handle_eof(link, now),
                        Ok(Written::Answer(n)) => self.ex.handle_input(link, n, now),
                        Ok(Written::TimedOut) => self.ex.handle_timeout(Some(link), now),
                        Err(e) => self.ex.handle_io_error(link, e, now),
                    }
                }
                Action::NeedBody { .. } => {
                    spins = 0;
                    self.upload.resize(UPLOAD_CHUNK, 0);
                    let read = match self.ex.request_body() {
                        Some(reader) => read_body_piece(reader, &mut self.upload),
                        None => Ok(0),
                    };
                    let piece = read.map(|n| self.upload.split_to(n).freeze());
                    // The reader may have taken a while: the body's end
                    // starts the head timeout at the time it came.
                    now = clock.now();
                    let conn = self.conn.as_mut().ok_or_else(|| misuse("no connection"))?;
                    self.ex.handle_request_body(&mut conn.link, piece, now);
                }
                Action::Read if !blocking => {
                    self.ex.handle_read_deferred();
                    return Ok(None);
                }
                Action::Read => {
                    spins = 0;
                    let until = self.until(&clock);
                    let conn = self.conn.as_mut().ok_or_else(|| misuse("no connection"))?;
                    if let Some(into) = into.as_mut()
                        && let Some(room) = self.ex.direct_body_room(&conn.link)
                    {
                        let read = match into {
                            Sink::Slice(slice) => {
                                let max =
                                    slice.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                                let tail = self.ex.tail_wanted(&conn.link, max);
                                let out = &mut slice[..max];
                                conn.read_direct(out, tail, until, clock.to_std(now))
                            }
                            Sink::Vec(vec) => {
                                let want = roundtrip_io::buf::direct_vec_len(vec.len(), room);
                                let tail = self.ex.tail_wanted(&conn.link, want);
                                conn.read_direct_vec(vec, want, tail, until, clock.to_std(now))
                            }
                        };
                        now = clock.now();
                        let link = &mut conn.link;
                        let cancelled = cancel_pending(self.cancelled, self.cancel.as_ref());
                        match read {
                            // The end a cancel's shutdown makes.
                            Ok(Some((0, None | Some(0)))) if cancelled => {}
                            // Bytes read are the core's to count even when
                            // the request was just cancelled: a drain of the
                            // rest must not take later bytes for them.
                            Ok(Some((n, buffered))) => {
                                self.ex.handle_body_read(link, n, buffered, now);
                                if n > 0 && !cancelled {
                                    return Ok(Some(Out::Direct(n)));
                                }
                            }
                            _ if cancelled => {}
                            Ok(None) => self.ex.handle_timeout(Some(link), now),
                            Err(e) => self.ex.handle_io_error(link, e, now),
                        }
                        continue;
                    }
                    let read = conn.read(until, clock.to_std(now));
                    now = clock.now();
                    let link = &mut conn.link;
                    match read {
                        _ if cancel_pending(self.cancelled, self.cancel.as_ref()) => {}
                        Ok(Some(0)) => self.ex.handle_eof(link, now),
                        Ok(Some(n)) => self.ex.handle_input(link, n, now),
                        Ok(None) => self.ex.handle_timeout(Some(link), now),
                        Err(e) => self.ex.handle_io_error(link, e, now),
                    }
                }
                Action::Head => return Ok(Some(Out::Head)),
                Action::Data(data) => return Ok(Some(Out::Data(data))),
                Action::Release => {
                    // Unwatched first: a cancel from now on cannot touch
                    // the socket, and one before it (its flag is set
                    // before it takes the sockets) shut it down: then it
                    // is not pooled.
                    if let Some(conn) = self.take_conn() {
                        let cancelled = self.cancel.as_ref().is_some_and(Cancel::is_cancelled);
                        if self.cancelled || cancelled {
                            let reason = roundtrip_io::proto::CloseReason::Abandoned;
                            self.client.inner.pool.discard(conn, reason);
                        } else {
                            self.client.inner.pool.checkin(conn, now);
                        }
                    }
                }
                Action::Discard(reason) => {
                    if let Some(conn) = self.take_conn() {
                        self.client.inner.pool.discard(conn, reason);
                    }
                }
                Action::Upgrade => return Ok(Some(Out::Upgrade)),
                Action::Fail(e) => {
                    self.give_back();
                    return Err(e);
                }
                Action::End => return Ok(Some(Out::End)),
                _ => return Err(misuse("an action this driver does not know")),
            }
        }
    }

    /// Gives the pool back what a checkout left unused: a permit to dial
    /// and a place in the queue (with a grant already parked for it).
    fn give_back(&mut self) {
        let pool = &self.client.inner.pool;
        if let Some(permit) = self.permit.take() {
            pool.dial_failed(permit);
        }
        if let Some(ticket) = self.ticket.take() {
            pool.give_up(ticket);
        }
    }

    /// The end of the current wait: the exchange's next deadline.
    fn until(&self, clock: &Clock) -> Option<StdInstant> {
        let link = self.conn.as_deref().map(|c| &c.link);
        self.ex.poll_timeout(link).map(|at| clock.to_std(at))
    }

    /// Reports what the pool gave.
    fn got(&mut self, got: Got<Box<Conn>>, now: roundtrip_io::proto::time::Instant) {
        let (conn, idle_for, handed) = match got {
            Got::Idle(conn, idle_for) => (conn, idle_for, false),
            Got::Handed(conn, waited) => (conn, waited, true),
            Got::Dial(permit) => {
                self.permit = Some(permit);
                self.ex.handle_dial(now);
                return;
            }
        };
        let conn = self.conn.insert(conn);
        if let Some(cancel) = &self.cancel {
            cancel.watch(conn);
        }
        match handed {
            true => self.ex.handle_handover(&mut conn.link, idle_for, now),
            false => self.ex.handle_idle(&mut conn.link, idle_for, now),
        }
    }

    /// The connect to `addr` succeeded: the connection, if the exchange
    /// takes it (the first to connect); else it is closed.
    fn connected(
        &mut self,
        addr: SocketAddr,
        stream: TcpStream,
        now: Instant,
    ) -> Result<(), Error> {
        // The permit stays the flow's, and the connection its own, until
        // the exchange took the connection: a panic on the way (a tracer's)
        // then gives the permit back and closes the socket, with the
        // pool's counts right.
        let permit = self.permit.as_ref().ok_or_else(|| misuse("no permit"))?;
        let config = &self.ex.settings().config;
        let link = Link::new(permit.id(), permit.key().clone(), config);
        let mut conn = Conn::new(stream, link);
        if !self.ex.handle_connected(addr, &mut conn.link, now) {
            return Ok(()); // another attempt won: this one is closed
        }
        let permit = self.permit.take().ok_or_else(|| misuse("no permit"))?;
        self.client.inner.pool.dial_succeeded(permit);
        let conn = self.conn.insert(conn);
        if let Some(cancel) = &self.cancel {
            cancel.watch(conn);
        }
        Ok(())
    }

    /// The trailers of the body that ended.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.ex.take_trailers()
    }

    /// The connection, leaving this flow: no longer watched for a cancel.
    #[inline]
    fn take_conn(&mut self) -> Option<Box<Conn>> {
        let mut conn = self.conn.take()?;
        if conn.watched != 0
            && let Some(cancel) = &self.cancel
        {
            cancel.unwatch(std::mem::take(&mut conn.watched));
        }
        Some(conn)
    }

    /// The switched connection, handed over: the pool lets it go. A
    /// cancel that came first shut the socket down: the request is
    /// cancelled, not handed over dead.
    pub fn upgrade(&mut self) -> Result<crate::Upgraded, Error> {
        if self.cancelled || self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            if let Some(conn) = self.take_conn() {
                let reason = roundtrip_io::proto::CloseReason::Abandoned;
                self.client.inner.pool.discard(conn, reason);
            }
            return Err(Error::Cancelled {
                phase: roundtrip_io::Phase::Body,
                reached_server: true,
            });
        }
        let mut conn = self
            .take_conn()
            .ok_or_else(|| misuse("no connection to upgrade"))?;
        // The caller's from now on: blocking, and without the read timeout
        // the exchange left on the socket (a quiet WebSocket would fail
        // with `WouldBlock` at the old one). No send timeout is ever set.
        let stream = conn.stream.try_clone().and_then(|s| {
            s.set_nonblocking(false)?;
            s.set_read_timeout(None)?;
            Ok(s)
        });
        // The bytes past the head, and the TLS session of an `https`
        // connection, go with it: the pool closes what is left.
        let upgraded = stream.map(|s| crate::Upgraded::from_link(s, &mut conn.link));
        let reason = roundtrip_io::proto::CloseReason::Switched;
        self.client.inner.pool.discard(conn, reason);
        upgraded.map_err(|e| Error::from_io(e, roundtrip_io::Phase::Body, true))
    }
}

impl Drop for Flow {
    /// A flow given up before its end: the machine decides whether the rest
    /// is drained (bounded by `drain_timeout` and `max_drain_bytes`, on
    /// this thread) or the connection closed.
    fn drop(&mut self) {
        self.give_back();
        if self.ex.is_end() && self.conn.is_none() {
            return;
        }
        if std::thread::panicking() {
            // Unwinding (a tracer or a body source that panicked): no drain,
            // whose I/O and trace calls could panic again and abort the
            // process; the connection is closed.
            if let Some(conn) = self.take_conn() {
                let reason = roundtrip_io::proto::CloseReason::Abandoned;
                self.client.inner.pool.discard(conn, reason);
            }
            return;
        }
        let now = self.client.inner.clock.now();
        self.ex
            .abandon(self.conn.as_deref_mut().map(|c| &mut c.link), now);
        // Bounded: the drain ends at its own deadline.
        while let Ok(Some(Out::Data(_))) = self.next(true) {}
        if let Some(conn) = self.take_conn() {
            let reason = roundtrip_io::proto::CloseReason::Abandoned;
            self.client.inner.pool.discard(conn, reason);
        }
        self.give_back();
    }
}

/// A cancel fired that the exchange was not told of yet (`told` false;
/// the loop's next turn tells it): what a wait ended with is the cancel's
/// doing. Once told, reads and writes are reported as they end, so that a
/// drain the cancel left meets the end the shutdown made (it spun on
/// empty reads, and ended as misuse rather than `Cancelled`).
fn cancel_pending(told: bool, cancel: Option<&Cancel>) -> bool {
    !told && cancel.is_some_and(Cancel::is_cancelled)
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_blocking::Client::builder()
///     .max_conns_per_host(Some(4))
///     .timeout(Some(Duration::from_secs(10)))
///     .user_agent("demo/1.0")
///     .build();
/// assert_eq!(client.config().pool.max_conns_per_host, Some(4));
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

impl ClientBuilder {
    roundtrip_io::config_setters!(
        config,
        "roundtrip_blocking",
        "roundtrip_blocking::Client::builder()"
    );

    /// The client.
    pub fn build(self) -> Client {
        let clock = Clock::new();
        let inner = Arc::new(Inner {
            pool: SharedPool::new(self.config.pool, clock, self.config.trace.clone()),
            settings: Arc::new(Settings::new(self.config)),
            clock,
        });
        // Idle connections close when they expire, not at the next request.
        let weak = Arc::downgrade(&inner);
        let expire = move |fired_for| {
            if let Some(inner) = weak.upgrade() {
                inner.pool.expire(fired_for, inner.clock.now());
            }
        };
        inner.pool.set_alarm(crate::pool::alarm(clock, expire));
        Client { inner }
    }
}

#[allow(dead_code)]
fn _assert_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client>();
}
