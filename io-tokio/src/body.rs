//! Request bodies in, response bodies out.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant as StdInstant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use roundtrip_io::http::HeaderMap;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::Event;
use roundtrip_io::proto::conn::Abandon;
use roundtrip_io::{
    BoxReader, Collected, Error, Filled, GzipDecoder, Phase, TimeoutKind, drain_buffered, earliest,
    trailer_into,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use tokio::time::{Sleep, sleep_until};
use tokio_util::io::poll_read_buf;

use crate::client::Inner;
use crate::transport::Conn;

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
pub struct BodyReader(Pin<Box<dyn AsyncRead + Send>>);

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

/// Reads the next piece of a streamed body into `buf` (0 = the end).
pub(crate) async fn read_chunk(body: &mut Body, buf: &mut [u8]) -> io::Result<usize> {
    match body.start_reading() {
        Some(BodyReader(reader)) => reader.read(buf).await,
        None => Ok(0),
    }
}

/// A response body, read from the connection as it is polled. Implements
/// [`http_body::Body`]; [`chunk`](Self::chunk), [`bytes`](Self::bytes) and
/// [`text`](Self::text) are the convenient ways in.
///
/// The connection goes back to the pool once the body was read to its end.
/// Dropped early, the rest is drained in a short task when little remains
/// (bounded by `max_drain_bytes` and `drain_timeout`), otherwise the
/// connection is closed. Dropping it at any point never returns a connection
/// in the middle of an exchange to the pool.
pub struct ResponseBody {
    conn: Option<Conn>,
    client: Option<Arc<Inner>>,
    ready: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// Trailers are reported as a frame once, after the data.
    trailers_sent: bool,
    deadline: Option<StdInstant>,
    /// The read-timeout / deadline timer, made on the first wait.
    timer: Option<Pin<Box<Sleep>>>,
    error: Option<Error>,
    /// Decodes a gzip body the client asked for.
    gzip: Option<GzipDecoder>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("open", &self.conn.is_some())
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        conn: Conn,
        client: Arc<Inner>,
        deadline: Option<StdInstant>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            conn: Some(conn),
            client: Some(client),
            ready: VecDeque::new(),
            trailers: None,
            trailers_sent: false,
            deadline,
            timer: None,
            error: None,
            gzip: None,
        };
        body.decode_buffered();
        body
    }

    /// Passes the body through `decoder` from now on.
    pub(crate) fn decode_with(&mut self, decoder: GzipDecoder) {
        self.gzip = Some(decoder);
    }

    /// An empty body with no connection behind it.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            conn: None,
            client: None,
            ready: VecDeque::new(),
            trailers: None,
            trailers_sent: true,
            deadline: None,
            timer: None,
            error: None,
            gzip: None,
        }
    }

    /// Decodes what the read buffer holds, without waiting. Returns true
    /// when at least one piece of data became ready.
    fn decode_buffered(&mut self) -> bool {
        let mut got = false;
        // Bounded by the bytes already buffered: each event consumes some.
        loop {
            let Some(conn) = &mut self.conn else {
                return got;
            };
            match conn.proto.poll_event(&mut conn.read_buf) {
                Ok(Some(Event::Data(data))) => {
                    if !data.is_empty() {
                        self.ready.push_back(data);
                        got = true;
                    }
                }
                Ok(Some(Event::Trailer(field))) => {
                    let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                    if let Err(e) = trailer_into(trailers, &field) {
                        self.fail(Error::from_proto(e, Phase::Body, true));
                        return got;
                    }
                }
                Ok(Some(Event::End)) => {
                    self.release();
                    return got;
                }
                Ok(Some(_)) => {}
                Ok(None) => return got,
                Err(e) => {
                    self.fail(Error::from_proto(e, Phase::Body, true));
                    return got;
                }
            }
        }
    }

    /// Polls for the next data piece, decoded when the client asked for
    /// gzip; `None` at the end of the data.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let Some(mut gzip) = self.gzip.take() else {
            return self.poll_raw(cx);
        };
        let next = self.poll_decoded(cx, &mut gzip);
        self.gzip = Some(gzip);
        next
    }

    /// The next decoded piece: what the decoder holds, else more of the
    /// body for it. A corrupt or truncated stream is an error, never a
    /// short body.
    fn poll_decoded(
        &mut self,
        cx: &mut Context<'_>,
        gzip: &mut GzipDecoder,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        // Bounded by the body: each pass decodes, or takes a piece of it.
        loop {
            match gzip.poll_output() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(None) => {}
                Err(e) => {
                    self.abandon();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ready!(self.poll_raw(cx)) {
                Some(Ok(data)) => gzip.handle_input(data),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(gzip.handle_end().err().map(|e| Err(e.into()))),
            }
        }
    }

    /// Polls for the next piece of the body as it came; `None` at the end.
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        // Bounded: each pass takes data, ends, fails, or reads bytes; a read
        // that returns nothing is Pending.
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(data)));
            }
            if let Some(e) = self.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if self.conn.is_none() {
                return Poll::Ready(None);
            }
            if self.decode_buffered() || self.conn.is_none() || self.error.is_some() {
                continue;
            }
            ready!(self.poll_fill(cx));
        }
    }

    /// Reads more bytes, honouring the read timeout and the request deadline.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(conn), Some(client)) = (&mut self.conn, &self.client) else {
            return Poll::Ready(());
        };
        conn.reserve();
        match poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.read_buf) {
            Poll::Ready(Ok(0)) => {
                conn.proto.handle_eof();
                self.timer = None;
                return Poll::Ready(());
            }
            Poll::Ready(Ok(n)) => {
                conn.sizer.record(n);
                self.timer = None; // progress: the read timeout starts over
                return Poll::Ready(());
            }
            Poll::Ready(Err(e)) => {
                self.fail(Error::from_io(e, Phase::Body, true));
                return Poll::Ready(());
            }
            Poll::Pending => {}
        }
        let read_deadline = client.config.read_timeout.map(|t| StdInstant::now() + t);
        let Some(until) = earliest([read_deadline, self.deadline]) else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(until.into())));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            let kind = TimeoutKind::ReadIdle;
            self.fail(Error::timed_out(kind, self.deadline, Phase::Body, true));
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn fail(&mut self, e: Error) {
        if let (Some(conn), Some(client)) = (self.conn.take(), &self.client) {
            client.pool.discard(conn, e.close_reason());
        }
        self.error = Some(e);
    }

    /// The body ended: hand the connection back.
    fn release(&mut self) {
        if let (Some(conn), Some(client)) = (self.conn.take(), &self.client) {
            client.pool.checkin(conn);
        }
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
        self.trailers.as_ref()
    }

    /// Gives up on the body and waits while the core drains it (within
    /// `max_drain_bytes` and `drain_timeout`), then hands the connection
    /// back with the core's verdict. Used for the body of a redirect being
    /// followed. Dropped mid-way, it closes the connection.
    pub(crate) async fn discard(mut self) {
        let (Some(conn), Some(client)) = (self.conn.take(), self.client.clone()) else {
            return;
        };
        let mut held = Draining {
            conn: Some(conn),
            client: &client,
        };
        let Some(conn) = held.conn.as_mut() else {
            return;
        };
        if conn.proto.abandon(client.clock.now()) == Abandon::Drain {
            drain(conn, &client).await;
        }
        if let Some(conn) = held.conn.take() {
            client.pool.checkin(conn);
        }
    }

    /// Gives up on the rest of the body. Drop cannot wait, so the rest is
    /// drained only as far as it already arrived (reading without waiting,
    /// within the core's byte budget); a body still incomplete then is
    /// closed. No background task is left behind.
    fn abandon(&mut self) {
        let (Some(mut conn), Some(client)) = (self.conn.take(), self.client.clone()) else {
            return;
        };
        if conn.proto.abandon(client.clock.now()) == Abandon::Drain {
            drain_ready(&mut conn);
        }
        // The core's verdict decides: kept only if the exchange completed.
        client.pool.checkin(conn);
    }
}

