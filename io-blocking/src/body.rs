//! Request bodies in, response bodies out.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use roundtrip_io::http::{HeaderMap, Uri};
use roundtrip_io::{BodyUrl, Collected, Error, FinalUrl};

use crate::client::{Flow, Out, Sink};

/// Most body bytes decoded ahead of the caller when the head arrives.
const EAGER_BYTES: usize = roundtrip_io::buf::EAGER_BODY_BYTES;

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
/// The connection goes back to the pool once the body was read to its
/// end. Dropped early, the rest is drained when little remains (bounded by
/// `max_drain_bytes` and `drain_timeout`), otherwise the connection is
/// closed. The body of a `101 Switching Protocols` answer (or of a 2xx to
/// CONNECT) is empty: [`upgrade`](Self::upgrade) takes the connection.
///
/// ```no_run
/// use std::io::Read;
/// let client = roundtrip_blocking::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").send()?;
/// // At most 1 MiB: `text` and `bytes` fail past their limit
/// // (`Error::BodyTooLarge`); `Read` goes as far as the server sends,
/// // so bound it with `take` (or copy it out as it comes).
/// let mut start = Vec::new();
/// response.body_mut().take(1 << 20).read_to_end(&mut start)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ResponseBody {
    flow: Option<Flow>,
    pending: Bytes,
    /// Body pieces decoded before the caller asked (with the head).
    ready: VecDeque<Bytes>,
    /// What ended the body ahead of the caller, reported at the next read.
    ended: Option<Result<Ended, Error>>,
    /// Boxed: few bodies have trailers, and every response moves this.
    trailers: Option<Box<HeaderMap>>,
    /// The response's `Content-Type`, for the charset of [`text`](Self::text).
    content_type: Option<roundtrip_io::http::HeaderValue>,
    /// The URL that answered ([`BodyUrl`]).
    url: Option<Uri>,
}

/// What a step of the flow gave the body.
enum Got {
    /// A piece of the body.
    Piece(Bytes),
    /// This many bytes of the body, read into the caller's slice.
    Read(usize),
}

/// How the body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    End,
    Upgrade,
    /// An error was returned: every later read fails too (a caller that
    /// reads on after an error must not take the body for complete).
    Failed,
}

/// What a read after the body's error returns.
fn failed_earlier() -> Error {
    let e = io::Error::other("the body failed earlier (its error was returned by an earlier read)");
    Error::from_io(e, roundtrip_io::Phase::Body, true)
}

/// The URL of the response the body came with (none for
/// [`empty`](ResponseBody::empty)).
impl BodyUrl for ResponseBody {
    fn url(&self) -> Option<&Uri> {
        self.url.as_ref()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("open", &self.flow.is_some())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(
        flow: Flow,
        content_type: Option<roundtrip_io::http::HeaderValue>,
        FinalUrl(url): FinalUrl,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            flow: Some(flow),
            pending: Bytes::new(),
            ready: VecDeque::new(),
            ended: None,
            trailers: None,
            content_type,
            url: Some(url),
        };
        body.take_buffered();
        body
    }

