//! The adapter's side of "time is an input": one origin, conversions both ways.

use std::time::{Duration, Instant as StdInstant};

use roundtrip_proto::time::Instant;

/// Converts between `std::time::Instant` and the core's [`Instant`].
///
/// ```
/// use roundtrip_io::Clock;
/// let clock = Clock::new();
/// let before = std::time::Instant::now();
/// let now = clock.now();
/// // The core's time never lags the std clock it converts to.
/// assert!(clock.to_std(now) >= before);
/// assert_eq!(clock.from_std(clock.to_std(now)), now);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
    /// The origin on the monotonic clock `std::time::Instant` reads, in
    /// nanoseconds ([`crate::sys::monotonic_nanos`]).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    origin_nanos: u64,
    /// A runtime's own clock, read in place of the system's
    /// ([`Clock::with_source`]).
    source: Option<fn() -> StdInstant>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        // The nanoseconds first: the core's time then never lags what the
        // conversions below say (a wait that ends at `to_std(at)` finds
        // `now() >= at`), it leads them by the nanoseconds between the
        // two reads.
        let origin_nanos = crate::sys::monotonic_nanos();
        Clock {
            origin: StdInstant::now(),
            origin_nanos,
            source: None,
        }
    }

    /// A clock that reads `source` for the time: a runtime's clock, where
    /// the runtime's timers fire by it rather than by the system's (tokio's
    /// paused time, `tokio::time::Instant::now`). Its instants must never
    /// go back; the origin is `source`'s now.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use roundtrip_io::Clock;
    /// fn frozen() -> Instant {
    ///     static AT: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ///     *AT.get_or_init(Instant::now)
    /// }
    /// let clock = Clock::with_source(frozen);
    /// std::thread::sleep(Duration::from_millis(2));
    /// // The source stood still, and so does the clock.
    /// assert_eq!(clock.now().since_origin(), Duration::ZERO);
    /// ```
    pub fn with_source(source: fn() -> StdInstant) -> Self {
        Clock {
            origin: source(),
            origin_nanos: 0,
            source: Some(source),
        }
    }

    /// The current time for the core. On Linux the monotonic clock
    /// `std::time::Instant` reads (`CLOCK_MONOTONIC`), as nanoseconds,
    /// without `Instant::elapsed`'s checked `timespec` arithmetic (a
    /// blocking GET reads the time five times; this saves some 200
    /// instructions of its 17,000). Elsewhere `Instant::elapsed`: std may
    /// read another clock there (one that stops during sleep), and the
    /// conversions must agree with it.
    pub fn now(&self) -> Instant {
        if let Some(source) = self.source {
            return self.from_std(source());
        }
        #[cfg(target_os = "linux")]
        {
            let nanos = crate::sys::monotonic_nanos().saturating_sub(self.origin_nanos);
            Instant::from_origin(Duration::from_nanos(nanos))
        }
        #[cfg(not(target_os = "linux"))]
        Instant::from_origin(self.origin.elapsed())
    }

    /// The core's instant as a `std` instant; one too far for `std` to
    /// hold (a deadline of `Duration::MAX`) is a century from the origin,
    /// which no wait reaches.
    ///
    /// ```
    /// use std::time::Duration;
    /// use roundtrip_io::Clock;
    /// use roundtrip_io::proto::time::Instant;
    /// let clock = Clock::new();
    /// let never = clock.to_std(Instant::from_origin(Duration::MAX));
    /// assert!(never > std::time::Instant::now() + Duration::from_secs(365 * 86400));
    /// ```
    pub fn to_std(&self, at: Instant) -> StdInstant {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
        // A century past a monotonic origin fits any `Instant`.
        self.origin + at.since_origin().min(CENTURY)
    }

    /// A `std` instant as the core's instant (the origin if earlier).
    pub fn from_std(&self, at: StdInstant) -> Instant {
        Instant::from_origin(at.saturating_duration_since(self.origin))
    }
}

/// The earliest of some optional deadlines.
pub fn earliest(deadlines: impl IntoIterator<Item = Option<StdInstant>>) -> Option<StdInstant> {
    deadlines.into_iter().flatten().min()
}

/// Time left until `deadline` (zero once it passed), or `None` without one.
pub fn remaining(deadline: Option<StdInstant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(StdInstant::now()))
}
