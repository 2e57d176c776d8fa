//! An exchange-level simulator: scripted servers, a pool and a virtual
//! clock, all in memory and deterministic (quinn-proto's `Pair`, h11's
//! `ConnectionPair`). It is a driver of [`Exchange`] like the real ones,
//! without sockets: the tests and the exchange fuzz target use it to check
//! every rule of the machine on virtual time.
//!
//! ```
//! use std::time::Duration;
//! use roundtrip_io::exchange::sim::{Reply, Server, Sim};
//! let mut config = roundtrip_io::Config::default();
//! config.read_timeout = Some(Duration::from_secs(5));
//! let mut sim = Sim::new(config);
//! sim.serve(Server::new([Reply::Stall]));
//! let err = sim.get("http://127.0.0.1/").unwrap_err();
//! assert_eq!(err.timeout_kind(), Some(roundtrip_io::TimeoutKind::ReadIdle));
//! assert_eq!(sim.now().since_origin(), Duration::from_secs(5));
//! ```
//!
//! # TLS
//!
//! A server made with `Server::tls` (feature `tls`) runs a rustls `ServerConnection` in
//! memory: what the client writes is ciphertext its TLS layer takes in as
//! soon as the socket takes it (so [`Sim::wire`] holds the plaintext the
//! server decrypted), and what the script sends is sealed into records.
//! The script is the server's application, above its TLS layer:
//!
//! - The records the TLS layer writes (the handshake's flights, session
//!   tickets) go out with the next step that sends, and while a
//!   [`Reply::Send`] waits for its request. A [`Reply::Delay`] at the front
//!   holds them until it ends, a [`Reply::Stall`] for ever: a script that
//!   starts with `Stall` never answers the ClientHello.
//! - [`Reply::Send`] and [`Reply::Early`] wait for the server's handshake
//!   to end (an application cannot send before).
//! - [`Reply::Close`] closes without `close_notify` (during the handshake:
//!   at once, hanging up on the ClientHello), [`Reply::CloseNotify`] sends
//!   `close_notify` first, [`Reply::Alert`] makes the TLS layer fail with a
//!   fatal alert, and [`Reply::Raw`] sends bytes past the TLS layer (a
//!   plaintext HTTP answer).
//! - [`Server::window`] and [`Server::stop_reading_after`] count ciphertext.
//!
//! # Through an `https://` proxy
//!
//! `Server::behind_tls_proxy` puts a scripted `CONNECT` proxy with a TLS
//! layer of its own in front of a server: the proxy's session takes the
//! client's ciphertext, the proxy reads one `CONNECT` head from its
//! plaintext and answers it; after a `2xx` its plaintext is the server's
//! (the server's own records, with `Server::tls`), and what the server
//! sends is sealed by both layers. [`Sim::wire`] holds the `CONNECT` head,
//! then what the server read. The server's script starts once the tunnel
//! is up and its own handshake ended (a refused `CONNECT` never starts it);
//! until then the proxy's records (its handshake, its answer) go out as
//! the server's handshake records do. A [`Reply::Stall`] at the front
//! holds them too: a proxy that never answers its ClientHello.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use roundtrip_proto::CloseReason;
use roundtrip_proto::pool::{Checkout, ConnId, Grant, Pool, PoolStats};
use roundtrip_proto::time::Instant;

use super::{Action, Exchange, Link, Settings};
use crate::{Body, Config, Error};

/// Most actions one simulated exchange may take: a livelock fails.
const MAX_ACTIONS: usize = 100_000;

/// What a scripted server does next, in order.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Sends these bytes once the client finished writing one more request
    /// head (a `\r\n\r\n` in what it wrote).
    Send(Vec<u8>),
    /// Sends these bytes at once, whether asked or not (an early answer).
    Early(Vec<u8>),
    /// Waits this long (virtual time) before the next step.
    Delay(Duration),
    /// Closes the connection (EOF), once everything before it was read.
    Close,
    /// Never sends anything again.
    Stall,
    /// Sends these bytes at once as they are: on a TLS server, unsealed
    /// and ahead of the records its TLS layer queued (a plaintext HTTP
    /// answer to the ClientHello, or garbage mid-session).
    Raw(Vec<u8>),
    /// Sends `close_notify`, then closes. On a plain server, [`Reply::Close`].
    CloseNotify,
    /// As [`Reply::Send`], and in the same piece the TLS proxy's own
    /// `close_notify` (the proxy's session ends cleanly, the origin's
    /// does not), then closes. Without a proxy, [`Reply::Send`] then
    /// [`Reply::Close`].
    SendThenProxyCloses(Vec<u8>),
    /// The server's TLS layer fails: it takes what the client sent, then a
    /// record no session can open, and answers with the fatal alert rustls
    /// chooses (`unexpected_message` before the session has keys,
    /// `bad_record_mac` after), then closes. On a plain server,
    /// [`Reply::Close`].
    Alert,
}

/// One connection's script.
#[derive(Clone, Debug)]
pub struct Server {
    replies: VecDeque<Reply>,
    /// Most bytes one write may take (`None`: all).
    window: Option<usize>,
    /// The connect never completes.
    black_hole: bool,
    /// Bytes the socket takes after the handshake before it takes none.
    stop_reading_after: Option<usize>,
    /// Virtual time each write takes (a slow link, a slow reader).
    pace: Duration,
    /// The server's TLS configuration: it speaks TLS.
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    /// A TLS proxy in front of it: the proxy's configuration and its
    /// answer to the `CONNECT`.
    #[cfg(feature = "tls")]
    proxy: Option<(Arc<rustls::ServerConfig>, Vec<u8>)>,
}

