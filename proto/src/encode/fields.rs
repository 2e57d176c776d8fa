//! Field blocks: preset fields, the caller's fields and trailers, and the checks every field passes.

use super::*;

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
    pub(super) encoded: Vec<u8>,
    /// How many fields.
    pub(super) count: usize,
    /// The index of its `Host` field.
    pub(super) host_at: Option<usize>,
    /// The index of its `Expect` field.
    pub(super) expect_at: Option<usize>,
    /// It holds a `Connection` field.
    pub(super) connection: bool,
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
pub(super) fn write_trailers<'a>(
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
pub(super) enum FieldKind {
    /// `Content-Length` or `Transfer-Encoding`.
    Framing,
    Host,
    Expect,
    Connection,
    Other,
}

impl FieldKind {
    pub(super) fn of(name: &[u8]) -> Self {
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
pub(super) fn check_field(index: usize, name: &[u8], value: &[u8]) -> Result<(), Error> {
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
pub(super) fn is_visible_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Writes `name: value CRLF` (RFC 9112 section 5: one SP as the OWS).
pub(super) fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without `format!`.
pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
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
