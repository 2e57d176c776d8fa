//! The request encoder: writes an HTTP/1.1 request head and frames the body.
//!
//! Sans-IO like the rest of `proto`: [`encode_head`] appends the head to a
//! `Vec<u8>` the caller owns, and [`BodyEncoder`] hands out the few framing
//! bytes around each piece of body data ([`DataFrame`]) so the data itself
//! passes through untouched, e.g. as a `Bytes` in one vectored write with the
//! head. Nothing here allocates except by growing the caller's buffer.
//!
//! # Why the encoder validates
//!
//! A request is the one thing the client puts on the wire, and most of its
//! bytes come from the caller (often from user input). The encoder refuses
//! anything that could change how a server splits the stream into messages:
//!
//! - The request line is `method SP request-target SP HTTP-version CRLF`
//!   (RFC 9112 section 3). The method must be a token (RFC 9110 sections 9.1
//!   and 5.6.2); the target must be non-empty visible ASCII, so no space, CR
//!   or LF can end it early.
//! - Field names must be tokens and values field-content (RFC 9110 section
//!   5.5): no CR, LF, NUL, other controls or DEL, so no field can smuggle a
//!   line end (request splitting). Leading or trailing space or tab in a value
//!   is **refused, not trimmed**: the field-value grammar excludes it, and
//!   silently sending something other than what the caller asked for would
//!   hide a bug. An empty value is allowed.
//! - The encoder owns message framing (RFC 9112 section 6): it writes
//!   `Content-Length` or `Transfer-Encoding: chunked` from [`BodyFraming`] and
//!   refuses either name from the caller, so the two can never disagree
//!   (RFC 9112 section 6.3, the root of request smuggling). Likewise `Host`
//!   (RFC 9112 section 3.2: exactly one) and `Expect` when the head asks for
//!   `100-continue` (RFC 9110 section 10.1.1) cannot be doubled.
//!
//! Every error leaves the output buffer exactly as it was and the
//! [`BodyEncoder`] in the state it had, so nothing half-written can be sent.
//!
//! # What is written
//!
//! The head is, in this order: the request line; `Host` (if
//! [`RequestHead::host`] is set); the fields of [`RequestHead::preset`] (a
//! [`FieldBlock`] encoded beforehand), then the caller's fields, in order,
//! names in the case given, each as `name: value CRLF`; the framing field;
//! `Expect: 100-continue`; `Connection: close`; the empty line. A preset
//! block counts as if its fields came first among the caller's: for the
//! rules, for error indexes, and for what they ask of a
//! [`Connection`](crate::conn::Connection). The encoder neither
//! adds nor requires `Host` when [`RequestHead::host`] is `None`: HTTP/1.1
//! needs one (RFC 9112 section 3.2), so pass it as a field then.
//!
//! A chunked body (RFC 9112 section 7.1) is a series of `hex-size CRLF data
//! CRLF` chunks, then the last chunk `0 CRLF`, the trailer section (RFC 9112
//! section 7.1.2) and a final CRLF. Sizes are lowercase hex without leading
//! zeros; no chunk extensions are sent.
//!
//! ```
//! use roundtrip_proto::encode::{encode_head, BodyEncoder, BodyFraming, RequestHead};
//!
//! let head = RequestHead {
//!     method: b"POST",
//!     target: b"/upload",
//!     host: Some(b"example.com"),
//!     body: BodyFraming::Chunked,
//!     preset: None,
//!     expect_continue: false,
//!     close: false,
//! };
//! let mut wire = Vec::new();
//! encode_head(&head, [(&b"Content-Type"[..], &b"text/plain"[..])], &mut wire)?;
//!
//! let mut body = BodyEncoder::new(head.body);
//! for piece in [&b"hello "[..], b"world"] {
//!     let frame = body.frame_data(piece.len())?;
//!     wire.extend_from_slice(frame.prefix());
//!     wire.extend_from_slice(piece); // or a vectored write of a `Bytes`
//!     wire.extend_from_slice(frame.suffix());
//! }
//! body.finish([], &mut wire)?;
//!
//! assert_eq!(
//!     wire,
//!     b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n\
//!       Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
//! );
//! # Ok::<(), roundtrip_proto::Error>(())
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::chars::{is_field_value_byte, is_token};
use crate::error::Error;

/// How the request body is framed on the wire (RFC 9112 section 6).
///
/// ```
/// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
///
/// // A known length is sent as `Content-Length`; the data goes out as is.
/// let mut body = BodyEncoder::new(BodyFraming::Length(3));
/// assert_eq!(body.frame_data(3)?.prefix(), b"");
/// # Ok::<(), roundtrip_proto::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body and no framing field (e.g. a plain GET).
    None,
    /// Exactly this many bytes, announced with `Content-Length`.
    Length(u64),
    /// The chunked transfer coding, announced with
    /// `Transfer-Encoding: chunked` (RFC 9112 section 7.1).
    Chunked,
}

