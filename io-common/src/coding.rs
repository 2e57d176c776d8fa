//! Transparent content codings (RFC 9110 section 8.4.1): gzip, deflate, br
//! and zstd, each behind its own cargo feature, asked for and decoded as
//! Go's transport does gzip (`addedGzip`), generalised to every enabled
//! coding.
//!
//! - Asked when [`Config::gzip`] is on (the switch covers every coding), at
//!   least one coding feature is enabled, neither the request nor the
//!   default headers set `Accept-Encoding`, the request has no `Range` and
//!   the method is not HEAD or CONNECT ([`adds_gzip`](crate::adds_gzip)).
//!   The request then says `Accept-Encoding: gzip, deflate, br, zstd`,
//!   listing the enabled codings only ([`accept_encoding`]).
//! - Decoded when we asked, the answer names exactly one coding of those
//!   asked for in `Content-Encoding`, and has a body ([`decode_content`]).
//!   Several codings, or one we did not ask for, come as they are.
//! - [`ContentDecoder`] has [`GzipDecoder`]'s sans-IO interface: pieces in,
//!   decoded pieces of at most [`MAX_OUTPUT_PIECE`] bytes out, then the
//!   end, which fails unless the stream was complete.
//!
//! ```
//! let list = roundtrip_io::accept_encoding_value();
//! assert_eq!(list.is_some(), cfg!(any(feature = "gzip", feature = "deflate", feature = "brotli", feature = "zstd")));
//! ```

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::request::Parts;
use http::{Extensions, HeaderMap, StatusCode};

use crate::config::Config;
use crate::gzip::{DecodeError, Decompressed, GzipDecoder};

/// A content coding the client can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Coding {
    /// `gzip` (RFC 1952), feature `gzip`.
    Gzip,
    /// `deflate`: the zlib format (RFC 1950) or, as some servers send it,
    /// raw deflate (RFC 1951), feature `deflate`.
    Deflate,
    /// `br` (RFC 7932), feature `brotli`.
    Brotli,
    /// `zstd` (RFC 8878), feature `zstd`.
    Zstd,
}

/// The codings this build decodes, in the order `Accept-Encoding` lists them.
const ENABLED: &[Coding] = &[
    #[cfg(feature = "gzip")]
    Coding::Gzip,
    #[cfg(feature = "deflate")]
    Coding::Deflate,
    #[cfg(feature = "brotli")]
    Coding::Brotli,
    #[cfg(feature = "zstd")]
    Coding::Zstd,
];

impl Coding {
    /// The token `Content-Encoding` and `Accept-Encoding` use.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The codings this build decodes (their features are on).
    pub fn enabled() -> &'static [Coding] {
        ENABLED
    }

    /// The enabled coding `token` names (ASCII case-insensitive, trimmed;
    /// `x-gzip` is gzip, RFC 9110 section 8.4.1.3).
    fn parse(token: &[u8]) -> Option<Coding> {
        let token = token.trim_ascii();
        let token = match token.eq_ignore_ascii_case(b"x-gzip") {
            true => b"gzip",
            false => token,
        };
        ENABLED
            .iter()
            .copied()
            .find(|c| token.eq_ignore_ascii_case(c.token().as_bytes()))
    }
}

/// The `Accept-Encoding` value the client sends when it asks: the enabled
/// codings, comma-separated; `None` when no coding feature is on.
pub fn accept_encoding_value() -> Option<&'static str> {
    static VALUE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let value = VALUE.get_or_init(|| {
        let tokens: Vec<&str> = ENABLED.iter().map(|c| c.token()).collect();
        tokens.join(", ")
    });
    (!value.is_empty()).then_some(value.as_str())
}

/// What the client adds as `Accept-Encoding` to this request, when it adds
/// it ([`adds_gzip`](crate::adds_gzip)).
pub fn accept_encoding(parts: &Parts, config: &Config) -> Option<&'static str> {
    if crate::gzip::adds_gzip(parts, config) {
        accept_encoding_value()
    } else {
        None
    }
}

/// The one enabled coding `headers` name in `Content-Encoding`; `None` when
/// absent, unknown, or more than one coding is named.
fn response_coding(headers: &HeaderMap) -> Option<Coding> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // several codings: delivered as they are
    }
    let mut tokens = value
        .as_bytes()
        .split(|&b| b == b',')
        .filter(|t| !t.trim_ascii().is_empty());
    let token = tokens.next()?;
    if tokens.next().is_some() {
        return None;
    }
    Coding::parse(token)
}

/// The coding a response to `parts` is decoded from: we asked, it names one
/// enabled coding, and it has a body (RFC 9112 section 6.3: not 1xx, 204,
/// 304, nor `Content-Length: 0` without a `Transfer-Encoding`, which
/// frames the body over it; HEAD and CONNECT never ask).
pub fn decoded_coding(
    parts: &Parts,
    config: &Config,
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<Coding> {
    if !headers.contains_key(CONTENT_ENCODING) {
        return None; // the common case: one lookup
    }
    let coding = response_coding(headers)?;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"0")
            && !headers.contains_key(http::header::TRANSFER_ENCODING);
    (!no_body && crate::gzip::adds_gzip(parts, config)).then_some(coding)
}

