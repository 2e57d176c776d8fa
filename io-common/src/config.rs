//! Client settings shared by every backend.

use std::time::Duration;

use http::HeaderMap;
use http::header::{HeaderValue, USER_AGENT};
use roundtrip_proto::Limits;
use roundtrip_proto::conn::ConnConfig;
use roundtrip_proto::pool::PoolConfig;

use crate::Tracer;

use crate::redirect::RedirectPolicy;

/// Everything a client can be configured with; each backend's builder sets
/// these. Defaults:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `pool` | [`PoolConfig::default`] | idle limits, `max_conns_per_host`, idle timeout |
/// | `connect_timeout` | 30 s | TCP connect, per address tried |
/// | `response_head_timeout` | none | from the request's last byte to the final response head |
/// | `read_timeout` | 30 s | longest wait for any byte while a response is due |
/// | `write_timeout` | 30 s | longest wait for the socket to accept bytes |
/// | `timeout` | none | the whole request, pool wait to last body byte |
/// | `keep_alive` | true | reuse connections; off sends `Connection: close` |
/// | `conn` | [`ConnConfig::default`] | decoder limits, 100-continue wait, drain bounds |
/// | `default_headers` | `User-Agent: roundtrip/<version>` | added unless the request has them |
/// | `stale_check_after` | 100 ms | an idle connection older than this is probed before reuse |
/// | `trace` | none | a [`Tracer`] called with every [`TraceEvent`](roundtrip_proto::trace::TraceEvent) |
/// | `max_redirects` | 10 | redirects followed per request; 0 = none (the 3xx is returned) |
/// | `redirect_policy` | none | asked before each redirect is followed |
/// | `gzip` | true with the `gzip` feature | ask for gzip and decode it transparently |
///
/// ```
/// use std::time::Duration;
/// use roundtrip_io::Config;
/// let mut config = Config::default();
/// config.timeout = Some(Duration::from_secs(10));
/// assert!(config.keep_alive);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Pool policy.
    pub pool: PoolConfig,
    /// TCP connect timeout.
    pub connect_timeout: Option<Duration>,
    /// Time allowed from the request's last byte to the final response head.
    pub response_head_timeout: Option<Duration>,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Option<Duration>,
    /// Longest wait for the socket to accept request bytes.
    pub write_timeout: Option<Duration>,
    /// Deadline for the whole request, from the pool wait to the last body byte.
    pub timeout: Option<Duration>,
    /// Reuse connections (HTTP keep-alive).
    pub keep_alive: bool,
    /// Protocol settings of each connection.
    pub conn: ConnConfig,
    /// Headers added to every request that does not set them.
    pub default_headers: HeaderMap,
    /// Idle connections older than this are checked for a close by the
    /// server before reuse. Younger ones are reused without the check, which
    /// would cost a syscall on every request of a busy client; a close that
    /// races with such a reuse is handled by the safe-retry rule.
    pub stale_check_after: Duration,
    /// Called with each trace event of each request (connection acquired,
    /// request written, first response byte, connection kept or closed).
    pub trace: Option<Tracer>,
    /// Most redirects (301, 302, 303, 307, 308) followed for one request; one
    /// more fails with [`Error::TooManyRedirects`](crate::Error::TooManyRedirects).
    /// Zero follows none: a redirect is returned as it is.
    pub max_redirects: usize,
    /// Asked before each redirect within `max_redirects` is followed.
    pub redirect_policy: Option<RedirectPolicy>,
    /// Send `Accept-Encoding: gzip` when the request has no `Accept-Encoding`
    /// and no `Range` and is not HEAD, and decode a gzip answer to it as the
    /// body streams (Go's `addedGzip`). Needs the `gzip` feature.
    pub gzip: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("roundtrip/", env!("CARGO_PKG_VERSION"))),
        );
        let timeout = Some(Duration::from_secs(30));
        Config {
            pool: PoolConfig::default(),
            connect_timeout: timeout,
            response_head_timeout: None,
            read_timeout: timeout,
            write_timeout: timeout,
            timeout: None,
            keep_alive: true,
            conn: ConnConfig::default(),
            default_headers,
            stale_check_after: Duration::from_millis(100),
            trace: None,
            max_redirects: 10,
            redirect_policy: None,
            gzip: cfg!(feature = "gzip"),
        }
    }
}

impl Config {
    /// The connection settings with this config's response-head timeout.
    pub fn conn_config(&self) -> ConnConfig {
        self.conn.response_head_timeout(self.response_head_timeout)
    }

    /// Sets the decoder limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.conn = self.conn.limits(limits);
    }
}
