//! How the driver moves an exchange: checkout, connect, write the request,
//! read the response, finish, fail (with the safe-retry rule) or stop.
//! Every protocol decision is the core's; these functions execute them.

use std::io;
use std::net::ToSocketAddrs;

use mio::Interest;
use mio::net::TcpStream;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::conn::{Abandon, Connection, RetryFacts};
use roundtrip_io::proto::pool::{Checkout, DialPermit};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::{TIMED_OUT, connect_failure};
use roundtrip_io::{Error, Phase, TimeoutKind};

use crate::conn::{Conn, ConnState, Dial};
use crate::driver::Driver;
use crate::exchange::{Sending, Stage, Step, Stop, flushed, queue_body};
use crate::timer::ConnTimer;

/// Reads one readiness event may do before the connection yields to others.
const READS_PER_TURN: usize = 32;
/// Body pieces one turn may queue before the connection yields to others.
const WRITES_PER_TURN: usize = 64;
/// Stale idle connections one checkout may skip.
const MAX_STALE_SKIPS: usize = 1024;

impl Driver {
    /// Checks out a connection for the exchange in `ex`: an idle one (unless
    /// the server closed it), a new one, or a place in the queue.
    pub(crate) fn begin(&mut self, ex: usize, now: Instant) {
        if let Some(exchange) = self.exchanges.get(ex) {
            let key = &exchange.prepared.key;
            self.config
                .trace(|| TraceEvent::GetConn { key: key.clone() });
        }
        for _ in 0..MAX_STALE_SKIPS {
            let Some(exchange) = self.exchanges.get(ex) else {
                return;
            };
            let checkout = self.pool.checkout(&exchange.prepared.key, now);
            self.reap();
            match checkout {
                Checkout::Idle(idle) => {
                    if self.is_stale_at_checkout(idle.handle, now) {
                        self.discard_conn(idle.handle, CloseReason::Stale);
                        continue;
                    }
                    if let Some(conn) = self.conns.get_mut(idle.handle) {
                        conn.reused = true;
                    }
                    let pooled = TraceEvent::got_pooled(idle.id, Some(idle.idle_for));
                    self.config.trace(|| pooled);
                    return self.attach(ex, idle.handle, now);
                }
                Checkout::Dial(permit) => return self.dial(ex, permit, now),
                Checkout::Wait(ticket) => {
                    self.waiters.insert(ticket, ex);
                    if let Some(exchange) = self.exchanges.get_mut(ex) {
                        exchange.stage = Stage::Waiting(ticket);
                    }
                    return;
                }
            }
        }
        let err = Error::Timeout {
            kind: TimeoutKind::Total,
            phase: Phase::PoolWait,
            reached_server: false,
        };
        self.finish(ex, Err(err));
    }

    /// Resolves the permit's host (IP literals without DNS) and connects.
    pub(crate) fn dial(&mut self, ex: usize, permit: DialPermit, now: Instant) {
        let key = permit.key();
        let addr = format!("{}:{}", key.host(), key.port());
        let resolved = (key.host(), key.port()).to_socket_addrs();
        let dial = Dial {
            exchange: ex,
            addr,
            rest: Vec::new().into_iter(),
            trying: None,
            last_error: io::Error::new(io::ErrorKind::NotFound, "no address for host"),
            deadline: None,
            permit,
        };
        match resolved {
            Ok(addrs) => self.open(
                Dial {
                    rest: addrs.collect::<Vec<_>>().into_iter(),
                    ..dial
                },
                now,
            ),
            Err(e) => self.dial_failed(
                Dial {
                    last_error: e,
                    ..dial
                },
                false,
            ),
        }
    }

