//! [`DriverBuilder`]: the settings of a [`Driver`], and where it polls.

use std::io;

use mio::{Events, Poll, Registry, Token};
use roundtrip_io::Config;

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
/// registered with the caller's ([`build_in`](Self::build_in)). The
/// settings shared with the other backends are [`roundtrip_io::config_setters`]'s.
///
/// One of them acts in the driver's own way: an idle connection stays
/// registered, so a close by the server is seen as an event and the
/// connection is dropped at once, however young;
/// [`stale_check_after`](Self::stale_check_after) only says when a checkout
/// probes a connection no event spoke of. Redirect hops
/// ([`max_redirects`](Self::max_redirects)) are followed inside the
/// exchange: only final responses finish.
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
    roundtrip_io::config_setters!(config, "roundtrip_mio", "roundtrip_mio::Driver::builder()");

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

    /// A driver with its own `Poll`, turned by [`Driver::run_once`].
    pub fn build(self) -> io::Result<Driver> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let events = Events::with_capacity(EVENTS_PER_TURN);
        Ok(Driver::with_parts(
            Some((poll, events)),
            registry,
            0..usize::MAX,
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
        self.build_in_range(registry, first_token.0..usize::MAX)
    }

    /// A driver whose sockets are registered with the caller's `Poll`, using
    /// only the tokens in `tokens`: the caller's own sources may take any
    /// token outside it, below or above. At most `tokens.len()` connections
    /// are open at once; a dial beyond that fails (the request fails with
    /// [`Error::Connect`](crate::Error::Connect)) rather than take a token
    /// outside the range. Pair it with
    /// [`max_conns_per_host`](Self::max_conns_per_host) to queue requests
    /// instead, keeping its sum over the hosts in use below the range:
    /// the cap is per host, and a dial to a host with several addresses
    /// holds a token for each attempt Happy Eyeballs has open at once
    /// (with a second address that does not answer, two). Fails with
    /// `InvalidInput` for an empty range.
    ///
    /// ```no_run
    /// use mio::{Poll, Token};
    /// let poll = Poll::new()?;
    /// // Tokens 0..100 and 200.. stay the caller's.
    /// let driver = roundtrip_mio::Driver::builder().build_in_range(poll.registry(), 100..200)?;
    /// assert!(driver.owns(Token(150)) && !driver.owns(Token(200)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_in_range(
        self,
        registry: &Registry,
        tokens: std::ops::Range<usize>,
    ) -> io::Result<Driver> {
        if tokens.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the driver's token range is empty",
            ));
        }
        Ok(Driver::with_parts(
            None,
            registry.try_clone()?,
            tokens,
            self.config,
            self.max_body_bytes,
        ))
    }
}
