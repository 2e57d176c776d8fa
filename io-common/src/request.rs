//! From an `http::Request` to what the core needs: pool key, target, Host,
//! body framing and the field list.

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, HeaderName,
    HeaderValue, PROXY_AUTHORIZATION, REFERER, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::{Method, Uri};
use roundtrip_proto::conn::{Connection, is_idempotent};
use roundtrip_proto::encode::{BodyFraming, FieldBlock, RequestHead};
use roundtrip_proto::pool::{Key, Scheme};
use roundtrip_proto::time::Instant;

use crate::config::Config;
use crate::error::{Error, InvalidRequest, Phase};

/// What the caller knows of the request body's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLen {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Known(u64),
    /// Unknown until the source ends: sent chunked.
    Unknown,
}

/// A request checked and planned for the wire.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The pool key: scheme, host, port.
    pub key: Key,
    /// Send a `Host` field (neither the request nor the client's default
    /// headers set one): the URI's authority as
    /// written, without user info (RFC 9110 section 7.2: `uri-host [":"
    /// port]`), borrowed from the request when its head is encoded.
    pub send_host: bool,
    /// A target the URI does not hold as it must be sent: the
    /// authority form of a CONNECT (`host:port`), or `/?query` for a URI
    /// with a query and no path (RFC 9112 section 3.2.1: the origin form
    /// always starts with `/`). Otherwise the URI's path and query are
    /// sent, borrowed likewise.
    pub connect_target: Option<String>,
    /// Body framing.
    pub framing: BodyFraming,
    /// May be sent twice (RFC 9110 section 9.2.2, or an `Idempotency-Key`).
    pub idempotent: bool,
    /// Send `Connection: close`.
    pub close: bool,
    /// `Authorization: Basic` from the URI's user info (`user:pass@`,
    /// percent-decoded, RFC 7617), as curl and Go send it; `None` when the
    /// URI has none or the request sets its own `Authorization`. It
    /// replaces a default `Authorization` of the config.
    pub authorization: Option<HeaderValue>,
    /// The `Cookie` field sent in place of the request's own (and of a
    /// default one): those cookies, then the cookie jar's for the URL
    /// (feature `cookies`); `None` without a jar, or when it has nothing
    /// for this URL.
    pub cookie: Option<HeaderValue>,
    /// The proxy the request goes through ([`Config::proxies`]), if any;
    /// [`key`](Self::key) says how ([`Via`](roundtrip_proto::pool::Via)).
    pub proxy: Option<Box<crate::proxy::Proxy>>,
    /// `Proxy-Authorization` for a request forwarded by an HTTP proxy with
    /// credentials (a tunnel carries them in its `CONNECT` instead).
    pub proxy_authorization: Option<HeaderValue>,
    /// The request goes through a tunnel (`CONNECT` or SOCKS5): no
    /// `Proxy-Authorization` of its own or of the defaults is sent inside
    /// it, to the origin; a `CONNECT` carries it to the proxy instead when
    /// the proxy URL has no credentials (`connect_authorization`).
    pub tunnelled: bool,
    /// The request is forwarded by an HTTP proxy (absolute form): the only
    /// route a default `Proxy-Authorization` goes on, to that proxy; a
    /// direct request or a tunnel never sends it to the origin.
    pub forwarded: bool,
}

/// The `Proxy-Authorization` of a `CONNECT` for the request `parts`
/// (prepared as `prepared`): the proxy URL's credentials, else the
/// request's own field, else the client's default one (Go's
/// `ProxyConnectHeader`, curl's `--proxy-header`). A redirect to another
/// origin keeps the default, as a forwarded request does: it is the
/// client's credential for its proxies, sent to each of them with or
/// without a redirect, and never to an origin.
pub fn connect_authorization(
    prepared: &Prepared,
    parts: &Parts,
    config: &Config,
) -> Option<HeaderValue> {
    let proxy = prepared.proxy.as_deref()?;
    proxy.authorization().or_else(|| {
        let own = parts.headers.get(PROXY_AUTHORIZATION);
        own.or_else(|| config.default_headers.get(PROXY_AUTHORIZATION))
            .cloned()
    })
}

impl Prepared {
    /// The head for the encoder, for the request `parts` this was prepared
    /// from.
    ///
    /// ```
    /// use roundtrip_io::{BodyLen, Config, prepare};
    /// let (parts, ()) = http::Request::get("http://user@[::1]:8080/a?b").body(()).unwrap().into_parts();
    /// let prepared = prepare(&parts, BodyLen::Empty, &Config::default()).unwrap();
    /// let head = prepared.head(&parts);
    /// assert_eq!(head.target, b"/a?b");
    /// assert_eq!(head.host, Some(&b"[::1]:8080"[..]));
    /// ```
    pub fn head<'a>(&'a self, parts: &'a Parts) -> RequestHead<'a> {
        let target = match &self.connect_target {
            Some(target) => target.as_str(),
            None => match parts.uri.path_and_query().map(|p| p.as_str()) {
                Some(p) if !p.is_empty() => p,
                _ => "/",
            },
        };
        let host = self.send_host.then(|| authority(&parts.uri));
        RequestHead {
            method: parts.method.as_str().as_bytes(),
            target: target.as_bytes(),
            host: host.map(str::as_bytes),
            body: self.framing,
            preset: None,
            expect_continue: false,
            close: self.close,
        }
    }

