//! The way through a proxy, between the dial and the origin: a `CONNECT`
//! tunnel (RFC 9110 section 9.3.6) or a SOCKS5 handshake (RFC 1928), run
//! by the exchange through the same `Write` and `Read` actions as the
//! request, under the connect timeout. A forwarding HTTP proxy needs no
//! step here: the request itself goes to it, in absolute form.

use http::header::USER_AGENT;
use roundtrip_proto::CloseReason;
use roundtrip_proto::conn::Connection;
use roundtrip_proto::encode::{BodyFraming, RequestHead};
use roundtrip_proto::pool::{ProxyMode, Via};
use roundtrip_proto::time::Instant;

use super::{Action, After, Exchange, Link, State, Timer};
use crate::proxy::ProxyError;
use crate::socks::{Socks5, Target};
use crate::trace::Tracing;
use crate::{Error, HeadBuilder, Phase};

/// The longest a proxy may take to set a tunnel up when neither the
/// connect nor the read timeout is set (Go's one minute for a `CONNECT`).
const PROXY_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl<R> Exchange<R> {
    /// The proxy's address, for errors.
    fn proxy_name(&self, via: Option<&Via>) -> String {
        match (&self.prepared, via) {
            (Some(p), _) if p.proxy.is_some() => p
                .proxy
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            (_, Some(via)) => via.to_string(),
            _ => String::new(),
        }
    }

    /// The way through the proxy failed: the connection is closed.
    pub(super) fn proxy_failed(&mut self, link: &Link, source: ProxyError) {
        let proxy = self.proxy_name(link.key.via());
        self.state = State::Settle {
            close: Some(CloseReason::Error),
            then: After::Fail(Error::Proxy { proxy, source }),
        };
    }

    /// Sends `CONNECT host:port` to the proxy.
    pub(super) fn start_tunnel(&mut self, link: &mut Link, now: Instant) {
        let (host, port) = (link.key.host(), link.key.port());
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let auth = self
            .prepared
            .as_ref()
            .and_then(|p| crate::request::connect_authorization(p, &self.parts, self.config()));
        let agent = self.settings.config.default_headers.get(USER_AGENT);
        let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(2);
        if let Some(agent) = agent {
            fields.push((b"user-agent", agent.as_bytes()));
        }
        if let Some(auth) = &auth {
            fields.push((b"proxy-authorization", auth.as_bytes()));
        }
        let head = RequestHead {
            method: b"CONNECT",
            target: target.as_bytes(),
            host: Some(target.as_bytes()),
            body: BodyFraming::None,
            preset: None,
            expect_continue: false,
            close: false,
        };
        link.out.clear();
        if let Err(e) = link.proto.start(&head, fields, now, &mut link.out.head) {
            let why = match e {
                roundtrip_proto::Error::InvalidTarget => "a CONNECT to this host",
                _ => "a CONNECT with these settings",
            };
            return self.proxy_failed(link, ProxyError::Unsupported(why));
        }
        self.state = State::Tunnel;
        let after = self.proxy_wait();
        self.timers.arm(Timer::Connect, now, after);
    }

    /// How long a proxy may take to set a tunnel up (its `CONNECT` answer,
    /// its SOCKS5 handshake): the connect timeout, else the read timeout
    /// (the wait is for the proxy's bytes), else a minute, as Go bounds a
    /// `CONNECT` without a deadline: never a wait without an end.
    fn proxy_wait(&self) -> Option<std::time::Duration> {
        let config = self.config();
        let wait = config.connect_timeout.or(config.read_timeout);
        Some(wait.unwrap_or(PROXY_WAIT_MAX))
    }

    /// Moves the `CONNECT` on: the request out, then the proxy's answer.
    pub(super) fn step_tunnel(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        link.prepare_write();
        if link.has_output() && !self.eof {
            return Some(Action::Write { watch_read: true });
        }
        match self
            .builder
            .push_buffered(&Tracing::off(), &mut link.proto, &mut link.read_buf, true)
        {
            Ok(Some(_)) => {}
            Ok(None) if self.eof => {
                self.proxy_failed(link, ProxyError::Closed);
                return None;
            }
            Ok(None) => return Some(Action::Read),
            Err(Error::ClosedEarly { .. }) => {
                self.proxy_failed(link, ProxyError::Closed);
                return None;
            }
            Err(Error::Timeout { kind, .. }) => {
                // The proxy did not answer within the response-head timeout:
                // a timeout of the dial (nothing reached the origin).
                let err = Error::Timeout {
                    kind,
                    phase: Phase::Connect,
                    reached_server: false,
                };
                self.state = State::Settle {
                    close: Some(CloseReason::Timeout),
                    then: After::Fail(err),
                };
                return None;
            }
            Err(e) => {
                self.proxy_failed(link, ProxyError::BadAnswer(e.to_string()));
                return None;
            }
        }
        let head = self.builder.take_head();
        self.builder = HeadBuilder::default();
        let Some((head, ())) = head.map(http::Response::into_parts) else {
            let detail = "a head end without a head".to_string();
            self.proxy_failed(link, ProxyError::BadAnswer(detail));
            return None;
        };
        // Only a 2xx opens the tunnel (RFC 9110 section 9.3.6): the core
        // switches on a `101` too, which answers no `CONNECT`.
        if !(link.proto.is_switched() && head.status.is_success()) {
            let status = head.status;
            let proxy = self.proxy_name(link.key.via());
            self.state = State::Settle {
                close: Some(CloseReason::Error),
                then: After::Fail(Error::ProxyStatus {
                    proxy,
                    status,
                    head: crate::error::error_head(head),
                }),
            };
            return None;
        }
        self.tunnel_up(link, now);
        None
    }

    /// Starts the SOCKS5 handshake for the origin of `link`.
    pub(super) fn start_socks(&mut self, link: &mut Link, mode: ProxyMode, now: Instant) {
        let (host, port) = (link.key.host(), link.key.port());
        let ip = host.parse::<std::net::IpAddr>().ok();
        let target = match (ip, mode) {
            (Some(ip), _) => Target::Ip(ip),
            (None, ProxyMode::Socks5h) => Target::Name(host.to_string()),
            // `socks5://`: the dial looked the name up.
            (None, _) => match self.dialing.as_ref().and_then(|d| d.socks_target) {
                Some(ip) => Target::Ip(ip),
                None => {
                    let why = "socks5:// without the origin's address";
                    return self.proxy_failed(link, ProxyError::Unsupported(why));
                }
            },
        };
        let proxy = self.prepared.as_ref().and_then(|p| p.proxy.as_deref());
        let credentials = proxy.and_then(crate::proxy::Proxy::credentials);
        match Socks5::new(target, port, credentials) {
            Ok(mut socks) => {
                link.out.clear();
                socks.start(&mut link.out.head);
                self.state = State::Socks(Box::new(socks));
                let after = self.proxy_wait();
                self.timers.arm(Timer::Connect, now, after);
            }
            Err(e) => self.proxy_failed(link, e.into()),
        }
    }

    /// Moves the SOCKS5 handshake on.
    pub(super) fn step_socks(&mut self, link: &mut Link, now: Instant) -> Option<Action> {
        link.prepare_write();
        if link.has_output() && !self.eof {
            return Some(Action::Write { watch_read: true });
        }
        let State::Socks(socks) = &mut self.state else {
            return None; // unreachable: called in this state
        };
        match socks.handle_input(&mut link.read_buf, &mut link.out.head) {
            Err(e) => {
                self.proxy_failed(link, e.into());
                None
            }
            Ok(true) => {
                self.tunnel_up(link, now);
                None
            }
            Ok(false) if !link.out.is_empty() && !self.eof => None, // the next message
            Ok(false) if self.eof => {
                self.proxy_failed(link, ProxyError::Closed);
                None
            }
            Ok(false) => Some(Action::Read),
        }
    }

    /// The tunnel is up: what follows is the origin's.
    fn tunnel_up(&mut self, link: &mut Link, now: Instant) {
        self.timers.disarm(Timer::Connect);
        if !link.read_buf.is_empty() {
            // The origin cannot have spoken yet: the client speaks first
            // (a request, or a TLS ClientHello).
            let why = "bytes after the proxy's answer, before the client spoke";
            return self.proxy_failed(link, ProxyError::BadAnswer(why.to_string()));
        }
        link.proto = Connection::new(self.settings.config.conn_config());
        link.out.clear();
        self.origin_reached(link, now);
    }
}