/// The request line and the fields the encoder writes itself.
///
/// ```
/// use roundtrip_proto::encode::{encode_head, BodyFraming, RequestHead};
///
/// let head = RequestHead {
///     method: b"DELETE",
///     target: b"/items/7",
///     host: Some(b"api.example:8080"),
///     body: BodyFraming::None,
///     preset: None,
///     expect_continue: false,
///     close: true,
/// };
/// let mut out = Vec::new();
/// encode_head(&head, [], &mut out)?;
/// assert_eq!(
///     out,
///     b"DELETE /items/7 HTTP/1.1\r\nHost: api.example:8080\r\nConnection: close\r\n\r\n"
/// );
/// # Ok::<(), roundtrip_proto::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The method; must be a token (RFC 9110 section 9.1), else
    /// [`Error::InvalidMethod`].
    pub method: &'a [u8],
    /// The request target in origin, absolute, authority or asterisk form
    /// (RFC 9112 section 3.2); must be non-empty visible ASCII (0x21..=0x7E),
    /// else [`Error::InvalidTarget`]. Percent-encode anything else first.
    pub target: &'a [u8],
    /// When set, a `Host` field written first; must be visible ASCII
    /// (0x21..=0x7E) and may be empty (RFC 9112 section 3.2), else
    /// [`Error::InvalidHost`]. A caller `Host` field is then refused.
    pub host: Option<&'a [u8]>,
    /// Body framing: `Content-Length: n`, `Transfer-Encoding: chunked` or
    /// nothing.
    pub body: BodyFraming,
    /// Fields checked and encoded beforehand (a [`FieldBlock`], such as a
    /// client's default headers), written whole after `Host` and before the
    /// fields passed to [`encode_head`]; they count first in error indexes.
    pub preset: Option<&'a FieldBlock>,
    /// Writes `Expect: 100-continue` (RFC 9110 section 10.1.1); a caller
    /// or preset `Expect` field is then refused.
    pub expect_continue: bool,
    /// Writes `Connection: close` (RFC 9112 section 9.6), unless the caller's
    /// or the preset's fields hold a `Connection` field: that one is sent
    /// instead and should then list `close` itself.
    pub close: bool,
}

