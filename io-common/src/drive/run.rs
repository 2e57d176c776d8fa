//! The driver of one request: it owns the connection, waits for readiness,
//! grants and deadlines through the [`Runtime`], and carries out what the
//! machine asks. Every decision of a request is the machine's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{DialPermit, Ticket};
use roundtrip_proto::time::Instant;

use super::pool::{Conn, Timer};
use super::{Runtime, Shared};
use crate::exchange::{Action, Exchange, Link};
use crate::pool::Got;
use crate::shared_buf::{Lent, SharedReadBuf};
use crate::{Body, Error, Phase, http};

/// Room made for one read of a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// Actions carried out in one poll before the task yields to others.
const MAX_ACTIONS: usize = 256;

/// What the driver hands to its caller.
pub(crate) enum Out {
    /// The head is complete: [`Drive::take_head`].
    Head,
    Data(Bytes),
    /// The connection was switched to another protocol: the body is empty.
    Upgrade,
    End,
    Fail(Error),
}

/// One request being driven. Dropped before its end (the request future
/// or the body was dropped), it gives the request up: see [`Run::give_up`].
/// Boxed, so that the response body stays small to move.
pub(crate) struct Drive<R: Runtime>(Option<Box<Run<R>>>);

impl<R: Runtime> Drive<R> {
    pub fn new(run: Run<R>) -> Drive<R> {
        Drive(Some(Box::new(run)))
    }

    /// A drive with nothing behind it (an empty body).
    pub fn none() -> Drive<R> {
        Drive(None)
    }

    /// The next output of the exchange.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Out> {
        match &mut self.0 {
            Some(run) => run.poll_next(cx),
            None => Poll::Ready(Out::End),
        }
    }

    /// The head of the last [`Out::Head`], taken: see
    /// [`Exchange::take_head`].
    pub fn take_head(&mut self) -> Option<http::Response<crate::FinalUrl>> {
        self.0.as_mut().and_then(|run| run.ex.take_head())
    }

    /// The body bytes still to come, exactly, when known (see
    /// [`Exchange::remaining_body`]): those taken early with the head, and
    /// the rest; `Some(0)` for a body that already ended.
    pub fn exact_len(&self) -> Option<u64> {
        let Some(run) = &self.0 else {
            return Some(0);
        };
        let early = &run.early;
        let taken = early
            .first
            .iter()
            .chain(&early.more)
            .map(|p| p.len() as u64)
            .sum::<u64>();
        let rest = match &early.end {
            Some(Out::End) => 0,
            Some(_) => return None,
            None => run.ex.remaining_body(run.conn.as_ref().map(|c| &c.link))?,
        };
        Some(taken + rest)
    }

    /// The trailers of the body that ended, taken.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.0.as_mut()?.ex.take_trailers()
    }

    /// The caller drops the rest of the body: the machine drains it or
    /// closes, as it decides.
    pub fn abandon(&mut self) {
        if let Some(run) = &mut self.0 {
            run.early.give_up();
            let now = run.shared.clock.now();
            run.ex.abandon(run.conn.as_mut().map(|c| &mut c.link), now);
        }
    }

    /// True when the response switched protocols (its connection waits).
    pub fn is_switched(&self) -> bool {
        self.0.as_ref().is_some_and(|run| run.ex.is_switched())
    }

    /// The connection the machine switched to another protocol, with the
    /// bytes that came after the head; its pool slot is freed.
    pub fn take_switched(&mut self) -> Option<Conn<R>> {
        let run = self.0.as_mut()?;
        let conn = run.conn.take()?;
        run.shared.pool.detach(&conn);
        Some(conn)
    }
}

impl<R: Runtime> Drop for Drive<R> {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run.give_up();
        }
    }
}

/// A future the driver keeps between polls (one per dial step).
type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

/// A dial in progress: the pool's permit (until a connect won), the
/// lookup, the connects under way.
struct Dialing<S> {
    permit: Option<DialPermit>,
    lookup: Option<Pending<Vec<SocketAddr>>>,
    attempts: Vec<(SocketAddr, Pending<S>)>,
}

