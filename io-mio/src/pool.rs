//! The driver's side of the pool: `proto::pool::Pool<usize>` over connection
//! slots decides; this file executes. Waiting is a map from ticket to the
//! parked exchange, and a grant is delivered by reporting it to that
//! exchange's machine.
//!
//! Idle connections stay registered for readability, so the server closing
//! one (or sending bytes nobody asked for, or the socket failing) is seen as
//! an event, and the connection is dropped from the pool right then
//! (`Pool::remove_idle` with `CloseReason::Stale`), whatever its age: no
//! request is handed a connection known dead. An event that said the server
//! shut its side during a response is told to the core (`handle_eof`) before
//! check-in, once the socket confirms it, so its verdict is `PeerClosed`.
//! What no event reported is left
//! to the machine's probe at checkout, as in the other backends.

use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::{Checkout, ConnId, Grant, Idle};
use roundtrip_io::proto::time::Instant;
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::RequestId;

use crate::conn::ConnState;
use crate::driver::Driver;

impl Driver {
    /// Asks the pool for a connection for the exchange in `ex` and reports
    /// what it gave: an idle connection, a permit to dial, or a place in
    /// the queue.
    pub(crate) fn checkout(&mut self, ex: usize, now: Instant) {
        let Some(entry) = self.exchanges.get_mut(ex) else {
            return;
        };
        let Some(key) = entry.ex.key() else {
            return; // unreachable: the machine asks only with a key
        };
        let checkout = self.pool.checkout(key, now);
        match checkout {
            Checkout::Idle(idle) => match self.conns.get_mut(idle.handle) {
                Some(conn) => {
                    conn.state = ConnState::Busy(ex);
                    entry.conn = Some(idle.handle);
                    entry.ex.handle_idle(&mut conn.link, idle.idle_for, now);
                }
                // Unreachable: the pool hands out only open connections.
                None => self.forget(idle.id, ex),
            },
            Checkout::Dial(permit) => {
                entry.permit = Some(permit);
                entry.ex.handle_dial(now);
            }
            Checkout::Wait(ticket) => {
                entry.ticket = Some(ticket);
                self.waiters.insert(ticket, ex);
                entry.ex.handle_wait(now);
            }
        }
        self.reap();
    }

    /// The pool gave a connection the driver no longer has: it leaves the
    /// pool, and the exchange asks again.
    fn forget(&mut self, id: ConnId, ex: usize) {
        let key = self.exchanges.get(ex).and_then(|e| e.ex.key().cloned());
        if let Some(key) = key {
            let grant = self.pool.discard(id, &key, CloseReason::Error);
            self.grants.extend(grant);
        }
    }

    /// Gives the connection in `slot` back after its exchange; the core's
    /// verdict decides whether it is kept, handed to a waiter, or closed.
    pub(crate) fn release_conn(&mut self, slot: usize, now: Instant) {
        self.release_conn_given(slot, None, now);
    }

    /// [`release_conn`](Self::release_conn), or with `given_back` the
    /// return of a grant no waiter took ([`Pool::give_back`]): it is idle
    /// since the check-in that made the grant, and not traced as a
    /// check-in again.
    fn release_conn_given(&mut self, slot: usize, given_back: Option<Idle<usize>>, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.state = ConnState::Idle;
        // An idle connection holds no read buffer: it goes back to the
        // driver for the next read of any connection.
        self.shared_read.take_back(&mut conn.link, &mut conn.lent);
        // An event said the server shut its side (its FIN came with or
        // after the response): a fact the core has not read yet. Confirmed
        // on the socket first: a slot (its token) goes to the next
        // connection at once, and a late event of the batch that closed
        // the slot's last connection reaches the new one.
        if conn.peer_closed {
            match roundtrip_io::sys::is_stale(&conn.socket) {
                true => conn.link.proto.handle_eof(),
                // Nothing there: the hint was another connection's. Once
                // disproved it goes (a real close leaves the socket saying
                // so, and raises an event of its own).
                false => conn.peer_closed = false,
            }
        }
        let link = &mut conn.link;
        let verdict = link.proto.checkin_verdict();
        if verdict.is_yes() {
            link.shrink_for_idle();
        }
        let keep_alive = link.proto.keep_alive_timeout();
        let id = link.id;
        let request = link.request.take();
        let traced = given_back.is_none();
        let grant = match given_back {
            Some(idle) => self
                .pool
                .give_back(idle, &link.key, verdict, keep_alive, now),
            None => self
                .pool
                .checkin(id, &link.key, slot, verdict, keep_alive, now),
        };
        self.grants.extend(grant);
        self.pool_dirty = true;
        self.reap_after_checkin(traced.then_some((slot, id, request)));
        self.settle_conn(slot);
    }

