//! Message framing and connection reuse: RFC 9112 section 6.3 as one pure
//! function of the request method, the status line and the framing fields.

use core::time::Duration;

use crate::error::Error;
use crate::head::Version;

/// How the body of a response is delimited (RFC 9112 section 6.3).
///
/// ```
/// use roundtrip_proto::Framing;
/// assert!(Framing::Length(0).is_empty());
/// assert!(!Framing::Chunked.is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: a response to HEAD, a 1xx, 204 or 304.
    NoBody,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding` with `chunked` last.
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
    /// `101 Switching Protocols` or a 2xx to `CONNECT`: HTTP ends after the
    /// head and the bytes that follow belong to the caller.
    Switched,
}

impl Framing {
    /// True when no body bytes follow the head.
    pub fn is_empty(self) -> bool {
        matches!(
            self,
            Framing::NoBody | Framing::Length(0) | Framing::Switched
        )
    }
}

/// Whether a connection may carry another request.
///
/// ```
/// use roundtrip_proto::{CloseReason, Reuse};
/// assert!(Reuse::Yes.is_yes());
/// assert_eq!(Reuse::No(CloseReason::ServerClose).reason(), Some(CloseReason::ServerClose));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// It may, once the current response was read to its end.
    Yes,
    /// It must be closed.
    No(CloseReason),
}

impl Reuse {
    /// True for [`Reuse::Yes`].
    pub fn is_yes(self) -> bool {
        self == Reuse::Yes
    }
    /// Why not, if not.
    pub fn reason(self) -> Option<CloseReason> {
        match self {
            Reuse::Yes => None,
            Reuse::No(r) => Some(r),
        }
    }
}

/// Why a connection is not reused. Printable, so traces and pool counters can
/// say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server sent `Connection: close`.
    ServerClose,
    /// An HTTP/1.0 response without `Connection: keep-alive`.
    Http10,
    /// The body is delimited by the close of the connection.
    ReadToClose,
    /// `Transfer-Encoding` with `Content-Length`, or `Transfer-Encoding` in an
    /// HTTP/1.0 response: the framing is suspect (RFC 9112 section 6.1).
    AmbiguousFraming,
    /// The connection was handed over to another protocol (101, CONNECT).
    Switched,
    /// The request asked for `Connection: close`, or keep-alive is off; or
    /// the client closed its idle connections.
    ClientClose,
    /// The server answered before the request body was sent, which is then
    /// not sent: the connection state is unknown (RFC 9110 section 15.2).
    BodyNotSent,
    /// A protocol or I/O error happened on the connection.
    Error,
    /// The response body was not read to its end.
    Abandoned,
    /// The server sent bytes nobody asked for.
    UnsolicitedBytes,
    /// The server closed the connection.
    PeerClosed,
    /// A timeout fired during the exchange.
    Timeout,
    /// Idle longer than the pool's idle timeout.
    IdleTimeout,
    /// Idle close to the server's `Keep-Alive: timeout`.
    KeepAliveTimeout,
    /// Too many idle connections for the host.
    MaxIdlePerHost,
    /// Too many idle connections in all.
    MaxIdleTotal,
    /// Found closed by the server when taken from the pool.
    Stale,
}

impl CloseReason {
    /// Every reason, in declaration order (for counters).
    pub const ALL: [CloseReason; 17] = [
        CloseReason::ServerClose,
        CloseReason::Http10,
        CloseReason::ReadToClose,
        CloseReason::AmbiguousFraming,
        CloseReason::Switched,
        CloseReason::ClientClose,
        CloseReason::BodyNotSent,
        CloseReason::Error,
        CloseReason::Abandoned,
        CloseReason::UnsolicitedBytes,
        CloseReason::PeerClosed,
        CloseReason::Timeout,
        CloseReason::IdleTimeout,
        CloseReason::KeepAliveTimeout,
        CloseReason::MaxIdlePerHost,
        CloseReason::MaxIdleTotal,
        CloseReason::Stale,
    ];

    /// Short lowercase description.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ServerClose => "server sent connection: close",
            CloseReason::Http10 => "http/1.0 without keep-alive",
            CloseReason::ReadToClose => "body delimited by close",
            CloseReason::AmbiguousFraming => "ambiguous framing",
            CloseReason::Switched => "switched protocols",
            CloseReason::ClientClose => "client asked to close",
            CloseReason::BodyNotSent => "request body not sent",
            CloseReason::Error => "error",
            CloseReason::Abandoned => "body abandoned",
            CloseReason::UnsolicitedBytes => "unsolicited bytes",
            CloseReason::PeerClosed => "closed by server",
            CloseReason::Timeout => "timeout",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::KeepAliveTimeout => "server keep-alive timeout",
            CloseReason::MaxIdlePerHost => "too many idle connections for host",
            CloseReason::MaxIdleTotal => "too many idle connections",
            CloseReason::Stale => "closed by server while idle",
        }
    }
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request method means for its response's framing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RequestKind {
    /// Any method but HEAD and CONNECT.
    #[default]
    Other,
    /// HEAD: the response has no body whatever its fields say.
    Head,
    /// CONNECT: a 2xx ends HTTP on the connection.
    Connect,
}