/// The driver's state beside the machine.
pub(crate) struct Run<R: Runtime> {
    ex: Exchange<R::Reader>,
    shared: Arc<Shared<R>>,
    conn: Option<Conn<R>>,
    dialing: Option<Dialing<R::Socket>>,
    waiter: Option<Ticket>,
    /// The runtime's timer and when it is set to fire: armed at the
    /// machine's next deadline.
    timer: Option<Timer<R>>,
    /// The runtime `timer` belongs to (the one that polled the request
    /// when it was made, or took it over), kept with it in the pool.
    timer_home: Option<R::Home>,
    /// Where request body pieces are read.
    piece: BytesMut,
    /// Running in a drain task of its own: giving up again closes.
    detached: bool,
    /// The clock reading at which a wait saw its deadline pass (later than
    /// the poll's): the rest of the poll goes on from it, so that every
    /// part of the machine sees that deadline passed (a dial's, which only
    /// its next step acts on, as well as the timers `handle_timeout` acts
    /// on), not only the call that was told.
    passed: Option<Instant>,
    /// What the body gave with its head (see [`Early`]).
    early: Early,
}

/// A sized body that came whole with its head, decoded before the caller
/// asked (at most [`EAGER_BODY_BYTES`](crate::buf::EAGER_BODY_BYTES) of
/// output, which only a compressed body can exceed): it then ends in the
/// poll that read it, so its connection goes
/// back to the pool at once and no byte of it is left in the read buffer
/// to be copied out when the poll gives the thread's buffer back (an
/// allocation per response). The pieces share that buffer, as the head's
/// fields do. As on the blocking driver, the body's read-idle timer runs
/// from the head, not from the caller's first read.
#[derive(Default)]
struct Early {
    /// The first piece: a body that came whole needs no queue.
    first: Option<Bytes>,
    more: VecDeque<Bytes>,
    /// How the body ended, when it did.
    end: Option<Out>,
}

impl Early {
    fn push(&mut self, piece: Bytes) {
        match self.first {
            None => self.first = Some(piece),
            Some(_) => self.more.push_back(piece),
        }
    }

    fn next(&mut self) -> Option<Out> {
        let piece = self.first.take().or_else(|| self.more.pop_front());
        piece.map(Out::Data).or_else(|| self.end.take())
    }

    /// The caller gives the body up: the pieces go with the rest; an end
    /// already seen stays (the connection was settled then).
    fn give_up(&mut self) {
        self.first = None;
        self.more.clear();
    }
}