/// Appends an HTTP/1.1 request head to `out`.
///
/// `fields` are `(name, value)` pairs, written in order and as given (name
/// case kept), after `Host` and before the fields the encoder adds; see the
/// [module docs](self) for the exact layout and the rules.
///
/// # Errors
///
/// [`Error::InvalidMethod`], [`Error::InvalidTarget`], [`Error::InvalidHost`];
/// for field number `index` (counting from 0 among `fields`):
/// [`Error::InvalidHeaderName`], [`Error::InvalidHeaderValue`] (also for a
/// `Host` field value that is not visible ASCII), [`Error::FramingHeader`]
/// for `Content-Length` / `Transfer-Encoding`, [`Error::DuplicateField`] for a
/// second `Host`, or an `Expect` when [`RequestHead::expect_continue`] is set.
/// On error `out` is left exactly as it was.
///
/// ```
/// use roundtrip_proto::Error;
/// use roundtrip_proto::encode::{encode_head, BodyFraming, RequestHead};
///
/// let head = RequestHead {
///     method: b"GET",
///     target: b"/",
///     host: Some(b"example.com"),
///     body: BodyFraming::None,
///     preset: None,
///     expect_continue: false,
///     close: false,
/// };
/// let mut out = b"earlier bytes".to_vec();
/// let evil = [(&b"X-Note"[..], &b"a\r\nContent-Length: 0"[..])];
/// assert_eq!(encode_head(&head, evil, &mut out), Err(Error::InvalidHeaderValue { index: 0 }));
/// assert_eq!(out, b"earlier bytes");
///
/// encode_head(&head, [(&b"Accept"[..], &b"*/*"[..])], &mut out)?;
/// assert!(out.ends_with(b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"));
/// # Ok::<(), Error>(())
/// ```
pub fn encode_head<'a, I>(head: &RequestHead<'_>, fields: I, out: &mut Vec<u8>) -> Result<(), Error>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let start = out.len();
    let result = write_head(head, fields.into_iter(), out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Writes the whole head; on error the caller truncates `out`.
fn write_head<'a>(
    head: &RequestHead<'_>,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    // RFC 9112 section 3: request-line = method SP request-target SP HTTP-version.
    if !is_token(head.method) {
        return Err(Error::InvalidMethod);
    }
    if head.target.is_empty() || !is_visible_ascii(head.target) {
        return Err(Error::InvalidTarget);
    }
    out.extend_from_slice(head.method);
    out.push(b' ');
    out.extend_from_slice(head.target);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // RFC 9112 section 3.2: Host goes first, so a server sees it early.
    if let Some(host) = head.host {
        if !is_visible_ascii(host) {
            return Err(Error::InvalidHost);
        }
        write_field(out, b"Host", host);
    }
    let mut seen = Seen {
        host: head.host.is_some(),
        connection: false,
    };
    let mut index = 0;
    if let Some(block) = head.preset {
        // The first field that repeats what the head writes, as a check of
        // every field in turn would find it.
        let doubled = |at: Option<usize>, written: bool| at.filter(|_| written);
        let host = doubled(block.host_at, seen.host);
        let expect = doubled(block.expect_at, head.expect_continue);
        if let Some(index) = host.into_iter().chain(expect).min() {
            return Err(Error::DuplicateField { index });
        }
        out.extend_from_slice(&block.encoded);
        seen.host |= block.host_at.is_some();
        seen.connection |= block.connection;
        index = block.count;
    }
    write_fields(&mut seen, head.expect_continue, index, fields, out)?;

    // RFC 9112 section 6: the encoder alone decides the framing.
    match head.body {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => write_field(out, b"Transfer-Encoding", b"chunked"),
    }
    if head.expect_continue {
        write_field(out, b"Expect", b"100-continue");
    }
    if head.close && !seen.connection {
        write_field(out, b"Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// What the fields written so far hold, for the rules that span them all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    /// A `Host` line is out (from the head or a field).
    host: bool,
    /// A `Connection` field is out.
    connection: bool,
}

/// Validates and writes header fields, numbering them from `index` in
/// errors; `expect_refused` when the head writes `Expect` itself.
fn write_fields<'a>(
    seen: &mut Seen,
    expect_refused: bool,
    index: usize,
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    for (index, (name, value)) in (index..).zip(fields) {
        check_field(index, name, value)?;
        match FieldKind::of(name) {
            FieldKind::Framing => return Err(Error::FramingHeader { index }),
            // RFC 9112 section 3.2: more than one Host line earns a 400.
            FieldKind::Host if seen.host => return Err(Error::DuplicateField { index }),
            FieldKind::Host if !is_visible_ascii(value) => {
                return Err(Error::InvalidHeaderValue { index });
            }
            FieldKind::Host => seen.host = true,
            FieldKind::Expect if expect_refused => {
                return Err(Error::DuplicateField { index });
            }
            FieldKind::Connection => seen.connection = true,
            FieldKind::Expect | FieldKind::Other => {}
        }
        write_field(out, name, value);
    }
    Ok(())
}

/// Header fields checked and encoded once, to be sent with many requests
/// (a client's default headers): [`RequestHead::preset`] copies them into
/// each head whole, without checking or encoding them again. The rules are
/// those of [`encode_head`]'s fields; the ones that span a whole head (one
/// `Host`, no `Expect` beside [`RequestHead::expect_continue`]) are checked
/// when a head uses the block.
///
/// ```
/// use roundtrip_proto::Error;
/// use roundtrip_proto::encode::{encode_head, BodyFraming, FieldBlock, RequestHead};
///
/// let defaults = FieldBlock::new([(&b"User-Agent"[..], &b"demo/1.0"[..])])?;
/// let head = RequestHead {
///     method: b"GET",
///     target: b"/",
///     host: Some(b"example.com"),
///     body: BodyFraming::None,
///     preset: Some(&defaults),
///     expect_continue: false,
///     close: false,
/// };
/// let mut out = Vec::new();
/// encode_head(&head, [(&b"Accept"[..], &b"*/*"[..])], &mut out)?;
/// assert_eq!(
///     out,
///     b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: demo/1.0\r\nAccept: */*\r\n\r\n"
/// );
/// let framing = FieldBlock::new([(&b"Content-Length"[..], &b"0"[..])]);
/// assert_eq!(framing.unwrap_err(), Error::FramingHeader { index: 0 });
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldBlock {
    /// The fields as written: `name: value CRLF` each.
    encoded: Vec<u8>,
    /// How many fields.
    count: usize,
    /// The index of its `Host` field.
    host_at: Option<usize>,
    /// The index of its `Expect` field.
    expect_at: Option<usize>,
    /// It holds a `Connection` field.
    connection: bool,
    /// What its fields ask of the connection.
    pub(crate) asked: CallerFields,
}

impl FieldBlock {
    /// Checks and encodes `fields`, `(name, value)` pairs written in order
    /// and as given.
    ///
    /// # Errors
    ///
    /// Those of [`encode_head`] for its fields, `index` counting among
    /// these: [`Error::InvalidHeaderName`], [`Error::InvalidHeaderValue`],
    /// [`Error::FramingHeader`], [`Error::DuplicateField`] for a second
    /// `Host`.
    pub fn new<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Result<Self, Error> {
        let mut block = FieldBlock::default();
        let fields: Vec<_> = fields.into_iter().collect();
        let mut seen = Seen::default();
        write_fields(
            &mut seen,
            false,
            0,
            fields.iter().copied(),
            &mut block.encoded,
        )?;
        block.count = fields.len();
        let at = |kind| {
            fields
                .iter()
                .position(|(name, _)| FieldKind::of(name) == kind)
        };
        block.host_at = at(FieldKind::Host);
        block.expect_at = at(FieldKind::Expect);
        block.connection = seen.connection;
        block.asked = CallerFields::scan(fields.iter().copied());
        Ok(block)
    }

    /// The encoded fields, as a head holds them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// How many fields the block holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True for a block of no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What a request's fields ask of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallerFields {
    /// `Connection` lists `close` (RFC 9112 section 9.6).
    pub(crate) close: bool,
    /// `Expect: 100-continue` (RFC 9110 section 10.1.1).
    pub(crate) expect_continue: bool,
}

impl CallerFields {
    /// What `fields` ask, with what the head's preset block asks.
    pub(crate) fn of<'a>(
        head: &RequestHead<'_>,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Self {
        let mut asked = Self::scan(fields);
        if let Some(block) = head.preset {
            asked.close |= block.asked.close;
            asked.expect_continue |= block.asked.expect_continue;
        }
        asked
    }

    fn scan<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut asked = CallerFields::default();
        for (name, value) in fields {
            if name.eq_ignore_ascii_case(b"connection") {
                asked.close |= value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            } else if name.eq_ignore_ascii_case(b"expect") {
                asked.expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
        }
        asked
    }
}

/// Validates and writes trailer fields (RFC 9112 section 7.1.2).
fn write_trailers<'a>(
    trailers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    for (index, (name, value)) in trailers.enumerate() {
        check_field(index, name, value)?;
        // RFC 9110 section 6.5.1: no framing or routing fields in trailers.
        match FieldKind::of(name) {
            FieldKind::Framing => return Err(Error::FramingHeader { index }),
            FieldKind::Host => return Err(Error::ForbiddenTrailer { index }),
            FieldKind::Expect | FieldKind::Connection | FieldKind::Other => {}
        }
        write_field(out, name, value);
    }
    Ok(())
}

/// Field names the encoder treats specially, matched case-insensitively
/// (RFC 9110 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldKind {
    /// `Content-Length` or `Transfer-Encoding`.
    Framing,
    Host,
    Expect,
    Connection,
    Other,
}

