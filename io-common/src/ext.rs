//! What users of every backend expect of a response: the final URL, an
//! error for a 4xx or 5xx status, and a body decoded as the
//! `Content-Type`'s charset says (or as JSON, with the `json` feature).

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{StatusCode, Uri};

use crate::error::Error;

/// The URL that gave a response: the one requested, or the last hop's when
/// redirects were followed. Every backend's response body carries it
/// ([`BodyUrl`]: the request's URI, moved, not copied, and no allocation of
/// a response's extensions). A response with an error status (4xx, 5xx)
/// has it in its extensions too, as this, so that the head
/// [`ResponseExt::error_for_status`] returns in [`Error::Status`] keeps it;
/// a caller who maps a body to a type of its own and wants the URL after
/// reads it first, or inserts it so. Read it with [`ResponseExt::url`],
/// which looks at the body, then the extensions.
///
/// ```
/// use roundtrip_io::{FinalUrl, ResponseExt};
/// let response = http::Response::builder()
///     .extension(FinalUrl("http://h/b".parse().unwrap()))
///     .body(())
///     .unwrap();
/// assert_eq!(response.url().unwrap(), "http://h/b");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalUrl(pub Uri);

/// A response body that may know the URL its response came from: those of
/// every backend do ([`FinalUrl`]); bodies made another way (`()`, bytes,
/// strings) do not, and a type of the caller's own says so with an empty
/// `impl` (needed for [`ResponseExt::url`] only; the other helpers take a
/// body of any type). It is where `url` looks first, so that a response
/// costs no allocation for it (an `http::Extensions` entry costs three).
///
/// ```
/// use roundtrip_io::{BodyUrl, ResponseExt};
/// struct Page(String);
/// impl BodyUrl for Page {} // knows no URL
/// let response = http::Response::new(Page("hi".into()));
/// assert_eq!(response.url(), None);
/// assert_eq!(response.body().0, "hi");
/// ```
pub trait BodyUrl {
    /// The URL of the response this body belongs to, when known.
    fn url(&self) -> Option<&Uri> {
        None
    }
}

impl BodyUrl for () {}
impl BodyUrl for Bytes {}
impl BodyUrl for Vec<u8> {}
impl BodyUrl for String {}
impl BodyUrl for &[u8] {}
impl BodyUrl for &str {}

/// The URL itself, as the body of the head an exchange hands its driver
/// (`Exchange::take_head`, after `Action::Head`).
impl BodyUrl for FinalUrl {
    fn url(&self) -> Option<&Uri> {
        Some(&self.0)
    }
}

/// The reason phrase of a status line as the server sent it, in a
/// response's extensions only when it is not the one its status code is
/// known by ([`StatusCode::canonical_reason`]; an empty or unknown one
/// counts as different), so the usual `200 OK` costs nothing. hyper keeps
/// it the same way (`hyper::ext::ReasonPhrase`). Read it with
/// [`ResponseExt::reason_phrase`], which falls back to the usual phrase.
///
/// ```
/// use roundtrip_io::ReasonPhrase;
/// use http::StatusCode;
/// assert!(ReasonPhrase::unusual(StatusCode::OK, b"OK").is_none());
/// let fine = ReasonPhrase::unusual(StatusCode::OK, b"Fine").unwrap();
/// assert_eq!(fine.as_bytes(), b"Fine");
/// assert_eq!(ReasonPhrase::unusual(StatusCode::OK, b"").unwrap().as_bytes(), b"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonPhrase(Bytes);

impl ReasonPhrase {
    /// `reason` as sent with `status`, unless it is the usual one.
    pub fn unusual(status: StatusCode, reason: &[u8]) -> Option<ReasonPhrase> {
        let usual = status.canonical_reason().map(str::as_bytes);
        (usual != Some(reason)).then(|| ReasonPhrase(Bytes::copy_from_slice(reason)))
    }

    /// The phrase's bytes (the decoder allows tab, space, visible ASCII and
    /// obs-text, RFC 9112 section 4).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The interim (1xx) responses that came before a final one, whole (status,
/// version, fields, and their own [`ReasonPhrase`] when unusual), in the
/// final response's extensions only when any came: a `103 Early Hints` and
/// its `Link` fields, say (Go's `httptrace.Got1xxResponse`, hyper's
/// `on_informational`, as a value). `101 Switching Protocols` is a final
/// response, not one of these. Read them with [`ResponseExt::interim`].
#[derive(Clone, Debug)]
pub struct InterimResponses(pub Vec<http::Response<()>>);

/// Helpers on a response of any backend, or any `http::Response<B>`
/// ([`url`](Self::url) for a body type that says whether it knows its URL:
/// [`BodyUrl`]).
pub trait ResponseExt: Sized {
    /// The response's body type.
    type Body;

    /// The URL that gave this response: the one requested, or the last
    /// hop's when redirects were followed, as reqwest's `Response::url`.
    /// The body's ([`BodyUrl`]), else a [`FinalUrl`] in the extensions.
    /// Always `Some` for a response of a roundtrip client, on every
    /// backend; `None` only for a response made some other way.
    ///
    /// ```
    /// use roundtrip_io::{FinalUrl, ResponseExt};
    /// let made = http::Response::new(());
    /// assert_eq!(made.url(), None);
    /// let answered = http::Response::new(FinalUrl("http://h/a".parse().unwrap()));
    /// assert_eq!(answered.url().unwrap(), "http://h/a");
    /// ```
    fn url(&self) -> Option<&Uri>
    where
        Self::Body: BodyUrl;

