//! Request tracing: what happened to one request, as facts in order (Go's
//! `net/http/httptrace.ClientTrace`, as one event type).
//!
//! The core defines the events once; every adapter reports them at the same
//! points of the same run loop, so one script gives one sequence whatever the
//! backend. Verdicts in an event come from the core, never from the adapter:
//! close reasons from [`Connection::checkin_verdict`](crate::conn::Connection::checkin_verdict),
//! [`Pool::take_closed`](crate::pool::Pool::take_closed) or the reason the
//! adapter passed to [`Pool::discard`](crate::pool::Pool::discard) /
//! [`Pool::remove_idle`](crate::pool::Pool::remove_idle); interim statuses
//! from [`StatusLine::is_interim`](crate::StatusLine::is_interim).
//!
//! # The order for one request
//!
//! ```text
//! GetConn
//!   [ConnClosed ...]                  idle connections found dead or expired
//!   DnsStart, DnsDone                 a host name looked up, when dialing
//!   ConnectStart, ConnectDone         per address tried, when dialing
//!   TlsHandshakeStart, TlsHandshakeDone  https, on a new connection
//! GotConn
//! WroteHeaders                        the socket took the request head
//!   Got1xx ...                        e.g. 100 Continue before the body
//! WroteRequest                        the socket took all of it (or failed)
//! GotFirstResponseByte
//!   Got1xx ...                        e.g. 103 Early Hints
//! PutIdleConn                         the exchange ended: kept, or why not
//!   [ConnClosed ...]                  this connection, or ones evicted
//! ```
//!
//! A request that fails on its connection ends with `ConnClosed` (the reason
//! passed to `Pool::discard`) instead of `PutIdleConn`; a safe retry then
//! starts again at `GetConn`. `WroteRequest` is not reported when the body
//! was never sent because a final response came first (the close reason then
//! says [`CloseReason::BodyNotSent`]). Timings are not events: `GotConn`
//! carries how long the connection sat idle, and a tracer that wants more
//! reads its own clock when called.
//!
//! ```
//! use core::time::Duration;
//! use roundtrip_proto::trace::TraceEvent;
//! use roundtrip_proto::CloseReason;
//!
//! let events = [
//!     TraceEvent::WroteHeaders,
//!     TraceEvent::Got1xx { status: 103 },
//!     TraceEvent::ConnectDone { addr: "127.0.0.1:80".parse().unwrap(), result: Err("refused".into()) },
//! ];
//! let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
//! assert_eq!(text, ["wrote headers", "got 103", "connect to 127.0.0.1:80 failed: refused"]);
//! ```

use alloc::string::String;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use crate::decode::Event;
use crate::framing::CloseReason;
use crate::pool::{ConnId, Key};

/// What a TLS handshake agreed on, for [`TraceEvent::TlsHandshakeDone`].
///
/// ```
/// use roundtrip_proto::trace::{TlsInfo, TraceEvent};
/// let info = TlsInfo { version: "TLSv1_3", cipher: "TLS13_AES_128_GCM_SHA256", alpn: Some("http/1.1"), resumed: true };
/// let event = TraceEvent::TlsHandshakeDone { result: Ok(info) };
/// assert_eq!(event.to_string(), "tls handshake done: TLSv1_3, TLS13_AES_128_GCM_SHA256, alpn http/1.1, resumed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. `"TLSv1_3"`.
    pub version: &'static str,
    /// The cipher suite, e.g. `"TLS13_AES_128_GCM_SHA256"`.
    pub cipher: &'static str,
    /// The application protocol the server chose, if it chose one.
    pub alpn: Option<&'static str>,
    /// The session was resumed (a TLS 1.3 ticket or a TLS 1.2 session id):
    /// no certificate was sent or checked.
    pub resumed: bool,
}

