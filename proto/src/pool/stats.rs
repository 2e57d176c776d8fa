//! What a pool counts: closed connections by reason, pool and per-host stats.

use super::*;

/// How many connections were closed, per [`CloseReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedCounts {
    // Indexed by `reason as usize`: `CloseReason::ALL` is in declaration order
    // (checked by the test `close_reason_all_is_in_declaration_order`).
    counts: [u64; CloseReason::ALL.len()],
}

impl ClosedCounts {
    /// Connections closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.counts[reason as usize]
    }
    /// Connections closed for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|&r| (r, self.get(r)))
    }
    pub(super) fn add(&mut self, reason: CloseReason) {
        self.counts[reason as usize] += 1;
    }
}

impl fmt::Debug for ClosedCounts {
    /// Only the reasons that occurred, by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().filter(|&(_, n)| n > 0))
            .finish()
    }
}

/// Pool-wide counters, from [`Pool::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections dialed successfully.
    pub dials: u64,
    /// Connections reused: idle ones checked out plus check-in handovers.
    pub reuses: u64,
    /// Idle connections now.
    pub idle: usize,
    /// Connections in use now.
    pub in_use: usize,
    /// Dials in progress now.
    pub dialing: usize,
    /// Requests queued now.
    pub waiters: usize,
    /// Connections closed so far, per reason.
    pub closed: ClosedCounts,
}

/// One key's gauges, from [`Pool::stats_for`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostStats {
    /// Idle connections.
    pub idle: usize,
    /// Connections in use.
    pub in_use: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Requests queued.
    pub waiters: usize,
}