    /// An in-use connection will not come back: close it, free its slot.
    pub(crate) fn discard_conn(&mut self, slot: usize, reason: CloseReason) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let id = conn.link.id;
        let request = conn.link.request.take();
        let grant = self.pool.discard(id, &conn.link.key, reason);
        self.grants.extend(grant);
        // Closed before it is traced: a tracer that panics leaves no slot open.
        self.close_conn(slot);
        self.settings
            .config
            .tracing(request)
            .trace(|| TraceEvent::ConnClosed { id, reason });
    }

    /// An idle connection turned out dead: out of the pool and closed.
    /// False when the pool no longer counts it idle (granted, not yet
    /// delivered).
    fn drop_idle(&mut self, slot: usize, reason: CloseReason) -> bool {
        let Some(conn) = self.conns.get(slot) else {
            return true;
        };
        let id = conn.link.id;
        let Some(handle) = self.pool.remove_idle(id, &conn.link.key, reason) else {
            return false;
        };
        self.close_conn(handle);
        self.pool_dirty = true;
        self.settings
            .config
            .trace(|| TraceEvent::ConnClosed { id, reason });
        true
    }

    /// Deregisters and closes the connection in `slot`; returns its state
    /// (a dial in progress carries its permit).
    pub(crate) fn close_conn(&mut self, slot: usize) -> Option<ConnState> {
        crate::flow::close(&mut self.conns, &self.registry, slot)
    }

    /// Closes what the pool evicted, expired or refused at check-in.
    pub(crate) fn reap(&mut self) {
        self.reap_after_checkin(None);
    }

    /// [`reap`](Self::reap) right after the check-in of `checked_in` (its
    /// slot and id): its `PutIdleConn` is reported first, kept unless the
    /// pool closed it.
    fn reap_after_checkin(&mut self, checked_in: Option<(usize, ConnId, Option<RequestId>)>) {
        let Some((slot, id, request)) = checked_in else {
            // Bounded: each pass takes one handle off the pool's queue.
            while let Some((slot, reason)) = self.pool.take_closed() {
                self.close_reaped(slot, reason, None);
            }
            return;
        };
        // Bounded: each pass takes one handle off the pool's queue.
        let closed: Vec<_> = std::iter::from_fn(|| self.pool.take_closed()).collect();
        let own = closed.iter().find(|&&(s, _)| s == slot).map(|&(_, r)| r);
        // Every connection the pool let go is closed before anything is
        // traced: a tracer that panics leaves no slot open.
        let mut gone = Vec::with_capacity(closed.len());
        for (closed, reason) in closed {
            gone.push((closed, self.conns.get(closed).map(|c| c.link.id), reason));
            self.close_conn(closed);
        }
        let config = &self.settings.config;
        config
            .tracing(request)
            .trace(|| TraceEvent::put_idle(id, own));
        for (closed, conn_id, reason) in gone {
            // Its own close is the request's; evictions are no one's.
            let by = if closed == slot { request } else { None };
            if let Some(id) = conn_id {
                config
                    .tracing(by)
                    .trace(|| TraceEvent::ConnClosed { id, reason });
            }
        }
    }

    fn close_reaped(&mut self, slot: usize, reason: CloseReason, request: Option<RequestId>) {
        let id = self.conns.get(slot).map(|c| c.link.id);
        self.close_conn(slot);
        if let Some(id) = id {
            self.settings
                .config
                .tracing(request)
                .trace(|| TraceEvent::ConnClosed { id, reason });
        }
    }

    /// Hands each grant to its waiter's machine: a connection to use, or a
    /// permit to dial.
    pub(crate) fn deliver_grants(&mut self, now: Instant) {
        // Bounded: each grant serves a distinct queued waiter, who leaves the
        // queue; exchanges driven here queue further grants only by ending.
        while let Some(grant) = self.grants.pop_front() {
            let waiter = self.waiters.remove(&grant.ticket());
            let (Some(ex), Some(entry)) =
                (waiter, waiter.and_then(|ex| self.exchanges.get_mut(ex)))
            else {
                // Every waiter is registered before its ticket can be granted
                // and unregistered when it ends: give it back all the same.
                self.give_back(grant, now);
                continue;
            };
            entry.ticket = None;
            // What the grant gives is the exchange's before it is told (a
            // tracer that panics then: the exchange ends and gives it back).
            let told = match grant {
                Grant::Conn { idle, .. } => match self.conns.get_mut(idle.handle) {
                    Some(conn) => {
                        conn.state = ConnState::Busy(ex);
                        entry.conn = Some(idle.handle);
                        let waited = idle.idle_at(now);
                        self.guarded(ex, |driver| {
                            let entry = driver.exchanges.get_mut(ex)?;
                            let conn = driver.conns.get_mut(idle.handle)?;
                            entry.ex.handle_handover(&mut conn.link, waited, now);
                            Some(())
                        })
                        .map(drop)
                    }
                    None => {
                        // Unreachable: closed connections leave the pool.
                        self.forget(idle.id, ex);
                        self.guarded(ex, |driver| driver.checkout(ex, now))
                    }
                },
                Grant::Dial { permit, .. } => {
                    entry.permit = Some(permit);
                    self.guarded(ex, |driver| {
                        if let Some(entry) = driver.exchanges.get_mut(ex) {
                            entry.ex.handle_dial(now);
                        }
                    })
                }
            };
            if told.is_some() {
                self.drive(ex, now);
            }
        }
    }

    fn give_back(&mut self, grant: Grant<usize>, now: Instant) {
        let next = match grant {
            Grant::Conn { idle, .. } => {
                self.release_conn_given(idle.handle, Some(idle), now);
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
        if !roundtrip_io::sys::is_stale(&conn.socket) {
            conn.read_pending = false;
            return;
        }
        // Left for the next exchange's first read (or the probe) when the
        // pool no longer counts it idle.
        conn.read_pending = true;
        self.drop_idle(slot, CloseReason::Stale);
    }
}
