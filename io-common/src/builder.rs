//! The request builder every backend's `client.get(url)` returns, written
//! once: [`RequestBuilder`] puts together an `http::Request<Body<R>>` the
//! way reqwest's builder does (headers, query, auth, body, JSON, form,
//! per-request timeout), keeping the first error in its slot instead of
//! panicking. Each backend wraps it in its own `RequestBuilder` beside its
//! client, with the setters of [`request_setters!`](crate::request_setters)
//! and the verbs of [`request_methods!`](crate::request_methods), and adds
//! only how the request leaves: `send()` (blocking, tokio, smol) or
//! `submit()` (mio), which hands the error over as the request's.
//!
//! Nothing here checks what only the exchange can: a URI without a host, a
//! scheme other than `http`/`https`, a `Content-Length` that contradicts
//! the body are refused when the request is prepared, as for a request
//! built by hand.
//!
//! There is no per-request tracer: the connection events of a trace
//! (`PutIdleConn`, `ConnClosed`) come from each backend's pool, which
//! reports to the client's tracer, so a request's own tracer would see
//! only part of its trace. The client's `trace(Tracer::with_ids(..))`
//! tells the requests apart instead.

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};

use crate::{Body, Error, InvalidRequest, RequestTimeout};

/// What a request's URL can be given as: `&str`, `String`, `&String`,
/// `http::Uri`, `&Uri`, `http::uri::Parts` and bytes (what `http::Uri`
/// converts from). A URL that does not parse fails the request when it is
/// sent, as [`InvalidRequest::Http`](crate::InvalidRequest::Http).
///
/// ```
/// use roundtrip_io::IntoUri;
/// assert_eq!(IntoUri::into_uri("http://h/a").unwrap(), "http://h/a");
/// assert_eq!(IntoUri::into_uri(String::from("http://h/b")).unwrap().path(), "/b");
/// assert!(IntoUri::into_uri("http://exa mple/").is_err());
/// ```
pub trait IntoUri {
    /// The URI, or why it is not one.
    fn into_uri(self) -> Result<Uri, http::Error>;
}

impl IntoUri for &str {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(Uri::from_maybe_shared(roundtrip_proto::copy::shared_copy(
            self.as_bytes(),
        ))?)
    }
}

impl IntoUri for &String {
    fn into_uri(self) -> Result<Uri, http::Error> {
        self.as_str().into_uri()
    }
}

/// `http` takes the string's own buffer.
impl IntoUri for String {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(Uri::try_from(self)?)
    }
}

impl IntoUri for Uri {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(self)
    }
}

impl IntoUri for &Uri {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(self.clone())
    }
}

impl IntoUri for http::uri::Parts {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(Uri::from_parts(self)?)
    }
}

impl IntoUri for &[u8] {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(Uri::from_maybe_shared(roundtrip_proto::copy::shared_copy(
            self,
        ))?)
    }
}

impl IntoUri for Vec<u8> {
    fn into_uri(self) -> Result<Uri, http::Error> {
        Ok(Uri::try_from(self)?)
    }
}

/// A request being put together: an `http::Request<Body<R>>`, or the first
/// error met while building it (a URL or header that does not parse, a
/// value that cannot be serialized). Every setter after an error does
/// nothing; [`build`](Self::build) returns the error.
///
/// ```
/// type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
///
/// let request = Builder::new(http::Method::POST, "http://127.0.0.1:8080/items?x=1")
///     .query(&[("tag", "a b"), ("q", "é&")])
///     .bearer_auth("t0ken")
///     .form(&[("name", "J Doe")])
///     .build()
///     .unwrap();
/// assert_eq!(request.uri(), "http://127.0.0.1:8080/items?x=1&tag=a+b&q=%C3%A9%26");
/// assert_eq!(request.headers()["authorization"], "Bearer t0ken");
/// assert_eq!(request.headers()["content-type"], "application/x-www-form-urlencoded");
/// assert_eq!(request.body().as_bytes().unwrap(), "name=J+Doe");
///
/// let err = Builder::new(http::Method::GET, "http://h/").header("x-bad", "a\nb").build();
/// assert!(matches!(err, Err(roundtrip_io::Error::InvalidRequest(_))));
/// ```
pub struct RequestBuilder<R> {
    request: Result<http::Request<Body<R>>, Error>,
}