    /// The fields to send for the request `parts` this was prepared from:
    /// [`fields`], with the [`authorization`](Self::authorization) of the
    /// URI's user info.
    ///
    /// ```
    /// use roundtrip_io::{BodyLen, Config, prepare};
    /// let config = Config::default();
    /// let (parts, ()) = http::Request::get("http://Aladdin:open%20sesame@h/").body(()).unwrap().into_parts();
    /// let prepared = prepare(&parts, BodyLen::Empty, &config).unwrap();
    /// let fields: Vec<_> = prepared.fields(&parts, &config).into_iter().collect();
    /// assert!(fields.contains(&(&b"authorization"[..], &b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="[..])));
    /// ```
    pub fn fields<'a>(&'a self, parts: &'a Parts, config: &'a Config) -> Fields<'a> {
        Fields {
            authorization: self.authorization.as_ref(),
            cookie: self.cookie.as_ref(),
            proxy_authorization: self.proxy_authorization.as_ref(),
            tunnelled: self.tunnelled,
            forwarded: self.forwarded,
            ..fields(parts, config)
        }
    }

    /// Starts the exchange of the request `parts` on `proto`: its head, with
    /// `config`'s default fields, is encoded into `out`. `defaults` must be
    /// [`DefaultFields::new`] of this same `config` (a client makes both
    /// once): a request without fields of its own is sent with those
    /// blocks as they are. A refusal comes before any byte was written.
    pub fn start(
        &self,
        parts: &Parts,
        config: &Config,
        defaults: &DefaultFields,
        proto: &mut Connection,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut head = self.head(parts);
        // The block holds no `Authorization` of the URI's user info, nor
        // a proxy's credentials, nor a cookie of the jar's.
        if self.authorization.is_none()
            && self.proxy_authorization.is_none()
            && self.cookie.is_none()
            && (self.forwarded || !config.default_headers.contains_key(PROXY_AUTHORIZATION))
        {
            head.preset = defaults.preset(parts);
        }
        let fields = match head.preset {
            // The request has no fields of its own and the block holds the
            // rest of what `fields` would give.
            Some(_) => Fields::none(&parts.headers),
            None => self.fields(parts, config),
        };
        proto.start(&head, fields, now, out).map_err(|e| match e {
            // Which header, the request's own or a default (off the hot path).
            roundtrip_proto::Error::InvalidHeaderValue { .. } => check_values(&parts.headers)
                .and_then(|()| check_values(&config.default_headers))
                .err()
                .unwrap_or_else(|| Error::from_proto(e, Phase::Write, false)),
            e => Error::from_proto(e, Phase::Write, false),
        })
    }
}

/// A per-request deadline for the whole exchange, overriding
/// [`Config::timeout`]: put it in the request's extensions.
///
/// ```
/// use std::time::Duration;
/// use roundtrip_io::RequestTimeout;
/// let request = http::Request::get("http://127.0.0.1/")
///     .extension(RequestTimeout(Some(Duration::from_secs(2))))
///     .body(())
///     .unwrap();
/// assert!(request.extensions().get::<RequestTimeout>().is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTimeout(pub Option<std::time::Duration>);

/// When the whole exchange must be over: the request's [`RequestTimeout`],
/// else the config's `timeout`, counted from now.
pub fn deadline(parts: &Parts, config: &Config) -> Option<std::time::Instant> {
    let timeout = match parts.extensions.get::<RequestTimeout>() {
        Some(RequestTimeout(t)) => *t,
        None => config.timeout,
    };
    // A timeout too long for `std` to add is none.
    timeout.and_then(|t| std::time::Instant::now().checked_add(t))
}

/// Checks and plans a request.
pub fn prepare(parts: &Parts, body: BodyLen, config: &Config) -> Result<Prepared, Error> {
    let key = key_of(&parts.uri, parts.method == Method::CONNECT)?;
    if !config.proxies.is_empty()
        && let Some(proxy) = config
            .proxies
            .route(key.scheme().as_str(), key.host(), key.port())
            .map_err(InvalidRequest::Proxy)?
    {
        return prepare_proxied(parts, body, config, key, proxy.clone());
    }
    prepare_direct(parts, body, config, key)
}

/// Every value of `headers` can go on the wire as it is, or the error
/// names the header (the encoder's error gives only a field's place).
fn check_values(headers: &http::HeaderMap) -> Result<(), Error> {
    for (name, value) in headers {
        if let Some(why) = value_problem(value.as_bytes()) {
            let name = name.as_str().to_string();
            return Err(InvalidRequest::HeaderValue { name, why }.into());
        }
    }
    Ok(())
}

/// What keeps `value` off the wire (RFC 9110 section 5.5), if anything.
fn value_problem(value: &[u8]) -> Option<&'static str> {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        Some("holds a control byte (CR, LF, NUL or another)")
    } else if value.first().is_some_and(ws) || value.last().is_some_and(ws) {
        Some("starts or ends with a space or tab")
    } else {
        None
    }
}

fn prepare_direct(
    parts: &Parts,
    body: BodyLen,
    config: &Config,
    key: Key,
) -> Result<Prepared, Error> {
    let connect_target = if parts.method == Method::CONNECT {
        let host = key.host();
        Some(match host.contains(':') {
            true => format!("[{host}]:{}", key.port()),
            false => format!("{host}:{}", key.port()),
        })
    } else {
        match parts.uri.path_and_query().map(|p| p.as_str()) {
            // `http://h/café`: `http` keeps UTF-8 as written, the request
            // line takes visible ASCII only.
            Some(p) if !p.is_ascii() => Some(origin_form(&percent_encode_non_ascii(p))),
            // `http://h:8080?x=1`: the path is empty, the request line needs `/`.
            Some(p) if p.starts_with('?') => Some(format!("/{p}")),
            _ => None,
        }
    };
    let method = parts.method.as_str().as_bytes();
    // Most requests carry no field of their own: no lookup then.
    let has = |name| !parts.headers.is_empty() && parts.headers.contains_key(name);
    // The fields matter only for a method not idempotent by itself.
    let idempotent = is_idempotent(method, false)
        || is_idempotent(method, has(IDEMPOTENCY_KEY) || has(X_IDEMPOTENCY_KEY));
    Ok(Prepared {
        key,
        // A `Host` of the request's own, or the client's default one
        // (until a redirect leaves the origin), replaces the URL's. (The
        // defaults are few: a walk of their names costs less than a hashed
        // lookup.)
        send_host: !has(HOST)
            && (!config.default_headers.keys().any(|name| name == HOST)
                || crate::redirect::Withheld::of(parts).cross_origin),
        connect_target,
        framing: framing(parts, body)?,
        idempotent,
        close: !config.keep_alive,
        authorization: match has(AUTHORIZATION) {
            true => None,
            false => basic_auth(&parts.uri),
        },
        #[cfg(feature = "cookies")]
        cookie: crate::cookies::request_cookie(parts, config),
        #[cfg(not(feature = "cookies"))]
        cookie: None,
        proxy: None,
        proxy_authorization: None,
        tunnelled: false,
        forwarded: false,
    })
}

