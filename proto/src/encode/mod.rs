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

mod body;
mod fields;

pub use body::{BodyEncoder, DataFrame};
pub(crate) use fields::CallerFields;
pub use fields::FieldBlock;
use fields::{FieldKind, check_field, is_visible_ascii, push_decimal, write_field, write_trailers};

#[cfg(test)]
mod tests;
