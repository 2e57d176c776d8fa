//! Loopback peers for the proxy suite ([`crate::proxies`]) that a
//! [`ScriptServer`](crate::server::ScriptServer) cannot play:
//!
//! - [`TlsOrigin`]: an https origin (rustls, the test PKI's `server`
//!   certificate for `localhost`, `127.0.0.1` and `::1`), keep-alive, that
//!   records every request it reads and counts its connections, so a test
//!   sees what came out of a tunnel (and that no `Proxy-Authorization` did).
//! - [`RelayProxy`]: a `CONNECT` proxy that records each `CONNECT` head,
//!   answers `200`, then relays bytes both ways, and can cut the tunnel
//!   after a number of bytes from the origin (a proxy dying mid-response).
//!   [`RelayProxy::start_tls`] makes it an `https://` proxy: it speaks TLS
//!   with its clients (its own certificate), reads the `CONNECT` inside
//!   that session and relays the tunnel's bytes as its plaintext.
//!
//! Both bind `127.0.0.1:0` only; the relay connects only to loopback
//! addresses (anything else is answered `403`). Every read waits at most
//! [`IO_SLICE`] and rechecks the stop flag; every loop is bounded by a
//! count or by [`MAX_LIFE`]; dropping a peer stops it and joins its
//! threads within [`crate::server::DROP_JOIN_BOUND`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::certs::Pem;
use crate::fixtures::pattern;
use crate::server::{DROP_JOIN_BOUND, Request, ok, response};

/// How long one blocking read waits before the stop flag is checked again.
pub const IO_SLICE: Duration = Duration::from_millis(25);

/// The longest a peer's connection lives, whatever the client does.
pub const MAX_LIFE: Duration = Duration::from_secs(30);

/// The largest request head a peer reads.
const MAX_HEAD: usize = 64 * 1024;

/// The most requests one [`TlsOrigin`] connection answers.
const MAX_REQUESTS: usize = 10_000;

/// How often the accept loops poll.
const POLL: Duration = Duration::from_millis(2);

/// What both peers share with their threads.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    errors: Mutex<Vec<String>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn requests(&self) -> MutexGuard<'_, Vec<Request>> {
        // A poisoned lock only means a peer thread panicked holding it.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, message: String) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }

    fn spawn(self: &Arc<Self>, name: String, f: impl FnOnce() + Send + 'static) {
        match thread::Builder::new().name(name).spawn(f) {
            Ok(handle) => self
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle),
            Err(e) => self.error(format!("could not spawn a thread: {e}")),
        }
    }

    /// Stops the peer and joins its threads, up to [`DROP_JOIN_BOUND`].
    fn shut(&self, acceptor: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + DROP_JOIN_BOUND;
        let mut all: Vec<JoinHandle<()>> = acceptor.into_iter().collect();
        all.append(&mut self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in all {
            while !t.is_finished() && Instant::now() < deadline {
                thread::sleep(POLL);
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Accepts on `listener` until the peer stops, handing each connection
/// (with its index) to `serve` on a thread of its own.
fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    what: &'static str,
    serve: impl Fn(usize, TcpStream, Arc<Shared>) + Clone + Send + 'static,
) {
    // Bounded by the stop flag.
    while !shared.stopped() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(POLL);
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(IO_SLICE)))
            .and_then(|()| stream.set_nodelay(true));
        if let Err(e) = setup {
            shared.error(format!("{what} conn {index}: socket setup: {e}"));
            continue;
        }
        let (serve, conn_shared) = (serve.clone(), Arc::clone(&shared));
        shared.spawn(format!("{what}-{index}"), move || {
            serve(index, stream, conn_shared)
        });
    }
}

fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    (listener, addr)
}

/// Reads one request head from `from` into `buf` (which may hold bytes
/// already); returns the head's bytes, leaving what followed in `buf`.
/// `Ok(None)`: the peer closed before a head began, or the peer stopped.
fn read_head(
    from: &mut impl Read,
    buf: &mut Vec<u8>,
    shared: &Shared,
) -> io::Result<Option<Vec<u8>>> {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    // Bounded by MAX_HEAD, MAX_LIFE and the stop flag.
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        if shared.stopped() || started.elapsed() > MAX_LIFE {
            return Ok(None);
        }
        match from.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A request head parsed into the [`Request`] the scripted server records.
fn parse_head(conn: usize, raw: Vec<u8>) -> io::Result<Request> {
    let text = String::from_utf8(raw.clone()).map_err(|_| io::Error::other("a non-UTF-8 head"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::other(format!("bad request line {line:?}")));
    };
    let headers = lines
        .take_while(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => Ok((n.to_string(), v.trim().to_string())),
            None => Err(io::Error::other(format!("bad field line {l:?}"))),
        })
        .collect::<io::Result<_>>()?;
    Ok(Request {
        conn,
        method: method.into(),
        target: target.into(),
        version: version.into(),
        headers,
        raw_head: raw,
        ..Request::default()
    })
}