/// A connection being drained by [`ResponseBody::discard`]; dropped before
/// it was handed back (the future was cancelled), it is closed.
struct Draining<'a> {
    conn: Option<Conn>,
    client: &'a Inner,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.client.pool.discard(conn, CloseReason::Abandoned);
        }
    }
}

/// Reads and drops body bytes, waiting for them, until the exchange
/// completes or the core gives up (byte budget or drain deadline).
async fn drain(conn: &mut Conn, client: &Inner) {
    // Bounded: every pass reads bytes, hits EOF, or moves the clock toward
    // the drain deadline, which ends draining.
    let clock = &client.clock;
    for _ in 0..100_000 {
        if !drain_buffered(&mut conn.proto, &mut conn.read_buf) {
            return;
        }
        let until = conn.proto.poll_timeout().map(|at| clock.to_std(at));
        let filled = conn.fill(until).await;
        if Filled::report(filled, &mut conn.proto, clock, [None; 2], Phase::Body, true).is_err() {
            return;
        }
    }
}

/// Reads and drops what the socket already holds of the body, until the
/// exchange completes or the core gives up (byte budget).
fn drain_ready(conn: &mut Conn) {
    // Bounded: every pass consumes bytes, or ends at EOF, WouldBlock or an error.
    for _ in 0..100_000 {
        if !drain_buffered(&mut conn.proto, &mut conn.read_buf) {
            return;
        }
        conn.reserve();
        match conn.stream.try_read_buf(&mut conn.read_buf) {
            Ok(0) => conn.proto.handle_eof(),
            Ok(_) => {}
            Err(_) => return, // WouldBlock: the rest is not here; the verdict stays "abandoned"
        }
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
                Poll::Ready(this.trailers.clone().map(|t| Ok(Frame::trailers(t))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        // A decoder still has the end of its stream to check.
        self.conn.is_none()
            && self.ready.is_empty()
            && self.error.is_none()
            && self.trailers_sent
            && self.gzip.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.gzip.is_some() {
            return SizeHint::default(); // decoded length unknown
        }
        let buffered: u64 = self.ready.iter().map(|b| b.len() as u64).sum();
        match &self.conn {
            None => SizeHint::with_exact(buffered),
            Some(conn) => match conn.proto.remaining_body() {
                Some(rest) => SizeHint::with_exact(buffered + rest),
                None => SizeHint::default(),
            },
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.conn.is_some() {
            self.abandon();
        }
    }
}
