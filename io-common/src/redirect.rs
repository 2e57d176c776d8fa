//! Following redirects: Go's `Client.do` loop as a value the backends drive.
//!
//! A backend sends the request, shows each final response head to
//! [`Redirects::handle_response`], and either returns the response
//! ([`Verdict::Deliver`]) or drops its body (drained or closed, as the core
//! decides), applies the [`Hop`] to the request and sends it again. Every
//! decision is here; nothing here does I/O.
//!
//! | status | method of the next request | body |
//! |---|---|---|
//! | 301, 302, 303 | GET (HEAD stays HEAD, GET stays GET) | dropped, with its `Content-*`, `Transfer-Encoding` and `Expect` fields |
//! | 307, 308 | unchanged | sent again; a body that cannot be replayed returns the redirect as it is |
//!
//! `Location` is resolved against the URL just requested (RFC 9110 section
//! 10.2.2, RFC 3986 section 5) by the `url` crate. A hop to another origin
//! (scheme, host or port) drops `Authorization`, `Cookie`,
//! `Proxy-Authorization` and a caller-set `Host`. Each hop sends the URL
//! it comes from as `Referer`, as browsers do by default
//! (`strict-origin-when-cross-origin`): the whole URL (without user info)
//! within the origin, its origin alone to another, none from `https` to
//! `http`; a `Referer` of the caller's own is kept, except from `https` to
//! `http` ([`Config::referer`]).
//!
//! ```
//! use roundtrip_io::http::{self, HeaderMap, StatusCode};
//! use roundtrip_io::{Config, Redirects, Replay, Verdict};
//!
//! let config = Config::default();
//! let (mut parts, ()) = http::Request::post("http://127.0.0.1:8080/form").body(()).unwrap().into_parts();
//! let mut redirects = Redirects::new(&parts.uri);
//! let mut headers = HeaderMap::new();
//! headers.insert("location", "/done?id=7".parse().unwrap());
//! let verdict = redirects.handle_response(&parts, StatusCode::SEE_OTHER, &headers, Replay::Replayable, &config).unwrap();
//! let Verdict::Follow(hop) = verdict else { panic!("a 303 is followed") };
//! assert!(!hop.keeps_body());
//! hop.apply(&mut parts);
//! assert_eq!(parts.method, http::Method::GET);
//! assert_eq!(parts.uri, "http://127.0.0.1:8080/done?id=7");
//! assert_eq!(redirects.chain().len(), 2);
//! ```

use std::fmt;
use std::sync::Arc;

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, EXPECT, HOST, LOCATION,
    PROXY_AUTHORIZATION, REFERER, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, Uri};
use url::Url;

use crate::body::Body;
use crate::config::Config;
use crate::error::Error;
use crate::gzip::{GzipDecoder, decode_response};

/// The URLs a response came through: the request's own first, then each
/// `Location` followed; the last is the URL that answered. A final response
/// that came through at least one redirect carries it in its extensions; a
/// response to the request as sent carries none (its URL is the request's),
/// so a response without redirects costs no allocation for it.
///
/// ```
/// use roundtrip_io::RedirectChain;
/// let chain = RedirectChain(vec!["http://a/".parse().unwrap(), "http://b/".parse().unwrap()]);
/// assert_eq!(chain.last().unwrap(), "http://b/");
/// assert_eq!(chain.redirects(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectChain(pub Vec<Uri>);

impl RedirectChain {
    /// The URL that gave the final response.
    pub fn last(&self) -> Option<&Uri> {
        self.0.last()
    }

    /// How many redirects were followed.
    pub fn redirects(&self) -> usize {
        self.0.len().saturating_sub(1)
    }
}

/// A redirect about to be followed, as the [`RedirectPolicy`] sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct RedirectAttempt<'a> {
    /// The redirect's status.
    pub status: StatusCode,
    /// Where it points, resolved.
    pub next: &'a Uri,
    /// The method the next request would use.
    pub method: &'a Method,
    /// Every URL requested so far, the original first.
    pub chain: &'a [Uri],
}

/// What the [`RedirectPolicy`] says about a [`RedirectAttempt`].
#[derive(Debug)]
pub enum RedirectAction {
    /// Follow it.
    Follow,
    /// Return the redirect response itself, body unread (Go's
    /// `ErrUseLastResponse`).
    Stop,
    /// Fail the request with [`Error::RedirectRefused`] carrying this reason.
    Error(Box<dyn std::error::Error + Send + Sync>),
}

