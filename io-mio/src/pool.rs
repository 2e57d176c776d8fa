//! The driver's side of the pool: `proto::pool::Pool<usize>` over connection
//! slots decides; this file executes. Waiting is a map from ticket to the
//! parked exchange, and a grant is delivered by starting that exchange.
//!
//! Idle connections stay registered for readability, so the server closing
//! one (or sending bytes nobody asked for, or the socket failing) is seen as
//! an event, and the connection is dropped from the pool right then
//! (`Pool::remove_idle` with `CloseReason::Stale`), whatever its age: no
//! request is handed a connection known dead. A connection whose response
//! came with the server's FIN is not pooled at all (`PeerClosed`). What no
//! event reported is left to the probe at checkout, after
//! `Config::stale_check_after`, as in the other backends.

use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::Reuse;
use roundtrip_io::proto::pool::{ConnId, Grant};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::proto::trace::TraceEvent;

use crate::conn::ConnState;
use crate::driver::Driver;

impl Driver {
    /// Gives the connection in `slot` back after its exchange; the core's
    /// verdict decides whether it is kept, handed to a waiter, or closed.
    pub(crate) fn release_conn(&mut self, slot: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.state = ConnState::Idle;
        if conn.peer_closed {
            // An event already said the server shut its side (its FIN came
            // with or after the response): tell the core, which then closes
            // the connection as `PeerClosed` instead of offering it again.
            conn.proto.handle_eof();
        }
        let verdict = if !conn.out.is_empty() {
            // The server answered before the request was written in full.
            Reuse::No(CloseReason::BodyNotSent)
        } else {
            conn.proto.checkin_verdict()
        };
        if verdict.is_yes() {
            conn.shrink_for_idle(now);
        }
        let keep_alive = conn.proto.keep_alive_timeout();
        let id = conn.id;
        let grant = self
            .pool
            .checkin(conn.id, &conn.key, slot, verdict, keep_alive, now);
        self.grants.extend(grant);
        self.pool_dirty = true;
        self.reap_after_checkin(Some((slot, id)));
        self.settle_conn(slot);
    }

    /// An in-use connection will not come back: close it, free its slot.
    pub(crate) fn discard_conn(&mut self, slot: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let id = conn.id;
        let grant = self.pool.discard(id, &conn.key, reason);
        self.grants.extend(grant);
        self.config.trace(|| TraceEvent::ConnClosed { id, reason });
        self.close_conn(slot);
    }

    /// An idle connection turned out dead: out of the pool and closed.
    pub(crate) fn drop_idle(&mut self, slot: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let id = conn.id;
        if let Some(handle) = self.pool.remove_idle(id, &conn.key, reason) {
            self.config.trace(|| TraceEvent::ConnClosed { id, reason });
            self.close_conn(handle);
            self.pool_dirty = true;
        }
    }

    /// Deregisters and closes the connection in `slot`; returns its state
    /// (a dial in progress carries its permit).
    pub(crate) fn close_conn(&mut self, slot: usize) -> Option<ConnState> {
        let mut conn = self.conns.remove(slot)?;
        // Closing the socket would remove it from the poll as well; say so
        // explicitly, as mio asks.
        let _ = self.registry.deregister(&mut conn.stream);
        Some(conn.state)
    }

    /// Closes what the pool evicted, expired or refused at check-in.
    pub(crate) fn reap(&mut self) {
        self.reap_after_checkin(None);
    }

    /// [`reap`](Self::reap) right after the check-in of `checked_in` (its
    /// slot and id): its `PutIdleConn` is reported first, kept unless the
    /// pool closed it.
    fn reap_after_checkin(&mut self, checked_in: Option<(usize, ConnId)>) {
        // Bounded: each pass takes one handle off the pool's queue.
        let closed: Vec<_> = std::iter::from_fn(|| self.pool.take_closed()).collect();
        if let Some((slot, id)) = checked_in {
            let own = closed.iter().find(|&&(s, _)| s == slot).map(|&(_, r)| r);
            self.config.trace(|| TraceEvent::put_idle(id, own));
        }
        for (slot, reason) in closed {
            if let Some(conn) = self.conns.get(slot) {
                let id = conn.id;
                self.config.trace(|| TraceEvent::ConnClosed { id, reason });
            }
            self.close_conn(slot);
        }
    }

    /// Hands each grant to its waiter: a connection to use, or a permit to dial.
    pub(crate) fn deliver_grants(&mut self, now: Instant) {
        // Bounded: each grant serves a distinct queued waiter, who leaves the
        // queue; exchanges started here queue further grants only by ending.
        while let Some(grant) = self.grants.pop_front() {
            let Some(ex) = self.waiters.remove(&grant.ticket()) else {
                // Every waiter is registered before its ticket can be granted
                // and unregistered when cancelled: give it back all the same.
                self.give_back(grant, now);
                continue;
            };
            match grant {
                // Closed by the server after the pool granted it but before
                // this delivery (a close event handled in the same turn):
                // closed, and the waiter asks the pool again.
                Grant::Conn { idle, .. }
                    if self.conns.get(idle.handle).is_none_or(|c| c.stale_seen) =>
                {
                    self.discard_conn(idle.handle, CloseReason::Stale);
                    self.begin(ex, now);
                }
                Grant::Conn { idle, .. } => {
                    if let Some(conn) = self.conns.get_mut(idle.handle) {
                        conn.reused = true;
                    }
                    self.config.trace(|| TraceEvent::got_pooled(idle.id, None));
                    self.attach(ex, idle.handle, now);
                }
                Grant::Dial { permit, .. } => self.dial(ex, permit, now),
            }
        }
    }

    fn give_back(&mut self, grant: Grant<usize>, now: Instant) {
        let next = match grant {
            Grant::Conn { idle, .. } => {
                self.release_conn(idle.handle, now);
                None
            }
            Grant::Dial { permit, .. } => self.pool.dial_failed(permit),
        };
        self.grants.extend(next);
    }

    /// An idle connection became readable: the server closed it, sent bytes
    /// nobody asked for (looked at without consuming), the socket failed, or
    /// nothing. A dead one leaves the pool at once, whatever its age.
    pub(crate) fn on_idle_readable(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if !roundtrip_io::sys::is_stale(&conn.stream) {
            conn.read_pending = false;
            return;
        }
        // Kept in case the pool no longer counts it as idle (granted to a
        // waiter and not yet delivered: then it is not dropped here), so
        // that the delivery refuses it.
        conn.stale_seen = true;
        conn.read_pending = true;
        self.drop_idle(slot, CloseReason::Stale);
    }

    /// Is the idle connection just checked out dead? Yes when an event
    /// already told; otherwise a connection idle at least `stale_check_after`
    /// is probed when readiness may have gone unreported.
    pub(crate) fn is_stale_at_checkout(&mut self, slot: usize, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(slot) else {
            return true;
        };
        if conn.stale_seen {
            return true;
        }
        if now.saturating_since(conn.idle_since) < self.config.stale_check_after {
            return false;
        }
        if conn.read_pending {
            if roundtrip_io::sys::is_stale(&conn.stream) {
                return true;
            }
            conn.read_pending = false;
        }
        false
    }
}