impl FieldKind {
    fn of(name: &[u8]) -> Self {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        if is(b"content-length") || is(b"transfer-encoding") {
            FieldKind::Framing
        } else if is(b"host") {
            FieldKind::Host
        } else if is(b"expect") {
            FieldKind::Expect
        } else if is(b"connection") {
            FieldKind::Connection
        } else {
            FieldKind::Other
        }
    }
}

/// The syntax rules shared by header and trailer fields (RFC 9110 sections
/// 5.1 and 5.5).
fn check_field(index: usize, name: &[u8], value: &[u8]) -> Result<(), Error> {
    if !is_token(name) {
        return Err(Error::InvalidHeaderName { index });
    }
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    // field-value excludes leading and trailing whitespace: refuse, don't trim.
    if !value.iter().all(|&b| is_field_value_byte(b))
        || value.first().is_some_and(is_ws)
        || value.last().is_some_and(is_ws)
    {
        return Err(Error::InvalidHeaderValue { index });
    }
    Ok(())
}

/// True when every byte is visible ASCII (VCHAR, 0x21..=0x7E); true for `b""`.
fn is_visible_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Writes `name: value CRLF` (RFC 9112 section 5: one SP as the OWS).
fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without `format!`.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 decimal digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Where a [`BodyEncoder`] is in its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    /// Data may still be framed.
    Open,
    /// [`BodyEncoder::finish`] succeeded.
    Finished,
}

/// Frames request body data; one per request.
///
/// Ask [`frame_data`](Self::frame_data) for the framing of each piece of data,
/// then [`finish`](Self::finish) to end the body. Errors leave the encoder
/// unchanged, so a refused call can be corrected and retried.
///
/// ```
/// use roundtrip_proto::Error;
/// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
///
/// let mut body = BodyEncoder::new(BodyFraming::Length(5));
/// body.frame_data(2)?;
/// assert_eq!(
///     body.frame_data(4).unwrap_err(),
///     Error::BodyLengthMismatch { declared: 5, supplied: 6 }
/// );
/// body.frame_data(3)?;
/// let mut out = Vec::new();
/// body.finish([], &mut out)?;
/// assert!(out.is_empty() && body.is_finished());
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyEncoder {
    framing: BodyFraming,
    /// Data bytes framed so far (framing bytes excluded).
    framed: u64,
    state: BodyState,
}

impl BodyEncoder {
    /// A body encoder for `framing`; use the same value as
    /// [`RequestHead::body`].
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let body = BodyEncoder::new(BodyFraming::Chunked);
    /// assert_eq!(body.bytes_framed(), 0);
    /// assert!(!body.is_finished());
    /// ```
    #[must_use]
    pub fn new(framing: BodyFraming) -> Self {
        BodyEncoder {
            framing,
            framed: 0,
            state: BodyState::Open,
        }
    }

    /// Framing for the next `len` bytes of body data.
    ///
    /// The caller writes [`prefix`](DataFrame::prefix), the data itself
    /// (unchanged, e.g. a `Bytes` passed through for a vectored write), then
    /// [`suffix`](DataFrame::suffix). Chunked: `"{len:x}\r\n"` and `"\r\n"`;
    /// `len == 0` gives an empty frame, never the last chunk (that is
    /// [`finish`](Self::finish)'s job). Other framings: both empty.
    ///
    /// # Errors
    ///
    /// - [`Error::BodyLengthMismatch`] with `Length` framing if this would
    ///   exceed the declared length; `supplied` counts this `len` too.
    /// - [`Error::Misuse`] for data (`len > 0`) with [`BodyFraming::None`],
    ///   or for any call after [`finish`](Self::finish).
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Chunked);
    /// let frame = body.frame_data(300)?;
    /// assert_eq!((frame.prefix(), frame.suffix()), (&b"12c\r\n"[..], &b"\r\n"[..]));
    /// let empty = body.frame_data(0)?;
    /// assert_eq!((empty.prefix(), empty.suffix()), (&b""[..], &b""[..]));
    /// assert_eq!(body.bytes_framed(), 300);
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn frame_data(&mut self, len: usize) -> Result<DataFrame, Error> {
        if self.state == BodyState::Finished {
            return Err(Error::Misuse("body data after the body was finished"));
        }
        // usize is at most 64 bits wide on every Rust target: lossless.
        let len64 = len as u64;
        let framed = self
            .framed
            .checked_add(len64)
            .ok_or(Error::Misuse("request body longer than u64::MAX bytes"))?;
        let frame = match self.framing {
            BodyFraming::None if len > 0 => {
                return Err(Error::Misuse("body data for a request without a body"));
            }
            BodyFraming::Length(declared) if framed > declared => {
                return Err(Error::BodyLengthMismatch {
                    declared,
                    supplied: framed,
                });
            }
            BodyFraming::None | BodyFraming::Length(_) => DataFrame::BARE,
            BodyFraming::Chunked => DataFrame::chunk(len64),
        };
        self.framed = framed;
        Ok(frame)
    }

    /// Ends the body, appending its end bytes to `out`.
    ///
    /// Chunked: the last chunk `0\r\n`, the `trailers` (validated like header
    /// fields) and the final `\r\n` (RFC 9112 section 7.1). Other framings:
    /// nothing, and `trailers` must be empty.
    ///
    /// # Errors
    ///
    /// - [`Error::BodyLengthMismatch`] with `Length` framing if fewer bytes
    ///   were framed than declared.
    /// - For trailer number `index` (from 0): [`Error::InvalidHeaderName`],
    ///   [`Error::InvalidHeaderValue`], [`Error::FramingHeader`]
    ///   (`Content-Length`, `Transfer-Encoding`), [`Error::ForbiddenTrailer`]
    ///   (`Host`).
    /// - [`Error::Misuse`] for trailers without chunked framing, or a second
    ///   call after a successful one.
    ///
    /// On error `out` and the encoder are left as they were.
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Chunked);
    /// let mut out = Vec::new();
    /// body.finish([(&b"Digest"[..], &b"sha-256=:x:"[..])], &mut out)?;
    /// assert_eq!(out, b"0\r\nDigest: sha-256=:x:\r\n\r\n");
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    pub fn finish<'a, I>(&mut self, trailers: I, out: &mut Vec<u8>) -> Result<(), Error>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        if self.state == BodyState::Finished {
            return Err(Error::Misuse("body finished twice"));
        }
        let mut trailers = trailers.into_iter();
        match self.framing {
            BodyFraming::Chunked => {
                let start = out.len();
                out.extend_from_slice(b"0\r\n");
                if let Err(e) = write_trailers(trailers, out) {
                    out.truncate(start);
                    return Err(e);
                }
                out.extend_from_slice(b"\r\n");
            }
            BodyFraming::Length(declared) if self.framed < declared => {
                return Err(Error::BodyLengthMismatch {
                    declared,
                    supplied: self.framed,
                });
            }
            BodyFraming::None | BodyFraming::Length(_) => {
                if trailers.next().is_some() {
                    return Err(Error::Misuse("trailers need chunked framing"));
                }
            }
        }
        self.state = BodyState::Finished;
        Ok(())
    }

    /// True once [`finish`](Self::finish) has succeeded.
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::None);
    /// body.finish([], &mut Vec::new())?;
    /// assert!(body.is_finished());
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state == BodyState::Finished
    }

    /// Body data bytes framed so far (framing bytes not counted).
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Chunked);
    /// body.frame_data(10)?;
    /// body.frame_data(6)?;
    /// assert_eq!(body.bytes_framed(), 16);
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[must_use]
    pub fn bytes_framed(&self) -> u64 {
        self.framed
    }
}