/// A path and query as the request line's origin form: starting with `/`.
fn origin_form(p: &str) -> String {
    match p.starts_with('/') {
        true => p.to_string(),
        false => format!("/{p}"),
    }
}

/// `p` with every byte above 0x7F percent-encoded (`/café` is sent as
/// `/caf%C3%A9`, as browsers, curl and reqwest send it); ASCII as it is.
fn percent_encode_non_ascii(p: &str) -> std::borrow::Cow<'_, str> {
    if p.is_ascii() {
        return std::borrow::Cow::Borrowed(p);
    }
    let mut out = String::with_capacity(p.len() + 16);
    for b in p.bytes() {
        match b {
            0..=0x7f => out.push(char::from(b)),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Plans a request that goes through `proxy`: an `http://` request to an
/// HTTP proxy is forwarded in absolute form (RFC 9112 section 3.2.2) on a
/// connection shared by every origin, with the proxy's credentials; any
/// other goes through a tunnel (`CONNECT`, or SOCKS5) to its origin.
fn prepare_proxied(
    parts: &Parts,
    body: BodyLen,
    config: &Config,
    origin: Key,
    proxy: crate::proxy::Proxy,
) -> Result<Prepared, Error> {
    use crate::proxy::ProxyKind;
    use roundtrip_proto::pool::{ProxyMode, Via};
    let tls = proxy.kind() == ProxyKind::Https;
    // A caller's own `CONNECT` is the tunnel request: it goes to the
    // proxy, in its authority form (Go), not inside a tunnel of ours.
    let http_proxy = matches!(proxy.kind(), ProxyKind::Http | ProxyKind::Https);
    let forward = http_proxy && origin.scheme() == Scheme::Http;
    // The credentials tell pooled connections apart by a hash, keyed per
    // process: the pool key's `Debug` shows it, and an unkeyed hash of a
    // weak password could be reversed offline. A tunnel is authenticated
    // once, by its `CONNECT`: one made with a request's own (or the
    // default) `Proxy-Authorization` is that credential's alone.
    let hash = |value: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
        use std::hash::BuildHasher;
        static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let mut hasher = KEY.get_or_init(Default::default).build_hasher();
        value(&mut hasher);
        std::hash::Hasher::finish(&hasher) | 1
    };
    let own = || {
        let own = parts.headers.get(PROXY_AUTHORIZATION);
        own.or_else(|| config.default_headers.get(PROXY_AUTHORIZATION))
    };
    let auth = match (proxy.credentials(), http_proxy && !forward) {
        (Some(credentials), _) => hash(&|h| std::hash::Hash::hash(&credentials, h)),
        (None, true) => own().map_or(0, |value| {
            hash(&|h| std::hash::Hash::hash(value.as_bytes(), h))
        }),
        (None, false) => 0,
    };
    let via = |mode| Via::new(mode, tls, proxy.host(), proxy.port(), auth);
    let mut prepared = if forward {
        let mut prepared = prepare_direct(parts, body, config, origin)?;
        prepared.key = Key::forward(via(ProxyMode::Forward));
        if parts.method != Method::CONNECT {
            let path = match parts.uri.path_and_query().map(|p| p.as_str()) {
                // `OPTIONS *` asks about the server: its absolute form has
                // no path (RFC 9112 section 3.2.4), not the resource `/*`.
                Some("*") => String::new(),
                Some(p) => origin_form(&percent_encode_non_ascii(p)),
                None => "/".to_string(),
            };
            prepared.connect_target = Some(format!("http://{}{path}", authority(&parts.uri)));
        }
        prepared.proxy_authorization = proxy.authorization();
        prepared.forwarded = true;
        prepared
    } else {
        let mode = match proxy.kind() {
            ProxyKind::Socks5 { remote_dns: true } => ProxyMode::Socks5h,
            ProxyKind::Socks5 { remote_dns: false } => ProxyMode::Socks5,
            ProxyKind::Http | ProxyKind::Https => ProxyMode::Connect,
        };
        let key = origin.with_via(via(mode));
        let mut prepared = prepare_direct(parts, body, config, key)?;
        prepared.tunnelled = true;
        prepared
    };
    prepared.proxy = Some(Box::new(proxy));
    Ok(prepared)
}

/// `Authorization: Basic` for the URI's user info, if it has one: user and
/// password percent-decoded (RFC 3986 section 2.1), joined by `:` and
/// base64-encoded (RFC 7617 section 2). `user@` alone sends an empty
/// password, as curl does.
fn basic_auth(uri: &Uri) -> Option<HeaderValue> {
    use base64::Engine as _;
    let all = uri.authority()?.as_str();
    let at = all.bytes().rposition(|b| b == b'@')?;
    let (user, password) = all[..at].split_once(':').unwrap_or((&all[..at], ""));
    let mut plain: Vec<u8> = percent_encoding::percent_decode_str(user).collect();
    plain.push(b':');
    plain.extend(percent_encoding::percent_decode_str(password));
    let mut value = String::from("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(&plain, &mut value);
    // Shown as `Sensitive` by `Debug` (a `Prepared` printed), as the
    // builder's `basic_auth` and a proxy's credentials are.
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header), and the
/// older `X-` spelling: either makes a request safe to send twice. Names
/// made once, so the lookup hashes without parsing a string.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const X_IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("x-idempotency-key");

/// The URI's authority without user info: `host[:port]` as written (an
/// IPv6 literal keeps its brackets), or `""` for a URI without one.
fn authority(uri: &Uri) -> &str {
    let all = uri.authority().map_or("", |a| a.as_str());
    // A byte loop: `rsplit_once` goes through a general `memrchr` costlier
    // than the whole of a short authority.
    match all.bytes().rposition(|b| b == b'@') {
        Some(at) => &all[at + 1..],
        None => all,
    }
}

/// The pool key of a URI: `http` (port 80 by default) or `https` (443).
/// The authority is split here once (`Uri::host` and `Uri::port_u16` would
/// each parse it again); a port that is not a `u16` is refused rather than
/// replaced by the default.
fn key_of(uri: &Uri, connect: bool) -> Result<Key, Error> {
    let (scheme, default_port) = match uri.scheme_str() {
        Some("http") => (Scheme::Http, 80),
        // A CONNECT's target is an authority (`host:443`, RFC 9110 section
        // 9.3.6), reached over plain TCP.
        None if connect => (Scheme::Http, 80),
        // Any other request to `host:443` (an authority alone): sent as
        // plain `http`, it would carry credentials in clear to a TLS port.
        None => return Err(InvalidRequest::MissingScheme.into()),
        Some(s) if s.eq_ignore_ascii_case("https") => (Scheme::Https, 443),
        Some(s) if s.eq_ignore_ascii_case("http") => (Scheme::Http, 80),
        Some(other) => {
            return Err(InvalidRequest::UnsupportedScheme(other.to_string()).into());
        }
    };
    let host_port = authority(uri);
    let (host, port) = match host_port.strip_prefix('[') {
        // An IP literal: `[v6]` or `[v6]:port`.
        Some(rest) => match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                // `[::1]x:8080`: text between the literal and its port.
                None => return Err(InvalidRequest::InvalidPort(after.to_string()).into()),
            },
            None => (rest, None),
        },
        None => match host_port.bytes().rposition(|b| b == b':') {
            Some(at) => (&host_port[..at], Some(&host_port[at + 1..])),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(InvalidRequest::MissingHost.into());
    }
    let port = match port {
        None | Some("") => default_port, // RFC 3986 section 3.2.3: empty means the default
        Some(digits) => digits
            .parse::<u16>()
            .map_err(|_| InvalidRequest::InvalidPort(digits.to_string()))?,
    };
    Ok(Key::new(scheme, host, port))
}

/// Body framing from the body and any framing headers the caller set: a
/// `Content-Length` must agree with a known length (and gives an unknown one),
/// a `Transfer-Encoding` must be `chunked`.
fn framing(parts: &Parts, body: BodyLen) -> Result<BodyFraming, Error> {
    let bad = |why| Err(Error::InvalidRequest(InvalidRequest::Framing(why)));
    let get = |name| match parts.headers.is_empty() {
        true => None, // most requests: no lookup
        false => parts.headers.get(name),
    };
    let declared = match get(CONTENT_LENGTH) {
        None => None,
        Some(_) => {
            // 1*DIGIT (RFC 9110 section 8.6: no sign, no space inside), and
            // every `Content-Length` field the same number.
            let mut declared = None;
            for v in parts.headers.get_all(CONTENT_LENGTH) {
                let digits = v.as_bytes().trim_ascii();
                let n = match digits.iter().all(u8::is_ascii_digit) {
                    true => std::str::from_utf8(digits)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok()),
                    false => None,
                };
                match (n, declared) {
                    (None, _) => return bad("content-length header is not a number"),
                    (Some(n), Some(d)) if n != d => {
                        return bad("content-length headers with different numbers");
                    }
                    (n, _) => declared = n,
                }
            }
            declared
        }
    };
    if let Some(te) = get(TRANSFER_ENCODING) {
        let several = parts
            .headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .nth(1)
            .is_some();
        if !te.as_bytes().eq_ignore_ascii_case(b"chunked") || several || declared.is_some() {
            return bad("only transfer-encoding: chunked, without content-length, can be set");
        }
        return Ok(BodyFraming::Chunked);
    }
    Ok(match (body, declared) {
        (BodyLen::Known(n), Some(d)) if n != d => {
            return bad("content-length header differs from the body length");
        }
        (BodyLen::Empty, Some(d)) if d != 0 => {
            return bad("content-length header set on a request without a body");
        }
        // The request's own field says `0`: sent, whatever the method and
        // however the empty body was made (a server that wants a length
        // on a `DELETE` answers 411 without it).
        (BodyLen::Empty | BodyLen::Known(0), Some(0)) => BodyFraming::Length(0),
        // POST, PUT and PATCH announce an empty body; other methods send none
        // (RFC 9110 section 8.6: a user agent SHOULD NOT send Content-Length
        // when the method does not define a meaning for a body).
        (BodyLen::Empty, _) | (BodyLen::Known(0), None) => match parts.method {
            Method::POST | Method::PUT | Method::PATCH => BodyFraming::Length(0),
            _ => BodyFraming::None,
        },
        (BodyLen::Known(n), _) | (BodyLen::Unknown, Some(n)) => BodyFraming::Length(n),
        (BodyLen::Unknown, None) => BodyFraming::Chunked,
    })
}

