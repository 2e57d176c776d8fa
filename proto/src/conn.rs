//! `Connection`: one HTTP/1.1 exchange at a time over one transport
//! connection, the sans-IO analogue of Go's `persistConn`.
//!
//! # Theory of operation
//!
//! An exchange has two halves that move independently, plus a reuse verdict
//! that only ever goes from `Yes` to `No`:
//!
//! ```text
//!  send:  Idle --start--> AwaitContinue --100 / timeout--> Body --finish--> Done
//!                 \                     \--final status--> Skipped (body never sent)
//!                  \--(no body)----------------------------------------> Done
//!
//!  recv:  Idle --start--> Head --final HeadEnd--> Body --End--> Done
//!                          |  ^ 1xx                 | abandon()
//!                          |  +--                   v
//!                          |                     Draining --End--> Done
//!                          +--101 / CONNECT 2xx--> Switched
//!
//!  reuse: Yes --(Connection: close, HTTP/1.0, read-to-close, error, timeout,
//!                abandoned body, body not sent, unsolicited bytes)--> No(reason)
//! ```
//!
//! The exchange is complete when both halves are `Done` (or `Skipped`); the
//! connection may then carry the next request if [`Connection::is_reusable`].
//! Time is an input: every call that can move a deadline takes `now`, and
//! [`Connection::poll_timeout`] tells the adapter when to call
//! [`Connection::handle_timeout`]. Three timers exist ([`Timer`]): the
//! 100-continue wait, the response-head timeout and the drain bound for an
//! abandoned body.
//!
//! # Call order
//!
//! 1. [`start`](Connection::start) writes the request head into the adapter's
//!    write buffer.
//! 2. While [`may_send_body`](Connection::may_send_body): for each piece of
//!    body data, [`frame_body`](Connection::frame_body) gives the framing to
//!    write around it; then [`finish_body`](Connection::finish_body).
//! 3. Report what the socket accepted with
//!    [`handle_written`](Connection::handle_written).
//! 4. Append received bytes to the read buffer and pull
//!    [`poll_event`](Connection::poll_event) until `Ok(None)`; on EOF call
//!    [`handle_eof`](Connection::handle_eof) and poll again.
//! 5. Wait for readiness or [`poll_timeout`](Connection::poll_timeout),
//!    whichever comes first; call [`handle_timeout`](Connection::handle_timeout)
//!    when the deadline passes (early calls are harmless), then go to 2.
//!
//! ```
//! use bytes::BytesMut;
//! use roundtrip_proto::conn::{ConnConfig, Connection};
//! use roundtrip_proto::encode::{BodyFraming, RequestHead};
//! use roundtrip_proto::{Event, time::Instant};
//!
//! let mut conn = Connection::new(ConnConfig::default());
//! let head = RequestHead {
//!     method: b"GET", target: b"/", host: Some(b"example.com"),
//!     body: BodyFraming::None, expect_continue: false, close: false,
//!     preset: None,
//! };
//! let mut out = Vec::new();
//! conn.start(&head, [], Instant::ZERO, &mut out).unwrap();
//! assert!(out.starts_with(b"GET / HTTP/1.1\r\nHost: example.com\r\n"));
//! conn.handle_written(out.len(), Instant::ZERO);
//!
//! let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
//! let mut body = Vec::new();
//! while let Some(event) = conn.poll_event(&mut buf).unwrap() {
//!     if let Event::Data(d) = event { body.extend_from_slice(&d) }
//! }
//! assert_eq!(body, b"hi");
//! assert!(conn.is_complete() && conn.is_reusable());
//! ```

use core::time::Duration;

use alloc::vec::Vec;
use bytes::BytesMut;

use crate::decode::{Event, Out, ResponseDecoder};
use crate::encode::{BodyEncoder, BodyFraming, CallerFields, DataFrame, RequestHead, encode_head};
use crate::error::Error;
use crate::framing::{CloseReason, Framing, Reuse};
use crate::limits::Limits;
use crate::time::Instant;

