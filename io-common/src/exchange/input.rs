//! The inputs of an [`Exchange`]: what the driver reports (the pool's
//! answer, the dial, bytes written and read, the end of stream, errors,
//! deadlines) and what the caller asks (abandon, cancel).

use std::io;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use roundtrip_proto::time::Instant;
use roundtrip_proto::{CloseReason, HeadEnd};

use super::{After, Exchange, Link, MAX_STALE_SKIPS, Sending, State, Timer, Wrote};
use crate::trace::Written;
use crate::{Error, Phase, TimeoutKind};

impl<R> Exchange<R> {
    // ---- inputs ----

    /// The pool gave an idle connection, idle for `idle_for`.
    pub fn handle_idle(&mut self, link: &mut Link, idle_for: core::time::Duration, now: Instant) {
        self.take_pooled(link, idle_for, true, now);
    }

    /// A check-in handed this waiting request its connection, `waited`
    /// ago: probed as one idle that long, traced as handed over.
    pub fn handle_handover(&mut self, link: &mut Link, waited: core::time::Duration, now: Instant) {
        self.take_pooled(link, waited, false, now);
    }

    fn take_pooled(
        &mut self,
        link: &mut Link,
        idle_for: core::time::Duration,
        from_idle: bool,
        now: Instant,
    ) {
        if !matches!(self.state, State::Checkout | State::Waiting) {
            return;
        }
        self.conn = Some(link.id);
        self.begun = false;
        // A stale probe's close is this request's too.
        link.request = Some(self.id);
        self.idle_for = from_idle.then_some(idle_for);
        // Young connections are reused without the probe, which would cost
        // a syscall on every request of a busy client; a close that races
        // with such a reuse is what the safe-retry rule is for. One whose
        // last body was read past the buffer by a read sized to it is
        // probed anyway: bytes after that body were never looked for
        // (`Link::unchecked_tail`).
        let unchecked = std::mem::take(&mut link.unchecked_tail);
        if unchecked || idle_for >= self.config().stale_check_after {
            self.state = State::Probe;
        } else {
            self.attach(link, true, now);
        }
    }

    /// The probe of [`Action::Probe`](super::Action::Probe) answered: the server closed the idle
    /// connection (or sent bytes on it), or not.
    pub fn handle_probe(&mut self, link: &mut Link, stale: bool, now: Instant) {
        if !matches!(self.state, State::Probe) {
            return;
        }
        if !stale {
            return self.attach(link, true, now);
        }
        self.stale_skips += 1;
        let then = if self.stale_skips >= MAX_STALE_SKIPS {
            // Every connection tried was closed by its server: that, not a
            // timeout (no deadline passed).
            After::Fail(Error::ClosedEarly {
                phase: Phase::PoolWait,
                reached_server: false,
            })
        } else {
            After::Checkout
        };
        self.state = State::Settle {
            close: Some(CloseReason::Stale),
            then,
        };
    }

    /// The driver answers [`Action::Read`](super::Action::Read) without
    /// waiting: its caller has not asked for more of the body (a look,
    /// after a piece, at whether the body ended). The read timeout starts
    /// when the driver waits: time the caller spends between reads is not
    /// a wait for the server.
    pub fn handle_read_deferred(&mut self) {
        if matches!(self.state, State::Body) {
            self.timers.disarm(Timer::ReadIdle);
        }
    }

    /// The host is at `max_conns_per_host`: the request waits its turn.
    pub fn handle_wait(&mut self, _now: Instant) {
        if matches!(self.state, State::Checkout) {
            self.state = State::Waiting;
        }
    }

    /// The socket took `n` more bytes of [`Link::wire_out`].
    pub fn handle_written(&mut self, link: &mut Link, n: usize, now: Instant) {
        let wire = n;
        let n = link.wire_written(wire);
        link.out.advance(n);
        link.proto.handle_written(n, now);
        if wire > 0 && matches!(self.state, State::Send) {
            let after = self.config().write_timeout;
            self.timers.arm(Timer::Write, now, after);
        }
        if !link.out.is_empty() || !matches!(self.state, State::Send) {
            return;
        }
        self.timers.disarm(Timer::Write);
        let done = self.sending == Sending::Ended || !link.proto.is_sending();
        let part = match (self.wrote, done) {
            (Wrote::Nothing, true) => Written::Whole,
            (Wrote::Nothing, false) => Written::Head,
            (Wrote::Head, true) => Written::End,
            (_, _) => Written::Body,
        };
        self.wrote = match (self.wrote, done) {
            (_, true) => Wrote::All,
            (_, false) => Wrote::Head,
        };
        self.tracing().trace_wrote(part);
    }

