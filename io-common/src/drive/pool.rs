//! The pool glue of the async driver: the shared pool ([`crate::pool`]) with
//! a parked slot per waiter as the waiting primitive. A grant is put in its
//! waiter's slot under the pool's lock and the waiter's task woken; the
//! waiter takes it under the same lock. Every decision is the core's.
//!
//! Cancellation: a waiter that gives up cancels its ticket; if a grant
//! already reached its slot, the grant is given back (a connection is
//! checked in again, a dial permit returned), so nothing leaks.

use std::collections::HashMap;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant as StdInstant;

use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{Grant, Key, PoolConfig, Ticket};
use roundtrip_proto::time::Instant;

use super::Runtime;
use crate::exchange::Link;
use crate::pool::{self, Got, PoolConn, Waiting};
use crate::shared_buf::Lent;
use crate::{Clock, Tracer};

/// A connection as the pool keeps it: the socket beside the machine's side
/// of it, and the runtime's timer its requests wait with.
pub(crate) struct Conn<R: Runtime> {
    pub socket: R::Socket,
    pub link: Link,
    /// Which of the thread's read buffers the link's read buffer is
    /// (between a read and the end of the poll that made it).
    pub lent: Lent,
    /// The timer the last request on it armed, and its runtime's
    /// [`Home`](Runtime::Home): kept with the connection so that a request
    /// on a pooled connection allocates none, if it runs on that runtime.
    pub timer: Option<(Timer<R>, R::Home)>,
    /// The runtime whose reactor the socket is registered with: a request
    /// of another runtime does not use it (tokio wakes a socket's reader
    /// only from the reactor of the runtime that made it, which may never
    /// run again: a current-thread runtime outside its `block_on`).
    pub home: R::Home,
}

/// A runtime's timer, pinned, and the instant it is armed for (`None`
/// once it fired: a fired async-io timer never fires again unless it is
/// reset, a fired tokio one at once).
pub(crate) type Timer<R> = (Pin<Box<<R as Runtime>::Timer>>, Option<StdInstant>);

impl<R: Runtime> PoolConn for Conn<R> {
    fn id(&self) -> roundtrip_proto::pool::ConnId {
        self.link.id
    }
    fn key(&self) -> &Key {
        &self.link.key
    }
    fn proto(&self) -> &roundtrip_proto::conn::Connection {
        &self.link.proto
    }
    fn shrink_for_idle(&mut self) {
        self.link.shrink_for_idle();
    }
    fn take_request(&mut self) -> Option<crate::trace::RequestId> {
        self.link.request.take()
    }
    fn goodbye(&mut self) {
        crate::sys::send_nowait(&self.socket, self.link.goodbye());
    }
}

/// A parked waiter: the grant once it came, and the task to wake for it.
pub(crate) struct Slot<R: Runtime> {
    grant: Option<Grant<Conn<R>>>,
    waker: Option<Waker>,
}

/// The waiting primitive: a slot per parked waiter.
pub(crate) struct Slots;

impl<R: Runtime> Waiting<Conn<R>> for Slots {
    type Parked = HashMap<Ticket, Slot<R>>;

    fn hand_over(
        &self,
        parked: &mut Self::Parked,
        grant: Grant<Conn<R>>,
    ) -> Result<(), Grant<Conn<R>>> {
        // No slot: the waiter gave up, and the grant goes back.
        let Some(slot) = parked.get_mut(&grant.ticket()) else {
            return Err(grant);
        };
        slot.grant = Some(grant);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
        Ok(())
    }
}

pub(crate) struct SharedPool<R: Runtime>(pool::SharedPool<Conn<R>, Slots>);

impl<R: Runtime> Deref for SharedPool<R> {
    type Target = pool::SharedPool<Conn<R>, Slots>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<R: Runtime> SharedPool<R> {
    pub fn new(config: PoolConfig, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool(pool::SharedPool::new(config, Slots, clock, trace))
    }

    /// An idle connection, or permission to dial; or, when the host is at
    /// `max_conns_per_host`, a ticket in the FIFO queue with a slot parked.
    pub fn checkout(&self, key: &Key, now: Instant) -> Result<Got<Conn<R>>, Ticket> {
        self.0
            .checkout(key, now, |parked: &mut HashMap<_, _>, ticket| {
                let slot = Slot {
                    grant: None,
                    waker: None,
                };
                parked.insert(ticket, slot);
                ticket
            })
    }

    /// The grant of `ticket` once it came; until then the task is woken
    /// when it comes.
    pub fn poll_grant(&self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Got<Conn<R>>> {
        let mut st = self.lock();
        let Some(slot) = st.parked.get_mut(&ticket) else {
            return Poll::Pending; // unreachable: removed only by its waiter
        };
        match slot.grant.take() {
            Some(grant) => {
                st.parked.remove(&ticket);
                Poll::Ready(self.take_grant(&mut st, grant))
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The waiter of `ticket` gives up: its ticket is cancelled, or the
    /// grant already in its slot goes to the next waiter (or back).
    pub fn give_up(&self, ticket: Ticket) {
        let mut st = self.lock();
        let slot = st.parked.remove(&ticket);
        if st.pool.cancel_wait(ticket) {
            return;
        }
        if let Some(grant) = slot.and_then(|s| s.grant) {
            self.redeliver(&mut st, grant);
        }
        self.settle(st);
    }

    /// The connection left HTTP (a 101, or a 2xx to CONNECT): its slot is
    /// freed, and its socket belongs to the caller.
    pub fn detach(&self, conn: &Conn<R>) {
        let mut st = self.lock();
        let grant = st
            .pool
            .discard(conn.link.id, &conn.link.key, CloseReason::Switched);
        self.deliver(&mut st, grant);
        self.settle(st);
    }
}
