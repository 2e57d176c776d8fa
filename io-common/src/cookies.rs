//! Cookies (feature `cookies`): the [`CookieJar`] the exchange machine
//! asks at each hop, and what it asks.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cookie_store::{Cookie, CookieStore, RawCookie, StoreAction};
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Uri};
use url::Url;

use crate::Config;

/// A cookie jar (feature `cookies`): it keeps what servers set with
/// `Set-Cookie` and sends it back, as Go's `http.Client` does with a `Jar`.
/// The exchange machine asks it at each hop, so every backend behaves the
/// same. It is shared by every request of the clients it is given to, and
/// by the caller, who may keep a clone to preload or inspect it (clones
/// share one store, locked briefly at each hop).
///
/// | when | what the client does |
/// |---|---|
/// | a request or a redirect hop is prepared | the jar's cookies for its URL are sent in one `Cookie` field (RFC 6265 section 5.4); a `Cookie` the request sets itself goes first, the jar's after it (Go's `Request.AddCookie`) |
/// | a final response head arrives, a redirect's included | each of its `Set-Cookie` fields is stored for the URL that answered (Go's `Client.send`) |
/// | a redirect is followed within the origin | the request's own `Cookie` goes along, less the names the redirect just set: those come from the jar now (Go's `makeHeadersCopier`, golang/go#17494) |
/// | a redirect leaves the origin | the request's own `Cookie` is dropped ([`Hop::apply`](crate::Hop::apply)); the jar sends only what matches the new URL |
///
/// The jar is [`cookie_store`]'s: RFC 6265 parsing, host-only and `Domain`
/// cookies, `Path` scoping, `Max-Age` and `Expires` (`Max-Age=0` or a past
/// date deletes a cookie), read against the system clock. These rules
/// differ from that crate alone:
///
/// - A `Secure` cookie goes over `https` only (Go's jar); `cookie_store`
///   would send it to `http://localhost` and loopback addresses too, as
///   browsers do.
/// - Plain `http` cannot set a `Secure` cookie, nor one that would shadow
///   a stored `Secure` cookie of its name; the `__Secure-` and `__Host-`
///   name prefixes are enforced (RFC 6265bis sections 4.1.3 and 5.7;
///   [`CookieError::NotSecure`]).
/// - `Expires` dates are read as browsers read them (RFC 6265 section
///   5.1.1: any zone name, one-digit days, any case), and a `Max-Age`
///   without digits is ignored (section 5.2.2).
/// - No public suffix list is consulted (Go's jar with a nil
///   `PublicSuffixList`): a server may set a cookie for a whole suffix such
///   as `Domain=co.uk`, though not for a single label such as `Domain=com`
///   (curl's rule). The jar serves the services a program talks to; it
///   is not a browser's.
///
/// Cookies are not isolated by port (RFC 6265 section 8.5): `127.0.0.1:8080`
/// and `127.0.0.1:9090` share them, as in every browser.
///
/// The jar is bounded whatever servers send (RFC 6265 section 6.1 asks for
/// at least these): a cookie's `Set-Cookie` text at most 4096 bytes, 50
/// cookies per domain, 3000 in all (Go's jar caps nothing: a long-running
/// client facing a server that sets new names without end would grow).
/// Expired cookies go first; past 50 a domain's new cookie is refused (the
/// kept ones are still updated and deleted); past 3000, a cookie of the
/// domain that holds the most goes, so that hosts filling the jar cannot
/// lock the others out.
///
/// ```
/// use roundtrip_io::{Config, CookieJar};
/// use roundtrip_io::http::Uri;
///
/// let jar = CookieJar::new();
/// let site: Uri = "http://127.0.0.1:8080/".parse().unwrap();
/// jar.add_cookie_str("session=abc; Path=/", &site).unwrap();
/// jar.add_cookie_str("theme=dark; Path=/app", &site).unwrap();
/// // Longer paths first (RFC 6265 section 5.4).
/// let app: Uri = "http://127.0.0.1:8080/app/page".parse().unwrap();
/// assert_eq!(jar.cookies(&app).unwrap(), "theme=dark; session=abc");
/// assert_eq!(jar.cookies(&site).unwrap(), "session=abc");
/// // `Max-Age=0` deletes.
/// jar.add_cookie_str("session=; Max-Age=0; Path=/", &site).unwrap();
/// assert_eq!(jar.cookies(&site), None);
///
/// // A client of every request with it (each backend's builder also has
/// // `cookie_provider(jar)` and `cookie_store(true)`).
/// let mut config = Config::default();
/// config.cookie_jar = Some(jar.clone());
/// ```
#[derive(Clone, Default)]
pub struct CookieJar {
    store: Arc<Mutex<CookieStore>>,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values are secrets: never printed.
        f.debug_struct("CookieJar").finish_non_exhaustive()
    }
}

/// Why [`CookieJar::add_cookie_str`] did not store a cookie (feature
/// `cookies`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The URL is not an `http` or `https` URL with a host.
    #[error("not an http or https url with a host: {0}")]
    InvalidUrl(String),
    /// The text is not a cookie (`name=value`, then attributes).
    #[error("not a cookie: no name=value pair")]
    Parse,
    /// Its `Domain` does not cover the URL's host (RFC 6265 section 5.3,
    /// step 6).
    #[error("the cookie's domain does not match the url's host")]
    DomainMismatch,
    /// It was already expired, and no stored cookie of its name, domain and
    /// path was there to delete.
    #[error("the cookie is already expired")]
    Expired,
    /// Its text (name, value and attributes) is longer than 4096 bytes.
    #[error("the cookie is longer than {MAX_COOKIE_BYTES} bytes")]
    TooLarge,
    /// The jar holds all the cookies it keeps for the cookie's domain (50).
    #[error("the jar holds {MAX_PER_DOMAIN} cookies for this domain already")]
    Full,
    /// Refused from a URL that is not `https` (RFC 6265bis section 5.7):
    /// a `Secure` cookie, a cookie that would shadow a stored `Secure` one
    /// of its name, or a `__Secure-` or `__Host-` name whose rules it
    /// breaks (`Secure`; for `__Host-` also no `Domain` and `Path=/`).
    #[error("the cookie needs a secure origin, or breaks its name prefix's rules")]
    NotSecure,
}

