//! [`DriverBuilder`]: the settings of a [`Driver`], and where it polls.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Registry, Token};
use roundtrip_io::Config;
use roundtrip_io::http::{self, HeaderName, HeaderValue};
use roundtrip_io::proto::Limits;
use roundtrip_io::proto::pool::PoolConfig;

use crate::Driver;

/// The default [`DriverBuilder::max_body_bytes`]: 64 MiB.
///
/// ```
/// assert_eq!(roundtrip_mio::DEFAULT_MAX_BODY_BYTES, 64 << 20);
/// ```
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;

/// Events one turn of [`Driver::run_once`] takes at most.
const EVENTS_PER_TURN: usize = 1024;

/// Builds a [`Driver`]: with its own `Poll` ([`build`](Self::build)) or
/// registered with the caller's ([`build_in`](Self::build_in)).
///
/// ```no_run
/// use std::time::Duration;
/// let driver = roundtrip_mio::Driver::builder()
///     .max_conns_per_host(Some(16))
///     .timeout(Some(Duration::from_secs(10)))
///     .max_body_bytes(1 << 20)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DriverBuilder {
    config: Config,
    max_body_bytes: u64,
}

impl Default for DriverBuilder {
    fn default() -> Self {
        DriverBuilder {
            config: Config::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl DriverBuilder {
    /// All settings at once.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().config(roundtrip_mio::Config::default());
    /// # let _ = builder;
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// The most body bytes [`Driver::submit`] collects in memory before the
    /// exchange fails with `Error::BodyTooLarge`.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().max_body_bytes(1 << 20);
    /// # let _ = builder;
    /// ```
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }
    /// Pool policy as a whole.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().pool(Default::default());
    /// # let _ = builder;
    /// ```
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.config.pool = pool;
        self
    }
    /// Most idle connections kept per host.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().max_idle_per_host(8);
    /// # let _ = builder;
    /// ```
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.config.pool = self.config.pool.max_idle_per_host(n);
        self
    }
    /// Most idle connections kept in all.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().max_idle_total(64);
    /// # let _ = builder;
    /// ```
    pub fn max_idle_total(mut self, n: usize) -> Self {
        self.config.pool = self.config.pool.max_idle_total(n);
        self
    }
    /// Most connections per host (dialing, in use and idle); `None` = no
    /// limit. Requests beyond it wait in FIFO order.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().max_conns_per_host(Some(16));
    /// # let _ = builder;
    /// ```
    pub fn max_conns_per_host(mut self, n: Option<usize>) -> Self {
        self.config.pool = self.config.pool.max_conns_per_host(n);
        self
    }
    /// How long an idle connection is kept.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().idle_timeout(Some(std::time::Duration::from_secs(30)));
    /// # let _ = builder;
    /// ```
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.pool = self.config.pool.idle_timeout(d);
        self
    }
    /// TCP connect timeout, per address tried.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().connect_timeout(Some(std::time::Duration::from_secs(3)));
    /// # let _ = builder;
    /// ```
    pub fn connect_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Time from the request's last byte to the final response head.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().response_head_timeout(Some(std::time::Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    pub fn response_head_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.response_head_timeout = d;
        self
    }
    /// Longest wait for the next bytes of a response.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().read_timeout(Some(std::time::Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    pub fn read_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.read_timeout = d;
        self
    }
    /// Longest wait for the socket to accept request bytes.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().write_timeout(Some(std::time::Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    pub fn write_timeout(mut self, d: Option<Duration>) -> Self {
        self.config.write_timeout = d;
        self
    }
    /// Deadline for a whole request, pool wait to last body byte.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().timeout(Some(std::time::Duration::from_secs(10)));
    /// # let _ = builder;
    /// ```
    pub fn timeout(mut self, d: Option<Duration>) -> Self {
        self.config.timeout = d;
        self
    }
    /// Reuse connections; off sends `Connection: close` on every request.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().keep_alive(false);
    /// # let _ = builder;
    /// ```
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.config.keep_alive = on;
        self
    }
    /// Response decoder limits.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().limits(roundtrip_mio::proto::Limits::default());
    /// # let _ = builder;
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.set_limits(limits);
        self
    }
    /// How long to wait for `100 Continue` before sending the body anyway.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().continue_timeout(std::time::Duration::from_millis(500));
    /// # let _ = builder;
    /// ```
    pub fn continue_timeout(mut self, d: Duration) -> Self {
        self.config.conn = self.config.conn.continue_timeout(d);
        self
    }
    /// Bounds on draining an abandoned body before giving up the connection.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().drain(16 * 1024, std::time::Duration::from_millis(50));
    /// # let _ = builder;
    /// ```
    pub fn drain(mut self, max_bytes: u64, timeout: Duration) -> Self {
        self.config.conn = self
            .config
            .conn
            .max_drain_bytes(max_bytes)
            .drain_timeout(timeout);
        self
    }
    /// Idle connections younger than this are reused without a check for
    /// a close by the server (the safe-retry rule covers that race), and a
    /// close seen on one is acted on once it is this old; older ones are
    /// dropped as soon as the close is seen, or checked before reuse.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().stale_check_after(std::time::Duration::from_millis(10));
    /// # let _ = builder;
    /// ```
    pub fn stale_check_after(mut self, d: Duration) -> Self {
        self.config.stale_check_after = d;
        self
    }
    /// A header sent with every request that does not set it.
    ///
    /// ```
    /// use roundtrip_mio::http::header::{ACCEPT, HeaderValue};
    /// let builder = roundtrip_mio::Driver::builder().default_header(ACCEPT, HeaderValue::from_static("*/*"));
    /// # let _ = builder;
    /// ```
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.config.default_headers.insert(name, value);
        self
    }
    /// The `User-Agent` sent by default.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().user_agent("demo/1.0");
    /// # let _ = builder;
    /// ```
    pub fn user_agent(self, value: &'static str) -> Self {
        self.default_header(http::header::USER_AGENT, HeaderValue::from_static(value))
    }
    /// Most redirects followed per request (default 10); 0 follows none.
    /// The driver sends each hop itself: only final responses finish.
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().max_redirects(3);
    /// # let _ = builder;
    /// ```
    pub fn max_redirects(mut self, n: usize) -> Self {
        self.config.max_redirects = n;
        self
    }
    /// A check run before each redirect is followed.
    ///
    /// ```
    /// use roundtrip_mio::{RedirectAction, RedirectPolicy};
    /// let same_host = RedirectPolicy::new(|attempt| {
    ///     if attempt.next.host() == attempt.chain[0].host() {
    ///         RedirectAction::Follow
    ///     } else {
    ///         RedirectAction::Stop
    ///     }
    /// });
    /// let builder = roundtrip_mio::Driver::builder().redirect_policy(Some(same_host));
    /// # let _ = builder;
    /// ```
    pub fn redirect_policy(mut self, policy: Option<roundtrip_io::RedirectPolicy>) -> Self {
        self.config.redirect_policy = policy;
        self
    }
    /// Ask for gzip and decode it transparently (default on with the `gzip`
    /// feature).
    ///
    /// ```
    /// let builder = roundtrip_mio::Driver::builder().gzip(false);
    /// # let _ = builder;
    /// ```
    pub fn gzip(mut self, on: bool) -> Self {
        self.config.gzip = on;
        self
    }

    /// A driver with its own `Poll`, turned by [`Driver::run_once`].
    pub fn build(self) -> io::Result<Driver> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let events = Events::with_capacity(EVENTS_PER_TURN);
        Ok(Driver::with_parts(
            Some((poll, events)),
            registry,
            Token(0),
            self.config,
            self.max_body_bytes,
        ))
    }

    /// A driver whose sockets are registered with the caller's `Poll`, using
    /// every token from `first_token` upward (the caller's own sources take
    /// tokens below it). The caller's loop passes the driver's events to
    /// [`Driver::handle_event`], calls [`Driver::handle_timeout`], and waits
    /// no longer than [`Driver::poll_timeout`].
    ///
    /// ```no_run
    /// use mio::{Poll, Token};
    /// let poll = Poll::new()?;
    /// let driver = roundtrip_mio::Driver::builder().build_in(poll.registry(), Token(100))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_in(self, registry: &Registry, first_token: Token) -> io::Result<Driver> {
        Ok(Driver::with_parts(
            None,
            registry.try_clone()?,
            first_token,
            self.config,
            self.max_body_bytes,
        ))
    }
}
