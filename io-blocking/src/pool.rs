//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a condition
//! variable as the waiting primitive. Every decision is the core's; this file
//! only parks and wakes threads.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Condvar;
use std::time::Instant as StdInstant;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::{Clock, Error, Phase, TimeoutKind, Tracer};

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

    /// An idle connection, or permission to dial, waiting in FIFO order when
    /// the host is at `max_conns_per_host`, until `deadline`.
    pub fn checkout(&self, key: &Key, deadline: Option<StdInstant>) -> Result<Got, Error> {
        let ticket = match self.0.checkout(key, |_, ticket| ticket) {
            Ok(got) => return Ok(got),
            Err(ticket) => ticket,
        };
        let ready = &self.waiting().0;
        // No grant is lost while the lock was let go: it waits in `parked`.
        let mut st = self.lock();
        loop {
            if let Some(grant) = st.parked.remove(&ticket) {
                return Ok(grant.into());
            }
            let timed_out = match deadline {
                None => {
                    st = ready.wait(st).unwrap_or_else(|p| p.into_inner());
                    false
                }
                Some(at) => {
                    let left = at.saturating_duration_since(StdInstant::now());
                    let (guard, res) = ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    st = guard;
                    res.timed_out() && !st.parked.contains_key(&ticket)
                }
            };
            if timed_out && st.pool.cancel_wait(ticket) {
                return Err(Error::Timeout {
                    kind: TimeoutKind::Total,
                    phase: Phase::PoolWait,
                    reached_server: false,
                });
            }
        }
    }
}
