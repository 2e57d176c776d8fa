//! Request bodies in, response bodies and switched connections out.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use roundtrip_io::http::HeaderMap;
use roundtrip_io::{BoxReader, Collected, Error};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::client::{Drive, Out, misuse};

/// A request body: empty, bytes in memory, or an async reader streamed with
/// a known length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// Bytes can be sent again if a stale pooled connection forces a retry; a
/// reader only if nothing was read from it yet.
///
/// ```
/// use roundtrip_tokio::Body;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// let streamed = Body::from_reader(&b"0123456789"[..], None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<BodyReader>;

/// The reader a streamed [`Body`] holds: what [`Body::from_reader`] makes of
/// any `AsyncRead + Send + 'static`.
pub struct BodyReader(pub(crate) Pin<Box<dyn AsyncRead + Send>>);

impl<T: AsyncRead + Send + 'static> BoxReader<T> for BodyReader {
    fn box_reader(reader: T) -> Self {
        BodyReader(Box::pin(reader))
    }
}

impl fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyReader")
    }
}

/// A response body, read from the connection as it is polled. Implements
/// [`http_body::Body`]; [`chunk`](Self::chunk), [`bytes`](Self::bytes) and
/// [`text`](Self::text) are the convenient ways in.
///
/// The connection goes back to the pool once the body was read to its end.
/// Dropped early, the rest is drained in a short task when the core says so
/// (bounded by `max_drain_bytes` and `drain_timeout`), otherwise the
/// connection is closed. Dropping it at any point never returns a connection
/// in the middle of an exchange to the pool.
///
/// The body of a response that switched protocols (`101`, or a `2xx` to
/// `CONNECT`) is empty; [`upgrade`](Self::upgrade) then gives the connection.
pub struct ResponseBody {
    drive: Drive,
    /// The body ended (or failed): nothing more will be read.
    ended: bool,
    /// Trailers are reported as a frame once, after the data.
    trailers_sent: bool,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.ended)
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(drive: Drive) -> ResponseBody {
        ResponseBody {
            drive,
            ended: false,
            trailers_sent: false,
        }
    }

    /// An empty body with no connection behind it.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            drive: Drive::none(),
            ended: true,
            trailers_sent: true,
        }
    }

    /// Polls for the next data piece (decoded when the client asked for
    /// gzip); `None` at the end of the data.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let next = match ready!(self.drive.poll_next(cx)) {
            Out::Data(data) => return Poll::Ready(Some(Ok(data))),
            Out::End | Out::Upgrade => None,
            Out::Fail(e) => Some(Err(e)),
            Out::Head(_) => Some(Err(misuse("a second response head"))),
        };
        self.ended = true;
        Poll::Ready(next)
    }

    /// The next piece of the body, zero-copy; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_data(cx)).await.transpose()
    }

    /// Reads the rest of the body into memory, failing past `limit` bytes.
    /// A body that arrived in one piece is returned without a copy.
    pub async fn bytes(&mut self, limit: u64) -> Result<Bytes, Error> {
        let mut all = Collected::default();
        while let Some(more) = self.chunk().await? {
            all.push_within(more, limit)
                .inspect_err(|_| self.abandon())?;
        }
        Ok(all.freeze())
    }

    /// Reads the rest of the body as text (invalid UTF-8 replaced), failing
    /// past `limit` bytes.
    pub async fn text(&mut self, limit: u64) -> Result<String, Error> {
        let bytes = self.bytes(limit).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Trailer fields of a chunked body, once it was read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.drive.exchange()?.trailers()
    }

    /// The connection of a response that switched protocols (`101
    /// Switching Protocols`, or a `2xx` to `CONNECT`): the bytes the server
    /// sent after the head first, then the socket. Any other response is
    /// an error (and its body is given up).
    pub async fn upgrade(mut self) -> Result<Upgraded, Error> {
        let not_switched = || misuse("the response did not switch protocols");
        match poll_fn(|cx| self.drive.poll_next(cx)).await {
            Out::Upgrade => {
                let conn = self.drive.take_switched().ok_or_else(not_switched)?;
                Ok(Upgraded {
                    stream: conn.stream,
                    leftover: conn.link.read_buf,
                })
            }
            Out::Fail(e) => Err(e),
            Out::Data(_) | Out::End | Out::Head(_) => Err(not_switched()),
        }
    }

    /// Gives up on the rest of the body: drained or closed, as the core
    /// decides.
    fn abandon(&mut self) {
        self.ended = true;
        // Dropping the drive gives the exchange up.
        self.drive = Drive::none();
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match ready!(this.poll_data(cx)) {
            Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None if !this.trailers_sent => {
                this.trailers_sent = true;
                Poll::Ready(this.trailers().cloned().map(|t| Ok(Frame::trailers(t))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.trailers_sent
    }

    fn size_hint(&self) -> SizeHint {
        match self.ended {
            true => SizeHint::with_exact(0),
            false => SizeHint::default(),
        }
    }
}

/// A connection switched to another protocol, from
/// [`ResponseBody::upgrade`]: reads give the bytes that came right after
/// the response head first, then what the socket receives.
pub struct Upgraded {
    stream: TcpStream,
    /// Bytes received after the head, not yet read.
    leftover: BytesMut,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("leftover", &self.leftover.len())
            .finish()
    }
}

impl Upgraded {
    /// The socket, and the bytes received after the head not yet read.
    pub fn into_parts(self) -> (TcpStream, Bytes) {
        (self.stream, self.leftover.freeze())
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.leftover.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.leftover.len().min(buf.remaining());
        buf.put_slice(&this.leftover.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
