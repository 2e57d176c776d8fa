//! Status line and field-line scanning: resumable, zero-copy, linear.
//!
//! The scanner works on the front of the adapter's read buffer while the head
//! is incomplete, recording where each line starts. It parses a line only once
//! its end has arrived (after at most one partial attempt), and resumes the
//! newline search where the previous call stopped, so feeding a 64 KiB head one
//! byte at a time costs linear work. Field positions are kept as offsets in a
//! vector whose capacity outlives the message: no allocation per response.

use alloc::string::ToString;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::chars::{is_field_value_byte, is_plain_name, is_tchar, value_run};
use crate::error::Error;
use crate::limits::Limits;

/// HTTP version of a response.
///
/// A minor version above 1 is processed as HTTP/1.1 (RFC 9112 section 2.3).
///
/// ```
/// use roundtrip_proto::Version;
/// assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1` (and `HTTP/1.x` for x > 1).
    Http11,
}

impl Version {
    /// The version as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header or trailer field, borrowed from the decoder: name and value
/// are slices of the received bytes. Where the decoder shares its heads
/// ([`ResponseDecoder::share_heads`](crate::ResponseDecoder::share_heads)),
/// and always for trailers, [`name_bytes`](Self::name_bytes) /
/// [`value_bytes`](Self::value_bytes) give them as `Bytes` sharing the
/// buffer, without a copy.
///
/// The value has its surrounding whitespace removed and any obs-fold replaced
/// by a single space. A `Field` costs nothing to make (no reference count is
/// touched until a `Bytes` is asked for); it lives until the next call to the
/// decoder.
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_proto::{Event, ResponseDecoder};
///
/// let mut dec = ResponseDecoder::default();
/// let mut buf = BytesMut::from(&b"HTTP/1.1 204 No Content\r\nServer:  demo \r\n\r\n"[..]);
/// let mut fields = Vec::new();
/// while let Some(event) = dec.poll_event(&mut buf).unwrap() {
///     if let Event::Field(f) = event {
///         assert_eq!(f.name(), b"Server");
///         assert_eq!(f.value_bytes(), None); // heads are not shared by default
///         fields.push((f.name().to_vec(), f.value().to_vec()));
///     }
/// }
/// assert_eq!(fields[0].1, b"demo");
/// ```
#[derive(Clone, Copy)]
pub struct Field<'a> {
    /// The head (or trailer line) the field was cut from.
    buf: &'a [u8],
    /// The same bytes as `Bytes`, where they are shared.
    shared: Option<&'a Bytes>,
    span: FieldSpan,
}

impl<'a> Field<'a> {
    /// The field at `span` of `buf` (which is `shared`, if that is given).
    #[inline]
    pub(crate) fn new(buf: &'a [u8], shared: Option<&'a Bytes>, span: FieldSpan) -> Field<'a> {
        Field { buf, shared, span }
    }

    /// The field name, case as sent.
    #[inline]
    pub fn name(&self) -> &'a [u8] {
        &self.buf[self.span.line as usize..self.span.name_end as usize]
    }

    /// The field value.
    #[inline]
    pub fn value(&self) -> &'a [u8] {
        &self.buf[self.span.value_start as usize..self.span.value_end as usize]
    }

    /// The field name as a `Bytes` sharing the received buffer; `None`
    /// unless the head is shared.
    #[inline]
    pub fn name_bytes(&self) -> Option<Bytes> {
        let range = self.span.line as usize..self.span.name_end as usize;
        self.shared.map(|b| b.slice(range))
    }

    /// The field value as a `Bytes` sharing the received buffer; `None`
    /// unless the head is shared.
    #[inline]
    pub fn value_bytes(&self) -> Option<Bytes> {
        let range = self.span.value_start as usize..self.span.value_end as usize;
        self.shared.map(|b| b.slice(range))
    }
}

/// Fields are equal when their names (case as sent) and values are.
impl PartialEq for Field<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.value() == other.value()
    }
}

impl Eq for Field<'_> {}

impl core::fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Field")
            .field(&self.name().escape_ascii().to_string())
            .field(&self.value().escape_ascii().to_string())
            .finish()
    }
}