/// One fact about a request in flight. See the [module docs](self) for the
/// order in which they come.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceEvent {
    /// The request asks the pool for a connection to `key`.
    GetConn {
        /// Scheme, host and port.
        key: Key,
    },
    /// A host name lookup begins (Go's `DNSStart`; none for an IP
    /// literal or an override).
    DnsStart {
        /// The name looked up.
        host: String,
    },
    /// The lookup ended (Go's `DNSDone`).
    DnsDone {
        /// The addresses found, or the error's text.
        result: Result<alloc::vec::Vec<SocketAddr>, String>,
    },
    /// A connect to `addr` begins (one per resolved address tried).
    ConnectStart {
        /// The address tried.
        addr: SocketAddr,
    },
    /// The connect to `addr` ended.
    ConnectDone {
        /// The address tried.
        addr: SocketAddr,
        /// `Err` holds the error's text (`"timed out"` for a connect timeout).
        result: Result<(), String>,
    },
    /// The TLS handshake on a new connection begins (Go's
    /// `TLSHandshakeStart`).
    TlsHandshakeStart {
        /// The name the certificate is checked against (sent as SNI
        /// unless it is an IP address).
        server_name: String,
    },
    /// The TLS handshake ended (Go's `TLSHandshakeDone`).
    TlsHandshakeDone {
        /// What was agreed, or the error's text.
        result: Result<TlsInfo, String>,
    },
    /// The request has its connection.
    GotConn {
        /// The connection.
        id: ConnId,
        /// It carried a request before (from the pool, or handed over).
        reused: bool,
        /// It was taken from the idle set (not handed over by a check-in, not new).
        was_idle: bool,
        /// How long it sat idle; zero unless `was_idle`.
        idle_for: Duration,
    },
    /// The socket accepted the whole request head (with the body, when they
    /// went in one write).
    WroteHeaders,
    /// The socket accepted the whole request, or writing it failed.
    WroteRequest {
        /// `Err` holds the error's text.
        result: Result<(), String>,
    },
    /// The first byte of the response arrived.
    GotFirstResponseByte,
    /// An interim response (1xx other than 101) arrived.
    Got1xx {
        /// Its status code.
        status: u16,
    },
    /// The exchange ended and the connection went back to the pool.
    PutIdleConn {
        /// The connection.
        id: ConnId,
        /// Kept for reuse (idle, or handed to a waiting request).
        kept: bool,
        /// Why not, when not kept.
        reason: Option<CloseReason>,
    },
    /// The connection was closed.
    ConnClosed {
        /// The connection.
        id: ConnId,
        /// Why.
        reason: CloseReason,
    },
}

impl TraceEvent {
    /// [`GotConn`](TraceEvent::GotConn) for a connection just dialed.
    ///
    /// ```
    /// # use roundtrip_proto::trace::TraceEvent;
    /// # use roundtrip_proto::pool::{Checkout, Key, Pool, Scheme};
    /// # use roundtrip_proto::time::Instant;
    /// # let mut pool: Pool<()> = Pool::default();
    /// # let Checkout::Dial(permit) = pool.checkout(&Key::new(Scheme::Http, "a", 80), Instant::ZERO) else { panic!() };
    /// let event = TraceEvent::got_dialed(permit.id());
    /// assert!(matches!(event, TraceEvent::GotConn { reused: false, was_idle: false, .. }));
    /// # let _ = pool.dial_failed(permit);
    /// ```
    pub fn got_dialed(id: ConnId) -> TraceEvent {
        TraceEvent::GotConn {
            id,
            reused: false,
            was_idle: false,
            idle_for: Duration::ZERO,
        }
    }

    /// [`GotConn`](TraceEvent::GotConn) for a connection from the pool:
    /// `idle_for` is `Some` when it came from the idle set
    /// ([`Checkout::Idle`](crate::pool::Checkout::Idle)), `None` when a
    /// check-in handed it over ([`Grant::Conn`](crate::pool::Grant::Conn)).
    pub fn got_pooled(id: ConnId, idle_for: Option<Duration>) -> TraceEvent {
        TraceEvent::GotConn {
            id,
            reused: true,
            was_idle: idle_for.is_some(),
            idle_for: idle_for.unwrap_or_default(),
        }
    }

