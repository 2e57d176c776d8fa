//! Transparent gzip, as Go's transport does it (`addedGzip`): the client
//! asks with `Accept-Encoding: gzip` only when the caller said nothing about
//! encodings, and decodes only answers to its own asking.
//!
//! - Asked when [`Config::gzip`] is on, neither the request nor the default
//!   headers set `Accept-Encoding` or `Range` (a range of
//!   the gzip bytes is not a gzip stream) and the method is not HEAD or
//!   CONNECT ([`adds_gzip`]; [`fields`](crate::fields) then sends it).
//! - Decoded when we asked, the answer says `Content-Encoding: gzip` and has
//!   a body. The head then loses `Content-Encoding` and `Content-Length`
//!   (they describe the bytes on the wire) and gains a [`Decompressed`]
//!   marker ([`decode_response`]).
//! - [`GzipDecoder`] decodes as the body streams, in pieces of at most
//!   [`MAX_OUTPUT_PIECE`] bytes whatever the ratio, and checks each member's
//!   trailer (CRC-32 and length, RFC 1952 section 2.3.1). A corrupt stream,
//!   a body that ends inside a member, or bytes after the last member that
//!   are not another member are [`GzipError`]s, never a short body.
//!
//! ```
//! use roundtrip_io::{Config, adds_gzip, http};
//! let config = Config::default();
//! let parts = |b: http::request::Builder| b.body(()).unwrap().into_parts().0;
//! assert!(adds_gzip(&parts(http::Request::get("http://h/")), &config));
//! assert!(!adds_gzip(&parts(http::Request::head("http://h/")), &config));
//! assert!(!adds_gzip(&parts(http::Request::get("http://h/").header("range", "bytes=0-9")), &config));
//! assert!(!adds_gzip(&parts(http::Request::get("http://h/").header("accept-encoding", "br")), &config));
//! ```

use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, RANGE};
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, StatusCode};

use crate::config::Config;

/// Marks a response whose body the client decoded from a content coding
/// (gzip, deflate, br, zstd); its
/// `Content-Encoding` and `Content-Length` fields were removed.
///
/// ```
/// use roundtrip_io::Decompressed;
/// let response = roundtrip_io::http::Response::new(());
/// assert!(response.extensions().get::<Decompressed>().is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decompressed;

/// The most decoded bytes one [`GzipDecoder::poll_output`] returns.
pub const MAX_OUTPUT_PIECE: usize = 64 * 1024;

/// A decoded piece as `Bytes`, `None` when empty: its buffer handed over
/// when the piece fills a quarter of it or more, the bytes copied out
/// when fewer. A piece then never pins more than four times its size: a
/// queue of pieces is bounded by the decoded bytes it counts, not by the
/// 64 KiB buffers behind a stream of tiny ones (1-byte chunks of stored
/// deflate blocks from a hostile server).
#[cfg(any(feature = "gzip", feature = "deflate"))]
pub(crate) fn piece(out: Vec<u8>) -> Option<bytes::Bytes> {
    match out.len() {
        0 => None,
        n if n < out.capacity() / 4 => Some(bytes::Bytes::copy_from_slice(&out)),
        _ => Some(bytes::Bytes::from(out)),
    }
}

/// Lets go of the read buffer an emptied input was cut from, which its
/// connection may then reuse (an empty `Bytes` still holds it).
#[cfg(any(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
#[inline]
pub(crate) fn release(input: &mut bytes::Bytes) {
    if input.is_empty() {
        *input = bytes::Bytes::new();
    }
}

/// The name [`DecodeError`] had when gzip was the only coding.
pub type GzipError = DecodeError;