impl Server {
    /// A server that plays `replies` in order.
    pub fn new(replies: impl IntoIterator<Item = Reply>) -> Server {
        Server {
            replies: replies.into_iter().collect(),
            window: None,
            black_hole: false,
            stop_reading_after: None,
            pace: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            proxy: None,
        }
    }

    /// A server that answers one request with `bytes` and then waits.
    pub fn reply(bytes: &[u8]) -> Server {
        Server::new([Reply::Send(bytes.to_vec())])
    }

    /// Each write takes at most `n` bytes (0: the socket never takes any).
    pub fn window(mut self, n: usize) -> Server {
        self.window = Some(n);
        self
    }

    /// Each write the socket takes costs `per_write` of virtual time: with
    /// [`window`](Self::window), an upload that takes a while.
    pub fn pace(mut self, per_write: Duration) -> Server {
        self.pace = per_write;
        self
    }

    /// After its TLS handshake (from the start on a plain server), the
    /// socket takes `n` more bytes and then none: the server stopped
    /// reading and its buffers are full.
    pub fn stop_reading_after(mut self, n: usize) -> Server {
        self.stop_reading_after = Some(n);
        self
    }

    /// The server speaks TLS with `config` (see the [module docs](self)).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Server {
        self.tls = Some(config);
        self
    }

    /// The connection reaches the server through a `CONNECT` proxy that
    /// speaks TLS with `config` and answers the `CONNECT` with `answer`
    /// (see the [module docs](self)).
    #[cfg(feature = "tls")]
    pub fn behind_tls_proxy(mut self, config: Arc<rustls::ServerConfig>, answer: &[u8]) -> Server {
        self.proxy = Some((config, answer.to_vec()));
        self
    }

    /// The connect never completes.
    pub fn black_hole() -> Server {
        Server {
            black_hole: true,
            ..Server::new([])
        }
    }
}

/// A simulated connection.
struct SimConn {
    link: Link,
    server: Server,
    /// Everything the server's application read (plaintext).
    written: Vec<u8>,
    /// Its place in [`Sim::wire`].
    wire: usize,
    /// Request heads seen in `written`.
    requests: usize,
    /// Replies sent for requests.
    answered: usize,
    /// When the current `Delay` ends.
    delay_until: Option<Instant>,
    closed: bool,
    /// Bytes the socket took after the server's handshake.
    taken: usize,
    /// The server's TLS session.
    #[cfg(feature = "tls")]
    tls: Option<ServerTls>,
    /// The TLS proxy in front of the server.
    #[cfg(feature = "tls")]
    proxy: Option<ProxyTls>,
}

impl SimConn {
    /// What the server sends now: bytes, EOF, or nothing yet; moves the
    /// clock past a delay only when `wait` (the client has nothing else
    /// to do).
    fn next(&mut self, now: Instant) -> Option<Option<Vec<u8>>> {
        // Bounded by the script: each pass takes one step of it.
        loop {
            let handshaking = self.is_handshaking();
            match self.server.replies.front()? {
                Reply::Send(_) | Reply::SendThenProxyCloses(_)
                    if handshaking || self.requests <= self.answered =>
                {
                    return self.queued();
                }
                Reply::SendThenProxyCloses(_) => {
                    let Some(Reply::SendThenProxyCloses(bytes)) = self.server.replies.pop_front()
                    else {
                        return None;
                    };
                    self.answered += 1;
                    self.server.replies.push_front(Reply::Close);
                    #[allow(unused_mut)]
                    let mut wire = self.seal(bytes);
                    #[cfg(feature = "tls")]
                    if let Some(proxy) = &mut self.proxy {
                        proxy.tls.close_notify();
                        wire.extend_from_slice(&std::mem::take(&mut proxy.tls.queue));
                    }
                    return Some(Some(wire));
                }
                Reply::Early(_) if handshaking => return self.queued(),
                Reply::Send(_) | Reply::Early(_) => {
                    let (Some(Reply::Send(bytes)) | Some(Reply::Early(bytes))) =
                        self.server.replies.pop_front()
                    else {
                        return None;
                    };
                    self.answered += 1;
                    return Some(Some(self.seal(bytes)));
                }
                Reply::Raw(_) => {
                    let Some(Reply::Raw(bytes)) = self.server.replies.pop_front() else {
                        return None;
                    };
                    return Some(Some(bytes));
                }
                Reply::Delay(d) => {
                    let until = *self.delay_until.get_or_insert(now + *d);
                    if now < until {
                        return None;
                    }
                    self.delay_until = None;
                    self.server.replies.pop_front();
                }
                Reply::Close => {
                    self.closed = true;
                    return Some(None);
                }
                Reply::CloseNotify | Reply::Alert => {
                    let fault = self.server.replies.pop_front();
                    self.server.replies.push_front(Reply::Close);
                    #[cfg(feature = "tls")]
                    if let Some(tls) = &mut self.tls {
                        if matches!(fault, Some(Reply::Alert)) {
                            tls.fail(&mut self.written);
                        } else {
                            tls.close_notify();
                        }
                        let records = std::mem::take(&mut tls.queue);
                        let records = ProxyTls::wrap(&mut self.proxy, records);
                        self.server.replies.push_front(Reply::Raw(records));
                    }
                    let _ = fault;
                }
                Reply::Stall => return None,
            }
        }
    }

    /// The records the server's TLS layer queued, if any.
    fn queued(&mut self) -> Option<Option<Vec<u8>>> {
        #[cfg(feature = "tls")]
        if let Some(proxy) = &mut self.proxy {
            if let Some(tls) = &mut self.tls {
                proxy.tls.seal(&std::mem::take(&mut tls.queue));
            }
            let records = std::mem::take(&mut proxy.tls.queue);
            return (!records.is_empty()).then_some(Some(records));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls
            && !tls.queue.is_empty()
        {
            return Some(Some(std::mem::take(&mut tls.queue)));
        }
        None
    }

    /// What the application sends, as it goes on the wire.
    fn seal(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.seal(&bytes);
            let records = std::mem::take(&mut tls.queue);
            return ProxyTls::wrap(&mut self.proxy, records);
        }
        #[cfg(feature = "tls")]
        return ProxyTls::wrap(&mut self.proxy, bytes);
        #[cfg(not(feature = "tls"))]
        bytes
    }