/// Room for a chunk-size line: 16 hex digits (`u64::MAX`) plus CRLF.
const PREFIX_CAP: usize = 16 + 2;

/// Prefix and suffix around one piece of body data, from
/// [`BodyEncoder::frame_data`]; no allocation (the chunk-size line lives in an
/// inline array).
///
/// ```
/// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
///
/// let mut body = BodyEncoder::new(BodyFraming::Chunked);
/// let data = b"0123456789abcdef0"; // 17 bytes
/// let frame = body.frame_data(data.len())?;
/// let wire = [frame.prefix(), &data[..], frame.suffix()].concat();
/// assert_eq!(wire, b"11\r\n0123456789abcdef0\r\n");
/// # Ok::<(), roundtrip_proto::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct DataFrame {
    /// The prefix is `buf[start..]`, right-aligned; `start <= PREFIX_CAP`.
    buf: [u8; PREFIX_CAP],
    start: usize,
    suffix: &'static [u8],
}

impl DataFrame {
    /// No framing bytes around the data.
    const BARE: DataFrame = DataFrame {
        buf: [0; PREFIX_CAP],
        start: PREFIX_CAP,
        suffix: b"",
    };

    /// The frame of one chunk of `len` bytes (RFC 9112 section 7.1):
    /// `chunk-size CRLF` before, `CRLF` after; empty for `len == 0`, since a
    /// zero size would end the body.
    fn chunk(len: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        if len == 0 {
            return Self::BARE;
        }
        let mut buf = [0u8; PREFIX_CAP];
        buf[PREFIX_CAP - 2..].copy_from_slice(b"\r\n");
        let mut start = PREFIX_CAP - 2;
        let mut n = len;
        // At most 16 iterations for a u64, so `start` stays >= 0.
        while n > 0 {
            start -= 1;
            buf[start] = HEX[(n & 0xf) as usize];
            n >>= 4;
        }
        DataFrame {
            buf,
            start,
            suffix: b"\r\n",
        }
    }

    /// Bytes to write before the data (the chunk-size line, or nothing).
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Chunked);
    /// assert_eq!(body.frame_data(4096)?.prefix(), b"1000\r\n");
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &[u8] {
        // Invariant: start <= PREFIX_CAP (set only by BARE and chunk()).
        &self.buf[self.start..]
    }

    /// Bytes to write after the data (`\r\n` ending a chunk, or nothing).
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Length(4));
    /// assert_eq!(body.frame_data(4)?.suffix(), b"");
    /// # Ok::<(), roundtrip_proto::Error>(())
    /// ```
    #[must_use]
    pub fn suffix(&self) -> &'static [u8] {
        self.suffix
    }
}

impl PartialEq for DataFrame {
    fn eq(&self, other: &Self) -> bool {
        self.prefix() == other.prefix() && self.suffix == other.suffix
    }
}