/// Where the parts of the status line are, relative to the head start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatusSpan {
    pub version: Version,
    pub code: u16,
    pub reason: (u32, u32),
}

/// The longest head or trailer line a [`FieldSpan`] can hold positions of.
pub(crate) const MAX_SPAN: usize = u32::MAX as usize;

/// Where one field line's parts are, relative to the head (or trailer line) start.
///
/// The name starts at `line`; the value is `value_start..value_end`, already
/// trimmed and, after an obs-fold, compacted in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub line: u32,
    pub name_end: u32,
    pub value_start: u32,
    pub value_end: u32,
}

/// One parsed line.
#[derive(Debug)]
pub(crate) enum Line {
    /// The line end has not arrived yet; parsing resumes where it stopped.
    Incomplete,
    /// The empty line that ends a head or trailer section; `next` is the offset after it.
    Blank { next: usize },
    /// A field line.
    Field { span: FieldSpan, next: usize },
    /// A line starting with SP or HTAB (obs-fold): `value` is its trimmed content.
    Continuation { value: (usize, usize), next: usize },
    /// The status line.
    Status(StatusSpan, usize),
}

/// How far a field line has been parsed, so that parsing resumes at the
/// first byte not yet looked at: every byte is examined once, however the
/// input was split. Positions are offsets in the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Nothing of the line seen yet.
    #[default]
    Start,
    /// A CR at the start of the line: the blank line, if LF follows.
    BlankCr,
    /// Inside the field name.
    Name,
    /// After the colon (or the leading whitespace of an obs-fold line, with
    /// `name_end: None`), skipping whitespace.
    Ows { name_end: Option<u32> },
    /// Inside the value, which starts at `start`.
    Value { name_end: Option<u32>, start: u32 },
    /// A CR at `end` after the value: LF must follow.
    Cr {
        name_end: Option<u32>,
        start: u32,
        end: u32,
    },
}

/// Resumable scanner for one head.
#[derive(Debug, Default)]
pub(crate) struct HeadScanner {
    /// Start of the line being parsed.
    line_start: usize,
    /// Next byte to look at.
    pos: usize,
    /// Where the line being parsed is.
    cursor: Cursor,
    pub status: Option<StatusSpan>,
    pub fields: Vec<FieldSpan>,
}

impl HeadScanner {
    /// A scanner whose field table holds `fields` entries before it grows.
    pub fn with_capacity(fields: usize) -> Self {
        HeadScanner {
            fields: Vec::with_capacity(fields),
            ..HeadScanner::default()
        }
    }

    /// Forgets the previous head, keeping the field table's allocation.
    pub fn reset(&mut self) {
        self.line_start = 0;
        self.pos = 0;
        self.cursor = Cursor::Start;
        self.status = None;
        self.fields.clear();
    }

    /// True when no byte of a head was seen yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Scans what `buf` holds of the head. Returns the head length once the
    /// blank line has been seen. `buf` may be changed in place (obs-fold).
    #[inline(always)]
    pub fn scan(&mut self, buf: &mut [u8], limits: &Limits) -> Result<Option<usize>, Error> {
        // Only the first `max_head_bytes` can belong to the head: looking no
        // further makes the outcome independent of how the bytes were split.
        // Field positions are `u32`s: a limit set above 4 GiB is 4 GiB.
        let max_head = limits.max_head_bytes.min(MAX_SPAN);
        let window_len = buf.len().min(max_head);
        let full = buf.len() >= max_head;
        let window = &mut buf[..window_len];
        loop {
            if self.status.is_some() && self.pos == self.line_start {
                // Clean, complete field lines straight through, in one loop.
                if let Some(end) = self.fast_fields(window, limits)? {
                    return Ok(Some(end));
                }
            }
            let at = self.line_start;
            // A line not yet looked at is tried straight through first.
            let fresh = self.pos == at;
            let line = if self.status.is_none() {
                match fresh.then(|| fast_status_line(window, at)).flatten() {
                    Some(line) => line,
                    None => parse_status_line(window, at, &mut self.pos, limits.allow_bare_lf)?,
                }
            } else {
                match fresh.then(|| fast_field_line(window, at)).flatten() {
                    Some(line) => line,
                    None => {
                        let fold = !self.fields.is_empty();
                        let lf = limits.allow_bare_lf;
                        parse_field_line(window, at, &mut self.pos, &mut self.cursor, fold, lf)?
                    }
                }
            };
            let next = match line {
                Line::Incomplete if full => {
                    return Err(Error::HeadTooLarge { limit: max_head });
                }
                Line::Incomplete => return Ok(None),
                Line::Blank { next } => return Ok(Some(next)),
                Line::Field { span, next } => {
                    if self.fields.len() >= limits.max_fields {
                        return Err(Error::TooManyFields {
                            limit: limits.max_fields,
                        });
                    }
                    self.fields.push(span);
                    next
                }
                Line::Continuation { value, next } => {
                    // `fold` above guarantees a field to continue.
                    if let Some(last) = self.fields.last_mut() {
                        unfold(window, last, value);
                    }
                    next
                }
                Line::Status(span, next) => {
                    self.status = Some(span);
                    next
                }
            };
            self.line_start = next;
            self.pos = next;
            self.cursor = Cursor::Start;
        }
    }
}

