//! The error type every backend returns.

use std::fmt;
use std::io;

use roundtrip_proto::CloseReason;
use roundtrip_proto::Error as ProtoError;
use roundtrip_proto::conn::{Connection, RetryFacts, Timer};

/// What the client was doing when something failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for a pooled connection or a permit to dial (`max_conns_per_host`).
    PoolWait,
    /// Connecting.
    Connect,
    /// The TLS handshake of a new `https` connection.
    Handshake,
    /// Writing the request.
    Write,
    /// Waiting for or reading the response head.
    ResponseHead,
    /// Reading the response body.
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::PoolWait => "wait for a connection",
            Phase::Connect => "connect",
            Phase::Handshake => "tls handshake",
            Phase::Write => "request write",
            Phase::ResponseHead => "response head",
            Phase::Body => "response body",
        })
    }
}

/// Which configured limit ran out: every timeout setting of
/// [`Config`](crate::Config) is its own kind, so a caller can tell a slow
/// server (`ReadIdle`, `ResponseHead`) from a request that simply took longer
/// than it was allowed (`Total`).
///
/// ```
/// use roundtrip_io::{Error, Phase, TimeoutKind};
/// let e = Error::Timeout { kind: TimeoutKind::ReadIdle, phase: Phase::Body, reached_server: true };
/// assert_eq!(e.timeout_kind(), Some(TimeoutKind::ReadIdle));
/// assert_eq!(e.to_string(), "response body timed out: no byte for read_timeout (the server answered)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// `connect_timeout`: one TCP connect took too long.
    Connect,
    /// `tls_handshake_timeout`: the TLS handshake took too long (a server
    /// that accepts the connection and never speaks TLS).
    TlsHandshake,
    /// `response_head_timeout`: the final response head did not arrive in
    /// time after the request was written.
    ResponseHead,
    /// `read_timeout`: no byte arrived for that long while a response (head
    /// or body) was due.
    ReadIdle,
    /// `write_timeout`: the socket took no byte of the request for that long.
    Write,
    /// `timeout`: the whole request's deadline passed (pool wait to the last
    /// body byte).
    Total,
}

impl TimeoutKind {
    /// The kind of a step's own limit met in `phase`, when the socket or
    /// the runtime only said "timed out".
    fn of_phase(phase: Phase) -> TimeoutKind {
        match phase {
            Phase::PoolWait => TimeoutKind::Total,
            Phase::Connect => TimeoutKind::Connect,
            Phase::Handshake => TimeoutKind::TlsHandshake,
            Phase::Write => TimeoutKind::Write,
            Phase::ResponseHead | Phase::Body => TimeoutKind::ReadIdle,
        }
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connect_timeout passed",
            TimeoutKind::TlsHandshake => "tls_handshake_timeout passed",
            TimeoutKind::ResponseHead => "response_head_timeout passed",
            TimeoutKind::ReadIdle => "no byte for read_timeout",
            TimeoutKind::Write => "no progress for write_timeout",
            TimeoutKind::Total => "the request's timeout passed",
        })
    }
}

