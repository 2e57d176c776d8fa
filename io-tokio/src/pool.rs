//! The shared pool: `proto::pool::Pool` behind a mutex, with a oneshot
//! channel per waiter as the waiting primitive. Every decision is the core's;
//! this file only parks and wakes tasks and closes sockets.
//!
//! Cancellation: a waiter whose future is dropped cancels its ticket; if a
//! grant already reached it, the grant is given back (a connection is checked
//! in again, a dial permit is returned), so nothing leaks.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use roundtrip_io::proto::pool::{
    Checkout, DialPermit, Grant, Key, Pool, PoolConfig, PoolStats, Ticket,
};
use roundtrip_io::proto::{CloseReason, Reuse};
use roundtrip_io::{Clock, Error, Phase};
use tokio::sync::oneshot;
use tokio::time::timeout_at;

use crate::transport::Conn;

/// What a checkout gave.
#[allow(clippy::large_enum_variant)] // boxing would cost an allocation per request
pub(crate) enum Got {
    /// A pooled connection, to be checked for staleness by the caller.
    Idle(Conn),
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
}

impl SharedPool {
    pub fn new(config: PoolConfig, clock: Clock) -> Self {
        SharedPool {
            state: Mutex::new(State {
                pool: Pool::new(config),
                waiters: HashMap::new(),
            }),
            clock,
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
        let (ticket, rx) = {
            let mut st = self.lock();
            let now = self.clock.now();
            st.pool.handle_timeout(now);
            drain_closed(&mut st);
            match st.pool.checkout(key, now) {
                Checkout::Idle(idle) => return Ok(Got::Idle(idle.handle)),
                Checkout::Dial(permit) => return Ok(Got::Dial(permit)),
                Checkout::Wait(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(ticket, tx);
                    (ticket, rx)
                }
            }
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
            Ok(Grant::Conn { idle, .. }) => Ok(Got::Idle(idle.handle)),
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
        drop(conn);
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
        drain_closed(&mut st);
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

/// Closes what the pool evicted or expired (dropping a `Conn` closes its socket).
fn drain_closed(st: &mut State) {
    while st.pool.take_closed().is_some() {}
}
