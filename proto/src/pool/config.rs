//! What a pool is keyed on and configured with: Scheme, Key, PoolConfig.

use super::*;

/// The URI scheme of a pooled connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS over TCP.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// How a proxied connection reaches its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyMode {
    /// An HTTP proxy that forwards each request (sent in absolute form):
    /// one connection serves every origin.
    Forward,
    /// An HTTP `CONNECT` tunnel to one origin (RFC 9110 section 9.3.6).
    Connect,
    /// A SOCKS5 tunnel to one origin (RFC 1928); the client resolves the
    /// origin's name.
    Socks5,
    /// A SOCKS5 tunnel; the proxy resolves the origin's name.
    Socks5h,
}

/// The proxy a connection goes through, as part of its [`Key`].
///
/// ```
/// use roundtrip_proto::pool::{Key, ProxyMode, Scheme, Via};
/// let via = Via::new(ProxyMode::Connect, false, "Proxy.Corp", 3128, 0);
/// let key = Key::new(Scheme::Https, "example.com", 443).with_via(via);
/// assert_eq!(key.dial_addr(), ("proxy.corp", 3128));
/// assert_eq!(key.to_string(), "https://example.com:443 via http://proxy.corp:3128");
/// assert_ne!(key, Key::new(Scheme::Https, "example.com", 443));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Via {
    mode: ProxyMode,
    /// The proxy is reached over TLS (an `https://` proxy).
    tls: bool,
    host: SmolStr,
    port: u16,
    /// Tells proxies with different credentials apart (a hash of them, or
    /// 0 for none): their connections are not interchangeable.
    auth: u64,
}

impl Via {
    /// A proxy at `host:port` (host lowercased) spoken to as `mode`, over
    /// TLS when `tls`; `auth` tells credentials apart.
    pub fn new(mode: ProxyMode, tls: bool, host: &str, port: u16, auth: u64) -> Via {
        Via {
            mode,
            tls,
            host: host.to_ascii_lowercase_smolstr(),
            port,
            auth,
        }
    }
    /// How the proxy is spoken to.
    pub fn mode(&self) -> ProxyMode {
        self.mode
    }
    /// The proxy is reached over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }
    /// The proxy's host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.mode, self.tls) {
            (ProxyMode::Socks5, _) => "socks5",
            (ProxyMode::Socks5h, _) => "socks5h",
            (_, true) => "https",
            (_, false) => "http",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Which connections are interchangeable: same scheme, host and port, and
/// the same proxy if any.
///
/// ```
/// use roundtrip_proto::pool::{Key, Scheme};
/// let key = Key::new(Scheme::Https, "Example.COM", 443);
/// assert_eq!(key.host(), "example.com");
/// assert_eq!(key.to_string(), "https://example.com:443");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    scheme: Scheme,
    /// Inline up to 23 bytes, so making a key per request allocates nothing.
    host: SmolStr,
    port: u16,
    /// The proxy, boxed: a direct key stays small.
    via: Option<alloc::boxed::Box<Via>>,
}

impl Key {
    /// A key for `host` (ASCII-lowercased here; IPv6 literals without brackets).
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        Key {
            scheme,
            host: host.to_ascii_lowercase_smolstr(),
            port,
            via: None,
        }
    }

    /// The key of the connections to a forwarding HTTP proxy: they serve
    /// `http` requests to every origin, so no origin is part of it (its
    /// host is empty and its port 0).
    ///
    /// ```
    /// use roundtrip_proto::pool::{Key, ProxyMode, Via};
    /// let key = Key::forward(Via::new(ProxyMode::Forward, false, "proxy", 3128, 0));
    /// assert_eq!(key.dial_addr(), ("proxy", 3128));
    /// assert_eq!(key.to_string(), "http://* via http://proxy:3128");
    /// ```
    pub fn forward(via: Via) -> Self {
        Key {
            scheme: Scheme::Http,
            host: SmolStr::default(),
            port: 0,
            via: Some(alloc::boxed::Box::new(via)),
        }
    }

    /// This key, through `via`.
    pub fn with_via(mut self, via: Via) -> Self {
        self.via = Some(alloc::boxed::Box::new(via));
        self
    }

    /// The proxy, if the connection goes through one.
    pub fn via(&self) -> Option<&Via> {
        self.via.as_deref()
    }

    /// Where the connection is dialed: the proxy's address, or the origin's.
    pub fn dial_addr(&self) -> (&str, u16) {
        match &self.via {
            Some(via) => (&via.host, via.port),
            None => (&self.host, self.port),
        }
    }
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    /// The lowercased host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Every field, as the derived `Hash` would, but in two writes: the pool
/// hashes the key of every checkout and check-in under SipHash, whose cost
/// grows with the number of writes more than with their bytes.
impl core::hash::Hash for Key {
    fn hash<S: core::hash::Hasher>(&self, state: &mut S) {
        // The host's length tells where its bytes end.
        let fields = (self.host.len() as u64) << 32
            | u64::from(self.port) << 16
            | (self.scheme as u64) << 8
            | u64::from(self.via.is_some());
        state.write_u64(fields);
        state.write(self.host.as_bytes());
        if let Some(via) = &self.via {
            via.hash(state);
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, host, port) = (self.scheme.as_str(), &self.host, self.port);
        if host.is_empty() {
            write!(f, "{scheme}://*")?;
        } else if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}")?;
        } else {
            write!(f, "{scheme}://{host}:{port}")?;
        }
        match &self.via {
            Some(via) => write!(f, " via {via}"),
            None => Ok(()),
        }
    }
}