impl RequestKind {
    /// Classifies a method (methods are case-sensitive, RFC 9110 section 9.1).
    ///
    /// ```
    /// use roundtrip_proto::RequestKind;
    /// assert_eq!(RequestKind::of(b"HEAD"), RequestKind::Head);
    /// assert_eq!(RequestKind::of(b"head"), RequestKind::Other);
    /// ```
    pub fn of(method: &[u8]) -> Self {
        match method {
            b"HEAD" => RequestKind::Head,
            b"CONNECT" => RequestKind::Connect,
            _ => RequestKind::Other,
        }
    }
}

/// The fields that decide framing and reuse, gathered from a head.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FramingFields {
    /// `Content-Length`, once all its values agreed; offset of its first line.
    pub content_length: Option<(u64, usize)>,
    pub transfer_encoding: Coding,
    /// Offset of the first `Transfer-Encoding` line.
    pub te_offset: usize,
    pub close: bool,
    pub keep_alive: bool,
    pub keep_alive_timeout: Option<Duration>,
}

/// What `Transfer-Encoding` says so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No `Transfer-Encoding` field.
    #[default]
    Absent,
    /// `chunked` is the last coding.
    Chunked,
    /// Codings are present and `chunked` is not last.
    Other,
    /// As `Other`, after a `chunked` that a later coding followed: one
    /// more `chunked` would apply it twice.
    OtherAfterChunked,
}

impl FramingFields {
    /// Takes one field into account; `offset` is where its line starts.
    /// Only names of 10 (`Connection`, `Keep-Alive`), 14 (`Content-Length`)
    /// and 17 (`Transfer-Encoding`) bytes matter.
    #[inline]
    pub fn add(&mut self, name: &[u8], value: &[u8], offset: usize) -> Result<(), Error> {
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            10 if is_named(name, b"connection") => self.add_connection(value),
            10 if is_named(name, b"keep-alive") => self.add_keep_alive(value),
            14 if is_named(name, b"content-length") => self.add_content_length(value, offset)?,
            17 if is_named(name, b"transfer-encoding") => {
                self.add_transfer_encoding(value, offset)?
            }
            _ => {}
        }
        Ok(())
    }

    /// RFC 9112 section 6.3 step 5: a list of identical decimal values is one
    /// value; anything else is unrecoverable.
    fn add_content_length(&mut self, value: &[u8], offset: usize) -> Result<(), Error> {
        // The common case: one plain number.
        if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
            let n = value
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            return match self.content_length {
                Some((seen, _)) if seen != n => Err(Error::InvalidContentLength { offset }),
                Some(_) => Ok(()),
                None => {
                    self.content_length = Some((n, offset));
                    Ok(())
                }
            };
        }
        let invalid = Error::InvalidContentLength { offset };
        for item in value.split(|&b| b == b',') {
            let item = trim(item);
            if item.is_empty() || item.len() > 20 {
                return Err(invalid);
            }
            let mut n: u64 = 0;
            for &d in item {
                if !d.is_ascii_digit() {
                    return Err(invalid);
                }
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or_else(|| invalid.clone())?;
            }
            match self.content_length {
                Some((seen, _)) if seen != n => return Err(invalid),
                Some(_) => {}
                None => self.content_length = Some((n, offset)),
            }
        }
        Ok(())
    }

    /// RFC 9112 section 6.1: codings apply in order; `chunked` must be last
    /// and must not be applied twice.
    fn add_transfer_encoding(&mut self, value: &[u8], offset: usize) -> Result<(), Error> {
        if trim(value)
            .iter()
            .all(|&b| b == b',' || b == b' ' || b == b'\t')
        {
            return Err(Error::InvalidTransferEncoding { offset }); // no coding at all
        }
        if self.transfer_encoding == Coding::Absent {
            self.te_offset = offset;
        }
        for item in value.split(|&b| b == b',') {
            let item = trim(item);
            if item.is_empty() {
                continue; // empty list elements are allowed (RFC 9110 section 5.6.1)
            }
            // Parameters (`;q=..`) do not apply to chunked; compare the coding name.
            let name = trim(item.split(|&b| b == b';').next().unwrap_or(item));
            if name.eq_ignore_ascii_case(b"chunked") {
                if matches!(
                    self.transfer_encoding,
                    Coding::Chunked | Coding::OtherAfterChunked
                ) {
                    return Err(Error::InvalidTransferEncoding { offset });
                }
                self.transfer_encoding = Coding::Chunked;
            } else {
                self.transfer_encoding = match self.transfer_encoding {
                    // A coding applied after chunked is not allowed for a
                    // message body; the body then runs to the close.
                    Coding::Chunked | Coding::OtherAfterChunked => Coding::OtherAfterChunked,
                    Coding::Other | Coding::Absent => Coding::Other,
                };
            }
        }
        Ok(())
    }

    fn add_connection(&mut self, value: &[u8]) {
        // The common cases: a single token. (`is_named` is exact here too: a
        // value holds no CR, the one byte it would take for `-`.)
        if is_named(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if is_named(value, b"close") {
            self.close = true;
            return;
        }
        // Split at whitespace too, as Go's `hasToken`: a folded
        // `keep-alive\r\n close` reads as `keep-alive close`, which is
        // not a list, and must not hide its `close`.
        for token in value.split(|&b| matches!(b, b',' | b' ' | b'\t')) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// `Keep-Alive: timeout=N, max=M` (RFC 2068 section 19.7.1.1): only the
    /// timeout is used, as a hint for the pool. Malformed hints are ignored.
    fn add_keep_alive(&mut self, value: &[u8]) {
        for param in value.split(|&b| b == b',') {
            let param = trim(param);
            let Some(eq) = param.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, val) = (trim(&param[..eq]), trim(&param[eq + 1..]));
            let digits = !val.is_empty() && val.len() <= 9 && val.iter().all(u8::is_ascii_digit);
            if key.eq_ignore_ascii_case(b"timeout") && digits {
                let secs = val.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                self.keep_alive_timeout = Some(Duration::from_secs(secs));
            }
        }
    }
}