/// Why a request could not be sent as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRequest {
    /// The URI has no host.
    #[error("the uri has no host")]
    MissingHost,
    /// The URI has no scheme (`example.com:443/`): `http://` or `https://`
    /// must say how to reach it (as reqwest and Go refuse it).
    #[error("the uri has no scheme: write http:// or https:// before the host")]
    MissingScheme,
    /// The URI's port is not a number from 0 to 65535.
    #[error("the uri's port {0:?} is not a number from 0 to 65535")]
    InvalidPort(String),
    /// Neither `http` nor `https`. (An `https` URL on a build without the
    /// `tls` feature fails at its handshake with `TlsError::Disabled`.)
    #[error("unsupported uri scheme {0:?}")]
    UnsupportedScheme(String),
    /// The proxy setting for the URL's scheme is no proxy URL this client
    /// speaks (from the environment: `https_proxy=socks4://...`, a typo);
    /// the request is not sent around it.
    #[error("the proxy setting is unusable: {0}")]
    Proxy(crate::proxy::ProxyError),
    /// A `Content-Length` or `Transfer-Encoding` header that contradicts the body.
    #[error("{0}")]
    Framing(&'static str),
    /// The encoder refused a method, target, name or value.
    #[error(transparent)]
    Encode(ProtoError),
    /// A header's value cannot go on the wire: it holds a control byte
    /// (CR, LF, NUL, ...) or starts or ends with a space or tab (RFC 9110
    /// section 5.5: a field value has no whitespace around it). Named,
    /// the request's own or a default header.
    #[error("the value of the header {name:?} {why}")]
    HeaderValue {
        /// The header's name.
        name: String,
        /// What is wrong with the value.
        why: &'static str,
    },
    /// The request could not be built: a URL, header name or header value
    /// that does not parse (`http` crate error).
    #[error(transparent)]
    Http(#[from] http::Error),
    /// The value a request builder's `json` was given cannot be serialized
    /// as JSON (a map whose keys are not strings, a `Serialize` impl that
    /// fails).
    #[cfg(feature = "json")]
    #[error("the request body cannot be serialized as JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Everything that can go wrong with a request, on any backend.
///
/// Whether the server can have acted on the request is answered one way
/// everywhere: [`Error::delivery`] says it in three words ([`Delivery`]:
/// not sent, may have reached the server, answered),
/// [`Error::reached_server`] in one bit (false only when not sent), and
/// the `reached_server` field of a variant is that bit: true when any byte
/// of the request was written, so that it may have reached the server.
/// The error's text ends with the same answer.
///
/// ```
/// use roundtrip_io::{Delivery, Error, Phase};
/// use roundtrip_io::TimeoutKind;
/// let e = Error::Timeout { kind: TimeoutKind::Total, phase: Phase::ResponseHead, reached_server: true };
/// assert!(e.reached_server());
/// assert_eq!(e.delivery(), Delivery::MaybeProcessed);
/// assert_eq!(e.to_string(), "response head timed out: the request's timeout passed (the request may have reached the server)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be sent as given.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No connection could be made.
    #[error("connecting to {}{addr} failed: {source}{}", if *.proxy { "proxy " } else { "" }, Tried(.tried))]
    Connect {
        /// The host and port tried.
        addr: String,
        /// `addr` is the proxy's: the request went through a proxy, and
        /// its name did not resolve or it could not be reached (curl's
        /// exit code 5 where no address was found, not 6).
        proxy: bool,
        /// The last connect error.
        source: io::Error,
        /// Every address tried, with why it failed, in order.
        tried: Vec<(std::net::SocketAddr, String)>,
    },
    /// A timeout fired.
    #[error("{phase} timed out: {kind}{}", self.delivery().suffix())]
    Timeout {
        /// Which limit ran out.
        kind: TimeoutKind,
        /// What was being waited for.
        phase: Phase,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// The server broke the protocol.
    #[error("invalid response ({phase}): {source}{}", self.delivery().suffix())]
    Protocol {
        /// Where.
        phase: Phase,
        /// What the decoder found.
        source: ProtoError,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// The response exceeded a decoder limit (head size, field count, ...).
    #[error("response exceeds a limit: {source}{}", self.delivery().suffix())]
    LimitExceeded {
        /// The decoder's error, naming the limit.
        source: ProtoError,
    },
    /// The response body is larger than the caller allowed.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The server closed the connection before the response was complete.
    #[error("connection closed by the server during the {phase}{}", self.delivery().suffix())]
    ClosedEarly {
        /// Where.
        phase: Phase,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// A socket error.
    #[error("i/o error during the {phase}: {source}{}", self.delivery().suffix())]
    Io {
        /// Where.
        phase: Phase,
        /// The error.
        source: io::Error,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// A streamed request body gave more or fewer bytes than the
    /// `Content-Length` it was sent with. The connection is closed.
    #[error("request body length differs from its content-length: declared {declared}, supplied {supplied}{}", self.delivery().suffix())]
    BodyLength {
        /// The declared length.
        declared: u64,
        /// Bytes the body's source supplied (when too many: at least).
        supplied: u64,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// The TLS layer failed: the server's certificate, the handshake, or
    /// the records of an established connection. Never retried.
    #[error("tls failed during the {phase}: {source}{}", self.delivery().suffix())]
    Tls {
        /// Where.
        phase: Phase,
        /// What went wrong.
        source: crate::tls::TlsError,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// The proxy failed: its handshake (SOCKS5, or the TLS session with an
    /// `https://` proxy: [`ProxyError::Tls`](crate::proxy::ProxyError::Tls)),
    /// its answer, or a route it cannot take. The request did not reach
    /// the origin.
    #[error("proxy {proxy}: {source}")]
    Proxy {
        /// The proxy (`scheme://host:port`, without credentials).
        proxy: String,
        /// What went wrong.
        source: crate::proxy::ProxyError,
    },
    /// The proxy answered the `CONNECT` with a status other than 2xx
    /// (`407 Proxy Authentication Required`: it wants credentials, or
    /// refused those given). Never retried.
    #[error("the proxy {proxy} refused the tunnel: {status}{}", if status.as_u16() == 407 { " (it requires authentication: give user:password@ in the proxy url)" } else { "" })]
    ProxyStatus {
        /// The proxy (`scheme://host:port`, without credentials).
        proxy: String,
        /// Its answer's status.
        status: http::StatusCode,
        /// Its answer's head.
        head: Box<http::response::Parts>,
    },
    /// The caller cancelled the request.
    #[error("request cancelled ({phase}){}", self.delivery().suffix())]
    Cancelled {
        /// What the request was doing: waiting for a connection (its stale
        /// check too, and between a redirect's hops or before a retry once
        /// the last response is read), connecting, its TLS handshake,
        /// writing, waiting for the head, or the body (a redirect's too,
        /// while it drains).
        phase: Phase,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// A callback of the request's own panicked: its tracer, redirect
    /// policy, request body's reader or response stream callback. The
    /// backends that run many requests on one loop (mio) end the request
    /// with this and pass the panic on; the others let it unwind through
    /// the call.
    #[error("a callback of the request panicked during the {phase}{}", self.delivery().suffix())]
    Panicked {
        /// What the request was doing.
        phase: Phase,
        /// The request may have reached the server: a byte of it was written.
        reached_server: bool,
    },
    /// The response was not a switch to another protocol (101, or a 2xx
    /// to CONNECT), so there is no connection to take over.
    #[error("the response did not switch protocols: nothing to upgrade")]
    NotUpgraded,
    /// The request body's source failed.
    #[error("reading the request body failed: {source}{suffix}", source = .0, suffix = self.delivery().suffix())]
    RequestBody(#[source] io::Error),
    /// A redirect came after `max` were followed already
    /// ([`Config::max_redirects`](crate::Config::max_redirects)).
    #[error("stopped after {max} redirects (last {})", .chain.last().map_or(String::new(), |u| Shown(u).to_string()))]
    TooManyRedirects {
        /// The limit.
        max: usize,
        /// Every URL requested, the original first.
        chain: Vec<http::Uri>,
    },
    /// A redirect (301, 302, 303, 307, 308) whose `Location` is not text,
    /// not a URL reference, or not an `http` or `https` URL. (One without
    /// a `Location` is the answer, as in Go: it is delivered, not
    /// followed.)
    #[error("{status} redirect with {}", match .location { Some(l) => format!("an invalid location {l:?}"), None => "no location".to_string() })]
    InvalidLocation {
        /// The redirect's status.
        status: http::StatusCode,
        /// The `Location` value, lossily as text (`None` is not produced:
        /// a redirect without one is delivered).
        location: Option<String>,
    },
    /// The redirect policy ([`Config::redirect_policy`](crate::Config::redirect_policy))
    /// refused to follow a redirect to `next`.
    #[error("redirect to {} refused: {source}", Shown(.next))]
    RedirectRefused {
        /// Where the redirect pointed.
        next: http::Uri,
        /// The policy's reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A body the client decodes (a content coding it asked for) is corrupt
    /// or truncated.
    #[error("decoding the response body failed: {source}")]
    Decode {
        /// What the decoder found.
        #[from]
        source: crate::gzip::GzipError,
    },
    /// The server answered with a 4xx or 5xx status
    /// ([`ResponseExt::error_for_status`](crate::ResponseExt::error_for_status)).
    #[error("the server answered {status}{}", ForUrl(head))]
    Status {
        /// The status.
        status: http::StatusCode,
        /// The response head: version, fields, extensions (the
        /// [`FinalUrl`](crate::FinalUrl) among them).
        head: Box<http::response::Parts>,
    },
    /// A body read as JSON is not the JSON asked for.
    #[cfg(feature = "json")]
    #[error("the response body is not the JSON expected: {0}")]
    Json(#[source] serde_json::Error),
}

/// How far a failed request got, as far as the client can know: what
/// [`Error::delivery`] answers, and what the text of a failure that could
/// be either ends with (in parentheses).
///
/// Go's `http.Client` and hyper answer only "was it sent at all"; the third
/// answer tells a caller who must not do a thing twice when a retry is
/// certainly a second request.
///
/// ```
/// use roundtrip_io::Delivery;
/// assert_eq!(Delivery::NotSent.to_string(), "the request was not sent");
/// assert_eq!(Delivery::MaybeProcessed.to_string(), "the request may have reached the server");
/// assert_eq!(Delivery::Answered.to_string(), "the server answered");
/// assert!(Delivery::MaybeProcessed.reached_server() && !Delivery::NotSent.reached_server());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// No byte of the request was written: the server cannot have acted on
    /// it, and sending it again is safe whatever its method.
    NotSent,
    /// Some or all of the request was written, and no final response head
    /// came back: the request may have reached the server, which may have
    /// acted on it.
    MaybeProcessed,
    /// A final response head came back (the failure is in its body, its
    /// status, its redirect or its decoding): the server received the
    /// request and answered it.
    Answered,
}

/// The addresses tried, when more than one was.
struct Tried<'a>(&'a [(std::net::SocketAddr, String)]);

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() < 2 {
            return Ok(());
        }
        f.write_str(" (tried")?;
        for (i, (addr, why)) in self.0.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{addr}: {why}")?;
        }
        f.write_str(")")
    }
}

impl Delivery {
    /// The one bit [`Error::reached_server`] gives: false only for
    /// [`NotSent`](Delivery::NotSent).
    pub fn reached_server(self) -> bool {
        self != Delivery::NotSent
    }

    /// From the `reached_server` bit of an error met in `phase`: a failure
    /// while reading the body comes after the final head, so it was
    /// answered.
    fn of(reached_server: bool, phase: Option<Phase>) -> Delivery {
        match (reached_server, phase) {
            (false, _) => Delivery::NotSent,
            (true, Some(Phase::Body)) => Delivery::Answered,
            (true, _) => Delivery::MaybeProcessed,
        }
    }

    /// The end of an error's text: ` (` this `)`.
    fn suffix(self) -> DeliverySuffix {
        DeliverySuffix(self)
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivery::NotSent => "the request was not sent",
            Delivery::MaybeProcessed => "the request may have reached the server",
            Delivery::Answered => "the server answered",
        })
    }
}

struct DeliverySuffix(Delivery);

impl fmt::Display for DeliverySuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " ({})", self.0)
    }
}

impl Error {
    /// Whether the request may have reached the server: false only when no
    /// byte of it was written ([`Delivery::NotSent`]); the one-bit form of
    /// [`delivery`](Self::delivery).
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase};
    /// let e = Error::ClosedEarly { phase: Phase::ResponseHead, reached_server: false };
    /// assert!(!e.reached_server());
    /// assert_eq!(e.to_string(), "connection closed by the server during the response head (the request was not sent)");
    /// ```
    pub fn reached_server(&self) -> bool {
        self.delivery().reached_server()
    }

    /// How far the request got ([`Delivery`]): not sent, may have reached
    /// the server, or answered (a final response head came back).
    ///
    /// ```
    /// use roundtrip_io::{Delivery, Error, Phase};
    /// let cut = Error::ClosedEarly { phase: Phase::Body, reached_server: true };
    /// assert_eq!(cut.delivery(), Delivery::Answered);
    /// assert_eq!(cut.to_string(), "connection closed by the server during the response body (the server answered)");
    /// let source = std::io::ErrorKind::ConnectionRefused.into();
    /// let refused = Error::Connect { addr: "127.0.0.1:1".into(), proxy: false, source, tried: Vec::new() };
    /// assert_eq!(refused.delivery(), Delivery::NotSent);
    /// ```
    pub fn delivery(&self) -> Delivery {
        match self {
            // The server answered, with a switch it should not have made.
            Error::Protocol {
                source: ProtoError::UnrequestedSwitch | ProtoError::SwitchedMidRequest,
                ..
            } => Delivery::Answered,
            Error::Timeout {
                phase,
                reached_server,
                ..
            }
            | Error::Protocol {
                phase,
                reached_server,
                ..
            }
            | Error::ClosedEarly {
                phase,
                reached_server,
            }
            | Error::Io {
                phase,
                reached_server,
                ..
            }
            | Error::Tls {
                phase,
                reached_server,
                ..
            } => Delivery::of(*reached_server, Some(*phase)),
            Error::Cancelled {
                phase,
                reached_server,
            }
            | Error::Panicked {
                phase,
                reached_server,
            } => Delivery::of(*reached_server, Some(*phase)),
            Error::BodyLength { reached_server, .. } => Delivery::of(*reached_server, None),
            // A limit of the body (trailers, chunk extensions) is met after
            // the final head; one of the head (size, fields, 1xx count)
            // before it.
            Error::LimitExceeded { source } => match source {
                ProtoError::TrailersTooLarge { .. } | ProtoError::ChunkExtTooLarge { .. } => {
                    Delivery::Answered
                }
                _ => Delivery::MaybeProcessed,
            },
            Error::RequestBody(_) => Delivery::MaybeProcessed,
            Error::BodyTooLarge { .. }
            | Error::TooManyRedirects { .. }
            | Error::InvalidLocation { .. }
            | Error::RedirectRefused { .. }
            | Error::Decode { .. }
            | Error::Status { .. }
            | Error::NotUpgraded => Delivery::Answered,
            #[cfg(feature = "json")]
            Error::Json(_) => Delivery::Answered,
            Error::InvalidRequest(_)
            | Error::Connect { .. }
            | Error::Proxy { .. }
            | Error::ProxyStatus { .. } => Delivery::NotSent,
        }
    }

    /// A TLS failure met in `phase`.
    pub fn tls(source: crate::tls::TlsError, phase: Phase, reached_server: bool) -> Error {
        Error::Tls {
            phase,
            source,
            reached_server,
        }
    }

    /// Classifies a core error met in `phase`.
    pub fn from_proto(source: ProtoError, phase: Phase, reached_server: bool) -> Error {
        match source {
            ProtoError::UnexpectedEof { .. } => Error::ClosedEarly {
                phase,
                reached_server,
            },
            ProtoError::TimedOut { timer } => Error::Timeout {
                kind: match timer {
                    Timer::ResponseHead => TimeoutKind::ResponseHead,
                    // Not errors a request sees (the body goes out anyway;
                    // a drain only ends a connection), named for completeness.
                    Timer::Continue100 | Timer::Drain => TimeoutKind::ReadIdle,
                },
                phase,
                reached_server,
            },
            ProtoError::HeadTooLarge { .. }
            | ProtoError::TooManyFields { .. }
            | ProtoError::TooManyInterimResponses { .. }
            | ProtoError::ChunkExtTooLarge { .. }
            | ProtoError::TrailersTooLarge { .. } => Error::LimitExceeded { source },
            e if !e.is_peer_error() => Error::InvalidRequest(InvalidRequest::Encode(e)),
            source => Error::Protocol {
                phase,
                source,
                reached_server,
            },
        }
    }

    /// Classifies a socket error met in `phase`: timeouts become
    /// [`Error::Timeout`], a reset or broken pipe [`Error::ClosedEarly`].
    pub fn from_io(source: io::Error, phase: Phase, reached_server: bool) -> Error {
        use io::ErrorKind::*;
        match source.kind() {
            TimedOut | WouldBlock => Error::Timeout {
                kind: TimeoutKind::of_phase(phase),
                phase,
                reached_server,
            },
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                Error::ClosedEarly {
                    phase,
                    reached_server,
                }
            }
            _ => Error::Io {
                phase,
                source,
                reached_server,
            },
        }
    }

    /// True for [`Error::Timeout`], and for a dial the system gave up by
    /// its own timer (`ETIMEDOUT`: no connect timeout of ours was set), as
    /// reqwest's `is_timeout` says for it.
    ///
    /// ```
    /// use roundtrip_io::Error;
    /// let source = std::io::ErrorKind::TimedOut.into();
    /// let e = Error::Connect { addr: "10.0.0.1:80".into(), proxy: false, source, tried: Vec::new() };
    /// assert!(e.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Connect { source, .. } => source.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// Which limit ran out, for [`Error::Timeout`].
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase, TimeoutKind};
    /// let e = Error::timed_out(TimeoutKind::Connect, None, Phase::Connect, false);
    /// assert_eq!(e.timeout_kind(), Some(TimeoutKind::Connect));
    /// ```
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        match self {
            Error::Timeout { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The timeout of a wait that ended at the earlier of a step's own limit
    /// (`kind`) and the request's `total` deadline: [`TimeoutKind::Total`]
    /// once `total` has passed, `kind` otherwise.
    ///
    /// ```
    /// use std::time::Instant;
    /// use roundtrip_io::{Error, Phase, TimeoutKind};
    /// let past = Some(Instant::now());
    /// let e = Error::timed_out(TimeoutKind::ReadIdle, past, Phase::Body, true);
    /// assert_eq!(e.timeout_kind(), Some(TimeoutKind::Total));
    /// ```
    pub fn timed_out(
        kind: TimeoutKind,
        total: Option<std::time::Instant>,
        phase: Phase,
        reached_server: bool,
    ) -> Error {
        let passed = total.is_some_and(|at| std::time::Instant::now() >= at);
        Error::Timeout {
            kind: if passed { TimeoutKind::Total } else { kind },
            phase,
            reached_server,
        }
    }

    /// Where the request was when it failed, for the errors of a step of
    /// its life (a timeout, a cut, a socket or TLS error, a broken
    /// response, a cancel); `None` for the others.
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase};
    /// let e = Error::ClosedEarly { phase: Phase::Body, reached_server: true };
    /// assert_eq!(e.phase(), Some(Phase::Body));
    /// assert_eq!(Error::NotUpgraded.phase(), None);
    /// ```
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Error::Timeout { phase, .. }
            | Error::Protocol { phase, .. }
            | Error::ClosedEarly { phase, .. }
            | Error::Io { phase, .. }
            | Error::Tls { phase, .. }
            | Error::Cancelled { phase, .. }
            | Error::Panicked { phase, .. } => Some(*phase),
            _ => None,
        }
    }

    /// The status of an [`Error::Status`] (what
    /// [`error_for_status`](crate::ResponseExt::error_for_status) makes of
    /// a 4xx or 5xx answer), as reqwest's `Error::status` gives it.
    ///
    /// ```
    /// use http::StatusCode;
    /// use roundtrip_io::Error;
    /// let head = http::Response::builder().status(404).body(()).unwrap().into_parts().0;
    /// let e = Error::Status { status: StatusCode::NOT_FOUND, head: Box::new(head) };
    /// assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));
    /// assert!(e.is_status());
    /// ```
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for [`Error::Status`]: the server answered 4xx or 5xx and the
    /// caller asked for that to be an error.
    ///
    /// ```
    /// use roundtrip_io::Error;
    /// assert!(!Error::NotUpgraded.is_status());
    /// ```
    pub fn is_status(&self) -> bool {
        self.status().is_some()
    }

    /// True when no connection to the server was made: the dial failed or
    /// timed out, the TLS handshake failed, or the proxy failed or refused
    /// the tunnel (reqwest's `is_connect`). The request was not sent.
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase, TimeoutKind};
    /// let source = std::io::ErrorKind::ConnectionRefused.into();
    /// let refused = Error::Connect { addr: "127.0.0.1:1".into(), proxy: false, source, tried: Vec::new() };
    /// assert!(refused.is_connect());
    /// let slow = Error::Timeout { kind: TimeoutKind::Connect, phase: Phase::Connect, reached_server: false };
    /// assert!(slow.is_connect());
    /// let cut = Error::ClosedEarly { phase: Phase::Body, reached_server: true };
    /// assert!(!cut.is_connect());
    /// ```
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Proxy { .. } | Error::ProxyStatus { .. } => true,
            Error::Cancelled { .. } | Error::Panicked { .. } => false,
            _ => matches!(self.phase(), Some(Phase::Connect | Phase::Handshake)),
        }
    }

    /// True when following a redirect failed: too many, a bad `Location`,
    /// or the redirect policy refused it.
    ///
    /// ```
    /// use roundtrip_io::Error;
    /// let e = Error::TooManyRedirects { max: 10, chain: Vec::new() };
    /// assert!(e.is_redirect());
    /// ```
    pub fn is_redirect(&self) -> bool {
        matches!(
            self,
            Error::TooManyRedirects { .. }
                | Error::InvalidLocation { .. }
                | Error::RedirectRefused { .. }
        )
    }

    /// True when a body failed: the request body's source or its length,
    /// or the response body (cut, timed out, broken framing, over its
    /// limit). A body that fails to decode is [`is_decode`](Self::is_decode)
    /// instead.
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase};
    /// assert!(Error::BodyTooLarge { limit: 1 << 20 }.is_body());
    /// let cut = Error::ClosedEarly { phase: Phase::Body, reached_server: true };
    /// assert!(cut.is_body());
    /// ```
    pub fn is_body(&self) -> bool {
        match self {
            Error::BodyTooLarge { .. } | Error::BodyLength { .. } | Error::RequestBody(_) => true,
            Error::LimitExceeded { source } => matches!(
                source,
                ProtoError::TrailersTooLarge { .. } | ProtoError::ChunkExtTooLarge { .. }
            ),
            Error::Cancelled { .. } | Error::Panicked { .. } => false,
            _ => self.phase() == Some(Phase::Body),
        }
    }

    /// True when the response body could not be decoded: its content
    /// coding is corrupt, or it is not the JSON asked for.
    ///
    /// ```
    /// use roundtrip_io::Error;
    /// assert!(!Error::NotUpgraded.is_decode());
    /// ```
    pub fn is_decode(&self) -> bool {
        match self {
            Error::Decode { .. } => true,
            #[cfg(feature = "json")]
            Error::Json(_) => true,
            _ => false,
        }
    }

    /// True when the request could not be built or sent as given
    /// ([`Error::InvalidRequest`]: a bad URL, header or body); reqwest's
    /// `is_builder`.
    ///
    /// ```
    /// use roundtrip_io::{Error, InvalidRequest};
    /// let e = Error::InvalidRequest(InvalidRequest::MissingScheme);
    /// assert!(e.is_builder());
    /// ```
    pub fn is_builder(&self) -> bool {
        matches!(self, Error::InvalidRequest(_))
    }

    /// Why a connection that failed with this error mid-exchange is closed.
    ///
    /// ```
    /// use roundtrip_io::{Error, Phase, proto::CloseReason};
    /// let err = Error::ClosedEarly { phase: Phase::ResponseHead, reached_server: true };
    /// assert_eq!(err.close_reason(), CloseReason::PeerClosed);
    /// ```
    pub fn close_reason(&self) -> CloseReason {
        match self {
            Error::Timeout { .. } => CloseReason::Timeout,
            Error::ClosedEarly { .. } => CloseReason::PeerClosed,
            _ => CloseReason::Error,
        }
    }

    /// May a request that failed with this error on `conn` be sent again on
    /// a new connection? Only when the connection broke under it (closed
    /// early, or an I/O error) and the core's rule
    /// ([`Connection::retry_safety`]) says a resend is safe. A request is
    /// resent while each failure is on a pooled connection (Go's
    /// `shouldRetryRequest` loop); the caller keeps count.
    pub fn may_resend(&self, conn: &Connection, facts: RetryFacts) -> bool {
        matches!(self, Error::ClosedEarly { .. } | Error::Io { .. })
            && conn.retry_safety(facts).is_safe()
    }
}

