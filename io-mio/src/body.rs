//! What goes in and comes out of an exchange: the request [`Body`], how the
//! response body is received ([`Receive`]), and the finished [`Response`].

use std::fmt;
use std::io::Read;

use std::ops::Deref;

use bytes::Bytes;
use roundtrip_io::http::{HeaderMap, Uri};
use roundtrip_io::{BodyUrl, ResponseHead};

/// A finished response: head and the body collected in memory (empty when it
/// was streamed to a [`Receive::Stream`] callback). Trailers of a chunked
/// body are in the extensions as [`Trailers`].
///
/// ```
/// use roundtrip_mio::{Response, ResponseBody, Trailers};
/// fn checksum(response: &Response) -> Option<&str> {
///     let trailers = response.extensions().get::<Trailers>()?;
///     trailers.0.get("x-checksum")?.to_str().ok()
/// }
/// assert_eq!(checksum(&Response::new(ResponseBody::default())), None);
/// ```
pub type Response = roundtrip_io::http::Response<ResponseBody>;

/// The body of a finished [`Response`]: its bytes, collected in memory
/// (empty when they were streamed to a [`Receive::Stream`] callback), and
/// the URL that answered, which
/// [`ResponseExt::url`](roundtrip_io::ResponseExt::url) reads
/// ([`BodyUrl`]; carried here, it costs the response no allocation). It
/// dereferences to its [`Bytes`] and compares with byte strings.
///
/// ```
/// use roundtrip_mio::{ResponseBody, ResponseExt};
/// let body = ResponseBody::from(bytes::Bytes::from_static(b"hello"));
/// assert_eq!(body.len(), 5);
/// assert_eq!(body, "hello");
/// let response = roundtrip_mio::Response::new(body);
/// assert_eq!(response.url(), None); // made here, not received
/// let bytes: bytes::Bytes = response.into_body().into();
/// assert_eq!(bytes, "hello");
/// ```
#[derive(Clone, Debug, Default)]
pub struct ResponseBody {
    bytes: Bytes,
    url: Option<Uri>,
}

impl ResponseBody {
    pub(crate) fn received(bytes: Bytes, url: Uri) -> ResponseBody {
        let url = Some(url);
        ResponseBody { bytes, url }
    }

    /// The body's bytes.
    ///
    /// ```
    /// let body = roundtrip_mio::ResponseBody::from(bytes::Bytes::from_static(b"hi"));
    /// assert_eq!(body.bytes(), "hi");
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The body's bytes, taken.
    ///
    /// ```
    /// let body = roundtrip_mio::ResponseBody::from(bytes::Bytes::from_static(b"hi"));
    /// assert_eq!(body.into_bytes(), "hi");
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl BodyUrl for ResponseBody {
    fn url(&self) -> Option<&Uri> {
        self.url.as_ref()
    }
}

impl Deref for ResponseBody {
    type Target = Bytes;

    fn deref(&self) -> &Bytes {
        &self.bytes
    }
}

impl AsRef<[u8]> for ResponseBody {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A body made by hand (knowing no URL).
impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> ResponseBody {
        ResponseBody { bytes, url: None }
    }
}

impl From<ResponseBody> for Bytes {
    fn from(body: ResponseBody) -> Bytes {
        body.bytes
    }
}

/// Equal when the bytes are: the URL is where they came from, not what
/// they are.
impl<T: ?Sized> PartialEq<T> for ResponseBody
where
    Bytes: PartialEq<T>,
{
    fn eq(&self, other: &T) -> bool {
        self.bytes == *other
    }
}

/// The trailer fields of a chunked response body, in the response's
/// extensions when there were any.
///
/// ```
/// use roundtrip_mio::Trailers;
/// let mut response = roundtrip_mio::Response::new(Default::default());
/// response.extensions_mut().insert(Trailers(Default::default()));
/// assert!(response.extensions().get::<Trailers>().is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailers(pub HeaderMap);

/// Names one submitted request; its result comes back with the same id.
///
/// ```no_run
/// let mut driver = roundtrip_mio::Driver::new()?;
/// let id = driver.get("http://127.0.0.1:8080/").submit();
/// for (done, result) in driver.run_until_idle()? {
///     assert_eq!(done, id);
///     println!("{id}: {:?}", result.map(|r| r.status()));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId {
    pub(crate) serial: u64,
    pub(crate) slot: usize,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request#{}", self.serial)
    }
}

/// What a [`Receive::Stream`] callback tells the driver after each piece.
///
/// ```
/// use roundtrip_mio::Flow;
/// assert_ne!(Flow::Continue, Flow::Stop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop reading: the rest is drained when little remains (the core's
    /// `max_drain_bytes` and `drain_timeout`), else the connection is closed.
    Stop,
}

/// The callback of [`Receive::Stream`]: the response head, then one piece of
/// the body.
///
/// ```
/// use roundtrip_mio::{Flow, OnData};
/// let callback: OnData = Box::new(|head, _data| {
///     if head.status.is_success() { Flow::Continue } else { Flow::Stop }
/// });
/// # let _ = callback;
/// ```
pub type OnData = Box<dyn FnMut(&ResponseHead, Bytes) -> Flow + Send>;

/// How a response body is received.
///
/// ```
/// use roundtrip_mio::{Flow, Receive};
/// let collect = Receive::Collect { max_bytes: 1 << 20 };
/// let mut seen = 0;
/// let stream = Receive::stream(move |head, data| {
///     seen += data.len();
///     if head.status.is_success() { Flow::Continue } else { Flow::Stop }
/// });
/// # let _ = (collect, stream);
/// ```
pub enum Receive {
    /// Collect the body in memory; a body longer than `max_bytes` ends the
    /// exchange with [`Error::BodyTooLarge`](crate::Error::BodyTooLarge).
    Collect {
        /// The most body bytes accepted.
        max_bytes: u64,
    },
    /// Hand each piece of the body to a callback as it arrives (zero-copy
    /// `Bytes` cut from the read buffer); the finished response has an empty
    /// body.
    Stream(OnData),
}

impl Receive {
    /// [`Receive::Stream`] with `callback`.
    ///
    /// ```
    /// use roundtrip_mio::{Flow, Receive};
    /// let receive = Receive::stream(|_head, data| {
    ///     println!("{} bytes", data.len());
    ///     Flow::Continue
    /// });
    /// assert!(matches!(receive, Receive::Stream(_)));
    /// ```
    pub fn stream(callback: impl FnMut(&ResponseHead, Bytes) -> Flow + Send + 'static) -> Self {
        Receive::Stream(Box::new(callback))
    }
}

impl fmt::Debug for Receive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Receive::Collect { max_bytes } => write!(f, "Collect {{ max_bytes: {max_bytes} }}"),
            Receive::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A request body: empty, bytes in memory, or a reader streamed with a known
/// length or chunked (the methods are [`roundtrip_io::Body`]'s).
///
/// The reader is called on the event-loop thread whenever the socket can
/// take more, so it must not block (in-memory data, a file, a channel's
/// `try_recv`). Bytes can be sent again if a stale pooled connection forces a
/// retry; a reader only if nothing was read from it yet.
///
/// ```
/// use roundtrip_mio::Body;
/// assert_eq!(Body::from("hello").len(), Some(5));
/// let streamed = Body::from_reader(std::io::Cursor::new(vec![0u8; 10]), None);
/// assert_eq!(streamed.len(), None);
/// ```
pub type Body = roundtrip_io::Body<Box<dyn Read + Send>>;
