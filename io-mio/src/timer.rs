//! The timer queue: one binary heap of `(instant, target)` entries for every
//! deadline the driver keeps, with lazy deletion.
//!
//! Each logical timer (the next deadline of the exchange in a slot, as its
//! machine's `poll_timeout` says, and the pool's next expiry) is a
//! [`Deadline`]: the instant it wants, and the one heap entry that is live
//! for it. Moving a deadline later costs nothing (the live
//! entry pops early and is pushed again at the new instant); moving it earlier
//! pushes one entry and leaves the old one to be skipped when it pops. A
//! read timeout that moves on every read therefore never touches the heap.
//! A popped entry is only a hint: the driver checks the clock against the
//! machine's deadline before acting on it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use roundtrip_io::proto::time::Instant;

/// Whose deadline a heap entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Target {
    /// The next deadline of the exchange in this slot (the machine's
    /// `poll_timeout`). Kept per slot, not per exchange: the next exchange
    /// in a freed slot reuses the live entry, so finished exchanges leave
    /// no entries behind in a busy heap.
    Exchange { slot: usize },
    /// The pool's next idle expiry.
    Pool,
}

/// One logical timer. See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadline {
    want: Option<Instant>,
    queued: Option<Instant>,
}

/// What to do with a popped entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// The deadline passed: act on it.
    Fire,
    /// The deadline moved later: push an entry at this instant.
    Requeue(Instant),
    /// A superseded entry, or the timer was disarmed: ignore it.
    Stale,
}

impl Deadline {
    /// Sets the wanted instant (`None` disarms). Returns the instant of an
    /// entry to push, when no live entry is early enough.
    #[must_use = "push the returned entry"]
    pub fn set(&mut self, want: Option<Instant>) -> Option<Instant> {
        self.want = want;
        let at = want?;
        match self.queued {
            Some(queued) if queued <= at => None,
            _ => {
                self.queued = Some(at);
                Some(at)
            }
        }
    }

    /// The entry for `at` popped at `now`.
    pub fn on_pop(&mut self, at: Instant, now: Instant) -> Popped {
        if self.queued != Some(at) {
            return Popped::Stale;
        }
        self.queued = None;
        match self.want {
            None => Popped::Stale,
            Some(want) if want <= now => {
                self.want = None;
                Popped::Fire
            }
            Some(want) => {
                self.queued = Some(want);
                Popped::Requeue(want)
            }
        }
    }
}

/// The heap of every live and superseded entry.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Target)>>,
}

impl Timers {
    pub fn push(&mut self, at: Instant, target: Target) {
        self.heap.push(Reverse((at, target)));
    }

    /// The earliest entry's instant (possibly a superseded one: waking early
    /// is harmless).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Target)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    #[test]
    fn later_deadlines_reuse_the_live_entry() {
        let mut d = Deadline::default();
        assert_eq!(d.set(Some(ms(10))), Some(ms(10)));
        assert_eq!(d.set(Some(ms(30))), None); // moved later: no push
        assert_eq!(d.on_pop(ms(10), ms(10)), Popped::Requeue(ms(30)));
        assert_eq!(d.on_pop(ms(30), ms(30)), Popped::Fire);
    }

    #[test]
    fn earlier_deadlines_supersede_and_disarm_skips() {
        let mut d = Deadline::default();
        assert_eq!(d.set(Some(ms(30))), Some(ms(30)));
        assert_eq!(d.set(Some(ms(10))), Some(ms(10)));
        assert_eq!(d.on_pop(ms(10), ms(10)), Popped::Fire);
        assert_eq!(d.on_pop(ms(30), ms(30)), Popped::Stale);
        assert_eq!(d.set(Some(ms(40))), Some(ms(40)));
        assert_eq!(d.set(None), None);
        assert_eq!(d.on_pop(ms(40), ms(40)), Popped::Stale);
    }

    #[test]
    fn heap_pops_in_order_and_only_when_due() {
        let mut t = Timers::default();
        t.push(ms(20), Target::Pool);
        t.push(ms(10), Target::Exchange { slot: 1 });
        assert_eq!(t.next(), Some(ms(10)));
        assert_eq!(t.pop_due(ms(5)), None);
        assert_eq!(t.pop_due(ms(25)).map(|e| e.0), Some(ms(10)));
        assert_eq!(t.pop_due(ms(25)).map(|e| e.0), Some(ms(20)));
        assert_eq!(t.pop_due(ms(25)), None);
    }
}