/// Sets up decoding of a response to `parts` when [`decoded_coding`] names a
/// coding: drops `Content-Encoding` and `Content-Length`, inserts
/// [`Decompressed`], and returns the decoder the body goes through.
pub fn decode_content(
    parts: &Parts,
    config: &Config,
    status: StatusCode,
    headers: &mut HeaderMap,
    extensions: &mut Extensions,
) -> Option<ContentDecoder> {
    let coding = decoded_coding(parts, config, status, headers)?;
    let decoder = ContentDecoder::new(coding)?;
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    extensions.insert(Decompressed);
    Some(decoder)
}

/// A streaming decoder of one content coding, with [`GzipDecoder`]'s
/// interface: compressed pieces in ([`handle_input`](Self::handle_input)),
/// decoded pieces of at most [`MAX_OUTPUT_PIECE`](crate::MAX_OUTPUT_PIECE)
/// bytes out ([`poll_output`](Self::poll_output)), then the end of the body
/// ([`handle_end`](Self::handle_end)), which fails unless the stream was
/// complete. An empty body decodes to an empty body.
#[derive(Debug)]
#[non_exhaustive]
pub enum ContentDecoder {
    /// `gzip`.
    Gzip(GzipDecoder),
    /// `deflate` (zlib or raw).
    #[cfg(feature = "deflate")]
    Deflate(deflate::DeflateDecoder),
    /// `br`.
    #[cfg(feature = "brotli")]
    Brotli(Box<brotli::BrotliDecoder>),
    /// `zstd`.
    #[cfg(feature = "zstd")]
    Zstd(Box<zstd::ZstdDecoder>),
}

