//! `Client`, and the driver of [`Exchange`]: it owns the sockets, waits
//! for readiness, grants and deadlines, and carries out what the machine
//! asks. Every decision of a request is the machine's.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use roundtrip_io::exchange::{Action, Exchange, Link, Settings};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Config, Error, Phase, http};
use tokio::time::{Sleep, sleep_until};
use tokio_util::io::poll_read_buf;

use crate::body::{Body, BodyReader, ResponseBody};
use crate::pool::{Got, SharedPool, Waiter};
use crate::transport::{Conn, DialStep, Dialing, connect, resolve};

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// Actions carried out in one poll before the task yields to others.
const MAX_ACTIONS: usize = 256;

/// An async HTTP/1.1 client with a connection pool, for tokio's current-thread
/// and multi-thread runtimes. Cheap to clone: clones share the pool. Its
/// futures are `Send`, and dropping one at any await point is safe: a
/// connection in the middle of an exchange is drained or closed, as the core
/// decides, never pooled mid-way.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let client = roundtrip_tokio::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").await?;
/// let text = response.body_mut().text(1 << 20).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub settings: Arc<Settings>,
    pub pool: SharedPool,
    pub clock: Clock,
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

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> Result<http::Response<ResponseBody>, Error> {
        let request = http::Request::get(uri)
            .body(Body::empty())
            .map_err(roundtrip_io::InvalidRequest::from)?;
        self.request(request).await
    }

    /// Sends `request` and returns the response once its head arrived; the
    /// body streams from the connection as it is polled.
    ///
    /// A request that fails on a pooled connection is sent once more on
    /// another connection when that is provably safe: nothing of it was
    /// written, or its method is idempotent and no byte of a response arrived
    /// (and its body can be sent again). Otherwise the error says whether the
    /// request may have reached the server.
    ///
    /// Redirects are followed up to [`Config::max_redirects`], and a gzip
    /// body the client asked for is decoded as it is polled (see
    /// [`roundtrip_io::RedirectChain`], [`roundtrip_io::Decompressed`]).
    /// Dropping the future cancels the request: whatever it holds is
    /// released.
    pub async fn request(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        let (parts, body) = request.into_parts();
        let (settings, now) = (self.inner.settings.clone(), self.inner.clock.now());
        let mut drive = Drive::new(Run {
            ex: Exchange::new(settings, parts, body, now),
            inner: self.inner.clone(),
            conn: None,
            dialing: None,
            waiter: None,
            timer: None,
            piece: BytesMut::new(),
            detached: false,
        });
        match poll_fn(|cx| drive.poll_next(cx)).await {
            Out::Head(head) => Ok(head.map(|()| ResponseBody::new(drive))),
            Out::Fail(e) => Err(e),
            Out::Data(_) | Out::End | Out::Upgrade => Err(misuse("no response head")),
        }
    }
}

/// What the driver hands to its caller.
pub(crate) enum Out {
    Head(http::Response<()>),
    Data(Bytes),
    /// The connection was switched to another protocol: the body is empty.
    Upgrade,
    End,
    Fail(Error),
}

/// One request being driven. Dropped before its end (the request future
/// or the body was dropped), it gives the request up: see [`Run::give_up`].
pub(crate) struct Drive(Option<Box<Run>>);

impl Drive {
    fn new(run: Run) -> Drive {
        Drive(Some(Box::new(run)))
    }

    /// A drive with nothing behind it (an empty body).
    pub fn none() -> Drive {
        Drive(None)
    }

    /// The next output of the exchange.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Out> {
        match &mut self.0 {
            Some(run) => run.poll_next(cx),
            None => Poll::Ready(Out::End),
        }
    }

    /// The exchange, while there is one.
    pub fn exchange(&self) -> Option<&Exchange<BodyReader>> {
        self.0.as_ref().map(|run| &run.ex)
    }

    /// The connection the machine switched to another protocol, with the
    /// bytes that came after the head; its pool slot is freed.
    pub fn take_switched(&mut self) -> Option<Conn> {
        let run = self.0.as_mut()?;
        let conn = run.conn.take()?;
        run.inner.pool.detach(&conn);
        Some(conn)
    }
}

impl Drop for Drive {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run.give_up();
        }
    }
}

/// The driver's state beside the machine.
pub(crate) struct Run {
    ex: Exchange<BodyReader>,
    inner: Arc<Inner>,
    conn: Option<Conn>,
    dialing: Option<Dialing>,
    waiter: Option<Waiter>,
    /// The runtime's timer, armed at the machine's next deadline.
    timer: Option<Pin<Box<Sleep>>>,
    /// Where request body pieces are read.
    piece: BytesMut,
    /// Running in a drain task of its own: giving up again closes.
    detached: bool,
}

