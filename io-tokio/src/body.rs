//! Request bodies in, response bodies out.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant as StdInstant;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use roundtrip_io::http::HeaderMap;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::Event;
use roundtrip_io::proto::conn::Abandon;
use roundtrip_io::{BodyLen, Error, GzipDecoder, Phase, earliest, trailer_into};
use tokio::io::{AsyncRead, AsyncReadExt};

use tokio::time::{Sleep, sleep_until};
use tokio_util::io::poll_read_buf;

use crate::client::{Inner, close_reason};
use crate::transport::{Conn, Filled};

/// A request body: empty, bytes in memory, or an async reader streamed with
/// a known length or chunked.
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
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Bytes(Bytes),
    Reader {
        reader: Pin<Box<dyn AsyncRead + Send>>,
        len: Option<u64>,
        started: bool,
    },
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body { kind: Kind::Empty }
    }

    /// A body read from `reader`: `Content-Length: len` when `len` is given,
    /// chunked otherwise.
    pub fn from_reader(reader: impl AsyncRead + Send + 'static, len: Option<u64>) -> Body {
        Body {
            kind: Kind::Reader {
                reader: Box::pin(reader),
                len,
                started: false,
            },
        }
    }

    /// The length, when known.
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Empty => Some(0),
            Kind::Bytes(b) => Some(b.len() as u64),
            Kind::Reader { len, .. } => *len,
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    pub(crate) fn body_len(&self) -> BodyLen {
        match &self.kind {
            Kind::Empty => BodyLen::Empty,
            Kind::Bytes(b) => BodyLen::Known(b.len() as u64),
            Kind::Reader { len: Some(n), .. } => BodyLen::Known(*n),
            Kind::Reader { len: None, .. } => BodyLen::Unknown,
        }
    }

    pub(crate) fn is_replayable(&self) -> bool {
        !matches!(self.kind, Kind::Reader { started: true, .. })
    }

    pub(crate) fn as_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Reads the next piece of a streamed body into `buf` (0 = the end).
    pub(crate) async fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Reader {
                reader, started, ..
            } => {
                *started = true;
                reader.read(buf).await
            }
            _ => Ok(0),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Kind::Reader { len, .. } => write!(f, "Body::Reader(len={len:?})"),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            kind: Kind::Bytes(b),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(s))
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
            Poll::Ready(Ok(_)) => {
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
            self.fail(Error::Timeout {
                phase: Phase::Body,
                reached_server: true,
            });
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn fail(&mut self, e: Error) {
        if let (Some(conn), Some(client)) = (self.conn.take(), &self.client) {
            client.pool.discard(conn, close_reason(&e));
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
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        if first.len() as u64 > limit {
            return Err(self.too_large(limit));
        }
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut all = BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.chunk().await? {
            if (all.len() + more.len()) as u64 > limit {
                return Err(self.too_large(limit));
            }
            all.extend_from_slice(&more);
        }
        if all.len() as u64 > limit {
            return Err(self.too_large(limit));
        }
        Ok(all.freeze())
    }

    fn too_large(&mut self, limit: u64) -> Error {
        self.abandon();
        Error::BodyTooLarge { limit }
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
    for _ in 0..100_000 {
        loop {
            match conn.proto.poll_event(&mut conn.read_buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !conn.proto.is_draining() {
            return;
        }
        let until = conn.proto.poll_timeout().map(|at| client.clock.to_std(at));
        match conn.fill(until).await {
            Ok(Filled::Bytes) => {}
            Ok(Filled::Eof) => conn.proto.handle_eof(),
            Ok(Filled::TimedOut) => conn.proto.handle_timeout(client.clock.now()),
            Err(_) => return,
        }
    }
}

/// Reads and drops what the socket already holds of the body, until the
/// exchange completes or the core gives up (byte budget).
fn drain_ready(conn: &mut Conn) {
    // Bounded: every pass consumes bytes, or ends at EOF, WouldBlock or an error.
    for _ in 0..100_000 {
        loop {
            match conn.proto.poll_event(&mut conn.read_buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !conn.proto.is_draining() {
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
