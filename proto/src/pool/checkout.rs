//! What a pool hands out: connection ids, tickets, idle connections, dial permits, checkout and grant decisions.

use super::*;

/// A connection's identity, assigned when the pool permits its dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub(super) u64);

impl ConnId {
    /// The number, for traces.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A place in the queue of requests waiting for a key; unique per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub(super) u64);

impl Ticket {
    /// The number, for traces.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

/// An established connection handed out by the pool.
#[derive(Debug)]
#[non_exhaustive]
pub struct Idle<H> {
    /// The adapter's handle.
    pub handle: H,
    /// Its identity, to pass back to [`Pool::checkin`] or [`Pool::discard`].
    pub id: ConnId,
    /// How long it sat idle when handed out: zero when a check-in handed it
    /// straight to a waiter ([`Pool::checkin`]), the time since the first
    /// check-in when it was given back and granted again
    /// ([`Pool::checkin_since`]).
    pub idle_for: Duration,
    /// When it went idle: its check-in (for one handed over directly, the
    /// check-in that granted it: a waiter that takes the grant later has
    /// had it idle since then).
    pub since: Instant,
}

impl<H> Idle<H> {
    /// How long it has been idle at `now`: [`idle_for`](Self::idle_for)
    /// when taken at once, more when the grant waited for its taker.
    pub fn idle_at(&self, now: Instant) -> Duration {
        now.saturating_since(self.since)
    }
}

/// Permission to open one connection; its slot is reserved until the permit is
/// spent with [`Pool::dial_succeeded`] or returned with [`Pool::dial_failed`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "spend the permit with dial_succeeded or return it with dial_failed"]
pub struct DialPermit {
    pub(super) id: ConnId,
    pub(super) key: Key,
}

impl DialPermit {
    /// The id the new connection will have.
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// Where to dial.
    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// The answer to [`Pool::checkout`].
#[derive(Debug)]
#[must_use]
pub enum Checkout<H> {
    /// Use this idle connection (the most recently used one).
    Idle(Idle<H>),
    /// Open a new connection.
    Dial(DialPermit),
    /// Wait: a later call will return a [`Grant`] for this ticket.
    Wait(Ticket),
}

/// What a queued waiter receives; the adapter delivers it to the ticket holder.
#[derive(Debug)]
#[must_use = "deliver the grant to its waiter, or give it back to the pool"]
pub enum Grant<H> {
    /// A connection checked in by another request (late binding).
    Conn {
        /// The waiter served.
        ticket: Ticket,
        /// The connection, now in use by that waiter.
        idle: Idle<H>,
    },
    /// A slot freed up: the waiter may dial.
    Dial {
        /// The waiter served.
        ticket: Ticket,
        /// Its permit.
        permit: DialPermit,
    },
}

impl<H> Grant<H> {
    /// The waiter this grant is for.
    pub fn ticket(&self) -> Ticket {
        match self {
            Grant::Conn { ticket, .. } | Grant::Dial { ticket, .. } => *ticket,
        }
    }
}
