//! Time as an input: a `no_std` instant measured from an origin the adapter picks.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, as the time elapsed since an origin chosen by the adapter.
///
/// `proto` never reads a clock. An adapter keeps one `std::time::Instant` as its
/// origin and passes `Instant::from_origin(origin.elapsed())` wherever the core
/// asks for `now`. Tests pass any value they like, so timeouts run on virtual
/// time.
///
/// ```
/// use core::time::Duration;
/// use roundtrip_proto::time::Instant;
///
/// let start = Instant::ZERO;
/// let later = start + Duration::from_millis(250);
/// assert!(later > start);
/// assert_eq!(later - start, Duration::from_millis(250));
/// assert_eq!(start - later, Duration::ZERO); // saturates, never panics
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The origin itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the adapter's origin.
    pub const fn from_origin(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    /// Time elapsed from the origin to this instant.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self + d`, or `None` if that does not fit a `Duration`.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at the largest representable instant instead of panicking.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturating difference: zero when `rhs` is later than `self`.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}