impl HeadScanner {
    /// Takes clean, complete field lines from `line_start` on, pushing their
    /// spans, until the blank line (returns the head length) or a line it
    /// leaves to the resumable parser (returns `None`, `line_start` there).
    #[inline(always)]
    fn fast_fields(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        let mut at = self.line_start;
        let result = loop {
            match fast_field_line(buf, at) {
                Some(Line::Field { span, next }) => {
                    if self.fields.len() >= limits.max_fields {
                        return Err(Error::TooManyFields {
                            limit: limits.max_fields,
                        });
                    }
                    self.fields.push(span);
                    at = next;
                }
                Some(Line::Blank { next }) => break Some(next),
                _ => break None,
            }
        };
        self.line_start = at;
        self.pos = at;
        Ok(result)
    }
}

/// Appends the obs-fold continuation `value` to the field `last` as one SP
/// (RFC 9112 section 5.2), moving the bytes left in place.
fn unfold(buf: &mut [u8], last: &mut FieldSpan, (start, end): (usize, usize)) {
    if start == end {
        return; // an empty continuation adds nothing once trimmed
    }
    let mut to = last.value_end as usize;
    if last.value_end > last.value_start {
        buf[to] = b' ';
        to += 1;
    }
    // `to` lies before the CRLF (or bare LF) that ended the previous line,
    // and `start` after it, so this moves bytes left within the head.
    buf.copy_within(start..end, to);
    last.value_end = (to + (end - start)) as u32;
}

/// Parses `HTTP/1.x SP 3DIGIT [SP reason] CRLF` starting at `line`
/// (RFC 9112 section 4), resuming at `*pos`; `lf` accepts a bare LF as the
/// line end. Every check depends only on a byte's place in the line, so
/// resuming needs no other state.
fn parse_status_line(buf: &[u8], line: usize, pos: &mut usize, lf: bool) -> Result<Line, Error> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let mut i = *pos;
    while let Some(&b) = buf.get(i) {
        let k = i - line;
        if k < 9 {
            let ok = match k {
                0..=6 => b == PREFIX[k],
                7 => b.is_ascii_digit(),
                _ => b == b' ',
            };
            if !ok {
                return Err(Error::InvalidVersion { offset: i });
            }
        } else if k < 12 {
            // Three digits, the first not 0 (codes are 100 to 999).
            if !b.is_ascii_digit() || (k == 9 && b == b'0') {
                return Err(Error::InvalidStatus { offset: i });
            }
        } else if b == b'\r' {
            return complete_status(buf, line, i, pos);
        } else if b == b'\n' {
            if lf {
                return Ok(Line::Status(status_span(buf, line, i), i + 1));
            }
            return Err(Error::BareLineFeed { offset: i });
        } else if k == 12 && b != b' ' {
            return Err(Error::InvalidStatus { offset: i });
        } else if !is_field_value_byte(b) {
            return Err(Error::InvalidReason { offset: i, byte: b });
        }
        i += 1;
    }
    *pos = i;
    Ok(Line::Incomplete)
}

