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
        #[cfg(target_os = "linux")]
        {
            let nanos = crate::sys::monotonic_nanos().saturating_sub(self.origin_nanos);
            Instant::from_origin(Duration::from_nanos(nanos))
        }
        #[cfg(not(target_os = "linux"))]
        Instant::from_origin(self.origin.elapsed())
    }

    /// The core's instant as a `std` instant.
    pub fn to_std(&self, at: Instant) -> StdInstant {
        self.origin + at.since_origin()
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