/// Why a compressed body (gzip, deflate, br or zstd) could not be decoded.
/// Offsets count compressed bytes from the start of the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a gzip member header (magic, method, reserved flags, header CRC):
    /// at the start, or where bytes follow a complete member.
    #[error("invalid gzip header at byte {offset}")]
    InvalidHeader {
        /// Where.
        offset: u64,
    },
    /// The deflate data is corrupt.
    #[error("corrupt deflate data at byte {offset}")]
    Corrupt {
        /// Where the piece being decoded started.
        offset: u64,
    },
    /// gzip's CRC-32 of the decoded data differs from its trailer's (the
    /// other codings' checksums, zlib's Adler-32 and zstd's, fail as
    /// [`Corrupt`](Self::Corrupt) or [`Invalid`](Self::Invalid): their
    /// libraries do not tell them apart).
    #[error("checksum mismatch at byte {offset}")]
    ChecksumMismatch {
        /// Where the trailer started.
        offset: u64,
    },
    /// The trailer's length (mod 2^32) differs from the decoded length.
    #[error("gzip length mismatch at byte {offset}: trailer says {expected}, decoded {found}")]
    LengthMismatch {
        /// Where the trailer started.
        offset: u64,
        /// From the trailer.
        expected: u32,
        /// Decoded, mod 2^32.
        found: u32,
    },
    /// The body ended inside the stream (a gzip member's header, data or
    /// trailer; a deflate, br or zstd stream before its end).
    #[error("compressed stream truncated after {received} bytes")]
    Truncated {
        /// Compressed bytes received.
        received: u64,
    },
    /// The `coding` stream (deflate, br, zstd) is corrupt, or bytes follow
    /// its end.
    #[error("corrupt {coding} data at byte {offset}")]
    Invalid {
        /// The coding's token: `deflate`, `br` or `zstd`.
        coding: &'static str,
        /// Where the piece being decoded started.
        offset: u64,
    },
    /// The compressed bytes ran more than
    /// [`MAX_INPUT_AHEAD`](crate::MAX_INPUT_AHEAD) ahead of
    /// [`MAX_INPUT_RATIO`](crate::MAX_INPUT_RATIO) times what they decode
    /// to: no real stream does (stored data grows by under 0.01%, a flush
    /// after each 3-byte event by under 3 times), a hostile one (endless
    /// empty blocks or members) would be read for ever while a body limit,
    /// which counts decoded bytes, never trips. Checked by the clients' bodies, not by
    /// a bare [`ContentDecoder`](crate::ContentDecoder).
    #[error(
        "compressed data at byte {offset} runs over 1 MiB ahead of 16 times what it decodes to"
    )]
    NoProgress {
        /// The compressed bytes taken so far.
        offset: u64,
    },
    /// A zstd frame asks for a window larger than the content coding
    /// allows (8 MiB, RFC 9659 section 3): decoding it would hold that
    /// much memory before any byte came out.
    #[error(
        "{coding} frame at byte {offset} needs a {window}-byte window, over the {limit}-byte limit"
    )]
    WindowTooLarge {
        /// The coding's token: `zstd`.
        coding: &'static str,
        /// Where the frame started.
        offset: u64,
        /// The window the frame asks for.
        window: u64,
        /// The largest window decoded.
        limit: u64,
    },
}

/// Whether the client adds `Accept-Encoding` (the enabled codings,
/// [`accept_encoding_value`](crate::accept_encoding_value)) to this
/// request, and so decodes an answer in one of them: [`Config::gzip`] is
/// on, a coding feature is enabled, neither the request nor
/// the default headers set `Accept-Encoding` or `Range`
/// (a range of the gzip bytes is not a gzip stream) and the method is not
/// HEAD or CONNECT.
pub fn adds_gzip(parts: &Parts, config: &Config) -> bool {
    config_adds_gzip(config) && request_takes_gzip(parts)
}

/// The config's half of [`adds_gzip`]: decoding is on, a coding is
/// enabled and the default headers set neither `Accept-Encoding` nor
/// `Range`.
pub(crate) fn config_adds_gzip(config: &Config) -> bool {
    // A walk over the few default names, cheaper than two hashed lookups
    // (this runs for every response).
    let named = |name: &http::HeaderName| name == ACCEPT_ENCODING || name == RANGE;
    !crate::coding::Coding::enabled().is_empty()
        && config.gzip
        && !config.default_headers.keys().any(named)
}

/// The request's half of [`adds_gzip`].
pub(crate) fn request_takes_gzip(parts: &Parts) -> bool {
    let own = &parts.headers;
    // Most requests carry no field of their own: no lookup then.
    (own.is_empty() || !own.contains_key(ACCEPT_ENCODING) && !own.contains_key(RANGE))
        && parts.method != Method::HEAD
        && parts.method != Method::CONNECT
}