    /// The next piece of a streamed request body (empty at its end), or
    /// the reader's failure.
    pub fn handle_request_body(&mut self, link: &mut Link, piece: io::Result<Bytes>, now: Instant) {
        let probing = self.sending == Sending::Probing;
        if !matches!(self.state, State::Send) || !(probing || self.sending == Sending::Streaming) {
            return;
        }
        let result = match piece {
            // The one read of a reader declared empty: its end, or bytes
            // the request (sent with `Content-Length: 0`) did not carry.
            Ok(data) if probing => {
                self.sending = Sending::Ended;
                match data.len() as u64 {
                    0 => Ok(()),
                    supplied => Err(Error::BodyLength {
                        declared: 0,
                        supplied,
                        reached_server: link.proto.wrote_any_byte(),
                    }),
                }
            }
            Ok(data) => self.queue_body(link, data, false, now),
            Err(e) => Err(Error::RequestBody(e)),
        };
        if let Err(e) = result {
            self.tracing().trace_write_failed(&e);
            self.fail(link, e);
        }
    }

    /// Queues `data` with its framing; the whole body when `whole`, else
    /// one piece of a stream whose end is an empty piece.
    pub(super) fn queue_body(
        &mut self,
        link: &mut Link,
        data: Bytes,
        whole: bool,
        now: Instant,
    ) -> Result<(), Error> {
        let reached = link.proto.wrote_any_byte();
        let refused = |e| match e {
            roundtrip_proto::Error::BodyLengthMismatch { declared, supplied } => {
                Error::BodyLength {
                    declared,
                    supplied,
                    reached_server: reached,
                }
            }
            e => Error::from_proto(e, Phase::Write, reached),
        };
        if !data.is_empty() {
            let frame = link.proto.frame_body(data.len()).map_err(refused)?;
            link.out.head.extend_from_slice(frame.prefix());
            link.out.body = data;
            link.out.tail.extend_from_slice(frame.suffix());
            if !whole {
                return Ok(());
            }
        }
        link.proto
            .finish_body([], now, &mut link.out.tail)
            .map_err(refused)?;
        self.sending = Sending::Ended;
        Ok(())
    }

    /// Bytes were appended to [`Link::wire_in`] (`n` of them).
    pub fn handle_input(&mut self, link: &mut Link, n: usize, now: Instant) {
        link.record_read(n);
        if n > 0 {
            self.timers.disarm(Timer::ReadIdle);
            link.unchecked_tail = false;
        }
        if link.is_tls() && n > 0 {
            self.open_tls(link, now);
        }
    }

    /// Body bytes the driver may read from the socket straight into the
    /// caller's memory (a `Read` of the body into the caller's slice),
    /// skipping the read buffer and a copy out of it: `Some` with the most
    /// it may read while the machine reads a plaintext body it passes on
    /// as it comes (no content decoding) and nothing is buffered (see
    /// [`Connection::direct_body_room`]). Ask where the machine said
    /// [`Action::Read`](super::Action::Read), and report the read with
    /// [`handle_body_read`](Self::handle_body_read) instead of
    /// [`handle_input`](Self::handle_input).
    ///
    /// [`Connection::direct_body_room`]: roundtrip_proto::conn::Connection::direct_body_room
    pub fn direct_body_room(&self, link: &Link) -> Option<u64> {
        if !matches!(self.state, State::Body) || self.decoder.is_some() || link.is_tls() {
            return None;
        }
        link.proto.direct_body_room(&link.read_buf)
    }