impl ContentDecoder {
    /// A decoder of `coding`; `None` when its feature is off.
    pub fn new(coding: Coding) -> Option<Self> {
        match coding {
            Coding::Gzip => GzipDecoder::new().map(ContentDecoder::Gzip),
            #[cfg(feature = "deflate")]
            Coding::Deflate => Some(ContentDecoder::Deflate(deflate::DeflateDecoder::new())),
            #[cfg(feature = "brotli")]
            Coding::Brotli => Some(ContentDecoder::Brotli(Box::default())),
            #[cfg(feature = "zstd")]
            Coding::Zstd => Some(ContentDecoder::Zstd(Box::default())),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Takes the next piece of the compressed body.
    pub fn handle_input(&mut self, data: Bytes) {
        match self {
            ContentDecoder::Gzip(d) => d.handle_input(data),
            #[cfg(feature = "deflate")]
            ContentDecoder::Deflate(d) => d.handle_input(data),
            #[cfg(feature = "brotli")]
            ContentDecoder::Brotli(d) => d.handle_input(data),
            #[cfg(feature = "zstd")]
            ContentDecoder::Zstd(d) => d.handle_input(data),
        }
    }

    /// The next decoded piece, or `None` when more input is needed. An
    /// error is final.
    pub fn poll_output(&mut self) -> Result<Option<Bytes>, DecodeError> {
        match self {
            ContentDecoder::Gzip(d) => d.poll_output(),
            #[cfg(feature = "deflate")]
            ContentDecoder::Deflate(d) => d.poll_output(),
            #[cfg(feature = "brotli")]
            ContentDecoder::Brotli(d) => d.poll_output(),
            #[cfg(feature = "zstd")]
            ContentDecoder::Zstd(d) => d.poll_output(),
        }
    }

    /// The body ended. Call once [`poll_output`](Self::poll_output)
    /// returned `None`: fails unless the stream was complete.
    pub fn handle_end(&mut self) -> Result<(), DecodeError> {
        match self {
            ContentDecoder::Gzip(d) => d.handle_end(),
            #[cfg(feature = "deflate")]
            ContentDecoder::Deflate(d) => d.handle_end(),
            #[cfg(feature = "brotli")]
            ContentDecoder::Brotli(d) => d.handle_end(),
            #[cfg(feature = "zstd")]
            ContentDecoder::Zstd(d) => d.handle_end(),
        }
    }
}

/// How far the compressed bytes of a body may run ahead of
/// [`MAX_INPUT_RATIO`] times what they decode to: past it, a client's body
/// fails with [`DecodeError::NoProgress`].
///
/// ```
/// assert_eq!(roundtrip_io::MAX_INPUT_AHEAD, 1 << 20);
/// ```
pub const MAX_INPUT_AHEAD: u64 = 1 << 20;

/// How many compressed bytes each decoded byte may account for, beyond
/// [`MAX_INPUT_AHEAD`]. Stored (incompressible) data takes 1.0001; a
/// stream flushed after every small write (server-sent events, gzipped
/// with a flush per event) spends about 5 bytes a flush, so a heartbeat of
/// 3 bytes takes about 8, one of 1 byte 6; endless empty blocks decode to
/// nothing, and stay bounded, as does a hostile stream: to 16 times the
/// body limit. A ratio, not an allowance per decoded piece: how the reads
/// split the stream must not matter.
///
/// ```
/// assert_eq!(roundtrip_io::MAX_INPUT_RATIO, 16);
/// ```
pub const MAX_INPUT_RATIO: u64 = 16;

/// A [`ContentDecoder`] that counts what goes in and comes out, and fails
/// when the input runs [`MAX_INPUT_AHEAD`] ahead of the output: a body
/// limit counts decoded bytes, so input that decodes to nothing would
/// otherwise be read for ever.
#[derive(Debug)]
pub(crate) struct Decoding {
    decoder: ContentDecoder,
    taken: u64,
    given: u64,
}

impl Decoding {
    pub(crate) fn new(decoder: ContentDecoder) -> Self {
        Decoding {
            decoder,
            taken: 0,
            given: 0,
        }
    }

    /// [`ContentDecoder::handle_input`], counted.
    pub(crate) fn handle_input(&mut self, data: Bytes) {
        self.taken += data.len() as u64;
        self.decoder.handle_input(data);
    }

    /// [`ContentDecoder::poll_output`], counted; fails when more input is
    /// wanted while what came in is too far ahead.
    pub(crate) fn poll_output(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let out = self.decoder.poll_output()?;
        match &out {
            Some(piece) => self.given += piece.len() as u64,
            None if self.taken > self.allowed() => {
                return Err(DecodeError::NoProgress { offset: self.taken });
            }
            None => {}
        }
        Ok(out)
    }

    /// The most compressed bytes the output so far accounts for.
    fn allowed(&self) -> u64 {
        let covered = self.given.saturating_mul(MAX_INPUT_RATIO);
        covered.saturating_add(MAX_INPUT_AHEAD)
    }

    /// [`ContentDecoder::handle_end`].
    pub(crate) fn handle_end(&mut self) -> Result<(), DecodeError> {
        self.decoder.handle_end()
    }
}

/// Joins `data` after `input`, copying only when both have bytes (the
/// decoders that use it consume their input as it comes).
#[cfg(any(feature = "deflate", feature = "brotli", feature = "zstd"))]
fn append(input: &mut Bytes, data: Bytes) {
    if input.is_empty() {
        *input = data;
    } else if !data.is_empty() {
        let mut joined = bytes::BytesMut::with_capacity(input.len() + data.len());
        joined.extend_from_slice(input);
        joined.extend_from_slice(&data);
        *input = joined.freeze();
    }
}

#[cfg(feature = "deflate")]
mod deflate {
    use bytes::{Buf, Bytes};
    use flate2::{Decompress, FlushDecompress, Status};

    use crate::gzip::{DecodeError, MAX_OUTPUT_PIECE};

    /// HTTP `deflate`: a zlib stream (RFC 1950, Adler-32 checked), or raw
    /// deflate (RFC 1951) when the first two bytes are no zlib header.
    pub struct DeflateDecoder {
        /// `None` until two bytes tell the format.
        inflate: Option<Decompress>,
        input: Bytes,
        offset: u64,
        full: bool,
        ended: bool,
    }

    impl std::fmt::Debug for DeflateDecoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("DeflateDecoder")
                .field("offset", &self.offset)
                .field("ended", &self.ended)
                .finish_non_exhaustive()
        }
    }

    /// RFC 1950 section 2.2: CM 8, window at most 32K, no preset
    /// dictionary, and the check bits.
    fn is_zlib_header(cmf: u8, flg: u8) -> bool {
        const FDICT: u8 = 1 << 5;
        cmf & 0x0f == 8
            && cmf >> 4 <= 7
            && flg & FDICT == 0
            && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
    }

    impl DeflateDecoder {
        pub fn new() -> Self {
            DeflateDecoder {
                inflate: None,
                input: Bytes::new(),
                offset: 0,
                full: false,
                ended: false,
            }
        }

        pub fn handle_input(&mut self, data: Bytes) {
            super::append(&mut self.input, data);
        }

        pub fn poll_output(&mut self) -> Result<Option<Bytes>, DecodeError> {
            if self.ended {
                if self.input.is_empty() {
                    return Ok(None);
                }
                return Err(DecodeError::Invalid {
                    coding: "deflate",
                    offset: self.offset,
                });
            }
            let inflate = match &mut self.inflate {
                Some(inflate) => inflate,
                None if self.input.len() < 2 => return Ok(None),
                None => {
                    let zlib = is_zlib_header(self.input[0], self.input[1]);
                    self.inflate.insert(Decompress::new(zlib))
                }
            };
            if self.input.is_empty() && !self.full {
                return Ok(None);
            }
            let mut out = Vec::with_capacity(MAX_OUTPUT_PIECE);
            let before = inflate.total_in();
            let status = inflate
                .decompress_vec(&self.input, &mut out, FlushDecompress::None)
                .map_err(|_| DecodeError::Corrupt {
                    offset: self.offset,
                })?;
            let used = usize::try_from(inflate.total_in() - before).unwrap_or(usize::MAX);
            self.input.advance(used.min(self.input.len()));
            crate::gzip::release(&mut self.input);
            self.offset += used as u64;
            self.full = out.len() == out.capacity();
            if status == Status::StreamEnd {
                self.full = false;
                self.ended = true;
                if !self.input.is_empty() {
                    return Err(DecodeError::Invalid {
                        coding: "deflate",
                        offset: self.offset,
                    });
                }
            } else if used == 0 && out.is_empty() && !self.input.is_empty() {
                return Err(DecodeError::Corrupt {
                    offset: self.offset,
                });
            }
            Ok(crate::gzip::piece(out))
        }

