//! Every deadline of one exchange in one table. The core's connection keeps
//! three of them itself (100-continue, response head, drain: they change
//! what it does next); the exchange keeps the rest, and
//! [`Exchange::poll_timeout`](super::Exchange::poll_timeout) answers for
//! all of them.

use core::time::Duration;

use roundtrip_proto::time::Instant;

use crate::TimeoutKind;

/// The deadlines of an exchange. The first five are the exchange's own;
/// the last three live in the core's connection
/// ([`roundtrip_proto::conn::Timer`]) and are listed for
/// [`Exchange::deadline`](super::Exchange::deadline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The whole request, pool wait to the last body byte (`timeout`, or
    /// the request's [`RequestTimeout`](crate::RequestTimeout)).
    Total,
    /// Connecting (`connect_timeout`), per address tried.
    Connect,
    /// The TLS handshake (`tls.handshake_timeout`).
    Handshake,
    /// No progress writing the request (`write_timeout`).
    Write,
    /// No byte while a response is due (`read_timeout`).
    ReadIdle,
    /// The final response head after the request was sent
    /// (`response_head_timeout`; the core's).
    ResponseHead,
    /// `100 Continue` before the body goes anyway (the core's).
    Continue100,
    /// Draining an abandoned body (the core's).
    Drain,
}

impl Timer {
    /// The kind of timeout a request fails with when this timer fires;
    /// `None` for the timers whose firing is no failure of the request
    /// (the body goes out after the 100-continue wait; a drain that runs
    /// out only closes the connection).
    pub fn kind(self) -> Option<TimeoutKind> {
        match self {
            Timer::Total => Some(TimeoutKind::Total),
            Timer::Connect => Some(TimeoutKind::Connect),
            Timer::Handshake => Some(TimeoutKind::TlsHandshake),
            Timer::Write => Some(TimeoutKind::Write),
            Timer::ReadIdle => Some(TimeoutKind::ReadIdle),
            Timer::ResponseHead => Some(TimeoutKind::ResponseHead),
            Timer::Continue100 | Timer::Drain => None,
        }
    }
}

/// The exchange's own deadlines.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers([Option<Instant>; 5]);

impl Timers {
    const OWN: [Timer; 5] = [
        Timer::Total,
        Timer::Connect,
        Timer::Handshake,
        Timer::Write,
        Timer::ReadIdle,
    ];

    /// Where an exchange timer is kept (its place in [`OWN`](Self::OWN));
    /// `None` for the core's. A match, not a search: the timers are set
    /// and read a dozen times per request.
    #[inline]
    fn index(timer: Timer) -> Option<usize> {
        match timer {
            Timer::Total => Some(0),
            Timer::Connect => Some(1),
            Timer::Handshake => Some(2),
            Timer::Write => Some(3),
            Timer::ReadIdle => Some(4),
            Timer::ResponseHead | Timer::Continue100 | Timer::Drain => None,
        }
    }

    #[inline]
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        Self::index(timer).and_then(|i| self.0[i])
    }

    /// Arms `timer` at `now + after` (disarms it for `None`).
    #[inline]
    pub fn arm(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        if let Some(i) = Self::index(timer) {
            self.0[i] = after.and_then(|d| now.checked_add(d));
        }
    }

    /// Arms `timer` as [`arm`](Self::arm) does unless it is armed already.
    #[inline]
    pub fn arm_once(&mut self, timer: Timer, now: Instant, after: Option<Duration>) {
        if self.get(timer).is_none() {
            self.arm(timer, now, after);
        }
    }

    #[inline]
    pub fn disarm(&mut self, timer: Timer) {
        if let Some(i) = Self::index(timer) {
            self.0[i] = None;
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// The first of the exchange's timers that passed by `now`, the
    /// request's total deadline first.
    pub fn fired(&self, now: Instant) -> Option<Timer> {
        Self::OWN
            .into_iter()
            .find(|&t| self.get(t).is_some_and(|at| at <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The match in `index` agrees with `OWN`, and the core's timers have
    /// no place.
    #[test]
    fn each_own_timer_has_its_place() {
        for (i, t) in Timers::OWN.into_iter().enumerate() {
            assert_eq!(Timers::index(t), Some(i));
        }
        for t in [Timer::ResponseHead, Timer::Continue100, Timer::Drain] {
            assert_eq!(Timers::index(t), None);
        }
        let mut timers = Timers::default();
        let now = Instant::ZERO;
        timers.arm(Timer::ReadIdle, now, Some(Duration::from_secs(2)));
        timers.arm_once(Timer::ReadIdle, now, Some(Duration::from_secs(9)));
        timers.arm(Timer::Total, now, Some(Duration::from_secs(5)));
        assert_eq!(timers.next(), now.checked_add(Duration::from_secs(2)));
        timers.disarm(Timer::ReadIdle);
        assert_eq!(timers.get(Timer::ReadIdle), None);
        assert_eq!(
            timers.fired(now + Duration::from_secs(5)),
            Some(Timer::Total)
        );
    }
}
