//! The error type every backend returns.

use std::fmt;
use std::io;

use roundtrip_proto::Error as ProtoError;

/// What the client was doing when something failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for a pooled connection or a permit to dial (`max_conns_per_host`).
    PoolWait,
    /// Connecting.
    Connect,
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
            Phase::Write => "request write",
            Phase::ResponseHead => "response head",
            Phase::Body => "response body",
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
    /// Only `http` is supported.
    #[error("unsupported uri scheme {0:?}")]
    UnsupportedScheme(String),
    /// A `Content-Length` or `Transfer-Encoding` header that contradicts the body.
    #[error("{0}")]
    Framing(&'static str),
    /// The encoder refused a method, target, name or value.
    #[error(transparent)]
    Encode(ProtoError),
    /// The request could not be built (`http` crate builder error).
    #[error(transparent)]
    Http(#[from] http::Error),
}

/// Everything that can go wrong with a request, on any backend.
///
/// `reached_server` says whether any byte of the request was written: when
/// false, the server cannot have acted on it.
///
/// ```
/// use roundtrip_io::{Error, Phase};
/// let e = Error::Timeout { phase: Phase::ResponseHead, reached_server: true };
/// assert!(e.reached_server());
/// assert_eq!(e.to_string(), "response head timed out (the request may have reached the server)");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be sent as given.
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No connection could be made.
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The host and port tried.
        addr: String,
        /// The last connect error.
        source: io::Error,
    },
    /// A timeout fired.
    #[error("{phase} timed out{}", Reached(*.reached_server))]
    Timeout {
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
    /// The request body's source failed.
    #[error("reading the request body failed: {0}")]
    RequestBody(#[source] io::Error),
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
            | Error::Io { reached_server, .. } => *reached_server,
            Error::LimitExceeded { .. } | Error::BodyTooLarge { .. } | Error::RequestBody(_) => {
                true
            }
            Error::InvalidRequest(_) | Error::Connect { .. } => false,
        }
    }

    /// Classifies a core error met in `phase`.
    pub fn from_proto(source: ProtoError, phase: Phase, reached_server: bool) -> Error {
        match source {
            ProtoError::UnexpectedEof { .. } => Error::ClosedEarly {
                phase,
                reached_server,
            },
            ProtoError::TimedOut { .. } => Error::Timeout {
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
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::ClosedEarly { .. } => io::ErrorKind::UnexpectedEof,
            Error::Protocol { .. } | Error::LimitExceeded { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
