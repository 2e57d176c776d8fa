//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a oneshot
//! channel per waiter as the waiting primitive. Every decision is the core's;
//! this file only parks and wakes tasks.
//!
//! Cancellation: a waiter whose future is dropped cancels its ticket; if a
//! grant already reached it, the grant is given back (a connection is checked
//! in again, a dial permit is returned), so nothing leaks.

use std::collections::HashMap;
use std::ops::Deref;
use std::time::Instant as StdInstant;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::{Clock, Error, Phase, TimeoutKind, Tracer};
use tokio::sync::oneshot;
use tokio::time::timeout_at;

use crate::transport::Conn;

/// What a checkout gave.
pub(crate) type Got = pool::Got<Conn>;

/// Sends each grant down its waiter's channel.
pub(crate) struct Oneshots;

impl Waiting<Conn> for Oneshots {
    type Parked = HashMap<Ticket, oneshot::Sender<Grant<Conn>>>;

    fn hand_over(&self, parked: &mut Self::Parked, grant: Grant<Conn>) -> Result<(), Grant<Conn>> {
        // A waiter missing cannot happen (every waiter is registered before
        // its ticket can be granted); one gone gave up: either way the
        // grant goes back.
        match parked.remove(&grant.ticket()) {
            Some(tx) => tx.send(grant),
            None => Err(grant),
        }
    }
}

pub(crate) struct SharedPool(pool::SharedPool<Conn, Oneshots>);

impl Deref for SharedPool {
    type Target = pool::SharedPool<Conn, Oneshots>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SharedPool {
    pub fn new(config: PoolConfig, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool(pool::SharedPool::new(config, Oneshots, clock, trace))
    }

    /// An idle connection, or permission to dial, waiting in FIFO order when
    /// the host is at `max_conns_per_host`, until `deadline`.
    pub async fn checkout(&self, key: &Key, deadline: Option<StdInstant>) -> Result<Got, Error> {
        let park = |waiters: &mut HashMap<_, _>, ticket| {
            let (tx, rx) = oneshot::channel();
            waiters.insert(ticket, tx);
            (ticket, rx)
        };
        let (ticket, rx) = match self.0.checkout(key, park) {
            Ok(got) => return Ok(got),
            Err(wait) => wait,
        };
        let mut wait = Wait {
            pool: self,
            ticket,
            rx: Some(rx),
        };
        let rx = wait.rx.as_mut().expect("set just above");
        let received = match deadline {
            Some(at) => match timeout_at(at.into(), rx).await {
                Ok(received) => received,
                Err(_) => {
                    return Err(Error::Timeout {
                        kind: TimeoutKind::Total,
                        phase: Phase::PoolWait,
                        reached_server: false,
                    });
                }
            },
            None => rx.await,
        };
        wait.rx = None; // received (or the pool was dropped): nothing to give back
        match received {
            Ok(grant) => Ok(grant.into()),
            Err(_) => Err(Error::Timeout {
                kind: TimeoutKind::Total,
                phase: Phase::PoolWait,
                reached_server: false,
            }),
        }
    }
}

/// A queued waiter; dropped before it received its grant, it cancels.
struct Wait<'a> {
    pool: &'a SharedPool,
    ticket: Ticket,
    rx: Option<oneshot::Receiver<Grant<Conn>>>,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let mut st = self.pool.lock();
        if st.pool.cancel_wait(self.ticket) {
            st.parked.remove(&self.ticket);
            return;
        }
        // Already granted: the grant was sent under this lock, so it is here.
        if let Ok(grant) = rx.try_recv() {
            self.pool.redeliver(&mut st, grant);
        }
    }
}
