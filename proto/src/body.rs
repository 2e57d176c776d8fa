//! Body decoders: `Content-Length`, chunked (RFC 9112 section 7.1) and
//! read-to-close. Each consumes from the front of the read buffer and keeps
//! only scalar state between calls; data comes out as `Bytes` split off the
//! buffer, never copied.

use bytes::{Buf, Bytes, BytesMut};

use crate::chars::{is_field_value_byte, is_tchar};
use crate::error::{Error, Phase};
use crate::framing::Framing;
use crate::head::{Cursor, FieldSpan, Line, parse_field_line};
use crate::limits::Limits;

/// What a body decoder produced.
#[derive(Debug)]
pub(crate) enum BodyEvent {
    Data(Bytes),
    /// A trailer field: `span` within [`BodyDecoder::trailer_line`].
    Trailer(FieldSpan),
    End,
}

/// Decodes one response body.
#[derive(Debug)]
pub(crate) enum BodyDecoder {
    Length { remaining: u64, expected: u64 },
    Chunked(Chunked),
    UntilClose { received: u64 },
}

impl BodyDecoder {
    /// The decoder for `framing`, or `None` when there is no body to read.
    pub fn new(framing: Framing) -> Option<Self> {
        match framing {
            Framing::NoBody | Framing::Switched | Framing::Length(0) => None,
            Framing::Length(n) => Some(BodyDecoder::Length {
                remaining: n,
                expected: n,
            }),
            Framing::Chunked => Some(BodyDecoder::Chunked(Chunked::default())),
            Framing::UntilClose => Some(BodyDecoder::UntilClose { received: 0 }),
        }
    }

    /// The line of the last trailer field reported.
    pub fn trailer_line(&self) -> &Bytes {
        static EMPTY: Bytes = Bytes::new();
        match self {
            BodyDecoder::Chunked(chunked) => &chunked.line,
            _ => &EMPTY,
        }
    }

    /// Body bytes still announced by `Content-Length`, if known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length { remaining, .. } => Some(*remaining),
            _ => None,
        }
    }

    /// Data bytes still announced by the size line of the chunk being read
    /// (0 between chunks), while reading a chunked body.
    pub fn remaining_chunk(&self) -> Option<u64> {
        match self {
            BodyDecoder::Chunked(chunked) if chunked.state == State::Data => Some(chunked.size),
            BodyDecoder::Chunked(_) => Some(0),
            _ => None,
        }
    }

    /// Body bytes that may pass without the buffer: the rest of a
    /// `Content-Length` body, of the current chunk's data, or any number of
    /// a body that runs until the close; `None` where framing bytes come
    /// next (a size line, a chunk's CRLF) or the body is over.
    pub fn direct_room(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length { remaining, .. } if *remaining > 0 => Some(*remaining),
            BodyDecoder::Chunked(c) if c.state == State::Data && c.size > 0 => Some(c.size),
            BodyDecoder::UntilClose { .. } => Some(u64::MAX),
            _ => None,
        }
    }

    /// `n` body bytes (at most [`direct_room`](Self::direct_room)) passed
    /// without the buffer.
    pub fn take_direct(&mut self, n: u64, offset: &mut u64) {
        match self {
            BodyDecoder::Length { remaining, .. } => *remaining -= n,
            BodyDecoder::Chunked(c) => {
                c.size -= n;
                c.received += n;
                if c.size == 0 {
                    c.state = State::DataCr;
                }
            }
            // A body until the close has no bound: its counts stop at
            // `u64::MAX` rather than wrap (or panic in a debug build).
            BodyDecoder::UntilClose { received } => *received = received.saturating_add(n),
        }
        *offset = offset.saturating_add(n);
    }

    /// Decodes from the front of `buf`. `offset` is the message offset of
    /// `buf[0]` and moves with every byte consumed. `eof` says the server
    /// closed the connection after what `buf` holds.
    pub fn poll(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
        offset: &mut u64,
        limits: &Limits,
    ) -> Result<Option<BodyEvent>, Error> {
        match self {
            BodyDecoder::Length {
                remaining,
                expected,
            } => {
                if *remaining == 0 {
                    return Ok(Some(BodyEvent::End));
                }
                if buf.is_empty() {
                    return if eof {
                        Err(Error::UnexpectedEof {
                            phase: Phase::Body,
                            received: *expected - *remaining,
                            expected: Some(*expected),
                        })
                    } else {
                        Ok(None)
                    };
                }
                let n = (buf.len() as u64).min(*remaining) as usize;
                *remaining -= n as u64;
                *offset += n as u64;
                Ok(Some(BodyEvent::Data(buf.split_to(n).freeze())))
            }
            BodyDecoder::UntilClose { received } => {
                if buf.is_empty() {
                    return Ok(eof.then_some(BodyEvent::End));
                }
                let n = buf.len();
                *received += n as u64;
                *offset += n as u64;
                Ok(Some(BodyEvent::Data(buf.split_to(n).freeze())))
            }
            BodyDecoder::Chunked(chunked) => chunked.poll(buf, eof, offset, limits),
        }
    }
}