type PolicyFn = dyn Fn(&RedirectAttempt<'_>) -> RedirectAction + Send + Sync;

/// A check run before each redirect is followed (Go's `CheckRedirect`), after
/// the [`Config::max_redirects`] limit. Cheap to clone.
///
/// ```
/// use roundtrip_io::{Config, RedirectAction, RedirectPolicy};
/// let mut config = Config::default();
/// // Stay on one host.
/// config.redirect_policy = Some(RedirectPolicy::new(|attempt| {
///     if attempt.next.host() == attempt.chain[0].host() {
///         RedirectAction::Follow
///     } else {
///         RedirectAction::Stop
///     }
/// }));
/// ```
#[derive(Clone)]
pub struct RedirectPolicy(Arc<PolicyFn>);

impl RedirectPolicy {
    /// A policy calling `check`.
    pub fn new(
        check: impl Fn(&RedirectAttempt<'_>) -> RedirectAction + Send + Sync + 'static,
    ) -> Self {
        RedirectPolicy(Arc::new(check))
    }

    /// Asks the policy.
    pub fn check(&self, attempt: &RedirectAttempt<'_>) -> RedirectAction {
        (self.0)(attempt)
    }
}

impl fmt::Debug for RedirectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedirectPolicy(..)")
    }
}

/// What the request body is, as far as sending it again goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// No body.
    Empty,
    /// Bytes in memory, or a reader not read from yet: can be sent again.
    Replayable,
    /// A reader already (partly) sent: cannot be sent again.
    Consumed,
}

/// What to do with a final response.
#[derive(Debug)]
pub enum Verdict {
    /// Return it to the caller.
    Deliver,
    /// Drop its body and send the request again as the hop says.
    Follow(Hop),
}

/// What [`Redirects::on_response`] made of a response.
#[derive(Debug)]
pub enum Next<B> {
    /// The final response, as the caller gets it.
    Deliver(http::Response<B>),
    /// A redirect being followed: the request and its body were rewritten
    /// for the next hop; this is the redirect's own response, for its body
    /// to be drained or closed.
    Follow(http::Response<B>),
}

/// How the next request of a redirect differs from the last one.
#[derive(Debug)]
pub struct Hop {
    uri: Uri,
    method: Method,
    keeps_body: bool,
    cross_origin: bool,
    referer: Referer,
}

/// In a request's extensions: its `Referer` is the one a redirect set,
/// not the caller's.
#[derive(Clone, Copy, Debug)]
struct OwnReferer;

/// What a hop does to the request's `Referer` field.
#[derive(Debug)]
enum Referer {
    /// Leaves it as it is ([`Config::referer`] off).
    Keep,
    /// Sets it to the URL just requested.
    Set(http::HeaderValue),
    /// Removes it: a hop from `https` to `http` must not tell the plain
    /// text side where it came from (RFC 9110 section 10.1.3).
    Remove,
}

impl Hop {
    /// Whether the body is sent again (307, 308); otherwise the backend
    /// replaces it with an empty one.
    pub fn keeps_body(&self) -> bool {
        self.keeps_body
    }

    /// Where the next request goes.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// [`apply`](Self::apply)s the hop to the request, and replaces its
    /// body with an empty one unless the hop [`keeps_body`](Self::keeps_body).
    pub fn apply_with_body<R>(self, parts: &mut Parts, body: &mut Body<R>) {
        if !self.keeps_body {
            *body = Body::empty();
        }
        self.apply(parts);
    }