impl<R> RequestBuilder<R> {
    /// `method uri`, with no header and an empty body.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::DELETE, "http://h/items/7").build().unwrap();
    /// assert_eq!((request.method().as_str(), request.uri().path()), ("DELETE", "/items/7"));
    /// ```
    pub fn new(method: Method, uri: impl IntoUri) -> Self {
        let request = uri.into_uri().map(|uri| {
            let mut request = http::Request::new(Body::empty());
            *request.method_mut() = method;
            *request.uri_mut() = uri;
            request
        });
        RequestBuilder {
            request: request.map_err(http_error),
        }
    }

    /// Goes on building `request`.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = http::Request::get("http://h/").body(Default::default()).unwrap();
    /// let request = Builder::from_request(request).header("accept", "*/*").build().unwrap();
    /// assert_eq!(request.headers()["accept"], "*/*");
    /// ```
    pub fn from_request(request: http::Request<Body<R>>) -> Self {
        RequestBuilder {
            request: Ok(request),
        }
    }

    /// Applies `f` to the request, unless an error came first.
    fn with(mut self, f: impl FnOnce(&mut http::Request<Body<R>>) -> Result<(), Error>) -> Self {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            self.request = Err(e);
        }
        self
    }

    /// Adds a header field: appended to those of the same name already set
    /// (as `http::request::Builder::header` and reqwest do). The client's
    /// default header of that name is then not sent. A name or value that
    /// is not valid fails the request.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::GET, "http://h/")
    ///     .header("accept", "text/html")
    ///     .header(http::header::ACCEPT, "text/plain")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.headers().get_all("accept").iter().count(), 2);
    /// ```
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.with(|request| {
            let name = HeaderName::try_from(name).map_err(|e| http_error(e.into()))?;
            // `http` says only "failed to parse header value": say which.
            let value = HeaderValue::try_from(value).map_err(|_| {
                let why = "is not a header value (a control byte: CR, LF, NUL or another)";
                let name = name.as_str().to_string();
                Error::InvalidRequest(InvalidRequest::HeaderValue { name, why })
            })?;
            request.headers_mut().append(name, value);
            Ok(())
        })
    }

    /// Sets every field of `headers`, each name's values replacing those
    /// already set under that name (reqwest's `headers`).
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// use http::header::{ACCEPT, HeaderMap, HeaderValue};
    /// let mut headers = HeaderMap::new();
    /// headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    /// let request = Builder::new(http::Method::GET, "http://h/")
    ///     .header(ACCEPT, "text/html")
    ///     .headers(headers)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.headers().get_all(ACCEPT).iter().collect::<Vec<_>>(), ["*/*"]);
    /// ```
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.with(|request| {
            let own = request.headers_mut();
            let mut name = None;
            // `into_iter` names each field once, before its first value.
            for (next, value) in headers {
                match next {
                    Some(next) => {
                        own.insert(&next, value);
                        name = Some(next);
                    }
                    None => {
                        if let Some(name) = &name {
                            own.append(name, value);
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Appends `pairs` to the URL's query, percent-encoded as
    /// `application/x-www-form-urlencoded` (a space becomes `+`; reqwest
    /// and browsers do the same), after the query the URL already has.
    /// An empty `pairs` leaves the URL as it is.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::GET, "http://h/search?lang=en")
    ///     .query(&[("q", "tom & jerry"), ("page", "2")])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.uri().query(), Some("lang=en&q=tom+%26+jerry&page=2"));
    /// ```
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        if pairs.is_empty() {
            return self;
        }
        self.with(|request| {
            let uri = request.uri();
            let mut query = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
            // Pairs go after the query the URL has, joined by `&` when it has one.
            let start = uri.path().len() + 1;
            url::form_urlencoded::Serializer::for_suffix(&mut query, start)
                .extend_pairs(pairs)
                .finish();
            let mut parts = std::mem::take(request.uri_mut()).into_parts();
            parts.path_and_query =
                Some(PathAndQuery::try_from(query).map_err(|e| http_error(e.into()))?);
            *request.uri_mut() = Uri::from_parts(parts).map_err(|e| http_error(e.into()))?;
            Ok(())
        })
    }

    /// Sets `Authorization: Basic` for `user` and `password` (RFC 7617:
    /// `user:password` in base64; no password sends `user:`), marked
    /// sensitive. It replaces any `Authorization` set before, and one
    /// from the URL's user info.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::GET, "http://h/")
    ///     .basic_auth("Aladdin", Some("open sesame"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.headers()["authorization"], "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    /// ```
    pub fn basic_auth<U: fmt::Display, P: fmt::Display>(
        self,
        user: U,
        password: Option<P>,
    ) -> Self {
        use base64::Engine as _;
        let plain = match password {
            Some(password) => format!("{user}:{password}"),
            None => format!("{user}:"),
        };
        let mut value = String::from("Basic ");
        base64::engine::general_purpose::STANDARD.encode_string(plain, &mut value);
        self.authorization(value)
    }

    /// Sets `Authorization: Bearer <token>` (RFC 6750), marked sensitive.
    /// It replaces any `Authorization` set before. A token with a byte a
    /// field value cannot hold (CR, LF, NUL) fails the request.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::GET, "http://h/").bearer_auth("t0ken").build().unwrap();
    /// assert_eq!(request.headers()["authorization"], "Bearer t0ken");
    /// assert!(request.headers()["authorization"].is_sensitive());
    /// ```
    pub fn bearer_auth<T: fmt::Display>(self, token: T) -> Self {
        self.authorization(format!("Bearer {token}"))
    }

    fn authorization(self, value: String) -> Self {
        self.with(|request| {
            let mut value = HeaderValue::try_from(value).map_err(|e| http_error(e.into()))?;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
            Ok(())
        })
    }

    /// Sets the body: bytes in memory (`&'static str`, `String`,
    /// `Vec<u8>`, `Bytes`, `&'static [u8]`), or a backend's `Body` made
    /// with [`Body::from_reader`] (`Content-Length` when its length is
    /// given, chunked otherwise). No `Content-Type` is added.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// use roundtrip_io::Body;
    /// let request = Builder::new(http::Method::PUT, "http://h/").body("hello").build().unwrap();
    /// assert_eq!(request.body().len(), Some(5));
    /// let streamed = Body::from_reader(std::io::Cursor::new(vec![7u8; 10]), None);
    /// let request = Builder::new(http::Method::PUT, "http://h/").body(streamed).build().unwrap();
    /// assert_eq!(request.body().len(), None);
    /// ```
    pub fn body(self, body: impl Into<Body<R>>) -> Self {
        self.with(|request| {
            *request.body_mut() = body.into();
            Ok(())
        })
    }

    /// Sets the body to `value` serialized as JSON, and `Content-Type:
    /// application/json` unless the request set one (feature `json`). A
    /// value that cannot be serialized (a map with keys that are not
    /// strings) fails the request with [`InvalidRequest::Json`].
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let value = std::collections::BTreeMap::from([("name", "roundtrip")]);
    /// let request = Builder::new(http::Method::POST, "http://h/").json(&value).build().unwrap();
    /// assert_eq!(request.headers()["content-type"], "application/json");
    /// assert_eq!(request.body().as_bytes().unwrap(), r#"{"name":"roundtrip"}"#);
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.with(|request| {
            let bytes = serde_json::to_vec(value).map_err(InvalidRequest::Json)?;
            set_body(request, bytes, "application/json");
            Ok(())
        })
    }

    /// Sets the body to `pairs` encoded as
    /// `application/x-www-form-urlencoded` (the encoding of
    /// [`query`](Self::query)), and that `Content-Type` unless the request
    /// set one.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// let request = Builder::new(http::Method::POST, "http://h/login")
    ///     .form(&[("user", "J Doe"), ("pass", "a&b=c")])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.body().as_bytes().unwrap(), "user=J+Doe&pass=a%26b%3Dc");
    /// ```
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.with(|request| {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            set_body(request, body, "application/x-www-form-urlencoded");
            Ok(())
        })
    }

    /// A deadline for this request alone, from the wait for a connection to
    /// the last body byte, in place of the client's `timeout`
    /// ([`RequestTimeout`]). When it passes the request fails with
    /// [`Error::Timeout`] of kind [`TimeoutKind::Total`](crate::TimeoutKind::Total).
    /// The client's idle limits still hold within it: a server silent for
    /// longer than [`Config::read_timeout`](crate::Config::read_timeout)
    /// (30 s by default) fails the request as
    /// [`TimeoutKind::ReadIdle`](crate::TimeoutKind::ReadIdle).
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// use std::time::Duration;
    /// use roundtrip_io::RequestTimeout;
    /// let request = Builder::new(http::Method::GET, "http://h/")
    ///     .timeout(Duration::from_secs(2))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.extensions().get(), Some(&RequestTimeout(Some(Duration::from_secs(2)))));
    /// ```
    pub fn timeout(self, timeout: std::time::Duration) -> Self {
        self.extension(RequestTimeout(Some(timeout)))
    }

    /// Puts `extension` in the request's extensions, where the client
    /// looks for per-request settings: [`RequestTimeout`] (`None` lifts
    /// the client's `timeout` for this request), the blocking backend's
    /// `Cancel`.
    ///
    /// ```
    /// # type Builder = roundtrip_io::RequestBuilder<Box<dyn std::io::Read + Send>>;
    /// use roundtrip_io::RequestTimeout;
    /// let request = Builder::new(http::Method::GET, "http://h/")
    ///     .extension(RequestTimeout(None))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(request.extensions().get(), Some(&RequestTimeout(None)));
    /// ```
    pub fn extension<T: Clone + Send + Sync + 'static>(self, extension: T) -> Self {
        self.with(|request| {
            request.extensions_mut().insert(extension);
            Ok(())
        })
    }

    /// The request, or the first error met building it.
    pub fn build(self) -> Result<http::Request<Body<R>>, Error> {
        self.request
    }
}

/// Sets a body the builder encoded, and its `Content-Type` unless the
/// request has one.
fn set_body<R>(request: &mut http::Request<Body<R>>, body: impl Into<Body<R>>, kind: &'static str) {
    *request.body_mut() = body.into();
    request
        .headers_mut()
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static(kind));
}