impl Eq for DataFrame {}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame")
            .field(
                "prefix",
                &format_args!("b\"{}\"", self.prefix().escape_ascii()),
            )
            .field(
                "suffix",
                &format_args!("b\"{}\"", self.suffix.escape_ascii()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    type Field<'a> = (&'a [u8], &'a [u8]);

    fn get(host: Option<&'static [u8]>) -> RequestHead<'static> {
        RequestHead {
            method: b"GET",
            target: b"/",
            host,
            body: BodyFraming::None,
            preset: None,
            expect_continue: false,
            close: false,
        }
    }

    fn encode(head: &RequestHead<'_>, fields: &[Field<'_>]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        encode_head(head, fields.iter().copied(), &mut out).map(|()| out)
    }

    /// Encodes into a buffer holding earlier bytes and checks an error leaves
    /// them untouched.
    fn refused(head: &RequestHead<'_>, fields: &[Field<'_>]) -> Error {
        let mut out = b"earlier".to_vec();
        let err = encode_head(head, fields.iter().copied(), &mut out).unwrap_err();
        assert_eq!(out, b"earlier", "buffer changed on {err:?}");
        err
    }

    #[test]
    fn get_with_host() {
        let out = encode(&get(Some(b"example.com")), &[(b"Accept", b"*/*")]).unwrap();
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn post_with_content_length_keeps_case_and_order() {
        let head = RequestHead {
            method: b"POST",
            target: b"http://example.com/form?a=1",
            body: BodyFraming::Length(13),
            ..get(Some(b"example.com"))
        };
        let fields: &[Field<'_>] = &[(b"content-TYPE", b"text/plain"), (b"X-Empty", b"")];
        assert_eq!(
            encode(&head, fields).unwrap(),
            b"POST http://example.com/form?a=1 HTTP/1.1\r\nHost: example.com\r\n\
              content-TYPE: text/plain\r\nX-Empty: \r\nContent-Length: 13\r\n\r\n"
        );
    }

    #[test]
    fn content_length_digits() {
        for (n, text) in [
            (0, &b"0"[..]),
            (10, b"10"),
            (u64::MAX, b"18446744073709551615"),
        ] {
            let head = RequestHead {
                body: BodyFraming::Length(n),
                ..get(None)
            };
            let out = encode(&head, &[]).unwrap();
            let line = [&b"Content-Length: "[..], text, b"\r\n\r\n"].concat();
            assert!(out.ends_with(&line), "{n}");
        }
    }

    #[test]
    fn chunked_with_trailers_exact_bytes() {
        let head = RequestHead {
            method: b"PUT",
            target: b"/x",
            body: BodyFraming::Chunked,
            ..get(Some(b"h"))
        };
        let mut wire = encode(&head, &[(b"Trailer", b"Checksum")]).unwrap();
        let mut body = BodyEncoder::new(head.body);
        for piece in [&b"hello"[..], &[b'z'; 26][..], b""] {
            let frame = body.frame_data(piece.len()).unwrap();
            wire.extend_from_slice(frame.prefix());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(frame.suffix());
        }
        let trailers: [Field<'_>; 2] = [(b"Checksum", b"abc"), (b"X-T", b"1")];
        body.finish(trailers, &mut wire).unwrap();
        let expected = [
            &b"PUT /x HTTP/1.1\r\nHost: h\r\nTrailer: Checksum\r\n"[..],
            b"Transfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n",
            b"1a\r\nzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n",
            b"0\r\nChecksum: abc\r\nX-T: 1\r\n\r\n",
        ]
        .concat();
        assert_eq!(wire, expected);
        assert_eq!(body.bytes_framed(), 31);
    }

    #[test]
    fn expect_continue_and_close() {
        let head = RequestHead {
            method: b"POST",
            body: BodyFraming::Length(1),
            expect_continue: true,
            close: true,
            ..get(Some(b"h"))
        };
        assert_eq!(
            encode(&head, &[]).unwrap(),
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\
              Expect: 100-continue\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            refused(&head, &[(b"x", b"1"), (b"EXPECT", b"100-continue")]),
            Error::DuplicateField { index: 1 }
        );
    }

    #[test]
    fn caller_connection_replaces_close() {
        let head = RequestHead {
            close: true,
            ..get(None)
        };
        let out = encode(
            &head,
            &[(b"connection", b"close, te"), (b"TE", b"trailers")],
        )
        .unwrap();
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nconnection: close, te\r\nTE: trailers\r\n\r\n"
        );
        // Without `close`, a caller Expect is just a field.
        assert!(encode(&get(None), &[(b"Expect", b"100-continue")]).is_ok());
    }

    #[test]
    fn host_from_fields_or_head_but_not_both() {
        let out = encode(&get(None), &[(b"host", b"a.example")]).unwrap();
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: a.example\r\n\r\n");
        let empty_host = encode(&get(Some(b"")), &[]).unwrap();
        assert_eq!(empty_host, b"GET / HTTP/1.1\r\nHost: \r\n\r\n");

        let twice: &[Field<'_>] = &[(b"Host", b"a")];
        assert_eq!(
            refused(&get(Some(b"a")), twice),
            Error::DuplicateField { index: 0 }
        );
        let two_fields: &[Field<'_>] = &[(b"Host", b"a"), (b"HOST", b"b")];
        assert_eq!(
            refused(&get(None), two_fields),
            Error::DuplicateField { index: 1 }
        );
        let spaced: &[Field<'_>] = &[(b"Host", b"a b")];
        assert_eq!(
            refused(&get(None), spaced),
            Error::InvalidHeaderValue { index: 0 }
        );
        for bad in [&b"a b"[..], b"a\r\nX: y", b"a\0", b"\xc3\xa9"] {
            assert_eq!(refused(&get(Some(bad)), &[]), Error::InvalidHost);
        }
    }

    #[test]
    fn refuses_bad_values() {
        let bad: [&[u8]; 9] = [
            b"a\rb",
            b"a\nb",
            b"a\r\nX-Evil: 1",
            b"a\0b",
            b"a\x7fb",
            b"a\x01b",
            b" a",
            b"a\t",
            b" ",
        ];
        for value in bad {
            let fields: &[Field<'_>] = &[(b"Ok", b"1"), (b"X", value)];
            let err = refused(&get(Some(b"h")), fields);
            assert_eq!(err, Error::InvalidHeaderValue { index: 1 }, "{value:?}");
        }
        // Inner whitespace, tabs and obs-text are field-content.
        assert!(encode(&get(None), &[(b"X", b"a \tb\x80\xff")]).is_ok());
    }

    #[test]
    fn refuses_bad_names() {
        let bad: [&[u8]; 8] = [
            b"",
            b"X Y",
            b"X:",
            b"X\r",
            b"X\n",
            b"X\0",
            b"X\r\nY",
            b"\xc3\xa9",
        ];
        for name in bad {
            let err = refused(&get(None), &[(name, b"v")]);
            assert_eq!(err, Error::InvalidHeaderName { index: 0 }, "{name:?}");
        }
    }

    #[test]
    fn refuses_bad_method_and_target() {
        for method in [&b""[..], b"GE T", b"GET\r\n", b"G\0", b"GET/"] {
            let head = RequestHead {
                method,
                ..get(None)
            };
            assert_eq!(refused(&head, &[]), Error::InvalidMethod, "{method:?}");
        }
        for target in [
            &b""[..],
            b"/a b",
            b"/\r\nX: y",
            b"/\0",
            b"/\x7f",
            b"/\xc3\xa9",
            b"/\t",
        ] {
            let head = RequestHead {
                target,
                ..get(None)
            };
            assert_eq!(refused(&head, &[]), Error::InvalidTarget, "{target:?}");
        }
        for target in [&b"*"[..], b"example.com:443", b"/p?q=%20#"] {
            assert!(
                encode(
                    &RequestHead {
                        target,
                        ..get(None)
                    },
                    &[]
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn refuses_framing_fields() {
        for name in [
            &b"Content-Length"[..],
            b"content-length",
            b"TRANSFER-ENCODING",
        ] {
            let fields: &[Field<'_>] = &[(b"A", b"1"), (b"B", b"2"), (name, b"5")];
            assert_eq!(
                refused(&get(None), fields),
                Error::FramingHeader { index: 2 }
            );
        }
    }

    #[test]
    fn error_display_and_group() {
        let err = Error::FramingHeader { index: 3 };
        assert_eq!(
            format!("{err}"),
            "field 3 is content-length or transfer-encoding, which the encoder sets"
        );
        for err in [
            Error::InvalidHost,
            err,
            Error::DuplicateField { index: 0 },
            Error::ForbiddenTrailer { index: 0 },
        ] {
            assert!(!err.is_peer_error());
        }
    }

    #[test]
    fn length_too_long_is_refused_and_retryable() {
        let mut body = BodyEncoder::new(BodyFraming::Length(5));
        assert_eq!(body.frame_data(3).unwrap(), DataFrame::BARE);
        assert_eq!(
            body.frame_data(3),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                supplied: 6
            })
        );
        assert_eq!(body.bytes_framed(), 3);
        body.frame_data(2).unwrap();
        body.frame_data(0).unwrap();
        let mut out = Vec::new();
        body.finish([], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn length_too_short_at_finish() {
        let mut body = BodyEncoder::new(BodyFraming::Length(5));
        body.frame_data(4).unwrap();
        let mut out = vec![1, 2];
        assert_eq!(
            body.finish([], &mut out),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                supplied: 4
            })
        );
        assert!(!body.is_finished());
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn zero_length_chunk_is_empty_frame() {
        let mut body = BodyEncoder::new(BodyFraming::Chunked);
        let frame = body.frame_data(0).unwrap();
        assert_eq!((frame.prefix(), frame.suffix()), (&b""[..], &b""[..]));
        let mut out = Vec::new();
        body.finish([], &mut out).unwrap();
        assert_eq!(out, b"0\r\n\r\n");
    }

    #[test]
    fn chunk_size_hex() {
        for (len, text) in [
            (1, &b"1\r\n"[..]),
            (15, b"f\r\n"),
            (16, b"10\r\n"),
            (0xabc, b"abc\r\n"),
            (u64::MAX, b"ffffffffffffffff\r\n"),
        ] {
            assert_eq!(DataFrame::chunk(len).prefix(), text, "{len}");
        }
        assert_eq!(
            format!("{:?}", DataFrame::chunk(10)),
            r#"DataFrame { prefix: b"a\r\n", suffix: b"\r\n" }"#
        );
    }

    #[test]
    fn no_body_refuses_data() {
        let mut body = BodyEncoder::new(BodyFraming::None);
        assert_eq!(body.frame_data(0).unwrap(), DataFrame::BARE);
        assert!(matches!(body.frame_data(1), Err(Error::Misuse(_))));
        let trailer: [Field<'_>; 1] = [(b"X", b"1")];
        assert!(matches!(
            body.finish(trailer, &mut Vec::new()),
            Err(Error::Misuse(_))
        ));
        assert!(!body.is_finished());
    }

    #[test]
    fn misuse_after_finish() {
        for framing in [
            BodyFraming::None,
            BodyFraming::Length(0),
            BodyFraming::Chunked,
        ] {
            let mut body = BodyEncoder::new(framing);
            let mut out = Vec::new();
            body.finish([], &mut out).unwrap();
            let len = out.len();
            assert!(matches!(body.frame_data(0), Err(Error::Misuse(_))));
            assert!(matches!(body.finish([], &mut out), Err(Error::Misuse(_))));
            assert_eq!(out.len(), len);
            assert!(body.is_finished());
        }
    }

    #[test]
    fn refuses_bad_trailers_and_keeps_buffer() {
        let cases: [(Field<'_>, Error); 5] = [
            ((b"Content-Length", b"1"), Error::FramingHeader { index: 1 }),
            (
                (b"transfer-encoding", b"gzip"),
                Error::FramingHeader { index: 1 },
            ),
            ((b"Host", b"h"), Error::ForbiddenTrailer { index: 1 }),
            ((b"X", b"a\r\nb"), Error::InvalidHeaderValue { index: 1 }),
            ((b"X Y", b"v"), Error::InvalidHeaderName { index: 1 }),
        ];
        for (bad, expected) in cases {
            let mut body = BodyEncoder::new(BodyFraming::Chunked);
            let mut out = b"data".to_vec();
            let trailers: [Field<'_>; 2] = [(b"Ok", b"1"), bad];
            assert_eq!(body.finish(trailers, &mut out), Err(expected));
            assert_eq!(out, b"data");
            assert!(!body.is_finished());
            body.finish([], &mut out).unwrap();
            assert_eq!(out, b"data0\r\n\r\n");
        }
    }

    /// Cross-check with an independent parser: what we write is one request
    /// with exactly the fields we meant.
    #[test]
    fn httparse_reads_what_we_wrote() {
        let head = RequestHead {
            method: b"PATCH",
            target: b"/a?b=c",
            body: BodyFraming::Length(2),
            expect_continue: true,
            close: true,
            ..get(Some(b"h:1"))
        };
        let out = encode(&head, &[(b"X-A", b"1 2"), (b"x-b", b"")]).unwrap();
        let mut parsed = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut parsed);
        assert_eq!(
            req.parse(&out).unwrap(),
            httparse::Status::Complete(out.len())
        );
        assert_eq!(
            (req.method, req.path, req.version),
            (Some("PATCH"), Some("/a?b=c"), Some(1))
        );
        let got: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
        let want: [(&str, &[u8]); 6] = [
            ("Host", b"h:1"),
            ("X-A", b"1 2"),
            ("x-b", b""),
            ("Content-Length", b"2"),
            ("Expect", b"100-continue"),
            ("Connection", b"close"),
        ];
        assert_eq!(got, want);
    }

    /// Mostly harmless bytes, with enough line ends, colons, controls and
    /// whitespace that refusals and acceptances both occur often.
    fn tricky_byte() -> impl proptest::strategy::Strategy<Value = u8> {
        proptest::sample::select(&b"aZ9-_: \t\r\n\0\x7f\x80\xff"[..])
    }

    proptest::proptest! {
        /// Whatever bytes a caller passes, the encoder either refuses them or
        /// writes exactly one head that a parser reads back field for field:
        /// no request splitting.
        #[test]
        fn never_splits_a_request(
            name in proptest::collection::vec(tricky_byte(), 0..6),
            value in proptest::collection::vec(tricky_byte(), 0..12),
        ) {
            let mut out = Vec::new();
            let fields: [Field<'_>; 1] = [(&name, &value)];
            if encode_head(&get(Some(b"h")), fields, &mut out).is_ok() {
                let mut parsed = [httparse::EMPTY_HEADER; 4];
                let mut req = httparse::Request::new(&mut parsed);
                let status = req.parse(&out);
                proptest::prop_assert_eq!(status, Ok(httparse::Status::Complete(out.len())));
                proptest::prop_assert_eq!(req.headers.len(), 2);
                proptest::prop_assert_eq!(req.headers[1].name.as_bytes(), &name[..]);
                proptest::prop_assert_eq!(req.headers[1].value, &value[..]);
            } else {
                proptest::prop_assert!(out.is_empty());
            }
        }
    }

    /// A block of the first fields sent as a preset encodes to the same
    /// bytes, or the same error, as all the fields passed in turn.
    #[test]
    fn preset_block_equals_its_fields_in_turn() {
        let candidates: &[Field<'_>] = &[
            (b"User-Agent", b"t/1"),
            (b"Host", b"h"),
            (b"Expect", b"100-continue"),
            (b"Connection", b"close"),
            (b"Content-Length", b"1"),
            (b"X-Bad", b" padded"),
            (b"Bad Name", b"v"),
        ];
        let heads = [
            get(Some(b"h")),
            get(None),
            RequestHead {
                expect_continue: true,
                close: true,
                body: BodyFraming::Length(1),
                ..get(None)
            },
        ];
        let n = candidates.len();
        let mut compared = 0;
        for len in 0..=3u32 {
            for code in 0..n.pow(len) {
                let fields: Vec<Field<'_>> =
                    (0..len).map(|i| candidates[code / n.pow(i) % n]).collect();
                for split in 0..=fields.len() {
                    let Ok(block) = FieldBlock::new(fields[..split].iter().copied()) else {
                        continue;
                    };
                    assert_eq!(block.len(), split);
                    for head in &heads {
                        let all = encode(head, &fields);
                        let preset = RequestHead {
                            preset: Some(&block),
                            ..*head
                        };
                        let mut out = b"earlier".to_vec();
                        let got = encode_head(&preset, fields[split..].iter().copied(), &mut out);
                        match (&all, got) {
                            (Ok(want), Ok(())) => {
                                assert_eq!(out[7..], want[..], "{fields:?} / {split}")
                            }
                            (Err(want), Err(got)) => {
                                assert_eq!(*want, got, "{fields:?} / {split}");
                                assert_eq!(out, b"earlier");
                            }
                            (want, got) => panic!("{fields:?} / {split}: {want:?} vs {got:?}"),
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 1000, "{compared}");
    }
}