    /// Rewrites the request: URL, method, and the fields that must not
    /// follow (body fields when the body is dropped; credentials and a
    /// caller-set `Host` on a hop to another origin).
    pub fn apply(self, parts: &mut Parts) {
        if !self.keeps_body {
            for name in [
                CONTENT_LENGTH,
                TRANSFER_ENCODING,
                CONTENT_TYPE,
                CONTENT_ENCODING,
                EXPECT,
            ] {
                parts.headers.remove(name);
            }
            // The client's default body fields stay behind too.
            let withheld = Withheld::of(parts);
            parts.extensions.insert(Withheld {
                body: true,
                ..withheld
            });
        }
        if self.cross_origin {
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
                parts.headers.remove(name);
            }
            // So do fields the caller marked sensitive (an API key under
            // a name of its own), and the obsolete `Cookie2`.
            let marked: Vec<http::HeaderName> = parts
                .headers
                .iter()
                .filter(|(name, value)| value.is_sensitive() || *name == "cookie2")
                .map(|(name, _)| name.clone())
                .collect();
            for name in marked {
                parts.headers.remove(name);
            }
            // The client's default credentials for the origin (and its
            // default `Host`, which names the first origin) stay behind
            // too, on this hop and every later one (Go after
            // CVE-2024-45336); its default `Proxy-Authorization`, which is
            // its proxies', not the origin's, follows.
            let withheld = Withheld::of(parts);
            parts.extensions.insert(Withheld {
                cross_origin: true,
                cookie: true,
                ..withheld
            });
        }
        match self.referer {
            Referer::Keep => {}
            Referer::Set(value) => {
                parts.headers.insert(REFERER, value);
                parts.extensions.insert(OwnReferer);
            }
            Referer::Remove => {
                parts.headers.remove(REFERER);
                // The client's default one stays behind too.
                let withheld = Withheld::of(parts);
                parts.extensions.insert(Withheld {
                    referer: true,
                    ..withheld
                });
            }
        }
        parts.uri = self.uri;
        parts.method = self.method;
    }
}

/// Which of the client's default fields a redirect took off the request,
/// in its extensions: after a hop to another origin its default
/// `Authorization` and `Host` (`cross_origin`) and
/// `Cookie` (`cookie`); after a redirect that set cookies of its default `Cookie`'s
/// names, that `Cookie` (`cookie`: the request carries what is left of
/// it as its own); after a redirect that dropped the body, its default
/// `Content-Type` and `Content-Encoding` (`body`); after a hop that must
/// send no `Referer` (from `https` to `http`), its default one (`referer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Withheld {
    pub cross_origin: bool,
    pub cookie: bool,
    pub body: bool,
    pub referer: bool,
}

impl Withheld {
    /// What a redirect took off the request `parts` (nothing for a request
    /// that was not redirected).
    pub(crate) fn of(parts: &Parts) -> Withheld {
        parts
            .extensions
            .get::<Withheld>()
            .copied()
            .unwrap_or_default()
    }
}

/// The redirects of one request: the chain so far, and the decision on
/// each response.
///
/// The chain is written only once a response is a redirect: a request
/// answered at once (the common case) costs no allocation here.
#[derive(Debug, Default)]
pub struct Redirects {
    /// Empty until the first redirect response; then the request's URL, and
    /// each URL followed.
    chain: Vec<Uri>,
}

impl Redirects {
    /// The chain of a request to `uri`. The URL is taken from the request
    /// itself when the first redirect comes, so nothing is copied now.
    pub fn new(_uri: &Uri) -> Self {
        Redirects::default()
    }

    /// Every URL requested so far, the original first; empty until a
    /// response was a redirect.
    pub fn chain(&self) -> &[Uri] {
        &self.chain
    }

    /// The chain for the final response's extensions: `Some` when at least
    /// one redirect was followed.
    pub fn into_followed(self) -> Option<RedirectChain> {
        (self.chain.len() > 1).then_some(RedirectChain(self.chain))
    }

    /// One turn of Go's `Client.do` loop, for a backend that sends each hop
    /// itself: decides on `response` to the request `parts` with `body`
    /// ([`handle_response`](Self::handle_response)). A redirect to follow
    /// rewrites the request ([`Hop::apply_with_body`]); a final response is
    /// delivered with a gzip body the client asked for going through the
    /// decoder [`decode_response`] sets up (`decode_with` hands it to the
    /// body), and the chain in its extensions when it came through
    /// redirects. Only gzip goes through `decode_with`; an answer in another
    /// coding the client asked for (deflate, br, zstd) is delivered as it
    /// came, `Content-Encoding` kept (the exchange machine decodes them all,
    /// through [`decode_content`](crate::decode_content)).
    pub fn on_response<B, R>(
        &mut self,
        parts: &mut Parts,
        body: &mut Body<R>,
        response: http::Response<B>,
        config: &Config,
        decode_with: impl FnOnce(&mut B, GzipDecoder),
    ) -> Result<Next<B>, Error> {
        let (status, headers) = (response.status(), response.headers());
        match self.handle_response(parts, status, headers, body.replay(), config)? {
            Verdict::Follow(hop) => {
                hop.apply_with_body(parts, body);
                Ok(Next::Follow(response))
            }
            Verdict::Deliver => {
                let (mut head, mut body) = response.into_parts();
                let decoder = decode_response(
                    parts,
                    config,
                    head.status,
                    &mut head.headers,
                    &mut head.extensions,
                );
                if let Some(decoder) = decoder {
                    decode_with(&mut body, decoder);
                }
                if let Some(chain) = std::mem::take(self).into_followed() {
                    head.extensions.insert(chain);
                }
                Ok(Next::Deliver(http::Response::from_parts(head, body)))
            }
        }
    }

