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

/// Which connections are interchangeable: same scheme, host and port.
///
/// ```
/// use roundtrip_proto::pool::{Key, Scheme};
/// let key = Key::new(Scheme::Https, "Example.COM", 443);
/// assert_eq!(key.host(), "example.com");
/// assert_eq!(key.to_string(), "https://example.com:443");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    scheme: Scheme,
    /// Inline up to 23 bytes, so making a key per request allocates nothing.
    host: SmolStr,
    port: u16,
}

impl Key {
    /// A key for `host` (ASCII-lowercased here; IPv6 literals without brackets).
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Self {
        Key {
            scheme,
            host: host.to_ascii_lowercase_smolstr(),
            port,
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

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, host, port) = (self.scheme.as_str(), &self.host, self.port);
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}")
        } else {
            write!(f, "{scheme}://{host}:{port}")
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