/// The longest name and value of a cookie kept (RFC 6265 section 6.1).
const MAX_COOKIE_BYTES: usize = 4096;
/// The most cookies kept for one domain (RFC 6265 section 6.1).
const MAX_PER_DOMAIN: usize = 50;
/// The most cookies kept in all (RFC 6265 section 6.1).
const MAX_COOKIES: usize = 3000;

/// Why a cookie was not stored.
enum Refused {
    Store(cookie_store::CookieError),
    TooLarge,
    Full,
    NotSecure,
    DomainMismatch,
}

/// Parses a `Set-Cookie` value as `cookie_store` would, then reads its
/// `Max-Age` and `Expires` again by RFC 6265 section 5.2's rules, where
/// the `cookie` crate departs from them: an empty `Max-Age=` meant "kept
/// for ever" there, and only four fixed date forms ending in `GMT` were
/// taken, so `Expires=Thu, 01 Jan 1970 00:00:00 UTC` (a common way to
/// delete a cookie) left it a session cookie. Of several, the last valid
/// attribute wins.
fn parse_set_cookie(text: &str) -> Option<RawCookie<'_>> {
    let mut raw = RawCookie::parse(text).ok()?;
    let (mut max_age, mut expires) = (None, None);
    for attribute in text.split(';').skip(1) {
        let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("max-age") {
            max_age = delta_seconds(value).or(max_age);
        } else if name.eq_ignore_ascii_case("expires") {
            expires = cookie_date(value).or(expires);
        }
    }
    raw.set_max_age(max_age.map(time::Duration::seconds));
    match expires {
        Some(at) => raw.set_expires(at),
        None => raw.unset_expires(),
    }
    Some(raw)
}

/// A `Max-Age` value (RFC 6265 section 5.2.2): digits after an optional
/// `-`, else ignored; zero or less is 0 (the earliest time: a deletion;
/// `cookie_store` would add a huge negative span to the clock and
/// panic), too many digits as far as it goes.
fn delta_seconds(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() < value.len() {
        return Some(0);
    }
    Some(digits.parse().unwrap_or(i64::MAX))
}

/// A cookie date (RFC 6265 section 5.1.1, the algorithm browsers use):
/// the first tokens that read as a time, a day of the month, a month and a
/// year, in any order and any zone name; `None` when one is missing or
/// the date does not exist.
fn cookie_date(text: &str) -> Option<time::OffsetDateTime> {
    let delimiter =
        |b: &u8| matches!(b, 0x09 | 0x20..=0x2f | 0x3b..=0x40 | 0x5b..=0x60 | 0x7b..=0x7e);
    let (mut hms, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.as_bytes().split(delimiter).filter(|t| !t.is_empty()) {
        if hms.is_none()
            && let Some(t) = time_of_day(token)
        {
            hms = Some(t);
        } else if day.is_none()
            && let Some(d) = leading_digits(token, 1, 2)
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) = month_of(token)
        {
            month = Some(m);
        } else if year.is_none()
            && let Some(y) = leading_digits(token, 2, 4)
        {
            year = Some(y);
        }
    }
    let ((hour, minute, second), day, month, mut year) = (hms?, day?, month?, year?);
    year += match year {
        70..=99 => 1900,
        0..=69 => 2000,
        _ => 0,
    };
    if year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let at = time::Time::from_hms(hour, minute, second).ok()?;
    Some(time::PrimitiveDateTime::new(date, at).assume_utc())
}

/// The value of a token's leading `min` to `max` digits, when what
/// follows them is not a digit (RFC 6265's `1*2DIGIT ( non-digit *OCTET )`).
fn leading_digits(token: &[u8], min: usize, max: usize) -> Option<u32> {
    let n = token.iter().take_while(|b| b.is_ascii_digit()).count();
    (min..=max).contains(&n).then(|| {
        let digits = &token[..n];
        digits.iter().fold(0, |v, b| v * 10 + u32::from(b - b'0'))
    })
}

/// `hh:mm:ss`, each one or two digits, then anything not a digit.
fn time_of_day(token: &[u8]) -> Option<(u8, u8, u8)> {
    let mut fields = [0u8; 3];
    let mut rest = token;
    for (i, field) in fields.iter_mut().enumerate() {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        *field = u8::try_from(leading_digits(rest, 1, 2)?).ok()?;
        rest = &rest[n..];
        if i < 2 {
            rest = rest.strip_prefix(b":")?;
        }
    }
    Some((fields[0], fields[1], fields[2]))
}

/// A month token: its first three letters name one, in any case.
fn month_of(token: &[u8]) -> Option<time::Month> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let head = token.get(..3)?;
    let at = NAMES
        .iter()
        .position(|m| head.eq_ignore_ascii_case(&m[..]))?;
    time::Month::try_from(u8::try_from(at + 1).ok()?).ok()
}