/// A response head kept in an error ([`Error::Status`],
/// [`Error::ProxyStatus`]), its `Set-Cookie` values marked sensitive: an
/// error's `Debug` is what `?` out of `main` and `unwrap` print, and `http`
/// prints a sensitive value as `Sensitive`, not the session it holds. The
/// values stay readable in `head.headers`.
pub(crate) fn error_head(mut head: http::response::Parts) -> Box<http::response::Parts> {
    for (name, value) in head.headers.iter_mut() {
        if name == http::header::SET_COOKIE {
            value.set_sensitive(true);
        }
    }
    Box::new(head)
}

/// ` for <url>` when the head knows its URL (its `FinalUrl`), password
/// hidden, as reqwest's status error names it.
struct ForUrl<'a>(&'a http::response::Parts);

impl fmt::Display for ForUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.extensions.get::<crate::FinalUrl>() {
            Some(url) => write!(f, " for {}", Shown(&url.0)),
            None => Ok(()),
        }
    }
}

/// A URI for an error message, its password (user info after a `:`)
/// shown as `***`, as Go's `stripPassword` does: a redirect's URL keeps
/// the user info of the URL it came from.
struct Shown<'a>(&'a http::Uri);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        let Some(authority) = uri.authority().map(http::uri::Authority::as_str) else {
            return write!(f, "{uri}");
        };
        let Some((user, host)) = authority.rsplit_once('@') else {
            return write!(f, "{uri}");
        };
        let Some((name, _password)) = user.split_once(':') else {
            return write!(f, "{uri}");
        };
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        write!(f, "{name}:***@{host}")?;
        match uri.path_and_query() {
            Some(path) => write!(f, "{path}"),
            None => Ok(()),
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            // A compressed body cut short is a short body too (Go's
            // `io.ErrUnexpectedEOF`, flate2's `UnexpectedEof`).
            Error::ClosedEarly { .. }
            | Error::Decode {
                source: crate::gzip::DecodeError::Truncated { .. },
            } => io::ErrorKind::UnexpectedEof,
            Error::Protocol { .. } | Error::LimitExceeded { .. } | Error::Decode { .. } => {
                io::ErrorKind::InvalidData
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gzip::DecodeError;

    #[test]
    fn redirect_errors_hide_passwords() {
        let uri: http::Uri = "http://u:secret@h:8080/p?q=1".parse().unwrap();
        let too_many = Error::TooManyRedirects {
            max: 1,
            chain: vec![uri.clone()],
        };
        assert_eq!(
            too_many.to_string(),
            "stopped after 1 redirects (last http://u:***@h:8080/p?q=1)"
        );
        let refused = Error::RedirectRefused {
            next: uri,
            source: "no".into(),
        };
        assert_eq!(
            refused.to_string(),
            "redirect to http://u:***@h:8080/p?q=1 refused: no"
        );
        let plain: http::Uri = "http://u@h/".parse().unwrap();
        assert_eq!(Shown(&plain).to_string(), "http://u@h/");
    }

    #[test]
    fn status_errors_do_not_print_session_cookies() {
        use crate::ResponseExt;
        let answer = http::Response::builder()
            .status(403)
            .header("set-cookie", "sid=s3cret; HttpOnly")
            .header("x-why", "denied")
            .body(())
            .unwrap();
        let err = answer.error_for_status().unwrap_err();
        let shown = format!("{err:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("denied"), "{shown}");
        let Error::Status { head, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(head.headers["set-cookie"], "sid=s3cret; HttpOnly");

        let (parts, ()) = http::Response::builder()
            .status(407)
            .header("Set-Cookie", "proxy=s3cret")
            .body(())
            .unwrap()
            .into_parts();
        let err = Error::ProxyStatus {
            proxy: "http://127.0.0.1:3128".into(),
            status: parts.status,
            head: error_head(parts),
        };
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    }

    #[test]
    fn a_truncated_compressed_body_reads_as_a_short_body() {
        let short = Error::from(DecodeError::Truncated { received: 9 });
        assert_eq!(io::Error::from(short).kind(), io::ErrorKind::UnexpectedEof);
        let corrupt = Error::from(DecodeError::Corrupt { offset: 9 });
        assert_eq!(io::Error::from(corrupt).kind(), io::ErrorKind::InvalidData);
    }
}
