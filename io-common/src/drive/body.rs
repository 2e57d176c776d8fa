//! The response body.

use std::fmt;
use std::future::poll_fn;
#[cfg(feature = "http-body")]
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;

use super::run::{Drive, Out, misuse};
use super::{Runtime, Upgraded};
use crate::{Collected, Error};

/// A response body, read from the connection as it is polled;
/// [`chunk`](Self::chunk), [`bytes`](Self::bytes) and [`text`](Self::text)
/// are the convenient ways in (and, with the `http-body` feature, it is an
/// `http_body::Body`).
///
/// The connection goes back to the pool once the body was read to its end.
/// Dropped early, the machine decides: what already arrived is drained at
/// once, the rest in a task spawned on the runtime (bounded by
/// `max_drain_bytes` and `drain_timeout`), or the connection is closed.
/// Dropping it at any point never returns a connection in the middle of an
/// exchange to the pool.
///
/// The body of a response that switched protocols (`101`, or a `2xx` to
/// `CONNECT`) is empty; [`upgrade`](Self::upgrade) then gives the connection.
///
/// ```
/// use roundtrip_io::drive::{ResponseBody, Runtime};
///
/// async fn count<R: Runtime>(body: &mut ResponseBody<R>) -> Result<usize, roundtrip_io::Error> {
///     let mut n = 0;
///     while let Some(piece) = body.chunk().await? {
///         n += piece.len();
///     }
///     Ok(n)
/// }
/// ```
pub struct ResponseBody<R: Runtime> {
    /// The exchange's machinery: boxed futures that are `Send` but not
    /// `Sync`, reached through `&mut self` only, so the body is `Sync`
    /// (as hyper's `Incoming`: it can go into a `BoxBody`, or be held by
    /// reference across an `.await` in a spawned task).
    drive: sync_wrapper::SyncWrapper<Drive<R>>,
    /// The trailers, taken from the exchange when the body ended.
    trailer_map: Option<Box<HeaderMap>>,
    /// The body ended (or failed): nothing more will be read.
    ended: bool,
    /// It failed (its error was returned), or was given up on after an
    /// error: [`chunk`](Self::chunk) and the readers keep failing.
    failed: bool,
    /// The body bytes still to come, exactly, when known (a sized body
    /// that no content decoding changes): `size_hint`, `is_end_stream`.
    remaining: Option<u64>,
    /// Trailers are reported as a frame once, after the data.
    #[cfg_attr(not(feature = "http-body"), allow(dead_code))]
    trailers_sent: bool,
    /// The response's `Content-Type`, for the charset of [`text`](Self::text).
    content_type: Option<http::HeaderValue>,
    /// The URL that answered ([`BodyUrl`](crate::BodyUrl)).
    url: Option<http::Uri>,
}

/// The URL of the response the body came with (none for
/// [`empty`](ResponseBody::empty)).
impl<R: Runtime> crate::BodyUrl for ResponseBody<R> {
    fn url(&self) -> Option<&http::Uri> {
        self.url.as_ref()
    }
}

impl<R: Runtime> fmt::Debug for ResponseBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.ended)
            .finish()
    }
}

impl<R: Runtime> ResponseBody<R> {
    pub(crate) fn new(
        drive: Drive<R>,
        content_type: Option<http::HeaderValue>,
        crate::FinalUrl(url): crate::FinalUrl,
    ) -> ResponseBody<R> {
        let remaining = drive.exact_len();
        ResponseBody {
            drive: sync_wrapper::SyncWrapper::new(drive),
            trailer_map: None,
            ended: false,
            failed: false,
            remaining,
            trailers_sent: false,
            content_type,
            url: Some(url),
        }
    }