/// The fields to send: the config's default headers the request does not
/// set, then the request's own, without the framing headers (the encoder
/// writes those from [`Prepared::framing`]), then `Accept-Encoding` with the
/// enabled codings when [`adds_gzip`](crate::adds_gzip). Cheap to copy; each iteration
/// walks the header maps afresh.
pub fn fields<'a>(parts: &'a Parts, config: &'a Config) -> Fields<'a> {
    Fields {
        authorization: None,
        cookie: None,
        proxy_authorization: None,
        withheld: crate::redirect::Withheld::of(parts),
        tunnelled: false,
        forwarded: false,
        request: &parts.headers,
        defaults: &config.default_headers,
        accept: crate::coding::accept_encoding(parts, config),
    }
}

/// The fields of a [`Config`] that every request sets no header of its own
/// is sent with (its default headers, then `Accept-Encoding` with the
/// enabled codings when
/// [`adds_gzip`](crate::adds_gzip)), checked and encoded once, when a
/// client is built: such a request's head copies them whole instead of
/// walking the header maps and checking each field again.
///
/// ```
/// use roundtrip_io::{BodyLen, Config, DefaultFields, prepare};
/// use roundtrip_io::proto::conn::{ConnConfig, Connection};
/// use roundtrip_io::proto::time::Instant;
/// let config = Config::default();
/// let defaults = DefaultFields::new(&config);
/// let (parts, ()) = http::Request::get("http://127.0.0.1/").body(()).unwrap().into_parts();
/// let prepared = prepare(&parts, BodyLen::Empty, &config).unwrap();
/// let mut out = Vec::new();
/// let mut conn = Connection::new(ConnConfig::default());
/// prepared.start(&parts, &config, &defaults, &mut conn, Instant::ZERO, &mut out).unwrap();
/// assert!(out.starts_with(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nuser-agent: roundtrip/"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct DefaultFields {
    /// Without `Accept-Encoding`; `None` when the config's default
    /// headers are refused (each request then reports why).
    plain: Option<FieldBlock>,
    /// With it, when the config adds it ([`adds_gzip`](crate::adds_gzip)'s
    /// half that depends on the config alone).
    gzip: Option<Option<FieldBlock>>,
}