fn http_error(e: http::Error) -> Error {
    Error::InvalidRequest(InvalidRequest::Http(e))
}

impl<R> fmt::Debug for RequestBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.request {
            Ok(request) => f
                .debug_struct("RequestBuilder")
                .field("method", request.method())
                .field("uri", request.uri())
                .field("headers", request.headers())
                .field("body", request.body())
                .finish(),
            Err(e) => f.debug_tuple("RequestBuilder").field(e).finish(),
        }
    }
}

/// The setters of a backend's request builder: each forwards to the shared
/// [`RequestBuilder`] in the builder's field `$field`, so every backend
/// offers the same names with the same meaning (what `config_setters!` is
/// for client settings). `json` is there when the backend's `json`
/// feature is on. The literals make each backend's doc examples: `setup`
/// a line that makes the client, `client` how to name it, `reader` a
/// reader its `Body::from_reader` takes.
///
/// ```ignore
/// impl RequestBuilder {
///     roundtrip_io::request_setters! {
///         field: request,
///         body: crate::Body,
///         krate: "roundtrip_blocking",
///         setup: "let client = roundtrip_blocking::Client::new();",
///         client: "client",
///         reader: "std::io::Cursor::new(b\"streamed\".to_vec())",
///     }
/// }
/// ```
#[macro_export]
macro_rules! request_setters {
    (
        field: $field:ident,
        body: $body:ty,
        krate: $krate:literal,
        setup: $setup:literal,
        client: $client:literal,
        reader: $reader:literal $(,)?
    ) => {
        /// Adds a header field, after those of the same name already set
        /// (several values are sent as several fields); the client's
        /// default header of that name is then not sent. A name or value
        /// that does not parse fails the request with
        /// `Error::InvalidRequest` when it is sent, never with a panic.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\")")]
        ///     .header("accept", "text/plain")
        ///     .header("x-trace", "1");
        /// # let _ = builder;
        /// ```
        pub fn header<K, V>(mut self, name: K, value: V) -> Self
        where
            $crate::http::HeaderName: ::core::convert::TryFrom<K>,
            <$crate::http::HeaderName as ::core::convert::TryFrom<K>>::Error:
                ::core::convert::Into<$crate::http::Error>,
            $crate::http::HeaderValue: ::core::convert::TryFrom<V>,
            <$crate::http::HeaderValue as ::core::convert::TryFrom<V>>::Error:
                ::core::convert::Into<$crate::http::Error>,
        {
            self.$field = self.$field.header(name, value);
            self
        }

        /// Sets every field of `headers`; each name's values replace those
        /// already set under that name.
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::http::header::{ACCEPT, HeaderMap, HeaderValue};")]
        #[doc = $setup]
        /// let mut headers = HeaderMap::new();
        /// headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\").headers(headers);")]
        /// # let _ = builder;
        /// ```
        pub fn headers(mut self, headers: $crate::http::HeaderMap) -> Self {
            self.$field = self.$field.headers(headers);
            self
        }

        /// Appends `pairs` to the URL's query (after any query it has),
        /// percent-encoded as `application/x-www-form-urlencoded`: this
        /// one asks for `/search?q=tom+%26+jerry&page=2`.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/search\")")]
        ///     .query(&[("q", "tom & jerry"), ("page", "2")]);
        /// # let _ = builder;
        /// ```
        pub fn query<K: ::core::convert::AsRef<str>, V: ::core::convert::AsRef<str>>(
            mut self,
            pairs: &[(K, V)],
        ) -> Self {
            self.$field = self.$field.query(pairs);
            self
        }

        /// Sets `Authorization: Basic` (RFC 7617) for `user` and
        /// `password` (none sends `user:`), marked sensitive; it replaces
        /// an `Authorization` set before or from the URL's user info.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\")")]
        ///     .basic_auth("aladdin", Some("open sesame"));
        /// # let _ = builder;
        /// ```
        pub fn basic_auth<U: ::core::fmt::Display, P: ::core::fmt::Display>(
            mut self,
            user: U,
            password: ::core::option::Option<P>,
        ) -> Self {
            self.$field = self.$field.basic_auth(user, password);
            self
        }

        /// Sets `Authorization: Bearer <token>` (RFC 6750), marked
        /// sensitive; it replaces an `Authorization` set before.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\").bearer_auth(\"t0ken\");")]
        /// # let _ = builder;
        /// ```
        pub fn bearer_auth<T: ::core::fmt::Display>(mut self, token: T) -> Self {
            self.$field = self.$field.bearer_auth(token);
            self
        }

        /// Sets the body: bytes in memory (`&'static str`, `String`,
        /// `Vec<u8>`, `Bytes`), or a `Body` streamed from a reader
        /// (`Content-Length` when its length is given, chunked otherwise).
        /// No `Content-Type` is added.
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::Body;")]
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".post(\"http://127.0.0.1:8080/\").body(\"hello\");")]
        /// # let _ = builder;
        #[doc = concat!("let streamed = Body::from_reader(", $reader, ", None); // chunked")]
        #[doc = concat!("let builder = ", $client, ".put(\"http://127.0.0.1:8080/\").body(streamed);")]
        /// # let _ = builder;
        /// ```
        pub fn body(mut self, body: impl ::core::convert::Into<$body>) -> Self {
            self.$field = self.$field.body(body);
            self
        }

        /// Sets the body to `value` as JSON, and `Content-Type:
        /// application/json` unless one is set (feature `json`). A value
        /// that cannot be serialized fails the request with
        /// `InvalidRequest::Json`.
        ///
        /// ```
        #[doc = $setup]
        /// let item = std::collections::BTreeMap::from([("name", "roundtrip"), ("kind", "client")]);
        #[doc = concat!("let builder = ", $client, ".post(\"http://127.0.0.1:8080/items\").json(&item);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "json")]
        pub fn json<T: $crate::__serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
            self.$field = self.$field.json(value);
            self
        }

        /// Sets the body to `pairs` as `application/x-www-form-urlencoded`
        /// (`user=J+Doe&pass=a%26b` here), and that `Content-Type` unless
        /// one is set.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".post(\"http://127.0.0.1:8080/login\")")]
        ///     .form(&[("user", "J Doe"), ("pass", "a&b")]);
        /// # let _ = builder;
        /// ```
        pub fn form<K: ::core::convert::AsRef<str>, V: ::core::convert::AsRef<str>>(
            mut self,
            pairs: &[(K, V)],
        ) -> Self {
            self.$field = self.$field.form(pairs);
            self
        }

        /// A deadline for this request alone, from the wait for a
        /// connection to the last body byte, in place of the client's
        /// `timeout`; when it passes the request fails with
        /// `Error::Timeout` of kind `TimeoutKind::Total`. The client's
        /// idle limits still hold within it: a server silent for longer
        /// than its `read_timeout` (30 s by default) fails the request as
        /// `TimeoutKind::ReadIdle`.
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\")")]
        ///     .timeout(std::time::Duration::from_secs(2));
        /// # let _ = builder;
        /// ```
        pub fn timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.$field = self.$field.timeout(timeout);
            self
        }

        /// Puts `extension` in the request's extensions, where the client
        /// looks for per-request settings: `RequestTimeout(None)` lifts
        /// the client's `timeout` for this request.
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::RequestTimeout;")]
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".get(\"http://127.0.0.1:8080/\").extension(RequestTimeout(None));")]
        /// # let _ = builder;
        /// ```
        pub fn extension<T: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static>(
            mut self,
            extension: T,
        ) -> Self {
            self.$field = self.$field.extension(extension);
            self
        }
    };
}

