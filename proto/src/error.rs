//! The one error type of `proto`.
//!
//! Variants fall in three groups, so a caller can tell whose fault it was:
//! - **the peer's**: the server sent bytes that are not a valid HTTP/1.x
//!   response, or exceeded a [`Limits`](crate::Limits) bound. Each carries the
//!   byte `offset` from the start of the response message (status line = 0),
//!   counted over everything received for it, framing included.
//! - **the caller's request**: a method, target, header name or value that
//!   cannot be sent safely (CR, LF or NUL would split the request).
//! - **API misuse**: a call in the wrong state, e.g. body data after the body
//!   was finished.

use core::fmt;

/// Where in a response something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Status line and header block.
    Head,
    /// The body (for chunked bodies: chunk-size lines and data).
    Body,
    /// The trailer section of a chunked body.
    Trailers,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Head => "head",
            Phase::Body => "body",
            Phase::Trailers => "trailers",
        })
    }
}

/// Everything that can go wrong in `proto`.
///
/// Errors are sticky: once a decoder or connection returned one, asking again
/// returns the same error.
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_proto::{Error, ResponseDecoder};
///
/// let mut dec = ResponseDecoder::default();
/// let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"[..]);
/// let err = loop {
///     match dec.poll_event(&mut buf) {
///         Ok(Some(_)) => continue,
///         Ok(None) => unreachable!("the head is complete"),
///         Err(e) => break e,
///     }
/// };
/// assert_eq!(err, Error::InvalidFieldName { offset: 20, byte: b' ' });
/// assert_eq!(err.to_string(), "invalid byte 0x20 in a header field name at byte 20");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the peer's fault: decoding a response ----
    /// The status line does not start with `HTTP/1.x` (x a digit).
    #[error("invalid http version at byte {offset}")]
    InvalidVersion {
        /// Offset of the first byte that does not fit.
        offset: usize,
    },
    /// The status code is not three digits from 100 to 999, or is not
    /// separated from the version by one space.
    #[error("invalid status code at byte {offset}")]
    InvalidStatus {
        /// Offset of the first byte that does not fit.
        offset: usize,
    },
    /// The reason phrase holds a control character.
    #[error("invalid byte {byte:#04x} in the reason phrase at byte {offset}")]
    InvalidReason {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A header or trailer field name holds a byte that is not a token
    /// character, has whitespace before the colon, or has no colon at all.
    #[error("invalid byte {byte:#04x} in a header field name at byte {offset}")]
    InvalidFieldName {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A header or trailer field value holds a control character other than
    /// horizontal tab.
    #[error("invalid byte {byte:#04x} in a header field value at byte {offset}")]
    InvalidFieldValue {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A CR not followed by LF (RFC 9112 section 2.2).
    #[error("bare carriage return at byte {offset}")]
    BareCarriageReturn {
        /// Offset of the CR.
        offset: usize,
    },
    /// A LF not preceded by CR: lines end with CRLF (RFC 9112 section 2.2
    /// allows accepting a bare LF; this decoder does so only with
    /// [`Limits::allow_bare_lf`](crate::Limits::allow_bare_lf), off by
    /// default, since parsers that disagree on line ends are how responses
    /// get smuggled).
    #[error("bare line feed at byte {offset}")]
    BareLineFeed {
        /// Offset of the LF.
        offset: usize,
    },
    /// A line starting with whitespace where no field value can continue
    /// (right after the status line, RFC 9112 section 2.2).
    #[error("line starting with whitespace after the status line at byte {offset}")]
    UnexpectedWhitespace {
        /// Offset of the whitespace.
        offset: usize,
    },
    /// The head is longer than [`Limits::max_head_bytes`](crate::Limits::max_head_bytes).
    #[error("response head larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More fields than [`Limits::max_fields`](crate::Limits::max_fields).
    #[error("more than {limit} header fields")]
    TooManyFields {
        /// The limit in force.
        limit: usize,
    },
    /// More 1xx responses than [`Limits::max_interim_responses`](crate::Limits::max_interim_responses).
    #[error("more than {limit} interim (1xx) responses")]
    TooManyInterimResponses {
        /// The limit in force.
        limit: usize,
    },
    /// A `101 Switching Protocols` to a request that asked for no protocol
    /// (it had no `Upgrade` field): a server must not switch then (RFC
    /// 9110 section 15.2.2), and the connection can carry nothing known.
    #[error("101 switching protocols to a request that asked for no upgrade")]
    UnrequestedSwitch,
    /// A switch (`101`, or a 2xx to CONNECT) before the request was all
    /// sent: the server would read what the caller writes in the new
    /// protocol as the rest of the request (RFC 9110 section 7.8: the
    /// client uses the new protocol only once the request is complete).
    #[error("the server switched protocols before the request was all sent")]
    SwitchedMidRequest,
    /// `Content-Length` is not a list of equal decimal numbers that fit a `u64`
    /// (RFC 9112 section 6.3, step 5).
    #[error("invalid content-length at byte {offset}")]
    InvalidContentLength {
        /// Offset of the offending field line.
        offset: usize,
    },
    /// `Transfer-Encoding` applies `chunked` more than once (RFC 9112 section 6.1),
    /// or has an empty coding.
    #[error("invalid transfer-encoding at byte {offset}")]
    InvalidTransferEncoding {
        /// Offset of the offending field line.
        offset: usize,
    },
    /// A chunk-size line does not start with a hex number, or has bytes that
    /// are neither an extension nor the line end.
    #[error("invalid byte {byte:#04x} in a chunk-size line at byte {offset}")]
    InvalidChunkSize {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A chunk size does not fit in 64 bits.
    #[error("chunk size overflows 64 bits at byte {offset}")]
    ChunkSizeOverflow {
        /// Offset of the digit that overflowed.
        offset: usize,
    },
    /// Chunk extensions longer than [`Limits::max_chunk_ext_bytes`](crate::Limits::max_chunk_ext_bytes).
    #[error("chunk extensions longer than {limit} bytes")]
    ChunkExtTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by a line end at byte {offset}")]
    InvalidChunkEnd {
        /// Offset where the CRLF was expected.
        offset: usize,
    },
    /// The trailer section is longer than [`Limits::max_trailer_bytes`](crate::Limits::max_trailer_bytes).
    #[error("trailer section larger than {limit} bytes")]
    TrailersTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The connection closed before the message was complete: a head without
    /// its blank line, a body shorter than its `Content-Length`, a chunked body
    /// without its last chunk.
    #[error("connection closed during the {phase} after {received} body bytes{}", expected_suffix(*.expected))]
    UnexpectedEof {
        /// What was being read.
        phase: Phase,
        /// Body bytes received (after transfer decoding); 0 in the head.
        received: u64,
        /// Body bytes announced by `Content-Length`, if any.
        expected: Option<u64>,
    },
    /// Bytes arrived while no request was outstanding, or after a response
    /// that ended the exchange.
    #[error("unsolicited byte {byte:#04x} received while no response was expected")]
    UnsolicitedBytes {
        /// The first such byte.
        byte: u8,
    },

    /// A deadline of the exchange passed (see [`Timer`](crate::conn::Timer)).
    #[error("{timer} timeout")]
    TimedOut {
        /// Which deadline.
        timer: crate::conn::Timer,
    },

    // ---- the caller's fault: a request that cannot be sent ----
    /// The method is not a token (RFC 9110 section 9.1).
    #[error("invalid request method")]
    InvalidMethod,
    /// The request target is empty or holds a space or control character.
    #[error("invalid request target")]
    InvalidTarget,
    /// A request header or trailer name is not a token (RFC 9110 section
    /// 5.6.2): empty, or holding a space, colon, CR, LF, NUL or the like.
    #[error("invalid request header name (field {index})")]
    InvalidHeaderName {
        /// Position of the field among those given.
        index: usize,
    },
    /// A request header or trailer value holds CR, LF, NUL, DEL or another
    /// control character, or starts or ends with a space or tab.
    #[error("invalid request header value (field {index})")]
    InvalidHeaderValue {
        /// Position of the field among those given.
        index: usize,
    },
    /// The `host` of a request head is not visible ASCII (0x21..=0x7E); it
    /// may be empty (RFC 9112 section 3.2) but never holds whitespace or a
    /// control character.
    #[error("invalid request host")]
    InvalidHost,
    /// A caller-supplied field is `Content-Length` or `Transfer-Encoding`
    /// (any case). The encoder writes body framing itself, so the two can
    /// never disagree (RFC 9112 section 6.3); in trailers they are never
    /// allowed (RFC 9110 section 6.5.1).
    #[error("field {index} is content-length or transfer-encoding, which the encoder sets")]
    FramingHeader {
        /// Position of the field among those given (headers or trailers).
        index: usize,
    },
    /// A caller-supplied `Host` field when a host was already written (by
    /// the request head or an earlier field), or an `Expect` field when the
    /// head asks for `100-continue`.
    #[error("field {index} repeats host or expect, which is already written")]
    DuplicateField {
        /// Position of the field among those given.
        index: usize,
    },
    /// A trailer field that must not be sent as a trailer: `Host` (request
    /// routing, RFC 9110 section 6.5.1).
    #[error("trailer field {index} is not allowed in a trailer section")]
    ForbiddenTrailer {
        /// Position of the field among the trailers given.
        index: usize,
    },
    /// More body bytes were supplied than the declared `Content-Length`, or
    /// fewer when the body was finished.
    #[error(
        "request body length differs from content-length: declared {declared}, supplied {supplied}"
    )]
    BodyLengthMismatch {
        /// The declared length.
        declared: u64,
        /// Bytes supplied so far.
        supplied: u64,
    },

    // ---- API misuse ----
    /// A call that the current state does not allow.
    #[error("api misuse: {0}")]
    Misuse(&'static str),
}

fn expected_suffix(expected: Option<u64>) -> ExpectedSuffix {
    ExpectedSuffix(expected)
}

struct ExpectedSuffix(Option<u64>);

impl fmt::Display for ExpectedSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, " of {n}"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// True when the error is the server's fault (the bytes it sent).
    pub fn is_peer_error(&self) -> bool {
        !matches!(
            self,
            Error::InvalidMethod
                | Error::InvalidTarget
                | Error::InvalidHeaderName { .. }
                | Error::InvalidHeaderValue { .. }
                | Error::InvalidHost
                | Error::FramingHeader { .. }
                | Error::DuplicateField { .. }
                | Error::ForbiddenTrailer { .. }
                | Error::BodyLengthMismatch { .. }
                | Error::Misuse(_)
        )
    }
}