impl DefaultFields {
    /// The blocks of `config`'s fields.
    pub fn new(config: &Config) -> Self {
        let none = http::HeaderMap::new();
        let block = |accept| {
            let fields = Fields {
                authorization: None,
                cookie: None,
                proxy_authorization: None,
                withheld: Default::default(),
                tunnelled: false,
                // With a default `Proxy-Authorization`, the block is used
                // for forwarded requests only (`Prepared::start`).
                forwarded: true,
                request: &none,
                defaults: &config.default_headers,
                accept,
            };
            FieldBlock::new(fields).ok()
        };
        DefaultFields {
            plain: block(None),
            gzip: crate::gzip::config_adds_gzip(config)
                .then(crate::coding::accept_encoding_value)
                .flatten()
                .map(|value| block(Some(value))),
        }
    }

    /// The block a request sends: one for a request without fields of its
    /// own, else `None` (its fields are then walked as [`fields`] says).
    fn preset(&self, parts: &Parts) -> Option<&FieldBlock> {
        let withheld = || crate::redirect::Withheld::of(parts);
        if !parts.headers.is_empty() || withheld() != Default::default() {
            return None;
        }
        match &self.gzip {
            Some(gzip) if crate::gzip::request_takes_gzip(parts) => gzip.as_ref(),
            _ => self.plain.as_ref(),
        }
    }
}

/// The request's fields, as [`fields`] describes.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    /// `Authorization` from the URI's user info, sent after the request's
    /// own fields in place of a default one.
    authorization: Option<&'a HeaderValue>,
    /// The `Cookie` field sent after the request's own fields, in place of
    /// its own and of a default one.
    cookie: Option<&'a HeaderValue>,
    /// `Proxy-Authorization` for a forwarding proxy, sent last, in place
    /// of the request's own and of a default one.
    proxy_authorization: Option<&'a HeaderValue>,
    /// The default fields a redirect took off the request, not sent.
    withheld: crate::redirect::Withheld,
    /// Inside a tunnel: no `Proxy-Authorization` (the origin is no proxy).
    tunnelled: bool,
    /// Forwarded by an HTTP proxy: a default `Proxy-Authorization` may go.
    forwarded: bool,
    request: &'a http::HeaderMap,
    defaults: &'a http::HeaderMap,
    /// The `Accept-Encoding` value the client adds, if it does.
    accept: Option<&'static str>,
}

impl<'a> Fields<'a> {
    /// No fields: `empty` is a header map without any.
    fn none(empty: &'a http::HeaderMap) -> Self {
        debug_assert!(empty.is_empty());
        Fields {
            authorization: None,
            cookie: None,
            proxy_authorization: None,
            withheld: Default::default(),
            tunnelled: false,
            forwarded: false,
            request: empty,
            defaults: empty,
            accept: None,
        }
    }
}

impl<'a> IntoIterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        FieldsIter {
            request: self.request,
            defaults: self.defaults.iter(),
            own: self.request.iter(),
            authorization: self.authorization,
            cookie: self.cookie,
            proxy_authorization: self.proxy_authorization,
            withheld: self.withheld,
            tunnelled: self.tunnelled,
            forwarded: self.forwarded,
            accept: self.accept,
        }
    }
}

/// Iterator of [`Fields`].
#[derive(Debug)]
pub struct FieldsIter<'a> {
    request: &'a http::HeaderMap,
    defaults: http::header::Iter<'a, HeaderValue>,
    own: http::header::Iter<'a, HeaderValue>,
    /// `Authorization` from the URI's user info, still to come.
    authorization: Option<&'a HeaderValue>,
    /// The merged `Cookie` field, still to come.
    cookie: Option<&'a HeaderValue>,
    /// `Proxy-Authorization`, still to come.
    proxy_authorization: Option<&'a HeaderValue>,
    /// See [`Fields`].
    withheld: crate::redirect::Withheld,
    /// See [`Fields`].
    tunnelled: bool,
    /// See [`Fields`].
    forwarded: bool,
    /// `Accept-Encoding` still to come.
    accept: Option<&'static str>,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let pair = |(name, value): (&'a HeaderName, &'a HeaderValue)| {
            (name.as_str().as_bytes(), value.as_bytes())
        };
        for (name, value) in self.defaults.by_ref() {
            let withheld = self.withheld;
            let replaced = (name == AUTHORIZATION
                && (self.authorization.is_some() || withheld.cross_origin))
                || (name == COOKIE && (self.cookie.is_some() || withheld.cookie))
                // The client's credential for its proxies: to each of
                // them, redirected or not, and never to an origin.
                || (name == PROXY_AUTHORIZATION
                    && (self.proxy_authorization.is_some() || !self.forwarded))
                || (name == HOST && withheld.cross_origin)
                // A default the caller marked sensitive (an API key) stays
                // with its origin, as the request's own do; not the
                // proxies' token, which no origin ever gets.
                || (withheld.cross_origin && value.is_sensitive() && name != PROXY_AUTHORIZATION)
                || (withheld.body && (name == CONTENT_TYPE || name == CONTENT_ENCODING))
                || (withheld.referer && name == REFERER);
            if !self.request.contains_key(name) && !is_framing(name) && !replaced {
                return Some(pair((name, value)));
            }
        }
        // The request's own `Cookie` is in the merged field, when there is
        // one; its own `Proxy-Authorization` gives way to the proxy URL's
        // credentials (Go sets it over the caller's).
        let merged = self.cookie.is_some();
        let proxied = self.proxy_authorization.is_some() || self.tunnelled;
        let sent = |name: &HeaderName| {
            !(is_framing(name)
                || merged && name == COOKIE
                || proxied && name == PROXY_AUTHORIZATION)
        };
        if let Some(own) = self.own.by_ref().find(|(name, _)| sent(name)) {
            return Some(pair(own));
        }
        if let Some(value) = self.cookie.take() {
            return Some((b"cookie", value.as_bytes()));
        }
        if let Some(value) = self.authorization.take() {
            return Some((b"authorization", value.as_bytes()));
        }
        if let Some(value) = self.accept.take() {
            return Some((b"accept-encoding", value.as_bytes()));
        }
        if let Some(value) = self.proxy_authorization.take() {
            return Some((b"proxy-authorization", value.as_bytes()));
        }
        None
    }
}

