//! [`Exchange`]: one request from checkout to release, sans-IO. Go's
//! `Client.do` + `Transport.RoundTrip` + `persistConn` around one request,
//! with no socket and no clock of its own: every backend drives this one
//! machine, and only moves bytes and waits.
//!
//! # Theory of operation
//!
//! The driver performs one input, then pulls [`Action`]s with
//! [`Exchange::poll`] and carries each out, until the action is one it must
//! wait for (a pool grant, a connect, socket readiness); it then waits for
//! that or for [`Exchange::poll_timeout`], whichever comes first, and
//! reports what happened with the matching `handle_*` input.
//!
//! ```text
//!  Checkout --idle--> [Probe] --fresh--+--> Send --request sent--> Head --final head--> Body --End--> Release, End
//!     |  \--dial----> Dial ---dialed---+     |   ^ 100 / early answer   |  \               \--abandon--> Drain --> Release
//!     |   \--wait---> Waiting --grant--/     |   |                      |   \--101 / CONNECT 2xx--> Switched (Upgrade)
//!     |                                      +---+                      |
//!     +<---- stale: Discard ------+          +--redirect: abandon (Drain or Discard), then Checkout for the next hop
//!     +<---- safe retry: Discard -+--------- error before the head on a pooled connection: retried when the core says it is safe
//! ```
//!
//! Every decision is made here or in the core it drives: the lookups and
//! the Happy Eyeballs dial (which address when, which attempt wins, which
//! are closed), the stale-probe rule, the retry budget and its safety, the request body's framing and
//! length, 100-continue, early answers, redirects, transparent content codings, what
//! ends a body, whether an abandoned body is drained or its connection
//! closed, which timeout fired. A driver that needs an `if` on a status, a
//! header, a byte count or a timer is missing an action here.
//!
//! # Call order
//!
//! | action | the driver does | then reports |
//! |---|---|---|
//! | [`Action::Checkout`] | asks its pool for [`Exchange::key`] | [`handle_idle`](Exchange::handle_idle), [`handle_dial`](Exchange::handle_dial) or [`handle_wait`](Exchange::handle_wait); after a wait, [`handle_handover`](Exchange::handle_handover) for a connection a check-in handed over |
//! | [`Action::Wait`] | waits for its pool's grant | as for `Checkout`, or [`handle_timeout`](Exchange::handle_timeout) |
//! | [`Action::Probe`] | asks the kernel whether the idle socket was closed | [`handle_probe`](Exchange::handle_probe) |
//! | [`Action::Resolve`] | looks [`lookup_target`](Exchange::lookup_target) up where blocking is allowed | [`handle_resolved`](Exchange::handle_resolved) |
//! | [`Action::Connect`] | starts a non-blocking connect to the address, beside those under way | [`handle_connected`](Exchange::handle_connected) or [`handle_connect_failed`](Exchange::handle_connect_failed), once it ends |
//! | [`Action::AwaitConnect`] | waits for any connect under way to end | as for `Connect`, or [`handle_timeout`](Exchange::handle_timeout) |
//! | [`Action::Abort`] | closes the attempt to that address | nothing |
//! | [`Action::Write`] | writes [`Link::out`] | [`handle_written`](Exchange::handle_written) (and, with `watch_read`, [`handle_input`](Exchange::handle_input) for bytes that arrived meanwhile) |
//! | [`Action::NeedBody`] | reads the next piece of [`request_body`](Exchange::request_body) | [`handle_request_body`](Exchange::handle_request_body) (and, with `watch_read`, [`handle_input`](Exchange::handle_input) or [`handle_eof`](Exchange::handle_eof) for bytes or a close that came while the reader waited) |
//! | [`Action::Read`] | reads into [`Link::read_buf`] | [`handle_input`](Exchange::handle_input) or [`handle_eof`](Exchange::handle_eof) |
//! | [`Action::Head`], [`Action::Data`] | hands them to the caller (the head: [`take_head`](Exchange::take_head)) | nothing |
//! | [`Action::Release`], [`Action::Discard`] | checks the connection in (the core's verdict decides) or closes it | nothing |
//! | [`Action::Upgrade`] | keeps the connection for the caller | nothing |
//! | [`Action::Fail`], [`Action::End`] | stops | nothing |
//!
//! Any wait may end at [`poll_timeout`](Exchange::poll_timeout) instead:
//! report [`handle_timeout`](Exchange::handle_timeout) (early calls are
//! harmless). A socket error is [`handle_io_error`](Exchange::handle_io_error).
//! [`abandon`](Exchange::abandon) (the caller dropped the body) and
//! [`cancel`](Exchange::cancel) may come at any time.
//!
//! The [`sim`] module drives exchanges against a scripted server on a
//! virtual clock, as its tests show.