    /// Starts a non-blocking connect to the next address of `dial`.
    fn open(&mut self, mut dial: Dial, now: Instant) {
        let ex = dial.exchange;
        // Bounded by the resolved addresses.
        while let Some(addr) = dial.rest.next() {
            self.config.trace(|| TraceEvent::ConnectStart { addr });
            dial.trying = Some(addr);
            let stream = match TcpStream::connect(addr) {
                Ok(stream) => stream,
                Err(e) => {
                    self.trace_connect_done(&dial, Err(&e));
                    dial.last_error = e;
                    continue;
                }
            };
            dial.deadline = self.config.connect_timeout.map(|t| now + t);
            let serial = self.next_serial();
            let proto = Connection::new(self.config.conn_config());
            let slot = self
                .conns
                .insert(Conn::new(stream, serial, dial, proto, now));
            let token = self.token(slot);
            let Some(conn) = self.conns.get_mut(slot) else {
                unreachable!("inserted just above")
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.registry.register(&mut conn.stream, token, interest) {
                let Some(ConnState::Connecting(back)) = self.close_conn(slot) else {
                    unreachable!("a new connection is connecting")
                };
                self.trace_connect_done(&back, Err(&e));
                dial = Dial {
                    last_error: e,
                    ..back
                };
                continue;
            }
            if let Some(exchange) = self.exchanges.get_mut(ex) {
                exchange.stage = Stage::Dialing(slot);
            }
            return self.settle_conn(slot);
        }
        self.dial_failed(dial, false);
    }

    /// No connection could be made: the permit goes back, the exchange fails.
    fn dial_failed(&mut self, dial: Dial, timed_out: bool) {
        let grant = self.pool.dial_failed(dial.permit);
        self.grants.extend(grant);
        let err = if timed_out {
            Error::Timeout {
                kind: TimeoutKind::Connect,
                phase: Phase::Connect,
                reached_server: false,
            }
        } else {
            Error::Connect {
                addr: dial.addr,
                source: dial.last_error,
            }
        };
        self.finish(dial.exchange, Err(err));
    }

    /// A connecting socket became ready: connected, failed, or spurious.
    pub(crate) fn on_connect_ready(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let result = match conn.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match conn.stream.peer_addr() {
                Ok(_) => conn.stream.set_nodelay(true).map(|()| true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(false) => {} // not yet: wait for the next event
            Ok(true) => {
                let ConnState::Connecting(dial) =
                    std::mem::replace(&mut conn.state, ConnState::Idle)
                else {
                    unreachable!("only connecting connections get here")
                };
                conn.last_io = now;
                self.trace_connect_done(&dial, Ok(()));
                let got = TraceEvent::got_dialed(dial.permit.id());
                self.pool.dial_succeeded(dial.permit);
                self.config.trace(|| got);
                self.attach(dial.exchange, slot, now);
            }
            Err(e) => {
                let Some(ConnState::Connecting(dial)) = self.close_conn(slot) else {
                    unreachable!("only connecting connections get here")
                };
                self.trace_connect_done(&dial, Err(&e));
                self.open(
                    Dial {
                        last_error: e,
                        ..dial
                    },
                    now,
                );
            }
        }
    }

    /// Reports the end of the connect attempt `dial` was making.
    fn trace_connect_done(&self, dial: &Dial, result: Result<(), &io::Error>) {
        if let Some(addr) = dial.trying {
            let result = result.map_err(connect_failure);
            self.config
                .trace(|| TraceEvent::ConnectDone { addr, result });
        }
    }

    /// Reports the end of the connect in `slot`, given up as its exchange
    /// failed with `err` (its deadline passed).
    fn trace_dial_given_up(&self, slot: usize, err: &Error) {
        if let Some(ConnState::Connecting(dial)) = self.conns.get(slot).map(|c| &c.state)
            && let Some(addr) = dial.trying
        {
            let result = Err(match err {
                Error::Timeout { .. } => TIMED_OUT.to_string(),
                other => other.to_string(),
            });
            self.config
                .trace(|| TraceEvent::ConnectDone { addr, result });
        }
    }

    /// Gives the connection in `slot` to the exchange in `ex` and starts it.
    pub(crate) fn attach(&mut self, ex: usize, slot: usize, now: Instant) {
        let Some(exchange) = self.exchanges.get_mut(ex) else {
            // Unreachable: a connection is attached only to a live exchange.
            return self.release_conn(slot, now);
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            // Unreachable: the pool hands out only open connections.
            let gone = io::Error::new(io::ErrorKind::NotConnected, "connection closed");
            return self.fail(ex, Error::from_io(gone, Phase::Write, false), now);
        };
        conn.state = ConnState::Busy(ex);
        exchange.stage = Stage::Active(slot);
        conn.out.clear();
        let (prepared, parts) = (&exchange.prepared, &exchange.parts);
        let started = prepared.start(
            parts,
            &self.config,
            &self.defaults,
            &mut conn.proto,
            now,
            &mut conn.out.head,
        );
        if let Err(err) = started {
            // Refused before a byte was written: the connection is intact.
            self.release_conn(slot, now);
            return self.finish(ex, Err(err));
        }
        conn.last_io = now;
        exchange.sending = if conn.proto.is_sending() {
            Sending::Unsent
        } else {
            Sending::Done
        };
        let (pending, serial) = (conn.read_pending, conn.serial);
        self.pump(ex, slot, now);
        // Readiness no event will report again: read now (after the write,
        // so a connection the server closed fails as "request written").
        if pending && self.conns.get(slot).is_some_and(|c| c.serial == serial) {
            self.on_readable(slot, now);
        }
        self.settle_conn(slot);
    }

    /// Queues what the core allows of the request body and writes until the
    /// queue is empty or the socket is full.
    pub(crate) fn pump(&mut self, ex: usize, slot: usize, now: Instant) {
        for _ in 0..WRITES_PER_TURN {
            let (Some(conn), Some(exchange)) =
                (self.conns.get_mut(slot), self.exchanges.get_mut(ex))
            else {
                return;
            };
            let queued = match queue_body(conn, exchange, now) {
                Ok(queued) => queued,
                Err(e) => {
                    self.config.trace_write_failed(&e);
                    return self.fail(ex, e, now);
                }
            };
            if !queued && conn.out.is_empty() {
                return;
            }
            match conn.flush(now) {
                Ok(true) => self.config.trace_wrote(flushed(exchange)),
                Ok(false) => return, // full: resume on writable
                Err(e) => {
                    let err = Error::from_io(e, Phase::Write, conn.proto.wrote_any_byte());
                    self.config.trace_write_failed(&err);
                    return self.fail(ex, err, now);
                }
            }
        }
        if let Some(conn) = self.conns.get(slot) {
            self.ready.push((slot, conn.serial));
        }
    }

    /// Reads what the socket holds for a busy connection and decodes it.
    pub(crate) fn on_readable(&mut self, slot: usize, now: Instant) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            let ConnState::Busy(ex) = conn.state else {
                return;
            };
            let serial = conn.serial;
            match conn.read() {
                Ok((0, _)) => {
                    conn.read_pending = false;
                    conn.proto.handle_eof();
                    return self.decode(ex, slot, now);
                }
                Ok((_, short)) => {
                    conn.last_io = now;
                    // Read dry, and no EOF announced that no event will
                    // repeat: the next bytes raise an event, so no read
                    // that would only say `WouldBlock` (one syscall less
                    // per response).
                    let dry = short && !conn.peer_closed;
                    self.decode(ex, slot, now);
                    let Some(conn) = self.conns.get_mut(slot).filter(|c| c.serial == serial) else {
                        return;
                    };
                    conn.read_pending = !dry;
                    if dry || !matches!(conn.state, ConnState::Busy(e) if e == ex) {
                        // Wait for the event, or the exchange ended (and the
                        // next one reads first if readiness may be pending).
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.read_pending = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reached = conn.proto.wrote_any_byte();
                    let phase = self
                        .exchanges
                        .get(ex)
                        .map_or(Phase::Body, |x| x.recv_phase());
                    return self.fail(ex, Error::from_io(e, phase, reached), now);
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(slot) {
            conn.read_pending = true;
            self.ready.push((slot, conn.serial));
        }
    }

    /// Pulls the core's events from the read buffer into the exchange.
    pub(crate) fn decode(&mut self, ex: usize, slot: usize, now: Instant) {
        // Bounded by the bytes buffered: each event consumes some; End,
        // Switched and errors return.
        loop {
            let (Some(conn), Some(exchange)) =
                (self.conns.get_mut(slot), self.exchanges.get_mut(ex))
            else {
                return;
            };
            let reached = conn.proto.wrote_any_byte();
            let event = match self.config.poll_event(&mut conn.proto, &mut conn.read_buf) {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) => {
                    let err = Error::from_proto(e, exchange.recv_phase(), reached);
                    return self.fail(ex, err, now);
                }
            };
            match exchange.on_event(event, reached, &self.config) {
                Ok(Step::More | Step::Head) => {}
                Ok(Step::Stop) => {
                    if conn.proto.abandon(now) != Abandon::Drain {
                        return self.complete(ex, slot, now);
                    }
                }
                Ok(Step::End | Step::Switched) => return self.complete(ex, slot, now),
                Err(e) => return self.fail(ex, e, now),
            }
        }
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let stopped = self.exchanges.get(ex).is_some_and(|x| x.recv.is_stopped());
        if stopped && !conn.proto.is_draining() {
            // The core gave up the drain (budget or deadline): settle now.
            return self.complete(ex, slot, now);
        }
        // A `100 Continue` may have released the body.
        self.pump(ex, slot, now);
    }

    /// The response ended (or the caller stopped and the core decided):
    /// the connection goes back with the core's verdict, the result out.
    pub(crate) fn complete(&mut self, ex: usize, slot: usize, now: Instant) {
        self.release_conn(slot, now);
        self.report(ex);
    }

    /// Reports the exchange's result as its response decided it (unless it
    /// was cancelled, or it goes on to a redirect's next hop); its
    /// connection was already dealt with.
    fn report(&mut self, ex: usize) {
        if self.follow_redirect(ex) {
            return;
        }
        if let Some(exchange) = self.exchanges.get_mut(ex)
            && !exchange.cancelled
        {
            let id = exchange.id(ex);
            let result = exchange.take_result();
            self.finished.push_back((id, result));
        }
        self.exchanges.discard(ex);
    }

    /// Ends the exchange in `ex` with `result`, wherever it stands; its
    /// connection (if any) was already dealt with.
    pub(crate) fn finish(&mut self, ex: usize, result: Result<crate::Response, Error>) {
        if let Some(exchange) = self.exchanges.remove(ex)
            && !exchange.cancelled
        {
            self.finished.push_back((exchange.id(ex), result));
        }
    }

    /// The exchange failed with `err`: give back what it holds, then retry
    /// it once when the core says that is safe, or report the error.
    pub(crate) fn fail(&mut self, ex: usize, err: Error, now: Instant) {
        let Some(exchange) = self.exchanges.get(ex) else {
            return;
        };
        let slot = match exchange.stage {
            Stage::Active(slot) => slot,
            stage => {
                if let Stage::Dialing(slot) = stage {
                    self.trace_dial_given_up(slot, &err);
                }
                self.abort(ex, now);
                return self.finish(ex, Err(err));
            }
        };
        if exchange.recv.is_stopped() {
            // The caller stopped reading and the drain failed: the result
            // was decided when it stopped.
            self.discard_conn(slot, err.close_reason());
            return self.report(ex);
        }
        let retry = !exchange.retried
            && self.conns.get(slot).is_some_and(|conn| {
                let facts = RetryFacts {
                    reused: conn.reused,
                    idempotent: exchange.prepared.idempotent,
                    body_replayable: exchange.body.is_replayable(),
                };
                err.may_resend(&conn.proto, facts)
            });
        self.discard_conn(slot, err.close_reason());
        match self.exchanges.get_mut(ex) {
            Some(exchange) if retry => {
                exchange.reset_for_retry();
                self.begin(ex, now);
            }
            _ => self.finish(ex, Err(err)),
        }
    }

    /// Gives up what the exchange holds without finishing it: its place in
    /// the queue, its dial, or its connection (drained or closed as the core
    /// decides, which may complete it).
    pub(crate) fn abort(&mut self, ex: usize, now: Instant) {
        let Some(stage) = self.exchanges.get(ex).map(|x| x.stage) else {
            return;
        };
        match stage {
            Stage::New => {}
            Stage::Waiting(ticket) => {
                self.pool.cancel_wait(ticket);
                self.waiters.remove(&ticket);
            }
            Stage::Dialing(slot) => {
                if let Some(ConnState::Connecting(dial)) = self.close_conn(slot) {
                    let grant = self.pool.dial_failed(dial.permit);
                    self.grants.extend(grant);
                }
            }
            Stage::Active(slot) => {
                if let Some(exchange) = self.exchanges.get_mut(ex) {
                    exchange.recv.stop(Stop::Caller);
                }
                let abandon = self.conns.get_mut(slot).map(|c| c.proto.abandon(now));
                if abandon != Some(Abandon::Drain) {
                    self.complete(ex, slot, now);
                }
                return;
            }
        }
        match self.exchanges.get_mut(ex) {
            Some(exchange) if exchange.cancelled => {
                self.exchanges.remove(ex);
            }
            Some(exchange) => exchange.stage = Stage::New,
            None => {}
        }
    }

    /// The exchange's total deadline passed.
    pub(crate) fn on_deadline(&mut self, ex: usize, now: Instant) {
        let Some(exchange) = self.exchanges.get(ex) else {
            return;
        };
        let conn = match exchange.stage {
            Stage::Active(slot) => self.conns.get(slot),
            _ => None,
        };
        let err = Error::Timeout {
            kind: TimeoutKind::Total,
            phase: exchange.phase(conn),
            reached_server: conn.is_some_and(|c| c.proto.wrote_any_byte()),
        };
        if let Some(err) = self.end_redirect(ex, err) {
            self.fail(ex, err, now);
        }
    }

    /// A connection's deadline passed.
    pub(crate) fn on_conn_timer(&mut self, slot: usize, kind: ConnTimer, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let busy = match conn.state {
            ConnState::Busy(ex) => Some(ex),
            _ => None,
        };
        match kind {
            ConnTimer::Connect if matches!(conn.state, ConnState::Connecting(_)) => {
                if let Some(ConnState::Connecting(dial)) = self.close_conn(slot) {
                    let timed_out = io::Error::from(io::ErrorKind::TimedOut);
                    self.trace_connect_done(&dial, Err(&timed_out));
                    self.dial_failed(dial, true);
                }
            }
            ConnTimer::Io => {
                let Some(ex) = busy else { return };
                let Some(exchange) = self.exchanges.get(ex) else {
                    return;
                };
                let phase = exchange.phase(Some(conn));
                let err = Error::Timeout {
                    kind: match phase {
                        Phase::Write => TimeoutKind::Write,
                        _ => TimeoutKind::ReadIdle,
                    },
                    phase,
                    reached_server: conn.proto.wrote_any_byte(),
                };
                self.fail(ex, err, now);
            }
            ConnTimer::Core => {
                if let Some(ex) = busy {
                    conn.proto.handle_timeout(now);
                    self.decode(ex, slot, now);
                }
            }
            ConnTimer::Connect => {}
        }
    }
}