fn is_framing(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH || name == TRANSFER_ENCODING
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).expect("valid request").into_parts().0
    }

    #[test]
    fn non_ascii_targets_are_percent_encoded() {
        let config = Config::default();
        for (uri, target) in [
            ("http://h/café?q=ü", &b"/caf%C3%A9?q=%C3%BC"[..]),
            ("http://h?ö", b"/?%C3%B6"),
            ("http://h/plain?x=%41", b"/plain?x=%41"),
        ] {
            let p = parts(http::Request::get(uri));
            let prep = prepare(&p, BodyLen::Empty, &config).expect(uri);
            assert_eq!(prep.head(&p).target, target, "{uri}");
        }
    }

    #[test]
    fn host_target_and_framing() {
        let config = Config::default();
        let p = parts(http::Request::post("http://example.com:8080/a?b"));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
        let head = prep.head(&p);
        assert_eq!(head.host, Some(&b"example.com:8080"[..]));
        assert_eq!(head.target, b"/a?b");
        assert_eq!(prep.framing, BodyFraming::Length(0));
        assert!(!prep.idempotent);
        for name in ["Idempotency-Key", "x-idempotency-key"] {
            let p = parts(http::Request::post("http://h/").header(name, "k1"));
            let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
            assert!(prep.idempotent, "{name}");
        }
        for (uri, host, key) in [
            ("http://h:1/", "h:1", ("h", 1)),
            ("http://H:65535/", "H:65535", ("h", 65535)),
            ("http://h:10", "h:10", ("h", 10)),
            ("http://h:/", "h:", ("h", 80)),
            ("http://u:p@h/", "h", ("h", 80)),
            ("http://[::1]:8080/", "[::1]:8080", ("::1", 8080)),
            // An IPv6 literal keeps its brackets on the default port too.
            ("http://[::1]/", "[::1]", ("::1", 80)),
        ] {
            let p = parts(http::Request::get(uri));
            let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
            let head = prep.head(&p);
            assert_eq!(head.host, Some(host.as_bytes()), "{uri}");
            assert_eq!(head.target, b"/", "{uri}");
            assert_eq!((prep.key.host(), prep.key.port()), key, "{uri}");
            assert_eq!(prep.framing, BodyFraming::None);
        }
        let p = parts(http::Request::get("http://h/").header("host", "other"));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
        assert_eq!(prep.head(&p).host, None, "the request's own Host wins");
        for (uri, target) in [
            ("http://h:8443/", &b"h:8443"[..]),
            ("http://h/", b"h:80"),
            ("http://[::1]:9/", b"[::1]:9"),
        ] {
            let p = parts(http::Request::connect(uri));
            let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
            assert_eq!(prep.head(&p).target, target, "CONNECT {uri}");
        }
    }

    #[test]
    fn refusals() {
        let config = Config::default();
        let p = parts(http::Request::get("ftp://example.com/"));
        assert!(matches!(
            prepare(&p, BodyLen::Empty, &config),
            Err(Error::InvalidRequest(InvalidRequest::UnsupportedScheme(_)))
        ));
        let p = parts(http::Request::get("/relative"));
        assert!(prepare(&p, BodyLen::Empty, &config).is_err());
        // An authority alone is no `http` URL: its bearer token would go
        // in clear to port 443.
        let p = parts(http::Request::get("api.example.com:443").header("authorization", "x"));
        assert!(matches!(
            prepare(&p, BodyLen::Empty, &config),
            Err(Error::InvalidRequest(InvalidRequest::MissingScheme))
        ));
        // Text between an IP literal and its port.
        let p = parts(http::Request::get("http://[::1]x:8080/"));
        assert!(matches!(
            prepare(&p, BodyLen::Empty, &config),
            Err(Error::InvalidRequest(InvalidRequest::InvalidPort(after))) if after == "x:8080"
        ));
        let p = parts(http::Request::get("http://[::1]/"));
        assert!(prepare(&p, BodyLen::Empty, &config).is_ok());
        // A CONNECT names an authority: that is its form.
        let p = parts(http::Request::connect("example.com:443"));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("CONNECT host:port");
        assert_eq!(prep.head(&p).target, b"example.com:443");
        let p = parts(http::Request::get("http://h:65536/"));
        assert!(matches!(
            prepare(&p, BodyLen::Empty, &config),
            Err(Error::InvalidRequest(InvalidRequest::InvalidPort(port))) if port == "65536"
        ));
        let p = parts(http::Request::post("http://h/").header("content-length", "3"));
        assert!(prepare(&p, BodyLen::Known(4), &config).is_err());
        let p = parts(http::Request::post("http://h/").header("content-length", "3"));
        let prep = prepare(&p, BodyLen::Unknown, &config).expect("valid");
        assert_eq!(prep.framing, BodyFraming::Length(3));
        // A length that is not 1*DIGIT, or fields that disagree.
        for lengths in [&["+3"][..], &["3", "4"], &["3 4"], &["-0"]] {
            let mut request = http::Request::post("http://h/");
            for n in lengths {
                request = request.header("content-length", *n);
            }
            let p = parts(request);
            let refused = prepare(&p, BodyLen::Unknown, &config);
            assert!(
                matches!(
                    refused,
                    Err(Error::InvalidRequest(InvalidRequest::Framing(_)))
                ),
                "{lengths:?}: {refused:?}"
            );
        }
        let p = parts(
            http::Request::post("http://h/")
                .header("content-length", "3")
                .header("content-length", " 3 "),
        );
        let prep = prepare(&p, BodyLen::Unknown, &config).expect("the same number twice");
        assert_eq!(prep.framing, BodyFraming::Length(3));
        // Two transfer codings named apart: refused, not the first taken.
        let p = parts(
            http::Request::post("http://h/")
                .header("transfer-encoding", "chunked")
                .header("transfer-encoding", "gzip"),
        );
        assert!(prepare(&p, BodyLen::Unknown, &config).is_err());
        // An empty in-memory body: GET sends no length, POST says 0.
        let p = parts(http::Request::get("http://h/"));
        let prep = prepare(&p, BodyLen::Known(0), &config).expect("valid");
        assert_eq!(prep.framing, BodyFraming::None);
        let p = parts(http::Request::post("http://h/"));
        let prep = prepare(&p, BodyLen::Known(0), &config).expect("valid");
        assert_eq!(prep.framing, BodyFraming::Length(0));
        // The request's own `Content-Length: 0` is sent on any method,
        // with no body at all as with an empty one.
        for body in [BodyLen::Empty, BodyLen::Known(0)] {
            let p = parts(http::Request::delete("http://h/").header("content-length", "0"));
            let prep = prepare(&p, body, &config).expect("valid");
            assert_eq!(prep.framing, BodyFraming::Length(0), "{body:?}");
        }
    }

    #[test]
    fn user_info_becomes_basic_auth() {
        let mut config = Config::default();
        config
            .default_headers
            .insert("authorization", HeaderValue::from_static("Bearer default"));
        let auth = |uri: &str, own: Option<&str>| {
            let mut req = http::Request::get(uri);
            if let Some(own) = own {
                req = req.header("authorization", own);
            }
            let p = parts(req);
            let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
            let got: Vec<_> = prep
                .fields(&p, &config)
                .into_iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"authorization"))
                .map(|(_, v)| String::from_utf8(v.to_vec()).expect("ascii"))
                .collect();
            assert_eq!(prep.head(&p).host, Some(&b"h:1"[..]), "{uri}");
            got
        };
        // RFC 7617 section 2's example, the space percent-encoded.
        assert_eq!(
            auth("http://Aladdin:open%20sesame@h:1/", None),
            ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]
        );
        // `user@`: an empty password; `%3A` in the user is a colon of it.
        assert_eq!(auth("http://u%3Ax@h:1/", None), ["Basic dTp4Og=="]);
        assert_eq!(auth("http://a:b:c@h:1/", None), ["Basic YTpiOmM="]);
        assert_eq!(auth("http://h:1/", None), ["Bearer default"]);
        assert_eq!(
            auth("http://u:p@h:1/", Some("Bearer mine")),
            ["Bearer mine"]
        );
        // The credentials never show in a `Debug` of the plan.
        let p = parts(http::Request::get("http://u:secret@h:1/"));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
        assert!(
            prep.authorization
                .as_ref()
                .is_some_and(HeaderValue::is_sensitive)
        );
        assert!(!format!("{prep:?}").contains("c2VjcmV0"), "{prep:?}");
    }

    /// A default `Proxy-Authorization` goes on a `CONNECT`, and to a
    /// forwarding proxy, after a redirect to another origin too (the
    /// client's credential for its proxies); never to an origin.
    #[test]
    fn a_default_proxy_token_follows_redirects_to_proxies_only() {
        let mut config = Config::default();
        let proxy = crate::proxy::Proxy::parse("http://127.0.0.1:3128").unwrap();
        config.proxies = crate::proxy::Proxies::all(proxy);
        // Sensitive, as credentials usually are: it still follows.
        let mut token = HeaderValue::from_static("Bearer t");
        token.set_sensitive(true);
        config.default_headers.insert(PROXY_AUTHORIZATION, token);
        let mut p = parts(http::Request::get("https://h/"));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
        let token = connect_authorization(&prep, &p, &config);
        assert_eq!(token.as_ref().map(|v| v.as_bytes()), Some(&b"Bearer t"[..]));
        p.extensions.insert(crate::redirect::Withheld {
            cross_origin: true,
            ..Default::default()
        });
        let token = connect_authorization(&prep, &p, &config);
        assert_eq!(token.as_ref().map(|v| v.as_bytes()), Some(&b"Bearer t"[..]));
        // Forwarded (plain http), and straight to an origin.
        let sends = |p: &Parts, config: &Config| {
            let prep = prepare(p, BodyLen::Empty, config).expect("valid");
            prep.fields(p, config)
                .into_iter()
                .any(|(name, _)| name == b"proxy-authorization")
        };
        let mut p = parts(http::Request::get("http://h/"));
        p.extensions.insert(crate::redirect::Withheld {
            cross_origin: true,
            ..Default::default()
        });
        assert!(sends(&p, &config));
        config.proxies = crate::proxy::Proxies::none();
        assert!(!sends(&p, &config));
    }

    /// `OPTIONS *` through a forwarding proxy asks about the server: its
    /// absolute form has no path (RFC 9112 section 3.2.4).
    #[test]
    fn options_asterisk_is_forwarded_without_a_path() {
        let mut config = Config::default();
        let proxy = crate::proxy::Proxy::parse("http://127.0.0.1:3128").unwrap();
        config.proxies = crate::proxy::Proxies::all(proxy);
        let uri = Uri::from_parts({
            let mut u = http::uri::Parts::default();
            u.scheme = Some(http::uri::Scheme::HTTP);
            u.authority = Some("h:8080".parse().unwrap());
            u.path_and_query = Some("*".parse().unwrap());
            u
        })
        .unwrap();
        let p = parts(http::Request::options(uri));
        let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
        assert_eq!(prep.connect_target.as_deref(), Some("http://h:8080"));
    }

    #[test]
    fn defaults_yield_to_request_headers() {
        let config = Config::default();
        let p = parts(
            http::Request::get("http://h/")
                .header("user-agent", "mine")
                .header("content-length", "0"),
        );
        let got: Vec<_> = fields(&p, &config).into_iter().collect();
        let mut want = vec![(&b"user-agent"[..], &b"mine"[..])];
        if let Some(value) = crate::accept_encoding_value() {
            want.push((&b"accept-encoding"[..], value.as_bytes()));
        }
        assert_eq!(got, want);
    }

    /// A head started with the encoded default fields is the head the
    /// field walk writes, byte for byte, for every config and request
    /// shape, and a config whose defaults are refused fails each request
    /// as the walk does.
    #[test]
    fn default_fields_equal_the_field_walk() {
        let gzip_off = Config {
            gzip: false,
            ..Config::default()
        };
        let mut own_encoding = Config::default();
        own_encoding
            .default_headers
            .insert("accept-encoding", HeaderValue::from_static("br"));
        let mut two = Config::default();
        two.default_headers
            .insert("x-a", HeaderValue::from_static("1"));
        two.default_headers
            .append("x-a", HeaderValue::from_static("2"));
        let mut refused = Config::default();
        refused
            .default_headers
            .insert("x-pad", HeaderValue::from_static(" padded"));
        let mut closing = Config::default();
        closing
            .default_headers
            .insert("connection", HeaderValue::from_static("close"));
        let mut host = Config::default();
        host.default_headers
            .insert("host", HeaderValue::from_static("virtual.test"));
        let requests: [fn() -> http::request::Builder; 6] = [
            || http::Request::get("http://h/"),
            || http::Request::head("http://h/"),
            || http::Request::post("http://h/"),
            || http::Request::connect("http://h:1/"),
            || http::Request::get("http://h/").header("range", "bytes=0-1"),
            || http::Request::get("http://h/").header("x-a", "own"),
        ];
        let mut preset_used = 0;
        for config in [
            Config::default(),
            gzip_off,
            own_encoding,
            two,
            refused,
            closing,
            host,
        ] {
            let defaults = DefaultFields::new(&config);
            for request in &requests {
                let p = parts(request());
                let prep = prepare(&p, BodyLen::Empty, &config).expect("valid");
                preset_used += usize::from(defaults.preset(&p).is_some());
                let mut walked = Vec::new();
                let walk = roundtrip_proto::encode::encode_head(
                    &prep.head(&p),
                    fields(&p, &config),
                    &mut walked,
                );
                let mut conn = Connection::new(Default::default());
                let mut out = Vec::new();
                let started =
                    prep.start(&p, &config, &defaults, &mut conn, Instant::ZERO, &mut out);
                match walk {
                    Ok(()) => assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&walked),
                        "{:?} {}",
                        config.default_headers,
                        p.method
                    ),
                    // A bad value is named (the request's or a default).
                    Err(roundtrip_proto::Error::InvalidHeaderValue { .. }) => {
                        let err = started.expect_err("refused by the walk");
                        assert!(
                            matches!(
                                err,
                                Error::InvalidRequest(InvalidRequest::HeaderValue { .. })
                            ),
                            "{err:?}"
                        );
                    }
                    Err(e) => {
                        let err = started.expect_err("refused by the walk");
                        assert_eq!(
                            err.to_string(),
                            Error::from_proto(e, Phase::Write, false).to_string()
                        );
                    }
                }
            }
        }
        // Four request shapes without fields of their own, six configs
        // whose defaults are accepted.
        assert_eq!(preset_used, 4 * 6);
    }

    /// A client-wide `Host` (a virtual host behind an address, as with
    /// `curl -H Host:`) is sent once, in place of the URL's, until a
    /// redirect leaves the origin; a request's own `Host` wins over it.
    #[test]
    fn a_default_host_replaces_the_urls_within_the_origin() {
        let mut config = Config::default();
        config
            .default_headers
            .insert("host", HeaderValue::from_static("virtual.test"));
        let defaults = DefaultFields::new(&config);
        let sent = |p: &Parts| {
            let prep = prepare(p, BodyLen::Empty, &config).expect("valid");
            let mut conn = Connection::new(Default::default());
            let mut out = Vec::new();
            prep.start(p, &config, &defaults, &mut conn, Instant::ZERO, &mut out)
                .expect("encoded");
            let head = String::from_utf8(out).expect("ascii");
            let hosts: Vec<String> = head
                .split("\r\n")
                .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
                .map(|l| l[5..].trim().to_string())
                .collect();
            hosts
        };
        assert_eq!(
            sent(&parts(http::Request::get("http://10.0.0.1/"))),
            ["virtual.test"]
        );
        assert_eq!(
            sent(&parts(
                http::Request::get("http://10.0.0.1/").header("host", "own.test")
            )),
            ["own.test"]
        );
        let follow = |location: &str| {
            use crate::redirect::{Redirects, Replay, Verdict};
            let mut p = parts(http::Request::get("http://10.0.0.1/a"));
            let mut headers = http::HeaderMap::new();
            headers.insert("location", HeaderValue::from_str(location).expect("valid"));
            let found = http::StatusCode::FOUND;
            match Redirects::new(&p.uri).handle_response(
                &p,
                found,
                &headers,
                Replay::Empty,
                &config,
            ) {
                Ok(Verdict::Follow(hop)) => hop.apply(&mut p),
                other => panic!("not followed: {other:?}"),
            }
            p
        };
        assert_eq!(sent(&follow("/b")), ["virtual.test"]);
        assert_eq!(
            sent(&follow("http://other.test:8080/")),
            ["other.test:8080"]
        );
        // Every later hop too, back on the first origin included (as the
        // default credentials).
        let mut back = follow("http://other.test:8080/");
        back.uri = "http://10.0.0.1/c".parse().expect("valid");
        assert_eq!(sent(&back), ["10.0.0.1"]);
    }
}