/// RFC 6265bis section 5.7's rules for the origin a cookie comes from:
/// `Secure` only from `https`; from `http`, none that would shadow a
/// stored `Secure` cookie (same name, either domain within the other, its
/// path within the stored one's); the `__Secure-` and `__Host-` name
/// prefixes (section 4.1.3, any case); and a `Domain` without a dot only
/// for that very host (no public suffix list here, but no cookie for all
/// of `.com` either, as curl refuses one).
fn check_origin(store: &CookieStore, raw: &RawCookie<'_>, url: &Url) -> Result<(), Refused> {
    let https = url.scheme() == "https";
    let secure = raw.secure().unwrap_or(false);
    let prefixed = |prefix: &str| {
        let name = raw.name().as_bytes();
        name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    if secure && !https
        || prefixed("__Secure-") && !secure
        || prefixed("__Host-") && (!secure || raw.domain().is_some() || raw.path() != Some("/"))
    {
        return Err(Refused::NotSecure);
    }
    let host = url.host_str().unwrap_or_default();
    if let Some(domain) = raw.domain() {
        let domain = domain.trim_start_matches('.');
        if !domain.contains('.') && !domain.eq_ignore_ascii_case(host) {
            return Err(Refused::DomainMismatch);
        }
    }
    if https || secure {
        return Ok(());
    }
    let Ok(new) = Cookie::try_from_raw_cookie(raw, url) else {
        return Ok(()); // refused later, with the store's reason
    };
    let (domain, path) = (String::from(&new.domain), String::from(&new.path));
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner.len() > outer.len()
                && inner.ends_with(outer)
                && inner.as_bytes()[inner.len() - outer.len() - 1] == b'.'
    };
    let path_within = |inner: &str, outer: &str| {
        inner.starts_with(outer)
            && (inner.len() == outer.len()
                || outer.ends_with('/')
                || inner.as_bytes()[outer.len()] == b'/')
    };
    let shadows = store.iter_any().any(|old| {
        let old_domain = String::from(&old.domain);
        // A deleted or expired cookie is not in the store (RFC 6265bis
        // 5.7), though cookie_store keeps it until the jar is pruned.
        !old.is_expired()
            && old.secure().unwrap_or(false)
            && old.name() == new.name()
            && (within(&domain, &old_domain) || within(&old_domain, &domain))
            && path_within(&path, &String::from(&old.path))
    });
    match shadows {
        true => Err(Refused::NotSecure),
        false => Ok(()),
    }
}

/// Stores `raw`, from `url`, within the jar's bounds; `len` is the length
/// of its whole `Set-Cookie` text (name, value and attributes: what RFC
/// 6265 section 6.1 measures, and what the store keeps of it).
fn insert_bounded(
    store: &mut CookieStore,
    raw: &RawCookie<'_>,
    len: usize,
    url: &Url,
) -> Result<(), Refused> {
    if len > MAX_COOKIE_BYTES {
        return Err(Refused::TooLarge);
    }
    check_origin(store, raw, url)?;
    let cookie = Cookie::try_from_raw_cookie(raw, url)
        .map_err(Refused::Store)?
        .into_owned();
    let domain = String::from(&cookie.domain);
    let path = String::from(&cookie.path);
    let name = cookie.name().to_owned();
    if !matches!(
        store.insert(cookie, url).map_err(Refused::Store)?,
        StoreAction::Inserted
    ) {
        return Ok(()); // an update or a deletion: nothing grew
    }
    let (mut all, mut here) = counts(store, &domain);
    if all <= MAX_COOKIES && here <= MAX_PER_DOMAIN {
        return Ok(());
    }
    // Room first from the expired cookies the store still keeps.
    let expired: Vec<(String, String, String)> = store
        .iter_any()
        .filter(|c| c.is_expired())
        .map(|c| {
            (
                String::from(&c.domain),
                String::from(&c.path),
                c.name().to_owned(),
            )
        })
        .collect();
    for (d, p, n) in &expired {
        store.remove(d, p, n);
    }
    (all, here) = counts(store, &domain);
    if here > MAX_PER_DOMAIN {
        // A domain over its own share: its new cookie is refused.
        store.remove(&domain, &path, &name);
        return Err(Refused::Full);
    }
    if all > MAX_COOKIES {
        // The jar is full: a cookie of the domain that holds the most goes
        // (RFC 6265 section 5.3 step 12: over-quota domains first), so
        // that hosts filling it cannot lock the others out.
        let largest = largest_domain(store);
        let victim = store
            .iter_any()
            .find(|c| c.domain.as_cow().as_deref() == Some(largest.as_str()))
            .map(|c| {
                (
                    String::from(&c.domain),
                    String::from(&c.path),
                    c.name().to_owned(),
                )
            });
        if let Some((d, p, n)) = victim {
            store.remove(&d, &p, &n);
        }
    }
    Ok(())
}

/// How many cookies the store holds in all, and for `domain`.
fn counts(store: &CookieStore, domain: &str) -> (usize, usize) {
    store.iter_any().fold((0, 0), |(all, here), cookie| {
        let mine = cookie.domain.as_cow().as_deref() == Some(domain);
        (all + 1, here + usize::from(mine))
    })
}