    /// Decides on the final response (`status`, `headers`) to the request
    /// `parts`, whose body is `body`. On [`Verdict::Follow`] the chain
    /// grows by the next URL.
    pub fn handle_response(
        &mut self,
        parts: &Parts,
        status: StatusCode,
        headers: &HeaderMap,
        body: Replay,
        config: &Config,
    ) -> Result<Verdict, Error> {
        // Go's `redirectBehavior`.
        let (method, keeps_body) = match status.as_u16() {
            // RFC 9110 section 15.4.2-4 allow keeping the method for 301 and
            // 302; browsers and Go turn all but GET and HEAD into GET.
            301..=303 => match parts.method {
                Method::GET | Method::HEAD => (parts.method.clone(), false),
                _ => (Method::GET, false),
            },
            // RFC 9110 section 15.4.8-9: same method, same body, and the
            // fields that describe it (an empty one too: a `POST` with a
            // `Content-Type` and no body keeps it, as Go does); a body that
            // is gone cannot be sent again, so the redirect is the answer.
            307 | 308 if body == Replay::Consumed => return Ok(Verdict::Deliver),
            307 | 308 => (parts.method.clone(), true),
            _ => return Ok(Verdict::Deliver),
        };
        if config.max_redirects == 0 || parts.method == Method::CONNECT {
            return Ok(Verdict::Deliver);
        }
        // A 3xx without a `Location` (or an empty one) is the answer, as Go
        // returns it (golang/go#17773, #49281: seen in the wild); one that
        // is there but unusable is an error.
        let located = headers
            .get(LOCATION)
            .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty());
        if !located {
            return Ok(Verdict::Deliver);
        }
        if self.chain.is_empty() {
            // The first redirect: until now `parts` is the request as sent.
            self.chain.push(parts.uri.clone());
        }
        let current = url_of(&parts.uri);
        let (next_url, next) = resolve(current.as_ref(), status, headers)?;
        if self.chain.len() > config.max_redirects {
            return Err(Error::TooManyRedirects {
                max: config.max_redirects,
                chain: std::mem::take(&mut self.chain),
            });
        }
        if let Some(policy) = &config.redirect_policy {
            let attempt = RedirectAttempt {
                status,
                next: &next,
                method: &method,
                chain: &self.chain,
            };
            match policy.check(&attempt) {
                RedirectAction::Follow => {}
                RedirectAction::Stop => return Ok(Verdict::Deliver),
                RedirectAction::Error(source) => {
                    return Err(Error::RedirectRefused { next, source });
                }
            }
        }
        let cross_origin = current
            .as_ref()
            .is_none_or(|c| c.origin() != next_url.origin());
        // From `https` to `http` no `Referer` goes, whatever the setting
        // (RFC 9110 section 10.1.3: a MUST NOT).
        let downgrade = current
            .as_ref()
            .is_some_and(|c| c.scheme() == "https" && next_url.scheme() == "http");
        let referer = match config.referer {
            true => referer(parts, current.as_ref(), &next_url),
            false if downgrade => Referer::Remove,
            false => Referer::Keep,
        };
        self.chain.push(next.clone());
        Ok(Verdict::Follow(Hop {
            uri: next,
            method,
            keeps_body,
            cross_origin,
            referer,
        }))
    }
}