    /// An empty body with no connection behind it.
    ///
    /// ```
    /// fn nothing<R: roundtrip_io::drive::Runtime>() -> roundtrip_io::drive::ResponseBody<R> {
    ///     roundtrip_io::drive::ResponseBody::empty()
    /// }
    /// ```
    pub fn empty() -> ResponseBody<R> {
        ResponseBody {
            drive: sync_wrapper::SyncWrapper::new(Drive::none()),
            trailer_map: None,
            ended: true,
            failed: false,
            remaining: Some(0),
            trailers_sent: true,
            content_type: None,
            url: None,
        }
    }

    /// Polls for the next data piece (decoded when the client asked for
    /// gzip); `None` at the end of the data.
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn first<R: Runtime>(body: &mut ResponseBody<R>) -> Option<bytes::Bytes> {
    ///     std::future::poll_fn(|cx| body.poll_data(cx)).await?.ok()
    /// }
    /// ```
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.failed {
            // Its error was returned already: no read of it looks like a
            // clean end (as the blocking body's reads).
            return Poll::Ready(Some(Err(failed_earlier())));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let drive = self.drive.get_mut();
        let next = match ready!(drive.poll_next(cx)) {
            Out::Data(data) => {
                self.remaining = self.remaining.map(|n| n.saturating_sub(data.len() as u64));
                return Poll::Ready(Some(Ok(data)));
            }
            Out::End => {
                self.trailer_map = drive.take_trailers().map(Box::new);
                None
            }
            Out::Upgrade => None,
            Out::Fail(e) => Some(Err(e)),
            Out::Head => Some(Err(misuse("a second response head"))),
        };
        self.ended = true;
        self.failed = matches!(next, Some(Err(_)));
        self.remaining = Some(0);
        Poll::Ready(next)
    }

    /// The next piece of the body, zero-copy; `None` at the end (and for a
    /// switched connection, which [`upgrade`](Self::upgrade) takes).
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn first<R: Runtime>(body: &mut ResponseBody<R>) -> Result<usize, roundtrip_io::Error> {
    ///     Ok(body.chunk().await?.map_or(0, |piece| piece.len()))
    /// }
    /// ```
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_data(cx)).await.transpose()
    }

