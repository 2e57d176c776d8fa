//! The TLS handshake of a new `https` connection, between the dial and
//! the request: the exchange drives rustls through the same `Write` and
//! `Read` actions as the request itself, under its own deadline.

use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{ProxyMode, Scheme};
use roundtrip_proto::time::Instant;
#[cfg(feature = "tls")]
use roundtrip_proto::trace::TraceEvent;

#[cfg(feature = "tls")]
use super::Timer;
use super::{Action, After, Exchange, Link, State};
use crate::tls::TlsError;
use crate::{Error, Phase};

impl<R> Exchange<R> {
    /// A new connection is up: through the proxy first if there is one,
    /// then TLS for `https`, then the request.
    pub(super) fn connected(&mut self, link: &mut Link, now: Instant) {
        // A new connection: an end seen on the last one (before a retry or
        // a redirect) is not this one's. `attach` clears it too, but the
        // proxy steps and the handshake come before.
        self.eof = false;
        let Some(via) = link.key.via() else {
            return self.origin_reached(link, now);
        };
        let (mode, tls) = (via.mode(), via.tls());
        if tls && mode != ProxyMode::Forward {
            let why = "a tunnel through an https:// proxy";
            return self.proxy_failed(link, crate::proxy::ProxyError::Unsupported(why));
        }
        match mode {
            // TLS to the proxy itself, or nothing: the request goes to it.
            ProxyMode::Forward if tls => {
                let host = via.host().to_string();
                self.start_tls(link, &host, now)
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
        self.start_tls(link, &host, now);
    }

    /// Starts a TLS session with `host` on `link`.
    fn start_tls(&mut self, link: &mut Link, host: &str, now: Instant) {
        #[cfg(feature = "tls")]
        {
            let started = self
                .settings
                .tls_client()
                .and_then(|config| crate::tls::TlsLink::new(config, host));
            match started {
                Ok(tls) => {
                    let server_name = tls.host().to_string();
                    link.tls = Some(Box::new(tls));
                    self.state = State::Handshake;
                    let after = self.config().tls.handshake_timeout;
                    self.timers.arm(Timer::Handshake, now, after);
                    self.tracing()
                        .trace(|| TraceEvent::TlsHandshakeStart { server_name });
                }
                Err(e) => self.tls_failed(link, e),
            }
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (host, now);
            self.tls_failed(link, TlsError::Disabled);
        }
    }

    /// The handshake failed: the connection is closed, and the request
    /// fails (it was not sent, but a TLS failure is never retried).
    pub(super) fn tls_failed(&mut self, _link: &mut Link, e: TlsError) {
        #[cfg(feature = "tls")]
        {
            let text = e.to_string();
            self.tracing()
                .trace(|| TraceEvent::TlsHandshakeDone { result: Err(text) });
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
            tls.prepare_write(&link.out);
            // The server's close first: what is left to write would never
            // be answered.
            if tls.has_output() && !(self.eof && tls.is_handshaking()) {
                return Some(Action::Write { watch_read: true });
            }
            if tls.is_handshaking() {
                if self.eof {
                    let err = Error::ClosedEarly {
                        phase: Phase::Handshake,
                        reached_server: false,
                    };
                    self.trace_handshake_failed(&err);
                    self.state = State::Settle {
                        close: Some(CloseReason::PeerClosed),
                        then: After::Fail(err),
                    };
                    return None;
                }
                return Some(Action::Read);
            }
            self.timers.disarm(Timer::Handshake);
            let info = tls.info();
            self.tracing()
                .trace(|| TraceEvent::TlsHandshakeDone { result: Ok(info) });
            self.attach(link, false, now);
            None
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = now;
            self.tls_failed(link, TlsError::Disabled);
            None
        }
    }

    /// Ciphertext arrived: decrypt it into the read buffer. `false` when
    /// the session failed (the exchange then fails too).
    pub(super) fn open_tls(&mut self, link: &mut Link, now: Instant) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut link.tls {
            match tls.open(&mut link.read_buf) {
                Ok(true) => self.peer_closed(link, now),
                Ok(false) => {}
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

    #[cfg(feature = "tls")]
    fn tls_error(&mut self, link: &mut Link, e: TlsError) {
        self.send_alert = true;
        if matches!(self.state, State::Handshake) {
            return self.tls_failed(link, e);
        }
        let phase = self.phase(Some(link));
        let reached = self.reached(link);
        self.fail(link, Error::tls(e, phase, reached));
    }
}
