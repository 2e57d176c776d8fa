//! The TLS handshakes of a new connection, between the dial and the
//! request: the exchange drives rustls through the same `Write` and
//! `Read` actions as the request itself, each handshake under its own
//! deadline.
//!
//! Through an `https://` proxy there are two sessions, one inside the
//! other (see [`TlsLink`](crate::tls::TlsLink)):
//!
//! ```text
//!  dial --> handshake with the proxy --> CONNECT (inside it) --2xx--> handshake with the origin (inside it) --> request
//!                  |                          \--other--> Error::ProxyStatus
//!                  \--forwarding: the request (absolute form) inside it
//! ```
//!
//! Which session failed decides the error: the proxy's, before the request
//! was sent, is [`Error::Proxy`] with [`ProxyError::Tls`] (naming the
//! proxy); the origin's is [`Error::Tls`], as on a direct connection.

use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{ProxyMode, Scheme};
use roundtrip_proto::time::Instant;
#[cfg(feature = "tls")]
use roundtrip_proto::trace::TraceEvent;

#[cfg(feature = "tls")]
use super::Timer;
use super::{Action, After, Exchange, Link, State};
use crate::proxy::ProxyError;
use crate::tls::{Peer, TlsError};
use crate::{Error, Phase};

impl<R> Exchange<R> {
    /// A new connection is up: through the proxy first if there is one,
    /// then TLS for `https`, then the request.
    pub(super) fn connected(&mut self, link: &mut Link, now: Instant) {
        // A new connection: an end seen on the last one (before a retry or
        // a redirect) is not this one's. `attach` clears it too, but the
        // proxy steps and the handshake come before.
        self.eof = false;
        self.unclean_eof = false;
        let Some(via) = link.key.via() else {
            return self.origin_reached(link, now);
        };
        let (mode, tls) = (via.mode(), via.tls());
        match mode {
            // TLS to the proxy itself first: the request (forwarding) or
            // the `CONNECT` goes inside it.
            ProxyMode::Forward | ProxyMode::Connect if tls => {
                let host = via.host().to_string();
                self.start_tls(link, &host, Peer::Proxy, now)
            }
            ProxyMode::Forward => self.attach(link, false, now),
            ProxyMode::Connect => self.start_tunnel(link, now),
            ProxyMode::Socks5 | ProxyMode::Socks5h => self.start_socks(link, mode, now),
        }
    }

    /// The connection reaches the origin (directly, or through a tunnel):
    /// TLS for `https`, then the request.
    pub(super) fn origin_reached(&mut self, link: &mut Link, now: Instant) {
        if link.key.scheme() != Scheme::Https {
            return self.attach(link, false, now);
        }
        let host = link.key.host().to_string();
        self.start_tls(link, &host, Peer::Origin, now);
    }

    /// Starts a TLS session with `peer` at `host` on `link`: the
    /// connection's first, or one inside the proxy's.
    fn start_tls(&mut self, link: &mut Link, host: &str, peer: Peer, now: Instant) {
        #[cfg(feature = "tls")]
        {
            let config = self.settings.tls_client();
            let started = match (config, &mut link.tls) {
                (Err(e), _) => Err(e),
                (Ok(config), Some(outer)) => outer.push(config, host, peer),
                (Ok(config), None) => crate::tls::TlsLink::new(config, host, peer)
                    .map(|tls| link.tls = Some(Box::new(tls))),
            };
            match started {
                Ok(()) => {
                    let server_name = host.to_string();
                    self.state = State::Handshake;
                    // Off, the handshake still waits for the server's bytes
                    // no longer than a read may.
                    let config = self.config();
                    let after = config.tls.handshake_timeout.or(config.read_timeout);
                    self.timers.arm(Timer::Handshake, now, after);
                    self.tracing()
                        .trace(|| TraceEvent::TlsHandshakeStart { server_name });
                }
                Err(e) => self.tls_failed(link, peer, e),
            }
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (host, now);
            self.tls_failed(link, peer, TlsError::Disabled);
        }
    }

    /// The handshake with `peer` failed: the connection is closed, and the
    /// request fails (it was not sent, but a TLS failure is never retried).
    pub(super) fn tls_failed(&mut self, link: &mut Link, peer: Peer, e: TlsError) {
        #[cfg(feature = "tls")]
        {
            let text = e.to_string();
            self.tracing()
                .trace(|| TraceEvent::TlsHandshakeDone { result: Err(text) });
        }
        if peer == Peer::Proxy {
            return self.proxy_failed(link, ProxyError::Tls(e));
        }
        self.state = State::Settle {
            close: Some(CloseReason::Error),
            then: After::Fail(Error::tls(e, Phase::Handshake, false)),
        };
    }

