//! The request body every backend takes, generic over the reader a streamed
//! body is read from (`std::io::Read` for the blocking and mio backends,
//! tokio's `AsyncRead` for the tokio one).

use std::fmt;
use std::io::{self, Read};

use bytes::Bytes;

use crate::{BodyLen, Replay};

/// A request body: empty, bytes in memory, or a reader streamed with a known
/// length or chunked. `R` is the reader as a backend stores it; each backend
/// names its own `Body` (`roundtrip_blocking::Body` and `roundtrip_mio::Body`
/// are `Body<Box<dyn Read + Send>>`).
///
/// Bytes can be sent again if a stale pooled connection forces a retry; a
/// reader only if nothing was read from it yet.
///
/// ```
/// type Body = roundtrip_io::Body<Box<dyn std::io::Read + Send>>;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// assert!(Body::empty().is_empty());
/// let streamed = Body::from_reader(std::io::Cursor::new(vec![0u8; 10]), None);
/// assert_eq!(streamed.len(), None);
/// ```
pub struct Body<R> {
    kind: Kind<R>,
}

enum Kind<R> {
    Empty,
    Bytes(Bytes),
    Reader {
        reader: R,
        len: Option<u64>,
        started: bool,
    },
}

/// Makes the reader a [`Body<Self>`](Body) stores from the caller's `T`
/// ([`Body::from_reader`]).
#[diagnostic::on_unimplemented(
    message = "`{T}` is not a reader this backend's `Body` can stream",
    note = "the blocking and mio backends take `std::io::Read + Send + 'static`, the tokio one `tokio::io::AsyncRead + Send + 'static`, the smol one `futures_io::AsyncRead + Send + Unpin + 'static`"
)]
pub trait BoxReader<T> {
    /// `reader`, boxed as the body keeps it.
    fn box_reader(reader: T) -> Self;
}

impl<T: Read + Send + 'static> BoxReader<T> for Box<dyn Read + Send> {
    fn box_reader(reader: T) -> Self {
        Box::new(reader)
    }
}

/// The reader of an async body on `futures-io` (the smol backend's).
impl<T: futures_io::AsyncRead + Send + Unpin + 'static> BoxReader<T>
    for Box<dyn futures_io::AsyncRead + Send + Unpin>
{
    fn box_reader(reader: T) -> Self {
        Box::new(reader)
    }
}

impl<R> Body<R> {
    /// No body.
    ///
    /// ```
    /// # type Body = roundtrip_io::Body<Box<dyn std::io::Read + Send>>;
    /// assert!(Body::empty().is_empty());
    /// ```
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body read from `reader`: `Content-Length: len` when `len` is given,
    /// chunked otherwise.
    ///
    /// ```
    /// # type Body = roundtrip_io::Body<Box<dyn std::io::Read + Send>>;
    /// let sized = Body::from_reader(std::io::Cursor::new(b"abc".to_vec()), Some(3));
    /// assert_eq!(sized.len(), Some(3));
    /// ```
    pub fn from_reader<T>(reader: T, len: Option<u64>) -> Self
    where
        R: BoxReader<T>,
    {
        Body {
            kind: Kind::Reader {
                reader: R::box_reader(reader),
                len,
                started: false,
            },
        }
    }

    /// The length, when known.
    ///
    /// ```
    /// # type Body = roundtrip_io::Body<Box<dyn std::io::Read + Send>>;
    /// assert_eq!(Body::from(vec![0u8; 4]).len(), Some(4));
    /// ```
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Empty => Some(0),
            Kind::Bytes(b) => Some(b.len() as u64),
            Kind::Reader { len, .. } => *len,
        }
    }

    /// True for an empty body.
    ///
    /// ```
    /// # type Body = roundtrip_io::Body<Box<dyn std::io::Read + Send>>;
    /// assert!(!Body::from("x").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The framing input of [`prepare`](crate::prepare).
    pub fn body_len(&self) -> BodyLen {
        match &self.kind {
            Kind::Empty => BodyLen::Empty,
            Kind::Bytes(b) => BodyLen::Known(b.len() as u64),
            Kind::Reader { len: Some(n), .. } => BodyLen::Known(*n),
            Kind::Reader { len: None, .. } => BodyLen::Unknown,
        }
    }

    /// Can the body be sent (again) from its start?
    pub fn is_replayable(&self) -> bool {
        // A reader declared empty sends nothing: only read to check that
        // it is, it can be checked again.
        !matches!(self.kind, Kind::Reader { started: true, len, .. } if len != Some(0))
    }

    /// What a redirect can do with the body
    /// ([`Redirects::handle_response`](crate::Redirects::handle_response)).
    pub fn replay(&self) -> Replay {
        if self.is_empty() {
            Replay::Empty
        } else if self.is_replayable() {
            Replay::Replayable
        } else {
            Replay::Consumed
        }
    }

    /// The whole body when it is in memory.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The reader of a streamed body, about to be read: from now on the body
    /// cannot be sent again. `None` when the body is not a reader.
    pub fn start_reading(&mut self) -> Option<&mut R> {
        match &mut self.kind {
            Kind::Reader {
                reader, started, ..
            } => {
                *started = true;
                Some(reader)
            }
            _ => None,
        }
    }
}

impl Body<Box<dyn Read + Send>> {
    /// Reads the next piece of a streamed body into `buf` (0 = the end, and
    /// always 0 for a body that is not a reader), as
    /// [`read_body_piece`](crate::read_body_piece) does: a reader that
    /// breaks `Read`'s contract is an error.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(reader) = self.start_reading() else {
            return Ok(0);
        };
        crate::read_body_piece(reader, buf)
    }
}

impl<R> fmt::Debug for Body<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Kind::Reader { len, .. } => write!(f, "Body::Reader(len={len:?})"),
        }
    }
}

impl<R> Default for Body<R> {
    fn default() -> Self {
        Body::empty()
    }
}

impl<R> From<()> for Body<R> {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl<R> From<Bytes> for Body<R> {
    fn from(b: Bytes) -> Self {
        Body {
            kind: Kind::Bytes(b),
        }
    }
}

impl<R> From<Vec<u8>> for Body<R> {
    fn from(v: Vec<u8>) -> Self {
        Body::from(Bytes::from(v))
    }
}

impl<R> From<String> for Body<R> {
    fn from(s: String) -> Self {
        Body::from(Bytes::from(s))
    }
}

impl<R> From<&'static str> for Body<R> {
    fn from(s: &'static str) -> Self {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl<R> From<&'static [u8]> for Body<R> {
    fn from(s: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(s))
    }
}
