//! The shared pool: `proto::pool::Pool` behind a mutex, with a oneshot
//! channel per waiter as the waiting primitive. Every decision is the core's;
//! this file only parks and wakes tasks and closes sockets.
//!
//! Cancellation: a waiter whose future is dropped cancels its ticket; if a
//! grant already reached it, the grant is given back (a connection is checked
//! in again, a dial permit is returned), so nothing leaks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use roundtrip_io::proto::pool::{
    Checkout, DialPermit, Grant, Key, Pool, PoolConfig, PoolStats, Ticket,
};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::proto::{CloseReason, Reuse};
use roundtrip_io::{Clock, Error, Phase, Tracer};
use tokio::sync::oneshot;
use tokio::time::timeout_at;

use crate::transport::Conn;

/// What a checkout gave.
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per request
pub(crate) enum Got {
    /// A pooled connection, to be checked for staleness by the caller, and
    /// how long it sat idle (`None`: handed over by a check-in).
    Idle(Conn, Option<Duration>),
    /// Permission to dial a new one.
    Dial(DialPermit),
}

struct State {
    pool: Pool<Conn>,
    waiters: HashMap<Ticket, oneshot::Sender<Grant<Conn>>>,
}

pub(crate) struct SharedPool {
    state: Mutex<State>,
    clock: Clock,
    /// Reports connections kept and closed; called only outside the lock.
    trace: Option<Tracer>,
}

impl SharedPool {
    pub fn new(config: PoolConfig, clock: Clock, trace: Option<Tracer>) -> Self {
        SharedPool {
            state: Mutex::new(State {
                pool: Pool::new(config),
                waiters: HashMap::new(),
            }),
            clock,
            trace,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection, or permission to dial, waiting in FIFO order when
    /// the host is at `max_conns_per_host`, until `deadline`.
    pub async fn checkout(&self, key: &Key, deadline: Option<StdInstant>) -> Result<Got, Error> {
        let (got, closed) = {
            let mut st = self.lock();
            let now = self.clock.now();
            st.pool.handle_timeout(now);
            let got = match st.pool.checkout(key, now) {
                Checkout::Idle(idle) => Ok(Got::Idle(idle.handle, Some(idle.idle_for))),
                Checkout::Dial(permit) => Ok(Got::Dial(permit)),
                Checkout::Wait(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(ticket, tx);
                    Err((ticket, rx))
                }
            };
            (got, take_closed(&mut st))
        };
        self.close(closed);
        let (ticket, rx) = match got {
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
                        phase: Phase::PoolWait,
                        reached_server: false,
                    });
                }
            },
            None => rx.await,
        };
        wait.rx = None; // received (or the pool was dropped): nothing to give back
        match received {
            Ok(Grant::Conn { idle, .. }) => Ok(Got::Idle(idle.handle, None)),
            Ok(Grant::Dial { permit, .. }) => Ok(Got::Dial(permit)),
            Err(_) => Err(Error::Timeout {
                phase: Phase::PoolWait,
                reached_server: false,
            }),
        }
    }

    /// An in-use connection will not come back: close it, free its slot.
    pub fn discard(&self, conn: Conn, reason: CloseReason) {
        let mut st = self.lock();
        let grant = st.pool.discard(conn.id, &conn.key, reason);
        self.deliver(&mut st, grant);
        drop(st);
        self.close(vec![(conn, reason)]);
    }

    /// Returns a connection after its exchange; the core's verdict decides
    /// whether it is kept, handed to a waiter, or closed.
    pub fn checkin(&self, mut conn: Conn) {
        let verdict = conn.proto.checkin_verdict();
        if verdict == Reuse::Yes {
            conn.shrink_for_idle();
        }
        let keep_alive = conn.proto.keep_alive_timeout();
        let (id, key) = (conn.id, conn.key.clone());
        let mut st = self.lock();
        let grant = st
            .pool
            .checkin(id, &key, conn, verdict, keep_alive, self.clock.now());
        self.deliver(&mut st, grant);
        let closed = take_closed(&mut st);
        drop(st);
        if let Some(trace) = &self.trace {
            let own = closed.iter().find(|(c, _)| c.id == id).map(|&(_, r)| r);
            trace.emit(&TraceEvent::put_idle(id, own));
        }
        self.close(closed);
    }

    pub fn dial_succeeded(&self, permit: DialPermit) {
        self.lock().pool.dial_succeeded(permit);
    }

    pub fn dial_failed(&self, permit: DialPermit) {
        let mut st = self.lock();
        let grant = st.pool.dial_failed(permit);
        self.deliver(&mut st, grant);
    }

    pub fn stats(&self) -> PoolStats {
        self.lock().pool.stats()
    }

    /// Closes connections the pool gave up (dropping a `Conn` closes its
    /// socket), reporting each; called outside the lock.
    fn close(&self, closed: Vec<(Conn, CloseReason)>) {
        for (conn, reason) in closed {
            if let Some(trace) = &self.trace {
                trace.emit(&TraceEvent::ConnClosed {
                    id: conn.id,
                    reason,
                });
            }
            drop(conn);
        }
    }

    /// Hands a grant to its waiter; a waiter that is gone gives it back.
    fn deliver(&self, st: &mut State, mut grant: Option<Grant<Conn>>) {
        // Bounded: each pass hands a grant to a different queued waiter.
        while let Some(g) = grant.take() {
            let Some(tx) = st.waiters.remove(&g.ticket()) else {
                // Not ours to hand out (cannot happen: every waiter is
                // registered before its ticket can be granted); give it back.
                grant = self.give_back(st, g);
                continue;
            };
            if let Err(g) = tx.send(g) {
                grant = self.give_back(st, g);
            }
        }
    }

    fn give_back(&self, st: &mut State, grant: Grant<Conn>) -> Option<Grant<Conn>> {
        match grant {
            Grant::Conn { idle, .. } => {
                let conn = idle.handle;
                let (id, key) = (conn.id, conn.key.clone());
                st.pool
                    .checkin(id, &key, conn, Reuse::Yes, None, self.clock.now())
            }
            Grant::Dial { permit, .. } => st.pool.dial_failed(permit),
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
            st.waiters.remove(&self.ticket);
            return;
        }
        // Already granted: the grant was sent under this lock, so it is here.
        if let Ok(grant) = rx.try_recv() {
            let next = self.pool.give_back(&mut st, grant);
            self.pool.deliver(&mut st, next);
        }
    }
}

/// What the pool evicted, expired or refused at check-in, to close once the
/// lock is let go.
fn take_closed(st: &mut State) -> Vec<(Conn, CloseReason)> {
    // Bounded: each pass takes one handle off the pool's queue.
    std::iter::from_fn(|| st.pool.take_closed()).collect()
}
