//! Request bodies in, response bodies out.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::time::Instant as StdInstant;

use bytes::{Buf, Bytes};
use roundtrip_io::http::HeaderMap;
use roundtrip_io::proto::Event;
use roundtrip_io::proto::conn::Abandon;
use roundtrip_io::{
    Collected, Error, Filled, GzipDecoder, Phase, TimeoutKind, drain_buffered, trailer_into,
};

use crate::client::Client;
use crate::transport::Conn;

/// A request body: empty, bytes in memory, or a reader streamed with a known
/// length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// Bytes can be sent again if a stale pooled connection forces a retry; a
/// reader only if nothing was read from it yet.
///
/// ```
/// use roundtrip_blocking::Body;
/// let body = Body::from("hello");
/// assert_eq!(body.len(), Some(5));
/// let streamed = Body::from_reader(std::io::Cursor::new(vec![0u8; 10]), None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<Box<dyn Read + Send>>;

/// A response body, read from the connection as the caller reads it.
///
/// The connection goes back to the pool only once the body was read to its
/// end. Dropped early, the rest is drained when little remains (bounded by
/// `max_drain_bytes` and `drain_timeout`), otherwise the connection is closed.
///
/// ```no_run
/// use std::io::Read;
/// let client = roundtrip_blocking::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/")?;
/// let mut text = String::new();
/// response.body_mut().read_to_string(&mut text)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ResponseBody {
    conn: Option<Box<Conn>>,
    client: Option<Client>,
    pending: Bytes,
    trailers: Option<HeaderMap>,
    deadline: Option<StdInstant>,
    /// Body pieces decoded before the caller asked (with the head).
    ready: VecDeque<Bytes>,
    /// An error met while decoding ahead, reported at the next read.
    error: Option<Error>,
    /// Decodes a gzip body the client asked for.
    gzip: Option<GzipDecoder>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("open", &self.conn.is_some())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        conn: Box<Conn>,
        client: Client,
        deadline: Option<StdInstant>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            conn: Some(conn),
            client: Some(client),
            pending: Bytes::new(),
            trailers: None,
            deadline,
            ready: VecDeque::new(),
            error: None,
            gzip: None,
        };
        body.poll_ready();
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
            pending: Bytes::new(),
            trailers: None,
            deadline: None,
            ready: VecDeque::new(),
            error: None,
            gzip: None,
        }
    }

    /// Takes what the read buffer already holds without blocking: a body that
    /// arrived with its head (or an empty one) completes at once, so the
    /// connection returns to the pool even if the body is never read.
    fn poll_ready(&mut self) {
        // Bounded by the bytes already buffered: each event consumes some.
        loop {
            let Some(conn) = &mut self.conn else { return };
            match conn.proto.poll_event(&mut conn.read_buf) {
                Ok(Some(Event::Data(data))) => self.ready.push_back(data),
                Ok(Some(Event::Trailer(field))) => {
                    let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                    if let Err(e) = trailer_into(trailers, &field) {
                        self.error = Some(self.fail_proto(e));
                        return;
                    }
                }
                Ok(Some(Event::End)) => return self.release(),
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    self.error = Some(self.fail_proto(e));
                    return;
                }
            }
        }
    }

    /// The next piece of the body, zero-copy; `None` at the end.
    pub fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        let Some(mut gzip) = self.gzip.take() else {
            return self.raw_chunk();
        };
        let next = self.decoded_chunk(&mut gzip);
        self.gzip = Some(gzip);
        next
    }

    /// The next decoded piece: what the decoder holds, else more of the
    /// body for it. A corrupt or truncated stream is an error, never a
    /// short body.
    fn decoded_chunk(&mut self, gzip: &mut GzipDecoder) -> Result<Option<Bytes>, Error> {
        // Bounded by the body: each pass decodes, or reads a piece of it.
        loop {
            match gzip.poll_output() {
                Ok(Some(data)) => return Ok(Some(data)),
                Ok(None) => {}
                Err(e) => {
                    self.abandon();
                    return Err(e.into());
                }
            }
            match self.raw_chunk()? {
                Some(data) => gzip.handle_input(data),
                None => return gzip.handle_end().map(|()| None).map_err(Error::from),
            }
        }
    }

    /// The next piece of the body as it came (before any decoding).
    fn raw_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if let Some(data) = self.ready.pop_front() {
            return Ok(Some(data));
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        loop {
            let Some(conn) = &mut self.conn else {
                return Ok(None);
            };
            let event = match conn.proto.poll_event(&mut conn.read_buf) {
                Ok(event) => event,
                Err(e) => return Err(self.fail_proto(e)),
            };
            match event {
                Some(Event::Data(data)) if !data.is_empty() => return Ok(Some(data)),
                Some(Event::Trailer(field)) => {
                    let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                    if let Err(e) = trailer_into(trailers, &field) {
                        return Err(self.fail_proto(e));
                    }
                }
                Some(Event::End) => {
                    self.release();
                    return Ok(None);
                }
                Some(_) => {}
                None => self.fill()?,
            }
        }
    }

    /// Reads more bytes from the socket, honouring the read timeout and the
    /// request deadline.
    fn fill(&mut self) -> Result<(), Error> {
        let Some(conn) = &mut self.conn else {
            return Ok(());
        };
        let Some(client) = &self.client else {
            return Ok(());
        };
        let read_deadline = client.config().read_timeout.map(|t| StdInstant::now() + t);
        let until = roundtrip_io::earliest([read_deadline, self.deadline]);
        match conn.fill(until) {
            Ok(Filled::Bytes) => Ok(()),
            Ok(Filled::Eof) => {
                conn.proto.handle_eof();
                Ok(())
            }
            Ok(Filled::TimedOut) => {
                let passed = until.is_some_and(|at| StdInstant::now() >= at);
                if passed {
                    let kind = TimeoutKind::ReadIdle;
                    let err = Error::timed_out(kind, self.deadline, Phase::Body, true);
                    Err(self.fail(err))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(self.fail(Error::from_io(e, Phase::Body, true))),
        }
    }

    fn fail_proto(&mut self, e: roundtrip_io::proto::Error) -> Error {
        self.fail(Error::from_proto(e, Phase::Body, true))
    }

    /// Closes the connection after an error; the error is returned to the caller.
    fn fail(&mut self, e: Error) -> Error {
        if let (Some(conn), Some(client)) = (self.conn.take(), &self.client) {
            client.pool().discard(conn, e.close_reason());
        }
        e
    }

    /// The body ended: hand the connection back.
    fn release(&mut self) {
        if let (Some(conn), Some(client)) = (self.conn.take(), &self.client) {
            client.pool().checkin(conn);
        }
    }

    /// Reads the rest of the body into memory, failing past `limit` bytes.
    /// A body that arrived in one piece is returned without a copy.
    pub fn bytes(&mut self, limit: u64) -> Result<Bytes, Error> {
        let mut all = Collected::default();
        while let Some(more) = self.chunk()? {
            all.push_within(more, limit)
                .inspect_err(|_| self.abandon())?;
        }
        Ok(all.freeze())
    }

    /// Reads the rest of the body as text (invalid UTF-8 replaced), failing
    /// past `limit` bytes.
    pub fn text(&mut self, limit: u64) -> Result<String, Error> {
        let bytes = self.bytes(limit)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Trailer fields of a chunked body, once it was read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// True once the body was read to its end (or failed).
    pub fn is_end(&self) -> bool {
        self.conn.is_none()
            && self.pending.is_empty()
            && self.ready.is_empty()
            && self.gzip.as_ref().is_none_or(GzipDecoder::is_drained)
    }

    /// Gives up on the rest of the body: drain a little, or close.
    fn abandon(&mut self) {
        let (Some(mut conn), Some(client)) = (self.conn.take(), self.client.clone()) else {
            return;
        };
        if conn.proto.abandon(client.clock().now()) == Abandon::Drain {
            drain(&mut conn, &client);
        }
        // The core's verdict decides: kept if the exchange completed cleanly.
        client.pool().checkin(conn);
    }
}

/// Reads and drops body bytes until the exchange completes or the core gives
/// up (byte budget or drain deadline); the pool then reads the verdict.
fn drain(conn: &mut Conn, client: &Client) {
    let clock = client.clock();
    // Bounded: every pass reads bytes, hits EOF, or moves the clock toward
    // the drain deadline, which ends draining.
    for _ in 0..100_000 {
        if !drain_buffered(&mut conn.proto, &mut conn.read_buf) {
            return;
        }
        let until = conn.proto.poll_timeout().map(|at| clock.to_std(at));
        let filled = conn.fill(until);
        if Filled::report(filled, &mut conn.proto, clock, [None; 2], Phase::Body, true).is_err() {
            return;
        }
    }
}

impl Read for ResponseBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() {
            match self.chunk()? {
                Some(data) => self.pending = data,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.pending.len());
        out[..n].copy_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        Ok(n)
    }

    /// Appends each piece as it comes. std's default would zero the spare
    /// capacity of `buf` before every `read` (up to twice the body's size
    /// for a 64 KiB body: it grows its read size 8, 16, 32, 64 KiB); here
    /// only the body's own bytes are written.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        // Bounded by the body: each pass appends a piece, or the body ends.
        while let Some(data) = self.chunk()? {
            buf.try_reserve(data.len())?;
            buf.extend_from_slice(&data);
        }
        Ok(buf.len() - start)
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.conn.is_some() {
            self.abandon();
        }
    }
}