/// The domain that holds the most cookies (the first such, by the
/// store's order).
fn largest_domain(store: &CookieStore) -> String {
    let mut per: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for cookie in store.iter_any() {
        *per.entry(String::from(&cookie.domain)).or_default() += 1;
    }
    per.into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| d)
        .unwrap_or_default()
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        CookieJar::default()
    }

    /// Stores `cookie`, a `Set-Cookie` value, as if `url` had sent it. An
    /// expired cookie (`Max-Age=0`) deletes the stored one of its name,
    /// domain and path.
    pub fn add_cookie_str(&self, cookie: &str, url: &Uri) -> Result<(), CookieError> {
        let url = url_of(url).ok_or_else(|| CookieError::InvalidUrl(url.to_string()))?;
        let raw = parse_set_cookie(cookie).ok_or(CookieError::Parse)?;
        match insert_bounded(&mut self.lock(), &raw, cookie.len(), &url) {
            Ok(()) => Ok(()),
            Err(Refused::TooLarge) => Err(CookieError::TooLarge),
            Err(Refused::Full) => Err(CookieError::Full),
            Err(Refused::NotSecure) => Err(CookieError::NotSecure),
            Err(Refused::DomainMismatch) => Err(CookieError::DomainMismatch),
            Err(Refused::Store(cookie_store::CookieError::Expired)) => Err(CookieError::Expired),
            Err(Refused::Store(cookie_store::CookieError::Parse)) => Err(CookieError::Parse),
            Err(Refused::Store(
                cookie_store::CookieError::DomainMismatch
                | cookie_store::CookieError::UnspecifiedDomain,
            )) => Err(CookieError::DomainMismatch),
            // `NonHttpScheme`, `NonRelativeScheme`: `url_of` lets only
            // http and https URLs with a host through.
            Err(Refused::Store(_)) => Err(CookieError::InvalidUrl(url.to_string())),
        }
    }

    /// The `Cookie` field the jar sends to `url`: `name=value` pairs joined
    /// by `; `, longer paths first, then by domain, each first stored
    /// first; `None` when no cookie matches.
    pub fn cookies(&self, url: &Uri) -> Option<HeaderValue> {
        let url = url_of(url)?;
        let mut value = Vec::new();
        if !self.write_cookies(&url, &mut value) {
            return None;
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).ok()
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Appends the jar's pairs for `url` to `out` (after `; ` when `out`
    /// is not empty); returns whether it added any.
    fn write_cookies(&self, url: &Url, out: &mut Vec<u8>) -> bool {
        let store = self.lock();
        let https = url.scheme() == "https";
        let mut matches: Vec<_> = store
            .matches(url)
            .into_iter()
            // Go's jar: `Secure` means https, loopback or not.
            .filter(|c| https || !c.secure().unwrap_or(false))
            .filter(|c| is_field_text(c.name()) && is_field_text(c.value()))
            .collect();
        // RFC 6265 section 5.4 step 2: longer paths first. Its "earlier
        // creation-times first" among equals is approached by a stable sort
        // over the store's order: by domain, then path, each first stored
        // first (a replaced cookie keeps its place, as its creation time).
        matches.sort_by_key(|c| std::cmp::Reverse(c.path.as_ref().len()));
        for cookie in &matches {
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(cookie.name().as_bytes());
            out.push(b'=');
            out.extend_from_slice(cookie.value().as_bytes());
        }
        !matches.is_empty()
    }

    /// Stores every `Set-Cookie` of a response from `url`. Fields that are
    /// not cookies, or that the rules refuse, are skipped, as browsers and
    /// Go's jar skip them.
    fn store_response(&self, url: &Uri, headers: &HeaderMap) {
        let mut set = headers.get_all(SET_COOKIE).iter().peekable();
        if set.peek().is_none() {
            return;
        }
        let Some(url) = url_of(url) else { return };
        let cookies = set.filter_map(|value| {
            let text = std::str::from_utf8(value.as_bytes()).ok()?;
            Some((parse_set_cookie(text)?, text.len()))
        });
        let mut store = self.lock();
        for (cookie, len) in cookies {
            // A refused cookie is skipped, as browsers and Go's jar skip one.
            let _ = insert_bounded(&mut store, &cookie, len, &url);
        }
    }

    /// The store; a panic elsewhere while it was held leaves it usable
    /// (each change to it is one insert or removal).
    fn lock(&self) -> MutexGuard<'_, CookieStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `Cookie` field to send for the request `parts` in place of its own:
/// its own cookies (or, when it sets none, the config's default `Cookie`),
/// then the jar's for its URL, all in one field. `None` when the client has
/// no jar or the jar has nothing for this URL: the request is sent as it is.
pub(crate) fn request_cookie(parts: &Parts, config: &Config) -> Option<HeaderValue> {
    let jar = config.cookie_jar.as_ref()?;
    let url = url_of(&parts.uri)?;
    // The default `Cookie` stays behind once a redirect left the origin,
    // or took it over (`forget_replaced`).
    let own = match parts.headers.contains_key(COOKIE) {
        true => parts.headers.get_all(COOKIE),
        false if crate::redirect::Withheld::of(parts).cookie => parts.headers.get_all(COOKIE),
        false => config.default_headers.get_all(COOKIE),
    };
    let mut value = Vec::new();
    for field in own {
        if !value.is_empty() {
            value.extend_from_slice(b"; ");
        }
        value.extend_from_slice(field.as_bytes());
    }
    if !jar.write_cookies(&url, &mut value) {
        return None;
    }
    let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).ok()?;
    // Session cookies: a printed `Prepared` does not show them.
    value.set_sensitive(true);
    Some(value)
}

/// Stores the `Set-Cookie` fields of a final response head from `uri`, when
/// the client has a jar.
pub(crate) fn store(config: &Config, uri: &Uri, headers: &HeaderMap) {
    if let Some(jar) = &config.cookie_jar {
        jar.store_response(uri, headers);
    }
}

