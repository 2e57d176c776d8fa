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
/// assert_eq!(e.to_string(), "response body timed out: no byte for read_timeout (the request may have reached the server)");
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
    /// The URI's port is not a number from 0 to 65535.
    #[error("the uri's port {0:?} is not a number from 0 to 65535")]
    InvalidPort(String),
    /// Only `http` is supported.
    #[error("unsupported uri scheme {0:?}")]
    UnsupportedScheme(String),
    /// A `Content-Length` or `Transfer-Encoding` header that contradicts the body.
    #[error("{0}")]
    Framing(&'static str),
    /// The encoder refused a method, target, name or value.
    #[error(transparent)]
    Encode(ProtoError),
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
/// `reached_server` says whether any byte of the request was written: when
/// false, the server cannot have acted on it.
///
/// ```
/// use roundtrip_io::{Error, Phase};
/// use roundtrip_io::TimeoutKind;
/// let e = Error::Timeout { kind: TimeoutKind::Total, phase: Phase::ResponseHead, reached_server: true };
/// assert!(e.reached_server());
/// assert_eq!(e.to_string(), "response head timed out: the request's timeout passed (the request may have reached the server)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be sent as given.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No connection could be made.
    #[error("connecting to {addr} failed: {source}{}", Tried(.tried))]
    Connect {
        /// The host and port tried.
        addr: String,
        /// The last connect error.
        source: io::Error,
        /// Every address tried, with why it failed, in order.
        tried: Vec<(std::net::SocketAddr, String)>,
    },
    /// A timeout fired.
    #[error("{phase} timed out: {kind}{}", Reached(*.reached_server))]
    Timeout {
        /// Which limit ran out.
        kind: TimeoutKind,
        /// What was being waited for.
        phase: Phase,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// The server broke the protocol.
    #[error("invalid response ({phase}): {source}{}", Reached(*.reached_server))]
    Protocol {
        /// Where.
        phase: Phase,
        /// What the decoder found.
        source: ProtoError,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// The response exceeded a decoder limit (head size, field count, ...).
    #[error("response exceeds a limit: {source}")]
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
    #[error("connection closed by the server during the {phase}{}", Reached(*.reached_server))]
    ClosedEarly {
        /// Where.
        phase: Phase,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// A socket error.
    #[error("i/o error during the {phase}: {source}{}", Reached(*.reached_server))]
    Io {
        /// Where.
        phase: Phase,
        /// The error.
        source: io::Error,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// A streamed request body gave more or fewer bytes than the
    /// `Content-Length` it was sent with. The connection is closed.
    #[error("request body length differs from its content-length: declared {declared}, supplied {supplied}{}", Reached(*.reached_server))]
    BodyLength {
        /// The declared length.
        declared: u64,
        /// Bytes the body's source supplied (when too many: at least).
        supplied: u64,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// The TLS layer failed: the server's certificate, the handshake, or
    /// the records of an established connection. Never retried.
    #[error("tls failed during the {phase}: {source}{}", Reached(*.reached_server))]
    Tls {
        /// Where.
        phase: Phase,
        /// What went wrong.
        source: crate::tls::TlsError,
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// The proxy failed: its handshake, its answer, or a route it cannot
    /// take. The request did not reach the origin.
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
    #[error("request cancelled{}", Reached(*.reached_server))]
    Cancelled {
        /// Whether any byte of the request was written.
        reached_server: bool,
    },
    /// The response was not a switch to another protocol (101, or a 2xx
    /// to CONNECT), so there is no connection to take over.
    #[error("the response did not switch protocols: nothing to upgrade")]
    NotUpgraded,
    /// The request body's source failed.
    #[error("reading the request body failed: {0}")]
    RequestBody(#[source] io::Error),
    /// A redirect came after `max` were followed already
    /// ([`Config::max_redirects`](crate::Config::max_redirects)).
    #[error("stopped after {max} redirects (last {})", .chain.last().map_or(String::new(), ToString::to_string))]
    TooManyRedirects {
        /// The limit.
        max: usize,
        /// Every URL requested, the original first.
        chain: Vec<http::Uri>,
    },
    /// A redirect (301, 302, 303, 307, 308) without a usable `Location`:
    /// missing, not text, or not a URL reference.
    #[error("{status} redirect with {}", match .location { Some(l) => format!("an invalid location {l:?}"), None => "no location".to_string() })]
    InvalidLocation {
        /// The redirect's status.
        status: http::StatusCode,
        /// The `Location` value, lossily as text; `None` when absent.
        location: Option<String>,
    },
    /// The redirect policy ([`Config::redirect_policy`](crate::Config::redirect_policy))
    /// refused to follow a redirect to `next`.
    #[error("redirect to {next} refused: {source}")]
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
    #[error("the server answered {status}")]
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

struct Reached(bool);

impl fmt::Display for Reached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 {
            f.write_str(" (the request may have reached the server)")
        } else {
            f.write_str(" (the request was not sent)")
        }
    }
}

impl Error {
    /// Whether the request may have reached the server.
    pub fn reached_server(&self) -> bool {
        match self {
            Error::Timeout { reached_server, .. }
            | Error::Protocol { reached_server, .. }
            | Error::ClosedEarly { reached_server, .. }
            | Error::Io { reached_server, .. }
            | Error::BodyLength { reached_server, .. }
            | Error::Tls { reached_server, .. }
            | Error::Cancelled { reached_server } => *reached_server,
            Error::LimitExceeded { .. }
            | Error::BodyTooLarge { .. }
            | Error::RequestBody(_)
            | Error::TooManyRedirects { .. }
            | Error::InvalidLocation { .. }
            | Error::RedirectRefused { .. }
            | Error::Decode { .. }
            | Error::Status { .. }
            | Error::NotUpgraded => true,
            #[cfg(feature = "json")]
            Error::Json(_) => true,
            Error::InvalidRequest(_)
            | Error::Connect { .. }
            | Error::Proxy { .. }
            | Error::ProxyStatus { .. } => false,
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

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
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
    /// resent at most once; the caller keeps count.
    pub fn may_resend(&self, conn: &Connection, facts: RetryFacts) -> bool {
        matches!(self, Error::ClosedEarly { .. } | Error::Io { .. })
            && conn.retry_safety(facts).is_safe()
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::ClosedEarly { .. } => io::ErrorKind::UnexpectedEof,
            Error::Protocol { .. } | Error::LimitExceeded { .. } | Error::Decode { .. } => {
                io::ErrorKind::InvalidData
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
