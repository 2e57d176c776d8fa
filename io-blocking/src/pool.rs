//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a condition
//! variable as the waiting primitive. Every decision is the core's; this file
//! only parks and wakes threads.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Condvar;
use std::time::Instant as StdInstant;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::{Clock, Tracer};

use crate::transport::Conn;

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
    pub fn try_checkout(&self, key: &Key) -> Result<Got, Ticket> {
        self.0.checkout(key, |_, ticket| ticket)
    }

    /// Waits for the grant of `ticket` until `until`; `None` when the wait
    /// ended without one (the ticket is then given up).
    pub fn wait(&self, ticket: Ticket, until: Option<StdInstant>) -> Option<Got> {
        let ready = &self.waiting().0;
        // No grant is lost while the lock was let go: it waits in `parked`.
        let mut st = self.lock();
        // Bounded: each pass waits until `until`, which ends the loop.
        loop {
            if let Some(grant) = st.parked.remove(&ticket) {
                return Some(grant.into());
            }
            match until {
                None => st = ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(at) => {
                    let left = at.saturating_duration_since(StdInstant::now());
                    let (guard, res) = ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    st = guard;
                    if res.timed_out() && !st.parked.contains_key(&ticket) {
                        st.pool.cancel_wait(ticket);
                        return None;
                    }
                }
            }
        }
    }
}