/// Where the chunked decoder is (RFC 9112 section 7.1):
///
/// ```text
/// chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
/// last-chunk = 1*"0" [ chunk-ext ] CRLF, then trailer-section CRLF
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    #[default]
    Size,
    /// Whitespace after the size or an extension: `;` must follow (BWS).
    Bws,
    /// After `;`: whitespace, then an extension name.
    ExtStart,
    /// Inside an extension name.
    ExtName,
    /// Whitespace after an extension name: `=` or `;` must follow.
    ExtNameBws,
    /// After `=`: whitespace, then a token or a quoted string.
    ExtValueStart,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// After a backslash inside a quoted string.
    ExtQuotedPair,
    /// CR seen at the end of a chunk-size line.
    SizeLf,
    /// Chunk data left to pass through.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After the last chunk: trailer field lines until the blank line.
    Trailers,
    /// The body ended.
    Done,
}

/// Most hex digits of one chunk size, leading zeros included (a size
/// needs 16 at most; Go reads a chunk-size line of 4 KiB at most).
const MAX_SIZE_DIGITS: u32 = 64;

/// Chunked body decoder: scalar state only.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chunked {
    state: State,
    /// Size of the chunk being read, or data left in it.
    size: u64,
    /// Hex digits read of the current size.
    digits: u32,
    /// Extension bytes on the current chunk-size line.
    ext_len: usize,
    /// Decoded body bytes so far.
    received: u64,
    /// Trailer bytes consumed so far, and fields seen.
    trailer_bytes: usize,
    trailer_fields: usize,
    /// The last trailer line, which its `Trailer` event borrows.
    line: Bytes,
    /// How far the current trailer line was parsed.
    pos: usize,
    cursor: Cursor,
}