    /// `Err(Error::Status)` with the status and head for a 4xx or 5xx
    /// status (the body is dropped; the head of a roundtrip client's
    /// response keeps the URL in its extensions as a [`FinalUrl`]), the
    /// response otherwise. For a body of any type.
    ///
    /// ```
    /// use roundtrip_io::{Error, ResponseExt};
    /// let ok = http::Response::builder().status(204).body(()).unwrap();
    /// assert!(ok.error_for_status().is_ok());
    /// #[derive(Debug)]
    /// struct Opaque; // a body type of any kind
    /// let gone = http::Response::builder().status(410).header("x-why", "moved").body(Opaque).unwrap();
    /// match gone.error_for_status() {
    ///     Err(Error::Status { status, head }) => {
    ///         assert_eq!(status, 410);
    ///         assert_eq!(head.headers["x-why"], "moved");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    fn error_for_status(self) -> Result<Self, Error>;

    /// The reason phrase of the status line as the server sent it: its
    /// [`ReasonPhrase`] when unusual, else the status code's usual one
    /// (empty for a code without one).
    ///
    /// ```
    /// use roundtrip_io::{ReasonPhrase, ResponseExt};
    /// let usual = http::Response::builder().status(404).body(()).unwrap();
    /// assert_eq!(usual.reason_phrase(), b"Not Found");
    /// let reason = ReasonPhrase::unusual(http::StatusCode::NOT_FOUND, b"Nothing Here");
    /// let sent = http::Response::builder().status(404).extension(reason.unwrap()).body(()).unwrap();
    /// assert_eq!(sent.reason_phrase(), b"Nothing Here");
    /// ```
    fn reason_phrase(&self) -> &[u8];

    /// The interim (1xx) responses that came before this one
    /// ([`InterimResponses`]), in order; empty when none came.
    fn interim(&self) -> &[http::Response<()>];
}

impl<B> ResponseExt for http::Response<B> {
    type Body = B;

    fn url(&self) -> Option<&Uri>
    where
        B: BodyUrl,
    {
        let kept = || self.extensions().get::<FinalUrl>().map(|FinalUrl(uri)| uri);
        self.body().url().or_else(kept)
    }

    fn reason_phrase(&self) -> &[u8] {
        match self.extensions().get::<ReasonPhrase>() {
            Some(sent) => sent.as_bytes(),
            None => self.status().canonical_reason().unwrap_or("").as_bytes(),
        }
    }

    fn interim(&self) -> &[http::Response<()>] {
        self.extensions()
            .get::<InterimResponses>()
            .map_or(&[], |InterimResponses(heads)| heads)
    }

    fn error_for_status(self) -> Result<Self, Error> {
        let status = self.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(self);
        }
        let (head, _body) = self.into_parts();
        Err(Error::Status {
            status,
            head: crate::error::error_head(head),
        })
    }
}

/// A collected body's text and JSON, for a response whose body is already
/// in memory (`http::Response<Bytes>`, the mio backend's `Response`, any
/// body that is bytes).
///
/// ```
/// use roundtrip_io::CollectedExt;
/// let response = http::Response::builder()
///     .header("content-type", "text/plain; charset=ISO-8859-1")
///     .body(bytes::Bytes::from_static(b"caf\xe9"))
///     .unwrap();
/// assert_eq!(response.text(), "café");
/// ```
pub trait CollectedExt {
    /// The body decoded with the `Content-Type`'s charset, else UTF-8;
    /// malformed bytes are replaced.
    fn text(&self) -> String;

    /// The body parsed as JSON.
    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error>;
}

impl<B: AsRef<[u8]>> CollectedExt for http::Response<B> {
    fn text(&self) -> String {
        decode_text(self.headers().get(CONTENT_TYPE), self.body().as_ref())
    }

    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        decode_json(self.body().as_ref())
    }
}

/// The encoding a `Content-Type` names in its `charset` parameter (WHATWG
/// labels), else UTF-8.
pub fn charset(content_type: Option<&HeaderValue>) -> &'static encoding_rs::Encoding {
    let label = content_type.and_then(|v| v.to_str().ok()).and_then(|v| {
        v.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"'))
        })
    });
    label
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8)
}

/// `bytes` decoded as [`charset`] of `content_type` says (a byte order
/// mark wins, as WHATWG decoding has it); malformed bytes are replaced.
///
/// ```
/// use roundtrip_io::decode_text;
/// let latin1 = http::HeaderValue::from_static("text/html; Charset=\"latin1\"");
/// assert_eq!(decode_text(Some(&latin1), b"\xe0 la"), "à la");
/// assert_eq!(decode_text(None, b"ok \xff"), "ok \u{fffd}");
/// ```
pub fn decode_text(content_type: Option<&HeaderValue>, bytes: &[u8]) -> String {
    let (text, _, _) = charset(content_type).decode(bytes);
    text.into_owned()
}

/// `bytes` parsed as JSON.
#[cfg(feature = "json")]
pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(Error::Json)
}
