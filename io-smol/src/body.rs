//! The request body type, the response body, and a switched connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use roundtrip_io::exchange::Action;
use roundtrip_io::http::HeaderMap;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::{Collected, Error};
use smol::io::{AsyncRead, AsyncWrite};

use crate::run::{Reader, Run, misuse};

/// A request body: empty, bytes in memory, or an async reader streamed with
/// a known length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// ```
/// use roundtrip_smol::Body;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// let streamed = Body::from_reader(smol::io::Cursor::new(vec![0u8; 10]), None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<Reader>;

/// A response body, read from the connection as it is asked for. The
/// connection goes back to the pool at its end. Dropped early, the rest is
/// drained in a detached task or the connection closed, as the machine
/// decides.
///
/// ```no_run
/// # smol::block_on(async {
/// let mut response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
/// while let Some(piece) = response.body_mut().chunk().await? {
///     println!("{} bytes", piece.len());
/// }
/// # Ok::<(), roundtrip_smol::Error>(()) });
/// ```
pub struct ResponseBody(pub(crate) Option<Run>);

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run.finish();
        }
    }
}

impl ResponseBody {
    pub(crate) fn run(&mut self) -> &mut Run {
        self.0.as_mut().expect("taken only when dropped")
    }

    /// The next piece of the body, zero-copy; `None` at the end (and for
    /// a 101 or CONNECT answer, whose connection [`upgrade`](Self::upgrade)
    /// takes).
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// let mut response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
    /// let first = response.body_mut().chunk().await?;
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match self.run().next().await? {
            Action::Data(data) => Ok(Some(data)),
            _ => Ok(None),
        }
    }

    /// Reads the rest of the body into memory, failing past `limit` bytes.
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// let mut response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
    /// let all = response.body_mut().bytes(1 << 20).await?;
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub async fn bytes(&mut self, limit: u64) -> Result<Bytes, Error> {
        let mut all = Collected::default();
        while let Some(more) = self.chunk().await? {
            all.push_within(more, limit)?;
        }
        Ok(all.freeze())
    }

    /// Gives up on the rest of the body and waits while the machine
    /// drains it or closes the connection (bounded by `max_drain_bytes`
    /// and `drain_timeout`): once it returns, the connection is settled.
    /// Dropping the body does the same in a detached task.
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// let response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
    /// response.into_body().discard().await;
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub async fn discard(mut self) {
        let run = self.run();
        run.ex.abandon(
            run.conn.as_mut().map(|c| &mut c.link),
            run.inner.clock.now(),
        );
        // Abandoned, the machine only settles the connection, then ends.
        let _ = run.next().await;
    }

    /// Trailer fields of a chunked body, once it was read to its end.
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// let mut response = roundtrip_smol::get("http://127.0.0.1:8080/").await?;
    /// response.body_mut().bytes(1 << 20).await?;
    /// println!("{:?}", response.body().trailers());
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.0.as_ref().and_then(|run| run.ex.trailers())
    }

    /// The connection of a 101 (Switching Protocols) answer, or of a 2xx
    /// answer to CONNECT: it leaves the pool and belongs to the caller.
    ///
    /// ```no_run
    /// # smol::block_on(async {
    /// use smol::io::AsyncWriteExt;
    /// let request = roundtrip_smol::http::Request::get("http://127.0.0.1:8080/chat")
    ///     .header("connection", "upgrade")
    ///     .header("upgrade", "echo")
    ///     .body(roundtrip_smol::Body::empty())
    ///     .unwrap();
    /// let response = roundtrip_smol::Client::new().request(request).await?;
    /// let mut stream = response.into_body().upgrade().await?;
    /// stream.write_all(b"hello").await.ok();
    /// # Ok::<(), roundtrip_smol::Error>(()) });
    /// ```
    pub async fn upgrade(mut self) -> Result<Upgraded, Error> {
        let run = self.run();
        // Bounded: a switched answer has no body, so the next is `Upgrade`.
        while !matches!(run.next().await?, Action::Upgrade) {
            if run.ex.is_end() {
                return Err(misuse("not a 101 or CONNECT answer"));
            }
        }
        let mut conn = run.conn.take().ok_or_else(|| misuse("already upgraded"))?;
        let mut st = run.inner.pool.lock();
        let grant = st
            .pool
            .discard(conn.link.id, &conn.link.key, CloseReason::Switched);
        run.inner.pool.deliver(&mut st, grant);
        let buf = conn.link.read_buf.split().freeze();
        Ok(Upgraded {
            buf,
            stream: conn.stream,
        })
    }
}

/// A switched connection: the bytes that came after the head first, then
/// the socket.
///
/// ```no_run
/// # async fn demo(upgraded: roundtrip_smol::Upgraded) -> std::io::Result<()> {
/// use smol::io::{AsyncReadExt, AsyncWriteExt};
/// let mut upgraded = upgraded;
/// upgraded.write_all(b"ping").await?;
/// let mut answer = [0u8; 4];
/// upgraded.read_exact(&mut answer).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Upgraded {
    buf: Bytes,
    stream: smol::Async<std::net::TcpStream>,
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.buf.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, out);
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