impl Chunked {
    fn poll(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
        offset: &mut u64,
        limits: &Limits,
    ) -> Result<Option<BodyEvent>, Error> {
        loop {
            match self.state {
                State::Done => return Ok(Some(BodyEvent::End)),
                State::Data => {
                    if buf.is_empty() {
                        return self.need_more(eof);
                    }
                    let n = (buf.len() as u64).min(self.size) as usize;
                    self.size -= n as u64;
                    self.received += n as u64;
                    *offset += n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Some(BodyEvent::Data(buf.split_to(n).freeze())));
                }
                State::Trailers => return self.poll_trailer(buf, eof, offset, limits),
                _ => {
                    if buf.is_empty() {
                        return self.need_more(eof);
                    }
                    let used = self.line_bytes(buf, *offset, limits)?;
                    buf.advance(used);
                    *offset += used as u64;
                }
            }
        }
    }

    fn need_more(&self, eof: bool) -> Result<Option<BodyEvent>, Error> {
        if eof {
            let phase = if self.state == State::Trailers {
                Phase::Trailers
            } else {
                Phase::Body
            };
            Err(Error::UnexpectedEof {
                phase,
                received: self.received,
                expected: None,
            })
        } else {
            Ok(None)
        }
    }

    /// Runs the byte-wise states over the front of `buf` until data, the
    /// trailers or the end of `buf`; returns how many bytes were used.
    fn line_bytes(&mut self, buf: &[u8], offset: u64, limits: &Limits) -> Result<usize, Error> {
        for (i, &b) in buf.iter().enumerate() {
            let at = || (offset + i as u64) as usize;
            if matches!(self.state, State::Size) {
                if let Some(d) = hex(b) {
                    if self.size >> 60 != 0 {
                        return Err(Error::ChunkSizeOverflow { offset: at() });
                    }
                    self.size = self.size << 4 | u64::from(d);
                    // Leading zeros add no size: bound their run as well.
                    self.digits += 1;
                    if self.digits > MAX_SIZE_DIGITS {
                        return Err(Error::ChunkSizeOverflow { offset: at() });
                    }
                    continue;
                }
                if self.digits == 0 {
                    return Err(Error::InvalidChunkSize {
                        offset: at(),
                        byte: b,
                    });
                }
            }
            if self.ext_state() {
                self.ext_len += 1;
                if self.ext_len > limits.max_chunk_ext_bytes {
                    return Err(Error::ChunkExtTooLarge {
                        limit: limits.max_chunk_ext_bytes,
                    });
                }
            }
            self.state = match self.next_state(b, limits.allow_bare_lf) {
                Some(state) => state,
                None => return Err(self.line_error(b, at())),
            };
            if self.state == State::Data && self.size == 0 {
                self.state = State::Trailers; // the last chunk
            }
            if matches!(self.state, State::Data | State::Trailers) {
                self.ext_len = 0;
                self.digits = 0;
                return Ok(i + 1);
            }
        }
        Ok(buf.len())
    }

    /// True in the states that make up `chunk-ext`, which the limit counts.
    fn ext_state(&self) -> bool {
        !matches!(
            self.state,
            State::Size | State::SizeLf | State::DataCr | State::DataLf
        )
    }

    /// The transition on byte `b` in the chunk-size line or after chunk
    /// data, or `None` when `b` cannot come here; `lf` accepts a bare LF
    /// where a CR LF ends a line.
    fn next_state(&self, b: u8, lf: bool) -> Option<State> {
        use State::*;
        let ws = b == b' ' || b == b'\t';
        Some(match (self.state, b) {
            (Size | ExtName | ExtToken, b'\r') => SizeLf,
            (Size | Bws | ExtName | ExtNameBws | ExtToken, b';') => ExtStart,
            (Size | Bws | ExtToken, _) if ws => Bws,
            (ExtStart, _) if ws => ExtStart,
            (ExtStart | ExtName, _) if is_tchar(b) => ExtName,
            (ExtName | ExtNameBws, _) if ws => ExtNameBws,
            (ExtName | ExtNameBws, b'=') => ExtValueStart,
            (ExtValueStart, _) if ws => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtQuoted, b'"') => ExtToken, // only `;`, whitespace or CR may follow
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted | ExtQuotedPair, _) if is_field_value_byte(b) => ExtQuoted,
            (SizeLf, b'\n') => Data,
            (Size | ExtName | ExtToken, b'\n') if lf => Data,
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (DataCr, b'\n') if lf => Size,
            _ => return None,
        })
    }

    fn line_error(&self, b: u8, at: usize) -> Error {
        match (self.state, b) {
            (State::SizeLf | State::DataLf, _) => Error::BareCarriageReturn { offset: at - 1 },
            (_, b'\n') => Error::BareLineFeed { offset: at },
            (State::DataCr, _) => Error::InvalidChunkEnd { offset: at },
            _ => Error::InvalidChunkSize {
                offset: at,
                byte: b,
            },
        }
    }

    /// One trailer line: a field, or the blank line that ends the body.
    fn poll_trailer(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
        offset: &mut u64,
        limits: &Limits,
    ) -> Result<Option<BodyEvent>, Error> {
        let max_trailer = limits.max_trailer_bytes.min(crate::head::MAX_SPAN);
        let budget = max_trailer.saturating_sub(self.trailer_bytes);
        let window = &buf[..buf.len().min(budget)];
        let lf = limits.allow_bare_lf;
        let line = parse_field_line(window, 0, &mut self.pos, &mut self.cursor, false, lf)
            .map_err(|e| shift(e, *offset))?;
        let (event, used) = match line {
            Line::Incomplete if buf.len() >= budget => {
                return Err(Error::TrailersTooLarge { limit: max_trailer });
            }
            Line::Incomplete => return self.need_more(eof),
            Line::Blank { next } => {
                self.state = State::Done;
                buf.advance(next);
                (BodyEvent::End, next)
            }
            Line::Field { span, next } => {
                self.trailer_fields += 1;
                if self.trailer_fields > limits.max_fields {
                    return Err(Error::TooManyFields {
                        limit: limits.max_fields,
                    });
                }
                self.line = buf.split_to(next).freeze();
                (BodyEvent::Trailer(span), next)
            }
            // Folding is not offered for trailers, and status lines are not parsed here.
            Line::Continuation { .. } | Line::Status(..) => {
                return Err(Error::UnexpectedWhitespace {
                    offset: *offset as usize,
                });
            }
        };
        self.pos = 0;
        self.cursor = Cursor::Start;
        self.trailer_bytes += used;
        *offset += used as u64;
        Ok(Some(event))
    }
}

/// Moves an error found in a trailer line to its message offset.
fn shift(e: Error, base: u64) -> Error {
    let base = base as usize;
    match e {
        Error::InvalidFieldName { offset, byte } => Error::InvalidFieldName {
            offset: base + offset,
            byte,
        },
        Error::InvalidFieldValue { offset, byte } => Error::InvalidFieldValue {
            offset: base + offset,
            byte,
        },
        Error::BareCarriageReturn { offset } => Error::BareCarriageReturn {
            offset: base + offset,
        },
        Error::BareLineFeed { offset } => Error::BareLineFeed {
            offset: base + offset,
        },
        Error::UnexpectedWhitespace { offset } => Error::UnexpectedWhitespace {
            offset: base + offset,
        },
        other => other,
    }
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