    /// Whether a direct read of `len` bytes (at most
    /// [`direct_body_room`](Self::direct_body_room)) should go on into
    /// [`Link::tail_room`] in the same read (a scatter read): when it may
    /// reach the end of the room (the body's or the chunk's), so that what
    /// follows (the chunk's framing, or bytes a server should not have
    /// sent after its response) is seen with it rather than left in the
    /// socket; not when the caller's memory ends first, where the rest
    /// would be more of the body, copied through the buffer.
    pub fn tail_wanted(&self, link: &Link, len: usize) -> bool {
        self.direct_body_room(link)
            .is_some_and(|room| len as u64 >= room)
    }

    /// `n` body bytes were read into the caller's memory (see
    /// [`direct_body_room`](Self::direct_body_room)); 0 is the server's
    /// close. `tail`: `Some(k)` when the same read was a scatter read whose
    /// second part was the spare room of [`Link::wire_in`] (not empty),
    /// which took `k` bytes after the body's (appended there, decoded as
    /// usual; 0 when nothing followed); `None` for a read into the
    /// caller's memory alone, which leaves any bytes after the body
    /// unseen: the connection is then probed before its next use.
    pub fn handle_body_read(
        &mut self,
        link: &mut Link,
        n: usize,
        tail: Option<usize>,
        now: Instant,
    ) {
        let appended = tail.unwrap_or(0);
        if n == 0 && appended == 0 {
            return self.handle_eof(link, now);
        }
        // What `direct_body_room` allowed before the read; the core checks
        // the count against the room and that the buffer held nothing then.
        let passed_on =
            matches!(self.state, State::Body) && self.decoder.is_none() && !link.is_tls();
        let taken = match passed_on {
            true => link
                .proto
                .take_body_direct(&link.read_buf, n as u64, appended),
            false => Err(roundtrip_proto::Error::Misuse(
                "body bytes read past what direct_body_room allowed",
            )),
        };
        if let Err(e) = taken {
            return self.fail(link, Error::from_proto(e, Phase::Body, true));
        }
        link.sizer.record_direct(n);
        link.unchecked_tail = tail.is_none();
        self.timers.disarm(Timer::ReadIdle);
        if appended > 0 {
            self.handle_input(link, appended, now);
        }
    }

    /// The server closed its side.
    pub fn handle_eof(&mut self, link: &mut Link, now: Instant) {
        match self.close_tls(link) {
            Err(()) => return,
            // RFC 8446 section 6.1: without `close_notify`, a body that
            // runs until the close may have been cut by anyone on the path.
            Ok(Some(false)) if self.until_close && matches!(self.state, State::Body) => {
                let err = Error::tls(crate::tls::TlsError::Truncated, Phase::Body, true);
                return self.fail(link, err);
            }
            // Before the head is decoded (its framing unknown yet): kept.
            Ok(Some(false)) => self.unclean_eof = true,
            Ok(_) => {}
        }
        self.peer_closed(link, now);
    }

    /// Nothing more comes from the server.
    pub(super) fn peer_closed(&mut self, link: &mut Link, _now: Instant) {
        link.proto.handle_eof();
        self.eof = true;
        self.timers.disarm(Timer::ReadIdle);
    }

    /// A read or write on the socket failed.
    pub fn handle_io_error(&mut self, link: &mut Link, e: io::Error, _now: Instant) {
        if matches!(self.state, State::Settle { .. }) {
            return; // writing a TLS alert before the close: nothing to lose
        }
        let err = Error::from_io(e, self.phase(Some(link)), self.reached(link));
        if matches!(self.state, State::Send) && !link.out.is_empty() {
            self.tracing().trace_write_failed(&err);
        }
        self.trace_handshake_failed(&err);
        self.fail(link, err);
    }