/// Whether a response to `parts` is decoded: we asked, it names exactly one
/// enabled coding (gzip, deflate, br, zstd) in `Content-Encoding`, and it
/// has a body (RFC 9112 section 6.3: not 1xx, 204, 304, nor
/// `Content-Length: 0` without a `Transfer-Encoding`; HEAD and CONNECT
/// never ask).
pub fn decodes(parts: &Parts, config: &Config, status: StatusCode, headers: &HeaderMap) -> bool {
    crate::coding::decoded_coding(parts, config, status, headers).is_some()
}

/// Sets up decoding of a gzip response to `parts` when [`decodes`] says so:
/// drops `Content-Encoding` and `Content-Length`, inserts [`Decompressed`],
/// and returns the decoder the body goes through. Other codings are left
/// as they are: [`decode_content`](crate::decode_content) sets up any.
pub fn decode_response(
    parts: &Parts,
    config: &Config,
    status: StatusCode,
    headers: &mut HeaderMap,
    extensions: &mut Extensions,
) -> Option<GzipDecoder> {
    let coding = crate::coding::decoded_coding(parts, config, status, headers);
    if coding != Some(crate::Coding::Gzip) {
        return None;
    }
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    extensions.insert(Decompressed);
    GzipDecoder::new()
}

#[cfg(feature = "gzip")]
pub use decoder::GzipDecoder;

#[cfg(feature = "gzip")]
mod decoder {
    use bytes::{Buf, Bytes, BytesMut};
    use flate2::{Crc, Decompress, FlushDecompress, Status};

    use super::{GzipError, MAX_OUTPUT_PIECE};

    /// RFC 1952 section 2.3.1 header flags.
    const FHCRC: u8 = 1 << 1;
    const FEXTRA: u8 = 1 << 2;
    const FNAME: u8 = 1 << 3;
    const FCOMMENT: u8 = 1 << 4;
    const FRESERVED: u8 = 0b1110_0000;
    /// ID1, ID2, CM (8 = deflate).
    const MAGIC: [u8; 3] = [0x1f, 0x8b, 8];
    /// ID1 ID2 CM FLG MTIME(4) XFL OS.
    const FIXED_HEADER: u8 = 10;
    /// The longest file name or comment taken, its zero byte excluded.
    pub(super) const MAX_TEXT: u16 = 1024;

    /// A streaming gzip decoder: compressed pieces in
    /// ([`handle_input`](Self::handle_input)), decoded pieces out
    /// ([`poll_output`](Self::poll_output)), then the end of the body
    /// ([`handle_end`](Self::handle_end)), which fails unless the last
    /// member's trailer was read and checked. Concatenated members are
    /// decoded one after the other (RFC 1952 section 2.2).
    ///
    /// ```
    /// use std::io::Write;
    /// use roundtrip_io::GzipDecoder;
    ///
    /// let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    /// enc.write_all(b"hello, gzip").unwrap();
    /// let gz = enc.finish().unwrap();
    ///
    /// let mut dec = GzipDecoder::new().unwrap();
    /// let mut out = Vec::new();
    /// for piece in gz.chunks(5) {
    ///     dec.handle_input(bytes::Bytes::copy_from_slice(piece));
    ///     while let Some(data) = dec.poll_output().unwrap() {
    ///         out.extend_from_slice(&data);
    ///     }
    /// }
    /// dec.handle_end().unwrap();
    /// assert_eq!(out, b"hello, gzip");
    /// ```
    pub struct GzipDecoder {
        state: State,
        inflate: Decompress,
        /// CRC-32 and length of the member's decoded data.
        crc: Crc,
        /// Compressed bytes not decoded yet.
        input: Bytes,
        /// Compressed bytes consumed so far.
        offset: u64,
        /// The last inflate call filled its output: more may be pending
        /// inside the inflater without more input.
        full: bool,
    }