/// The status line's CR is at `cr`: finish it if its LF has arrived.
fn complete_status(buf: &[u8], line: usize, cr: usize, pos: &mut usize) -> Result<Line, Error> {
    match buf.get(cr + 1) {
        None => {
            *pos = cr;
            Ok(Line::Incomplete)
        }
        Some(b'\n') => Ok(Line::Status(status_span(buf, line, cr), cr + 2)),
        Some(_) => Err(Error::BareCarriageReturn { offset: cr }),
    }
}

/// The checked status line at `line`, whose line end (CR or bare LF) is at
/// `end`.
fn status_span(buf: &[u8], line: usize, end: usize) -> StatusSpan {
    let digit = |k: usize| u16::from(buf[line + k] - b'0');
    let version = if buf[line + 7] == b'0' {
        Version::Http10
    } else {
        Version::Http11
    };
    let reason_start = if end > line + 12 { line + 13 } else { end };
    StatusSpan {
        version,
        code: digit(9) * 100 + digit(10) * 10 + digit(11),
        reason: (reason_start as u32, end as u32),
    }
}

/// Parses one field line, the blank line, or (when `fold` allows it) an
/// obs-fold continuation, starting at `line` and resuming at `*pos` in state
/// `*cur` (RFC 9112 sections 2.2 and 5); `lf` accepts a bare LF as the line
/// end.
pub(crate) fn parse_field_line(
    buf: &[u8],
    line: usize,
    pos: &mut usize,
    cur: &mut Cursor,
    fold: bool,
    lf: bool,
) -> Result<Line, Error> {
    let mut i = *pos;
    loop {
        match *cur {
            Cursor::Start => match buf.get(i) {
                None => break,
                Some(b'\r') => {
                    *cur = Cursor::BlankCr;
                    i += 1;
                }
                Some(b'\n') if lf => return Ok(Line::Blank { next: i + 1 }),
                Some(b'\n') => return Err(Error::BareLineFeed { offset: i }),
                Some(b' ' | b'\t') if fold => {
                    *cur = Cursor::Ows { name_end: None };
                    i += 1;
                }
                Some(b' ' | b'\t') => return Err(Error::UnexpectedWhitespace { offset: i }),
                Some(_) => *cur = Cursor::Name,
            },
            Cursor::BlankCr => match buf.get(i) {
                None => break,
                Some(b'\n') => return Ok(Line::Blank { next: i + 1 }),
                Some(_) => return Err(Error::BareCarriageReturn { offset: i - 1 }),
            },
            Cursor::Name => {
                while i < buf.len() && is_tchar(buf[i]) {
                    i += 1;
                }
                match buf.get(i) {
                    None => break,
                    Some(b':') if i > line => {
                        *cur = Cursor::Ows {
                            name_end: Some(i as u32),
                        };
                        i += 1;
                    }
                    Some(&b) => return Err(Error::InvalidFieldName { offset: i, byte: b }),
                }
            }
            Cursor::Ows { name_end } => {
                while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
                    i += 1;
                }
                if i == buf.len() {
                    break;
                }
                *cur = Cursor::Value {
                    name_end,
                    start: i as u32,
                };
            }
            Cursor::Value { name_end, start } => loop {
                i = value_run(buf, i);
                match buf.get(i) {
                    None => {
                        *pos = i;
                        return Ok(Line::Incomplete);
                    }
                    Some(b'\r') => {
                        *cur = Cursor::Cr {
                            name_end,
                            start,
                            end: i as u32,
                        };
                        i += 1;
                        break;
                    }
                    Some(b'\n') if lf => {
                        let end = i as u32;
                        return Ok(finish_field(buf, line, name_end, start, end, i + 1));
                    }
                    Some(b'\n') => return Err(Error::BareLineFeed { offset: i }),
                    Some(&b) if is_field_value_byte(b) => i += 1,
                    Some(&b) => return Err(Error::InvalidFieldValue { offset: i, byte: b }),
                }
            },
            Cursor::Cr {
                name_end,
                start,
                end,
            } => match buf.get(i) {
                None => break,
                Some(b'\n') => return Ok(finish_field(buf, line, name_end, start, end, i + 1)),
                Some(_) => {
                    return Err(Error::BareCarriageReturn {
                        offset: end as usize,
                    });
                }
            },
        }
    }
    *pos = i;
    Ok(Line::Incomplete)
}