    /// Acts on every deadline passed by `now`; early calls are harmless.
    pub fn handle_timeout(&mut self, link: Option<&mut Link>, now: Instant) {
        let mut link = link;
        if let Some(link) = link.as_deref_mut() {
            link.proto.handle_timeout(now);
        }
        let Some(timer) = self.timers.fired(now) else {
            return;
        };
        self.timers.disarm(timer);
        let kind = match (timer, &self.state) {
            // Draining a body the caller gave up: the drain has its own bound.
            (Timer::Total, State::Drain(After::End | After::Fail(_))) => return,
            (Timer::Total, State::Drain(_)) => {
                // Draining a redirect's body on the way to the next hop.
                let err = self.timed_out(TimeoutKind::Total, link.as_deref(), now);
                self.state = State::Settle {
                    close: Some(CloseReason::Timeout),
                    then: After::Fail(err),
                };
                return;
            }
            (Timer::Total, _) => TimeoutKind::Total,
            (Timer::Connect, State::Dial | State::Tunnel | State::Socks(_)) => TimeoutKind::Connect,
            (Timer::Handshake, State::Handshake) => TimeoutKind::TlsHandshake,
            (Timer::Write, State::Send) => TimeoutKind::Write,
            (Timer::ReadIdle, State::Send | State::Head | State::Body) => TimeoutKind::ReadIdle,
            _ => return, // a timer left from an earlier state
        };
        let err = self.timed_out(kind, link.as_deref(), now);
        if matches!(self.state, State::Dial) {
            self.dial_timed_out();
        }
        self.trace_handshake_failed(&err);
        if matches!(self.state, State::Send) && link.as_deref().is_some_and(|l| !l.out.is_empty()) {
            self.tracing().trace_write_failed(&err);
        }
        match link {
            // A failure already decided (a cancel) stands; the drain ends.
            Some(_) if matches!(self.state, State::Drain(After::Fail(_))) => {
                if let State::Drain(then) = std::mem::replace(&mut self.state, State::End) {
                    self.state = State::Settle {
                        close: Some(err.close_reason()),
                        then,
                    };
                }
            }
            // A redirect's body still draining: the chain ends here.
            Some(_) if matches!(self.state, State::Drain(_)) => {
                self.state = State::Settle {
                    close: Some(err.close_reason()),
                    then: After::Fail(err),
                }
            }
            Some(_) if matches!(self.state, State::Probe) => {
                self.state = State::Settle {
                    close: None,
                    then: After::Fail(err),
                }
            }
            Some(link) if self.conn.is_some() => self.fail(link, err),
            _ => self.state = State::Failed(err),
        }
    }

    pub(super) fn timed_out(&self, kind: TimeoutKind, link: Option<&Link>, now: Instant) -> Error {
        let total = self.timers.get(Timer::Total).is_some_and(|at| at <= now);
        Error::Timeout {
            kind: if total { TimeoutKind::Total } else { kind },
            phase: self.phase(link),
            reached_server: link.is_some_and(|l| self.reached(l)),
        }
    }

    /// The caller dropped the response body before its end: drain the
    /// rest or close, as the core decides.
    pub fn abandon(&mut self, link: Option<&mut Link>, now: Instant) {
        match (&self.state, link) {
            (State::Body, Some(link)) => self.leave(link, After::End, now),
            (State::Switched, _) => {
                self.state = State::Settle {
                    close: Some(CloseReason::Switched),
                    then: After::End,
                }
            }
            (State::Drain(_) | State::Settle { .. } | State::End | State::Failed(_), _) => {}
            // Given up before the head: the request is cancelled.
            (_, link) => self.cancel(link, now),
        }
    }

    /// What the last [`Action::Head`](super::Action::Head)'s `http::Response` has no place for:
    /// the head's [`HeadEnd`] (framing, reuse verdict, keep-alive hint) and
    /// the interim (1xx) statuses before it, for a driver whose caller sees
    /// a whole [`ResponseHead`](crate::ResponseHead). Taken once per head.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use roundtrip_io::exchange::sim::{Server, Sim};
    /// use roundtrip_io::exchange::{Exchange, Settings};
    /// use roundtrip_io::proto::Framing;
    /// let mut sim = Sim::new(roundtrip_io::Config::default());
    /// sim.serve(Server::reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    /// let settings = Arc::new(Settings::new(roundtrip_io::Config::default()));
    /// let (parts, body) = http::Request::get("http://127.0.0.1/").body(roundtrip_io::Body::empty()).unwrap().into_parts();
    /// let mut ex = Exchange::new(settings, parts, body, sim.now());
    /// sim.run(&mut ex, None).unwrap();
    /// let (end, interim) = ex.take_head_end().unwrap();
    /// assert_eq!((end.framing, interim.len()), (Framing::Length(2), 0));
    /// assert!(ex.take_head_end().is_none());
    /// ```
    pub fn take_head_end(&mut self) -> Option<(HeadEnd, Vec<StatusCode>)> {
        self.head_end.take()
    }

