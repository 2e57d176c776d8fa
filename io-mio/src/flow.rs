//! How the driver carries one exchange: [`Entry`] is a slab entry (the
//! [`Exchange`] machine, what the pool gave it, the caller's receiving end),
//! and [`Driver::drive`] carries out the machine's actions on sockets until
//! one must wait for readiness, a grant or a deadline. Every decision
//! (probe, retry, redirects, gzip, timeouts, drain or close) is the
//! machine's; this file moves bytes and reports back.

use std::io::{self, Read};

use bytes::Bytes;
use mio::Interest;
use mio::net::TcpStream;
use roundtrip_io::exchange::{Action, Exchange, Link};
use roundtrip_io::http::Uri;
use roundtrip_io::proto::pool::{DialPermit, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::proto::{CloseReason, Framing, HeadEnd, Reuse};
use roundtrip_io::{Collected, Error, FinalUrl, Phase, ResponseHead, read_body_piece};

use crate::body::{Flow, OnData, Receive, RequestId, Response, ResponseBody, Trailers};
use crate::conn::{Conn, ConnState, Read as Got};
use crate::driver::Driver;
use crate::timer::Target;
use roundtrip_io::shared_buf::{Lent, SharedReadBuf};

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;
/// Slots of the exchange and connection slabs kept once they are empty
/// (the rest is given back): a driver going between one request and none
/// never reallocates them.
const SLOTS_KEPT: usize = 64;
/// Actions one exchange may carry out per turn before it yields to others
/// (it resumes at the next `handle_timeout`).
const ACTIONS_PER_TURN: usize = 256;

/// The machine, over the driver's request body.
pub(crate) type Machine = Exchange<Box<dyn Read + Send>>;

/// An exchange in flight: the machine, what the pool gave it, and where
/// its response goes. Held unboxed in the slab: the slot is reused, so a
/// request costs no allocation of its own here.
pub(crate) struct Entry {
    pub ex: Machine,
    pub serial: u64,
    /// The slot of the connection carrying it.
    pub conn: Option<usize>,
    /// The slots of its connects under way (Happy Eyeballs attempts).
    pub attempts: Vec<usize>,
    /// Its place in the pool's queue.
    pub ticket: Option<Ticket>,
    /// The pool's permission to dial, until a connect wins.
    pub permit: Option<DialPermit>,
    pub sink: Sink,
    /// The final head, with the response's extensions, and the URL that
    /// answered.
    pub head: Option<(ResponseHead, Uri)>,
    /// The caller stopped reading: the machine drains or closes the rest.
    pub stopped: bool,
    /// Why the result is an error though the response ended (the body was
    /// over the limit). Boxed: rare, and the slot of every exchange would
    /// carry its 104 bytes.
    pub error: Option<Box<Error>>,
    /// Cancelled by the caller: its result is not reported.
    pub cancelled: bool,
    /// The lookup of its host, under way on the resolver's lookup threads,
    /// and the waker that tells the loop it ended.
    pub lookup: Option<(roundtrip_io::resolve::SharedLookup, std::task::Waker)>,
}

/// Where the body goes.
pub(crate) enum Sink {
    Collect { max_bytes: u64, body: Collected },
    Stream(OnData),
}

impl Entry {
    pub fn new(ex: Machine, serial: u64, receive: Receive) -> Entry {
        let sink = match receive {
            Receive::Collect { max_bytes } => Sink::Collect {
                max_bytes,
                body: Collected::default(),
            },
            Receive::Stream(callback) => Sink::Stream(callback),
        };
        Entry {
            ex,
            serial,
            conn: None,
            attempts: Vec::new(),
            ticket: None,
            permit: None,
            sink,
            head: None,
            stopped: false,
            error: None,
            cancelled: false,
            lookup: None,
        }
    }

    /// The finished response, once the body ended.
    fn result(&mut self) -> Result<Response, Error> {
        if let Some(e) = self.error.take() {
            return Err(*e);
        }
        let Some(head) = self.head.take() else {
            return Err(misuse("the exchange ended without a head"));
        };
        let body = match &mut self.sink {
            Sink::Collect { body, .. } => std::mem::take(body).freeze(),
            Sink::Stream(_) => Bytes::new(),
        };
        let (head, url) = head;
        let mut response = head.into_response(ResponseBody::received(body, url));
        if let Some(trailers) = self.ex.take_trailers() {
            response.extensions_mut().insert(Trailers(trailers));
        }
        Ok(response)
    }

    /// Takes one piece of the body; false when the caller wants no more.
    /// A stream callback that panics ends its exchange with an error, and
    /// its panic is returned, for the driver to pass on once the turn is
    /// done (the other exchanges of the turn are still driven).
    fn take(&mut self, data: Bytes) -> Result<bool, Box<dyn std::any::Any + Send>> {
        let Some((head, _)) = &self.head else {
            return Ok(true); // unreachable: data comes after the head
        };
        match &mut self.sink {
            Sink::Collect { max_bytes, body } => match body.push_within(data, *max_bytes) {
                Ok(()) => Ok(true),
                Err(e) => {
                    *body = Collected::default();
                    self.error = Some(Box::new(e));
                    Ok(false)
                }
            },
            Sink::Stream(callback) => {
                let call = std::panic::AssertUnwindSafe(|| callback(head, data));
                std::panic::catch_unwind(call)
                    .map(|flow| flow == Flow::Continue)
                    .inspect_err(|_| {
                        // A piece of the body came: the server answered.
                        let e = Error::Panicked {
                            phase: Phase::Body,
                            reached_server: true,
                        };
                        self.error = Some(Box::new(e));
                    })
            }
        }
    }
}

/// What the drive of an exchange does after an action.
enum Next {
    /// Carry on with the next action.
    Go,
    /// Carry on, at the time the clock reads now: the action waited on a
    /// caller's reader (a body piece), and the rest of the turn must not
    /// go on at the time before it (a head timeout its end starts).
    Later,
    /// Wait for readiness, a grant or a deadline.
    Wait,
    /// The exchange ended.
    Done,
}

/// The connection `entry` uses, while it carries it (not while connecting).
fn busy<'a>(
    conns: &'a mut crate::slab::Slab<Conn>,
    entry: &Entry,
    ex: usize,
) -> Option<&'a mut Conn> {
    let conn = conns.get_mut(entry.conn?)?;
    matches!(conn.state, ConnState::Busy(e) if e == ex).then_some(conn)
}