/// Pool limits and timeouts. Defaults:
///
/// | setting | default | Go `http.Transport` |
/// |---|---|---|
/// | `max_idle_per_host` | 32 | `MaxIdleConnsPerHost` |
/// | `max_idle_total` | 256 | `MaxIdleConns` |
/// | `max_conns_per_host` | `None` (unlimited) | `MaxConnsPerHost` |
/// | `idle_timeout` | `Some(90 s)` | `IdleConnTimeout` |
/// | `keep_alive_margin` | 1 s | (none) |
///
/// ```
/// use core::time::Duration;
/// use roundtrip_proto::pool::PoolConfig;
/// let config = PoolConfig::default().max_conns_per_host(Some(4)).idle_timeout(None);
/// assert_eq!(config.max_conns_per_host, Some(4));
/// assert_eq!(config.keep_alive_margin, Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most idle connections kept per key; the least recently used goes first.
    pub max_idle_per_host: usize,
    /// Most idle connections kept in all; the least recently used goes first.
    pub max_idle_total: usize,
    /// Most connections per key, dialing + in use + idle; `None` = no cap.
    /// `Some(0)` counts as `Some(1)`, since it would make every request wait.
    pub max_conns_per_host: Option<usize>,
    /// How long a connection may stay idle; `None` = as long as the server allows.
    pub idle_timeout: Option<Duration>,
    /// When the server announced `Keep-Alive: timeout=N`, an idle connection
    /// expires at `N - keep_alive_margin` (at once if `N <= margin`), so it is
    /// not used just as the server closes it. The earlier of this and
    /// `idle_timeout` wins.
    pub keep_alive_margin: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 32,
            max_idle_total: 256,
            max_conns_per_host: None,
            idle_timeout: Some(Duration::from_secs(90)),
            keep_alive_margin: Duration::from_secs(1),
        }
    }
}

impl PoolConfig {
    /// Sets [`PoolConfig::max_idle_per_host`].
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = n;
        self
    }
    /// Sets [`PoolConfig::max_idle_total`].
    pub fn max_idle_total(mut self, n: usize) -> Self {
        self.max_idle_total = n;
        self
    }
    /// Sets [`PoolConfig::max_conns_per_host`].
    pub fn max_conns_per_host(mut self, n: Option<usize>) -> Self {
        self.max_conns_per_host = n;
        self
    }
    /// Sets [`PoolConfig::idle_timeout`].
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Sets [`PoolConfig::keep_alive_margin`].
    pub fn keep_alive_margin(mut self, d: Duration) -> Self {
        self.keep_alive_margin = d;
        self
    }

    pub(super) fn conn_cap(&self) -> usize {
        self.max_conns_per_host.map_or(usize::MAX, |n| n.max(1))
    }

    /// When a connection idle from `now` expires, and why: the earlier of the
    /// idle timeout and the server's Keep-Alive hint minus the margin.
    pub(super) fn expiry(
        &self,
        keep_alive_timeout: Option<Duration>,
        now: Instant,
    ) -> Option<Expiry> {
        let idle = self.idle_timeout.map(|d| Expiry {
            at: now + d,
            reason: CloseReason::IdleTimeout,
        });
        let hint = keep_alive_timeout.map(|n| Expiry {
            at: now + n.saturating_sub(self.keep_alive_margin),
            reason: CloseReason::KeepAliveTimeout,
        });
        match (idle, hint) {
            (Some(idle), Some(hint)) => Some(if hint.at <= idle.at { hint } else { idle }),
            (idle, hint) => idle.or(hint),
        }
    }
}