/// An https origin on `127.0.0.1`. `GET /64k` is answered with
/// [`pattern`]`(65536)`; any other request with `tls origin {target}`;
/// both with `Content-Length`, keep-alive. Requests with a body are not
/// supported (the body would be read as the next head).
pub struct TlsOrigin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TlsOrigin {
    /// Starts the origin with the test PKI's `server` certificate.
    pub fn start() -> TlsOrigin {
        let pki = crate::certs::pki();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![pki.server.cert_der()], pki.server.key_der())
            .expect("the PKI's server certificate");
        let config = Arc::new(config);
        let (listener, addr) = bind();
        let shared = Arc::new(Shared::default());
        let serve = move |index, stream, shared: Arc<Shared>| {
            if let Err(e) = serve_tls(index, stream, &config, &shared) {
                shared.error(format!("tls origin conn {index}: {e}"));
            }
        };
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("tls-origin-accept".into())
                .spawn(move || accept_loop(listener, shared, "tls-origin", serve))
                .expect("spawn the tls origin")
        };
        TlsOrigin {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://{host}:PORT{path}`: `host` is `localhost` or `127.0.0.1`
    /// (names the certificate holds).
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests().clone()
    }

    /// Failures on its connections (a handshake the client gave up is one).
    pub fn errors(&self) -> Vec<String> {
        self.shared
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.shared.shut(self.acceptor.take());
    }
}

fn serve_tls(
    index: usize,
    tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    shared: &Shared,
) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    for _ in 0..MAX_REQUESTS {
        let Some(raw) = read_head(&mut tls, &mut buf, shared)? else {
            return Ok(());
        };
        let request = parse_head(index, raw)?;
        let reply = match request.target.as_str() {
            "/64k" => ok(&pattern(64 * 1024)),
            target => ok(format!("tls origin {target}").as_bytes()),
        };
        shared.requests().push(request);
        tls.write_all(&reply)?;
        tls.flush()?;
    }
    Ok(())
}

/// A `CONNECT` proxy on `127.0.0.1`: reads the `CONNECT` head (records it),
/// connects to its target (loopback only, else `403`), answers
/// `HTTP/1.1 200 Connection established` and relays until either side
/// closes, or, with [`cut_after`](Self::cut_after), until that many bytes
/// came from the origin, when it closes both sides. A method other than
/// `CONNECT` is answered `405`.
pub struct RelayProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl RelayProxy {
    /// Starts a relay that never cuts.
    pub fn start() -> RelayProxy {
        RelayProxy::cut_after(None)
    }

    /// Starts a relay that closes each tunnel once `bytes` came from the
    /// origin (`None`: never).
    pub fn cut_after(bytes: Option<usize>) -> RelayProxy {
        let (listener, addr) = bind();
        let shared = Arc::new(Shared::default());
        let serve = move |index, stream, shared: Arc<Shared>| {
            if let Err(e) = relay(index, stream, bytes, &shared) {
                shared.error(format!("relay conn {index}: {e}"));
            }
        };
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("relay-accept".into())
                .spawn(move || accept_loop(listener, shared, "relay", serve))
                .expect("spawn the relay proxy")
        };
        RelayProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Starts a relay that never cuts and speaks TLS with its clients,
    /// presenting `cert` (e.g. the PKI's `server`, for `localhost`,
    /// `127.0.0.1` and `::1`): an `https://` proxy. Its TLS is only
    /// between the client and it; what it relays to the origin is the
    /// session's plaintext (the client's TLS records for the origin).
    pub fn start_tls(cert: &Pem) -> RelayProxy {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert_der()], cert.key_der())
            .expect("the PKI's certificate matches its key");
        let config = Arc::new(config);
        let (listener, addr) = bind();
        let shared = Arc::new(Shared::default());
        let serve = move |index, stream, shared: Arc<Shared>| {
            if let Err(e) = relay_tls(index, stream, &config, &shared) {
                shared.error(format!("tls relay conn {index}: {e}"));
            }
        };
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("tls-relay-accept".into())
                .spawn(move || accept_loop(listener, shared, "tls-relay", serve))
                .expect("spawn the tls relay proxy")
        };
        RelayProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every head read so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests().clone()
    }

    /// Failures on its connections.
    pub fn errors(&self) -> Vec<String> {
        self.shared
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for RelayProxy {
    fn drop(&mut self) {
        self.shared.shut(self.acceptor.take());
    }
}

/// Reads the `CONNECT` head from `client` (recording it) and connects to
/// its target; `None` when the client closed first, or when the request
/// was refused (`405` for another method, `403` for a target that is not
/// loopback: answered here). On `Some`, nothing was answered yet; `buf`
/// holds what the client sent after its head.
fn open_tunnel(
    index: usize,
    client: &mut impl Write,
    read: impl FnOnce(&mut Vec<u8>) -> io::Result<Option<Vec<u8>>>,
    buf: &mut Vec<u8>,
    shared: &Shared,
) -> io::Result<Option<TcpStream>> {
    let Some(raw) = read(buf)? else {
        return Ok(None);
    };
    let request = parse_head(index, raw)?;
    let (method, target) = (request.method.clone(), request.target.clone());
    shared.requests().push(request);
    if method != "CONNECT" {
        client.write_all(&response(405, &[("Content-Length", "0")], b""))?;
        return Ok(None);
    }
    let loopback = target
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.find(|a| a.ip().is_loopback()));
    let Some(to) = loopback else {
        client.write_all(&response(403, &[("Content-Length", "0")], b""))?;
        return Ok(None);
    };
    let origin = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    origin.set_read_timeout(Some(IO_SLICE))?;
    origin.set_nodelay(true)?;
    Ok(Some(origin))
}