impl Driver {
    /// Runs `f`, which calls into the exchange in `ex` and through it the
    /// caller's code: its tracer, redirect policy or request body's
    /// reader. A panic there ends that exchange alone, with an error, and
    /// what it held goes back (its permit, place in the queue, connection);
    /// the panic is passed on when the driver's call is done, as a stream
    /// callback's is. (Before, it unwound through the loop and left the
    /// exchange in flight for ever, holding its connection.)
    pub(crate) fn guarded<T>(&mut self, ex: usize, f: impl FnOnce(&mut Driver) -> T) -> Option<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(t) => Some(t),
            Err(panic) => {
                self.panicked.get_or_insert(panic);
                let entry = self.exchanges.get(ex)?;
                let conn = entry.conn.and_then(|slot| self.conns.get(slot));
                let link = conn.filter(|c| matches!(c.state, ConnState::Busy(e) if e == ex));
                let e = entry.ex.panicked_error(link.map(|c| &c.link));
                // A second panic of the same callback (a tracer that fails
                // on every event) finds the exchange ended; the first is
                // the one passed on.
                let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.finish(ex, Err(e));
                }));
                drop(ended);
                None
            }
        }
    }

    /// Carries out the actions of the exchange in `ex` until it must wait or
    /// ends; then arms its timer and settles its connection's interest.
    pub(crate) fn drive(&mut self, ex: usize, now: Instant) {
        let mut now = now;
        for _ in 0..ACTIONS_PER_TURN {
            match self.guarded(ex, |driver| driver.step(ex, now)) {
                Some(Next::Go) => {}
                Some(Next::Later) => now = self.clock.now(),
                Some(Next::Wait) => return self.settle_exchange(ex),
                Some(Next::Done) | None => return,
            }
        }
        if let Some(entry) = self.exchanges.get(ex) {
            self.ready.push((ex, entry.serial));
        }
        self.settle_exchange(ex);
    }

    /// One action of the exchange in `ex`.
    fn step(&mut self, ex: usize, now: Instant) -> Next {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return Next::Done;
        };
        let mut conn = busy(&mut self.conns, entry, ex);
        let action = entry.ex.poll(conn.as_deref_mut().map(|c| &mut c.link), now);
        match action {
            Action::Checkout => self.checkout(ex, now),
            Action::Wait => return Next::Wait,
            Action::Probe => {
                let Some(conn) = conn else {
                    return self.fail(ex, misuse("a probe without a connection"));
                };
                // The idle socket is watched: bytes or a FIN raise an
                // event, which drops an idle connection at once. So with no
                // readiness unread since its last read came back dry, and
                // the loop's own poll as recent as the probe's threshold
                // (what came before it was seen), the kernel is not asked.
                // A loop not turned for longer (requests sent in bursts),
                // or one embedded, whose polls it does not see, asks.
                let window = self.settings.config.stale_check_after;
                let polled = self.polled_at.is_some_and(|at| at.elapsed() < window);
                let stale =
                    (conn.read_pending || !polled) && roundtrip_io::sys::is_stale(&conn.socket);
                entry.ex.handle_probe(&mut conn.link, stale, now);
            }
            Action::Resolve => return self.start_lookup(ex, now),
            Action::Connect(addr) => self.open(ex, addr, now),
            Action::AwaitConnect => return Next::Wait,
            Action::Abort(addr) => self.abort(ex, addr),
            Action::Write { watch_read } => {
                let Some(conn) = conn else {
                    return self.fail(ex, misuse("a write without a connection"));
                };
                if watch_read && conn.read_pending {
                    // An answer may have come while the body was sent; if
                    // not, the write goes on.
                    read(entry, conn, &mut self.shared_read, now);
                    return Next::Go;
                }
                match conn.write() {
                    Ok(Some(n)) => entry.ex.handle_written(&mut conn.link, n, now),
                    Ok(None) => return Next::Wait,
                    Err(e) => entry.ex.handle_io_error(&mut conn.link, e, now),
                }
            }
            Action::NeedBody { .. } => {
                let upload = &mut self.upload;
                upload.clear();
                upload.resize(UPLOAD_CHUNK, 0);
                let piece = match entry.ex.request_body() {
                    Some(reader) => read_body_piece(reader, upload),
                    None => Ok(0),
                };
                let piece = piece.map(|n| upload.split_to(n).freeze());
                // The reader may have taken a while: the body's end starts
                // the head timeout at the time it came, and the rest of the
                // turn goes on from then.
                let now = self.clock.now();
                let Some(conn) = busy(&mut self.conns, entry, ex) else {
                    return self.fail(ex, misuse("a body without a connection"));
                };
                entry.ex.handle_request_body(&mut conn.link, piece, now);
                return Next::Later;
            }
            Action::Read => {
                let Some(conn) = conn else {
                    return self.fail(ex, misuse("a read without a connection"));
                };
                return read(entry, conn, &mut self.shared_read, now);
            }
            Action::Head => {
                let Some(response) = entry.ex.take_head() else {
                    return self.fail(ex, misuse("a head end without a head"));
                };
                let (parts, FinalUrl(url)) = response.into_parts();
                let (end, interim) = entry
                    .ex
                    .take_head_end()
                    .unwrap_or((UNKNOWN_END, Vec::new()));
                entry.head = Some((ResponseHead::from_parts(parts, end, interim), url));
            }
            Action::Data(data) => {
                let more = match entry.stopped {
                    true => true,
                    false => entry.take(data).unwrap_or_else(|panic| {
                        self.panicked.get_or_insert(panic);
                        false
                    }),
                };
                if !more {
                    entry.stopped = true;
                    entry.ex.abandon(conn.map(|c| &mut c.link), now);
                }
            }
            Action::Release => {
                if let Some(slot) = entry.conn.take() {
                    self.release_conn(slot, now);
                }
            }
            Action::Discard(reason) => {
                if let Some(slot) = entry.conn.take() {
                    self.discard_conn(slot, reason);
                }
            }
            Action::Upgrade => {
                self.upgrade(ex);
                let result = self.exchanges.get_mut(ex).map(Entry::result);
                self.finish(ex, result.unwrap_or_else(|| Err(misuse("no exchange"))));
                return Next::Done;
            }
            Action::Fail(e) => {
                self.finish(ex, Err(e));
                return Next::Done;
            }
            Action::End => {
                let result = entry.result();
                self.finish(ex, result);
                return Next::Done;
            }
            _ => return self.fail(ex, misuse("an action this driver does not know")),
        }
        Next::Go
    }

    /// Arms the exchange's one timer at its machine's next deadline and
    /// brings its connection's registered interest in line.
    fn settle_exchange(&mut self, ex: usize) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let conn = entry.conn;
        let busy = busy(&mut self.conns, entry, ex);
        let link = busy.map(|c| {
            self.shared_read.take_back(&mut c.link, &mut c.lent);
            &c.link
        });
        let want = entry.ex.poll_timeout(link);
        if let Some(at) = self.deadlines[ex].set(want) {
            self.timers.push(at, Target::Exchange { slot: ex });
        }
        if let Some(slot) = conn {
            self.settle_conn(slot);
        }
    }

    /// The exchange's timer popped at `now`: if the clock says its machine's
    /// deadline passed, the machine acts on it (a connect in progress is
    /// given up first).
    pub(crate) fn on_deadline(&mut self, ex: usize, now: Instant) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let conn = busy(&mut self.conns, entry, ex);
        let due = entry.ex.poll_timeout(conn.as_deref().map(|c| &c.link));
        if due.is_none_or(|at| at > now) {
            return self.settle_exchange(ex); // early: armed again
        }
        // (Connects that ran out of time are aborted by the machine.)
        let timed_out = |driver: &mut Driver| {
            let Some(entry) = driver.exchanges.get_mut(ex) else {
                return;
            };
            let conn = busy(&mut driver.conns, entry, ex);
            entry.ex.handle_timeout(conn.map(|c| &mut c.link), now);
        };
        if self.guarded(ex, timed_out).is_some() {
            self.drive(ex, now);
        }
    }

    /// Starts the machine's lookup on the resolver's lookup threads (one
    /// per name at a time, shared with the client's other requests and
    /// bounded in number); the loop takes the result when it next looks
    /// ([`Driver::poll_timeout`] is short meanwhile).
    fn start_lookup(&mut self, ex: usize, now: Instant) -> Next {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return Next::Done;
        };
        if entry.lookup.is_some() {
            return Next::Wait; // running
        }
        let Some((host, port)) = entry.ex.lookup_target() else {
            return self.fail(ex, misuse("a lookup of nothing"));
        };
        let lookup = self.settings.config.resolver.resolve_shared(host, port);
        let waker = crate::driver::LookupEnded::waker(&self.lookups_ended, ex, entry.serial);
        entry.lookup = Some((lookup, waker));
        self.looking.push((ex, entry.serial));
        // The first look starts it (or joins the one under way).
        match self.poll_lookup(ex, now) {
            true => Next::Go,
            false => Next::Wait,
        }
    }

    /// Looks whether the lookup of `ex` ended, without waiting; if so the
    /// machine goes on with its dial (true).
    pub(crate) fn poll_lookup(&mut self, ex: usize, now: Instant) -> bool {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return false;
        };
        let Some((lookup, waker)) = &mut entry.lookup else {
            return false;
        };
        let mut cx = std::task::Context::from_waker(waker);
        let std::task::Poll::Ready(resolved) = std::pin::Pin::new(lookup).poll(&mut cx) else {
            return false;
        };
        entry.lookup = None;
        let took = self.guarded(ex, |driver| {
            if let Some(entry) = driver.exchanges.get_mut(ex) {
                entry.ex.handle_resolved(resolved, now);
            }
        });
        took.is_some()
    }

    /// Starts a non-blocking connect to `addr` for `ex`, beside its others.
    fn open(&mut self, ex: usize, addr: std::net::SocketAddr, now: Instant) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let Some(permit) = &entry.permit else {
            entry
                .ex
                .handle_connect_failed(addr, io::Error::other("no dial permit"), now);
            return;
        };
        let socket = match TcpStream::connect(addr) {
            Ok(socket) => socket,
            Err(e) => return entry.ex.handle_connect_failed(addr, e, now),
        };
        let link = Link::new(permit.id(), permit.key().clone(), &self.settings.config);
        let slot = self.conns.insert(Conn {
            socket,
            link,
            state: ConnState::Connecting { exchange: ex, addr },
            interest: Interest::READABLE | Interest::WRITABLE,
            read_pending: false,
            lent: Lent::No,
            peer_closed: false,
        });
        let token = self
            .first_token
            .checked_add(slot)
            .filter(|&t| t < self.end_token)
            .map(mio::Token);
        let Some(conn) = self.conns.get_mut(slot) else {
            unreachable!("inserted just above")
        };
        let registered = match token {
            // Beyond the driver's token range: never a caller's token.
            None => Err(io::Error::other(
                "no token left in the driver's range (too many connections)",
            )),
            Some(token) => self
                .registry
                .register(&mut conn.socket, token, conn.interest),
        };
        match registered {
            Ok(()) => entry.attempts.push(slot),
            Err(e) => {
                close(&mut self.conns, &self.registry, slot);
                entry.ex.handle_connect_failed(addr, e, now);
            }
        }
    }

    /// Closes the connect of `ex` to `addr`.
    fn abort(&mut self, ex: usize, addr: std::net::SocketAddr) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let conns = &self.conns;
        let found = entry.attempts.iter().position(|&slot| {
            conns.get(slot).is_some_and(
                |c| matches!(c.state, ConnState::Connecting { addr: a, .. } if a == addr),
            )
        });
        if let Some(i) = found {
            let slot = entry.attempts.swap_remove(i);
            close(&mut self.conns, &self.registry, slot);
        }
    }

    /// A connecting socket became ready: connected (the machine takes it
    /// if it is the first), failed, or spurious.
    pub(crate) fn on_connect_ready(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let ConnState::Connecting { exchange: ex, addr } = conn.state else {
            return;
        };
        let Some(entry) = self.exchanges.get_mut(ex) else {
            close(&mut self.conns, &self.registry, slot);
            return;
        };
        let connected = conn.connected();
        if let Ok(false) = connected {
            return; // not yet: wait for the next event
        }
        entry.attempts.retain(|&s| s != slot);
        match connected {
            Ok(_) => {
                conn.state = ConnState::Busy(ex);
                // The permit stays the exchange's, and the connection its
                // slot's, until the exchange took it: a panic on the way
                // (its tracer's) gives the permit back and closes the slot.
                let offered = entry.permit.is_some();
                let take = |driver: &mut Driver| {
                    let entry = driver.exchanges.get_mut(ex)?;
                    let conn = driver.conns.get_mut(slot)?;
                    Some(entry.ex.handle_connected(addr, &mut conn.link, now))
                };
                let took = match offered.then(|| self.guarded(ex, take)) {
                    None => false,
                    Some(Some(took)) => took == Some(true),
                    Some(None) => return close_slot(&mut self.conns, &self.registry, slot),
                };
                let Some(entry) = self.exchanges.get_mut(ex) else {
                    return close_slot(&mut self.conns, &self.registry, slot);
                };
                match entry.permit.take() {
                    Some(permit) if took => {
                        entry.conn = Some(slot);
                        self.pool.dial_succeeded(permit);
                    }
                    permit => {
                        entry.permit = permit;
                        close(&mut self.conns, &self.registry, slot);
                    }
                }
            }
            Err(e) => {
                close(&mut self.conns, &self.registry, slot);
                let failed = |driver: &mut Driver| {
                    if let Some(entry) = driver.exchanges.get_mut(ex) {
                        entry.ex.handle_connect_failed(addr, e, now);
                    }
                };
                if self.guarded(ex, failed).is_none() {
                    return;
                }
            }
        }
        self.drive(ex, now);
    }

    /// The connection was switched to another protocol: it leaves the pool
    /// and the driver's poll, and waits for [`Driver::take_upgraded`] with
    /// the bytes read past the head.
    fn upgrade(&mut self, ex: usize) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let Some(slot) = entry.conn.take() else {
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let (id, reason) = (conn.link.id, CloseReason::Switched);
        let traced = conn.link.request.take();
        let grant = self.pool.discard(id, &conn.link.key, reason);
        self.grants.extend(grant);
        let request = RequestId {
            serial: entry.serial,
            slot: ex,
        };
        // Handed over before it is traced: a tracer that panics leaves no
        // slot behind.
        if let Some(mut conn) = self.conns.remove(slot) {
            let _ = self.registry.deregister(&mut conn.socket);
            let upgraded = roundtrip_io::drive::Upgraded::from_link(conn.socket, &mut conn.link);
            self.upgraded.insert(request, upgraded);
        }
        self.settings
            .config
            .tracing(traced)
            .trace(|| roundtrip_io::proto::trace::TraceEvent::ConnClosed { id, reason });
    }

    /// A failure of the driver itself (the machine asked for something it
    /// cannot do): the exchange ends with it.
    fn fail(&mut self, ex: usize, e: Error) -> Next {
        self.finish(ex, Err(e));
        Next::Done
    }

    /// Ends the exchange in `ex` with `result` (not reported once
    /// cancelled), giving back whatever it still holds: its place in the
    /// queue, its permit, a connect in progress.
    pub(crate) fn finish(&mut self, ex: usize, result: Result<Response, Error>) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        if let Some(ticket) = entry.ticket.take() {
            self.pool.cancel_wait(ticket);
            self.waiters.remove(&ticket);
        }
        if let Some(permit) = entry.permit.take() {
            let grant = self.pool.dial_failed(permit);
            self.grants.extend(grant);
        }
        for slot in std::mem::take(&mut entry.attempts) {
            close(&mut self.conns, &self.registry, slot);
        }
        // Held only after a callback's panic (the machine settles its
        // connection first): discarded last, since it is traced, and a
        // tracer that panics again must find the exchange ended.
        let held = entry.conn.take();
        if !entry.cancelled {
            let id = RequestId {
                serial: entry.serial,
                slot: ex,
            };
            self.finish_with(id, result);
        }
        let _ = self.deadlines[ex].set(None);
        self.exchanges.discard(ex);
        self.exchanges.release_if_empty(SLOTS_KEPT);
        if let Some(slot) = held {
            self.discard_conn(slot, CloseReason::Error);
        }
    }
}

