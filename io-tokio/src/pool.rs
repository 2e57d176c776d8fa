//! The shared pool ([`roundtrip_io::pool::SharedPool`]), with a oneshot
//! channel per waiter as the waiting primitive. Every decision is the core's;
//! this file only parks and wakes tasks.
//!
//! Cancellation: a waiter that gives up cancels its ticket; if a grant
//! already reached it, the grant is given back (a connection is checked in
//! again, a dial permit is returned), so nothing leaks.

use std::collections::HashMap;
use std::ops::Deref;

use roundtrip_io::pool::{self, Waiting};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_io::{Clock, Tracer};
use tokio::sync::oneshot;

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

/// A queued checkout: its ticket and where its grant will come.
#[derive(Debug)]
pub(crate) struct Waiter {
    ticket: Ticket,
    pub rx: oneshot::Receiver<Grant<Conn>>,
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

    /// An idle connection, or permission to dial; or, when the host is at
    /// `max_conns_per_host`, a place in the FIFO queue.
    pub fn checkout(&self, key: &Key) -> Result<Got, Waiter> {
        self.0.checkout(key, |parked: &mut HashMap<_, _>, ticket| {
            let (tx, rx) = oneshot::channel();
            parked.insert(ticket, tx);
            Waiter { ticket, rx }
        })
    }

    /// The waiter gives up: its ticket is cancelled, or the grant it was
    /// already sent goes to the next waiter (or back to the pool).
    pub fn give_up(&self, mut waiter: Waiter) {
        let mut st = self.lock();
        if st.pool.cancel_wait(waiter.ticket) {
            st.parked.remove(&waiter.ticket);
            return;
        }
        // Already granted: the grant was sent under this lock, so it is here.
        if let Ok(grant) = waiter.rx.try_recv() {
            self.redeliver(&mut st, grant);
        }
    }

    /// The connection left HTTP (a 101, or a 2xx to CONNECT): its slot is
    /// freed, and its socket belongs to the caller.
    pub fn detach(&self, conn: &Conn) {
        let mut st = self.lock();
        let grant = st
            .pool
            .discard(conn.link.id, &conn.link.key, CloseReason::Switched);
        self.deliver(&mut st, grant);
    }
}