    impl std::fmt::Debug for GzipDecoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("GzipDecoder")
                .field("state", &self.state)
                .field("offset", &self.offset)
                .finish_non_exhaustive()
        }
    }

    #[derive(Debug)]
    enum State {
        /// Before the first member: an empty body is an empty body (as Go's
        /// `gzip.NewReader` reports `io.EOF`).
        Start,
        Header(Header),
        Deflate,
        /// Trailer bytes collected so far.
        Trailer {
            bytes: [u8; 8],
            have: u8,
        },
        /// A member ended; more input starts another.
        Between,
        /// An error was returned: it is returned again (an error is final).
        Failed(GzipError),
    }

    /// Where a header scan stands: bytes seen, flags, and the part being read.
    #[derive(Debug)]
    struct Header {
        seen: u8,
        flags: u8,
        /// Bytes of the file name or comment read so far.
        text: u16,
        part: Part,
        crc: Crc16,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Part {
        Fixed,
        ExtraLen { low: Option<u8> },
        Extra { left: u16 },
        Name,
        Comment,
        HeaderCrc { low: Option<u8> },
        Done,
    }

    /// The CRC-32 of the header bytes, whose low 16 bits FHCRC carries.
    struct Crc16(Crc);

    impl std::fmt::Debug for Crc16 {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Crc16({:#06x})", self.0.sum() & 0xffff)
        }
    }

    impl Header {
        fn new() -> Self {
            Header {
                seen: 0,
                flags: 0,
                text: 0,
                part: Part::Fixed,
                crc: Crc16(Crc::new()),
            }
        }

        /// The part after `part`, skipping those the flags leave out.
        fn after(&self, part: Part) -> Part {
            let order = [
                (FEXTRA, Part::ExtraLen { low: None }),
                (FNAME, Part::Name),
                (FCOMMENT, Part::Comment),
                (FHCRC, Part::HeaderCrc { low: None }),
            ];
            let rank = |p: Part| match p {
                Part::Fixed => 0,
                Part::ExtraLen { .. } | Part::Extra { .. } => 1,
                Part::Name => 2,
                Part::Comment => 3,
                Part::HeaderCrc { .. } => 4,
                Part::Done => 5,
            };
            order
                .into_iter()
                .skip(rank(part))
                .find(|(flag, _)| self.flags & flag != 0)
                .map_or(Part::Done, |(_, next)| next)
        }

        /// Takes one header byte; `Ok(true)` once the header is complete.
        fn push(&mut self, byte: u8) -> Result<bool, ()> {
            if !matches!(self.part, Part::HeaderCrc { .. }) {
                self.crc.0.update(&[byte]);
            }
            self.part = match self.part {
                Part::Fixed => {
                    let at = self.seen;
                    self.seen += 1;
                    match at {
                        0..=2 if byte != MAGIC[at as usize] => return Err(()),
                        3 if byte & FRESERVED != 0 => return Err(()),
                        3 => {
                            self.flags = byte;
                            Part::Fixed
                        }
                        _ if self.seen == FIXED_HEADER => self.after(Part::Fixed),
                        _ => Part::Fixed,
                    }
                }
                Part::ExtraLen { low: None } => Part::ExtraLen { low: Some(byte) },
                Part::ExtraLen { low: Some(low) } => match u16::from_le_bytes([low, byte]) {
                    0 => self.after(Part::ExtraLen { low: None }),
                    left => Part::Extra { left },
                },
                Part::Extra { left: 1 } => self.after(Part::Extra { left: 0 }),
                Part::Extra { left } => Part::Extra { left: left - 1 },
                Part::Name | Part::Comment if byte == 0 => {
                    self.text = 0;
                    self.after(self.part)
                }
                // Bounded (Go's `gzip.Reader` takes 511 bytes): a name
                // that never ends would be read for ever.
                Part::Name | Part::Comment if self.text >= MAX_TEXT => return Err(()),
                Part::Name | Part::Comment => {
                    self.text += 1;
                    self.part
                }
                Part::HeaderCrc { low: None } => Part::HeaderCrc { low: Some(byte) },
                Part::HeaderCrc { low: Some(low) } => {
                    if u32::from(u16::from_le_bytes([low, byte])) != self.crc.0.sum() & 0xffff {
                        return Err(());
                    }
                    Part::Done
                }
                Part::Done => Part::Done,
            };
            Ok(self.part == Part::Done)
        }
    }

    impl GzipDecoder {
        /// A decoder before the first member. (`Option` so that a build
        /// without the `gzip` feature has the same signature and says no.)
        #[allow(clippy::unnecessary_wraps)]
        pub fn new() -> Option<Self> {
            Some(GzipDecoder {
                state: State::Start,
                inflate: Decompress::new(false),
                crc: Crc::new(),
                input: Bytes::new(),
                offset: 0,
                full: false,
            })
        }

        /// Takes the next piece of the compressed body.
        pub fn handle_input(&mut self, data: Bytes) {
            if self.input.is_empty() {
                self.input = data;
            } else if !data.is_empty() {
                let mut joined = BytesMut::with_capacity(self.input.len() + data.len());
                joined.extend_from_slice(&self.input);
                joined.extend_from_slice(&data);
                self.input = joined.freeze();
            }
        }

        /// The next decoded piece (at most [`MAX_OUTPUT_PIECE`] bytes), or
        /// `None` when more input is needed. An error is final: it is
        /// returned again by every later call.
        pub fn poll_output(&mut self) -> Result<Option<Bytes>, GzipError> {
            let polled = self.poll();
            if let Err(e) = &polled {
                self.state = State::Failed(e.clone());
            }
            super::release(&mut self.input);
            polled
        }

        fn poll(&mut self) -> Result<Option<Bytes>, GzipError> {
            // Bounded: every pass consumes input, produces output, or returns.
            loop {
                match &mut self.state {
                    State::Failed(e) => return Err(e.clone()),
                    State::Start | State::Between => {
                        if self.input.is_empty() {
                            return Ok(None);
                        }
                        self.state = State::Header(Header::new());
                    }
                    State::Header(header) => {
                        let Some(&byte) = self.input.first() else {
                            return Ok(None);
                        };
                        let at = self.offset;
                        self.input.advance(1);
                        self.offset += 1;
                        match header.push(byte) {
                            Err(()) => return Err(GzipError::InvalidHeader { offset: at }),
                            Ok(true) => {
                                self.inflate.reset(false);
                                self.crc.reset();
                                self.state = State::Deflate;
                            }
                            Ok(false) => {}
                        }
                    }
                    State::Deflate => {
                        if self.input.is_empty() && !self.full {
                            return Ok(None);
                        }
                        if let Some(data) = self.inflate_piece()? {
                            return Ok(Some(data));
                        }
                    }
                    State::Trailer { bytes, have } => {
                        let Some(&byte) = self.input.first() else {
                            return Ok(None);
                        };
                        self.input.advance(1);
                        self.offset += 1;
                        bytes[usize::from(*have)] = byte;
                        *have += 1;
                        if *have == 8 {
                            let bytes = *bytes;
                            self.check_trailer(bytes)?;
                            self.state = State::Between;
                        }
                    }
                }
            }
        }

        /// Inflates one piece; `Ok(None)` when nothing came out (input
        /// needed, or the member's data ended).
        fn inflate_piece(&mut self) -> Result<Option<Bytes>, GzipError> {
            let mut out = Vec::with_capacity(MAX_OUTPUT_PIECE);
            let before = self.inflate.total_in();
            let status = self
                .inflate
                .decompress_vec(&self.input, &mut out, FlushDecompress::None)
                .map_err(|_| GzipError::Corrupt {
                    offset: self.offset,
                })?;
            // At most the input's length, which is a usize.
            let used = usize::try_from(self.inflate.total_in() - before).unwrap_or(usize::MAX);
            self.input.advance(used.min(self.input.len()));
            self.offset += used as u64;
            self.full = out.len() == out.capacity();
            self.crc.update(&out);
            if status == Status::StreamEnd {
                self.full = false;
                self.state = State::Trailer {
                    bytes: [0; 8],
                    have: 0,
                };
            } else if used == 0 && out.is_empty() && !self.input.is_empty() {
                // No progress with input at hand: the inflater is stuck.
                return Err(GzipError::Corrupt {
                    offset: self.offset,
                });
            }
            Ok(super::piece(out))
        }

        fn check_trailer(&self, bytes: [u8; 8]) -> Result<(), GzipError> {
            let offset = self.offset - 8;
            let [c0, c1, c2, c3, l0, l1, l2, l3] = bytes;
            if u32::from_le_bytes([c0, c1, c2, c3]) != self.crc.sum() {
                return Err(GzipError::ChecksumMismatch { offset });
            }
            let expected = u32::from_le_bytes([l0, l1, l2, l3]);
            let found = self.crc.amount();
            if expected != found {
                return Err(GzipError::LengthMismatch {
                    offset,
                    expected,
                    found,
                });
            }
            Ok(())
        }

        /// The body ended. Call once [`poll_output`](Self::poll_output)
        /// returned `None`: fails unless the body ended between members.
        pub fn handle_end(&mut self) -> Result<(), GzipError> {
            match &self.state {
                State::Failed(e) => Err(e.clone()),
                State::Start | State::Between if self.input.is_empty() => Ok(()),
                _ => Err(GzipError::Truncated {
                    received: self.offset + self.input.len() as u64,
                }),
            }
        }

        /// True when no decoded byte waits inside (the last
        /// [`poll_output`](Self::poll_output) returned `None` and no input
        /// came since).
        pub fn is_drained(&self) -> bool {
            self.input.is_empty() && !self.full
        }
    }
}

#[cfg(not(feature = "gzip"))]
pub use stub::GzipDecoder;

/// Without the `gzip` feature the decoder cannot be made; the type exists so
/// that backends need no `cfg` of their own.
#[cfg(not(feature = "gzip"))]
mod stub {
    use bytes::Bytes;

    use super::GzipError;

    /// Not built: the `gzip` feature is off.
    #[derive(Debug)]
    pub struct GzipDecoder {
        never: std::convert::Infallible,
    }

    impl GzipDecoder {
        /// Always `None` without the `gzip` feature.
        pub fn new() -> Option<Self> {
            None
        }
        /// Unreachable: no decoder exists.
        pub fn handle_input(&mut self, _data: Bytes) {
            match self.never {}
        }
        /// Unreachable: no decoder exists.
        pub fn poll_output(&mut self) -> Result<Option<Bytes>, GzipError> {
            match self.never {}
        }
        /// Unreachable: no decoder exists.
        pub fn handle_end(&mut self) -> Result<(), GzipError> {
            match self.never {}
        }
        /// Unreachable: no decoder exists.
        pub fn is_drained(&self) -> bool {
            match self.never {}
        }
    }
}

#[cfg(all(test, feature = "gzip"))]
mod tests {
    use std::io::Write;

    use bytes::Bytes;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::decoder::MAX_TEXT;
    use super::*;

    #[test]
    fn small_pieces_are_copied_out_of_their_buffer() {
        let mut small = Vec::with_capacity(MAX_OUTPUT_PIECE);
        small.push(7);
        let buffer = small.as_ptr();
        let small = piece(small).unwrap();
        assert_ne!(small.as_ptr(), buffer, "1 byte must not pin 64 KiB");
        assert_eq!(&small[..], [7]);
        let mut large = Vec::with_capacity(MAX_OUTPUT_PIECE);
        large.resize(MAX_OUTPUT_PIECE / 4, 1);
        let buffer = large.as_ptr();
        assert_eq!(piece(large).unwrap().as_ptr(), buffer, "handed over whole");
        assert!(piece(Vec::with_capacity(8)).is_none());
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).expect("in memory");
        enc.finish().expect("in memory")
    }

    /// Feeds `pieces`, then the end; every output piece is bounded.
    fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, GzipError> {
        let mut dec = GzipDecoder::new().expect("gzip feature");
        let mut out = Vec::new();
        for piece in pieces {
            dec.handle_input(Bytes::copy_from_slice(piece));
            while let Some(data) = dec.poll_output()? {
                assert!(!data.is_empty() && data.len() <= MAX_OUTPUT_PIECE);
                out.extend_from_slice(&data);
            }
        }
        dec.handle_end()?;
        Ok(out)
    }

    /// Whole, split at every byte boundary, and byte by byte: one answer.
    fn decode_every_split(stream: &[u8]) -> Result<Vec<u8>, GzipError> {
        let whole = decode(&[stream]);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(decode(&[a, b]), whole, "split at {at}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(&bytes), whole, "byte by byte");
        whole
    }

    fn text(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"gzip roundtrip "[i % 15]).collect()
    }

    #[test]
    fn decodes_at_every_split() {
        for data in [Vec::new(), b"x".to_vec(), text(3000)] {
            assert_eq!(decode_every_split(&gz(&data)), Ok(data));
        }
    }

    #[test]
    fn an_error_is_returned_again_and_never_panics() {
        // A member whose CRC is wrong, then a good one, in one piece: the
        // trailer's error must stay, not read a ninth trailer byte.
        let mut stream = gz(b"one");
        let crc_at = stream.len() - 8;
        stream[crc_at] ^= 1;
        stream.extend_from_slice(&gz(b"two"));
        let mut dec = GzipDecoder::new().expect("gzip feature");
        dec.handle_input(Bytes::from(stream));
        assert_eq!(dec.poll_output().unwrap().as_deref(), Some(&b"one"[..]));
        let err = dec.poll_output().unwrap_err();
        assert!(matches!(err, GzipError::ChecksumMismatch { .. }), "{err:?}");
        assert_eq!(dec.poll_output(), Err(err.clone()));
        dec.handle_input(Bytes::from(gz(b"three")));
        assert_eq!(dec.poll_output(), Err(err.clone()));
        assert_eq!(dec.handle_end(), Err(err));
        // A bad header likewise.
        let mut dec = GzipDecoder::new().expect("gzip feature");
        dec.handle_input(Bytes::from_static(b"\x1f\x8c"));
        let err = dec.poll_output().unwrap_err();
        dec.handle_input(Bytes::from(gz(b"more")));
        assert_eq!(dec.poll_output(), Err(err));
    }

    #[test]
    fn a_file_name_that_never_ends_is_refused() {
        const FNAME: u8 = 1 << 3;
        let mut header = vec![0x1f, 0x8b, 8, FNAME, 0, 0, 0, 0, 0, 255];
        header.extend_from_slice(&vec![b'a'; usize::from(MAX_TEXT)]);
        let mut ok = header.clone();
        ok.extend_from_slice(b"\0");
        ok.extend_from_slice(&gz(b"named")[10..]);
        assert_eq!(
            decode(&[&ok]),
            Ok(b"named".to_vec()),
            "{MAX_TEXT} bytes are taken"
        );
        header.extend_from_slice(&vec![b'a'; 1 << 20]);
        let at = 10 + u64::from(MAX_TEXT);
        assert_eq!(
            decode(&[&header]),
            Err(GzipError::InvalidHeader { offset: at })
        );
    }

    #[test]
    fn used_input_lets_go_of_its_read_buffer() {
        let mut buf = bytes::BytesMut::with_capacity(65536);
        buf.extend_from_slice(&gz(b"hi"));
        let mut dec = GzipDecoder::new().expect("gzip feature");
        dec.handle_input(buf.split().freeze());
        while dec.poll_output().unwrap().is_some() {}
        assert!(buf.try_reclaim(65536), "the decoder still holds the buffer");
        dec.handle_end().unwrap();
    }

    #[test]
    fn header_fields_are_skipped_and_checked() {
        // FEXTRA + FNAME + FCOMMENT + FHCRC, built by hand around a member.
        let member = gz(b"fields");
        let mut header = vec![0x1f, 0x8b, 8, FLAGS, 0, 0, 0, 0, 0, 255];
        const FLAGS: u8 = 0b0001_1110;
        header.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        header.extend_from_slice(b"name\0comment\0");
        let mut crc = flate2::Crc::new();
        crc.update(&header);
        header.extend_from_slice(&((crc.sum() & 0xffff) as u16).to_le_bytes());
        header.extend_from_slice(&member[10..]);
        assert_eq!(decode_every_split(&header), Ok(b"fields".to_vec()));
        let hcrc_at = header.len() - (member.len() - 10) - 2;
        header[hcrc_at] ^= 1;
        assert_eq!(
            decode(&[&header]),
            Err(GzipError::InvalidHeader {
                offset: hcrc_at as u64 + 1
            })
        );
    }

    #[test]
    fn large_ratio_comes_out_in_bounded_pieces() {
        let data = vec![0u8; 5 * MAX_OUTPUT_PIECE + 17];
        assert_eq!(decode(&[&gz(&data)]), Ok(data));
    }

    #[test]
    fn members_concatenate() {
        let mut two = gz(b"one,");
        two.extend_from_slice(&gz(b"two"));
        assert_eq!(decode_every_split(&two), Ok(b"one,two".to_vec()));
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let stream = gz(&text(2000));
        for len in 1..stream.len() {
            let got = decode(&[&stream[..len]]);
            assert!(
                got.is_err(),
                "truncated to {len} decoded to {:?} bytes",
                got.map(|v| v.len())
            );
        }
        assert_eq!(decode(&[]), Ok(Vec::new()), "an empty body stays empty");
    }

    #[test]
    fn corruption_is_an_error() {
        let data = text(2000);
        let stream = gz(&data);
        let n = stream.len();
        let flip = |at: usize| {
            let mut s = stream.clone();
            s[at] ^= 0x55;
            decode(&[&s])
        };
        assert!(matches!(
            flip(0),
            Err(GzipError::InvalidHeader { offset: 0 })
        ));
        assert!(matches!(
            flip(2),
            Err(GzipError::InvalidHeader { offset: 2 })
        ));
        assert!(matches!(
            flip(n - 8),
            Err(GzipError::ChecksumMismatch { .. })
        ));
        assert!(matches!(flip(n - 2), Err(GzipError::LengthMismatch { .. })));
        // Any flipped byte fails somehow; none yields a wrong body.
        for at in 0..n {
            let got = flip(at);
            // MTIME, XFL and OS are not checked by anyone (RFC 1952).
            if (4..10).contains(&at) {
                assert_eq!(got, Ok(data.clone()));
            } else {
                assert!(got.is_err(), "flip at {at} decoded");
            }
        }
        let mut trailing = stream.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(
            decode(&[&trailing]),
            Err(GzipError::InvalidHeader { offset: n as u64 })
        );
    }

    #[test]
    fn when_to_ask_and_decode() {
        let config = Config::default();
        let p = |b: http::request::Builder| b.body(()).expect("valid").into_parts().0;
        let get = p(http::Request::get("http://h/"));
        let mut gzip = HeaderMap::new();
        gzip.insert(CONTENT_ENCODING, "GZIP".parse().expect("valid"));
        assert!(decodes(&get, &config, StatusCode::OK, &gzip));
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            assert!(!decodes(&get, &config, status, &gzip));
        }
        let mut empty = gzip.clone();
        empty.insert(CONTENT_LENGTH, "0".parse().expect("valid"));
        assert!(!decodes(&get, &config, StatusCode::OK, &empty));
        // A chunked body is framed by its chunks, not by the length beside.
        let mut chunked = empty.clone();
        chunked.insert(
            http::header::TRANSFER_ENCODING,
            "chunked".parse().expect("valid"),
        );
        assert!(decodes(&get, &config, StatusCode::OK, &chunked));
        let mut br = HeaderMap::new();
        br.insert(CONTENT_ENCODING, "br".parse().expect("valid"));
        assert_eq!(
            decodes(&get, &config, StatusCode::OK, &br),
            cfg!(feature = "brotli")
        );
        let mut x = HeaderMap::new();
        x.insert(CONTENT_ENCODING, "x-unknown".parse().expect("valid"));
        assert!(!decodes(&get, &config, StatusCode::OK, &x));
        // Not asked by us: not decoded.
        let own = p(http::Request::get("http://h/").header("accept-encoding", "gzip"));
        assert!(!decodes(&own, &config, StatusCode::OK, &gzip));
        let off = Config {
            gzip: false,
            ..Config::default()
        };
        assert!(!decodes(&get, &off, StatusCode::OK, &gzip));
        let mut defaults = Config::default();
        defaults
            .default_headers
            .insert(ACCEPT_ENCODING, "identity".parse().expect("valid"));
        assert!(!adds_gzip(&get, &defaults));
        let mut ranged = Config::default();
        ranged
            .default_headers
            .insert(RANGE, "bytes=0-9".parse().expect("valid"));
        assert!(!adds_gzip(&get, &ranged), "a default range is a range");

        let mut headers = gzip.clone();
        headers.insert(CONTENT_LENGTH, "20".parse().expect("valid"));
        let mut ext = Extensions::new();
        let dec = decode_response(&get, &config, StatusCode::OK, &mut headers, &mut ext);
        assert!(dec.is_some());
        assert!(headers.is_empty());
        assert_eq!(ext.get::<Decompressed>(), Some(&Decompressed));
    }
}
