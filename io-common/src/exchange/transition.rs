//! The transitions of an [`Exchange`] that every path shares: start a
//! checkout, start the request on a connection, fail (with the safe-retry
//! rule), leave a response unread (drain or close), and go on once the
//! connection was settled.

use roundtrip_proto::CloseReason;
use roundtrip_proto::conn::{Abandon, RetryFacts};
use roundtrip_proto::time::Instant;
use roundtrip_proto::trace::TraceEvent;

use super::{After, Exchange, Link, Sending, State, Timer, Wrote};
use crate::{Error, HeadBuilder, Phase, prepare};

impl<R> Exchange<R> {
    // ---- transitions ----

    /// Starts the checkout of the current hop (traced with its action).
    pub(super) fn begin(&mut self) {
        self.state = State::Checkout;
        self.announced = false;
    }

    /// Starts the request on `link`.
    pub(super) fn attach(&mut self, link: &mut Link, reused: bool, now: Instant) {
        let Some(prepared) = &self.prepared else {
            return; // unreachable: a checkout needs a prepared request
        };
        self.conn = Some(link.id);
        self.reused = reused;
        self.begun = false;
        self.eof = false;
        self.unclean_eof = false;
        self.received_whole = false;
        link.request = Some(self.id);
        let tracing = self.tracing();
        match (reused, self.idle_for) {
            (true, idle_for) => tracing.trace(|| TraceEvent::got_pooled(link.id, idle_for)),
            (false, _) => tracing.trace(|| TraceEvent::got_dialed(link.id)),
        }
        let config = &self.settings.config;
        link.out.clear();
        let started = prepared.start(
            &self.parts,
            config,
            &self.settings.defaults,
            &mut link.proto,
            now,
            &mut link.out.head,
        );
        if let Err(e) = started {
            // Refused before a byte was written: the connection is intact.
            self.state = State::Settle {
                close: None,
                then: After::Fail(e),
            };
            return;
        }
        self.begun = true;
        self.state = State::Send;
        self.sending = Sending::Unsent;
        self.wrote = Wrote::Nothing;
        if let Some(bytes) = self.body.as_bytes().cloned()
            && link.proto.may_send_body()
        {
            // Head and body go out in one vectored write.
            if let Err(e) = self.queue_body(link, bytes, true, now) {
                self.fail(link, e);
            }
        }
    }

    /// The request failed on `link`: retried on another connection when
    /// the core says that is safe and no retry was spent, else reported.
    pub(super) fn fail(&mut self, link: &mut Link, err: Error) {
        let reason = err.close_reason();
        if let State::Drain(_) = self.state {
            // The caller already has what it wanted; the drain failed.
            let State::Drain(then) = std::mem::replace(&mut self.state, State::End) else {
                return; // unreachable: matched just above
            };
            self.state = State::Settle {
                close: Some(reason),
                then,
            };
            return;
        }
        let before_head = matches!(self.state, State::Send | State::Head);
        let then = if before_head && self.may_resend_again() && self.may_resend(link, &err) {
            After::Retry
        } else {
            After::Fail(err)
        };
        self.state = State::Settle {
            close: Some(reason),
            then,
        };
    }

    /// Go's loop: a request that failed on a pooled connection is sent
    /// again, on another pooled one or a new one, for as long as each
    /// failure is on a pooled connection (a new one that fails ends it:
    /// `may_resend` says no for it). Bounded here by the idle connections
    /// a host may hold, plus one new: a server that closes every reused
    /// connection while other requests pool new ones cannot keep a
    /// request going round.
    pub(super) fn may_resend_again(&self) -> bool {
        let pool = &self.config().pool;
        let idle = pool.max_idle_per_host.min(pool.max_idle_total);
        (self.resends as usize) < idle.max(1)
    }

    pub(super) fn may_resend(&self, link: &Link, err: &Error) -> bool {
        let facts = RetryFacts {
            reused: self.reused,
            idempotent: self.prepared.as_ref().is_some_and(|p| p.idempotent),
            body_replayable: self.body.is_replayable(),
        };
        err.may_resend(&link.proto, facts)
    }

    /// Leaves the response on `link` unread: drain it or close, as the
    /// core decides; then `then`.
    pub(super) fn leave(&mut self, link: &mut Link, then: After, now: Instant) {
        self.timers.disarm(Timer::ReadIdle);
        self.state = match link.proto.abandon(now) {
            Abandon::Drain => State::Drain(then),
            Abandon::Complete => State::Settle { close: None, then },
            Abandon::Close => State::Settle {
                close: Some(CloseReason::Abandoned),
                then,
            },
        };
    }

    /// What comes once the connection was settled.
    pub(super) fn after(&mut self, then: After, _now: Instant) {
        self.reused = false;
        self.idle_for = None;
        if matches!(then, After::Checkout | After::Retry | After::Hop) {
            // A fresh head comes next. At the end (or a failure), a final
            // head stays until the driver takes it: a body that came whole
            // with its head may end, or fail, before the head is handed over.
            self.builder = HeadBuilder::default();
        }
        self.decoder = None;
        self.state = match then {
            After::End => State::End,
            After::Fail(e) => State::Failed(e),
            After::Checkout => {
                self.state = State::Checkout;
                return;
            }
            After::Retry => {
                self.resends += 1;
                self.begin();
                return;
            }
            After::Hop => {
                self.resends = 0;
                self.trailers = None;
                match prepare(&self.parts, self.body.body_len(), &self.settings.config) {
                    Ok(prepared) => {
                        self.prepared = Some(prepared);
                        self.begin();
                        return;
                    }
                    Err(e) => State::Failed(e),
                }
            }
        };
    }

    /// May the request have reached the server? Only once it was started
    /// on `link` (a proxy's `CONNECT` or a handshake is not the request,
    /// nor the last request on a pooled connection found closed).
    pub(super) fn reached(&self, link: &Link) -> bool {
        self.begun && link.proto.wrote_any_byte()
    }

    /// What the exchange is doing, for errors.
    pub(super) fn phase(&self, link: Option<&Link>) -> Phase {
        match self.state {
            // The stale check of a pooled connection is part of getting one.
            State::Checkout | State::Waiting | State::Probe => Phase::PoolWait,
            State::Dial | State::Tunnel | State::Socks(_) => Phase::Connect,
            State::Handshake => Phase::Handshake,
            State::Send => {
                let writing =
                    link.is_some_and(|l| !l.out.is_empty()) || self.sending == Sending::Streaming;
                if writing {
                    Phase::Write
                } else {
                    Phase::ResponseHead
                }
            }
            State::Head => Phase::ResponseHead,
            State::Settle { .. } | State::Failed(_) | State::End => Phase::Body,
            State::Body | State::Drain(_) | State::Switched => Phase::Body,
        }
    }
}