    /// The handshake is given up (a timeout, a cancel, the server's close):
    /// its end is traced too, so that every start has an end (Go's
    /// `TLSHandshakeDone` with an error).
    pub(super) fn trace_handshake_failed(&self, err: &Error) {
        #[cfg(feature = "tls")]
        if matches!(self.state, State::Handshake) {
            self.tracing().trace(|| TraceEvent::TlsHandshakeDone {
                result: Err(err.to_string()),
            });
        }
        let _ = err;
    }

    /// Moves the handshake on: its records out, the server's in, then the
    /// request.
    pub(super) fn step_handshake(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        #[cfg(feature = "tls")]
        {
            let Some(tls) = &mut link.tls else {
                let misuse = roundtrip_proto::Error::Misuse("a handshake without a TLS session");
                self.state = State::Failed(Error::from_proto(misuse, Phase::Handshake, false));
                return None;
            };
            // With two sessions, the inner one's records are sealed into
            // the outer one's here too.
            tls.prepare_write(&link.out);
            // The server's close first: what is left to write would never
            // be answered.
            if tls.has_output() && !self.eof {
                return Some(Action::Write { watch_read: true });
            }
            let handshaking = tls.is_handshaking();
            if handshaking && !self.eof {
                return Some(Action::Read);
            }
            self.timers.disarm(Timer::Handshake);
            let (info, peer) = (tls.info(), tls.peer());
            if !handshaking {
                self.tracing()
                    .trace(|| TraceEvent::TlsHandshakeDone { result: Ok(info) });
            }
            // The server closed, before the handshake's end or with it (a
            // flight that ends with its `close_notify`): nothing can answer
            // a request, nor a tunnel's `CONNECT`.
            if self.eof {
                let err = Error::ClosedEarly {
                    phase: Phase::Handshake,
                    reached_server: false,
                };
                if handshaking {
                    self.trace_handshake_failed(&err);
                }
                self.state = State::Settle {
                    close: Some(CloseReason::PeerClosed),
                    then: After::Fail(err),
                };
                return None;
            }
            // The proxy's session is up: a tunnel's `CONNECT` goes inside
            // it; a forwarded request is the proxy's own.
            let mode = link.key.via().map(|via| via.mode());
            match (peer, mode) {
                (Peer::Proxy, Some(ProxyMode::Connect)) => self.start_tunnel(link, now),
                _ => self.attach(link, false, now),
            }
            None
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = now;
            self.tls_failed(link, Peer::Origin, TlsError::Disabled);
            None
        }
    }

    /// Ciphertext arrived: decrypt it into the read buffer. A failed
    /// session fails the exchange.
    pub(super) fn open_tls(&mut self, link: &mut Link, now: Instant) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut link.tls {
            match tls.open(&mut link.read_buf) {
                Ok(Some(true)) => self.peer_closed(link, now),
                // The proxy's session ended under the origin's: for the
                // origin's, that is the socket's end (without its
                // `close_notify`).
                Ok(Some(false)) => self.handle_eof(link, now),
                Ok(None) => {}
                Err(e) => self.tls_error(link, e),
            }
        }
        let _ = (link, now);
    }

    /// The socket ended: `Some(clean)` for a TLS connection (whether
    /// `close_notify` came first), `None` for a plain one. A TLS error
    /// met on the way fails the exchange.
    pub(super) fn close_tls(&mut self, link: &mut Link) -> Result<Option<bool>, ()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut link.tls {
            return match tls.eof(&mut link.read_buf) {
                Ok(clean) => Ok(Some(clean)),
                Err(e) => {
                    self.tls_error(link, e);
                    Err(())
                }
            };
        }
        let _ = link;
        Ok(None)
    }

    /// A session failed on `link`: before the request was sent, the error
    /// names the session's peer (see the [module docs](self)); once it is
    /// under way, it is [`Error::Tls`] with the phase and whether the
    /// request may have reached the server, whichever session failed.
    #[cfg(feature = "tls")]
    fn tls_error(&mut self, link: &mut Link, e: crate::tls::SessionError) {
        self.send_alert = true;
        match self.state {
            State::Handshake => self.tls_failed(link, e.peer, e.error),
            State::Tunnel if e.peer == Peer::Proxy => {
                self.proxy_failed(link, ProxyError::Tls(e.error))
            }
            _ => {
                let phase = self.phase(Some(link));
                let reached = self.reached(link);
                self.fail(link, Error::tls(e.error, phase, reached));
            }
        }
    }
}