impl Run {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Out> {
        for _ in 0..MAX_ACTIONS {
            let now = self.inner.clock.now();
            let link = self.conn.as_mut().map(|c| &mut c.link);
            match self.ex.poll(link, now) {
                Action::Checkout => self.checkout(now),
                Action::Wait => ready!(self.poll_wait(cx)),
                Action::Probe => {
                    if let Some(conn) = &mut self.conn {
                        let stale = roundtrip_io::sys::is_stale(&conn.stream);
                        self.ex.handle_probe(&mut conn.link, stale, now);
                    }
                }
                Action::Dial => ready!(self.poll_dial(cx)),
                Action::Write { watch_read } => ready!(self.poll_write(cx, watch_read)),
                Action::NeedBody => ready!(self.poll_body(cx)),
                Action::Read => ready!(self.poll_read(cx)),
                Action::Head(head) => return Poll::Ready(Out::Head(head)),
                Action::Data(data) => return Poll::Ready(Out::Data(data)),
                Action::Release => {
                    if let Some(conn) = self.conn.take() {
                        self.inner.pool.checkin(conn);
                    }
                }
                Action::Discard(reason) => {
                    if let Some(conn) = self.conn.take() {
                        self.inner.pool.discard(conn, reason);
                    }
                }
                Action::Upgrade => return Poll::Ready(Out::Upgrade),
                Action::End => {
                    self.release_held();
                    return Poll::Ready(Out::End);
                }
                Action::Fail(e) => {
                    self.release_held();
                    return Poll::Ready(Out::Fail(e));
                }
                _ => {
                    self.release_held();
                    return Poll::Ready(Out::Fail(misuse("an action this driver lacks")));
                }
            }
        }
        // Many actions without a wait: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn checkout(&mut self, now: Instant) {
        let Some(key) = self.ex.key().cloned() else {
            return self.ex.cancel(None, now);
        };
        match self.inner.pool.checkout(&key) {
            Ok(got) => self.got(got, now),
            Err(waiter) => {
                self.waiter = Some(waiter);
                self.ex.handle_wait(now);
            }
        }
    }

    fn got(&mut self, got: Got, now: Instant) {
        match got {
            Got::Idle(conn, idle_for) => {
                let conn = self.conn.insert(conn);
                // A connection handed over by a check-in was never idle.
                let idle_for = idle_for.unwrap_or_default();
                self.ex.handle_idle(&mut conn.link, idle_for, now);
            }
            Got::Dial(permit) => {
                self.dialing = Some(Dialing::new(permit));
                self.ex.handle_dial(now);
            }
        }
    }