/// `name` equals `lower`, a lowercase name of letters and `-`, ignoring
/// case. Setting bit 0x20 lowercases a letter and changes no other token
/// character into a letter or `-`, so the comparison is exact for tokens.
#[inline(always)]
fn is_named(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(true, |eq, (&a, &b)| eq & (a | 0x20 == b))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The framing and reuse verdict for one response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub framing: Framing,
    pub reuse: Reuse,
}

/// RFC 9112 section 6.3, steps in order, for a response to `request`.
pub(crate) fn decide(
    request: RequestKind,
    version: Version,
    code: u16,
    fields: &FramingFields,
) -> Result<Decision, Error> {
    // Reuse as the version and Connection say (RFC 9112 section 9.3).
    let persistent = if fields.close {
        Reuse::No(CloseReason::ServerClose)
    } else if version == Version::Http10 && !fields.keep_alive {
        Reuse::No(CloseReason::Http10)
    } else {
        Reuse::Yes
    };
    let decision = |framing, reuse| Ok(Decision { framing, reuse });
    // 1. HEAD, 1xx, 204 and 304 have no body, whatever the fields say.
    //    101 ends HTTP on the connection.
    if code == 101 {
        return decision(Framing::Switched, Reuse::No(CloseReason::Switched));
    }
    // 2. (checked first, as it covers 204 too) Any 2xx to CONNECT: the
    //    connection becomes a tunnel right after the head (RFC 9110 9.3.6).
    if request == RequestKind::Connect && (200..300).contains(&code) {
        return decision(Framing::Switched, Reuse::No(CloseReason::Switched));
    }
    if request == RequestKind::Head || (100..200).contains(&code) || code == 204 || code == 304 {
        // No body to frame, but a Transfer-Encoding in HTTP/1.0 (section
        // 6.1: "close the connection after processing the message") or
        // beside a Content-Length (section 6.3, 3) says the sender's framing
        // is faulty: what follows on the connection cannot be trusted.
        let suspect = fields.transfer_encoding != Coding::Absent
            && (version == Version::Http10 || fields.content_length.is_some());
        let reuse = match suspect {
            true => Reuse::No(CloseReason::AmbiguousFraming),
            false => persistent,
        };
        return decision(Framing::NoBody, reuse);
    }
    // 3. Transfer-Encoding overrides Content-Length; with both the framing is
    //    suspect and the connection closes after this response (RFC 9112
    //    section 6.3). In HTTP/1.0, which has no transfer codings, a server
    //    sending one is faulty (section 6.1): we refuse the response, as hyper
    //    does, rather than guess between the codings and Content-Length.
    if fields.transfer_encoding != Coding::Absent {
        if version == Version::Http10 {
            return Err(Error::InvalidTransferEncoding {
                offset: fields.te_offset,
            });
        }
        let reuse = if fields.content_length.is_some() {
            Reuse::No(CloseReason::AmbiguousFraming)
        } else {
            persistent
        };
        return match fields.transfer_encoding {
            Coding::Chunked => decision(Framing::Chunked, reuse),
            // 4. Not chunked last: the body runs to the close.
            _ => decision(Framing::UntilClose, Reuse::No(CloseReason::ReadToClose)),
        };
    }
    // 5. and 6. A valid Content-Length (invalid ones were refused while the
    //    fields were gathered).
    if let Some((n, _)) = fields.content_length {
        return decision(Framing::Length(n), persistent);
    }
    // 8. Otherwise, a response body runs to the close.
    decision(Framing::UntilClose, Reuse::No(CloseReason::ReadToClose))
}