/// Settings of a [`Connection`].
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `limits` | [`Limits::default`] | decoder limits |
/// | `continue_timeout` | 1 s | wait for `100 Continue` before sending the body anyway (Go's `ExpectContinueTimeout`) |
/// | `response_head_timeout` | none | time from the request's last byte to the final response head |
/// | `max_drain_bytes` | 64 KiB | an abandoned body is read to its end if at most this much remains, else the connection is closed |
/// | `drain_timeout` | 100 ms | how long draining an abandoned body may take |
/// | `share_heads` | false | head fields also come as `Bytes` ([`ResponseDecoder::share_heads`]) |
///
/// ```
/// use core::time::Duration;
/// use roundtrip_proto::conn::ConnConfig;
/// let config = ConnConfig::default().response_head_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(config.max_drain_bytes, 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnConfig {
    /// Decoder limits.
    pub limits: Limits,
    /// How long to wait for `100 Continue` before sending the body anyway.
    pub continue_timeout: Duration,
    /// How long the final response head may take after the request was sent.
    pub response_head_timeout: Option<Duration>,
    /// Most body bytes read to save a connection whose body was abandoned.
    pub max_drain_bytes: u64,
    /// Longest time spent draining an abandoned body.
    pub drain_timeout: Duration,
    /// Head fields also come as `Bytes` ([`ResponseDecoder::share_heads`]).
    pub share_heads: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            limits: Limits::default(),
            continue_timeout: Duration::from_secs(1),
            response_head_timeout: None,
            max_drain_bytes: 64 * 1024,
            drain_timeout: Duration::from_millis(100),
            share_heads: false,
        }
    }
}

impl ConnConfig {
    /// Sets [`ConnConfig::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Sets [`ConnConfig::continue_timeout`].
    pub fn continue_timeout(mut self, d: Duration) -> Self {
        self.continue_timeout = d;
        self
    }
    /// Sets [`ConnConfig::response_head_timeout`].
    pub fn response_head_timeout(mut self, d: Option<Duration>) -> Self {
        self.response_head_timeout = d;
        self
    }
    /// Sets [`ConnConfig::max_drain_bytes`].
    pub fn max_drain_bytes(mut self, n: u64) -> Self {
        self.max_drain_bytes = n;
        self
    }
    /// Sets [`ConnConfig::drain_timeout`].
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }
    /// Sets [`ConnConfig::share_heads`].
    pub fn share_heads(mut self, share: bool) -> Self {
        self.share_heads = share;
        self
    }
}

/// The deadlines a connection keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Waiting for `100 Continue` before sending the request body.
    Continue100,
    /// Waiting for the final response head after the request was sent.
    ResponseHead,
    /// Draining the rest of an abandoned body.
    Drain,
}

impl Timer {
    const COUNT: usize = 3;
    const ALL: [Timer; Timer::COUNT] = [Timer::Continue100, Timer::ResponseHead, Timer::Drain];
}

impl core::fmt::Display for Timer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Timer::Continue100 => "100-continue",
            Timer::ResponseHead => "response head",
            Timer::Drain => "drain",
        })
    }
}

/// The sending half of an exchange.
#[derive(Debug)]
enum Send {
    Idle,
    /// Head sent with `Expect: 100-continue`; the body waits.
    AwaitContinue(BodyEncoder),
    /// The body may be sent.
    Body(BodyEncoder),
    /// The request was sent in full.
    Done,
    /// A final response arrived first: the body is not sent.
    Skipped,
}

/// The receiving half of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recv {
    Idle,
    Head,
    Body,
    /// The caller abandoned the body; reading on to save the connection,
    /// at most `budget` more bytes.
    Draining {
        budget: u64,
    },
    Done,
    Switched,
}

/// What to do with a response body the caller stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abandon {
    /// The exchange was already complete: nothing to do.
    Complete,
    /// Keep reading and polling until the exchange completes, the drain
    /// deadline passes or the budget is spent; the connection may then be
    /// reused.
    Drain,
    /// Close the connection.
    Close,
}

/// Whether a failed request may be sent again on a new connection, and why.
/// The rule of Go's `shouldRetryRequest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetrySafety {
    /// Safe: no byte of the request was written.
    NothingWritten,
    /// Safe: the method is idempotent and no byte of a response arrived.
    IdempotentUnanswered,
    /// Unsafe: the connection was new, so the failure is not a stale
    /// pooled connection and would likely repeat.
    FreshConnection,
    /// Unsafe: the body cannot be produced a second time.
    BodyNotReplayable,
    /// Unsafe: the request may have reached the server and its method is not
    /// idempotent.
    NotIdempotent,
    /// Unsafe: the server began to answer.
    ResponseStarted,
}