fn relay(
    index: usize,
    mut client: TcpStream,
    cut_after: Option<usize>,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut reader = client.try_clone()?;
    let read = |buf: &mut Vec<u8>| read_head(&mut reader, buf, shared);
    let Some(mut origin) = open_tunnel(index, &mut client, read, &mut buf, shared)? else {
        return Ok(());
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    // Bytes the client sent after its head (none from a well-behaved one).
    origin.write_all(&buf)?;
    let up = {
        let (from, to) = (client.try_clone()?, origin.try_clone()?);
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name(format!("relay-{index}-up"))
            .spawn(move || pump(from, to, None, &shared))?
    };
    pump(origin, client, cut_after, shared);
    // The up pump ends when either socket closes (pump shuts both down);
    // bounded by MAX_LIFE and the stop flag.
    let _ = up.join();
    Ok(())
}

/// How long one read of the TLS relay's loop waits.
const TLS_RELAY_POLL: Duration = Duration::from_millis(1);

/// The `https://` relay's connection: a TLS session with the client, the
/// `CONNECT` inside it, then the session's plaintext relayed to and from
/// the origin, on this one thread (a session cannot be read and written
/// from two), until either side closes, the peer stops or [`MAX_LIFE`]
/// passes.
fn relay_tls(
    index: usize,
    tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    shared: &Arc<Shared>,
) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let read = |buf: &mut Vec<u8>| read_head(&mut tls, buf, shared);
    // A refusal is collected here, then written inside the session.
    let mut refusal = Vec::new();
    let opened = open_tunnel(index, &mut refusal, read, &mut buf, shared)?;
    let Some(mut origin) = opened else {
        tls.write_all(&refusal)?;
        tls.conn.send_close_notify();
        return tls.flush();
    };
    tls.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    tls.flush()?;
    let rustls::StreamOwned {
        mut conn,
        sock: mut client,
    } = tls;
    // Bytes the client sent after its head (none from a well-behaved one).
    origin.write_all(&buf)?;
    conn.set_buffer_limit(None);
    client.set_read_timeout(Some(TLS_RELAY_POLL))?;
    origin.set_read_timeout(Some(TLS_RELAY_POLL))?;
    let started = Instant::now();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut plain = Vec::new();
    // Bounded by MAX_LIFE and the stop flag.
    while !shared.stopped() && started.elapsed() < MAX_LIFE {
        match client.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let mut src = &chunk[..n];
                // Bounded: each round takes bytes of `src`, or fails.
                while !src.is_empty() {
                    conn.read_tls(&mut src)?;
                    conn.process_new_packets().map_err(io::Error::other)?;
                    // Drained after each record: rustls holds 16 KiB of
                    // plaintext at most. Ends with `WouldBlock` once all
                    // is read; what came is kept.
                    let _ = conn.reader().read_to_end(&mut plain);
                }
                origin.write_all(&plain)?;
                plain.clear();
            }
            Err(e) if is_wait(&e) => {}
            Err(_) => break,
        }
        match origin.read(&mut chunk) {
            Ok(0) => {
                conn.send_close_notify();
                let _ = conn.write_tls(&mut client);
                break;
            }
            Ok(n) => conn.writer().write_all(&chunk[..n])?,
            Err(e) if is_wait(&e) => {}
            Err(_) => break,
        }
        // Bounded: a socket write takes bytes, or fails.
        while conn.wants_write() {
            conn.write_tls(&mut client)?;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = origin.shutdown(Shutdown::Both);
    Ok(())
}

/// A read that found nothing before its timeout.
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Copies `from` to `to` until `from` ends or fails, a write fails,
/// `limit` bytes went through (`None`: no limit), the peer stops or
/// [`MAX_LIFE`] passes; then shuts both sockets down. A reset or a closed
/// socket on either side just ends the tunnel, as it would in a proxy.
fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<usize>, shared: &Shared) {
    let started = Instant::now();
    let mut moved = 0usize;
    let mut chunk = [0u8; 16 * 1024];
    // Bounded by MAX_LIFE and the stop flag.
    while !shared.stopped() && started.elapsed() < MAX_LIFE {
        let room = limit.map_or(chunk.len(), |l| (l - moved).min(chunk.len()));
        if room == 0 {
            break;
        }
        match from.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => {
                moved += n;
                if to.write_all(&chunk[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
