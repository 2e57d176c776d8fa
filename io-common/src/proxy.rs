//! Which proxy a request goes through, decided without a socket: proxy
//! URLs (`http://`, `https://`, `socks5://`, `socks5h://`, with
//! credentials), the `NO_PROXY` rules, and the environment variables curl
//! and Go read.
//!
//! ```
//! use roundtrip_io::proxy::{ProxyKind, Proxies};
//! let env = |name: &str| match name {
//!     "https_proxy" => Some("http://user:pw@proxy.corp:3128".to_string()),
//!     "no_proxy" => Some("internal.corp, 10.0.0.0/8".to_string()),
//!     _ => None,
//! };
//! let proxies = Proxies::from_vars(env);
//! let proxy = proxies.for_url("https", "example.com", 443).unwrap();
//! assert_eq!((proxy.kind(), proxy.host(), proxy.port()), (ProxyKind::Http, "proxy.corp", 3128));
//! assert!(proxy.authorization().is_some());
//! assert!(proxies.for_url("https", "git.internal.corp", 443).is_none());
//! assert!(proxies.for_url("https", "10.1.2.3", 443).is_none());
//! assert!(proxies.for_url("http", "example.com", 80).is_none()); // no http_proxy
//! ```

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use http::HeaderValue;
use percent_encoding::percent_decode_str;

/// How the proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// An HTTP proxy: `http://` requests in absolute form, `https://`
    /// through a `CONNECT` tunnel.
    Http,
    /// An HTTP proxy reached over TLS, then as [`Http`](Self::Http): the
    /// forwarded requests, or the `CONNECT` and the origin's own TLS
    /// session, go inside the session with the proxy.
    Https,
    /// SOCKS5 (RFC 1928). `remote_dns`: the proxy resolves the host name
    /// (`socks5h://`), else the client does (`socks5://`), as curl.
    Socks5 {
        /// The proxy resolves host names.
        remote_dns: bool,
    },
}