    /// The server's TLS handshake is under way (never, on a plain server).
    fn is_handshaking(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.proxy.as_ref().is_some_and(|p| !p.is_tunnel()) {
            return true;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.conn.is_handshaking();
        }
        false
    }

    /// How many of `len` bytes offered the socket takes now.
    fn takes(&self, len: usize) -> usize {
        let n = self.server.window.map_or(len, |w| w.min(len));
        match self.server.stop_reading_after {
            Some(limit) if !self.is_handshaking() => n.min(limit.saturating_sub(self.taken)),
            _ => n,
        }
    }

    /// The socket took `bytes`: the server reads them (through its TLS
    /// layer, unless it closed).
    fn receive(&mut self, bytes: &[u8]) {
        if !self.is_handshaking() {
            self.taken += bytes.len();
        }
        #[cfg(feature = "tls")]
        if self.proxy.is_some() {
            return self.receive_proxied(bytes);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            if !self.closed && tls.receive(bytes, &mut self.written).is_err() {
                // Its TLS layer failed (its alert is queued): it closes.
                let records = std::mem::take(&mut tls.queue);
                self.server.replies = [Reply::Raw(records), Reply::Close].into();
            }
            self.requests = count_heads(&self.written);
            return;
        }
        self.written.extend_from_slice(bytes);
        self.requests = count_heads(&self.written);
    }

    /// The socket took `bytes` on a connection through the TLS proxy: the
    /// proxy opens them, reads the `CONNECT` and answers it, and passes
    /// what follows a `2xx` to the server.
    #[cfg(feature = "tls")]
    fn receive_proxied(&mut self, bytes: &[u8]) {
        let Some(proxy) = &mut self.proxy else {
            return;
        };
        let mut plain = Vec::new();
        if self.closed || proxy.tls.receive(bytes, &mut plain).is_err() {
            // Its TLS layer failed (its alert is queued): it closes.
            let records = std::mem::take(&mut proxy.tls.queue);
            self.server.replies = [Reply::Raw(records), Reply::Close].into();
            return;
        }
        let plain = proxy.read_connect(plain, &mut self.written);
        if plain.is_empty() {
            return;
        }
        let failed = match &mut self.tls {
            Some(tls) => tls.receive(&plain, &mut self.written).is_err(),
            None => {
                self.written.extend_from_slice(&plain);
                false
            }
        };
        if failed && let Some(tls) = &mut self.tls {
            // The server's TLS layer failed: its alert, through the proxy.
            let records = std::mem::take(&mut tls.queue);
            let records = ProxyTls::wrap(&mut self.proxy, records);
            self.server.replies = [Reply::Raw(records), Reply::Close].into();
        }
        let start = self.proxy.as_ref().map_or(0, |p| p.connect_len);
        self.requests = count_heads(&self.written[start..]);
    }

    /// When the script moves on by itself (a delay ending).
    fn wakes_at(&self) -> Option<Instant> {
        match self.server.replies.front() {
            Some(Reply::Delay(_)) => self.delay_until,
            _ => None,
        }
    }

    /// Whether a probe finds the idle connection closed or talking.
    fn is_stale(&self) -> bool {
        matches!(
            self.server.replies.front(),
            Some(
                Reply::Close | Reply::Early(_) | Reply::Raw(_) | Reply::CloseNotify | Reply::Alert
            )
        )
    }

    /// Whether the server speaks before it is asked: heard by a client
    /// that watches for reads while it writes.
    fn talks_first(&self) -> bool {
        matches!(
            self.server.replies.front(),
            Some(Reply::Early(_) | Reply::Raw(_))
        )
    }

    /// The client reads `bytes` (from its socket, into the link).
    fn deliver<R>(&mut self, ex: &mut Exchange<R>, bytes: &[u8], now: Instant) {
        self.link.reserve_read();
        self.link.wire_in().extend_from_slice(bytes);
        ex.handle_input(&mut self.link, bytes.len(), now);
    }

    /// Reads as a driver that reads body bytes into its caller's memory
    /// where the machine allows it ([`Exchange::direct_body_room`]): those
    /// are returned; bytes past the room go into the read buffer in the
    /// same read with `scatter`, or else stay with the socket for the next
    /// read, as a read sized to the room leaves them in the kernel.
    fn deliver_direct<R>(
        &mut self,
        ex: &mut Exchange<R>,
        bytes: Vec<u8>,
        scatter: bool,
        now: Instant,
    ) -> Vec<u8> {
        let Some(room) = ex.direct_body_room(&self.link) else {
            self.deliver(ex, &bytes, now);
            return Vec::new();
        };
        let n = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if scatter {
            self.link.reserve_read();
            self.link.wire_in().extend_from_slice(&bytes[n..]);
            ex.handle_body_read(&mut self.link, n, Some(bytes.len() - n), now);
            return bytes[..n].to_vec();
        }
        ex.handle_body_read(&mut self.link, n, None, now);
        if n < bytes.len() {
            self.server
                .replies
                .push_front(Reply::Raw(bytes[n..].to_vec()));
        }
        bytes[..n].to_vec()
    }
}

/// A scripted server's TLS layer: a rustls server session in memory.
#[cfg(feature = "tls")]
struct ServerTls {
    conn: rustls::ServerConnection,
    /// Records it wrote that the script did not send yet.
    queue: Vec<u8>,
    /// The client sent `close_notify`.
    peer_closed: bool,
}

