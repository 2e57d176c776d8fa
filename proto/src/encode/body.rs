//! Body framing: BodyEncoder and the DataFrame it hands out around each piece of data.

use super::*;

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

    /// True when a sized body framed all its declared bytes: nothing but
    /// its end (which writes nothing) is left.
    ///
    /// ```
    /// use roundtrip_proto::encode::{BodyEncoder, BodyFraming};
    ///
    /// let mut body = BodyEncoder::new(BodyFraming::Length(5));
    /// assert!(!body.is_whole());
    /// body.frame_data(5).unwrap();
    /// assert!(body.is_whole());
    /// assert!(!BodyEncoder::new(BodyFraming::Chunked).is_whole());
    /// ```
    pub fn is_whole(&self) -> bool {
        matches!(self.framing, BodyFraming::Length(n) if self.framed == n)
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
    pub(super) const BARE: DataFrame = DataFrame {
        buf: [0; PREFIX_CAP],
        start: PREFIX_CAP,
        suffix: b"",
    };

    /// The frame of one chunk of `len` bytes (RFC 9112 section 7.1):
    /// `chunk-size CRLF` before, `CRLF` after; empty for `len == 0`, since a
    /// zero size would end the body.
    pub(super) fn chunk(len: u64) -> Self {
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