/// A field line is complete: trim the value's trailing whitespace.
fn finish_field(
    buf: &[u8],
    line: usize,
    name_end: Option<u32>,
    start: u32,
    end: u32,
    next: usize,
) -> Line {
    let (start, mut end) = (start as usize, end as usize);
    while end > start && (buf[end - 1] == b' ' || buf[end - 1] == b'\t') {
        end -= 1;
    }
    match name_end {
        None => Line::Continuation {
            value: (start, end),
            next,
        },
        Some(name_end) => Line::Field {
            span: FieldSpan {
                line: line as u32,
                name_end,
                value_start: start as u32,
                value_end: end as u32,
            },
            next,
        },
    }
}

/// The common case, straight through: a complete, clean field line (or the
/// blank line) at `line`. Anything else (an incomplete line, an obs-fold, any
/// byte the rules refuse) returns `None` and the resumable parser decides,
/// so both paths always agree.
#[inline(always)]
fn fast_field_line(buf: &[u8], line: usize) -> Option<Line> {
    let s = buf.get(line..)?;
    let (&first, _) = s.split_first()?;
    match first {
        b'\r' => return (s.get(1) == Some(&b'\n')).then_some(Line::Blank { next: line + 2 }),
        // An obs-fold continuation has no colon of its own: looking for
        // one would scan the lines after it, for each such line.
        b' ' | b'\t' => return None,
        _ => {}
    }
    // The name ends at the first colon (a token cannot hold one): find it
    // eight bytes at a time, then check the name's bytes sixteen at a time,
    // and one by one only if one is not ALPHA, DIGIT or `-`.
    let name_end = find_colon(s)?;
    let name = &s[..name_end];
    if name.is_empty()
        || !(is_plain_name(s, 0, name_end) || name.iter().fold(true, |ok, &b| ok & is_tchar(b)))
    {
        return None;
    }
    let mut i = name_end + 1;
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let start = i;
    loop {
        i = value_run(s, i);
        match s.get(i)? {
            b'\r' => break,
            b'\t' => i += 1,
            _ => return None,
        }
    }
    if s.get(i + 1) != Some(&b'\n') {
        return None;
    }
    // The value's bytes hold no CR, LF or FF: ASCII whitespace is SP / HTAB.
    let end = start + s[start..i].trim_ascii_end().len();
    let span = FieldSpan {
        line: line as u32,
        name_end: (line + name_end) as u32,
        value_start: (line + start) as u32,
        value_end: (line + end) as u32,
    };
    Some(Line::Field {
        span,
        next: line + i + 2,
    })
}

/// Offset of the first `:` in `s`, eight bytes at a time.
#[inline]
fn find_colon(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = s.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word) ^ (LO * u64::from(b':'));
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(i * 8 + (zero.trailing_zeros() / 8) as usize);
        }
    }
    let base = words.len() * 8;
    tail.iter().position(|&b| b == b':').map(|p| base + p)
}

/// The common case of a status line, straight through; `None` leaves it to
/// the resumable parser (see [`fast_field_line`]).
#[inline]
fn fast_status_line(buf: &[u8], line: usize) -> Option<Line> {
    let s = buf.get(line..)?;
    let head: &[u8; 13] = s.first_chunk()?;
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    if &head[..7] != b"HTTP/1." || head[8] != b' ' || head[9] == b'0' {
        return None;
    }
    digit(head[7])?;
    let code = digit(head[9])? * 100 + digit(head[10])? * 10 + digit(head[11])?;
    let mut i = match head[12] {
        b' ' => 13,
        b'\r' => 12,
        _ => return None,
    };
    let reason_start = i;
    loop {
        i = value_run(s, i);
        match s.get(i)? {
            b'\r' => break,
            b'\t' => i += 1,
            _ => return None,
        }
    }
    if s.get(i + 1) != Some(&b'\n') {
        return None;
    }
    let version = if head[7] == b'0' {
        Version::Http10
    } else {
        Version::Http11
    };
    let span = StatusSpan {
        version,
        code,
        reason: ((line + reason_start) as u32, (line + i) as u32),
    };
    Some(Line::Status(span, line + i + 2))
}