        pub fn handle_end(&mut self) -> Result<(), DecodeError> {
            let empty = self.inflate.is_none() && self.input.is_empty();
            if (self.ended || empty) && self.input.is_empty() {
                Ok(())
            } else {
                Err(DecodeError::Truncated {
                    received: self.offset + self.input.len() as u64,
                })
            }
        }
    }
}

#[cfg(feature = "brotli")]
mod brotli {
    use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
    use bytes::{Buf, Bytes};

    use crate::gzip::{DecodeError, MAX_OUTPUT_PIECE};

    /// `br` (RFC 7932), through `brotli-decompressor`'s streaming state.
    pub struct BrotliDecoder {
        state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
        input: Bytes,
        offset: u64,
        /// The last call filled its output: more may be pending.
        full: bool,
        /// Some byte arrived: an empty body stays an empty body.
        started: bool,
        ended: bool,
        /// Where each call decodes to (zeroed once, not per call); its
        /// bytes are copied out into a piece of their own size.
        scratch: Vec<u8>,
    }

    impl Default for BrotliDecoder {
        fn default() -> Self {
            BrotliDecoder {
                state: BrotliState::new(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                ),
                input: Bytes::new(),
                offset: 0,
                full: false,
                started: false,
                ended: false,
                scratch: Vec::new(),
            }
        }
    }

    impl std::fmt::Debug for BrotliDecoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("BrotliDecoder")
                .field("offset", &self.offset)
                .field("ended", &self.ended)
                .finish_non_exhaustive()
        }
    }

    impl BrotliDecoder {
        pub fn handle_input(&mut self, data: Bytes) {
            self.started |= !data.is_empty();
            super::append(&mut self.input, data);
        }

        pub fn poll_output(&mut self) -> Result<Option<Bytes>, DecodeError> {
            let invalid = |offset| DecodeError::Invalid {
                coding: "br",
                offset,
            };
            if self.ended {
                return match self.input.is_empty() {
                    true => Ok(None),
                    false => Err(invalid(self.offset)),
                };
            }
            if self.input.is_empty() && !self.full {
                return Ok(None);
            }
            if self.scratch.is_empty() {
                self.scratch = vec![0; MAX_OUTPUT_PIECE];
            }
            let out = &mut self.scratch;
            let (mut avail_in, mut in_off) = (self.input.len(), 0);
            let (mut avail_out, mut out_off, mut total) = (out.len(), 0, 0);
            let result = BrotliDecompressStream(
                &mut avail_in,
                &mut in_off,
                &self.input,
                &mut avail_out,
                &mut out_off,
                out,
                &mut total,
                &mut self.state,
            );
            self.input.advance(in_off.min(self.input.len()));
            crate::gzip::release(&mut self.input);
            self.offset += in_off as u64;
            let out = &self.scratch[..out_off];
            self.full = false;
            match result {
                BrotliResult::ResultFailure => return Err(invalid(self.offset)),
                BrotliResult::ResultSuccess => {
                    self.ended = true;
                    if !self.input.is_empty() {
                        return Err(invalid(self.offset));
                    }
                }
                BrotliResult::NeedsMoreOutput => self.full = true,
                BrotliResult::NeedsMoreInput => {}
            }
            if out.is_empty() && in_off == 0 && !self.input.is_empty() && !self.full {
                return Err(invalid(self.offset));
            }
            Ok((!out.is_empty()).then(|| Bytes::copy_from_slice(out)))
        }

        pub fn handle_end(&mut self) -> Result<(), DecodeError> {
            if (self.ended || !self.started) && self.input.is_empty() {
                Ok(())
            } else {
                Err(DecodeError::Truncated {
                    received: self.offset + self.input.len() as u64,
                })
            }
        }
    }
}

#[cfg(feature = "zstd")]
mod zstd {
    use bytes::{Buf, Bytes};
    use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

    use crate::gzip::{DecodeError, MAX_OUTPUT_PIECE};

    const MAGIC: u32 = 0xFD2F_B528;
    /// Skippable frames: 0x184D2A50 to 0x184D2A5F (RFC 8878 section 3.1.2).
    const SKIPPABLE: u32 = 0x184D_2A50;
    /// The largest window a `zstd` content coding may need (RFC 9659
    /// section 3: encoders must not need more, decoders must support it).
    pub const MAX_WINDOW: u64 = 8 << 20;
    /// Its log2, libzstd's bound on what a frame may ask for.
    const MAX_WINDOW_LOG: u32 = 23;

