//! The shared pool: `proto::pool::Pool` behind a mutex, with a condition
//! variable as the waiting primitive. Every decision is the core's; this file
//! only parks and wakes threads and closes sockets.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use roundtrip_io::proto::pool::{
    Checkout, DialPermit, Grant, Key, Pool, PoolConfig, PoolStats, Ticket,
};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::proto::{CloseReason, Reuse};
use roundtrip_io::{Clock, Error, Phase, Tracer};

use crate::transport::Conn;

/// What a checkout gave.
// Short-lived (returned once per checkout, then unpacked): boxing the
// connection would cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Got {
    /// A pooled connection, to be checked for staleness by the caller, and
    /// how long it sat idle (`None`: handed over by a check-in).
    Idle(Conn, Option<Duration>),
    /// Permission to dial a new one.
    Dial(DialPermit),
}

struct State {
    pool: Pool<Conn>,
    /// Grants handed to waiters that have not picked them up yet.
    grants: HashMap<Ticket, Grant<Conn>>,
}

pub(crate) struct SharedPool {
    state: Mutex<State>,
    ready: Condvar,
    /// Reports connections kept and closed; called only outside the lock.
    trace: Option<Tracer>,
}

impl SharedPool {
    pub fn new(config: PoolConfig, trace: Option<Tracer>) -> Self {
        SharedPool {
            state: Mutex::new(State {
                pool: Pool::new(config),
                grants: HashMap::new(),
            }),
            ready: Condvar::new(),
            trace,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the pool's counters
        // half-updated in a way that matters more than losing the client.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection, or permission to dial, waiting in FIFO order when
    /// the host is at `max_conns_per_host`, until `deadline`.
    pub fn checkout(
        &self,
        key: &Key,
        clock: &Clock,
        deadline: Option<StdInstant>,
    ) -> Result<Got, Error> {
        let mut st = self.lock();
        let now = clock.now();
        st.pool.handle_timeout(now);
        let checkout = st.pool.checkout(key, now);
        let closed = take_closed(&mut st);
        drop(st);
        self.close(closed);
        let ticket = match checkout {
            Checkout::Idle(idle) => return Ok(Got::Idle(idle.handle, Some(idle.idle_for))),
            Checkout::Dial(permit) => return Ok(Got::Dial(permit)),
            Checkout::Wait(ticket) => ticket,
        };
        // No grant is lost while the lock was let go: it waits in `grants`.
        let mut st = self.lock();
        loop {
            if let Some(grant) = st.grants.remove(&ticket) {
                return Ok(match grant {
                    Grant::Conn { idle, .. } => Got::Idle(idle.handle, None),
                    Grant::Dial { permit, .. } => Got::Dial(permit),
                });
            }
            let timed_out = match deadline {
                None => {
                    st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                    false
                }
                Some(at) => {
                    let left = at.saturating_duration_since(StdInstant::now());
                    let (guard, res) = self
                        .ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner());
                    st = guard;
                    res.timed_out() && !st.grants.contains_key(&ticket)
                }
            };
            if timed_out && st.pool.cancel_wait(ticket) {
                return Err(Error::Timeout {
                    phase: Phase::PoolWait,
                    reached_server: false,
                });
            }
        }
    }

    /// A checkout's idle connection turned out stale: close it, free its slot.
    pub fn discard(&self, conn: Conn, reason: CloseReason) {
        let mut st = self.lock();
        let grant = st.pool.discard(conn.id, &conn.key, reason);
        self.deliver(&mut st, grant);
        drop(st);
        self.close(vec![(conn, reason)]);
    }

    /// Returns a connection after its exchange; the core's verdict decides
    /// whether it is kept, handed to a waiter, or closed.
    pub fn checkin(&self, mut conn: Conn, clock: &Clock) {
        let verdict = conn.proto.checkin_verdict();
        if verdict == Reuse::Yes {
            conn.shrink_for_idle();
        }
        let keep_alive = conn.proto.keep_alive_timeout();
        let (id, key) = (conn.id, conn.key.clone());
        let mut st = self.lock();
        let grant = st
            .pool
            .checkin(id, &key, conn, verdict, keep_alive, clock.now());
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

    pub fn stats(&self) -> PoolStats {
        self.lock().pool.stats()
    }

    fn deliver(&self, st: &mut State, grant: Option<Grant<Conn>>) {
        if let Some(grant) = grant {
            st.grants.insert(grant.ticket(), grant);
            self.ready.notify_all();
        }
    }
}

/// What the pool evicted, expired or refused at check-in, to close once the
/// lock is let go.
fn take_closed(st: &mut State) -> Vec<(Conn, CloseReason)> {
    // Bounded: each pass takes one handle off the pool's queue.
    std::iter::from_fn(|| st.pool.take_closed()).collect()
}