/// The `Referer` of a hop of the request `parts` from `from` to `to`:
/// browsers' default policy (`strict-origin-when-cross-origin`; RFC 9110
/// section 10.1.3 says not to send one from `https` to another origin,
/// browsers send the origin alone): the URL just requested without its
/// user info and fragment within the origin, its origin to another, none
/// from `https` to `http`. A `Referer` the caller set stays (Go's
/// `refererForURL`), except from `https` to `http`.
fn referer(parts: &Parts, from: Option<&Url>, to: &Url) -> Referer {
    let Some(from) = from else {
        return Referer::Remove;
    };
    if from.scheme() == "https" && to.scheme() == "http" {
        return Referer::Remove;
    }
    let own = parts.headers.contains_key(REFERER) && parts.extensions.get::<OwnReferer>().is_none();
    if own {
        return Referer::Keep;
    }
    let mut from = from.clone();
    if from.origin() == to.origin() {
        // Neither fails on an `http(s)` URL with a host.
        let _ = from.set_username("");
        let _ = from.set_password(None);
        from.set_fragment(None);
    } else {
        from = match Url::parse(&from.origin().ascii_serialization()) {
            Ok(origin) => origin,
            Err(_) => return Referer::Remove,
        };
    }
    match http::HeaderValue::from_str(from.as_str()) {
        Ok(value) => Referer::Set(value),
        Err(_) => Referer::Remove,
    }
}

/// The request URI as a `url::Url` (`http` when it names no scheme).
fn url_of(uri: &Uri) -> Option<Url> {
    if uri.scheme().is_some() {
        Url::parse(&uri.to_string()).ok()
    } else {
        Url::parse(&format!("http://{uri}")).ok()
    }
}

/// The redirect's `Location` resolved against `base`, as both types.
fn resolve(
    base: Option<&Url>,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(Url, Uri), Error> {
    let value = headers
        .get(LOCATION)
        .map(|v| v.as_bytes())
        .filter(|v| !v.trim_ascii().is_empty());
    let Some(value) = value else {
        return Err(Error::InvalidLocation {
            status,
            location: None,
        });
    };
    let invalid = || Error::InvalidLocation {
        status,
        location: Some(String::from_utf8_lossy(value).into_owned()),
    };
    // A `Location` in another charset than UTF-8 (Latin-1 file names) has
    // its bytes above 0x7F percent-encoded, so the server gets back the
    // bytes it sent (Go sends them so too); UTF-8 is left to the `url`
    // crate, which encodes it the same way.
    let value = value.trim_ascii();
    let text = match std::str::from_utf8(value) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => std::borrow::Cow::Owned(percent_encode_high(value)),
    };
    let mut url = match base {
        Some(base) => base.join(&text),
        None => Url::parse(&text),
    }
    .map_err(|_| invalid())?;
    // Only a web URL is followed: `ftp:` or `mailto:` is the redirect's
    // error, with its status and location, before any policy or hop.
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid());
    }
    // The fragment is the client's business (RFC 9110 section 10.2.2), never
    // sent.
    url.set_fragment(None);
    let uri = Uri::try_from(url.as_str()).map_err(|_| invalid())?;
    Ok((url, uri))
}