mod dial;
mod handshake;
mod input;
mod link;
pub mod sim;
mod timer;
mod transition;
mod tunnel;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::request::Parts;
use http::{Extensions, HeaderMap, StatusCode};
use roundtrip_proto::pool::{ConnId, Key};
use roundtrip_proto::time::Instant;
use roundtrip_proto::trace::TraceEvent;
use roundtrip_proto::{CloseReason, HeadEnd, Reuse};

pub use link::{Link, Outbox};
pub use timer::Timer;
use timer::Timers;

use crate::trace::{RequestId, Tracing};
use crate::{
    Body, Config, DefaultFields, Error, HeadBuilder, Phase, Prepared, Redirects, Verdict,
    decode_content, drain_buffered, prepare, trailer_into,
};

/// Steps one [`Exchange::poll`] may take before it must answer: every
/// step changes state, and no cycle of states passes without an action.
const MAX_STEPS: usize = 64;
/// Stale idle connections one checkout may skip before it gives up
/// (`Error::ClosedEarly` in the pool-wait phase): more than the idle
/// connections a host keeps unless `max_idle_per_host` is raised past it.
const MAX_STALE_SKIPS: u32 = 1024;

/// What a client's exchanges share: the settings, and the default header
/// fields encoded once.
///
/// ```
/// use roundtrip_io::Config;
/// use roundtrip_io::exchange::Settings;
/// let settings = Settings::new(Config::default());
/// assert!(settings.config.keep_alive);
/// ```
#[derive(Debug)]
pub struct Settings {
    /// The client's settings.
    pub config: Config,
    /// `config`'s default fields, encoded once.
    pub defaults: DefaultFields,
    /// The number of the last [`RequestId`] handed out.
    requests: AtomicU64,
    /// The rustls configuration, built at the first `https` request (its
    /// session cache lives as long as the client).
    #[cfg(feature = "tls")]
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, crate::tls::TlsError>>,
}

impl Settings {
    /// The settings of a client built with `config`. With the operating
    /// system's roots asked for, the TLS configuration is built now: loading
    /// them reads files, which must not happen inside an async task's poll
    /// (the first `https` request's) and block its executor thread.
    pub fn new(config: Config) -> Settings {
        let settings = Settings {
            defaults: DefaultFields::new(&config),
            config,
            requests: AtomicU64::new(0),
            #[cfg(feature = "tls")]
            tls: std::sync::OnceLock::new(),
        };
        #[cfg(feature = "tls")]
        if settings.config.tls.native_roots {
            let _ = settings.tls_client();
        }
        settings
    }

