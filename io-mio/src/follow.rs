//! Redirects and transparent gzip for the driver. Every decision is
//! `roundtrip_io`'s ([`Redirects`](roundtrip_io::Redirects),
//! [`decode_response`]); this file records it on the exchange and, when a
//! redirect's body was drained or closed, sends the next hop itself, so
//! that only final responses are reported.

use roundtrip_io::http::Extensions;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::{Config, Error, Verdict, decode_response, prepare};

use crate::driver::Driver;
use crate::exchange::{Exchange, Stage, Step, Stop};

impl Exchange {
    /// The final head arrived: a redirect to follow stops the body (the
    /// core then drains or closes it); any other response may be decoded.
    pub(crate) fn on_head(&mut self, config: &Config) -> Result<Step, Error> {
        let replay = self.body.replay();
        let Some(head) = self.recv.head_mut() else {
            return Ok(Step::More); // unreachable: called on the head
        };
        let verdict = self.redirects.handle_response(
            &self.parts,
            head.status,
            &head.headers,
            replay,
            config,
        )?;
        match verdict {
            Verdict::Follow(hop) => {
                self.hop = Some(hop);
                self.recv.stop(Stop::Redirect);
                Ok(Step::Stop)
            }
            Verdict::Deliver => {
                let mut extensions = Extensions::new();
                let decoder = decode_response(
                    &self.parts,
                    config,
                    head.status,
                    &mut head.headers,
                    &mut extensions,
                );
                self.recv.decode_with(decoder, extensions);
                Ok(Step::More)
            }
        }
    }
}

impl Driver {
    /// When the exchange in `ex` ended on a redirect to follow (its
    /// connection already drained, pooled or closed), rewrites its request
    /// and starts it again under the same id and total deadline. Returns
    /// false when there is no hop to take.
    pub(crate) fn follow_redirect(&mut self, ex: usize) -> bool {
        let Some(exchange) = self.exchanges.get_mut(ex) else {
            return false;
        };
        if exchange.cancelled {
            return false;
        }
        let Some(hop) = exchange.hop.take() else {
            return false;
        };
        hop.apply_with_body(&mut exchange.parts, &mut exchange.body);
        match prepare(&exchange.parts, exchange.body.body_len(), &self.config) {
            Ok(prepared) => exchange.prepared = prepared,
            Err(e) => {
                self.finish(ex, Err(e));
                return true;
            }
        }
        // A new round trip: it may be retried once on its own.
        exchange.reset_for_retry();
        exchange.retried = false;
        let now = self.clock.now();
        self.begin(ex, now);
        true
    }
}

impl Driver {
    /// The total deadline passed while a redirect's body was being drained:
    /// the chain goes no further and the request fails with `err`. Returns
    /// `err` back when the exchange is not at such a point.
    pub(crate) fn end_redirect(&mut self, ex: usize, err: Error) -> Option<Error> {
        let Some(exchange) = self.exchanges.get_mut(ex) else {
            return Some(err);
        };
        if exchange.hop.take().is_none() {
            return Some(err);
        }
        if let Stage::Active(slot) = exchange.stage {
            self.discard_conn(slot, CloseReason::Timeout);
        }
        self.finish(ex, Err(err));
        None
    }
}