/// Before a redirect is followed: takes out of the request's own `Cookie`
/// (or, when it has none, of the client's default one, which it then
/// carries as its own) the pairs whose names the redirect `response`
/// sets, so that the jar's new value is sent instead of the old one beside
/// it (Go's `makeHeadersCopier`: a cookie the caller set carries no domain
/// or path, so any new cookie of its name replaces it). Only with a jar.
pub(crate) fn forget_replaced(config: &Config, parts: &mut Parts, response: &HeaderMap) {
    let withheld = crate::redirect::Withheld::of(parts);
    let own = parts.headers.contains_key(COOKIE);
    let default = !own && !withheld.cookie && config.default_headers.contains_key(COOKIE);
    if config.cookie_jar.is_none() || !(own || default) {
        return;
    }
    let set: Vec<String> = response
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .filter_map(|text| RawCookie::parse(text).ok())
        .map(|c| c.name().to_owned())
        .collect();
    if set.is_empty() {
        return;
    }
    let fields = match default {
        true => config.default_headers.get_all(COOKIE),
        false => parts.headers.get_all(COOKIE),
    };
    let mut kept = String::new();
    for field in fields {
        let Ok(text) = std::str::from_utf8(field.as_bytes()) else {
            continue;
        };
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            if !set.iter().any(|s| s == name) {
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(pair);
            }
        }
    }
    // The request carries what is left as its own now (of the default,
    // or of its own field): the default does not come back on later hops,
    // even when nothing is left.
    parts.extensions.insert(crate::redirect::Withheld {
        cookie: true,
        ..withheld
    });
    // Go would send an empty `Cookie:`; none is sent instead.
    match HeaderValue::try_from(kept) {
        Ok(value) if !value.is_empty() => {
            parts.headers.insert(COOKIE, value);
        }
        _ => {
            parts.headers.remove(COOKIE);
        }
    }
}

/// The URL of `uri` for the jar: `http` when it names no scheme (as the
/// request preparation reads it), `None` unless it is `http` or `https`
/// with a host.
fn url_of(uri: &Uri) -> Option<Url> {
    uri.authority()?;
    let url = match uri.scheme() {
        Some(_) => Url::parse(&uri.to_string()).ok()?,
        None => Url::parse(&format!("http://{uri}")).ok()?,
    };
    let web = matches!(url.scheme(), "http" | "https");
    (web && url.host().is_some()).then_some(url)
}