    /// An empty body with no connection behind it.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            flow: None,
            pending: Bytes::new(),
            ready: VecDeque::new(),
            ended: Some(Ok(Ended::End)),
            trailers: None,
            content_type: None,
            url: None,
        }
    }

    /// Takes what the read buffer already holds without blocking: a body that
    /// arrived with its head (or an empty one) completes at once, so the
    /// connection returns to the pool even if the body is never read.
    fn take_buffered(&mut self) {
        // Bounded by the bytes already buffered (each piece consumes some),
        // and by a budget: a compressed body may decode to far more than
        // it takes in the buffer, and the caller has not asked for it yet.
        let mut taken = 0;
        while self.ended.is_none() && taken < EAGER_BYTES {
            match self.step(false) {
                Some(Ok(data)) => {
                    taken += data.len();
                    // The first piece waits in `pending`, which is read
                    // first: a body that came whole with its head needs no
                    // queue (one allocation fewer per small response).
                    if self.pending.is_empty() && self.ready.is_empty() {
                        self.pending = data;
                    } else {
                        self.ready.push_back(data);
                    }
                }
                Some(Err(e)) => self.ended = Some(Err(e)),
                None => return,
            }
        }
    }

    /// One piece from the flow; `None` when the flow would block (without
    /// `blocking`) or the body ended (recorded in `ended`).
    fn step(&mut self, blocking: bool) -> Option<Result<Bytes, Error>> {
        let flow = self.flow.as_mut()?;
        let out = flow.next(blocking);
        match self.handle(out)? {
            Ok(Got::Piece(data)) => Some(Ok(data)),
            // Unreachable: only `next_into` reads into a slice.
            Ok(Got::Read(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// One step for a caller reading into `into`: a piece, or body bytes
    /// read straight into `into`; `None` when the body ended (recorded in
    /// `ended`).
    fn step_into(&mut self, into: Sink<'_>) -> Option<Result<Got, Error>> {
        let out = self.flow.as_mut()?.next_into(into);
        self.handle(out)
    }

    /// What the flow gave: a piece, or the end recorded.
    // Inlined into both steps: out of line it cost 60 instructions per GET.
    #[inline(always)]
    fn handle(&mut self, out: Result<Option<Out>, Error>) -> Option<Result<Got, Error>> {
        let ended = match out {
            Ok(Some(Out::Data(data))) => return Some(Ok(Got::Piece(data))),
            Ok(Some(Out::Direct(n))) => return Some(Ok(Got::Read(n))),
            Ok(None) => return None,
            Ok(Some(Out::End)) => Ended::End,
            Ok(Some(Out::Upgrade)) => Ended::Upgrade,
            Ok(Some(Out::Head)) => return None, // unreachable: one head per flow
            Err(e) => {
                self.flow = None;
                self.ended = Some(Ok(Ended::Failed));
                return Some(Err(e));
            }
        };
        let flow = self.flow.as_mut()?;
        self.trailers = flow.take_trailers().map(Box::new);
        if ended == Ended::End {
            self.flow = None;
        }
        self.ended = Some(Ok(ended));
        None
    }

    /// The next piece of the body, zero-copy; `None` at the end.
    #[inline]
    pub fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        if let Some(data) = self.ready.pop_front() {
            return Ok(Some(data));
        }
        // Bounded: a step gives a piece or ends the body.
        loop {
            match &self.ended {
                Some(Ok(Ended::Failed)) => return Err(failed_earlier()),
                Some(Ok(_)) => return Ok(None),
                Some(Err(_)) => {
                    let Some(Err(e)) = self.ended.replace(Ok(Ended::Failed)) else {
                        return Ok(None); // unreachable: matched just above
                    };
                    return Err(e);
                }
                None => {}
            }
            if let Some(piece) = self.step(true) {
                return piece.map(Some);
            }
            if self.flow.is_none() && self.ended.is_none() {
                return Ok(None);
            }
        }
    }

    /// Reads the rest of the body into memory, failing past `limit` bytes.
    /// A body that arrived in one piece is returned without a copy.
    pub fn bytes(&mut self, limit: u64) -> Result<Bytes, Error> {
        let mut all = Collected::default();
        while let Some(more) = self.chunk()? {
            if let Err(e) = all.push_within(more, limit) {
                self.flow = None; // dropping it drains a little or closes
                // What was decoded ahead follows pieces now dropped: a
                // read on gets the error, not the body with a hole.
                self.pending = Bytes::new();
                self.ready.clear();
                self.ended = Some(Ok(Ended::Failed));
                return Err(e);
            }
        }
        Ok(all.freeze())
    }

    /// Reads the rest of the body as text, failing past `limit` bytes:
    /// decoded with the charset of the response's `Content-Type`, else
    /// UTF-8, malformed bytes replaced
    /// ([`decode_text`](roundtrip_io::decode_text)).
    pub fn text(&mut self, limit: u64) -> Result<String, Error> {
        let bytes = self.bytes(limit)?;
        Ok(roundtrip_io::decode_text(
            self.content_type.as_ref(),
            &bytes,
        ))
    }

    /// Reads the rest of the body, failing past `limit` bytes, and parses
    /// it as JSON.
    ///
    /// ```no_run
    /// let client = roundtrip_blocking::Client::new();
    /// let mut response = client.get("http://127.0.0.1:8080/list").send()?;
    /// let list: Vec<String> = response.body_mut().json(1 << 20)?;
    /// # Ok::<(), roundtrip_blocking::Error>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&mut self, limit: u64) -> Result<T, Error> {
        roundtrip_io::decode_json(&self.bytes(limit)?)
    }

    /// Trailer fields of a chunked body, once it was read to its end.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_deref()
    }

    /// True once the body was read to its end (or failed).
    pub fn is_end(&self) -> bool {
        self.ended.is_some() && self.ready.is_empty() && self.pending.is_empty()
    }

    /// Takes the connection of a `101 Switching Protocols` answer (or of a
    /// 2xx to CONNECT): the bytes read past the head first, then the socket.
    /// Fails for any other response.
    pub fn upgrade(mut self) -> Result<crate::Upgraded, Error> {
        if self.ended.is_none() {
            self.take_buffered();
        }
        match (&self.ended, self.flow.as_mut()) {
            (Some(Ok(Ended::Upgrade)), Some(flow)) => flow.upgrade(),
            _ => Err(Error::NotUpgraded),
        }
    }
}

impl Read for ResponseBody {
    /// Reads body bytes into `out`. Where the connection holds none of
    /// them and the body is passed on as it comes (plaintext, not
    /// decompressed), they are read from the socket straight into `out`:
    /// no read buffer in between, no copy, and the read sized by `out`.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let direct = self.pending.is_empty() && self.ready.is_empty() && self.ended.is_none();
        if direct {
            match self.step_into(Sink::Slice(out)) {
                Some(Ok(Got::Read(n))) => {
                    // A body read to its end gives its connection back now.
                    self.take_buffered();
                    return Ok(n);
                }
                Some(Ok(Got::Piece(data))) => self.pending = data,
                Some(Err(e)) => return Err(e.into()),
                None => {}
            }
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

    /// Appends the body as it comes: pieces already decoded are copied,
    /// and where the exchange allows it the rest is read from the socket
    /// straight into `buf`'s spare capacity (grown to the rest of a sized
    /// body at once). std's default would zero the spare capacity of `buf`
    /// before every `read` (up to twice the body's size for a 64 KiB body);
    /// here only the body's own bytes are written.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        // Bounded by the body: each pass appends bytes, or the body ends.
        loop {
            let buffered = !self.pending.is_empty() || !self.ready.is_empty();
            if buffered || self.ended.is_some() || self.flow.is_none() {
                let Some(data) = self.chunk()? else { break };
                buf.try_reserve(data.len())?;
                buf.extend_from_slice(&data);
                continue;
            }
            match self.step_into(Sink::Vec(buf)) {
                // Appended; a body read to its end gives its connection back.
                Some(Ok(Got::Read(_))) => self.take_buffered(),
                Some(Ok(Got::Piece(data))) => {
                    buf.try_reserve(data.len())?;
                    buf.extend_from_slice(&data);
                }
                Some(Err(e)) => return Err(e.into()),
                None => {}
            }
        }
        Ok(buf.len() - start)
    }
}