    /// Reads the rest of the body into memory, failing past `limit` bytes
    /// (the rest is then given up). A body that arrived in one piece is
    /// returned without a copy.
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn all<R: Runtime>(body: &mut ResponseBody<R>) -> Result<bytes::Bytes, roundtrip_io::Error> {
    ///     body.bytes(1 << 20).await
    /// }
    /// ```
    pub async fn bytes(&mut self, limit: u64) -> Result<Bytes, Error> {
        let mut all = Collected::default();
        while let Some(more) = self.chunk().await? {
            all.push_within(more, limit).inspect_err(|_| {
                self.abandon();
                self.failed = true;
            })?;
        }
        Ok(all.freeze())
    }

    /// Reads the rest of the body as text, failing past `limit` bytes:
    /// decoded with the charset of the response's `Content-Type`, else
    /// UTF-8, malformed bytes replaced ([`decode_text`](crate::decode_text)).
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn text<R: Runtime>(body: &mut ResponseBody<R>) -> Result<String, roundtrip_io::Error> {
    ///     body.text(1 << 20).await
    /// }
    /// ```
    pub async fn text(&mut self, limit: u64) -> Result<String, Error> {
        let bytes = self.bytes(limit).await?;
        Ok(crate::decode_text(self.content_type.as_ref(), &bytes))
    }

    /// Reads the rest of the body, failing past `limit` bytes, and parses
    /// it as JSON.
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn json<R: Runtime>(body: &mut ResponseBody<R>) -> Result<Vec<u32>, roundtrip_io::Error> {
    ///     body.json(1 << 20).await
    /// }
    /// ```
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self, limit: u64) -> Result<T, Error> {
        crate::decode_json(&self.bytes(limit).await?)
    }

    /// Trailer fields of a chunked body, once it was read to its end.
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn trailers<R: Runtime>(mut body: ResponseBody<R>) -> Option<roundtrip_io::http::HeaderMap> {
    ///     body.bytes(1 << 20).await.ok()?;
    ///     body.trailers().cloned()
    /// }
    /// ```
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailer_map.as_deref()
    }

    /// Gives up on the rest of the body and waits while the machine drains
    /// it or closes the connection (bounded by `max_drain_bytes` and
    /// `drain_timeout`): once it returns, the connection is settled.
    /// Dropping the body does the same in a task of its own.
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn skip<R: Runtime>(body: ResponseBody<R>) {
    ///     body.discard().await
    /// }
    /// ```
    pub async fn discard(mut self) {
        let drive = self.drive.get_mut();
        drive.abandon();
        // Abandoned, the machine only settles the connection, then ends.
        let _ = poll_fn(|cx| drive.poll_next(cx)).await;
    }

    /// The connection of a response that switched protocols (`101
    /// Switching Protocols`, or a `2xx` to `CONNECT`): the bytes the server
    /// sent after the head first, then the socket; over `https`, through
    /// the connection's TLS session, which goes on (see [`Upgraded`]). Any
    /// other response is an error (and its body is given up).
    ///
    /// ```
    /// use roundtrip_io::drive::{ResponseBody, Runtime};
    /// async fn tunnel<R: Runtime>(body: ResponseBody<R>) -> Result<R::Upgraded, roundtrip_io::Error> {
    ///     body.upgrade().await
    /// }
    /// ```
    pub async fn upgrade(mut self) -> Result<R::Upgraded, Error> {
        let not_switched = || misuse("the response did not switch protocols");
        // Said at once, without reading (a slow body would make the
        // caller wait for its first piece, or its timeout).
        if !self.drive.get_mut().is_switched() {
            self.abandon();
            return Err(Error::NotUpgraded);
        }
        let drive = self.drive.get_mut();
        match poll_fn(|cx| drive.poll_next(cx)).await {
            Out::Upgrade => {
                let mut conn = drive.take_switched().ok_or_else(not_switched)?;
                Ok(Upgraded::from_link(conn.socket, &mut conn.link).into())
            }
            Out::Fail(e) => Err(e),
            Out::Data(_) | Out::End | Out::Head => Err(not_switched()),
        }
    }

    /// Gives up on the rest of the body: drained or closed, as the machine
    /// decides.
    fn abandon(&mut self) {
        self.ended = true;
        // Dropping the drive gives the exchange up.
        *self.drive.get_mut() = Drive::none();
    }
}

/// What a read after the body's error returns.
fn failed_earlier() -> Error {
    let e = std::io::Error::other(
        "the body failed earlier (its error was returned by an earlier read)",
    );
    Error::from_io(e, crate::Phase::Body, true)
}

#[cfg(feature = "http-body")]
impl<R: Runtime> http_body::Body for ResponseBody<R> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match ready!(this.poll_data(cx)) {
            Some(Ok(data)) => Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None if !this.trailers_sent => {
                this.trailers_sent = true;
                let trailers = this.trailers().cloned();
                Poll::Ready(trailers.map(|t| Ok(http_body::Frame::trailers(t))))
            }
            None => Poll::Ready(None),
        }
    }

    /// True once no frame will come: after the end and its trailers, or
    /// as soon as a sized body has no byte left (a sized body has no
    /// trailers), which `HEAD`, `204`, `304` and `Content-Length: 0`
    /// answers are from the start.
    fn is_end_stream(&self) -> bool {
        (self.ended && self.trailers_sent) || (!self.ended && self.remaining == Some(0))
    }

    /// Exact for a sized body that no content decoding changes (counted
    /// down as pieces are taken), else unknown.
    fn size_hint(&self) -> http_body::SizeHint {
        match (self.ended, self.remaining) {
            (true, _) => http_body::SizeHint::with_exact(0),
            (false, Some(n)) => http_body::SizeHint::with_exact(n),
            (false, None) => http_body::SizeHint::default(),
        }
    }
}