    /// The window a frame header `header` (complete: magic, descriptor,
    /// window descriptor, dictionary id and content size) asks for (RFC
    /// 8878 section 3.1.1.1.2): from its window descriptor, or, for a
    /// single-segment frame, its content size.
    fn window_size(header: &[u8], single: bool, dict: usize, fcs: usize) -> u64 {
        if single {
            // A single-segment frame always has its content size.
            return content_size(header, single, dict, fcs).unwrap_or(0);
        }
        let descriptor = header[5];
        let log = 10 + u32::from(descriptor >> 3);
        let base = 1u64 << log;
        base + (base / 8) * u64::from(descriptor & 0b111)
    }

    /// The content size a frame header `header` declares, if it has the
    /// field (RFC 8878 section 3.1.1.1.4: 1, 2, 4 or 8 bytes, little
    /// endian, the 2-byte form offset by 256).
    fn content_size(header: &[u8], single: bool, dict: usize, fcs: usize) -> Option<u64> {
        if fcs == 0 {
            return None;
        }
        let at = 5 + usize::from(!single) + dict;
        let mut le = [0u8; 8];
        le[..fcs].copy_from_slice(&header[at..at + fcs]);
        let size = u64::from_le_bytes(le);
        Some(if fcs == 2 { size + 256 } else { size })
    }

    /// What the start of the input says of the frame that begins there.
    enum Frame {
        /// Not enough bytes to tell yet.
        Partial,
        /// A frame libzstd may decode (or skip).
        Fine,
    }

    /// `zstd` (RFC 8878) through libzstd's streaming decoder (the `zstd`
    /// crate), which bounds what a block regenerates (`Block_Maximum_Size`)
    /// and the window (8 MiB here); each frame's header is read here
    /// first, so that one asking for more than 8 MiB is refused with its
    /// size. Output comes in pieces of at most [`MAX_OUTPUT_PIECE`].
    pub struct ZstdDecoder {
        /// Made at the first byte: an empty body allocates nothing.
        decoder: Option<Decoder<'static>>,
        input: Bytes,
        offset: u64,
        /// The next byte starts a frame (the start, or the last one
        /// ended): the end of the body may come.
        between: bool,
        /// The last call filled its output: more may be pending.
        full: bool,
        /// Where each call decodes to (zeroed once); its bytes are copied
        /// out into a piece of their own size.
        scratch: Vec<u8>,
        /// The error returned, returned again (an error is final).
        failed: Option<DecodeError>,
    }

    impl Default for ZstdDecoder {
        fn default() -> Self {
            ZstdDecoder {
                decoder: None,
                input: Bytes::new(),
                offset: 0,
                between: true,
                full: false,
                scratch: Vec::new(),
                failed: None,
            }
        }
    }