    /// The trailers of a chunked body that ended, taken.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take().map(|t| *t)
    }

    /// The body bytes still to come, exactly, when that is known: the rest
    /// of a `Content-Length` body that no content decoding changes (what
    /// `http_body::Body::size_hint` reports). `None` for a chunked body,
    /// one delimited by the close, or one being decoded.
    ///
    /// ```
    /// use roundtrip_io::exchange::sim::Sim;
    /// let sim = Sim::new(roundtrip_io::Config::default());
    /// let request = http::Request::get("http://127.0.0.1/").body(Default::default()).unwrap();
    /// assert_eq!(sim.exchange(request).remaining_body(None), None, "no response yet");
    /// ```
    pub fn remaining_body(&self, link: Option<&Link>) -> Option<u64> {
        match self.decoder {
            Some(_) => None,
            None => link?.proto.remaining_body(),
        }
    }

    /// The error for a request one of whose own callbacks (its tracer,
    /// redirect policy, body's reader) panicked in the exchange's present
    /// state: where it was, and whether it may have reached the server
    /// (started on `link`), as a cancel's error says. The driver ends the
    /// request with it; nothing is traced.
    ///
    /// ```
    /// use roundtrip_io::exchange::sim::Sim;
    /// use roundtrip_io::{Delivery, Phase};
    /// let sim = Sim::new(roundtrip_io::Config::default());
    /// let request = http::Request::get("http://127.0.0.1/").body(Default::default()).unwrap();
    /// let e = sim.exchange(request).panicked_error(None);
    /// assert_eq!((e.phase(), e.delivery()), (Some(Phase::PoolWait), Delivery::NotSent));
    /// ```
    pub fn panicked_error(&self, link: Option<&Link>) -> Error {
        Error::Panicked {
            phase: self.phase(link),
            reached_server: link.is_some_and(|l| self.reached(l)),
        }
    }

    /// The caller gave up on the request: whatever it holds is released
    /// (a connection drained or closed as the core decides), and the
    /// exchange fails with [`Error::Cancelled`].
    pub fn cancel(&mut self, link: Option<&mut Link>, now: Instant) {
        let reached = link.as_deref().is_some_and(|l| self.reached(l));
        let phase = match &self.state {
            // Between two requests of the exchange: the last one's
            // connection settles, the next (a hop, a retry) waits its own.
            // (A drain is still the last response's body.)
            State::Settle {
                then: After::Checkout | After::Hop | After::Retry,
                ..
            } => Phase::PoolWait,
            _ => self.phase(link.as_deref()),
        };
        let cancelled = Error::Cancelled {
            phase,
            reached_server: reached,
        };
        if let State::Drain(then) | State::Settle { then, .. } = &mut self.state {
            // The connection settles as it was going to; what was to come
            // after it (a redirect's next hop, a retry, another checkout)
            // does not.
            if matches!(then, After::Checkout | After::Hop | After::Retry) {
                *then = After::Fail(cancelled);
            }
            return;
        }
        match (&self.state, link) {
            (State::End | State::Failed(_), _) => {}
            (State::Send | State::Head | State::Body, Some(link)) => {
                self.leave(link, After::Fail(cancelled), now)
            }
            (State::Drain(_) | State::Settle { .. }, _) => {} // above
            (State::Probe, Some(_)) => {
                self.state = State::Settle {
                    close: None,
                    then: After::Fail(cancelled),
                }
            }
            (State::Handshake | State::Tunnel | State::Socks(_), Some(_)) => {
                self.trace_handshake_failed(&cancelled);
                self.state = State::Settle {
                    close: Some(CloseReason::Error),
                    then: After::Fail(cancelled),
                }
            }
            (State::Switched, _) => {
                self.state = State::Settle {
                    close: Some(CloseReason::Switched),
                    then: After::Fail(cancelled),
                }
            }
            _ => self.state = State::Failed(cancelled),
        }
    }
}