impl RetrySafety {
    /// True for the safe verdicts.
    pub fn is_safe(self) -> bool {
        matches!(
            self,
            RetrySafety::NothingWritten | RetrySafety::IdempotentUnanswered
        )
    }
}

/// What the adapter knows about a request, for [`Connection::retry_safety`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryFacts {
    /// The connection came from the pool (was used before).
    pub reused: bool,
    /// [`is_idempotent`] for the request.
    pub idempotent: bool,
    /// The body can be sent again (none, bytes, or a replayable source).
    pub body_replayable: bool,
}

/// Idempotent methods (RFC 9110 section 9.2.2), or any request carrying an
/// `Idempotency-Key` (the caller says it is safe to repeat).
///
/// ```
/// use roundtrip_proto::conn::is_idempotent;
/// assert!(is_idempotent(b"GET", false));
/// assert!(is_idempotent(b"PUT", false));
/// assert!(!is_idempotent(b"POST", false));
/// assert!(is_idempotent(b"POST", true));
/// ```
pub fn is_idempotent(method: &[u8], has_idempotency_key: bool) -> bool {
    has_idempotency_key
        || matches!(
            method,
            b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
        )
}

/// One HTTP/1.1 client connection's protocol state. See the module docs.
#[derive(Debug)]
pub struct Connection {
    config: ConnConfig,
    decoder: ResponseDecoder,
    send: Send,
    recv: Recv,
    reuse: Reuse,
    deadlines: [Option<Instant>; Timer::COUNT],
    keep_alive_timeout: Option<Duration>,
    wrote_any: bool,
    /// Bytes of the current request queued (its head, each body piece with
    /// its framing, the body's end) and bytes the socket took: once it took
    /// them all, the response-head timeout starts.
    queued: u64,
    written: u64,
    received_any: bool,
    eof: bool,
    error: Option<Error>,
}