    /// The client's rustls configuration, built once.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_client(&self) -> Result<Arc<rustls::ClientConfig>, crate::tls::TlsError> {
        // The error as it was (it said "invalid TLS settings" once
        // already; wrapping its text in `Config` again said it twice).
        self.tls
            .get_or_init(|| crate::tls::client_config(&self.config.tls))
            .clone()
    }

    /// A request id no other exchange of these settings has (numbered
    /// from 1), for the trace.
    pub fn next_request_id(&self) -> RequestId {
        RequestId::new(self.requests.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// True when the client's default headers ask for a protocol switch.
fn config_asks_upgrade(config: &Config) -> bool {
    config.default_headers.contains_key(http::header::UPGRADE)
}

/// What the driver must do next. See the [module docs](self) for the
/// input that answers each.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Ask the pool for a connection to [`Exchange::key`].
    Checkout,
    /// Wait for the pool to grant a connection or a dial.
    Wait,
    /// Ask the kernel whether the idle connection was closed meanwhile.
    Probe,
    /// Look up the name of [`Exchange::lookup_target`].
    Resolve,
    /// Start connecting to this address (Happy Eyeballs: other attempts
    /// may be under way, and go on).
    Connect(std::net::SocketAddr),
    /// Wait for one of the connects under way to end.
    AwaitConnect,
    /// Close the attempt to this address (it ran out of time, or another
    /// won, or the dial was given up).
    Abort(std::net::SocketAddr),
    /// Write what [`Link::out`] holds. With `watch_read`, a response may
    /// come while the body is sent: read it too (a server that answers
    /// early and stops reading is then heard, not waited out).
    Write {
        /// Watch for response bytes while waiting to write.
        watch_read: bool,
    },
    /// Read the next piece of the request body. With `watch_read`, the
    /// request head is out and a response may come while the reader has
    /// nothing yet: a driver whose reader can be pending (an async one)
    /// reads the socket meanwhile, so an early answer or a close is heard
    /// rather than waited out behind the body (h11's full duplex; Go's
    /// read loop runs beside its write loop).
    NeedBody {
        /// Watch for response bytes while the body's reader waits.
        watch_read: bool,
    },
    /// Read response bytes.
    Read,
    /// The final response head (body to follow) is complete: take it with
    /// [`Exchange::take_head`], with the URL that answered as its body.
    /// (Not carried here, so that every action stays small.)
    Head,
    /// The next piece of the response body (decoded, when the client
    /// decodes it).
    Data(Bytes),
    /// Check the connection in: the core's verdict decides whether it is
    /// kept. The exchange no longer uses it.
    Release,
    /// Close the connection for this reason. The exchange no longer uses it.
    Discard(CloseReason),
    /// The connection was switched to another protocol (101, or 2xx to
    /// CONNECT): it belongs to the caller now, with the bytes left in
    /// [`Link::read_buf`]. The response body is empty.
    Upgrade,
    /// The request failed.
    Fail(Error),
    /// Nothing more: the body ended (or the exchange was given up).
    End,
}

/// What comes after the connection is settled.
#[derive(Debug)]
enum After {
    End,
    Checkout,
    Hop,
    Retry,
    Fail(Error),
}

#[derive(Debug)]
enum State {
    Checkout,
    Waiting,
    Probe,
    Dial,
    /// The TLS handshake of a new `https` connection.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Handshake,
    /// A `CONNECT` tunnel through an HTTP proxy is being set up.
    Tunnel,
    /// A SOCKS5 handshake is under way.
    Socks(Box<crate::socks::Socks5>),
    Send,
    Head,
    Body,
    /// The caller abandoned the body; the core drains it.
    Drain(After),
    /// Check the connection in (`None`) or close it, then go on.
    Settle {
        close: Option<CloseReason>,
        then: After,
    },
    Switched,
    Failed(Error),
    End,
}

/// How far the request body went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sending {
    /// Nothing of the body queued yet.
    Unsent,
    /// A reader is being streamed.
    Streaming,
    /// A reader declared empty is read once, to check that it is.
    Probing,
    /// All of it queued, its end included.
    Ended,
}

/// One request, from checkout to release. See the [module docs](self).
///
/// ```
/// use roundtrip_io::exchange::sim::{Server, Sim};
/// let mut sim = Sim::new(roundtrip_io::Config::default());
/// sim.serve(Server::reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
/// let response = sim.get("http://127.0.0.1/").unwrap();
/// assert_eq!(response.status, 200);
/// assert_eq!(response.body, "hi");
/// assert_eq!(sim.stats().idle, 1);
/// ```
pub struct Exchange<R> {
    settings: Arc<Settings>,
    /// Which request its trace events belong to (hops and retries share it).
    id: RequestId,
    parts: Parts,
    body: Body<R>,
    prepared: Option<Prepared>,
    state: State,
    timers: Timers,
    /// Resends spent on this hop (each after a failure on a pooled
    /// connection; bounded by `may_resend_again`).
    resends: u32,
    stale_skips: u32,
    /// The body's end was seen in the read buffer (`complete`).
    received_whole: bool,
    /// The connection came from the pool.
    reused: bool,
    /// This request was started on the current connection: what its
    /// core says was written is this request's (before, on a pooled
    /// connection, it is the last request's).
    begun: bool,
    /// How long the pooled connection had been idle.
    idle_for: Option<core::time::Duration>,
    /// The connection in use.
    conn: Option<ConnId>,
    sending: Sending,
    /// What the request's writes completed, for traces.
    wrote: Wrote,
    builder: HeadBuilder,
    /// The decoder of a content coding the client asked for.
    /// (Boxed, like the trailers: most responses have neither.)
    decoder: Option<Box<crate::coding::Decoding>>,
    trailers: Option<Box<HeaderMap>>,
    redirects: Redirects,
    /// The server closed its side of the current connection.
    eof: bool,
    /// ... without the origin's `close_notify` (TLS): a body that runs
    /// until the close is then cut, even when its head comes after.
    unclean_eof: bool,
    /// `GetConn` was traced for the current checkout.
    announced: bool,
    /// What the last head's `http::Response` has no place for.
    head_end: Option<(HeadEnd, Vec<StatusCode>)>,
    /// The body being read runs until the server closes.
    until_close: bool,
    /// The dial of a new connection: lookups, attempts, failures (boxed:
    /// most exchanges reuse a pooled connection and never dial).
    dialing: Option<Box<dial::Dialing>>,
    /// The TLS layer failed and queued an alert for the server: it is
    /// written (once) before the connection is closed.
    send_alert: bool,
}