/// `bytes` with each byte above 0x7F as `%XX`, the rest as it is.
fn percent_encode_high(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    for &b in bytes {
        match b {
            0..=0x7f => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.body(()).expect("valid request").into_parts().0
    }

    fn located(location: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, location.parse().expect("valid value"));
        h
    }

    /// Follows one redirect; returns the rewritten parts and whether the body stays.
    fn follow(
        method: Method,
        uri: &str,
        status: u16,
        location: &str,
        body: Replay,
    ) -> Option<(Parts, bool)> {
        let mut p = parts(
            method,
            uri,
            &[
                ("content-type", "text/plain"),
                ("content-length", "3"),
                ("authorization", "Bearer x"),
                ("cookie", "a=b"),
                ("proxy-authorization", "Basic y"),
                ("x-keep", "1"),
                ("x-api-key", "k"),
                ("cookie2", "c"),
            ],
        );
        let key = p.headers.get_mut("x-api-key").expect("set above");
        key.set_sensitive(true);
        let mut r = Redirects::new(&p.uri);
        let status = StatusCode::from_u16(status).expect("valid status");
        let verdict = r
            .handle_response(&p, status, &located(location), body, &Config::default())
            .expect("no error");
        match verdict {
            Verdict::Deliver => None,
            Verdict::Follow(hop) => {
                let keeps = hop.keeps_body();
                hop.apply(&mut p);
                assert_eq!(r.chain().last(), Some(&p.uri));
                Some((p, keeps))
            }
        }
    }

    #[test]
    fn method_and_body_rules() {
        use Method as M;
        use Replay::*;
        // (method, status, body) -> (next method, body kept); None = delivered.
        type Row = (M, u16, Replay, Option<(M, bool)>);
        let table: &[Row] = &[
            (M::GET, 301, Empty, Some((M::GET, false))),
            (M::HEAD, 301, Empty, Some((M::HEAD, false))),
            (M::POST, 301, Replayable, Some((M::GET, false))),
            (M::POST, 302, Consumed, Some((M::GET, false))),
            (M::PUT, 303, Replayable, Some((M::GET, false))),
            (M::HEAD, 303, Empty, Some((M::HEAD, false))),
            (M::DELETE, 303, Empty, Some((M::GET, false))),
            (M::POST, 307, Replayable, Some((M::POST, true))),
            (M::PUT, 308, Replayable, Some((M::PUT, true))),
            (M::GET, 307, Empty, Some((M::GET, true))),
            (M::POST, 308, Empty, Some((M::POST, true))),
            (M::POST, 307, Consumed, None),
            (M::POST, 308, Consumed, None),
            (M::GET, 300, Empty, None),
            (M::GET, 304, Empty, None),
            (M::GET, 200, Empty, None),
        ];
        for (method, status, body, want) in table {
            let got = follow(method.clone(), "http://h/a/b", *status, "/c", *body)
                .map(|(p, keeps)| (p.method, keeps));
            assert_eq!(got, *want, "{method} {status} {body:?}");
        }
    }

    /// The chain in the final response's extensions: none without a
    /// redirect (and no allocation for it), the whole chain after one.
    #[test]
    fn chain_only_after_a_redirect() {
        let config = Config::default();
        let deliver = |r: &mut Redirects, p: &mut Parts, status: u16, location: &str| {
            let response = http::Response::builder()
                .status(status)
                .header(LOCATION, location)
                .body(())
                .expect("valid response");
            let mut body = Body::<()>::empty();
            r.on_response(p, &mut body, response, &config, |_, _| {})
                .expect("no error")
        };
        let mut p = parts(Method::GET, "http://h/a", &[]);
        let mut r = Redirects::new(&p.uri);
        assert!(r.chain().is_empty());
        let Next::Deliver(plain) = deliver(&mut r, &mut p, 200, "/x") else {
            panic!("a 200 is delivered")
        };
        assert!(plain.extensions().get::<RedirectChain>().is_none());
        assert!(r.chain().is_empty());

        let mut r = Redirects::new(&p.uri);
        assert!(matches!(
            deliver(&mut r, &mut p, 302, "/b"),
            Next::Follow(_)
        ));
        let Next::Deliver(last) = deliver(&mut r, &mut p, 200, "/x") else {
            panic!("a 200 is delivered")
        };
        let chain = last.extensions().get::<RedirectChain>().expect("followed");
        assert_eq!(chain.0, ["http://h/a", "http://h/b"]);
        assert_eq!(chain.redirects(), 1);
    }

    #[test]
    fn dropped_body_takes_its_fields() {
        let (p, _) =
            follow(Method::POST, "http://h/", 303, "/x", Replay::Replayable).expect("followed");
        for name in ["content-type", "content-length"] {
            assert!(!p.headers.contains_key(name), "{name}");
        }
        assert_eq!(p.headers["x-keep"], "1");
        let (p, _) =
            follow(Method::POST, "http://h/", 307, "/x", Replay::Replayable).expect("followed");
        assert_eq!(p.headers["content-type"], "text/plain");
        assert_eq!(p.headers["content-length"], "3");
        // An empty body keeps its fields too: the request is unchanged.
        let (p, keeps) =
            follow(Method::POST, "http://h/", 308, "/x", Replay::Empty).expect("followed");
        assert!(keeps);
        assert_eq!(p.headers["content-type"], "text/plain");
        assert_eq!(Withheld::of(&p), Withheld::default());
    }

    #[test]
    fn relative_locations_resolve() {
        let table = [
            ("/c", "http://h:81/c"),
            ("c?q=1", "http://h:81/a/c?q=1"),
            ("../z", "http://h:81/z"),
            ("?only", "http://h:81/a/b?only"),
            ("//other:9/p", "http://other:9/p"),
            ("http://x/y#frag", "http://x/y"),
            ("http://H:80/", "http://h/"),
        ];
        for (location, want) in table {
            let (p, _) = follow(Method::GET, "http://h:81/a/b", 302, location, Replay::Empty)
                .expect("followed");
            assert_eq!(p.uri, want, "{location}");
        }
    }

    /// A `Location` that is not UTF-8 (Latin-1 `é` is 0xE9) is followed
    /// with those bytes percent-encoded; UTF-8 comes out the same way.
    #[test]
    fn non_utf8_locations_are_percent_encoded() {
        let p = parts(Method::GET, "http://h/a", &[]);
        let config = Config::default();
        for (location, want) in [
            (&b"/caf\xe9?q=\xe9"[..], "http://h/caf%E9?q=%E9"),
            ("/café".as_bytes(), "http://h/caf%C3%A9"),
        ] {
            let mut headers = HeaderMap::new();
            let value = http::HeaderValue::from_bytes(location).expect("obs-text is a value");
            headers.insert(LOCATION, value);
            let mut r = Redirects::new(&p.uri);
            let verdict =
                r.handle_response(&p, StatusCode::FOUND, &headers, Replay::Empty, &config);
            let Ok(Verdict::Follow(hop)) = verdict else {
                panic!("not followed: {verdict:?}")
            };
            assert_eq!(hop.uri(), want);
        }
    }

    /// The request a `302` to `location` makes of a GET of `from` with
    /// `fields`.
    fn after_302(from: &str, fields: &[(&str, &str)], location: &str, config: &Config) -> Parts {
        let mut p = parts(Method::GET, from, fields);
        let mut r = Redirects::new(&p.uri);
        let verdict = r.handle_response(
            &p,
            StatusCode::FOUND,
            &located(location),
            Replay::Empty,
            config,
        );
        let Ok(Verdict::Follow(hop)) = verdict else {
            panic!("not followed: {verdict:?}")
        };
        hop.apply(&mut p);
        p
    }

    #[test]
    fn each_hop_names_where_it_comes_from() {
        let hop = |from: &str, location: &str, config: &Config, own: bool| {
            let fields: &[(&str, &str)] = match own {
                true => &[("referer", "http://caller/")],
                false => &[],
            };
            let p = after_302(from, fields, location, config);
            p.headers
                .get("referer")
                .map(|v| v.to_str().unwrap().to_string())
        };
        let config = Config::default();
        let table = [
            ("http://h/a?q=1", "/b", Some("http://h/a?q=1")),
            ("http://u:p@h:81/a?q", "/b", Some("http://h:81/a?q")),
            // To another origin, the origin alone.
            ("http://u:p@h:81/a?q", "http://g/", Some("http://h:81/")),
            ("http://h/a", "https://h/", Some("http://h/")),
            ("https://h/a?sig=1", "https://g/", Some("https://h/")),
            // Never from TLS to plain text.
            ("https://h/a", "http://h/", None),
        ];
        for (from, location, want) in table {
            let got = hop(from, location, &config, false);
            assert_eq!(got.as_deref(), want, "{from} -> {location}");
        }
        // The caller's own stays, except from TLS to plain text; it is
        // not taken for one a redirect set on a later hop.
        for (from, location, want) in [
            ("http://h/a", "/b", Some("http://caller/")),
            ("https://h/a", "https://g/", Some("http://caller/")),
            ("https://h/a", "http://h/", None),
        ] {
            let got = hop(from, location, &config, true);
            assert_eq!(got.as_deref(), want, "{from} -> {location}");
        }
        let off = Config {
            referer: false,
            ..Config::default()
        };
        assert_eq!(hop("http://h/a", "/b", &off, false), None);
        let got = hop("http://h/a", "/b", &off, true);
        assert_eq!(got.as_deref(), Some("http://caller/"));
        // Off or not, none from TLS to plain text (RFC 9110 10.1.3).
        assert_eq!(hop("https://h/a", "http://h/", &off, true), None);
    }

    /// From `https` to `http`, the client's default `Referer` stays
    /// behind as the request's own does; elsewhere it goes.
    #[test]
    fn a_default_referer_is_not_sent_to_plain_text() {
        let mut config = Config {
            referer: false,
            ..Config::default()
        };
        config
            .default_headers
            .insert(REFERER, "https://app/private?token=1".parse().unwrap());
        for (location, sent) in [("http://h/", false), ("https://g/", true)] {
            let p = after_302("https://h/a", &[], location, &config);
            let names: Vec<_> = crate::request::fields(&p, &config)
                .into_iter()
                .map(|(name, _)| name.to_vec())
                .collect();
            assert_eq!(
                names.iter().any(|n| n == b"referer"),
                sent,
                "{location}: {names:?}"
            );
        }
    }

    #[test]
    fn credentials_stay_within_the_origin() {
        let sensitive = [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
            "cookie2",
        ];
        let (p, _) =
            follow(Method::GET, "http://h:81/", 302, "/same", Replay::Empty).expect("followed");
        assert!(sensitive.iter().all(|n| p.headers.contains_key(*n)));
        for other in ["http://h:82/", "http://g:81/", "https://h:81/"] {
            let (p, _) =
                follow(Method::GET, "http://h:81/", 302, other, Replay::Empty).expect("followed");
            assert!(
                !sensitive.iter().any(|n| p.headers.contains_key(*n)),
                "{other}"
            );
            assert_eq!(p.headers["x-keep"], "1");
        }
    }

    #[test]
    fn bad_locations_are_errors_and_missing_ones_answers() {
        let p = parts(Method::GET, "http://h/", &[]);
        let config = Config::default();
        let mut r = Redirects::new(&p.uri);
        // No `Location`, or an empty one: the 3xx is the answer (Go).
        for headers in [HeaderMap::new(), located("  ")] {
            let none = r.handle_response(&p, StatusCode::FOUND, &headers, Replay::Empty, &config);
            assert!(matches!(none, Ok(Verdict::Deliver)), "{none:?}");
        }
        assert!(r.chain().is_empty());
        let bad = r.handle_response(
            &p,
            StatusCode::FOUND,
            &located("http://[::1"),
            Replay::Empty,
            &config,
        );
        assert!(
            matches!(bad, Err(Error::InvalidLocation { location: Some(l), .. }) if l == "http://[::1")
        );
        assert_eq!(r.chain().len(), 1);
        for elsewhere in ["ftp://h/x", "mailto:a@h", "javascript:alert(1)"] {
            let mut r = Redirects::new(&p.uri);
            let headers = located(elsewhere);
            let v = r.handle_response(&p, StatusCode::FOUND, &headers, Replay::Empty, &config);
            assert!(
                matches!(&v, Err(Error::InvalidLocation { location: Some(l), .. }) if l == elsewhere),
                "{elsewhere}: {v:?}"
            );
        }
    }

    #[test]
    fn limit_then_policy() {
        let mut config = Config {
            max_redirects: 2,
            ..Config::default()
        };
        let mut p = parts(Method::GET, "http://h/0", &[]);
        let mut r = Redirects::new(&p.uri);
        for i in 1..=2 {
            let v = r.handle_response(
                &p,
                StatusCode::FOUND,
                &located(&format!("/{i}")),
                Replay::Empty,
                &config,
            );
            let Ok(Verdict::Follow(hop)) = v else {
                panic!("hop {i}: {v:?}")
            };
            hop.apply(&mut p);
        }
        let v = r.handle_response(
            &p,
            StatusCode::FOUND,
            &located("/3"),
            Replay::Empty,
            &config,
        );
        let Err(Error::TooManyRedirects { max: 2, chain }) = v else {
            panic!("{v:?}")
        };
        assert_eq!(chain, ["http://h/0", "http://h/1", "http://h/2"]);

        config.max_redirects = 0;
        let v = Redirects::new(&p.uri).handle_response(
            &p,
            StatusCode::FOUND,
            &located("/x"),
            Replay::Empty,
            &config,
        );
        assert!(matches!(v, Ok(Verdict::Deliver)));

        config.max_redirects = 10;
        config.redirect_policy = Some(RedirectPolicy::new(|a| match a.next.path() {
            "/stop" => RedirectAction::Stop,
            "/deny" => RedirectAction::Error("not there".into()),
            _ => RedirectAction::Follow,
        }));
        let mut r = Redirects::new(&p.uri);
        let v = r.handle_response(
            &p,
            StatusCode::FOUND,
            &located("/stop"),
            Replay::Empty,
            &config,
        );
        assert!(matches!(v, Ok(Verdict::Deliver)));
        let v = r.handle_response(
            &p,
            StatusCode::FOUND,
            &located("/deny"),
            Replay::Empty,
            &config,
        );
        assert!(matches!(v, Err(Error::RedirectRefused { next, .. }) if next == "http://h/deny"));
        assert_eq!(r.chain().len(), 1);
    }
}