/// A name or value that can stand in a field value (RFC 9110 section
/// 5.5): no control character but tab. Cookies from `Set-Cookie` always
/// are; one added by hand might not be, and is then never sent.
fn is_field_text(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().expect("a valid uri")
    }

    #[test]
    fn the_jar_is_bounded_whatever_servers_set() {
        let jar = CookieJar::new();
        let site = uri("http://a.test/");
        let count = |url: &Uri| {
            jar.cookies(url)
                .map_or(0, |v| v.to_str().unwrap().split("; ").count())
        };
        for i in 0..MAX_PER_DOMAIN {
            jar.add_cookie_str(&format!("n{i}=v"), &site).unwrap();
        }
        // Full for this domain: a new name is refused, a kept one updated.
        assert_eq!(jar.add_cookie_str("extra=v", &site), Err(CookieError::Full));
        jar.add_cookie_str("n0=changed", &site).unwrap();
        assert_eq!(count(&site), MAX_PER_DOMAIN);
        assert!(
            jar.cookies(&site)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("n0=changed")
        );
        // Deleted cookies (kept by the store as expired) make room again.
        for i in 0..10 {
            jar.add_cookie_str(&format!("n{i}=; Max-Age=0"), &site)
                .unwrap();
        }
        for i in 0..10 {
            jar.add_cookie_str(&format!("m{i}=v"), &site).unwrap();
        }
        assert_eq!(count(&site), MAX_PER_DOMAIN);
        // A text over 4096 bytes is refused, its attributes counted.
        let long = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
        assert_eq!(jar.add_cookie_str(&long, &site), Err(CookieError::TooLarge));
        let long_path = format!("p=1; Path=/{}", "x".repeat(MAX_COOKIE_BYTES));
        assert_eq!(
            jar.add_cookie_str(&long_path, &site),
            Err(CookieError::TooLarge)
        );
        // 3000 in all, over many domains, then one more host: room is made
        // from a full domain, not refused (the jar must not lock it out).
        let hosts = MAX_COOKIES / MAX_PER_DOMAIN;
        for h in 1..hosts {
            let url = uri(&format!("http://h{h}.test/"));
            for i in 0..MAX_PER_DOMAIN {
                jar.add_cookie_str(&format!("n{i}=v"), &url).unwrap();
            }
        }
        assert_eq!(jar.lock().iter_any().count(), MAX_COOKIES);
        let last = uri("http://last.test/");
        jar.add_cookie_str("n=v", &last).unwrap();
        // Set-Cookie fields of a response: the same bounds.
        let mut headers = HeaderMap::new();
        for i in 0..5 {
            headers.append(SET_COOKIE, format!("r{i}=v").parse().unwrap());
        }
        jar.store_response(&last, &headers);
        assert_eq!(count(&last), 6);
        assert_eq!(jar.lock().iter_any().count(), MAX_COOKIES);
    }

    fn config_with(jar: &CookieJar) -> Config {
        Config {
            cookie_jar: Some(jar.clone()),
            ..Config::default()
        }
    }

    fn parts(url: &str, cookie: Option<&str>) -> Parts {
        let mut req = http::Request::get(url);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.body(()).expect("a valid request").into_parts().0
    }

    fn set_cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(SET_COOKIE, HeaderValue::from_str(v).expect("a valid value"));
        }
        h
    }

    /// Domain, path, secure and host-only rules, as the `Cookie` field
    /// each URL gets.
    #[test]
    fn what_each_url_gets() {
        let jar = CookieJar::new();
        let from = uri("http://www.example.com/a/b");
        let response = set_cookies(&[
            "host=1", // host-only, default path /a
            "wide=2; Domain=example.com; Path=/",
            "deep=3; Path=/a/b/c",
            "safe=4; Secure; Path=/",  // refused: not from https
            "bad=5; Domain=other.org", // refused: not this host's
            "not a cookie",            // skipped
        ]);
        jar.store_response(&from, &response);
        let secure = set_cookies(&["safe=4; Secure; Path=/"]);
        jar.store_response(&uri("https://www.example.com/a/b"), &secure);
        let table = [
            ("http://www.example.com/a", Some("host=1; wide=2")),
            (
                "http://www.example.com/a/b/c/d",
                Some("deep=3; host=1; wide=2"),
            ),
            ("http://www.example.com/", Some("wide=2")),
            // Equal paths: by domain, each domain's first stored first.
            ("https://www.example.com/a", Some("host=1; safe=4; wide=2")),
            ("http://api.example.com/a", Some("wide=2")),
            ("http://example.com/", Some("wide=2")),
            ("http://other.org/", None),
            ("http://wwwexample.com/", None),
            // Loopback http is no exception for `Secure`.
            ("http://localhost/", None),
        ];
        for (url, want) in table {
            let got = jar.cookies(&uri(url));
            assert_eq!(got.as_ref().map(|v| v.to_str().unwrap()), want, "{url}");
        }
        // Nor is a loopback address, to send or to set.
        let local = uri("http://127.0.0.1:1/");
        assert_eq!(
            jar.add_cookie_str("s=1; Secure", &local),
            Err(CookieError::NotSecure)
        );
        jar.add_cookie_str("s=1; Secure", &uri("https://127.0.0.1:2/"))
            .unwrap();
        assert_eq!(jar.cookies(&local), None);
        assert_eq!(jar.cookies(&uri("https://127.0.0.1:2/")).unwrap(), "s=1");
    }

    /// RFC 6265bis section 5.7: plain http can neither set a `Secure`
    /// cookie nor shadow one; the name prefixes hold; no cookie for a
    /// whole top-level domain.
    #[test]
    fn secure_cookies_and_prefixes_need_https() {
        let jar = CookieJar::new();
        let https = uri("https://h.test/a");
        let http = uri("http://h.test/a");
        jar.add_cookie_str("sid=real; Secure; Path=/", &https)
            .unwrap();
        for shadow in [
            "sid=evil; Path=/",
            "sid=evil; Path=/a",
            "sid=evil; Domain=h.test",
        ] {
            assert_eq!(
                jar.add_cookie_str(shadow, &http),
                Err(CookieError::NotSecure),
                "{shadow}"
            );
        }
        assert_eq!(jar.cookies(&https).unwrap(), "sid=real");
        // Once deleted, it shadows nothing: plain http may set the name.
        let gone = uri("https://h.test/");
        jar.add_cookie_str("tmp=1; Secure; Path=/", &gone).unwrap();
        jar.add_cookie_str("tmp=; Max-Age=0; Secure; Path=/", &gone)
            .unwrap();
        jar.add_cookie_str("tmp=2; Path=/", &http).unwrap();
        // Another name, or a path the secure one does not cover, is fine.
        jar.add_cookie_str("other=1; Path=/", &http).unwrap();
        jar.add_cookie_str("tok=s; Secure; Path=/app", &https)
            .unwrap();
        jar.add_cookie_str("tok=x; Path=/", &http).unwrap();
        let app = uri("http://h.test/app");
        assert_eq!(
            jar.add_cookie_str("tok=x; Path=/app/in", &app),
            Err(CookieError::NotSecure)
        );
        for (cookie, ok) in [
            ("__Secure-a=1", false),
            ("__secure-a=1; Secure", true),
            ("__Host-a=1; Secure; Path=/", true),
            ("__Host-a=1; Secure", false), // the default path is /a
            ("__Host-a=1; Secure; Path=/; Domain=h.test", false),
            ("__HOST-a=1; Path=/", false),
        ] {
            let got = jar.add_cookie_str(cookie, &https);
            assert_eq!(got.is_ok(), ok, "{cookie}: {got:?}");
        }
        let evil = uri("http://evil.com/");
        for domain in ["com", ".com", "COM"] {
            assert_eq!(
                jar.add_cookie_str(&format!("a=1; Domain={domain}"), &evil),
                Err(CookieError::DomainMismatch),
                "{domain}"
            );
        }
        assert_eq!(jar.cookies(&uri("http://bank.com/")), None);
        // A single-label host may name itself.
        let local = uri("http://localhost/");
        jar.add_cookie_str("l=1; Domain=localhost", &local).unwrap();
        assert_eq!(jar.cookies(&local).unwrap(), "l=1");
    }

    /// RFC 6265 section 5.1.1's dates and 5.2.2's `Max-Age`, where the
    /// `cookie` crate alone read them otherwise.
    #[test]
    fn dates_and_max_age_as_browsers_read_them() {
        let jar = CookieJar::new();
        let site = uri("http://h.test/");
        let deletions = [
            "sid=; Expires=Thu, 01 Jan 1970 00:00:00 UTC",
            "sid=; expires=thu, 1 jan 1970 00:00:00 GMT",
            "sid=; Expires=Thursday, 01-Jan-70 00:00:01 GMT",
            "sid=; Expires=Thu Jan  1 00:00:00 1970",
            "sid=; Max-Age=; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "sid=; Max-Age=-1",
            "sid=; Max-Age=-99999999999999999999",
            "sid=; Max-Age=-9223372036854775807",
            "sid=; Max-Age=x; Max-Age=0",
        ];
        for deletion in deletions {
            jar.add_cookie_str("sid=abc", &site).unwrap();
            assert_eq!(jar.cookies(&site).unwrap(), "sid=abc");
            let _ = jar.add_cookie_str(deletion, &site);
            assert_eq!(jar.cookies(&site), None, "{deletion}");
        }
        // Still there: a future date in any zone name, an ignored bad
        // Max-Age, a date that does not exist (a session cookie then).
        for kept in [
            "sid=1; Expires=Fri, 01 Jan 2100 00:00:00 UTC",
            "sid=2; Max-Age=abc",
            "sid=3; Expires=Thu, 31 Feb 1970 00:00:00 GMT",
            "sid=4; Max-Age=99999999999999999999999",
        ] {
            jar.add_cookie_str(kept, &site).unwrap();
            assert!(jar.cookies(&site).is_some(), "{kept}");
        }
        assert_eq!(
            cookie_date("Sun, 06 Nov 1994 08:49:37 GMT").map(|d| d.unix_timestamp()),
            Some(784111777)
        );
        assert_eq!(
            cookie_date("Sunday, 06-Nov-94 08:49:37 GMT").map(|d| d.unix_timestamp()),
            Some(784111777)
        );
        assert_eq!(
            cookie_date("Sun Nov  6 08:49:37 1994").map(|d| d.unix_timestamp()),
            Some(784111777)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994",
            "06 Nov 1994 24:00:00",
            "32 Nov 1994 08:49:37",
            "06 Nov 1600 08:49:37",
            "06 Nov 12345 08:49:37",
        ] {
            assert_eq!(cookie_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn add_cookie_str_refusals() {
        let jar = CookieJar::new();
        let site = uri("http://h.test/");
        assert_eq!(jar.add_cookie_str("", &site), Err(CookieError::Parse));
        assert_eq!(
            jar.add_cookie_str("a=1; Domain=elsewhere.test", &site),
            Err(CookieError::DomainMismatch)
        );
        assert_eq!(
            jar.add_cookie_str("a=1; Max-Age=0", &site),
            Err(CookieError::Expired)
        );
        assert!(matches!(
            jar.add_cookie_str("a=1", &uri("ftp://h.test/")),
            Err(CookieError::InvalidUrl(_))
        ));
        assert!(matches!(
            jar.add_cookie_str("a=1", &uri("/relative")),
            Err(CookieError::InvalidUrl(_))
        ));
        assert_eq!(jar.cookies(&site), None);
        // A URI without a scheme is read as http, like a request's.
        jar.add_cookie_str("a=1", &uri("h.test")).unwrap();
        assert_eq!(jar.cookies(&site).unwrap(), "a=1");
        jar.clear();
        assert_eq!(jar.cookies(&site), None);
    }

    /// Replacing keeps a cookie's place; expiring removes it; an
    /// `Expires` in the past deletes too.
    #[test]
    fn update_and_expiry() {
        let jar = CookieJar::new();
        let site = uri("http://h.test/");
        for c in ["a=1", "b=2", "c=3"] {
            jar.add_cookie_str(c, &site).unwrap();
        }
        jar.add_cookie_str("a=9", &site).unwrap();
        assert_eq!(jar.cookies(&site).unwrap(), "a=9; b=2; c=3");
        jar.store_response(&site, &set_cookies(&["b=; Max-Age=0"]));
        assert_eq!(jar.cookies(&site).unwrap(), "a=9; c=3");
        let past = "c=; Expires=Thu, 01 Jan 1970 00:00:01 GMT";
        jar.store_response(&site, &set_cookies(&[past]));
        assert_eq!(jar.cookies(&site).unwrap(), "a=9");
    }

    /// The field sent: none without a jar or without a match; the
    /// request's own cookies (or the default one) first, then the jar's.
    #[test]
    fn request_field() {
        let jar = CookieJar::new();
        let config = config_with(&jar);
        let url = "http://h.test/x";
        assert_eq!(request_cookie(&parts(url, None), &Config::default()), None);
        assert_eq!(request_cookie(&parts(url, Some("own=1")), &config), None);
        jar.add_cookie_str("j=2", &uri(url)).unwrap();
        let field =
            |p: &Parts, c: &Config| request_cookie(p, c).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(field(&parts(url, None), &config).unwrap(), "j=2");
        assert_eq!(
            field(&parts(url, Some("own=1")), &config).unwrap(),
            "own=1; j=2"
        );
        let mut two = parts(url, Some("own=1"));
        two.headers
            .append(COOKIE, HeaderValue::from_static("own=3"));
        assert_eq!(field(&two, &config).unwrap(), "own=1; own=3; j=2");
        let mut with_default = config.clone();
        with_default
            .default_headers
            .insert(COOKIE, HeaderValue::from_static("d=0"));
        assert_eq!(field(&parts(url, None), &with_default).unwrap(), "d=0; j=2");
        assert_eq!(
            field(&parts(url, Some("own=1")), &with_default).unwrap(),
            "own=1; j=2"
        );
        assert_eq!(field(&parts("http://other.test/", None), &config), None);
    }

    /// golang/go#17494: a redirect that sets a cookie the caller also set
    /// takes the caller's out; the others stay, in their order.
    #[test]
    fn redirect_replaces_own_cookies() {
        let jar = CookieJar::new();
        let config = config_with(&jar);
        let mut request = parts("http://h/", Some("a=1; b=2; c=3"));
        forget_replaced(
            &config,
            &mut request,
            &set_cookies(&["b=new; Path=/", "z=9"]),
        );
        assert_eq!(request.headers[COOKIE], "a=1; c=3");
        forget_replaced(&config, &mut request, &set_cookies(&["a=x", "c=y"]));
        assert!(!request.headers.contains_key(COOKIE));
        // Without a jar, nothing is taken out (there is nothing to replace it).
        let mut request = parts("http://h/", Some("a=1"));
        forget_replaced(&Config::default(), &mut request, &set_cookies(&["a=2"]));
        assert_eq!(request.headers[COOKIE], "a=1");
    }

    /// The client's default `Cookie` is taken over the same way: what the
    /// redirect does not replace becomes the request's own, and a default
    /// replaced whole is not sent again beside the jar's value.
    #[test]
    fn redirect_replaces_default_cookies() {
        let jar = CookieJar::new();
        let mut config = config_with(&jar);
        config
            .default_headers
            .insert(COOKIE, "sid=old; theme=dark".parse().unwrap());
        let url = "http://h/";
        let mut request = parts(url, None);
        forget_replaced(&config, &mut request, &set_cookies(&["sid=new"]));
        assert_eq!(request.headers[COOKIE], "theme=dark");
        jar.add_cookie_str("sid=new", &uri(url)).unwrap();
        let field = |p: &Parts| request_cookie(p, &config).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(field(&request).unwrap(), "theme=dark; sid=new");
        let mut request = parts(url, None);
        forget_replaced(&config, &mut request, &set_cookies(&["sid=new", "theme=x"]));
        assert!(!request.headers.contains_key(COOKIE));
        assert_eq!(field(&request).unwrap(), "sid=new");
        // The request's own field replaced whole: the default it overrode
        // does not come back either.
        let mut request = parts(url, Some("sid=mine"));
        forget_replaced(&config, &mut request, &set_cookies(&["sid=new"]));
        assert!(!request.headers.contains_key(COOKIE));
        assert_eq!(field(&request).unwrap(), "sid=new");
    }

    /// The merged `Cookie` holds session cookies: it is sensitive, so a
    /// printed request does not show it.
    #[test]
    fn the_merged_cookie_is_sensitive() {
        let jar = CookieJar::new();
        let config = config_with(&jar);
        jar.add_cookie_str("sid=secret", &uri("http://h/")).unwrap();
        let value = request_cookie(&parts("http://h/", None), &config).unwrap();
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("secret"));
    }

    /// The `Cookie` lines of each request head written on `wire`.
    fn cookie_lines(wire: &[u8]) -> Vec<Vec<String>> {
        let text = String::from_utf8_lossy(wire);
        let heads = text.split("\r\n\r\n").filter(|h| !h.is_empty());
        heads
            .map(|head| {
                let lines = head.split("\r\n");
                lines
                    .filter(|l| l.to_ascii_lowercase().starts_with("cookie:"))
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    /// Through the exchange machine on virtual time: a login that sets a
    /// cookie and redirects (the caller's `sid` is replaced, its `pref`
    /// kept, in the one field), then a hop to another host, which gets
    /// neither the caller's cookies nor the jar's.
    #[test]
    fn exchange_sends_and_stores_hop_by_hop() {
        use crate::exchange::sim::{Reply, Server, Sim};
        let jar = CookieJar::new();
        let mut sim = Sim::new(config_with(&jar));
        let login = b"HTTP/1.1 302 Found\r\nLocation: /home\r\nSet-Cookie: sid=new; Path=/\r\nContent-Length: 0\r\n\r\n";
        let home = b"HTTP/1.1 302 Found\r\nLocation: http://other.test/\r\nSet-Cookie: seen=1; Max-Age=60\r\nContent-Length: 0\r\n\r\n";
        let again = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let replies = [login.to_vec(), home.to_vec(), again.to_vec()];
        sim.serve(Server::new(replies.map(Reply::Send)));
        sim.serve(Server::reply(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: o=2\r\nContent-Length: 2\r\n\r\nok",
        ));
        let request = http::Request::get("http://127.0.0.1/login")
            .header(COOKIE, "pref=x; sid=old")
            .body(crate::Body::empty())
            .unwrap();
        let response = sim.send(request).expect("the chain ends in a 200");
        assert_eq!(response.body, "ok");
        assert_eq!(sim.wire.len(), 2);
        assert_eq!(
            cookie_lines(&sim.wire[0]),
            [
                vec!["cookie: pref=x; sid=old"],
                vec!["cookie: pref=x; sid=new"]
            ]
        );
        assert_eq!(cookie_lines(&sim.wire[1]), [Vec::<String>::new()]);
        // Each answer's cookies were kept for the URL that sent it.
        let first = uri("http://127.0.0.1/");
        assert_eq!(jar.cookies(&first).unwrap(), "sid=new; seen=1");
        assert_eq!(jar.cookies(&uri("http://other.test/")).unwrap(), "o=2");
        // The next request (on the pooled connection) sends them unasked.
        sim.get("http://127.0.0.1/again").expect("a 200");
        let heads = cookie_lines(&sim.wire[0]);
        assert_eq!(heads.len(), 3);
        assert_eq!(heads[2], ["cookie: sid=new; seen=1"]);
    }

    /// The builder setters every backend gets from `config_setters!`.
    #[test]
    fn builder_setters() {
        struct Builder {
            config: Config,
        }
        #[allow(dead_code)] // the other setters
        impl Builder {
            crate::config_setters!(config, "my_backend", "my_backend::Builder::new()");
        }
        let fresh = || Builder {
            config: Config::default(),
        };
        assert!(fresh().config.cookie_jar.is_none());
        let site = uri("http://h.test/");
        let own = fresh().cookie_store(true).config.cookie_jar.expect("a jar");
        own.add_cookie_str("a=1", &site).unwrap();
        let other = fresh().cookie_store(true).config.cookie_jar.expect("a jar");
        assert_eq!(other.cookies(&site), None, "each gets a jar of its own");
        assert!(
            fresh()
                .cookie_store(true)
                .cookie_store(false)
                .config
                .cookie_jar
                .is_none()
        );
        let given = fresh().cookie_provider(own.clone()).config.cookie_jar;
        assert_eq!(given.expect("the jar").cookies(&site).unwrap(), "a=1");
    }
}