impl Connection {
    /// A fresh connection, ready for its first exchange.
    pub fn new(config: ConnConfig) -> Self {
        let mut decoder = ResponseDecoder::new(config.limits);
        decoder.share_heads(config.share_heads);
        Connection {
            config,
            decoder,
            send: Send::Idle,
            recv: Recv::Idle,
            reuse: Reuse::Yes,
            deadlines: [None; Timer::COUNT],
            keep_alive_timeout: None,
            wrote_any: false,
            queued: 0,
            written: 0,
            received_any: false,
            eof: false,
            error: None,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ConnConfig {
        &self.config
    }

    /// Starts an exchange: validates and writes the request head into `out`.
    ///
    /// A caller field `Connection: close` makes the connection not reusable
    /// after this exchange, as [`RequestHead::close`] does; a caller field
    /// `Expect: 100-continue` holds the body back as
    /// [`RequestHead::expect_continue`] does.
    ///
    /// Fails with [`Error::Misuse`] unless the connection is idle and
    /// reusable; request validation errors leave `out` and the connection as
    /// they were.
    ///
    /// No timer starts here (`_now` is the time the request was started,
    /// for symmetry with the other inputs): the wait for `100 Continue` and
    /// the response-head timeout run from the moment the socket took the
    /// head, or the whole request ([`handle_written`](Self::handle_written)).
    pub fn start<'a, I>(
        &mut self,
        head: &RequestHead<'_>,
        fields: I,
        _now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    {
        if !matches!(
            (&self.send, self.recv),
            (Send::Idle, Recv::Idle) | (Send::Done | Send::Skipped, Recv::Done)
        ) || !self.reuse.is_yes()
            || self.eof
            || self.error.is_some()
            || self.written < self.queued
        {
            return Err(Error::Misuse(
                "start on a connection that is busy or not reusable",
            ));
        }
        let asked = CallerFields::of(head, fields.clone());
        let before = out.len();
        encode_head(head, fields, out)?;
        self.queued = (out.len() - before) as u64;
        self.written = 0;
        self.decoder.reset();
        self.decoder.set_request_method(head.method);
        self.wrote_any = false;
        self.received_any = false;
        self.keep_alive_timeout = None;
        self.deadlines = [None; Timer::COUNT];
        self.recv = Recv::Head;
        if head.close || asked.close {
            self.reuse = Reuse::No(CloseReason::ClientClose);
        }
        let encoder = BodyEncoder::new(head.body);
        self.send = match head.body {
            BodyFraming::None | BodyFraming::Length(0) => Send::Done,
            // The wait for `100 Continue` starts when the socket took the
            // head (`handle_written`; Go's `ExpectContinueTimeout` too).
            _ if head.expect_continue || asked.expect_continue => Send::AwaitContinue(encoder),
            _ => Send::Body(encoder),
        };
        Ok(())
    }

    fn arm(&mut self, timer: Timer, now: Instant) {
        let after = match timer {
            Timer::Continue100 => Some(self.config.continue_timeout),
            Timer::ResponseHead => self.config.response_head_timeout,
            Timer::Drain => Some(self.config.drain_timeout),
        };
        self.deadlines[timer as usize] = after.map(|d| now + d);
    }

    /// True while request body data may be written now: not before
    /// `100 Continue` (or its timeout), and never after a final response
    /// arrived first.
    pub fn may_send_body(&self) -> bool {
        matches!(self.send, Send::Body(_))
    }

    /// True while the request body is still owed (sent or waiting to be).
    pub fn is_sending(&self) -> bool {
        matches!(self.send, Send::AwaitContinue(_) | Send::Body(_))
    }

    /// The framing to write around the next `len` bytes of body data.
    pub fn frame_body(&mut self, len: usize) -> Result<DataFrame, Error> {
        let frame = match &mut self.send {
            Send::Body(encoder) => encoder.frame_data(len)?,
            _ => return Err(Error::Misuse("body data while the body may not be sent")),
        };
        let framed = frame.prefix().len() + len + frame.suffix().len();
        self.queued = self.queued.saturating_add(framed as u64);
        Ok(frame)
    }

    /// Ends the request body, writing its end (and `trailers`, for chunked
    /// bodies) into `out`. (The response-head timeout starts once the
    /// socket took it all: [`handle_written`](Self::handle_written).)
    pub fn finish_body<'a, I>(
        &mut self,
        trailers: I,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let Send::Body(encoder) = &mut self.send else {
            return Err(Error::Misuse("finish_body while the body may not be sent"));
        };
        let before = out.len();
        encoder.finish(trailers, out)?;
        self.queued = self.queued.saturating_add((out.len() - before) as u64);
        self.send = Send::Done;
        self.arm_head_once_written(now);
        Ok(())
    }

    /// The socket accepted `n` more bytes of the request at `now`. Once it
    /// took the whole request (its head, every body piece framed, the
    /// body's end), the response-head timeout runs from `now` (Go's
    /// `ResponseHeaderTimeout` counts from the end of the write, so a long
    /// upload does not eat into it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use roundtrip_proto::conn::{ConnConfig, Connection};
    /// use roundtrip_proto::encode::{BodyFraming, RequestHead};
    /// use roundtrip_proto::time::Instant;
    ///
    /// let config = ConnConfig::default().response_head_timeout(Some(Duration::from_secs(5)));
    /// let mut conn = Connection::new(config);
    /// let head = RequestHead {
    ///     method: b"GET", target: b"/", host: Some(b"example.com"),
    ///     body: BodyFraming::None, expect_continue: false, close: false,
    ///     preset: None,
    /// };
    /// let mut out = Vec::new();
    /// conn.start(&head, [], Instant::ZERO, &mut out).unwrap();
    /// assert_eq!(conn.poll_timeout(), None, "not before the request is out");
    /// let half = out.len() / 2;
    /// let (t1, t2) = (Instant::ZERO + Duration::from_secs(1), Instant::ZERO + Duration::from_secs(2));
    /// conn.handle_written(half, t1);
    /// assert_eq!(conn.poll_timeout(), None, "half of it went");
    /// conn.handle_written(out.len() - half, t2);
    /// assert_eq!(conn.poll_timeout(), Some(t2 + Duration::from_secs(5)));
    /// ```
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        self.wrote_any |= n > 0;
        self.written = self.written.saturating_add(n as u64);
        self.arm_head_once_written(now);
    }