    impl std::fmt::Debug for ZstdDecoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ZstdDecoder")
                .field("offset", &self.offset)
                .field("between", &self.between)
                .finish_non_exhaustive()
        }
    }

    impl ZstdDecoder {
        pub fn handle_input(&mut self, data: Bytes) {
            super::append(&mut self.input, data);
        }

        fn invalid(&self) -> DecodeError {
            DecodeError::Invalid {
                coding: "zstd",
                offset: self.offset,
            }
        }

        /// Reads the header of the frame the input starts with.
        fn check_frame(&self) -> Result<Frame, DecodeError> {
            let Some(magic) = self.input.get(..4) else {
                return Ok(Frame::Partial);
            };
            let magic = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
            if magic & !0xF == SKIPPABLE {
                return Ok(Frame::Fine); // libzstd skips it
            }
            if magic != MAGIC {
                return Err(self.invalid());
            }
            let Some(&fhd) = self.input.get(4) else {
                return Ok(Frame::Partial);
            };
            let single = fhd & 0b10_0000 != 0;
            let dict = [0, 1, 2, 4][usize::from(fhd & 0b11)];
            let fcs = match fhd >> 6 {
                0 => usize::from(single),
                1 => 2,
                2 => 4,
                _ => 8,
            };
            let len = 5 + usize::from(!single) + dict + fcs;
            let Some(header) = self.input.get(..len) else {
                return Ok(Frame::Partial);
            };
            let window = window_size(header, single, dict, fcs);
            if window > MAX_WINDOW {
                return Err(DecodeError::WindowTooLarge {
                    coding: "zstd",
                    offset: self.offset,
                    window,
                    limit: MAX_WINDOW,
                });
            }
            Ok(Frame::Fine)
        }

        pub fn poll_output(&mut self) -> Result<Option<Bytes>, DecodeError> {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            let polled = self.poll();
            if let Err(e) = &polled {
                self.failed = Some(e.clone());
            }
            crate::gzip::release(&mut self.input);
            polled
        }

        fn poll(&mut self) -> Result<Option<Bytes>, DecodeError> {
            // Bounded: every pass consumes input, produces output, or returns.
            loop {
                if self.input.is_empty() && !self.full {
                    return Ok(None);
                }
                if self.between && !self.input.is_empty() {
                    match self.check_frame()? {
                        Frame::Partial => return Ok(None),
                        Frame::Fine => self.between = false,
                    }
                }
                let decoder = match &mut self.decoder {
                    Some(decoder) => decoder,
                    None => {
                        let made = Decoder::new().and_then(|mut d| {
                            d.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))?;
                            Ok(d)
                        });
                        self.decoder.insert(made.map_err(|_| self.invalid())?)
                    }
                };
                if self.scratch.is_empty() {
                    self.scratch = vec![0; MAX_OUTPUT_PIECE];
                }
                let mut input = InBuffer::around(&self.input);
                let mut output = OutBuffer::around(&mut self.scratch[..]);
                let ran = decoder.run(&mut input, &mut output);
                let (used, made) = (input.pos(), output.pos());
                self.input.advance(used);
                self.offset += used as u64;
                // `Ok(0)`: a frame was decoded and flushed whole.
                let hint = ran.map_err(|_| self.invalid())?;
                self.full = made == self.scratch.len() && hint != 0;
                self.between = hint == 0;
                if made > 0 {
                    return Ok(Some(Bytes::copy_from_slice(&self.scratch[..made])));
                }
                if used == 0 && !self.full {
                    if self.input.is_empty() {
                        // A full piece's last call flushed nothing more:
                        // input wanted.
                        return Ok(None);
                    }
                    // No progress with input at hand: stuck.
                    return Err(self.invalid());
                }
            }
        }

        pub fn handle_end(&mut self) -> Result<(), DecodeError> {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if self.between && self.input.is_empty() && !self.full {
                Ok(())
            } else {
                Err(DecodeError::Truncated {
                    received: self.offset + self.input.len() as u64,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::MAX_OUTPUT_PIECE;

    type Encode = fn(&[u8]) -> Vec<u8>;

    fn encoders() -> Vec<(Coding, Encode)> {
        let gzip: Encode = |d| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(d).expect("in memory");
            e.finish().expect("in memory")
        };
        let zlib: Encode = |d| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(d).expect("in memory");
            e.finish().expect("in memory")
        };
        let raw: Encode = |d| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(d).expect("in memory");
            e.finish().expect("in memory")
        };
        let br: Encode = |d| {
            let mut out = Vec::new();
            let mut w = ::brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(d).expect("in memory");
            drop(w);
            out
        };
        let zstd: fn(&[u8]) -> Vec<u8> =
            |d| ruzstd::encoding::compress_to_vec(d, ruzstd::encoding::CompressionLevel::Fastest);
        let all = [
            (Coding::Gzip, gzip),
            (Coding::Deflate, zlib),
            (Coding::Deflate, raw),
            (Coding::Brotli, br),
            (Coding::Zstd, zstd),
        ];
        all.into_iter()
            .filter(|(c, _)| Coding::enabled().contains(c))
            .collect()
    }

    fn decode(coding: Coding, pieces: &[&[u8]]) -> Result<Vec<u8>, DecodeError> {
        let mut dec = ContentDecoder::new(coding).expect("enabled");
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

    fn text(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"every split "[i % 12]).collect()
    }

    #[test]
    fn every_split_and_byte_by_byte_decode_alike() {
        for (coding, encode) in encoders() {
            for data in [Vec::new(), b"x".to_vec(), text(700)] {
                let stream = encode(&data);
                for at in 0..=stream.len() {
                    let (a, b) = stream.split_at(at);
                    assert_eq!(
                        decode(coding, &[a, b]),
                        Ok(data.clone()),
                        "{coding:?} at {at}"
                    );
                }
                let bytes: Vec<&[u8]> = stream.chunks(1).collect();
                assert_eq!(
                    decode(coding, &bytes),
                    Ok(data.clone()),
                    "{coding:?} bytewise"
                );
            }
        }
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        for (coding, encode) in encoders() {
            let stream = encode(&text(700));
            for len in 1..stream.len() {
                assert!(
                    decode(coding, &[&stream[..len]]).is_err(),
                    "{coding:?} truncated to {len}"
                );
            }
            assert_eq!(decode(coding, &[]), Ok(Vec::new()), "empty stays empty");
        }
    }

    #[test]
    fn an_error_is_final_for_every_coding() {
        for (coding, encode) in encoders() {
            let mut stream = encode(&text(700));
            let mid = stream.len() / 2;
            for b in &mut stream[mid..] {
                *b ^= 0x55;
            }
            let mut dec = ContentDecoder::new(coding).expect("enabled");
            dec.handle_input(Bytes::from(stream));
            let err = loop {
                match dec.poll_output() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break dec.handle_end().unwrap_err(),
                    Err(e) => break e,
                }
            };
            dec.handle_input(Bytes::from(encode(b"more")));
            assert!(dec.poll_output().is_err(), "{coding:?} after {err:?}");
            assert!(dec.handle_end().is_err(), "{coding:?} after {err:?}");
        }
    }

    #[test]
    fn used_input_lets_go_of_its_read_buffer() {
        for (coding, encode) in encoders() {
            let mut buf = bytes::BytesMut::with_capacity(65536);
            buf.extend_from_slice(&encode(&text(700)));
            let mut dec = ContentDecoder::new(coding).expect("enabled");
            dec.handle_input(buf.split().freeze());
            while dec.poll_output().unwrap().is_some() {}
            assert!(buf.try_reclaim(65536), "{coding:?} holds the buffer");
            dec.handle_end().unwrap();
        }
    }

    #[test]
    fn a_bomb_comes_out_in_bounded_pieces() {
        let data = vec![0u8; 8 * MAX_OUTPUT_PIECE + 3];
        for (coding, encode) in encoders() {
            let stream = encode(&data);
            assert!(decode(coding, &[&stream]) == Ok(data.clone()), "{coding:?}");
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_skippable_frames_and_concatenated_frames() {
        let frame = |d: &[u8]| {
            ruzstd::encoding::compress_to_vec(d, ruzstd::encoding::CompressionLevel::Fastest)
        };
        let mut stream = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        stream.extend_from_slice(&frame(b"one,"));
        stream.extend_from_slice(&frame(b"two"));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(Coding::Zstd, &bytes), Ok(b"one,two".to_vec()));
        assert!(decode(Coding::Zstd, &[b"not zstd"]).is_err());
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_windows_over_8_mib_and_blocks_over_128_kib_are_refused() {
        const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
        let frame = |header: &[u8], block: &[u8]| [&MAGIC[..], header, block].concat();
        // A raw last block of "hi": header (size 2 << 3) | last.
        let hi = [0x11, 0, 0, b'h', b'i'];
        // Window descriptor 0x68: 2^(10 + 13) = 8 MiB, the limit: decoded.
        assert_eq!(
            decode(Coding::Zstd, &[&frame(&[0, 0x68], &hi)]),
            Ok(b"hi".to_vec())
        );
        // 0x69: 8 MiB + 1 MiB: refused at the header, before any block.
        let err = decode(Coding::Zstd, &[&frame(&[0, 0x69], &[])]);
        assert_eq!(
            err,
            Err(DecodeError::WindowTooLarge {
                coding: "zstd",
                offset: 0,
                window: 9 << 20,
                limit: 8 << 20
            })
        );
        // A single-segment frame's window is its content size: 2^40 here
        // (a bomb of RLE blocks would hold it all before any output).
        let mut header = vec![0xe0];
        header.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let rle = [0x03, 0x00, 0x04, b'x']; // 128 KiB of 'x', last
        let bomb = frame(&header, &rle);
        assert!(matches!(
            decode(Coding::Zstd, &[&bomb]),
            Err(DecodeError::WindowTooLarge { window, .. }) if window == 1 << 40
        ));
        // A single-segment frame of "hi" that says its size: 2 is right,
        // 3 is refused at its end (as libzstd refuses it).
        assert_eq!(
            decode(Coding::Zstd, &[&frame(&[0x20, 2], &hi)]),
            Ok(b"hi".to_vec())
        );
        assert!(matches!(
            decode(Coding::Zstd, &[&frame(&[0x20, 3], &hi)]),
            Err(DecodeError::Invalid { .. })
        ));
        // A block that claims 2 MiB - 1 is refused at its 3-byte header.
        let mut dec = ContentDecoder::new(Coding::Zstd).expect("enabled");
        dec.handle_input(Bytes::from(frame(&[0, 0x68], &[0xf9, 0xff, 0xff])));
        assert!(matches!(
            dec.poll_output(),
            Err(DecodeError::Invalid { .. })
        ));
    }

    /// One compressed block of 120 KB whose 60,000 sequences each copy
    /// 65,539 bytes (about 3.9 GB): RFC 8878 bounds what a block
    /// regenerates (`Block_Maximum_Size`, 128 KiB), and the decoder must
    /// refuse it before it allocates, not after (ruzstd 0.8 tried to).
    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_a_block_regenerating_gigabytes_is_refused() {
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x68];
        // A raw block of 8 bytes: history for the matches.
        frame.extend_from_slice(&[8 << 3, 0, 0]);
        frame.extend_from_slice(b"abcdefgh");
        // The last block, compressed: no literals; 60,000 sequences, all
        // three codes RLE (literal length 0, offset code 0, match length
        // code 52: 65,539 + 16 extra bits, all zero here); the bit stream's
        // end marker in its last byte.
        let mut block = vec![0x00, 0xff, 0x60, 0x6b, 0x54, 0, 0, 52];
        block.extend(std::iter::repeat_n(0u8, 120_000));
        block.push(0x01);
        let header = (u32::try_from(block.len()).unwrap() << 3) | (2 << 1) | 1;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(&block);
        let mut dec = ContentDecoder::new(Coding::Zstd).expect("enabled");
        dec.handle_input(Bytes::from(frame));
        let mut out = 0usize;
        let err = loop {
            match dec.poll_output() {
                Ok(Some(piece)) => out += piece.len(),
                Ok(None) => break dec.handle_end().unwrap_err(),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, DecodeError::Invalid { .. }), "{err:?}");
        assert!(
            out <= 8,
            "{out} bytes came out of a block limited to 128 KiB"
        );
    }

    /// Compressible: blocks that regenerate whole 64 KiB pieces, input
    /// ending where a piece does (the decoder took a full piece with no
    /// input left for an error).
    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_full_pieces_at_the_end_of_the_input() {
        let data = text(300_000);
        let stream = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for piece in [1, 7, 4096] {
            let pieces: Vec<&[u8]> = stream.chunks(piece).collect();
            assert_eq!(decode(Coding::Zstd, &pieces), Ok(data.clone()), "{piece}");
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_whole_blocks_fed_a_byte_at_a_time() {
        // Incompressible: raw blocks of 128 KiB, each gathered from 1-byte
        // pieces (linear: the input grows in place).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let stream = ruzstd::encoding::compress_to_vec(
            &data[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(Coding::Zstd, &bytes), Ok(data));
    }

    #[test]
    fn content_encoding_names_one_enabled_coding() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(CONTENT_ENCODING, v.parse().expect("valid"));
            }
            response_coding(&h)
        };
        let gzip = cfg!(feature = "gzip").then_some(Coding::Gzip);
        assert_eq!(with(&[" GZip "]), gzip);
        assert_eq!(with(&["X-Gzip"]), gzip);
        assert_eq!(with(&["gzip,"]), gzip);
        assert_eq!(with(&["gzip, gzip"]), None);
        assert_eq!(with(&["gzip", "gzip"]), None);
        assert_eq!(with(&["identity"]), None);
        assert_eq!(with(&[]), None);
    }

    /// Input that decodes to nothing (a gzip header, then endless empty
    /// stored blocks) fails once it is 1 MiB ahead; stored
    /// (incompressible) data, which grows when "compressed", decodes
    /// whole, and so does a stream flushed after every 3-byte write (an
    /// event stream's heartbeats), which costs more than it decodes to.
    #[test]
    fn input_far_ahead_of_its_output_fails() {
        let gzip_header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        let empty_block = [0u8, 0, 0, 0xff, 0xff];
        let mut dec = Decoding::new(ContentDecoder::new(Coding::Gzip).expect("gzip"));
        dec.handle_input(Bytes::copy_from_slice(&gzip_header));
        let mut failed = None;
        // Bounded: 2 MiB of empty blocks at most.
        for _ in 0..(2 << 20) / (empty_block.len() * 1000) {
            dec.handle_input(Bytes::from(empty_block.repeat(1000)));
            match dec.poll_output() {
                Ok(None) => {}
                Ok(Some(piece)) => panic!("decoded {} bytes of nothing", piece.len()),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            Some(DecodeError::NoProgress { offset }) => {
                assert!(offset > MAX_INPUT_AHEAD && offset < MAX_INPUT_AHEAD + 8192)
            }
            other => panic!("{other:?}"),
        }
        // 4 MiB stored: about 0.008% larger than what it decodes to.
        let data: Vec<u8> = (0..4u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(&data).expect("in memory");
        let stream = e.finish().expect("in memory");
        assert!(stream.len() > data.len());
        let mut dec = Decoding::new(ContentDecoder::new(Coding::Gzip).expect("gzip"));
        let mut out = 0;
        for piece in stream.chunks(16 * 1024) {
            dec.handle_input(Bytes::copy_from_slice(piece));
            while let Some(data) = dec.poll_output().expect("decodes") {
                out += data.len();
            }
        }
        dec.handle_end().expect("whole");
        assert_eq!(out, data.len());
        // 300,000 heartbeats of 3 bytes, each flushed: a stored block of
        // its own (8 bytes), as a flushing encoder writes incompressible
        // small pieces; then an empty final block and the trailer.
        let beats = 300_000;
        let mut stream = gzip_header.to_vec();
        let mut crc = flate2::Crc::new();
        for _ in 0..beats {
            stream.extend_from_slice(&[0, 3, 0, 0xfc, 0xff, b':', b'\n', b'\n']);
            crc.update(b":\n\n");
        }
        stream.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        stream.extend_from_slice(&crc.sum().to_le_bytes());
        stream.extend_from_slice(&(3 * beats as u32).to_le_bytes());
        let decoded = 3 * beats;
        assert!(stream.len() > decoded + decoded / 256 + MAX_INPUT_AHEAD as usize);
        // However the reads split it: a few flushes a read, or many.
        for size in [64, 4096, stream.len()] {
            let mut dec = Decoding::new(ContentDecoder::new(Coding::Gzip).expect("gzip"));
            let mut out = 0;
            for piece in stream.chunks(size) {
                dec.handle_input(Bytes::copy_from_slice(piece));
                while let Some(data) = dec.poll_output().expect("decodes") {
                    out += data.len();
                }
            }
            dec.handle_end().expect("whole");
            assert_eq!(out, decoded, "{size}");
        }
    }
}