/// Deregisters and closes the connection in `slot`; returns its state.
pub(crate) fn close(
    conns: &mut crate::slab::Slab<Conn>,
    registry: &mio::Registry,
    slot: usize,
) -> Option<ConnState> {
    let mut conn = conns.remove(slot)?;
    roundtrip_io::sys::send_nowait(&conn.socket, conn.link.goodbye());
    // Closing the socket would remove it from the poll as well; say so
    // explicitly, as mio asks.
    let _ = registry.deregister(&mut conn.socket);
    conns.release_if_empty(SLOTS_KEPT);
    Some(conn.state)
}

/// Closes the connection in `slot`, its result not needed.
fn close_slot(conns: &mut crate::slab::Slab<Conn>, registry: &mio::Registry, slot: usize) {
    close(conns, registry, slot);
}

/// Reads once for the exchange (into the driver's shared buffer when the
/// connection holds no bytes) and reports what came.
fn read(entry: &mut Entry, conn: &mut Conn, shared: &mut SharedReadBuf, now: Instant) -> Next {
    match conn.read(shared) {
        Ok(Got::WouldBlock) => return Next::Wait,
        Ok(Got::Bytes(0)) => entry.ex.handle_eof(&mut conn.link, now),
        Ok(Got::Bytes(n)) => entry.ex.handle_input(&mut conn.link, n, now),
        Err(e) => entry.ex.handle_io_error(&mut conn.link, e, now),
    }
    Next::Go
}

/// Stands in for a head end the machine did not keep (unreachable: it
/// keeps one per head).
const UNKNOWN_END: HeadEnd = HeadEnd {
    framing: Framing::UntilClose,
    reuse: Reuse::No(CloseReason::Error),
    interim: false,
    keep_alive_timeout: None,
};

fn misuse(what: &'static str) -> Error {
    let e = roundtrip_io::proto::Error::Misuse(what);
    Error::from_proto(e, Phase::Body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an exchange and a connection cost in the driver's slabs, one
    /// slot each (`BENCHMARKS.md`, "10,000 connections on one mio thread",
    /// has the whole budget of a connection): a guard against growth.
    #[test]
    fn slots_stay_within_their_budget() {
        let entry = std::mem::size_of::<Option<Entry>>();
        let conn = std::mem::size_of::<Option<Conn>>();
        eprintln!(
            "slot sizes: exchange {entry} B (machine {} B), connection {conn} B",
            std::mem::size_of::<Machine>()
        );
        assert!(entry <= 2048, "an exchange's slot is {entry} bytes");
        assert!(conn <= 1024, "a connection's slot is {conn} bytes");
    }
}