/// How much of the request the socket took, as traces report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrote {
    Nothing,
    Head,
    All,
}

impl<R> std::fmt::Debug for Exchange<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("uri", &self.parts.uri)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R> Exchange<R> {
    /// An exchange for `parts` and `body`, started at `now`. A request that
    /// cannot be sent fails at the first [`poll`](Self::poll).
    pub fn new(settings: Arc<Settings>, parts: Parts, body: Body<R>, now: Instant) -> Self {
        let config = &settings.config;
        let timeout = match parts.extensions.get::<crate::RequestTimeout>() {
            Some(crate::RequestTimeout(t)) => *t,
            None => config.timeout,
        };
        let mut timers = Timers::default();
        timers.arm(Timer::Total, now, timeout);
        // Written straight into the place the caller gives (no kilobyte
        // copied out of a local): the state is decided first.
        let (prepared, state) = match prepare(&parts, body.body_len(), config) {
            Ok(prepared) => (Some(prepared), State::Checkout),
            Err(e) => (None, State::Failed(e)),
        };
        Exchange {
            id: settings.next_request_id(),
            redirects: Redirects::new(&parts.uri),
            parts,
            body,
            prepared,
            state,
            timers,
            resends: 0,
            stale_skips: 0,
            received_whole: false,
            reused: false,
            begun: false,
            idle_for: None,
            conn: None,
            sending: Sending::Unsent,
            wrote: Wrote::Nothing,
            builder: HeadBuilder::default(),
            decoder: None,
            trailers: None,
            eof: false,
            unclean_eof: false,
            announced: false,
            head_end: None,
            until_close: false,
            send_alert: false,
            dialing: None,
            settings,
        }
    }

    fn config(&self) -> &Config {
        &self.settings.config
    }