    /// [`PutIdleConn`](TraceEvent::PutIdleConn) for a check-in of `id`:
    /// `closed` is the reason [`Pool::take_closed`](crate::pool::Pool::take_closed)
    /// gave for `id` right after that check-in, if it gave one.
    pub fn put_idle(id: ConnId, closed: Option<CloseReason>) -> TraceEvent {
        TraceEvent::PutIdleConn {
            id,
            kept: closed.is_none(),
            reason: closed,
        }
    }

    /// [`Got1xx`](TraceEvent::Got1xx) when `event` is the status line of an
    /// interim response.
    ///
    /// ```
    /// use roundtrip_proto::trace::TraceEvent;
    /// use roundtrip_proto::{Event, StatusLine, Version};
    /// let line = |code| Event::Status(StatusLine { version: Version::Http11, code, reason: b"", fields: 0 });
    /// assert_eq!(TraceEvent::interim(&line(100)), Some(TraceEvent::Got1xx { status: 100 }));
    /// assert_eq!(TraceEvent::interim(&line(101)), None);
    /// assert_eq!(TraceEvent::interim(&line(200)), None);
    /// ```
    pub fn interim(event: &Event<'_>) -> Option<TraceEvent> {
        match event {
            Event::Status(line) if line.is_interim() => {
                Some(TraceEvent::Got1xx { status: line.code })
            }
            _ => None,
        }
    }

    /// The variant's name, e.g. `"GotConn"`: for matching sequences in tests
    /// and for compact logs.
    pub fn name(&self) -> &'static str {
        match self {
            TraceEvent::GetConn { .. } => "GetConn",
            TraceEvent::DnsStart { .. } => "DnsStart",
            TraceEvent::DnsDone { .. } => "DnsDone",
            TraceEvent::ConnectStart { .. } => "ConnectStart",
            TraceEvent::ConnectDone { .. } => "ConnectDone",
            TraceEvent::TlsHandshakeStart { .. } => "TlsHandshakeStart",
            TraceEvent::TlsHandshakeDone { .. } => "TlsHandshakeDone",
            TraceEvent::GotConn { .. } => "GotConn",
            TraceEvent::WroteHeaders => "WroteHeaders",
            TraceEvent::WroteRequest { .. } => "WroteRequest",
            TraceEvent::GotFirstResponseByte => "GotFirstResponseByte",
            TraceEvent::Got1xx { .. } => "Got1xx",
            TraceEvent::PutIdleConn { .. } => "PutIdleConn",
            TraceEvent::ConnClosed { .. } => "ConnClosed",
        }
    }
}