impl<R: Runtime> Run<R> {
    pub fn new(shared: Arc<Shared<R>>, request: http::Request<Body<R::Reader>>) -> Run<R> {
        let (parts, body) = request.into_parts();
        let (settings, now) = (shared.settings.clone(), shared.clock.now());
        Run {
            ex: Exchange::new(settings, parts, body, now),
            shared,
            conn: None,
            dialing: None,
            waiter: None,
            timer: None,
            timer_home: None,
            piece: BytesMut::new(),
            detached: false,
            passed: None,
            early: Early::default(),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Out> {
        if let Some(out) = self.early.next() {
            return Poll::Ready(out);
        }
        let out = self.poll_actions(cx);
        // A read buffer lent during the poll goes back before other tasks
        // run on this thread.
        if let Some(conn) = &mut self.conn {
            take_back(conn);
        }
        out
    }

    fn poll_actions(&mut self, cx: &mut Context<'_>) -> Poll<Out> {
        // Read once per poll: no action below waits (a wait that is not
        // over returns `Pending`), so the time moves only by this poll's
        // own work, and by a deadline seen passed on a later reading.
        let mut now = self.shared.clock.now();
        for _ in 0..MAX_ACTIONS {
            if let Some(passed) = self.passed.take() {
                now = now.max(passed);
            }
            let link = self.conn.as_mut().map(|c| &mut c.link);
            match self.ex.poll(link, now) {
                Action::Checkout => self.checkout(now),
                Action::Wait => ready!(self.poll_wait(cx, now)),
                Action::Probe => {
                    if let Some(conn) = &mut self.conn {
                        let foreign = conn.home != self.shared.runtime.home();
                        let stale = foreign || crate::sys::is_stale(&conn.socket);
                        self.ex.handle_probe(&mut conn.link, stale, now);
                    }
                }
                Action::Resolve => ready!(self.poll_resolve(cx, now)),
                Action::Connect(addr) => self.connect(addr),
                Action::AwaitConnect => ready!(self.poll_connects(cx, now)),
                Action::Abort(addr) => self.abort(addr),
                Action::Write { watch_read } => ready!(self.poll_write(cx, watch_read, now)),
                Action::NeedBody { watch_read } => ready!(self.poll_body(cx, watch_read, now)),
                Action::Read => ready!(self.poll_read(cx, now)),
                Action::Head => {
                    self.take_early(now);
                    return Poll::Ready(Out::Head);
                }
                Action::Data(data) => return Poll::Ready(Out::Data(data)),
                Action::Release => self.settle(None, now),
                Action::Discard(reason) => self.settle(Some(reason), now),
                Action::Upgrade => return Poll::Ready(Out::Upgrade),
                Action::End => {
                    self.release_held();
                    return Poll::Ready(Out::End);
                }
                Action::Fail(e) => {
                    self.release_held();
                    return Poll::Ready(Out::Fail(e));
                }
            }
        }
        // Many actions without a wait: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Decodes what the read buffer holds of the body after its head,
    /// without waiting (see [`Early`]); stops at the first action that
    /// needs a read (asked again at the next poll). Not for a connection
    /// switched to another protocol: its bytes are the caller's.
    fn take_early(&mut self, now: Instant) {
        // Only a sized body whose bytes are all buffered: one that goes on
        // past this read is read as the caller asks, its bytes left in the
        // buffer its connection keeps (taken here, they pinned the thread's
        // shared buffer while many connections streamed: tokio at 256
        // connections with 64 KiB bodies went from 1.41 to 1.25 of wrk).
        let whole = |c: &Conn<R>| {
            let buffered = c.link.read_buf.len() as u64;
            c.link.proto.remaining_body().is_some_and(|n| n <= buffered)
        };
        if self
            .conn
            .as_ref()
            .is_none_or(|c| c.link.proto.is_switched() || !whole(c))
        {
            return;
        }
        let mut taken = 0;
        for _ in 0..MAX_ACTIONS {
            let link = self.conn.as_mut().map(|c| &mut c.link);
            match self.ex.poll(link, now) {
                Action::Data(piece) => {
                    taken += piece.len();
                    self.early.push(piece);
                    if taken >= crate::buf::EAGER_BODY_BYTES {
                        return;
                    }
                }
                Action::Release => self.settle(None, now),
                Action::Discard(reason) => self.settle(Some(reason), now),
                Action::Abort(addr) => self.abort(addr),
                Action::End => {
                    self.release_held();
                    self.early.end = Some(Out::End);
                    return;
                }
                Action::Fail(e) => {
                    self.release_held();
                    self.early.end = Some(Out::Fail(e));
                    return;
                }
                _ => return,
            }
        }
    }

    /// Drops the connect to `addr`: another one won.
    fn abort(&mut self, addr: SocketAddr) {
        if let Some(dialing) = &mut self.dialing {
            dialing.attempts.retain(|(a, _)| *a != addr);
        }
    }

    /// Checks the connection in (the core's verdict decides) or closes it
    /// for `close`.
    fn settle(&mut self, close: Option<CloseReason>, now: Instant) {
        if let Some(conn) = &mut self.conn {
            take_back(conn);
            // The timer stays with the connection for its next request,
            // armed still: until that request resets it, it may wake this
            // task once more (harmless) and holds its waker.
            if close.is_none()
                && conn.timer.is_none()
                && let (Some(timer), Some(home)) = (self.timer.take(), self.timer_home.take())
            {
                conn.timer = Some((timer, home));
            }
        }
        match (self.conn.take(), close) {
            (Some(conn), None) => self.shared.pool.checkin(conn, now),
            (Some(conn), Some(reason)) => self.shared.pool.discard(conn, reason),
            (None, _) => {}
        }
    }

    fn checkout(&mut self, now: Instant) {
        let Some(key) = self.ex.key() else {
            return self.ex.cancel(None, now);
        };
        match self.shared.pool.checkout(key, now) {
            Ok(got) => self.got(got, now),
            Err(ticket) => {
                self.waiter = Some(ticket);
                self.ex.handle_wait(now);
            }
        }
    }

    fn got(&mut self, got: Got<Conn<R>>, now: Instant) {
        match got {
            Got::Idle(conn, idle_for) => {
                let conn = self.conn.insert(conn);
                probe_if_foreign(conn, &self.shared.runtime);
                self.ex.handle_idle(&mut conn.link, idle_for, now);
            }
            Got::Handed(conn, waited) => {
                let conn = self.conn.insert(conn);
                probe_if_foreign(conn, &self.shared.runtime);
                self.ex.handle_handover(&mut conn.link, waited, now);
            }
            Got::Dial(permit) => {
                self.dialing = Some(Dialing {
                    permit: Some(permit),
                    lookup: None,
                    attempts: Vec::new(),
                });
                self.ex.handle_dial(now);
            }
        }
    }

    /// Waits for the pool's grant.
    fn poll_wait(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Some(ticket) = self.waiter else {
            // The wait was given up: ask again.
            self.checkout(now);
            return Poll::Ready(());
        };
        match self.shared.pool.poll_grant(ticket, cx) {
            Poll::Ready(got) => {
                self.waiter = None;
                self.got(got, now);
            }
            Poll::Pending => {
                let passed = ready!(self.poll_deadline(cx, now));
                self.passed = Some(passed);
                self.ex.handle_timeout(None, passed);
            }
        }
        Poll::Ready(())
    }

    /// Waits for the machine's lookup ([`Runtime::resolve`]).
    fn poll_resolve(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let (Some(dialing), Some((host, port))) = (&mut self.dialing, self.ex.lookup_target())
        else {
            return Poll::Ready(()); // no permit: the machine fails the dial
        };
        let resolver = &self.shared.settings.config.resolver;
        let runtime = &self.shared.runtime;
        let lookup = dialing
            .lookup
            .get_or_insert_with(|| Box::pin(runtime.resolve(resolver, host, port)));
        match lookup.as_mut().poll(cx) {
            Poll::Ready(result) => {
                dialing.lookup = None;
                self.ex.handle_resolved(result, now);
                Poll::Ready(())
            }
            Poll::Pending => self.poll_timeout(cx, now),
        }
    }

    /// Starts connecting to `addr`, beside the connects under way.
    fn connect(&mut self, addr: SocketAddr) {
        if let Some(dialing) = &mut self.dialing {
            let connect = Box::pin(self.shared.runtime.connect(addr));
            dialing.attempts.push((addr, connect));
        }
    }

    /// Waits for one of the connects under way to end, or for the
    /// machine's deadline.
    fn poll_connects(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Some(dialing) = &mut self.dialing else {
            return Poll::Ready(());
        };
        let ended = dialing
            .attempts
            .iter_mut()
            .enumerate()
            .find_map(|(i, (_, connect))| match connect.as_mut().poll(cx) {
                Poll::Ready(result) => Some((i, result)),
                Poll::Pending => None,
            });
        let Some((i, result)) = ended else {
            return self.poll_timeout(cx, now);
        };
        let (addr, _) = dialing.attempts.swap_remove(i);
        match result {
            Ok(socket) => {
                // The permit stays the dial's, and the connection a local,
                // until the exchange took the connection: a panic on the
                // way (a tracer's) then gives the permit back and closes
                // the socket, with the pool's counts right.
                let (Some(permit), Some(key)) = (&dialing.permit, self.ex.key().cloned()) else {
                    return Poll::Ready(());
                };
                let link = Link::new(permit.id(), key, &self.shared.settings.config);
                let mut conn = Conn {
                    socket,
                    link,
                    lent: Lent::No,
                    timer: None,
                    home: self.shared.runtime.home(),
                };
                if self.ex.handle_connected(addr, &mut conn.link, now)
                    && let Some(permit) = dialing.permit.take()
                {
                    self.shared.pool.dial_succeeded(permit);
                    self.conn = Some(conn);
                }
            }
            Err(e) => self.ex.handle_connect_failed(addr, e, now),
        }
        Poll::Ready(())
    }

    /// Writes what the link queued, in one (vectored) write; with
    /// `watch_read`, an answer that comes meanwhile is read too.
    fn poll_write(&mut self, cx: &mut Context<'_>, watch_read: bool, now: Instant) -> Poll<()> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(());
        };
        if watch_read && let Poll::Ready(read) = read_into::<R>(conn, cx) {
            report_read(&mut self.ex, &mut conn.link, read, now);
            return Poll::Ready(());
        }
        let slices = conn.link.wire_out();
        let written = R::poll_write(&mut conn.socket, cx, crate::buf::with_bytes(&slices));
        match written {
            Poll::Ready(Ok(0)) => {
                let e = crate::buf::write_zero();
                self.ex.handle_io_error(&mut conn.link, e, now);
            }
            Poll::Ready(Ok(n)) => self.ex.handle_written(&mut conn.link, n, now),
            Poll::Ready(Err(e)) => self.ex.handle_io_error(&mut conn.link, e, now),
            Poll::Pending => return self.poll_timeout(cx, now),
        }
        Poll::Ready(())
    }

    /// Reads the next piece of the request body; with `watch_read`, an
    /// answer (or a close) that comes while the reader waits is read too.
    fn poll_body(&mut self, cx: &mut Context<'_>, watch_read: bool, now: Instant) -> Poll<()> {
        let piece = match self.ex.request_body() {
            Some(reader) => {
                self.piece.reserve(UPLOAD_CHUNK);
                match R::poll_read_body(reader, cx, &mut self.piece) {
                    Poll::Ready(read) => read.map(|_| self.piece.split().freeze()),
                    Poll::Pending => return self.poll_answer(cx, watch_read, now),
                }
            }
            None => Ok(Bytes::new()),
        };
        if let Some(conn) = &mut self.conn {
            self.ex.handle_request_body(&mut conn.link, piece, now);
        }
        Poll::Ready(())
    }

    /// While the request body's reader waits: response bytes if
    /// `watch_read` and any came, else the machine's deadline.
    fn poll_answer(&mut self, cx: &mut Context<'_>, watch_read: bool, now: Instant) -> Poll<()> {
        if let (true, Some(conn)) = (watch_read, &mut self.conn)
            && let Poll::Ready(read) = read_into::<R>(conn, cx)
        {
            report_read(&mut self.ex, &mut conn.link, read, now);
            return Poll::Ready(());
        }
        self.poll_timeout(cx, now)
    }

    /// Reads response bytes.
    fn poll_read(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Some(conn) = &mut self.conn else {
            return Poll::Ready(());
        };
        match read_into::<R>(conn, cx) {
            Poll::Ready(read) => {
                report_read(&mut self.ex, &mut conn.link, read, now);
                Poll::Ready(())
            }
            Poll::Pending => self.poll_timeout(cx, now),
        }
    }

    /// While the socket is not ready: the machine's deadline, reported
    /// once it passed.
    fn poll_timeout(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let passed = ready!(self.poll_deadline(cx, now));
        self.passed = Some(passed);
        let link = self.conn.as_mut().map(|c| &mut c.link);
        self.ex.handle_timeout(link, passed);
        Poll::Ready(())
    }

    /// Ready once the machine's next deadline passed by the clock, with
    /// the time seen then (after `now` when the timer woke the task first:
    /// the machine must be told a time its deadline has passed by); the
    /// runtime's timer only wakes the task (quinn's `drive_timer`).
    fn poll_deadline(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<Instant> {
        let link = self.conn.as_ref().map(|c| &c.link);
        let Some(at) = self.ex.poll_timeout(link) else {
            return Poll::Pending;
        };
        if now >= at {
            return Poll::Ready(now);
        }
        let clock = &self.shared.clock;
        let wake = clock.to_std(at);
        if self.timer.is_none() {
            // The connection's, from its last request on this runtime,
            // else a new one.
            let runtime = &self.shared.runtime;
            let here = runtime.home();
            let kept = self.conn.as_mut().and_then(|c| c.timer.take());
            let kept = kept.and_then(|(timer, home)| (home == here).then_some(timer));
            self.timer = kept.or_else(|| Some((Box::pin(runtime.timer(wake)), Some(wake))));
            self.timer_home = Some(here);
        }
        let Some((timer, armed)) = &mut self.timer else {
            return Poll::Pending; // unreachable: set above
        };
        // Moved at once to an earlier deadline, or after it fired; a later
        // deadline waits until the armed instant passes (the timer fires
        // early and is armed again below): a keep-alive loop under a long
        // timeout then moves no timer per request (on async-io a move is a
        // timer operation its reactor thread handles with allocations;
        // tokio moves an armed timer later cheaply, and it costs one early
        // wake per timeout period here).
        if armed.is_none_or(|armed| wake < armed) {
            R::reset_timer(timer.as_mut(), wake);
            *armed = Some(wake);
        }
        // Bounded: the second poll follows a reset to this deadline.
        for _ in 0..2 {
            ready!(timer.as_mut().poll(cx));
            *armed = None;
            let seen = clock.now();
            if seen >= at {
                return Poll::Ready(seen);
            }
            // It fired for an earlier instant: armed for this deadline.
            R::reset_timer(timer.as_mut(), wake);
            *armed = Some(wake);
        }
        // The runtime's timer fired before the clock got there (the clock
        // is the runtime's, `Runtime::clock`, so only by a rounding of the
        // timer's): look again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Gives back whatever the exchange no longer uses: a wait, a dial
    /// permit, a connection.
    fn release_held(&mut self) {
        if let Some(ticket) = self.waiter.take() {
            self.shared.pool.give_up(ticket);
        }
        if let Some(permit) = self.dialing.take().and_then(|d| d.permit) {
            self.shared.pool.dial_failed(permit);
        }
        if let Some(mut conn) = self.conn.take() {
            take_back(&mut conn);
            self.shared.pool.discard(conn, CloseReason::Abandoned);
        }
    }

    /// The caller dropped the request or its body: the machine settles
    /// what it holds. What already arrived is drained here without
    /// waiting; a drain that must wait goes on in a task spawned on the
    /// runtime (within the machine's drain bounds), or, without one, the
    /// connection is closed.
    fn give_up(mut self: Box<Self>) {
        // A drain task must not end on a piece taken early.
        self.early.give_up();
        let now = self.shared.clock.now();
        // A body the caller had is abandoned, a request still before its
        // head cancelled: each call does nothing in the other's states.
        self.ex
            .abandon(self.conn.as_mut().map(|c| &mut c.link), now);
        self.ex.cancel(self.conn.as_mut().map(|c| &mut c.link), now);
        // Bounded: each action settles the connection, or stops. Nothing
        // here waits (a read is tried once), so the time read above holds.
        for _ in 0..MAX_ACTIONS {
            match self.ex.poll(self.conn.as_mut().map(|c| &mut c.link), now) {
                Action::Release => self.settle(None, now),
                Action::Discard(reason) => self.settle(Some(reason), now),
                Action::Read => {
                    let mut cx = Context::from_waker(Waker::noop());
                    if let Some(conn) = &mut self.conn
                        && let Poll::Ready(read) = read_into::<R>(conn, &mut cx)
                    {
                        report_read(&mut self.ex, &mut conn.link, read, now);
                        continue;
                    }
                    if self.detached {
                        break;
                    }
                    self.detached = true;
                    if let Some(conn) = &mut self.conn {
                        take_back(conn);
                    }
                    let runtime = self.shared.runtime.clone();
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

thread_local! {
    /// The read buffers the connections polled on this thread borrow for
    /// a read, and get back before the poll returns (see
    /// [`SharedReadBuf`]): a connection holds no read buffer between polls,
    /// and a long body streamed through many connections is read into one
    /// buffer per thread, not one per connection.
    static READ_BUFS: RefCell<SharedReadBuf> = RefCell::default();
}

/// Takes back the read buffer `conn` borrowed, if it can (see
/// [`SharedReadBuf::take_back`]).
fn take_back<R: Runtime>(conn: &mut Conn<R>) {
    if conn.lent != Lent::No || conn.link.read_buf.capacity() > 0 {
        // `try_with`: the thread's locals may be gone (a drop at exit).
        let _ = READ_BUFS.try_with(|bufs| {
            if let Ok(mut bufs) = bufs.try_borrow_mut() {
                bufs.take_back(&mut conn.link, &mut conn.lent);
            }
        });
    }
}

/// One read into the spare capacity of the link's read buffer (sized by
/// the link, so that a whole response usually takes one read), borrowed
/// from the thread's.
fn read_into<R: Runtime>(conn: &mut Conn<R>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let _ = READ_BUFS.try_with(|bufs| {
        if let Ok(mut bufs) = bufs.try_borrow_mut() {
            bufs.lend(&mut conn.link, &mut conn.lent);
        }
    });
    conn.link.reserve_read();
    R::poll_read(&mut conn.socket, cx, conn.link.wire_in())
}

/// Tells the machine what a read gave (an empty read is the end).
fn report_read<B>(ex: &mut Exchange<B>, link: &mut Link, read: io::Result<usize>, now: Instant) {
    match read {
        Ok(0) => ex.handle_eof(link, now),
        Ok(n) => ex.handle_input(link, n, now),
        Err(e) => ex.handle_io_error(link, e, now),
    }
}

/// The driver and the machine disagree: a bug, reported as an error.
pub(crate) fn misuse(what: &'static str) -> Error {
    let misuse = roundtrip_proto::Error::Misuse(what);
    Error::from_proto(misuse, Phase::Body, false)
}

/// A pooled connection whose socket another runtime's reactor serves is
/// probed before use, and the probe answers stale: the machine closes it
/// and checks out again, as after a server's close.
fn probe_if_foreign<R: Runtime>(conn: &mut Conn<R>, runtime: &R) {
    if conn.home != runtime.home() {
        conn.link.unchecked_tail = true;
    }
}