    /// The tracer, reporting as this request.
    fn tracing(&self) -> Tracing<'_> {
        self.settings.config.tracing(Some(self.id))
    }

    /// The id its trace events carry.
    pub fn request_id(&self) -> RequestId {
        self.id
    }

    /// The client's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The pool key of the current hop (`None` once it failed to prepare).
    pub fn key(&self) -> Option<&Key> {
        self.prepared.as_ref().map(|p| &p.key)
    }

    /// The request as it is sent now (a redirect rewrites it). Once the
    /// final head was taken ([`take_head`](Self::take_head)) its URI is
    /// the head's [`FinalUrl`](crate::FinalUrl), moved there.
    pub fn request(&self) -> &Parts {
        &self.parts
    }

    /// The connection the exchange uses, once it has one.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// Trailer fields of a chunked response body, once it ended.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// The reader of a streamed request body, for [`Action::NeedBody`]:
    /// from now on the body cannot be sent again.
    pub fn request_body(&mut self) -> Option<&mut R> {
        self.body.start_reading()
    }

    /// The earliest deadline of the exchange and of the connection it uses.
    pub fn poll_timeout(&self, link: Option<&Link>) -> Option<Instant> {
        let own = match (self.timers.next(), self.dial_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let core = link.and_then(|l| l.proto.poll_timeout());
        match (own, core) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When `timer` fires, if it is armed.
    pub fn deadline(&self, timer: Timer, link: Option<&Link>) -> Option<Instant> {
        use roundtrip_proto::conn::Timer as Core;
        let core = match timer {
            Timer::ResponseHead => Core::ResponseHead,
            Timer::Continue100 => Core::Continue100,
            Timer::Drain => Core::Drain,
            own => return self.timers.get(own),
        };
        link.and_then(|l| l.proto.deadline(core))
    }

    /// True once the response switched protocols (`101`, a `2xx` to
    /// `CONNECT`): its connection waits to be taken.
    ///
    /// ```
    /// use roundtrip_io::exchange::sim::{Server, Sim};
    /// let sim = Sim::new(roundtrip_io::Config::default());
    /// let request = http::Request::get("http://127.0.0.1/").body(roundtrip_io::Body::empty()).unwrap();
    /// assert!(!sim.exchange(request).is_switched());
    /// ```
    pub fn is_switched(&self) -> bool {
        matches!(self.state, State::Switched)
    }

    /// True once the exchange is over (nothing more will come).
    pub fn is_end(&self) -> bool {
        matches!(self.state, State::End)
    }

    // ---- outputs ----

    /// The next thing the driver must do. `link` is the connection the
    /// exchange uses (`None` while it has none).
    pub fn poll(&mut self, mut link: Option<&mut Link>, now: Instant) -> Action {
        // The request's deadline passing while the peer kept the driver
        // busy (a body that never ends, a socket that takes a byte at a
        // time) is acted on here: a driver calls `handle_timeout` only when
        // a wait ends empty, and a busy one never waits. The other timers
        // are reset by that very progress, or bounded otherwise (the head
        // by its size limit, a drain by its byte budget).
        if self.timers.get(Timer::Total).is_some_and(|at| at <= now)
            && !self.complete(link.as_deref())
        {
            self.handle_timeout(link.as_deref_mut(), now);
        }
        if let Some(abort) = self.close_losers(now) {
            return abort;
        }
        for _ in 0..MAX_STEPS {
            if let Some(action) = self.step(link.as_deref_mut(), now) {
                return action;
            }
        }
        // Unreachable: every cycle of states yields an action. Should it
        // happen, the exchange ends and gives its connection up, closed.
        let misuse = roundtrip_proto::Error::Misuse("the exchange made no progress");
        let err = Error::from_proto(misuse, self.phase(None), false);
        if self.conn.is_some() {
            self.state = State::Settle {
                close: Some(CloseReason::Error),
                then: After::Fail(err),
            };
            return self.step(None, now).unwrap_or(Action::End);
        }
        self.state = State::End;
        Action::Fail(err)
    }

    /// The response was all received, its taking by the caller aside: a
    /// switch (complete at its head), or a body whose end is in the read
    /// buffer. The request's deadline passing after that fails nothing
    /// (the caller's own time with the last pieces is not the server's).
    fn complete(&mut self, link: Option<&Link>) -> bool {
        match self.state {
            State::Switched | State::End => true,
            State::Body if self.received_whole => true,
            State::Body => {
                self.received_whole = link.is_some_and(|l| l.proto.body_ends_in(&l.read_buf));
                self.received_whole
            }
            _ => false,
        }
    }

    fn step(&mut self, link: Option<&mut Link>, now: Instant) -> Option<Action> {
        match &mut self.state {
            State::Checkout => {
                // Announced when the driver asks, after it settled what came
                // before; once per hop or retry (a stale skip asks again
                // silently).
                if !self.announced {
                    self.announced = true;
                    if let Some(prepared) = &self.prepared {
                        let key = prepared.key.clone();
                        self.tracing().trace(|| TraceEvent::GetConn { key });
                    }
                }
                return Some(Action::Checkout);
            }
            State::Waiting => return Some(Action::Wait),
            State::Probe => return Some(Action::Probe),
            State::Dial => return self.step_dial(now),
            State::Switched => return Some(Action::Upgrade),
            State::End => return Some(Action::End),
            State::Failed(_) => {
                let State::Failed(e) = std::mem::replace(&mut self.state, State::End) else {
                    return None; // unreachable: matched just above
                };
                return Some(Action::Fail(e));
            }
            State::Settle { close: Some(_), .. }
                if self.send_alert && link.as_ref().is_some_and(|l| l.has_output()) =>
            {
                // Once, bounded by the write timeout: a few bytes.
                self.send_alert = false;
                let after = self.config().write_timeout;
                self.timers.arm(Timer::Write, now, after);
                return Some(Action::Write { watch_read: false });
            }
            State::Settle { .. } => {
                self.send_alert = false;
                let State::Settle { close, then } = std::mem::replace(&mut self.state, State::End)
                else {
                    return None; // unreachable: matched just above
                };
                self.conn = None;
                self.timers.disarm(Timer::Write);
                self.timers.disarm(Timer::ReadIdle);
                self.after(then, now);
                // Request bytes still queued (a final answer came before the
                // body was all written): the server's idea of the request is
                // unknown, so the connection is never reused.
                let close = match close {
                    None if link.is_some_and(|l| !l.out.is_empty()) => {
                        Some(CloseReason::BodyNotSent)
                    }
                    close => close,
                };
                return Some(match close {
                    None => Action::Release,
                    Some(reason) => Action::Discard(reason),
                });
            }
            _ => {}
        }
        let Some(link) = link else {
            let misuse = roundtrip_proto::Error::Misuse("polled without the exchange's connection");
            self.state = State::Failed(Error::from_proto(misuse, self.phase(None), false));
            return None;
        };
        match self.state {
            State::Handshake => self.step_handshake(link, now),
            State::Tunnel => self.step_tunnel(link, now),
            State::Socks(_) => self.step_socks(link, now),
            State::Send => self.step_send(link, now),
            State::Head => self.step_head(link, now),
            State::Body => self.step_body(link, now),
            State::Drain(_) => {
                if drain_buffered(&mut link.proto, &mut link.read_buf) {
                    return Some(Action::Read);
                }
                let State::Drain(then) = std::mem::replace(&mut self.state, State::End) else {
                    return None; // unreachable: matched just above
                };
                self.state = State::Settle { close: None, then };
                None
            }
            _ => None,
        }
    }

    fn step_send(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        if !link.read_buf.is_empty() || self.eof {
            // An early answer, or `100 Continue`.
            let answering = !link.read_buf.is_empty();
            match self.decode_head(link, now) {
                Ok(Some(action)) => return Some(action),
                Ok(None) => {}
                // Closed with no byte of an answer while the request goes
                // out: the write's failure (as a reset would be), not the
                // head's.
                Err(Error::ClosedEarly { reached_server, .. }) if !answering => {
                    let phase = self.phase(Some(link));
                    let err = Error::ClosedEarly {
                        phase,
                        reached_server,
                    };
                    if phase == Phase::Write {
                        self.tracing().trace_write_failed(&err);
                    }
                    self.fail(link, err);
                    return None;
                }
                Err(e) => {
                    self.fail(link, e);
                    return None;
                }
            }
            if !matches!(self.state, State::Send) {
                return None;
            }
        }
        link.prepare_write();
        // While the request goes out, or the caller's body reader waits,
        // no answer is awaited: the read timeout runs from the wait for
        // the head (`step_head`), not from a `100 Continue` wait before.
        self.timers.disarm(Timer::ReadIdle);
        if link.has_output() {
            // (A final answer that comes first ends the sending above: the
            // rest is never written, and the core closes the connection.)
            let after = self.config().write_timeout;
            self.timers.arm_once(Timer::Write, now, after);
            // Once a byte went out the server may answer while the rest
            // waits (an in-memory body queued with the head included).
            let watch_read = link.proto.wrote_any_byte();
            return Some(Action::Write { watch_read });
        }
        self.timers.disarm(Timer::Write);
        let watch_read = link.proto.wrote_any_byte();
        if link.proto.may_send_body() && self.sending != Sending::Ended {
            if let Some(bytes) = self.body.as_bytes().cloned() {
                if let Err(e) = self.queue_body(link, bytes, true, now) {
                    self.fail(link, e);
                }
                return None;
            }
            if self.body.start_reading().is_some() {
                self.sending = Sending::Streaming;
                return Some(Action::NeedBody { watch_read });
            }
            // No bytes and no reader, framed by the caller's
            // `Transfer-Encoding: chunked`: the body's end alone.
            if let Err(e) = self.queue_body(link, Bytes::new(), true, now) {
                self.fail(link, e);
            }
            return None;
        }
        if link.proto.is_sending() {
            // Waiting for `100 Continue` (or its timeout, the core's).
            return Some(Action::Read);
        }
        let unchecked = matches!(self.sending, Sending::Unsent | Sending::Probing);
        if unchecked && self.body.start_reading().is_some() {
            // A reader declared empty (`Content-Length: 0`): read once, to
            // tell its end from bytes the request cannot carry (again, when
            // response bytes came first). The request is all out: its
            // answer is awaited meanwhile, under the read timeout.
            self.sending = Sending::Probing;
            let after = self.config().read_timeout;
            self.timers.arm_once(Timer::ReadIdle, now, after);
            return Some(Action::NeedBody { watch_read });
        }
        // (The socket took the whole request: the core's head timeout runs.)
        self.state = State::Head;
        None
    }

    fn step_head(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        if link.proto.awaits_input(&link.read_buf) {
            // Nothing to decode yet (just after the request went out).
            return Some(self.read(now));
        }
        match self.decode_head(link, now) {
            Ok(Some(action)) => Some(action),
            Ok(None) if matches!(self.state, State::Head) => Some(self.read(now)),
            Ok(None) => None,
            Err(e) => {
                self.fail(link, e);
                None
            }
        }
    }

    /// An [`Action::Read`], with the read-idle timer running from the
    /// first wait.
    fn read(&mut self, now: Instant) -> Action {
        let after = self.config().read_timeout;
        self.timers.arm_once(Timer::ReadIdle, now, after);
        Action::Read
    }

    /// Decodes the head events buffered; on the final head, decides what
    /// it means (deliver, follow a redirect, switch).
    fn decode_head(&mut self, link: &mut Link, now: Instant) -> Result<Option<Action>, Error> {
        let reached = link.proto.wrote_any_byte();
        let tracing = self.settings.config.tracing(Some(self.id));
        let end =
            self.builder
                .push_buffered(&tracing, &mut link.proto, &mut link.read_buf, reached)?;
        match end {
            Some(end) => Ok(self.on_head(link, end, now)),
            None => Ok(None),
        }
    }

    /// The final head arrived: it stays in the builder until the driver
    /// takes it ([`Exchange::take_head`]), after [`Action::Head`].
    fn on_head(&mut self, link: &mut Link, end: HeadEnd, now: Instant) -> Option<Action> {
        self.timers.disarm(Timer::ReadIdle);
        self.timers.disarm(Timer::Write);
        let interim = self.builder.take_interim();
        let Some(head) = self.builder.head_mut() else {
            self.fail(
                link,
                Error::from_proto(misuse_head(), Phase::ResponseHead, true),
            );
            return None;
        };
        // Every final head's cookies are kept, a redirect's included (Go's
        // `Client.send`), for the URL that answered.
        #[cfg(feature = "cookies")]
        crate::cookies::store(&self.settings.config, &self.parts.uri, head.headers());
        if link.proto.is_switched()
            && head.status() == http::StatusCode::SWITCHING_PROTOCOLS
            && !self.parts.headers.contains_key(http::header::UPGRADE)
            && !config_asks_upgrade(&self.settings.config)
        {
            // Nothing the caller asked for: the connection would be handed
            // to no one (and a server answering every request so would
            // pile up sockets in a driver that keeps them for the taking).
            self.builder.take_head(); // never announced: not to be taken
            let err = roundtrip_proto::Error::UnrequestedSwitch;
            self.fail(link, Error::from_proto(err, Phase::ResponseHead, true));
            return None;
        }
        let unsent = |link: &Link| {
            !link.out.is_empty() || link.proto.reuse() == Reuse::No(CloseReason::BodyNotSent)
        };
        if link.proto.is_switched() && unsent(link) {
            // Bytes of the request not written (queued, or a body the core
            // stopped framing at the switch): handed over, the connection
            // would carry the caller's bytes to a server still reading the
            // request.
            self.builder.take_head(); // never announced: not to be taken
            let err = roundtrip_proto::Error::SwitchedMidRequest;
            self.fail(link, Error::from_proto(err, Phase::ResponseHead, true));
            return None;
        }
        if link.proto.is_switched() {
            self.state = State::Switched;
            self.head_end = Some((end, interim));
            mark_followed(&mut self.redirects, &self.parts.uri, head);
            return Some(Action::Head);
        }
        let replay = self.body.replay();
        let config = &self.settings.config;
        let verdict = self.redirects.handle_response(
            &self.parts,
            head.status(),
            head.headers(),
            replay,
            config,
        );
        match verdict {
            Ok(Verdict::Deliver) => {
                self.until_close = end.framing == roundtrip_proto::Framing::UntilClose;
                if self.until_close && self.unclean_eof {
                    // The end came in the read that brought the head (a
                    // proxy's `close_notify` behind the origin's records).
                    self.builder.take_head();
                    let err = Error::tls(crate::tls::TlsError::Truncated, Phase::Body, true);
                    self.fail(link, err);
                    return None;
                }
                self.state = State::Body;
                self.head_end = Some((end, interim));
                let (parts, status) = (&self.parts, head.status());
                let ext = &mut Extensions::new();
                self.decoder = decode_content(parts, config, status, head.headers_mut(), ext)
                    .map(|d| Box::new(crate::coding::Decoding::new(d)));
                head.extensions_mut().extend(std::mem::take(ext));
                mark_followed(&mut self.redirects, &self.parts.uri, head);
                Some(Action::Head)
            }
            Ok(Verdict::Follow(hop)) => {
                #[cfg(feature = "cookies")]
                crate::cookies::forget_replaced(config, &mut self.parts, head.headers());
                self.builder.take_head();
                hop.apply_with_body(&mut self.parts, &mut self.body);
                self.leave(link, After::Hop, now);
                None
            }
            Err(e) => {
                self.builder.take_head();
                self.leave(link, After::Fail(e), now);
                None
            }
        }
    }

    /// The head of the last [`Action::Head`], taken (`None` after the first
    /// call, or with no such action), with the URL that answered as its
    /// body ([`FinalUrl`](crate::FinalUrl)): the driver puts it in the body
    /// it makes, where [`ResponseExt::url`](crate::ResponseExt::url) finds
    /// it. The head is built in place and moved once, here.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use roundtrip_io::exchange::sim::{Server, Sim};
    /// use roundtrip_io::exchange::{Action, Exchange, Settings};
    /// let mut sim = Sim::new(roundtrip_io::Config::default());
    /// sim.serve(Server::reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    /// let settings = Arc::new(Settings::new(roundtrip_io::Config::default()));
    /// let (parts, body) = http::Request::get("http://127.0.0.1/a").body(roundtrip_io::Body::empty())?.into_parts();
    /// let mut ex = Exchange::new(settings, parts, body, sim.now());
    /// let collected = sim.run(&mut ex, None)?; // takes the head at `Action::Head`
    /// assert_eq!(collected.status, 200);
    /// assert_eq!(collected.url.to_string(), "http://127.0.0.1/a");
    /// assert!(ex.take_head().is_none(), "taken once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_head(&mut self) -> Option<http::Response<crate::FinalUrl>> {
        let head = self.builder.take_head()?;
        // The URI is moved, not copied: the exchange needs it no more.
        let url = crate::FinalUrl(std::mem::take(&mut self.parts.uri));
        Some(head.map(|()| url))
    }

    fn step_body(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        if let Some(decoder) = &mut self.decoder {
            match decoder.poll_output() {
                Ok(Some(data)) => return Some(Action::Data(data)),
                Ok(None) => {}
                Err(e) => {
                    self.leave(link, After::Fail(e.into()), now);
                    return None;
                }
            }
        }
        // Bounded by the bytes buffered: each event consumes some.
        loop {
            let event = match link.proto.poll_event(&mut link.read_buf) {
                Ok(Some(event)) => event,
                Ok(None) => return Some(self.read(now)),
                Err(e) => {
                    self.fail(link, Error::from_proto(e, Phase::Body, true));
                    return None;
                }
            };
            match event {
                roundtrip_proto::Event::Data(data) if data.is_empty() => {}
                roundtrip_proto::Event::Data(data) => {
                    self.timers.disarm(Timer::ReadIdle);
                    let Some(decoder) = &mut self.decoder else {
                        return Some(Action::Data(data));
                    };
                    decoder.handle_input(data);
                    match decoder.poll_output() {
                        Ok(Some(data)) => return Some(Action::Data(data)),
                        Ok(None) => {} // more input wanted
                        Err(e) => {
                            self.leave(link, After::Fail(e.into()), now);
                            return None;
                        }
                    }
                }
                roundtrip_proto::Event::Trailer(field) => {
                    let trailers = self.trailers.get_or_insert_with(Box::default);
                    if let Err(e) = trailer_into(trailers, &field) {
                        self.fail(link, Error::from_proto(e, Phase::Body, true));
                        return None;
                    }
                }
                roundtrip_proto::Event::End => {
                    let ended = self.decoder.as_mut().map_or(Ok(()), |d| d.handle_end());
                    let then = match ended {
                        Ok(()) => After::End,
                        Err(e) => After::Fail(e.into()),
                    };
                    self.state = State::Settle { close: None, then };
                    return None;
                }
                _ => {}
            }
        }
    }
}
/// Every response carries the URL that answered it ([`FinalUrl`]: the one
/// requested, or the last hop's), as its body until the driver makes the
/// real one ([`Exchange::take_head`]; no `http::Extensions` allocation per
/// response); one with an error status has it in its extensions too, and
/// one that came through redirects the chain.
///
/// [`FinalUrl`]: crate::FinalUrl
fn mark_followed(redirects: &mut Redirects, uri: &http::Uri, head: &mut http::Response<()>) {
    if let Some(chain) = std::mem::take(redirects).into_followed() {
        head.extensions_mut().insert(chain);
    }
    // The head of an error status outlives its body more often
    // (`error_for_status`): it keeps the URL as well.
    let status = head.status();
    if status.is_client_error() || status.is_server_error() {
        head.extensions_mut().insert(crate::FinalUrl(uri.clone()));
    }
}

/// A final head reported with none built: not from the decoder.
fn misuse_head() -> roundtrip_proto::Error {
    roundtrip_proto::Error::Misuse("a head end without a head")
}

#[cfg(test)]
mod size {
    /// An exchange is built, boxed and moved once per request: its rare
    /// parts (the dial, a content decoder, trailers, a proxy) are boxed,
    /// so that the common request copies about 1 KiB, not 1.5.
    #[test]
    fn an_exchange_stays_small() {
        type Exchange = super::Exchange<Box<dyn std::io::Read + Send>>;
        let size = std::mem::size_of::<Exchange>();
        assert!(
            size <= 1_100,
            "{size} bytes (1,512 before the rare parts were boxed)"
        );
    }

    /// The operating system's roots are loaded when the client is built,
    /// not at the first `https` request (inside an async task's poll);
    /// without them, nothing TLS is built before it is needed.
    #[cfg(feature = "tls")]
    #[test]
    fn native_roots_are_loaded_when_the_client_is_built() {
        use super::{Config, Settings};
        let mut config = Config::default();
        assert!(Settings::new(config.clone()).tls.get().is_none());
        config.tls.native_roots = true;
        assert!(Settings::new(config).tls.get().is_some());
    }
}