/// A backend client's request verbs, each starting a request builder with
/// the client's `request(method, uri)`: `get`, `post`, `put`, `patch`,
/// `delete`, `head`. `receiver` is `&` or `&mut` (the mio driver); the
/// literals make the doc examples, as in
/// [`request_setters!`](crate::request_setters).
///
/// ```ignore
/// impl Client {
///     roundtrip_io::request_methods! {
///         receiver: &,
///         builder: RequestBuilder,
///         setup: "let client = roundtrip_blocking::Client::new();",
///         client: "client",
///     }
/// }
/// ```
#[macro_export]
macro_rules! request_methods {
    (
        receiver: & $($mutability:ident)?,
        builder: $builder:ty,
        setup: $setup:expr,
        client: $client:literal $(,)?
    ) => {
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, get GET "GET");
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, post POST "POST");
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, put PUT "PUT");
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, patch PATCH "PATCH");
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, delete DELETE "DELETE");
        $crate::request_methods!(@verb [$($mutability)?] $builder, $setup, $client, head HEAD "HEAD");
    };
    (@verb [$($mutability:ident)?] $builder:ty, $setup:expr, $client:literal,
        $name:ident $method:ident $text:literal) => {
        #[doc = concat!("Starts a `", $text, "` of `uri`: [`request`](Self::request)`(Method::", $text, ", uri)`.")]
        ///
        /// ```
        #[doc = $setup]
        #[doc = concat!("let builder = ", $client, ".", stringify!($name), "(\"http://127.0.0.1:8080/items\");")]
        /// # let _ = builder;
        /// ```
        pub fn $name(& $($mutability)? self, uri: impl $crate::IntoUri) -> $builder {
            self.request($crate::http::Method::$method, uri)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    type Builder = RequestBuilder<Box<dyn std::io::Read + Send>>;

    fn get(uri: &str) -> Builder {
        Builder::new(Method::GET, uri)
    }

    /// A URL parses the same whichever way its bytes are kept: at the
    /// edges of the inline sizes, and beyond them.
    #[test]
    fn urls_of_every_size_parse_as_http_parses_them() {
        for len in [0usize, 1, 40, 63, 64, 65, 200, 255, 256, 257, 4096] {
            let base = "http://h:8/";
            let url = format!("{base}{}", "a".repeat(len.saturating_sub(base.len())));
            for uri in [url.as_str().into_uri(), url.as_bytes().into_uri()] {
                let want = Uri::try_from(url.as_str());
                match (uri, want) {
                    (Ok(uri), Ok(want)) => {
                        assert_eq!(uri, want, "{len}");
                        assert_eq!(uri.authority(), want.authority(), "{len}");
                        assert_eq!(uri.path(), want.path(), "{len}");
                    }
                    (Err(_), Err(_)) => {}
                    (uri, want) => panic!("{len}: {uri:?} against {want:?}"),
                }
            }
        }
        assert!("".into_uri().is_err());
        assert!("http://exa mple/".into_uri().is_err());
    }

    #[test]
    fn query_keeps_scheme_authority_and_path() {
        for (uri, pairs, want) in [
            (
                "http://u:p@h:8/a/b",
                &[("k", "v w")][..],
                "http://u:p@h:8/a/b?k=v+w",
            ),
            ("http://h", &[("k", "v")], "http://h/?k=v"),
            ("http://h/?", &[("k", "")], "http://h/?k="),
            (
                "http://h/p?a&b=",
                &[("é", "&")],
                "http://h/p?a&b=&%C3%A9=%26",
            ),
            ("https://[::1]:9/x", &[("k", "v")], "https://[::1]:9/x?k=v"),
        ] {
            let request = get(uri).query(pairs).build().expect("valid");
            assert_eq!(request.uri().to_string(), want, "{uri}");
        }
    }

    #[test]
    fn the_first_error_stays() {
        let err = get("http://h/")
            .header("x-bad", "a\rb")
            .header("x-fine", "1")
            .query(&[("k", "v")])
            .build()
            .expect_err("refused");
        assert!(
            matches!(&err, Error::InvalidRequest(InvalidRequest::HeaderValue { name, .. }) if name == "x-bad"),
            "{err:?}"
        );
        assert!(!err.reached_server());
        // A bad URL is the same kind of error, and later setters are ignored.
        let err = Builder::new(Method::GET, "http://h h/")
            .bearer_auth("t")
            .build()
            .expect_err("refused");
        assert!(matches!(
            err,
            Error::InvalidRequest(InvalidRequest::Http(_))
        ));
        assert!(format!("{:?}", get("http://h h/")).starts_with("RequestBuilder(InvalidRequest"));
    }

    #[test]
    fn uris_of_every_kind() {
        let uri = Uri::from_static("http://h/u");
        let text = String::from("http://h/u");
        for built in [
            get("http://h/u"),
            Builder::new(Method::GET, &text),
            Builder::new(Method::GET, text.clone()),
            Builder::new(Method::GET, &uri),
            Builder::new(Method::GET, uri.clone()),
        ] {
            assert_eq!(built.build().expect("valid").uri(), &uri);
        }
    }

    #[test]
    fn content_type_is_only_a_default() {
        let request = get("http://h/")
            .header(CONTENT_TYPE, "text/csv")
            .form(&[("a", "b")])
            .build()
            .expect("valid");
        let types: Vec<_> = request.headers().get_all(CONTENT_TYPE).iter().collect();
        assert_eq!(types, ["text/csv"]);
        assert_eq!(request.body().as_bytes().map(|b| &b[..]), Some(&b"a=b"[..]));
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_that_cannot_be_serialized() {
        let keys_not_strings = std::collections::BTreeMap::from([((1, 2), "v")]);
        let err = get("http://h/")
            .json(&keys_not_strings)
            .build()
            .expect_err("refused");
        assert!(
            matches!(err, Error::InvalidRequest(InvalidRequest::Json(_))),
            "{err:?}"
        );
    }
}
