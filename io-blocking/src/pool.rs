//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a condition
//! variable as the waiting primitive. Every decision is the core's; this file
//! only parks and wakes threads.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Condvar;
use std::time::Instant as StdInstant;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::{Clock, Tracer};

use crate::transport::Conn;

/// How often a waiter for a connection looks whether its request was
/// cancelled from another thread.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// What a checkout gave.
pub(crate) type Got = pool::Got<Box<Conn>>;

/// Wakes the threads waiting for a grant; grants wait in a map until their
/// waiter looks.
pub(crate) struct Ready(Condvar);

impl Waiting<Box<Conn>> for Ready {
    type Parked = HashMap<Ticket, Grant<Box<Conn>>>;

    fn hand_over(
        &self,
        parked: &mut Self::Parked,
        grant: Grant<Box<Conn>>,
    ) -> Result<(), Grant<Box<Conn>>> {
        parked.insert(grant.ticket(), grant);
        self.0.notify_all();
        Ok(())
    }
}

pub(crate) struct SharedPool(pool::SharedPool<Box<Conn>, Ready>);

impl Deref for SharedPool {
    type Target = pool::SharedPool<Box<Conn>, Ready>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SharedPool {
    pub fn new(config: PoolConfig, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool(pool::SharedPool::new(
            config,
            Ready(Condvar::new()),
            clock,
            trace,
        ))
    }

    /// An idle connection or permission to dial, or, when the host is at
    /// `max_conns_per_host`, a place in the FIFO queue to [`wait`](Self::wait) with.
    pub fn try_checkout(&self, key: &Key, now: Instant) -> Result<Got, Ticket> {
        self.0.checkout(key, now, |_, ticket| ticket)
    }

    /// Waits for the grant of `ticket` until `until`, looking at
    /// `cancelled` every [`CANCEL_CHECK`]; `None` when the wait ended
    /// without one (the ticket is then given up).
    pub fn wait(
        &self,
        ticket: Ticket,
        until: Option<StdInstant>,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Option<Got> {
        let ready = &self.waiting().0;
        // No grant is lost while the lock was let go: it waits in `parked`.
        let mut st = self.lock();
        // Bounded: each pass waits at most CANCEL_CHECK, and the loop ends
        // at `until` or a cancel.
        loop {
            if let Some(grant) = st.parked.remove(&ticket) {
                return Some(grant.into());
            }
            let now = StdInstant::now();
            if cancelled.is_some_and(|c| c()) || until.is_some_and(|at| at <= now) {
                st.pool.cancel_wait(ticket);
                return None;
            }
            // Without a cancel to look at, the wait ends at `until` alone.
            let check = cancelled.map(|_| CANCEL_CHECK);
            let left = match (until.map(|at| at - now), check) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            st = match left {
                Some(left) => {
                    ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => ready.wait(st).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// The waiter of `ticket` left: its place in the queue is given up, and
    /// a grant already parked for it goes to the next waiter (or back to
    /// the pool).
    pub fn give_up(&self, ticket: Ticket) {
        let mut st = self.lock();
        match st.parked.remove(&ticket) {
            Some(grant) => self.redeliver(&mut st, grant),
            None => {
                st.pool.cancel_wait(ticket);
            }
        }
    }
}
