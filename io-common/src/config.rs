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
/// | `connect_timeout` | 30 s | the host's lookup, then each address's TCP connect |
/// | `happy_eyeballs_delay` | 250 ms | the next address is tried this long after the last attempt started, if none connected nor failed (RFC 8305) |
/// | `response_head_timeout` | none | from the request's last byte to the final response head |
/// | `read_timeout` | 30 s | longest wait for any byte while a response is due |
/// | `write_timeout` | 30 s | longest wait for the socket to accept bytes |
/// | `timeout` | none | the whole request, pool wait to last body byte |
/// | `keep_alive` | true | reuse connections; off sends `Connection: close` |
/// | `conn` | [`ConnConfig::default`] | decoder limits, 100-continue wait, drain bounds |
/// | `default_headers` | `User-Agent: roundtrip/<version>` | added unless the request has them |
/// | `stale_check_after` | 1 ms | an idle connection older than this is probed before reuse |
/// | `trace` | none | a [`Tracer`] called with every [`TraceEvent`](roundtrip_proto::trace::TraceEvent) (with its request's id and time: [`Tracer::with_ids`]) |
/// | `max_redirects` | 10 | redirects followed per request; 0 = none (the 3xx is returned) |
/// | `referer` | on | a redirect's next request names where it comes from in `Referer`, as browsers by default: the URL (no user info) within the origin, the origin alone to another, none from `https` to `http`; a caller's own `Referer` stays (except from `https` to `http`) |
/// | `redirect_policy` | none | asked before each redirect is followed |
/// | `gzip` | true with a coding feature | ask for gzip (and deflate, br, zstd when their features are on) and decode it transparently |
/// | `proxies` | none | the proxies for `http://` and `https://` URLs, and `NO_PROXY` ([`Proxies`](crate::proxy::Proxies)) |
/// | `resolver` | the system's | names to addresses: overrides (curl's `--resolve`), a [`Resolve`](crate::resolve::Resolve) plugged in |
/// | `tls` | [`TlsConfig::default`](crate::tls::TlsConfig) | built-in Mozilla roots, certificates verified, 10 s handshake timeout (feature `tls`) |
/// | `cookie_jar` | none | a `CookieJar` whose cookies are sent and which keeps each `Set-Cookie` (feature `cookies`) |
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
    /// TCP connect timeout: it bounds the host's lookup, then each
    /// address's attempt on its own (Happy Eyeballs runs them side by side,
    /// each started at most `happy_eyeballs_delay` after the last), and is
    /// the longest a proxy may take to set a tunnel up. The whole dial is
    /// bounded by the request's `timeout`. `None`: the connect has only
    /// the request's timeout, and a proxy's tunnel the read timeout, else
    /// a minute (Go's bound on a `CONNECT`).
    pub connect_timeout: Option<Duration>,
    /// Happy Eyeballs' Connection Attempt Delay (RFC 8305 5): the next
    /// address is tried this long after the last attempt started, the
    /// attempts then running side by side.
    pub happy_eyeballs_delay: Duration,
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
    /// Asked before each redirect within `max_redirects` is followed,
    /// while the redirect's connection is still held (Go's `CheckRedirect`
    /// runs after it is let go): a policy that sends a request of its own
    /// with this client to the same host under `max_conns_per_host(1)`
    /// waits for that connection, for ever without a timeout.
    pub redirect_policy: Option<RedirectPolicy>,
    /// Send where a redirect comes from as `Referer` on its next request,
    /// as browsers do by default (`strict-origin-when-cross-origin`): the
    /// URL without user info within the origin, the origin alone to
    /// another, none from `https` to `http` (RFC 9110 section 10.1.3). A
    /// `Referer` the caller set is kept instead (Go), except from `https`
    /// to `http`. Default on.
    pub referer: bool,
    /// Send `Accept-Encoding` with the enabled codings (`gzip, deflate, br,
    /// zstd`, those whose features are on) when the request has no
    /// `Accept-Encoding` and no `Range` and is not HEAD, and decode an
    /// answer in one of them as the body streams (Go's `addedGzip`). The
    /// name stays from when gzip was the only coding: the switch covers
    /// every one. Default on when a coding feature is.
    pub gzip: bool,
    /// How `https` connections speak TLS (feature `tls`): roots, client
    /// certificate, verification, handshake timeout.
    pub tls: crate::tls::TlsConfig,
    /// The cookies sent with each request and each redirect hop, and where
    /// each `Set-Cookie` is kept (feature `cookies`; Go's `Client.Jar`).
    /// `None` sends none and ignores `Set-Cookie`.
    #[cfg(feature = "cookies")]
    pub cookie_jar: Option<crate::CookieJar>,
    /// The proxies requests go through (none by default; see
    /// [`Proxies::from_env`](crate::proxy::Proxies::from_env) for the
    /// environment's).
    pub proxies: crate::proxy::Proxies,
    /// How host names become addresses: overrides, a resolver plugged in,
    /// else the system's ([`Resolver`](crate::resolve::Resolver)).
    pub resolver: crate::resolve::Resolver,
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
            happy_eyeballs_delay: roundtrip_proto::dial::ATTEMPT_DELAY,
            response_head_timeout: None,
            read_timeout: timeout,
            write_timeout: timeout,
            timeout: None,
            keep_alive: true,
            conn: ConnConfig::default(),
            default_headers,
            stale_check_after: Duration::from_millis(1),
            trace: None,
            max_redirects: 10,
            redirect_policy: None,
            referer: true,
            gzip: !crate::Coding::enabled().is_empty(),
            tls: crate::tls::TlsConfig::default(),
            #[cfg(feature = "cookies")]
            cookie_jar: None,
            proxies: crate::proxy::Proxies::none(),
            resolver: crate::resolve::Resolver::default(),
        }
    }
}