/// Why a proxy setting is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Not a URL, or a scheme other than http, https, socks5, socks5h.
    #[error("invalid proxy url {url:?}: {why}")]
    InvalidUrl {
        /// The setting as given (credentials removed).
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The SOCKS5 handshake failed.
    #[error(transparent)]
    Socks(#[from] crate::socks::SocksError),
    /// The proxy's answer is not what the protocol allows.
    #[error("the proxy's answer is malformed: {0}")]
    BadAnswer(String),
    /// The proxy closed the connection before the tunnel was up.
    #[error("the proxy closed the connection before the tunnel was up")]
    Closed,
    /// A route this build cannot take yet.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    /// The TLS session with an `https://` proxy failed before the request
    /// was sent: its certificate (checked against the proxy's host name),
    /// its handshake, or its records while the `CONNECT` or the origin's
    /// handshake went through it. A failure of the origin's own session
    /// is [`Error::Tls`](crate::Error::Tls); so is one of the proxy's once
    /// the request is under way, where what counts is whether the request
    /// may have reached the server.
    #[error("tls failed: {0}")]
    Tls(#[source] crate::tls::TlsError),
}

/// One proxy: where it is, how to speak to it, and its credentials.
///
/// ```
/// use roundtrip_io::proxy::{Proxy, ProxyKind};
/// let p = Proxy::parse("socks5h://127.0.0.1:1080").unwrap();
/// assert_eq!(p.kind(), ProxyKind::Socks5 { remote_dns: true });
/// let p = Proxy::parse("proxy.corp").unwrap(); // no scheme: http, port 1080 as curl
/// assert_eq!((p.kind(), p.port()), (ProxyKind::Http, 1080));
/// assert!(Proxy::parse("ftp://proxy.corp").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    user: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials stay out of logs.
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// `scheme://host:port`, without credentials.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks5 { remote_dns: false } => "socks5",
            ProxyKind::Socks5 { remote_dns: true } => "socks5h",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl Proxy {
    /// A proxy from its URL: `http://` (also without a scheme, as curl),
    /// `https://`, `socks5://`, `socks5h://`; `user:password@` gives its
    /// credentials (percent-decoded). Default ports: 1080 as curl for all
    /// but `https` (443).
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        let url = url.trim();
        let with_scheme;
        let text = if scheme_of(url).is_some() {
            url
        } else {
            with_scheme = format!("http://{url}");
            &with_scheme
        };
        let bad = |why| ProxyError::InvalidUrl {
            url: redact(url),
            why,
        };
        let parsed = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
        let (kind, default_port) = match parsed.scheme() {
            "http" => (ProxyKind::Http, 1080),
            "https" => (ProxyKind::Https, 443),
            "socks5" => (ProxyKind::Socks5 { remote_dns: false }, 1080),
            "socks5h" => (ProxyKind::Socks5 { remote_dns: true }, 1080),
            _ => return Err(bad("the scheme is not http, https, socks5 or socks5h")),
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("no host")),
        };
        // `Url` drops the scheme's default port; curl's default is 1080.
        let port = match parsed.port() {
            Some(port) => port,
            None if url_names_port(text) => default_port_of(parsed.scheme()),
            None => default_port,
        };
        // `user@`, `user:pw@` and `:token@` all have credentials (Go sends
        // Basic auth whenever the URL has user info). Percent-decoded
        // bytes that are not UTF-8 are refused, not altered.
        let user = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (name, password) => {
                let decode = |s: &str| {
                    let bytes = percent_decode_str(s).decode_utf8();
                    bytes
                        .map(|text| text.into_owned())
                        .map_err(|_| bad("the credentials are not UTF-8 once percent-decoded"))
                };
                Some((decode(name)?, decode(password.unwrap_or(""))?))
            }
        };
        Ok(Proxy {
            kind,
            host,
            port,
            user,
        })
    }

    /// How it is spoken to.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// Its host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name and password, if the URL had them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `Proxy-Authorization: Basic ...` for an HTTP proxy with credentials
    /// (RFC 7617).
    pub fn authorization(&self) -> Option<HeaderValue> {
        let (user, pass) = self.credentials()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut value = HeaderValue::try_from(format!("Basic {token}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// True when the URL text names a port explicitly (`Url` drops a port
/// equal to its scheme's default).
fn url_names_port(text: &str) -> bool {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => host_port.contains(':'),
    }
}

fn default_port_of(scheme: &str) -> u16 {
    match scheme {
        "https" => 443,
        "http" => 80,
        _ => 1080,
    }
}

/// The URL without its credentials, for errors: everything up to its last
/// `@` (a password may hold a raw `@`, or a `/` that ends the authority
/// early for the URL parser; a proxy URL has no path worth showing).
fn redact(url: &str) -> String {
    let (scheme, rest) = match scheme_of(url) {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let after = &rest[at + 1..];
    match scheme {
        Some(scheme) => format!("{scheme}://***@{after}"),
        None => format!("***@{after}"),
    }
}

/// The scheme of `url` and what follows its `://`, when it starts with
/// one: a letter, then letters, digits, `+`, `-` or `.` (RFC 3986 3.1).
/// `user:pa://ss@host` has none: a `://` in a password is no scheme.
fn scheme_of(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let shaped = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    shaped.then_some((scheme, rest))
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// `*`: nothing goes through a proxy.
    All,
    /// A host name: itself and its subdomains, or (leading dot) its
    /// subdomains only; with an optional port.
    Domain {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
    /// An IP address or a CIDR range, with an optional port.
    Net {
        net: ipnet::IpNet,
        port: Option<u16>,
    },
}

/// The hosts that bypass the proxy (`NO_PROXY`), with Go's and curl's
/// rules: a comma list; a name matches itself and its subdomains; a
/// leading dot matches subdomains only (`.y.com` matches `x.y.com`, not
/// `y.com`, as Go); IP addresses and CIDR ranges; an optional `:port`;
/// `*` matches everything. Entries are case-insensitive; an unusable one
/// is skipped.
///
/// ```
/// use roundtrip_io::proxy::NoProxy;
/// let rules = NoProxy::parse("example.com, .internal, 192.168.0.0/16, [::1]:8080, host:81");
/// assert!(rules.matches("example.com", 443));
/// assert!(rules.matches("www.Example.com", 443));
/// assert!(!rules.matches("notexample.com", 443));
/// assert!(rules.matches("db.internal", 5432));
/// assert!(!rules.matches("internal", 80));
/// assert!(rules.matches("192.168.4.2", 80));
/// assert!(rules.matches("::1", 8080));
/// assert!(!rules.matches("::1", 8081));
/// assert!(rules.matches("host", 81) && !rules.matches("host", 80));
/// assert!(NoProxy::parse("*").matches("anything", 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    rules: Vec<Rule>,
}

impl NoProxy {
    /// The rules of a comma-separated list.
    pub fn parse(list: &str) -> NoProxy {
        let rules = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .filter_map(rule)
            .collect();
        NoProxy { rules }
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Does a request to `host:port` bypass the proxy? `host` as in the
    /// URL (an IPv6 address with or without brackets).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let ip: Option<IpAddr> = host.parse().ok();
        // An IPv4-mapped IPv6 address and its IPv4 one are the same (Go):
        // a rule in either form matches it.
        let mapped = match ip {
            Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4),
            Some(IpAddr::V4(v4)) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            None => None,
        };
        let within = |net: &ipnet::IpNet| {
            ip.is_some_and(|ip| net.contains(&ip)) || mapped.is_some_and(|ip| net.contains(&ip))
        };
        self.rules.iter().any(|rule| match rule {
            Rule::All => true,
            Rule::Net { net, port: p } => within(net) && p.is_none_or(|p| p == port),
            Rule::Domain {
                name,
                subdomains_only,
                port: p,
            } => {
                let sub = host.len() > name.len()
                    && host.ends_with(name.as_str())
                    && host.as_bytes()[host.len() - name.len() - 1] == b'.';
                let hit = sub || (!subdomains_only && host == *name);
                ip.is_none() && hit && p.is_none_or(|p| p == port)
            }
        })
    }
}

/// One entry of the list, or `None` when unusable.
fn rule(entry: &str) -> Option<Rule> {
    if entry == "*" {
        return Some(Rule::All);
    }
    let entry = entry.to_ascii_lowercase();
    // `[v6]:port`, `[v6]`, `v4:port`, `name:port`, a bare v6, a CIDR.
    let (addr, port) = if let Some(rest) = entry.strip_prefix('[') {
        // `[v6]`, `[v6]:port`, or a bracketed CIDR `[v6]/len`; anything
        // else after the bracket makes the entry unusable.
        let (ip, after) = rest.split_once(']')?;
        if after.is_empty() {
            (ip.to_string(), None)
        } else if let Some(port) = after.strip_prefix(':') {
            (ip.to_string(), Some(port))
        } else if after.starts_with('/') {
            (format!("{ip}{after}"), None)
        } else {
            return None;
        }
    } else if entry.matches(':').count() == 1 {
        let (h, p) = entry.split_once(':')?;
        (h.to_string(), Some(p))
    } else {
        (entry.clone(), None)
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    if let Ok(net) = addr.parse::<ipnet::IpNet>() {
        return Some(Rule::Net { net, port });
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Some(Rule::Net {
            net: ipnet::IpNet::from(ip),
            port,
        });
    }
    let subdomains_only = addr.starts_with('.');
    // curl also accepts `*.example.com` for the subdomains.
    let name = addr.trim_start_matches("*.").trim_start_matches('.');
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    Some(Rule::Domain {
        name: name.to_string(),
        subdomains_only: subdomains_only || addr.starts_with("*."),
        port,
    })
}

/// The proxies of a client: one for `http://` URLs, one for `https://`,
/// and the hosts that bypass them.
///
/// ```
/// use roundtrip_io::proxy::{NoProxy, Proxies, Proxy};
/// let proxies = Proxies::all(Proxy::parse("http://127.0.0.1:3128").unwrap())
///     .no_proxy(NoProxy::parse("localhost"));
/// assert!(proxies.for_url("http", "example.com", 80).is_some());
/// assert!(proxies.for_url("https", "localhost", 443).is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Route,
    https: Route,
    no_proxy: NoProxy,
}

/// Where one scheme's requests go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Route {
    #[default]
    Direct,
    Via(Proxy),
    /// A setting that does not parse: its requests fail rather than go
    /// around the proxy the user asked for (Go, curl).
    Unusable(ProxyError),
}

impl From<Option<Proxy>> for Route {
    fn from(proxy: Option<Proxy>) -> Route {
        proxy.map_or(Route::Direct, Route::Via)
    }
}

impl Proxies {
    /// No proxy at all.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// `proxy` for every URL.
    pub fn all(proxy: Proxy) -> Proxies {
        Proxies {
            http: Route::Via(proxy.clone()),
            https: Route::Via(proxy),
            no_proxy: NoProxy::default(),
        }
    }

    /// `proxy` for `http://` URLs.
    pub fn http(mut self, proxy: Option<Proxy>) -> Proxies {
        self.http = proxy.into();
        self
    }

    /// `proxy` for `https://` URLs.
    pub fn https(mut self, proxy: Option<Proxy>) -> Proxies {
        self.https = proxy.into();
        self
    }

    /// The hosts that bypass the proxies.
    pub fn no_proxy(mut self, rules: NoProxy) -> Proxies {
        self.no_proxy = rules;
        self
    }

    /// The proxies of this process's environment ([`from_vars`](Self::from_vars)).
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The proxies named by environment variables read with `var`, with
    /// curl's and Go's rules: `http_proxy` (or `HTTP_PROXY`, ignored when
    /// `REQUEST_METHOD` is set: a CGI request's `Proxy:` header would set
    /// it, CVE-2016-5385; on Windows, whose variable names are
    /// case-insensitive, both are then ignored), `https_proxy` / `HTTPS_PROXY`, `all_proxy` /
    /// `ALL_PROXY` for a scheme without its own, `no_proxy` / `NO_PROXY`;
    /// the lowercase name wins where both are set; an empty value counts
    /// as unset. A value that is no proxy URL this client speaks
    /// (`socks4://`, a typo) is not skipped: the requests it would carry
    /// fail with it ([`route`](Self::route)), as Go's and curl's do,
    /// rather than go around the proxy. A loopback host (`localhost`, `127.0.0.1`,
    /// `[::1]`) goes through the proxy unless `NO_PROXY` lists it, as
    /// with curl (Go's `ProxyFromEnvironment` never proxies them).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Proxies {
        Proxies::from_vars_on(var, cfg!(windows))
    }

    /// [`from_vars`](Self::from_vars), on a system whose variable names
    /// are case-insensitive (`windows`: `http_proxy` is `HTTP_PROXY`, so
    /// a CGI request's `Proxy:` header sets both spellings).
    fn from_vars_on(var: impl Fn(&str) -> Option<String>, windows: bool) -> Proxies {
        // An empty value is unset: the other spelling is read then (Go's
        // `getEnvAny`, curl's `curl_getenv`).
        let set = |name: &str| {
            let value = var(name)?.trim().to_string();
            (!value.is_empty()).then_some(value)
        };
        let get = |lower: &str, upper: Option<&str>| set(lower).or_else(|| upper.and_then(set));
        let cgi = var("REQUEST_METHOD").is_some();
        let route = |value: Option<String>| match value.map(|v| Proxy::parse(&v)) {
            None => Route::Direct,
            Some(Ok(proxy)) => Route::Via(proxy),
            Some(Err(e)) => Route::Unusable(e),
        };
        let all = route(get("all_proxy", Some("ALL_PROXY")));
        let or_all = |own: Route, all: Route| match own {
            Route::Direct => all,
            own => own,
        };
        let http = match (cgi, windows) {
            (true, true) => None,
            (true, false) => get("http_proxy", None),
            (false, _) => get("http_proxy", Some("HTTP_PROXY")),
        };
        let http = or_all(route(http), all.clone());
        let https = or_all(route(get("https_proxy", Some("HTTPS_PROXY"))), all);
        let no_proxy = get("no_proxy", Some("NO_PROXY"))
            .map_or_else(NoProxy::default, |list| NoProxy::parse(&list));
        Proxies {
            http,
            https,
            no_proxy,
        }
    }

    /// True when every URL goes direct.
    pub fn is_empty(&self) -> bool {
        self.http == Route::Direct && self.https == Route::Direct
    }

    /// The proxy for a URL's scheme, host and port, if any (`None` also
    /// where the setting is unusable: [`route`](Self::route) says so).
    pub fn for_url(&self, scheme: &str, host: &str, port: u16) -> Option<&Proxy> {
        self.route(scheme, host, port).ok().flatten()
    }

    /// The proxy for a URL's scheme, host and port: `None` to go direct,
    /// an error when the setting for its scheme is no usable proxy URL
    /// (a host `NO_PROXY` lists goes direct all the same, as in Go).
    ///
    /// ```
    /// use roundtrip_io::proxy::Proxies;
    /// let proxies = Proxies::from_vars(|name| match name {
    ///     "https_proxy" => Some("socks4://tor:9050".to_string()),
    ///     _ => None,
    /// });
    /// assert!(proxies.route("https", "example.com", 443).is_err());
    /// assert!(proxies.route("http", "example.com", 80).unwrap().is_none());
    /// ```
    pub fn route(&self, scheme: &str, host: &str, port: u16) -> Result<Option<&Proxy>, ProxyError> {
        let route = match scheme {
            s if s.eq_ignore_ascii_case("https") => &self.https,
            _ => &self.http,
        };
        if *route == Route::Direct || self.no_proxy.matches(host, port) {
            return Ok(None);
        }
        match route {
            Route::Via(proxy) => Ok(Some(proxy)),
            Route::Unusable(e) => Err(e.clone()),
            Route::Direct => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn lowercase_wins_and_cgi_ignores_upper_http_proxy() {
        let p = Proxies::from_vars(env(&[
            ("http_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
            ("HTTPS_PROXY", "http://secure:3"),
        ]));
        assert_eq!(p.for_url("http", "h", 80).unwrap().host(), "lower");
        assert_eq!(p.for_url("https", "h", 443).unwrap().host(), "secure");
        let cgi = Proxies::from_vars(env(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://attacker:1"),
        ]));
        assert!(cgi.for_url("http", "h", 80).is_none());
        let cgi_lower = Proxies::from_vars(env(&[
            ("REQUEST_METHOD", "GET"),
            ("http_proxy", "http://admin:1"),
        ]));
        assert_eq!(cgi_lower.for_url("http", "h", 80).unwrap().host(), "admin");
        // Windows: `http_proxy` reads `HTTP_PROXY`, which the CGI request set.
        let any_case = |name: &str| {
            let vars = [
                ("REQUEST_METHOD", "GET"),
                ("HTTP_PROXY", "http://attacker:1"),
            ];
            vars.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        let windows = Proxies::from_vars_on(any_case, true);
        assert!(windows.for_url("http", "h", 80).is_none());
    }

    /// A `://` inside a password is no scheme: the text is read as an
    /// `http://` URL (percent-encoded, the password parses; raw, its `/`
    /// ends the authority and it does not), and an error shows none of
    /// the credentials.
    #[test]
    fn a_password_may_hold_a_scheme_separator() {
        let p = Proxy::parse("alice:pa%3A%2F%2Fss@proxy:3128").expect("an http proxy");
        assert_eq!((p.host(), p.port()), ("proxy", 3128));
        assert_eq!(p.credentials(), Some(("alice", "pa://ss")));
        let Err(e) = Proxy::parse("alice:pa://ss@proxy:3128") else {
            panic!("a raw / in the password")
        };
        let ProxyError::InvalidUrl { url, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(url, "***@proxy:3128");
    }

    #[test]
    fn an_empty_lowercase_value_lets_the_uppercase_one_through() {
        let p = Proxies::from_vars(env(&[
            ("https_proxy", ""),
            ("HTTPS_PROXY", "http://corp:3128"),
            ("no_proxy", " "),
            ("NO_PROXY", ".internal"),
        ]));
        assert_eq!(
            p.for_url("https", "example.com", 443).unwrap().host(),
            "corp"
        );
        assert!(p.for_url("https", "db.internal", 443).is_none());
    }

    #[test]
    fn all_proxy_fills_in_and_empty_values_are_unset() {
        let p = Proxies::from_vars(env(&[
            ("ALL_PROXY", "socks5h://s:1080"),
            ("https_proxy", ""),
        ]));
        let kind = ProxyKind::Socks5 { remote_dns: true };
        assert_eq!(p.for_url("http", "h", 80).unwrap().kind(), kind);
        assert_eq!(p.for_url("https", "h", 443).unwrap().kind(), kind);
        assert!(Proxies::from_vars(env(&[])).is_empty());
    }

    /// Go and curl fail the requests of a proxy setting they cannot use;
    /// going direct instead would bypass the proxy the user asked for.
    #[test]
    fn an_unusable_value_fails_its_scheme_instead_of_going_direct() {
        let bad = Proxies::from_vars(env(&[("http_proxy", "ftp://x")]));
        assert!(!bad.is_empty());
        let err = bad.route("http", "h", 80).unwrap_err();
        assert!(matches!(err, ProxyError::InvalidUrl { .. }), "{err:?}");
        assert_eq!(bad.route("https", "h", 443), Ok(None));
        // The lowercase one is taken even when unusable, and ALL_PROXY
        // does not stand in for it.
        let p = Proxies::from_vars(env(&[
            ("https_proxy", "htps://corp:3128"),
            ("HTTPS_PROXY", "http://corp:3128"),
            ("ALL_PROXY", "http://all:3128"),
            ("no_proxy", "inside.test"),
        ]));
        assert!(p.route("https", "e.com", 443).is_err());
        assert_eq!(p.for_url("https", "e.com", 443), None);
        assert_eq!(p.route("https", "inside.test", 443), Ok(None));
        assert_eq!(p.route("http", "e.com", 80).unwrap().unwrap().host(), "all");
        // An unusable ALL_PROXY fails the schemes it stands for.
        let all = Proxies::from_vars(env(&[("all_proxy", "socks4a://tor:9050")]));
        assert!(all.route("http", "e.com", 80).is_err());
        assert!(all.route("https", "e.com", 443).is_err());
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://us%40er:p%3Ass@[::1]:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 3128));
        assert_eq!(p.credentials(), Some(("us@er", "p:ss")));
        assert_eq!(p.to_string(), "http://[::1]:3128");
        assert!(!format!("{p:?}").contains("p:ss"));
        let auth = p.authorization().unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth, "Basic dXNAZXI6cDpzcw==");
        assert_eq!(Proxy::parse("http://h:80").unwrap().port(), 80);
        assert_eq!(Proxy::parse("https://h").unwrap().port(), 443);
        assert_eq!(Proxy::parse("socks5://h").unwrap().port(), 1080);
        let err = Proxy::parse("gopher://user:secret@h").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        // A raw `@` or `/` in the password: nothing of it in the error.
        for url in [
            "socks4://alice:p@ss@proxy:1080",
            "socks4://alice:p/ss@proxy:1080",
        ] {
            let err = Proxy::parse(url).unwrap_err().to_string();
            assert!(!err.contains("ss@") && !err.contains("alice"), "{err}");
        }
        // A token with no user name is still sent (as Go does).
        let token = Proxy::parse("http://:t0k@h:3128").unwrap();
        assert_eq!(token.credentials(), Some(("", "t0k")));
        assert_eq!(token.authorization().unwrap(), "Basic OnQwaw==");
        // Latin-1 bytes would be altered: refused instead.
        let err = Proxy::parse("http://u:caf%E9@h").unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn no_proxy_rules() {
        let rules = NoProxy::parse(" .Corp , 10.0.0.0/8,fe80::/10, *.dev.test, bad:port:x, ,");
        assert!(rules.matches("a.corp", 1));
        assert!(!rules.matches("corp", 1));
        assert!(rules.matches("10.200.0.1", 1));
        assert!(!rules.matches("11.0.0.1", 1));
        assert!(rules.matches("[fe80::1]", 1));
        assert!(rules.matches("x.dev.test", 1));
        assert!(!rules.matches("dev.test", 1));
        assert!(rules.matches("A.CORP.", 1));
        // A name rule never matches an address, nor an address rule a name.
        assert!(!NoProxy::parse("10.0.0.1").matches("10.0.0.1.nip.io", 1));
        assert!(NoProxy::default().is_empty());
        // Brackets: an address, with a port, or a range; nothing else.
        let bracketed = NoProxy::parse("[::1]:8080, [fe80::]/10");
        assert!(bracketed.matches("::1", 8080) && !bracketed.matches("::1", 80));
        assert!(bracketed.matches("fe80::1", 1));
        assert!(NoProxy::parse("[::1]junk").is_empty());
        assert!(NoProxy::parse("[::1]é").is_empty());
        assert!(NoProxy::parse("[::2]x80").is_empty());
        // An IPv4-mapped IPv6 address is matched by its IPv4 rule.
        assert!(rules.matches("[::ffff:10.0.0.1]", 1));
        assert!(!rules.matches("[::ffff:11.0.0.1]", 1));
        // A rule in the IPv6 form still matches it, and the IPv4 host.
        for rule in ["::ffff:10.0.0.1", "[::ffff:10.0.0.1]", "::ffff:0:0/96"] {
            let rules = NoProxy::parse(rule);
            assert!(rules.matches("[::ffff:10.0.0.1]", 1), "{rule}");
            assert!(rules.matches("10.0.0.1", 1), "{rule}");
        }
    }
}