    /// When the socket took everything queued and no final head came yet:
    /// the wait for `100 Continue` starts (the head is out, the body held
    /// back), or the response-head timeout does (the whole request is
    /// out). Each once.
    fn arm_head_once_written(&mut self, now: Instant) {
        if self.written < self.queued || self.error.is_some() || self.recv != Recv::Head {
            return;
        }
        let timer = match self.send {
            Send::AwaitContinue(_) => Timer::Continue100,
            Send::Done => Timer::ResponseHead,
            _ => return,
        };
        if self.deadlines[timer as usize].is_none() {
            self.arm(timer, now);
        }
    }

    /// The server closed its side of the connection.
    pub fn handle_eof(&mut self) {
        self.eof = true;
        self.decoder.handle_eof();
        if self.recv == Recv::Idle || self.recv == Recv::Done {
            self.close(CloseReason::PeerClosed);
        }
    }

    /// Decodes the next response event from `buf`; `Ok(None)` = need more
    /// bytes (or nothing more will come). Errors are sticky and make the
    /// connection not reusable. Head events borrow the connection and the
    /// front of `buf` until the next call.
    pub fn poll_event<'a>(&'a mut self, buf: &'a mut BytesMut) -> Result<Option<Event<'a>>, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        // A field of the head being reported changes nothing here either.
        if let Some(span) = self.decoder.next_field(buf) {
            return Ok(self.decoder.event(Out::Field(span), buf));
        }
        match self.step(buf) {
            Ok(out) => Ok(self.decoder.event(out, buf)),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    /// Every field of the head being reported not reported yet, at once
    /// (see [`ResponseDecoder::take_fields`]): after [`Event::Status`]. A
    /// field changes nothing here, so this is the decoder's alone; empty
    /// after an error.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::conn::{ConnConfig, Connection};
    /// use roundtrip_proto::encode::{BodyFraming, RequestHead};
    /// use roundtrip_proto::{Event, time::Instant};
    /// let mut conn = Connection::new(ConnConfig::default());
    /// let head = RequestHead {
    ///     method: b"GET", target: b"/", host: Some(b"h"),
    ///     body: BodyFraming::None, expect_continue: false, close: false,
    ///     preset: None,
    /// };
    /// let mut out = Vec::new();
    /// conn.start(&head, [], Instant::ZERO, &mut out)?;
    /// conn.handle_written(out.len(), Instant::ZERO);
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 0\r\n\r\n"[..]);
    /// assert!(matches!(conn.poll_event(&mut buf)?, Some(Event::Status(_))));
    /// let values: Vec<&[u8]> = conn.take_fields(&buf).map(|f| f.value()).collect();
    /// assert_eq!(values, [&b"s"[..], b"0"]);
    /// assert!(matches!(conn.poll_event(&mut buf)?, Some(Event::HeadEnd(_))));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    ///
    /// [`ResponseDecoder::take_fields`]: crate::ResponseDecoder::take_fields
    pub fn take_fields<'a>(&'a mut self, buf: &'a BytesMut) -> crate::decode::Fields<'a> {
        if self.error.is_some() {
            return crate::decode::Fields::default();
        }
        self.decoder.take_fields(buf)
    }

    /// Advances the decoder one event and the exchange with it; the event
    /// itself is made afterwards, once the state no longer changes.
    fn step(&mut self, buf: &mut BytesMut) -> Result<Out, Error> {
        match self.recv {
            Recv::Idle | Recv::Done => {
                if !buf.is_empty() {
                    return Err(Error::UnsolicitedBytes { byte: buf[0] });
                }
                return Ok(Out::Nothing);
            }
            // The decoder reports `Switched` once, then nothing.
            Recv::Switched => return self.decoder.advance(buf),
            Recv::Head | Recv::Body | Recv::Draining { .. } => {}
        }
        self.received_any |= !buf.is_empty();
        let out = self.decoder.advance(buf)?;
        match &out {
            Out::Status => {
                if let Some(code) = self.decoder.status_code() {
                    self.on_status(code);
                }
            }
            Out::HeadEnd(end) if !end.interim => {
                self.deadlines[Timer::ResponseHead as usize] = None;
                self.keep_alive_timeout = end.keep_alive_timeout;
                if let Reuse::No(reason) = end.reuse {
                    self.close(reason);
                }
                self.recv = match end.framing {
                    Framing::Switched => Recv::Switched,
                    _ => Recv::Body,
                };
            }
            Out::Data(data) => {
                if let Recv::Draining { budget } = &mut self.recv {
                    match budget.checked_sub(data.len() as u64) {
                        Some(left) => *budget = left,
                        None => self.close(CloseReason::Abandoned),
                    }
                }
            }
            Out::End => {
                self.recv = Recv::Done;
                self.deadlines[Timer::Drain as usize] = None;
                if !buf.is_empty() {
                    self.close(CloseReason::UnsolicitedBytes);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// A status line arrived: `100` releases the body; a final status while
    /// the body is still owed means it will not be sent (RFC 9110 section
    /// 15.2: the server may answer early, e.g. 413, and the rest of the body
    /// would then be read by nobody).
    fn on_status(&mut self, code: u16) {
        let waiting = matches!(self.send, Send::AwaitContinue(_));
        if code == 100 && waiting {
            self.deadlines[Timer::Continue100 as usize] = None;
            self.release_body();
        } else if (code == 101 || !(100..200).contains(&code)) && self.is_sending() {
            self.deadlines[Timer::Continue100 as usize] = None;
            if let Send::Body(encoder) = &self.send
                && encoder.is_whole()
            {
                // Every byte of a sized body was framed: its end is only
                // the caller's reader saying so, which writes nothing. The
                // request is whole once its queued bytes are written (the
                // driver closes the connection if they are not).
                self.send = Send::Done;
                return;
            }
            self.send = Send::Skipped;
            self.close(CloseReason::BodyNotSent);
        }
    }

    fn release_body(&mut self) {
        if let Send::AwaitContinue(encoder) = core::mem::replace(&mut self.send, Send::Idle) {
            self.send = Send::Body(encoder);
        }
    }

    /// When `timer` fires, if it is armed.
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    /// The earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Acts on every deadline that passed by `now`. Calls before a deadline
    /// do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::ALL {
            let Some(at) = self.deadlines[timer as usize] else {
                continue;
            };
            if at > now {
                continue;
            }
            self.deadlines[timer as usize] = None;
            match timer {
                // No 100 in time: send the body anyway (RFC 9110 section 10.1.1).
                Timer::Continue100 => self.release_body(),
                Timer::ResponseHead => {
                    self.fail(Error::TimedOut { timer });
                }
                Timer::Drain => {
                    if matches!(self.recv, Recv::Draining { .. }) {
                        self.close(CloseReason::Abandoned);
                    }
                }
            }
        }
    }

    /// The caller stopped reading the response (or gave up on the exchange).
    /// Decides whether to drain the rest of the body or close.
    pub fn abandon(&mut self, now: Instant) -> Abandon {
        if self.is_complete() {
            return Abandon::Complete;
        }
        let remaining = self.decoder.remaining_body();
        let small = remaining.is_none_or(|n| n <= self.config.max_drain_bytes);
        if self.recv == Recv::Body && !self.is_sending() && self.reuse.is_yes() && small {
            self.recv = Recv::Draining {
                budget: self.config.max_drain_bytes,
            };
            self.arm(Timer::Drain, now);
            return Abandon::Drain;
        }
        self.close(CloseReason::Abandoned);
        self.deadlines = [None; Timer::COUNT];
        if self.is_sending() {
            self.send = Send::Skipped;
        }
        Abandon::Close
    }

    /// True while an abandoned body is being drained and the connection may
    /// still be saved.
    pub fn is_draining(&self) -> bool {
        matches!(self.recv, Recv::Draining { .. }) && self.reuse.is_yes()
    }

    /// True when the exchange finished: request sent (or its body skipped)
    /// and response read to its end.
    pub fn is_complete(&self) -> bool {
        matches!(self.send, Send::Done | Send::Skipped) && self.recv == Recv::Done
    }

    /// True when no exchange was ever started or the last one is complete.
    pub fn is_idle(&self) -> bool {
        (matches!(self.send, Send::Idle) && self.recv == Recv::Idle) || self.is_complete()
    }

    /// True when the response body being read ends within `buf`: all of
    /// it was received, though not all taken yet
    /// ([`ResponseDecoder::body_ends_in`](crate::ResponseDecoder::body_ends_in)).
    /// A deadline that passes then has nothing left to wait for.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::conn::{ConnConfig, Connection};
    /// use roundtrip_proto::encode::{BodyFraming, RequestHead};
    /// use roundtrip_proto::time::Instant;
    /// use roundtrip_proto::Event;
    /// let head = RequestHead {
    ///     method: b"GET", target: b"/", host: Some(b"h"), body: BodyFraming::None,
    ///     preset: None, expect_continue: false, close: false,
    /// };
    /// let (mut conn, mut out) = (Connection::new(ConnConfig::default()), Vec::new());
    /// let now = Instant::from_origin(std::time::Duration::ZERO);
    /// conn.start(&head, [], now, &mut out)?;
    /// conn.handle_written(out.len(), now);
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh"[..]);
    /// while !matches!(conn.poll_event(&mut buf)?, Some(Event::HeadEnd(_))) {}
    /// assert!(!conn.body_ends_in(&buf));
    /// buf.extend_from_slice(b"i");
    /// assert!(conn.body_ends_in(&buf));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn body_ends_in(&self, buf: &BytesMut) -> bool {
        self.error.is_none() && self.decoder.body_ends_in(buf)
    }

    /// May this connection carry another request now? Only when the exchange
    /// is complete, without error, and neither side asked to close.
    pub fn is_reusable(&self) -> bool {
        let all_out = self.written >= self.queued;
        self.is_idle() && self.reuse.is_yes() && self.error.is_none() && !self.eof && all_out
    }

    /// The reuse verdict so far (`No` is final).
    pub fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// The verdict for the pool: `Yes` only when [`is_reusable`](Self::is_reusable).
    pub fn checkin_verdict(&self) -> Reuse {
        match self.reuse {
            Reuse::No(reason) => Reuse::No(reason),
            Reuse::Yes if self.is_reusable() => Reuse::Yes,
            Reuse::Yes if self.error.is_some() => Reuse::No(CloseReason::Error),
            Reuse::Yes if self.eof => Reuse::No(CloseReason::PeerClosed),
            // Answered before all of the request went out: the rest would
            // reach the server as the start of the next request.
            Reuse::Yes if self.is_idle() => Reuse::No(CloseReason::BodyNotSent),
            Reuse::Yes => Reuse::No(CloseReason::Abandoned),
        }
    }

    /// True after a 101 or a 2xx to CONNECT: the connection now belongs to
    /// the caller, with the bytes left in the read buffer.
    pub fn is_switched(&self) -> bool {
        self.recv == Recv::Switched
    }

    /// Body bytes still announced by `Content-Length`, while reading such a
    /// body: lets an adapter size its next read to take the rest at once.
    pub fn remaining_body(&self) -> Option<u64> {
        self.decoder.remaining_body()
    }

    /// Data bytes still announced by the current chunk's size line (0
    /// between chunks), while reading a chunked body: lets an adapter size
    /// its next read to take the rest of the chunk at once.
    pub fn remaining_chunk(&self) -> Option<u64> {
        self.decoder.remaining_chunk()
    }

    /// Body bytes the caller may read from the transport straight into
    /// memory of its own, skipping `buf` (see
    /// [`ResponseDecoder::direct_body_room`]); `None` also while an
    /// abandoned body is drained.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::conn::{ConnConfig, Connection};
    /// use roundtrip_proto::encode::{BodyFraming, RequestHead};
    /// use roundtrip_proto::{Event, time::Instant};
    /// let mut conn = Connection::new(ConnConfig::default());
    /// let head = RequestHead {
    ///     method: b"GET", target: b"/", host: Some(b"h"),
    ///     body: BodyFraming::None, expect_continue: false, close: false,
    ///     preset: None,
    /// };
    /// let mut out = Vec::new();
    /// conn.start(&head, [], Instant::ZERO, &mut out)?;
    /// conn.handle_written(out.len(), Instant::ZERO);
    /// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"[..]);
    /// while conn.poll_event(&mut buf)?.is_some() {}
    /// assert_eq!(conn.direct_body_room(&buf), Some(5));
    /// conn.take_body_direct(&buf, 5, 0)?;
    /// assert!(matches!(conn.poll_event(&mut buf)?, Some(Event::End)));
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn direct_body_room(&self, buf: &BytesMut) -> Option<u64> {
        if self.recv != Recv::Body || self.error.is_some() {
            return None;
        }
        self.decoder.direct_body_room(buf)
    }

    /// `n` body bytes were read without `buf`, at most
    /// [`direct_body_room`](Self::direct_body_room) allowed, and the last
    /// `appended` bytes of `buf` after them by the same read (see
    /// [`ResponseDecoder::take_body_direct`]); a misuse is
    /// [`Error::Misuse`], and sticky.
    ///
    /// [`ResponseDecoder::take_body_direct`]: crate::ResponseDecoder::take_body_direct
    pub fn take_body_direct(
        &mut self,
        buf: &BytesMut,
        n: u64,
        appended: usize,
    ) -> Result<(), Error> {
        if self.recv != Recv::Body || self.error.is_some() {
            let e = Error::Misuse("body bytes taken past what direct_body_room allowed");
            self.fail(e.clone());
            return Err(e);
        }
        self.received_any |= n > 0;
        self.decoder
            .take_body_direct(buf, n, appended)
            .inspect_err(|e| self.fail(e.clone()))
    }

    /// True when [`poll_event`](Self::poll_event) would report nothing
    /// before more bytes or the end of input arrive: the response head is
    /// awaited and nothing of it is buffered (see
    /// [`ResponseDecoder::awaits_input`](crate::ResponseDecoder::awaits_input)).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use roundtrip_proto::conn::{ConnConfig, Connection};
    /// use roundtrip_proto::encode::{BodyFraming, RequestHead};
    /// use roundtrip_proto::time::Instant;
    /// let mut conn = Connection::new(ConnConfig::default());
    /// let head = RequestHead {
    ///     method: b"GET", target: b"/", host: Some(b"h"),
    ///     body: BodyFraming::None, expect_continue: false, close: false,
    ///     preset: None,
    /// };
    /// let mut out = Vec::new();
    /// conn.start(&head, [], Instant::ZERO, &mut out)?;
    /// conn.handle_written(out.len(), Instant::ZERO);
    /// assert!(conn.awaits_input(&BytesMut::new()));
    /// conn.handle_eof();
    /// assert!(!conn.awaits_input(&BytesMut::new()), "the end is news");
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[inline]
    pub fn awaits_input(&self, buf: &BytesMut) -> bool {
        self.recv == Recv::Head && self.error.is_none() && self.decoder.awaits_input(buf)
    }

    /// The server's `Keep-Alive: timeout` hint from the last response.
    pub fn keep_alive_timeout(&self) -> Option<Duration> {
        self.keep_alive_timeout
    }

    /// Did any byte of the current request reach the socket?
    pub fn wrote_any_byte(&self) -> bool {
        self.wrote_any
    }

    /// Did any byte of a response to the current request arrive?
    pub fn received_any_byte(&self) -> bool {
        self.received_any
    }

    /// May the current request, which failed, be sent again on a new
    /// connection? (Go's `shouldRetryRequest`.)
    pub fn retry_safety(&self, facts: RetryFacts) -> RetrySafety {
        if !facts.reused {
            RetrySafety::FreshConnection
        } else if !facts.body_replayable {
            RetrySafety::BodyNotReplayable
        } else if !self.wrote_any {
            RetrySafety::NothingWritten
        } else if self.received_any {
            RetrySafety::ResponseStarted
        } else if facts.idempotent {
            RetrySafety::IdempotentUnanswered
        } else {
            RetrySafety::NotIdempotent
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.reuse.is_yes() {
            self.reuse = Reuse::No(reason);
        }
    }

    fn fail(&mut self, e: Error) {
        let reason = match e {
            Error::TimedOut { .. } => CloseReason::Timeout,
            Error::UnsolicitedBytes { .. } => CloseReason::UnsolicitedBytes,
            _ => CloseReason::Error,
        };
        self.close(reason);
        self.deadlines = [None; Timer::COUNT];
        if self.error.is_none() {
            self.error = Some(e);
        }
    }
}