impl Config {
    /// The connection settings with this config's response-head timeout,
    /// and shared heads: header values become `http::HeaderValue`s sharing
    /// the read buffer instead of copies.
    pub fn conn_config(&self) -> ConnConfig {
        self.conn
            .response_head_timeout(self.response_head_timeout)
            .share_heads(true)
    }

    /// Sets the decoder limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.conn = self.conn.limits(limits);
    }
}

/// Expands, inside a backend builder's `impl` block, the setters over the
/// [`Config`] the builder holds, so every backend offers the same ones,
/// written once: `config`, `pool`, `max_idle_per_host`, `max_idle_total`,
/// `max_conns_per_host`, `idle_timeout`, `connect_timeout`,
/// `response_head_timeout`, `read_timeout`, `write_timeout`, `timeout`,
/// `keep_alive`, `limits`, `continue_timeout`, `drain`, `stale_check_after`,
/// `default_header`, `user_agent`, `max_redirects`, `redirect_policy`,
/// `referer`, `trace`, `gzip`, `decompress`, and with the `tls` feature `tls`,
/// `add_root_certificate`, `tls_built_in_roots`, `tls_native_roots`,
/// `identity`, `danger_accept_invalid_certs`, `tls_handshake_timeout`,
/// and with the `cookies` feature `cookie_store`, `cookie_provider`.
///
/// The arguments: the name of the builder's `Config` field, the backend
/// crate's name and the expression that makes a builder (both strings; the
/// setters' doc examples are written with them).
///
/// ```
/// pub struct Builder {
///     config: roundtrip_io::Config,
/// }
///
/// impl Builder {
///     roundtrip_io::config_setters!(config, "my_backend", "my_backend::Builder::new()");
/// }
///
/// let builder = Builder { config: Default::default() }
///     .max_conns_per_host(Some(4))
///     .user_agent("demo/1.0");
/// assert_eq!(builder.config.pool.max_conns_per_host, Some(4));
/// ```
#[macro_export]
macro_rules! config_setters {
    ($field:ident, $krate:literal, $builder:expr) => {
        /// All settings at once.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".config(", $krate, "::Config::default());")]
        /// # let _ = builder;
        /// ```
        pub fn config(mut self, config: $crate::Config) -> Self {
            self.$field = config;
            self
        }
        /// Pool policy as a whole.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".pool(Default::default());")]
        /// # let _ = builder;
        /// ```
        pub fn pool(mut self, pool: $crate::proto::pool::PoolConfig) -> Self {
            self.$field.pool = pool;
            self
        }
        /// Most idle connections kept per host.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".max_idle_per_host(8);")]
        /// # let _ = builder;
        /// ```
        pub fn max_idle_per_host(mut self, n: usize) -> Self {
            self.$field.pool = self.$field.pool.max_idle_per_host(n);
            self
        }
        /// Most idle connections kept in all.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".max_idle_total(64);")]
        /// # let _ = builder;
        /// ```
        pub fn max_idle_total(mut self, n: usize) -> Self {
            self.$field.pool = self.$field.pool.max_idle_total(n);
            self
        }
        /// Most connections per host (dialing, in use and idle); `None` = no
        /// limit. Requests beyond it wait in FIFO order.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".max_conns_per_host(Some(16));")]
        /// # let _ = builder;
        /// ```
        pub fn max_conns_per_host(mut self, n: Option<usize>) -> Self {
            self.$field.pool = self.$field.pool.max_conns_per_host(n);
            self
        }
        /// How long an idle connection is kept (default 90 s); it is
        /// closed then, whether or not another request comes.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".idle_timeout(Some(std::time::Duration::from_secs(30)));")]
        /// # let _ = builder;
        /// ```
        pub fn idle_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.pool = self.$field.pool.idle_timeout(d);
            self
        }
        /// TCP connect timeout, per address tried.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".connect_timeout(Some(std::time::Duration::from_secs(3)));")]
        /// # let _ = builder;
        /// ```
        pub fn connect_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.connect_timeout = d;
            self
        }
        /// How long after starting a connect to one address the next is
        /// tried beside it (Happy Eyeballs, RFC 8305; 250 ms by default).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".happy_eyeballs_delay(std::time::Duration::from_millis(100));")]
        /// # let _ = builder;
        /// ```
        pub fn happy_eyeballs_delay(mut self, d: ::std::time::Duration) -> Self {
            self.$field.happy_eyeballs_delay = d;
            self
        }
        /// Time from the request's last byte to the final response head.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".response_head_timeout(Some(std::time::Duration::from_secs(5)));")]
        /// # let _ = builder;
        /// ```
        pub fn response_head_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.response_head_timeout = d;
            self
        }
        /// Longest wait for the next bytes of a response.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".read_timeout(Some(std::time::Duration::from_secs(5)));")]
        /// # let _ = builder;
        /// ```
        pub fn read_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.read_timeout = d;
            self
        }
        /// Longest wait for the socket to accept request bytes.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".write_timeout(Some(std::time::Duration::from_secs(5)));")]
        /// # let _ = builder;
        /// ```
        pub fn write_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.write_timeout = d;
            self
        }
        /// Deadline for a whole request, pool wait to last body byte.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".timeout(Some(std::time::Duration::from_secs(10)));")]
        /// # let _ = builder;
        /// ```
        pub fn timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.timeout = d;
            self
        }
        /// Reuse connections; off sends `Connection: close` on every request.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".keep_alive(false);")]
        /// # let _ = builder;
        /// ```
        pub fn keep_alive(mut self, on: bool) -> Self {
            self.$field.keep_alive = on;
            self
        }
        /// Response decoder limits.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".limits(", $krate, "::proto::Limits::default());")]
        /// # let _ = builder;
        /// ```
        pub fn limits(mut self, limits: $crate::proto::Limits) -> Self {
            self.$field.set_limits(limits);
            self
        }
        /// How long to wait for `100 Continue` before sending the body anyway.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".continue_timeout(std::time::Duration::from_millis(500));")]
        /// # let _ = builder;
        /// ```
        pub fn continue_timeout(mut self, d: ::std::time::Duration) -> Self {
            self.$field.conn = self.$field.conn.continue_timeout(d);
            self
        }
        /// Bounds on draining an abandoned body before giving up the connection.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".drain(16 * 1024, std::time::Duration::from_millis(50));")]
        /// # let _ = builder;
        /// ```
        pub fn drain(mut self, max_bytes: u64, timeout: ::std::time::Duration) -> Self {
            self.$field.conn = self
                .$field
                .conn
                .max_drain_bytes(max_bytes)
                .drain_timeout(timeout);
            self
        }
        /// Idle connections older than this are checked for a close by the
        /// server before reuse; younger ones are reused without the check
        /// (the safe-retry rule covers that race).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".stale_check_after(std::time::Duration::from_millis(10));")]
        /// # let _ = builder;
        /// ```
        pub fn stale_check_after(mut self, d: ::std::time::Duration) -> Self {
            self.$field.stale_check_after = d;
            self
        }
        /// A header sent with every request that does not set it. A
        /// `Host` here replaces the URL's (a virtual host behind an
        /// address) until a redirect leaves the origin; after such a hop
        /// the default `Host`, `Authorization` and `Cookie` stay behind (a
        /// default `Proxy-Authorization` goes to proxies only, and
        /// follows). (Through a forwarding HTTP proxy the
        /// request line's absolute URL names the host, and the proxy
        /// ignores `Host`, as it must: RFC 9112 section 3.2.2.)
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::http::header::{ACCEPT, HeaderValue};")]
        #[doc = concat!("let builder = ", $builder, ".default_header(ACCEPT, HeaderValue::from_static(\"*/*\"));")]
        /// # let _ = builder;
        /// ```
        pub fn default_header(
            mut self,
            name: $crate::http::HeaderName,
            value: $crate::http::HeaderValue,
        ) -> Self {
            self.$field.default_headers.insert(name, value);
            self
        }
        /// The `User-Agent` sent by default: a literal, checked as
        /// `HeaderValue::from_static` checks it. For a value made at run
        /// time, use [`default_header`](Self::default_header) with
        /// `HeaderValue::from_str`, whose error can be handled.
        ///
        /// # Panics
        ///
        /// On a literal that is no header value (a control byte, a byte
        /// over 0x7e), as `HeaderValue::from_static` does.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".user_agent(\"demo/1.0\");")]
        /// # let _ = builder;
        /// ```
        pub fn user_agent(self, value: &'static str) -> Self {
            self.default_header(
                $crate::http::header::USER_AGENT,
                $crate::http::HeaderValue::from_static(value),
            )
        }
        /// Most redirects followed per request (default 10); 0 follows none.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".max_redirects(3);")]
        /// # let _ = builder;
        /// ```
        pub fn max_redirects(mut self, n: usize) -> Self {
            self.$field.max_redirects = n;
            self
        }
        /// A check run before each redirect is followed (while the
        /// redirect's connection is still held: see
        /// `Config::redirect_policy`).
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::{RedirectAction, RedirectPolicy};")]
        /// let same_host = RedirectPolicy::new(|attempt| {
        ///     if attempt.next.host() == attempt.chain[0].host() {
        ///         RedirectAction::Follow
        ///     } else {
        ///         RedirectAction::Stop
        ///     }
        /// });
        #[doc = concat!("let builder = ", $builder, ".redirect_policy(Some(same_host));")]
        /// # let _ = builder;
        /// ```
        pub fn redirect_policy(mut self, policy: Option<$crate::RedirectPolicy>) -> Self {
            self.$field.redirect_policy = policy;
            self
        }
        /// Whether a redirect's next request says where it came from in
        /// `Referer` (default on; the URL within the origin, the origin
        /// alone to another, never from `https` to `http`).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".referer(false);")]
        /// # let _ = builder;
        /// ```
        pub fn referer(mut self, on: bool) -> Self {
            self.$field.referer = on;
            self
        }
        /// Calls `tracer` with every trace event of every request (Go's
        /// `httptrace`): a closure of the [`TraceEvent`]s alone, or a
        /// [`Tracer`] (see [`Tracer::with_ids`] for one told which request
        /// each event belongs to, and when).
        ///
        #[doc = concat!("[`TraceEvent`]: ", $krate, "::TraceEvent")]
        #[doc = concat!("[`Tracer`]: ", $krate, "::Tracer")]
        #[doc = concat!("[`Tracer::with_ids`]: ", $krate, "::Tracer::with_ids")]
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::{TraceEvent, Traced, Tracer};")]
        #[doc = concat!("let builder = ", $builder, ".trace(|event: &TraceEvent| eprintln!(\"{event}\"));")]
        /// # let _ = builder;
        /// // Or with the request each event belongs to, and its time:
        /// let tracer = Tracer::with_ids(|t: &Traced| {
        ///     eprintln!("{:?} {:?} {}", t.request, t.at, t.event);
        /// });
        #[doc = concat!("let builder = ", $builder, ".trace(tracer);")]
        /// # let _ = builder;
        /// ```
        pub fn trace(mut self, tracer: impl ::core::convert::Into<$crate::Tracer>) -> Self {
            self.$field.trace = Some(tracer.into());
            self
        }
        /// Ask for the enabled content codings (gzip, and deflate, br,
        /// zstd with their features) and decode them transparently
        /// (default on when a coding feature is). The same switch as
        /// [`decompress`](Self::decompress).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".gzip(false);")]
        /// # let _ = builder;
        /// ```
        pub fn gzip(mut self, on: bool) -> Self {
            self.$field.gzip = on;
            self
        }
        /// Ask for the enabled content codings and decode them
        /// transparently: [`gzip`](Self::gzip) under a name that fits
        /// every coding.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".decompress(false);")]
        /// # let _ = builder;
        /// ```
        pub fn decompress(self, on: bool) -> Self {
            self.gzip(on)
        }
        /// Sends every request through `proxy` (`http://`, `https://`,
        /// `socks5://` or `socks5h://`, with `user:password@` for
        /// credentials), except to the hosts of `no_proxy`.
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::proxy::{NoProxy, Proxies, Proxy};")]
        /// let proxy = Proxy::parse("http://127.0.0.1:3128").unwrap();
        #[doc = concat!("let builder = ", $builder, ".proxies(Proxies::all(proxy).no_proxy(NoProxy::parse(\"localhost\")));")]
        /// # let _ = builder;
        /// ```
        pub fn proxies(mut self, proxies: $crate::proxy::Proxies) -> Self {
            self.$field.proxies = proxies;
            self
        }
        /// Uses the proxies of the environment (`http_proxy`,
        /// `https_proxy`, `all_proxy`, `no_proxy` and their uppercase
        /// forms, with curl's and Go's rules), read now.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".proxies_from_env();")]
        /// # let _ = builder;
        /// ```
        pub fn proxies_from_env(mut self) -> Self {
            self.$field.proxies = $crate::proxy::Proxies::from_env();
            self
        }
        /// Answers `host` with `addr`'s IP address on every port, without
        /// a lookup (as reqwest's `resolve` pins a name): the URL's port,
        /// or its scheme's, is dialed. Unlike reqwest, `addr`'s port is
        /// never used, not even for a URL without a port: `host:0` will
        /// do. For one port only, curl's `--resolve host:port:addr` form:
        /// `Resolver::add_override`.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".resolve(\"example.com\", \"127.0.0.1:0\".parse().unwrap());")]
        /// # let _ = builder;
        /// ```
        pub fn resolve(mut self, host: &str, addr: ::std::net::SocketAddr) -> Self {
            self.$field.resolver.add_host(host, vec![addr.ip()]);
            self
        }
        /// Looks host names up with `resolver` instead of the system's (it
        /// may block: it never runs on an event loop's thread).
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::resolve::Resolve;")]
        /// struct Local;
        /// impl Resolve for Local {
        ///     fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        ///         Ok(vec![([127, 0, 0, 1], port).into()])
        ///     }
        /// }
        #[doc = concat!("let builder = ", $builder, ".dns_resolver(Local);")]
        /// # let _ = builder;
        /// ```
        pub fn dns_resolver(mut self, resolver: impl $crate::resolve::Resolve) -> Self {
            let resolver = ::core::mem::take(&mut self.$field.resolver).with_resolver(resolver);
            self.$field.resolver = resolver;
            self
        }
        /// All TLS settings at once (feature `tls`).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".tls(", $krate, "::tls::TlsConfig::default());")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn tls(mut self, tls: $crate::tls::TlsConfig) -> Self {
            self.$field.tls = tls;
            self
        }
        /// Trusts `cert` as a root, beside the built-in ones (a corporate
        /// or test CA; feature `tls`).
        ///
        /// ```no_run
        #[doc = concat!("use ", $krate, "::tls::Certificate;")]
        /// let ca = Certificate::from_pem(&std::fs::read("corp-ca.pem").unwrap()).unwrap();
        #[doc = concat!("let builder = ", $builder, ".add_root_certificate(ca);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn add_root_certificate(mut self, cert: $crate::tls::Certificate) -> Self {
            self.$field.tls.extra_roots.push(cert);
            self
        }
        /// Trusts the Mozilla roots compiled in (default on; feature `tls`).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".tls_built_in_roots(false);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn tls_built_in_roots(mut self, on: bool) -> Self {
            self.$field.tls.built_in_roots = on;
            self
        }
        /// Trusts the operating system's roots too (feature
        /// `tls-native-roots`; without it, https requests fail with
        /// `TlsError::Config` saying so).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".tls_native_roots(true);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn tls_native_roots(mut self, on: bool) -> Self {
            self.$field.tls.native_roots = on;
            self
        }
        /// The client certificate and key sent to servers that ask for one
        /// (mutual TLS; feature `tls`).
        ///
        /// ```no_run
        #[doc = concat!("use ", $krate, "::tls::Identity;")]
        /// let pem = std::fs::read("client.pem").unwrap(); // certificate and key
        /// let id = Identity::from_pem(&pem, &pem).unwrap();
        #[doc = concat!("let builder = ", $builder, ".identity(id);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn identity(mut self, identity: $crate::tls::Identity) -> Self {
            self.$field.tls.identity = Some(identity);
            self
        }
        /// Accepts any server certificate: expired, self-signed, for
        /// another name. For tests against throwaway certificates only:
        /// anyone on the path can then read and change the traffic
        /// (feature `tls`).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".danger_accept_invalid_certs(true);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn danger_accept_invalid_certs(mut self, on: bool) -> Self {
            self.$field.tls.danger_accept_invalid_certs = on;
            self
        }
        /// Longest TLS handshake (default 10 s; feature `tls`).
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".tls_handshake_timeout(Some(std::time::Duration::from_secs(5)));")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "tls")]
        pub fn tls_handshake_timeout(mut self, d: Option<::std::time::Duration>) -> Self {
            self.$field.tls.handshake_timeout = d;
            self
        }
        /// Keeps cookies in a fresh jar of this client's own: each
        /// `Set-Cookie` is stored, and sent back where it applies (feature
        /// `cookies`). `false` removes any jar.
        ///
        /// ```
        #[doc = concat!("let builder = ", $builder, ".cookie_store(true);")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "cookies")]
        pub fn cookie_store(mut self, on: bool) -> Self {
            self.$field.cookie_jar = on.then($crate::CookieJar::new);
            self
        }
        /// Keeps cookies in `jar`, which the caller (and other clients)
        /// may share: preload it, or read what servers set (feature
        /// `cookies`).
        ///
        /// ```
        #[doc = concat!("use ", $krate, "::CookieJar;")]
        /// let jar = CookieJar::new();
        /// let site = "http://127.0.0.1:8080/".parse().unwrap();
        /// jar.add_cookie_str("session=abc; Path=/", &site).unwrap();
        #[doc = concat!("let builder = ", $builder, ".cookie_provider(jar.clone());")]
        /// # let _ = builder;
        /// ```
        #[cfg(feature = "cookies")]
        pub fn cookie_provider(mut self, jar: $crate::CookieJar) -> Self {
            self.$field.cookie_jar = Some(jar);
            self
        }
    };
}