/// One line for `-v` output, lowercase, without the time.
impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::GetConn { key } => write!(f, "get connection to {key}"),
            TraceEvent::DnsStart { host } => write!(f, "resolve {host}"),
            TraceEvent::DnsDone { result: Ok(addrs) } => {
                f.write_str("resolved:")?;
                for addr in addrs {
                    write!(f, " {}", addr.ip())?;
                }
                Ok(())
            }
            TraceEvent::DnsDone { result: Err(e) } => write!(f, "resolve failed: {e}"),
            TraceEvent::ConnectStart { addr } => write!(f, "connect to {addr}"),
            TraceEvent::ConnectDone { addr, result } => match result {
                Ok(()) => write!(f, "connected to {addr}"),
                Err(e) => write!(f, "connect to {addr} failed: {e}"),
            },
            TraceEvent::TlsHandshakeStart { server_name } => {
                write!(f, "tls handshake with {server_name}")
            }
            TraceEvent::TlsHandshakeDone { result: Ok(info) } => {
                write!(f, "tls handshake done: {}, {}", info.version, info.cipher)?;
                if let Some(alpn) = info.alpn {
                    write!(f, ", alpn {alpn}")?;
                }
                f.write_str(if info.resumed {
                    ", resumed"
                } else {
                    ", full handshake"
                })
            }
            TraceEvent::TlsHandshakeDone { result: Err(e) } => {
                write!(f, "tls handshake failed: {e}")
            }
            TraceEvent::GotConn {
                id,
                reused,
                was_idle,
                idle_for,
            } => match (reused, was_idle) {
                (false, _) => write!(f, "got new {id}"),
                (true, true) => write!(f, "got idle {id} (idle {idle_for:?})"),
                (true, false) => write!(f, "got {id}, handed over"),
            },
            TraceEvent::WroteHeaders => f.write_str("wrote headers"),
            TraceEvent::WroteRequest { result } => match result {
                Ok(()) => f.write_str("wrote request"),
                Err(e) => write!(f, "writing the request failed: {e}"),
            },
            TraceEvent::GotFirstResponseByte => f.write_str("got first response byte"),
            TraceEvent::Got1xx { status } => write!(f, "got {status}"),
            TraceEvent::PutIdleConn { id, kept, reason } => match (kept, reason) {
                (true, _) => write!(f, "put {id} back, kept"),
                (false, Some(why)) => write!(f, "put {id} back, not kept: {why}"),
                (false, None) => write!(f, "put {id} back, not kept"),
            },
            TraceEvent::ConnClosed { id, reason } => write!(f, "closed {id}: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{Checkout, Pool, Scheme};
    use crate::time::Instant;
    use alloc::string::ToString;

    #[test]
    fn display_names_what_happened() {
        let mut pool: Pool<()> = Pool::default();
        let key = Key::new(Scheme::Http, "127.0.0.1", 8080);
        let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else {
            panic!("an empty pool grants a dial")
        };
        let id = permit.id();
        pool.dial_succeeded(permit);
        let cases = [
            (
                TraceEvent::GetConn { key },
                "get connection to http://127.0.0.1:8080",
            ),
            (TraceEvent::got_dialed(id), "got new conn#1"),
            (
                TraceEvent::got_pooled(id, Some(Duration::from_millis(5))),
                "got idle conn#1 (idle 5ms)",
            ),
            (TraceEvent::got_pooled(id, None), "got conn#1, handed over"),
            (TraceEvent::WroteRequest { result: Ok(()) }, "wrote request"),
            (TraceEvent::put_idle(id, None), "put conn#1 back, kept"),
            (
                TraceEvent::put_idle(id, Some(CloseReason::ServerClose)),
                "put conn#1 back, not kept: server sent connection: close",
            ),
            (
                TraceEvent::ConnClosed {
                    id,
                    reason: CloseReason::Stale,
                },
                "closed conn#1: closed by server while idle",
            ),
        ];
        for (event, want) in cases {
            assert_eq!(event.to_string(), want, "{event:?}");
        }
    }

    #[test]
    fn put_idle_is_kept_unless_closed() {
        let id = {
            let mut pool: Pool<()> = Pool::default();
            let key = Key::new(Scheme::Http, "a", 80);
            let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else {
                panic!("an empty pool grants a dial")
            };
            let id = permit.id();
            pool.dial_succeeded(permit);
            id
        };
        assert_eq!(
            TraceEvent::put_idle(id, None),
            TraceEvent::PutIdleConn {
                id,
                kept: true,
                reason: None
            }
        );
        let closed = TraceEvent::put_idle(id, Some(CloseReason::IdleTimeout));
        assert!(matches!(
            closed,
            TraceEvent::PutIdleConn {
                kept: false,
                reason: Some(CloseReason::IdleTimeout),
                ..
            }
        ));
        assert_eq!(closed.name(), "PutIdleConn");
    }
}