#[cfg(feature = "tls")]
impl ServerTls {
    fn new(config: Arc<rustls::ServerConfig>) -> Result<ServerTls, Error> {
        let mut conn =
            rustls::ServerConnection::new(config).map_err(|_| misuse("a bad server TLS config"))?;
        // Whole replies are sealed at once, whatever their size.
        conn.set_buffer_limit(None);
        Ok(ServerTls {
            conn,
            queue: Vec::new(),
            peer_closed: false,
        })
    }

    /// Takes ciphertext from the client, appending the plaintext to
    /// `plain`; `Err` once the session failed (its alert is queued).
    fn receive(&mut self, mut bytes: &[u8], plain: &mut Vec<u8>) -> Result<(), ()> {
        // Bounded: each round takes bytes, or stops.
        while !bytes.is_empty() {
            let took = self.conn.read_tls(&mut bytes).unwrap_or(0);
            let processed = self.conn.process_new_packets();
            if let Ok(state) = &processed {
                self.peer_closed |= state.peer_has_closed();
            }
            // Ends with `WouldBlock` once all is read; what came is kept.
            let _ = self.conn.reader().read_to_end(plain);
            self.flush();
            if processed.is_err() {
                return Err(());
            }
            if took == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Seals `plain` (buffered by rustls until the handshake ends).
    fn seal(&mut self, plain: &[u8]) {
        use std::io::Write;
        let _ = self.conn.writer().write_all(plain);
        self.flush();
    }

    /// Feeds the session a record it cannot open: rustls queues its fatal
    /// alert.
    fn fail(&mut self, plain: &mut Vec<u8>) {
        const BROKEN: [u8; 6] = [0x17, 0x03, 0x03, 0x00, 0x01, 0x00];
        let _ = self.receive(&BROKEN, plain);
    }

    fn close_notify(&mut self) {
        self.conn.send_close_notify();
        self.flush();
    }

    /// Moves what rustls wrote into `queue`.
    fn flush(&mut self) {
        // Bounded: a `Vec` takes everything rustls holds.
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.queue) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// A scripted TLS proxy in front of a server: its session, then one
/// `CONNECT` read and answered.
#[cfg(feature = "tls")]
struct ProxyTls {
    tls: ServerTls,
    /// Its answer to the `CONNECT`.
    answer: Vec<u8>,
    /// Plaintext read before the `CONNECT` head ended.
    head: Vec<u8>,
    /// The bytes of the server's `written` that are the `CONNECT` head
    /// (0 until it was read).
    connect_len: usize,
    /// The `CONNECT` was read and answered.
    answered: bool,
}

#[cfg(feature = "tls")]
impl ProxyTls {
    fn new((config, answer): (Arc<rustls::ServerConfig>, Vec<u8>)) -> Result<ProxyTls, Error> {
        Ok(ProxyTls {
            tls: ServerTls::new(config)?,
            answer,
            head: Vec::new(),
            connect_len: 0,
            answered: false,
        })
    }

    /// The proxy answered `2xx`: what comes is the server's.
    fn is_tunnel(&self) -> bool {
        self.answered && self.answer.get(9) == Some(&b'2')
    }

    /// Reads the `CONNECT` head from the proxy's plaintext (appending it to
    /// `written`) and answers it; returns what goes on to the server.
    fn read_connect(&mut self, plain: Vec<u8>, written: &mut Vec<u8>) -> Vec<u8> {
        if self.answered {
            // A refused tunnel carries nothing.
            return if self.is_tunnel() { plain } else { Vec::new() };
        }
        self.head.extend_from_slice(&plain);
        let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Vec::new();
        };
        let rest = self.head.split_off(end + 4);
        written.append(&mut self.head);
        self.connect_len = written.len();
        self.answered = true;
        let answer = self.answer.clone();
        self.tls.seal(&answer);
        if self.is_tunnel() { rest } else { Vec::new() }
    }

    /// `bytes` as they go on the wire: sealed by the proxy's session, if
    /// there is a proxy.
    fn wrap(proxy: &mut Option<ProxyTls>, bytes: Vec<u8>) -> Vec<u8> {
        let Some(proxy) = proxy else {
            return bytes;
        };
        proxy.tls.seal(&bytes);
        std::mem::take(&mut proxy.tls.queue)
    }
}

/// A response as the simulator collected it.
#[derive(Debug)]
pub struct Collected {
    /// Status.
    pub status: StatusCode,
    /// Header fields.
    pub headers: HeaderMap,
    /// The body, decoded.
    pub body: Bytes,
    /// Trailer fields.
    pub trailers: Option<HeaderMap>,
    /// The connection was switched to another protocol; these bytes came
    /// after the head.
    pub upgraded: Option<Bytes>,
    /// The whole response.
    pub extensions: http::Extensions,
    /// The URL that answered (the head's [`FinalUrl`](crate::FinalUrl)).
    pub url: http::Uri,
}

/// The head the exchange holds, taken, as a [`Collected`] with no body yet.
fn collected(ex: &mut Exchange<Box<dyn Read + Send>>) -> Result<Collected, Error> {
    let head = ex.take_head().ok_or_else(|| misuse("no head"))?;
    let (parts, crate::FinalUrl(url)) = head.into_parts();
    Ok(Collected {
        url,
        status: parts.status,
        headers: parts.headers,
        body: Bytes::new(),
        trailers: None,
        upgraded: None,
        extensions: parts.extensions,
    })
}

/// Scripted servers, a pool and a virtual clock. See the [module docs](self).
pub struct Sim {
    settings: Arc<Settings>,
    pool: Pool<ConnId>,
    conns: HashMap<ConnId, SimConn>,
    /// Scripts for the next connections dialed, in order.
    servers: VecDeque<Server>,
    now: Instant,
    /// Connections closed, with why.
    pub closed: Vec<(ConnId, CloseReason)>,
    /// Connections closed after the client's [`Link::goodbye`], with what
    /// their server (and a TLS proxy in front of it) saw of it: whether
    /// each received the client's `close_notify`, as `(server, proxy)`.
    pub goodbyes: Vec<(ConnId, bool, bool)>,
    /// Every request written, by connection, in dial order (on a TLS
    /// connection, the plaintext the server decrypted).
    pub wire: Vec<Vec<u8>>,
    /// Actions taken by the last exchange.
    pub actions: Vec<String>,
    /// Read the body at most this far, then abandon it.
    pub read_limit: Option<usize>,
    /// The caller's time with each body piece it is handed: the virtual
    /// clock moves this much after each [`Action::Data`].
    pub piece_delay: Duration,
    /// Read body bytes past the read buffer wherever the machine allows it
    /// ([`Exchange::direct_body_room`]), as the blocking driver does for a
    /// caller's `Read`.
    pub direct_reads: bool,
    /// With [`direct_reads`](Self::direct_reads), each such read is a
    /// scatter read, as the blocking driver's: the bytes past the room go
    /// into the read buffer in the same read, instead of staying with the
    /// socket.
    pub scatter_reads: bool,
    /// Take the final head when the run ends ([`Exchange::take_head`]),
    /// not at its [`Action::Head`]: as a driver that decodes a body which
    /// came whole with its head before it hands the head over. A run that
    /// fails after the head leaves it in the exchange.
    pub late_heads: bool,
    /// How connects to an address end ([`Sim::connects`]); any other
    /// address connects at once.
    connect_rules: HashMap<std::net::SocketAddr, Connect>,
    /// Names the simulated resolver knows ([`Sim::dns`]).
    names: HashMap<String, (Duration, Vec<std::net::IpAddr>)>,
    /// Connect attempts under way: the address, and when and how the
    /// attempt ends (`None`: never).
    attempts: Vec<(std::net::SocketAddr, Option<(Instant, bool)>)>,
    /// Every connect attempt of the last exchange: when it started, to
    /// where, and how it ended (`"connected"`, `"refused"`, `"aborted"`).
    pub dials: Vec<(Duration, std::net::SocketAddr, &'static str)>,
}

/// How a simulated connect to one address ends.
#[derive(Clone, Copy, Debug)]
pub enum Connect {
    /// It connects after this long (taking the next [`Server`] script).
    After(Duration),
    /// It is refused after this long.
    RefusedAfter(Duration),
    /// It never completes (a black-holed address).
    Never,
}

/// The simulator's request body reader.
pub type SimBody = Body<Box<dyn Read + Send>>;

impl Sim {
    /// A simulator for a client built with `config`.
    pub fn new(config: Config) -> Sim {
        Sim {
            pool: Pool::new(config.pool),
            settings: Arc::new(Settings::new(config)),
            conns: HashMap::new(),
            servers: VecDeque::new(),
            now: Instant::ZERO,
            closed: Vec::new(),
            goodbyes: Vec::new(),
            wire: Vec::new(),
            actions: Vec::new(),
            read_limit: None,
            piece_delay: Duration::ZERO,
            direct_reads: false,
            scatter_reads: false,
            late_heads: false,
            connect_rules: HashMap::new(),
            names: HashMap::new(),
            attempts: Vec::new(),
            dials: Vec::new(),
        }
    }

    /// Connects to `addr` end as `how` says.
    pub fn connects(&mut self, addr: std::net::SocketAddr, how: Connect) {
        self.connect_rules.insert(addr, how);
    }

    /// The resolver answers a lookup of `host` with `addrs`, `after` the
    /// lookup started (a name it does not know: 127.0.0.1, at once).
    pub fn dns(&mut self, host: &str, after: Duration, addrs: Vec<std::net::IpAddr>) {
        self.names.insert(host.to_string(), (after, addrs));
    }

    /// The next connection dialed plays `server`.
    pub fn serve(&mut self, server: Server) {
        self.servers.push_back(server);
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the virtual clock on.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Pool counters.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// `GET uri`.
    pub fn get(&mut self, uri: &str) -> Result<Collected, Error> {
        self.send(
            http::Request::get(uri)
                .body(Body::empty())
                .map_err(crate::InvalidRequest::from)?,
        )
    }

    /// Sends `request` and collects its response.
    pub fn send(&mut self, request: http::Request<SimBody>) -> Result<Collected, Error> {
        let mut ex = self.exchange(request);
        self.run(&mut ex, None)
    }

    /// An exchange for `request` with this simulator's settings, for
    /// [`run`](Self::run) (a test that looks at the exchange afterwards).
    pub fn exchange(&self, request: http::Request<SimBody>) -> Exchange<Box<dyn Read + Send>> {
        let (parts, body) = request.into_parts();
        Exchange::new(self.settings.clone(), parts, body, self.now)
    }

    /// Sends `request`, cancelling it after `after` actions.
    pub fn send_cancelled(
        &mut self,
        request: http::Request<SimBody>,
        after: usize,
    ) -> Result<Collected, Error> {
        let (parts, body) = request.into_parts();
        let mut ex = Exchange::new(self.settings.clone(), parts, body, self.now);
        self.run(&mut ex, Some(after))
    }

    /// Drives `ex` to its end.
    pub fn run(
        &mut self,
        ex: &mut Exchange<Box<dyn Read + Send>>,
        cancel_after: Option<usize>,
    ) -> Result<Collected, Error> {
        self.actions.clear();
        self.dials.clear();
        self.attempts.clear();
        let mut permit: Option<roundtrip_proto::pool::DialPermit> = None;
        let mut conn: Option<ConnId> = None;
        let mut response: Option<Collected> = None;
        let mut body = BytesMut::new();
        let mut waiting: Option<roundtrip_proto::pool::Ticket> = None;
        let mut head_seen = false;
        for step in 0..MAX_ACTIONS {
            if cancel_after == Some(step) {
                let link = conn
                    .and_then(|id| self.conns.get_mut(&id))
                    .map(|c| &mut c.link);
                ex.cancel(link, self.now);
            }
            let link = conn
                .and_then(|id| self.conns.get_mut(&id))
                .map(|c| &mut c.link);
            let action = ex.poll(link, self.now);
            self.actions.push(name(&action).to_string());
            let dialing = matches!(
                action,
                Action::Resolve | Action::Connect(_) | Action::AwaitConnect | Action::Abort(_)
            );
            if !dialing && let Some(permit) = permit.take() {
                // The dial ended without a connection.
                let grant = self.pool.dial_failed(permit);
                self.settle_grant(grant);
            }
            match action {
                Action::Checkout => {
                    let key = ex.key().cloned().ok_or_else(|| misuse("no key"))?;
                    match self.pool.checkout(&key, self.now) {
                        Checkout::Idle(idle) => {
                            conn = Some(idle.handle);
                            let now = self.now;
                            let c = self.conn(idle.handle)?;
                            ex.handle_idle(&mut c.link, idle.idle_for, now);
                        }
                        Checkout::Dial(granted) => {
                            permit = Some(granted);
                            ex.handle_dial(self.now);
                        }
                        Checkout::Wait(ticket) => {
                            waiting = Some(ticket);
                            ex.handle_wait(self.now);
                        }
                    }
                }
                Action::Wait => {
                    // One exchange at a time: nobody will hand a grant.
                    self.sleep_until(ex.poll_timeout(None));
                    ex.handle_timeout(None, self.now);
                }
                Action::Probe => {
                    let now = self.now;
                    let c = self.conn(conn.ok_or_else(|| misuse("probe"))?)?;
                    let stale = c.is_stale();
                    ex.handle_probe(&mut c.link, stale, now);
                }
                Action::Resolve => self.resolve(ex)?,
                Action::Connect(addr) => self.connect(ex, addr),
                Action::AwaitConnect => self.await_connect(ex, &mut permit, &mut conn)?,
                Action::Abort(addr) => {
                    self.attempts.retain(|(a, _)| *a != addr);
                    let at = self.now.since_origin();
                    self.dials.push((at, addr, "aborted"));
                }
                Action::Write { watch_read } => {
                    let now = self.now;
                    let c = self.conn(conn.ok_or_else(|| misuse("write"))?)?;
                    // Watching, an answer that is there is heard first.
                    if watch_read
                        && c.talks_first()
                        && let Some(Some(bytes)) = c.next(now)
                    {
                        c.deliver(ex, &bytes, now);
                        continue;
                    }
                    let mut all = Vec::new();
                    for s in &c.link.wire_out() {
                        all.extend_from_slice(s);
                    }
                    let n = c.takes(all.len());
                    if n == 0 {
                        let at = ex.poll_timeout(Some(&c.link));
                        self.sleep_until(at);
                        let now = self.now;
                        let c = self.conn(conn.ok_or_else(|| misuse("write"))?)?;
                        ex.handle_timeout(Some(&mut c.link), now);
                        continue;
                    }
                    let pace = c.server.pace;
                    let read = c.written.len();
                    c.receive(&all[..n]);
                    let (wire, plain) = (c.wire, c.written[read..].to_vec());
                    self.wire[wire].extend_from_slice(&plain);
                    self.now = self.now + pace;
                    let now = self.now;
                    let c = self.conn(conn.ok_or_else(|| misuse("write"))?)?;
                    ex.handle_written(&mut c.link, n, now);
                    // A deadline that passed while the write took its time
                    // is seen, as a driver's write bounded by it would.
                    if ex.poll_timeout(Some(&c.link)).is_some_and(|at| at <= now) {
                        ex.handle_timeout(Some(&mut c.link), now);
                    }
                }
                Action::NeedBody { watch_read } => {
                    let mut chunk = vec![0u8; 16 * 1024];
                    let read = match ex.request_body() {
                        Some(reader) => reader.read(&mut chunk),
                        None => Ok(0),
                    };
                    // `WouldBlock` stands for an async reader's `Pending`
                    // that stays so: the wait is for the server (when
                    // watching) or the machine's deadline.
                    if let Err(e) = &read
                        && e.kind() == std::io::ErrorKind::WouldBlock
                    {
                        let id = conn.ok_or_else(|| misuse("body"))?;
                        if watch_read {
                            self.read(ex, id)?;
                        } else {
                            let at = ex.poll_timeout(Some(&self.conn(id)?.link));
                            self.sleep_until(at);
                            let now = self.now;
                            let c = self.conn(id)?;
                            ex.handle_timeout(Some(&mut c.link), now);
                        }
                        continue;
                    }
                    let piece = read.map(|n| {
                        chunk.truncate(n);
                        Bytes::from(chunk)
                    });
                    let now = self.now;
                    let c = self.conn(conn.ok_or_else(|| misuse("body"))?)?;
                    ex.handle_request_body(&mut c.link, piece, now);
                }
                Action::Read => {
                    let id = conn.ok_or_else(|| misuse("read"))?;
                    let direct = self.read(ex, id)?;
                    body.extend_from_slice(&direct);
                    if self.read_limit.is_some_and(|limit| body.len() >= limit) {
                        let link = self.conns.get_mut(&id).map(|c| &mut c.link);
                        ex.abandon(link, self.now);
                    }
                }
                Action::Head if self.late_heads => head_seen = true,
                Action::Head => response = Some(collected(ex)?),
                Action::Data(data) => {
                    body.extend_from_slice(&data);
                    self.advance(self.piece_delay);
                    if self.read_limit.is_some_and(|limit| body.len() >= limit) {
                        let link = conn
                            .and_then(|id| self.conns.get_mut(&id))
                            .map(|c| &mut c.link);
                        ex.abandon(link, self.now);
                    }
                }
                Action::Release => {
                    let id = conn.take().ok_or_else(|| misuse("release"))?;
                    let mut c = self.conns.remove(&id).ok_or_else(|| misuse("release"))?;
                    let verdict = c.link.proto.checkin_verdict();
                    if verdict.is_yes() {
                        // No connection goes back in an unknown state.
                        let left = !c.link.read_buf.is_empty() || !c.link.wire_in().is_empty();
                        if left || c.link.has_output() {
                            return Err(misuse("released as reusable with bytes left"));
                        }
                        c.link.shrink_for_idle();
                    }
                    let keep_alive = c.link.proto.keep_alive_timeout();
                    let key = c.link.key.clone();
                    self.conns.insert(id, c);
                    let grant = self
                        .pool
                        .checkin(id, &key, id, verdict, keep_alive, self.now);
                    self.settle_grant(grant);
                    self.collect_closed();
                }
                Action::Discard(reason) => {
                    let id = conn.take().ok_or_else(|| misuse("discard"))?;
                    let key = self.conn(id)?.link.key.clone();
                    self.close(id);
                    self.closed.push((id, reason));
                    let grant = self.pool.discard(id, &key, reason);
                    self.settle_grant(grant);
                }
                Action::Upgrade => {
                    let id = conn.take().ok_or_else(|| misuse("upgrade"))?;
                    let mut c = self.conns.remove(&id).ok_or_else(|| misuse("upgrade"))?;
                    let key = c.link.key.clone();
                    let grant = self.pool.discard(id, &key, CloseReason::Switched);
                    self.settle_grant(grant);
                    let mut r = match response.take() {
                        Some(r) => r,
                        None if head_seen => collected(ex)?,
                        None => return Err(misuse("upgrade before head")),
                    };
                    r.upgraded = Some(c.link.read_buf.split().freeze());
                    return Ok(r);
                }
                Action::Fail(e) => {
                    if let Some(ticket) = waiting.take() {
                        self.pool.cancel_wait(ticket);
                    }
                    return Err(e);
                }
                Action::End => {
                    let mut r = match response.take() {
                        Some(r) => r,
                        None if head_seen => collected(ex)?,
                        None => return Err(misuse("end before head")),
                    };
                    r.body = body.freeze();
                    r.trailers = ex.trailers().cloned();
                    return Ok(r);
                }
            }
        }
        Err(misuse("the exchange did not end within the action bound"))
    }

    fn conn(&mut self, id: ConnId) -> Result<&mut SimConn, Error> {
        self.conns
            .get_mut(&id)
            .ok_or_else(|| misuse("unknown connection"))
    }

    /// Answers the lookup the exchange asks for.
    fn resolve(&mut self, ex: &mut Exchange<Box<dyn Read + Send>>) -> Result<(), Error> {
        let (host, port) = ex.lookup_target().ok_or_else(|| misuse("resolve"))?;
        let loopback = (Duration::ZERO, vec![[127, 0, 0, 1].into()]);
        let (after, ips) = self.names.get(host).cloned().unwrap_or(loopback);
        let done = self.now + after;
        if let Some(at) = ex.poll_timeout(None).filter(|&at| at < done) {
            self.sleep_until(Some(at));
            ex.handle_timeout(None, self.now);
            return Ok(());
        }
        self.now = done;
        let addrs = ips.into_iter().map(|ip| (ip, port).into()).collect();
        ex.handle_resolved(Ok(addrs), self.now);
        Ok(())
    }

    /// Starts a connect attempt to `addr`.
    fn connect(&mut self, ex: &mut Exchange<Box<dyn Read + Send>>, addr: std::net::SocketAddr) {
        let rule = self.connect_rules.get(&addr).copied();
        let ends = match rule.unwrap_or(Connect::After(Duration::ZERO)) {
            // A black-holed server script never answers the connect.
            Connect::After(_) if self.servers.front().is_some_and(|s| s.black_hole) => {
                self.servers.pop_front();
                None
            }
            Connect::After(after) => Some((self.now + after, true)),
            Connect::RefusedAfter(after) => Some((self.now + after, false)),
            Connect::Never => None,
        };
        let _ = ex;
        self.attempts.push((addr, ends));
        self.dials.push((self.now.since_origin(), addr, "started"));
    }

    /// Waits (virtual time) for the first attempt to end, or for the
    /// exchange's deadline.
    fn await_connect(
        &mut self,
        ex: &mut Exchange<Box<dyn Read + Send>>,
        permit: &mut Option<roundtrip_proto::pool::DialPermit>,
        conn: &mut Option<ConnId>,
    ) -> Result<(), Error> {
        let first = (self.attempts.iter().enumerate())
            .filter_map(|(i, (_, ends))| ends.map(|(at, ok)| (at, i, ok)))
            .min();
        let deadline = ex.poll_timeout(None);
        let (at, i, ok) = match (first, deadline) {
            (Some(first), Some(d)) if d < first.0 => {
                self.sleep_until(Some(d));
                ex.handle_timeout(None, self.now);
                return Ok(());
            }
            (Some(first), _) => first,
            (None, Some(d)) => {
                self.sleep_until(Some(d));
                ex.handle_timeout(None, self.now);
                return Ok(());
            }
            (None, None) => return Err(misuse("a connect that would wait forever")),
        };
        self.now = self.now.max(at);
        let (addr, _) = self.attempts.swap_remove(i);
        let server = if ok { self.servers.pop_front() } else { None };
        let Some(server) = server else {
            self.dials.push((self.now.since_origin(), addr, "refused"));
            let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            ex.handle_connect_failed(addr, refused, self.now);
            return Ok(());
        };
        self.dials
            .push((self.now.since_origin(), addr, "connected"));
        let granted = permit
            .take()
            .ok_or_else(|| misuse("a connect without a permit"))?;
        #[cfg(feature = "tls")]
        let tls = server.tls.clone().map(ServerTls::new).transpose()?;
        #[cfg(feature = "tls")]
        let proxy = server.proxy.clone().map(ProxyTls::new).transpose()?;
        let id = granted.id();
        let key = ex.key().cloned().ok_or_else(|| misuse("no key"))?;
        self.wire.push(Vec::new());
        let link = Link::new(id, key, &self.settings.config);
        self.conns.insert(
            id,
            SimConn {
                link,
                server,
                written: Vec::new(),
                wire: self.wire.len() - 1,
                requests: 0,
                answered: 0,
                delay_until: None,
                closed: false,
                taken: 0,
                #[cfg(feature = "tls")]
                tls,
                #[cfg(feature = "tls")]
                proxy,
            },
        );
        let now = self.now;
        let c = self.conn(id)?;
        if ex.handle_connected(addr, &mut c.link, now) {
            self.pool.dial_succeeded(granted);
            *conn = Some(id);
        } else {
            self.conns.remove(&id);
            self.wire.pop();
            *permit = Some(granted);
        }
        Ok(())
    }

    /// Delivers what the server has for `id`, or waits (virtual time) for
    /// it or for the exchange's next deadline.
    /// Reads for the exchange: the body bytes read past the buffer (with
    /// [`direct_reads`](Self::direct_reads)) are returned.
    fn read(
        &mut self,
        ex: &mut Exchange<Box<dyn Read + Send>>,
        id: ConnId,
    ) -> Result<Vec<u8>, Error> {
        let (direct, scatter) = (self.direct_reads, self.scatter_reads);
        // Bounded: at most one clock jump, then an input or a timeout.
        for _ in 0..2 {
            let now = self.now;
            let c = self.conn(id)?;
            if c.closed {
                ex.handle_eof(&mut c.link, now);
                return Ok(Vec::new());
            }
            match c.next(now) {
                Some(Some(bytes)) if direct => {
                    return Ok(c.deliver_direct(ex, bytes, scatter, now));
                }
                Some(Some(bytes)) => {
                    c.deliver(ex, &bytes, now);
                    return Ok(Vec::new());
                }
                Some(None) => {
                    ex.handle_eof(&mut c.link, now);
                    return Ok(Vec::new());
                }
                None => {}
            }
            let wake = c.wakes_at();
            let deadline = ex.poll_timeout(Some(&c.link));
            let at = match (wake, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(at) = at else {
                return Err(misuse("a read that would wait forever"));
            };
            self.now = self.now.max(at);
            if wake.is_none_or(|w| deadline.is_some_and(|d| d <= w)) {
                let now = self.now;
                let c = self.conn(id)?;
                ex.handle_timeout(Some(&mut c.link), now);
                return Ok(Vec::new());
            }
        }
        Ok(Vec::new())
    }

    fn sleep_until(&mut self, at: Option<Instant>) {
        if let Some(at) = at {
            self.now = self.now.max(at);
        }
    }

    fn settle_grant(&mut self, grant: Option<Grant<ConnId>>) {
        // One exchange at a time: no request waits, so the pool grants
        // nothing. A grant would mean the pool broke its own rule.
        debug_assert!(grant.is_none(), "a grant with no waiter");
    }

    fn collect_closed(&mut self) {
        while let Some((id, reason)) = self.pool.take_closed() {
            self.close(id);
            self.closed.push((id, reason));
        }
    }

    /// Closes a connection as a driver does: what [`Link::goodbye`] gives
    /// goes to the server first (as far as its socket takes it), and what
    /// the server then saw is kept in [`goodbyes`](Self::goodbyes).
    fn close(&mut self, id: ConnId) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let bye = c.link.goodbye().to_vec();
        if bye.is_empty() || c.closed {
            return;
        }
        let n = c.takes(bye.len());
        c.receive(&bye[..n]);
        #[cfg(feature = "tls")]
        {
            let server = c.tls.as_ref().is_some_and(|t| t.peer_closed);
            let proxy = c.proxy.as_ref().is_some_and(|p| p.tls.peer_closed);
            self.goodbyes.push((id, server, proxy));
        }
    }

    /// The connections alive (idle ones, after an exchange ended).
    pub fn links_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.conns.values_mut().map(|c| &mut c.link)
    }

    /// How many request heads the servers received in all, per live
    /// connection.
    pub fn requests_seen(&self) -> usize {
        self.conns.values().map(|c| c.requests).sum()
    }
}

fn count_heads(written: &[u8]) -> usize {
    written.windows(4).filter(|w| w == b"\r\n\r\n").count()
}

fn misuse(what: &'static str) -> Error {
    Error::from_proto(
        roundtrip_proto::Error::Misuse(what),
        crate::Phase::PoolWait,
        false,
    )
}

/// The action's name, for [`Sim::actions`].
pub fn name(action: &Action) -> &'static str {
    match action {
        Action::Checkout => "checkout",
        Action::Wait => "wait",
        Action::Probe => "probe",
        Action::Resolve => "resolve",
        Action::Connect(_) => "connect",
        Action::AwaitConnect => "await-connect",
        Action::Abort(_) => "abort",
        Action::Write { .. } => "write",
        Action::NeedBody { .. } => "need-body",
        Action::Read => "read",
        Action::Head => "head",
        Action::Data(_) => "data",
        Action::Release => "release",
        Action::Discard(_) => "discard",
        Action::Upgrade => "upgrade",
        Action::Fail(_) => "fail",
        Action::End => "end",
    }
}