    /// Waits for the pool's grant.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(waiter) = &mut self.waiter else {
            // The wait was given up: ask again.
            self.checkout(self.inner.clock.now());
            return Poll::Ready(());
        };
        match Pin::new(&mut waiter.rx).poll(cx) {
            Poll::Ready(Ok(grant)) => {
                self.waiter = None;
                self.got(grant.into(), self.inner.clock.now());
            }
            // The pool is gone with its client: nothing will come.
            Poll::Ready(Err(_)) => self.ex.cancel(None, self.inner.clock.now()),
            Poll::Pending => {
                ready!(self.poll_deadline(cx));
                self.ex.handle_timeout(None, self.inner.clock.now());
            }
        }
        Poll::Ready(())
    }

    /// Resolves, then connects to each address in turn.
    fn poll_dial(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Bounded: each pass moves the dial one step on.
        for _ in 0..1024 {
            let (Some(dialing), Some(key)) = (&mut self.dialing, self.ex.key()) else {
                return Poll::Ready(()); // no permit: the machine fails the dial
            };
            let now = self.inner.clock.now();
            match std::mem::replace(&mut dialing.step, DialStep::Resolve) {
                DialStep::Resolve => {
                    let host = key.host().to_string();
                    dialing.step = DialStep::Resolving(resolve(host, key.port()));
                }
                DialStep::Resolving(mut resolving) => match resolving.as_mut().poll(cx) {
                    Poll::Ready(Ok(addrs)) => dialing.step = DialStep::Next(addrs.into_iter()),
                    Poll::Ready(Err(e)) => {
                        dialing.last = Some(e);
                        dialing.step = DialStep::Next(Vec::new().into_iter());
                    }
                    Poll::Pending => {
                        dialing.step = DialStep::Resolving(resolving);
                        return self.poll_dial_deadline(cx, None);
                    }
                },
                DialStep::Next(mut rest) => {
                    let Some(addr) = rest.next() else {
                        self.dial_failed(now);
                        return Poll::Ready(());
                    };
                    self.ex.handle_connect_start(addr, now);
                    let connect = connect(addr);
                    dialing.step = DialStep::Connecting {
                        addr,
                        rest,
                        connect,
                    };
                }
                DialStep::Connecting {
                    addr,
                    rest,
                    mut connect,
                } => match connect.as_mut().poll(cx) {
                    Poll::Ready(Ok(stream)) => {
                        self.ex.handle_connect_done(addr, Ok(()));
                        self.dialed(stream, now);
                        return Poll::Ready(());
                    }
                    Poll::Ready(Err(e)) => {
                        self.ex.handle_connect_done(addr, Err(&e));
                        dialing.last = Some(e);
                        dialing.step = DialStep::Next(rest);
                    }
                    Poll::Pending => {
                        dialing.step = DialStep::Connecting {
                            addr,
                            rest,
                            connect,
                        };
                        return self.poll_dial_deadline(cx, Some(addr));
                    }
                },
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The dial waits for the machine's deadline: once it passed, the
    /// connect (to `addr`) is given up and the machine told.
    fn poll_dial_deadline(&mut self, cx: &mut Context<'_>, addr: Option<SocketAddr>) -> Poll<()> {
        ready!(self.poll_deadline(cx));
        if let Some(addr) = addr {
            let timed_out = io::Error::from(io::ErrorKind::TimedOut);
            self.ex.handle_connect_done(addr, Err(&timed_out));
        }
        // The permit is given back when the machine ends the dial
        // (`release_held`); an early call leaves the dial going.
        self.ex.handle_timeout(None, self.inner.clock.now());
        Poll::Ready(())
    }

    /// No address took the connection.
    fn dial_failed(&mut self, now: Instant) {
        let Some(dialing) = self.dialing.take() else {
            return;
        };
        self.inner.pool.dial_failed(dialing.permit);
        let addr = self.ex.key().map(|k| format!("{}:{}", k.host(), k.port()));
        let last = dialing
            .last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"));
        self.ex
            .handle_dialed(Err((addr.unwrap_or_default(), last)), now);
    }

    fn dialed(&mut self, stream: tokio::net::TcpStream, now: Instant) {
        let (Some(dialing), Some(key)) = (self.dialing.take(), self.ex.key().cloned()) else {
            return;
        };
        let link = Link::new(dialing.permit.id(), key, &self.inner.settings.config);
        self.inner.pool.dial_succeeded(dialing.permit);
        let conn = self.conn.insert(Conn { stream, link });
        self.ex.handle_dialed(Ok(&mut conn.link), now);
    }

    /// Writes what the link queued; with `watch_read`, an answer that
    /// comes meanwhile is read too.
    fn poll_write(&mut self, cx: &mut Context<'_>, watch_read: bool) -> Poll<()> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(());
        };
        let now = self.inner.clock.now();
        if watch_read && let Poll::Ready(read) = conn.poll_read(cx) {
            report_read(&mut self.ex, &mut conn.link, read, now);
            return Poll::Ready(());
        }
        match conn.poll_write(cx) {
            Poll::Ready(Ok(n)) => self.ex.handle_written(&mut conn.link, n, now),
            Poll::Ready(Err(e)) => self.ex.handle_io_error(&mut conn.link, e, now),
            Poll::Pending => return self.poll_timeout(cx),
        }
        Poll::Ready(())
    }

    /// Reads the next piece of the request body.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let piece = match self.ex.request_body() {
            Some(BodyReader(reader)) => {
                self.piece.reserve(UPLOAD_CHUNK);
                let mut room = (&mut self.piece).limit(UPLOAD_CHUNK);
                match poll_read_buf(reader.as_mut(), cx, &mut room) {
                    Poll::Ready(read) => read.map(|_| self.piece.split().freeze()),
                    Poll::Pending => return self.poll_timeout(cx),
                }
            }
            None => Ok(Bytes::new()),
        };
        let now = self.inner.clock.now();
        if let Some(conn) = &mut self.conn {
            self.ex.handle_request_body(&mut conn.link, piece, now);
        }
        Poll::Ready(())
    }

    /// Reads response bytes.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(());
        };
        match conn.poll_read(cx) {
            Poll::Ready(read) => {
                let now = self.inner.clock.now();
                report_read(&mut self.ex, &mut conn.link, read, now);
                Poll::Ready(())
            }
            Poll::Pending => self.poll_timeout(cx),
        }
    }

    /// While the socket is not ready: the machine's deadline, reported
    /// once it passed.
    fn poll_timeout(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.poll_deadline(cx));
        let now = self.inner.clock.now();
        let link = self.conn.as_mut().map(|c| &mut c.link);
        self.ex.handle_timeout(link, now);
        Poll::Ready(())
    }

    /// Ready once the machine's next deadline passed by the clock: the
    /// runtime's timer only wakes the task (quinn's `drive_timer`).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let link = self.conn.as_ref().map(|c| &c.link);
        let Some(at) = self.ex.poll_timeout(link) else {
            return Poll::Pending;
        };
        let clock = &self.inner.clock;
        if clock.now() >= at {
            return Poll::Ready(());
        }
        let wake = tokio::time::Instant::from_std(clock.to_std(at));
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(wake)));
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        ready!(timer.as_mut().poll(cx));
        if clock.now() >= at {
            return Poll::Ready(());
        }
        // The runtime's timer fired before the clock got there: look again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Gives back whatever the exchange no longer uses: a wait, a dial
    /// permit, a connection.
    fn release_held(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            self.inner.pool.give_up(waiter);
        }
        if let Some(dialing) = self.dialing.take() {
            self.inner.pool.dial_failed(dialing.permit);
        }
        if let Some(conn) = self.conn.take() {
            self.inner.pool.discard(conn, CloseReason::Abandoned);
        }
    }

    /// The caller dropped the request or its body: the machine settles
    /// what it holds. A drain it asks for goes on in a task of its own
    /// (within the machine's drain bounds) when a runtime is there to run
    /// it; else the connection is closed.
    fn give_up(mut self: Box<Self>) {
        let now = self.inner.clock.now();
        // A body the caller had is abandoned, a request still before its
        // head cancelled: each call does nothing in the other's states.
        let link = self.conn.as_mut().map(|c| &mut c.link);
        self.ex.abandon(link, now);
        let link = self.conn.as_mut().map(|c| &mut c.link);
        self.ex.cancel(link, now);
        // Bounded: each action settles the connection, or stops.
        for _ in 0..MAX_ACTIONS {
            let now = self.inner.clock.now();
            let link = self.conn.as_mut().map(|c| &mut c.link);
            match self.ex.poll(link, now) {
                Action::Release => {
                    if let Some(conn) = self.conn.take() {
                        self.inner.pool.checkin(conn);
                    }
                }
                Action::Discard(reason) => {
                    if let Some(conn) = self.conn.take() {
                        self.inner.pool.discard(conn, reason);
                    }
                }
                Action::Read => {
                    // What already arrived is drained here, without waiting.
                    let mut cx = Context::from_waker(std::task::Waker::noop());
                    if let Some(conn) = &mut self.conn
                        && let Poll::Ready(read) = conn.poll_read(&mut cx)
                    {
                        report_read(&mut self.ex, &mut conn.link, read, now);
                        continue;
                    }
                    let runtime = tokio::runtime::Handle::try_current();
                    let (Ok(runtime), false) = (runtime, self.detached) else {
                        break;
                    };
                    self.detached = true;
                    let mut drain = Drive(Some(self));
                    runtime.spawn(async move {
                        let _ = poll_fn(|cx| drain.poll_next(cx)).await;
                    });
                    return;
                }
                _ => break,
            }
        }
        self.release_held();
    }
}

/// Tells the machine what a read gave (an empty read is the end).
fn report_read(
    ex: &mut Exchange<BodyReader>,
    link: &mut Link,
    read: io::Result<usize>,
    now: Instant,
) {
    match read {
        Ok(0) => ex.handle_eof(link, now),
        Ok(n) => ex.handle_input(link, n, now),
        Err(e) => ex.handle_io_error(link, e, now),
    }
}

/// The driver and the machine disagree: a bug, reported as an error.
pub(crate) fn misuse(what: &'static str) -> Error {
    let misuse = roundtrip_io::proto::Error::Misuse(what);
    Error::from_proto(misuse, Phase::Body, false)
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_tokio::Client::builder()
///     .max_conns_per_host(Some(4))
///     .timeout(Some(Duration::from_secs(10)))
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
        "roundtrip_tokio",
        "roundtrip_tokio::Client::builder()"
    );

    /// The client.
    pub fn build(self) -> Client {
        let clock = Clock::new();
        let pool = SharedPool::new(self.config.pool, clock, self.config.trace.clone());
        Client {
            inner: Arc::new(Inner {
                settings: Arc::new(Settings::new(self.config)),
                pool,
                clock,
            }),
        }
    }
}
