//! A minimal loopback HTTP/1.1 origin for the speed benchmarks: keep-alive,
//! canned responses, one thread per connection ([`serve`]) or one event loop
//! for all ([`serve_evented`]).
//!
//! It does as little as a server can so that a benchmark measures the
//! client: per request one `read(2)` into a fixed buffer and one `write(2)`
//! of a response prepared at start-up (the evented origin sends `/64k` with
//! `sendfile(2)` where it can). It answers `GET /small` with
//! `Hello, world!` (13 bytes) and `GET /64k` with [`pattern`]`(65536)`, the
//! same bodies as the nginx fixture, each with `Content-Length`; any other
//! target gets `404` with an empty body.
//!
//! What it does not do: request bodies, `Connection: close` (the client
//! closes; every response is length-delimited, so no client waits for the
//! server to close), heads longer than [`MAX_HEAD`] (the connection is
//! closed). Pipelined requests are answered in order.
//!
//! ```no_run
//! let addr = roundtrip_tests::origin::spawn()?;
//! let body = roundtrip_blocking::get(&format!("http://{addr}/small"))?
//!     .body_mut()
//!     .bytes(1024)?;
//! assert_eq!(&body[..], b"Hello, world!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread;

use crate::fixtures::pattern;

/// The body of `/small`.
pub const SMALL_BODY: &[u8] = b"Hello, world!";

/// Length of the body of `/64k`.
pub const BIG_LEN: usize = 64 * 1024;

/// The largest request head accepted; longer ones close the connection.
pub const MAX_HEAD: usize = 4096;

/// The canned responses, head and body in one buffer each.
struct Canned {
    small: Vec<u8>,
    big: Vec<u8>,
    not_found: Vec<u8>,
}

fn canned() -> &'static Canned {
    static CANNED: OnceLock<Canned> = OnceLock::new();
    CANNED.get_or_init(|| Canned {
        small: response(SMALL_BODY),
        big: response(&pattern(BIG_LEN)),
        not_found: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    })
}

fn response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The listen backlog asked for: the kernel caps it at
/// `net.core.somaxconn` (4096 on Linux since 5.4). `std`'s `bind` asks for
/// 128, and 10,000 clients connecting at once (`bench/many.sh`) then find
/// the accept queue full: the kernel drops their handshakes, and they
/// retry a second later.
pub const BACKLOG: i32 = 65_535;

/// Binds `127.0.0.1:0` (a free loopback port), listening with [`BACKLOG`].
pub fn bind() -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// How long a connection may stay silent before the origin closes it: far
/// beyond any benchmark's pause between requests.
const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves `listener` on the calling thread, one thread per connection, until
/// `accept` fails.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    let canned = canned();
    loop {
        let (stream, _) = listener.accept()?;
        thread::Builder::new()
            .name("origin-conn".into())
            .spawn(move || {
                // A connection ends at EOF or at the first error; either
                // way there is nobody to tell.
                let _ = serve_conn(stream, canned);
            })?;
    }
}

/// Starts the origin on a background thread of this process; returns its
/// address. It lives as long as the process.
pub fn spawn() -> io::Result<SocketAddr> {
    spawn_with("origin", serve)
}

/// Starts `serve` on a free loopback port, on a background thread named
/// `name`; returns the address.
fn spawn_with(name: &str, serve: fn(TcpListener) -> io::Result<()>) -> io::Result<SocketAddr> {
    let listener = bind()?;
    let addr = listener.local_addr()?;
    thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(listener))?;
    Ok(addr)
}

/// Serves `listener` on the calling thread with one event loop (mio, edge
/// triggered) for all its connections, until the listener fails.
///
/// With many connections this is the cheaper server: a request costs it a
/// `read(2)` and a `write(2)`, and one `epoll_wait` serves every connection
/// that became ready meanwhile, where [`serve`] also switches threads for
/// each request; and `/64k` goes out with `sendfile(2)` from a file holding
/// the response, which hands the kernel's pages to the socket instead of
/// copying 64 KiB per response. The thread switches and the copies made the
/// thread-per-connection origin the bottleneck at 64 and 256 requests in
/// flight (95-99% of its CPU while the mio backend ran), so those cells
/// measured the origin, not the client. At one connection [`serve`]'s
/// blocking read is cheaper.
pub fn serve_evented(listener: TcpListener) -> io::Result<()> {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let canned = canned();
    let mut conns: Vec<Option<EventedConn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                            ) =>
                        {
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let both = Interest::READABLE | Interest::WRITABLE;
                    // A connection that cannot be set up is dropped, not the
                    // server.
                    match stream
                        .set_nodelay(true)
                        .and_then(|()| poll.registry().register(&mut stream, Token(slot), both))
                    {
                        Ok(()) => conns[slot] = Some(EventedConn::new(stream)),
                        Err(_) => free.push(slot),
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                conn.drained = false;
            }
            // The event that says so is the only one: a half-closed client
            // is closed once its requests are answered.
            conn.peer_closed |= event.is_read_closed();
            // A connection ends at EOF or at the first error; either way
            // there is nobody to tell.
            if !conn.on_ready(canned).unwrap_or(false) {
                if let Some(mut conn) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(slot);
            }
        }
    }
}

/// The `/64k` response in a file, for `sendfile(2)`: a new file in the
/// temporary directory (never an existing one), written, and its name
/// removed at once. `None` where that fails (the response is then written
/// from memory).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn big_file() -> Option<&'static std::fs::File> {
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let name = format!(
            "roundtrip-origin-{}-{:?}",
            std::process::id(),
            std::time::Instant::now()
        );
        let path =
            std::env::temp_dir().join(name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
        let mut options = std::fs::OpenOptions::new();
        let made = options.read(true).write(true).create_new(true).open(&path);
        let file = made.and_then(|mut file| file.write_all(&canned().big).map(|()| file));
        let _ = std::fs::remove_file(&path);
        file.ok()
    })
    .as_ref()
}

/// Sends up to `len` bytes of the `/64k` response from offset `at` with
/// `sendfile(2)`; `None` where there is no file or the kernel refuses
/// sendfile for it (the caller writes from memory then).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_big(socket: &mio::net::TcpStream, at: usize, len: usize) -> Option<io::Result<usize>> {
    use std::os::fd::AsRawFd;
    let file = big_file()?;
    let mut offset = libc::off_t::try_from(at).ok()?;
    // SAFETY: both descriptors are open for the call (borrowed), and
    // `offset` is a valid `off_t` the call may update.
    let sent = unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut offset, len) };
    match usize::try_from(sent) {
        Ok(sent) => Some(Ok(sent)),
        Err(_) => match io::Error::last_os_error() {
            e if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => None,
            e => Some(Err(e)),
        },
    }
}

/// Elsewhere the response is written from memory.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_big(_: &mio::net::TcpStream, _: usize, _: usize) -> Option<io::Result<usize>> {
    None
}

/// One connection of [`serve_evented`].
struct EventedConn {
    stream: mio::net::TcpStream,
    buf: Box<[u8; MAX_HEAD]>,
    len: usize,
    /// The answer being written, and how much of it went out.
    pending: Option<(&'static [u8], usize)>,
    /// The last read found the socket empty: wait for its next readable
    /// event (edge triggered: new bytes raise one).
    drained: bool,
    /// An event said the client shut its side.
    peer_closed: bool,
}

impl EventedConn {
    fn new(stream: mio::net::TcpStream) -> Self {
        EventedConn {
            stream,
            buf: Box::new([0; MAX_HEAD]),
            len: 0,
            pending: None,
            drained: false,
            peer_closed: false,
        }
    }

    /// Writes what is pending, answers the buffered heads in order, reads
    /// more; until the socket would block. `Ok(false)`: close it.
    fn on_ready(&mut self, canned: &'static Canned) -> io::Result<bool> {
        loop {
            while let Some((bytes, at)) = &mut self.pending {
                let big = std::ptr::eq(*bytes, &canned.big[..]);
                let sent = match big.then(|| send_big(&self.stream, *at, bytes.len() - *at)) {
                    Some(Some(sent)) => sent,
                    _ => self.stream.write(&bytes[*at..]),
                };
                match sent {
                    Ok(0) => return Ok(false),
                    Ok(n) => *at += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if *at == bytes.len() {
                    self.pending = None;
                }
            }
            if let Some(end) = head_end(&self.buf[..self.len]) {
                self.pending = Some((answer(&self.buf[..end], canned), 0));
                self.buf.copy_within(end..self.len, 0);
                self.len -= end;
                continue;
            }
            if self.len == MAX_HEAD {
                return Ok(false); // head too large: close
            }
            if self.drained {
                // Everything asked was answered and written.
                return Ok(!self.peer_closed);
            }
            let room = MAX_HEAD - self.len;
            match self.stream.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.len += n;
                    // TCP hands over all it holds, up to the room given.
                    self.drained = n < room;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Starts [`serve_evented`] on a background thread of this process;
/// returns its address.
pub fn spawn_evented() -> io::Result<SocketAddr> {
    spawn_with("origin-evented", serve_evented)
}

/// Answers the requests of one connection until the client closes it.
fn serve_conn(mut stream: TcpStream, canned: &'static Canned) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // A client that leaves a connection open and silent (a leaked one)
    // does not hold this thread for the life of the process.
    stream.set_read_timeout(Some(IDLE_LIMIT))?;
    let mut buf = [0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        // Answer every complete head in the buffer, then keep the rest.
        let mut start = 0;
        while let Some(end) = head_end(&buf[start..len]) {
            stream.write_all(answer(&buf[start..start + end], canned))?;
            start += end;
        }
        buf.copy_within(start..len, 0);
        len -= start;
        if len == buf.len() {
            return Ok(()); // head too large: close
        }
    }
}

/// The length of the first complete head in `bytes` (through `\r\n\r\n`).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// The canned response for a request head.
fn answer(head: &[u8], canned: &'static Canned) -> &'static [u8] {
    if head.starts_with(b"GET /small ") {
        &canned.small
    } else if head.starts_with(b"GET /64k ") {
        &canned.big
    } else {
        &canned.not_found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one response of a known total length.
    fn read_exact_len(stream: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        stream.read_exact(&mut out).expect("read a whole response");
        out
    }

    #[test]
    fn answers_keep_alive_and_pipelined_requests() {
        answers_keep_alive_and_pipelined(spawn().expect("start the origin"));
        answers_keep_alive_and_pipelined(spawn_evented().expect("start the evented origin"));
    }

    fn answers_keep_alive_and_pipelined(addr: SocketAddr) {
        let mut stream = TcpStream::connect(addr).expect("connect to the origin");
        let canned = canned();
        stream
            .write_all(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        assert_eq!(
            read_exact_len(&mut stream, canned.small.len()),
            canned.small
        );
        // Two pipelined requests, the second split across writes.
        stream
            .write_all(b"GET /64k HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n")
            .expect("write");
        stream.write_all(b"Host: x\r\n\r\n").expect("write");
        let big = read_exact_len(&mut stream, canned.big.len());
        assert!(big.ends_with(&pattern(BIG_LEN)));
        assert!(big.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let missing = read_exact_len(&mut stream, canned.not_found.len());
        assert_eq!(missing, canned.not_found);
    }

    /// A client that shuts its side after its request gets the answer and
    /// then the server's close, from both origins; the evented one keeps
    /// serving while connections come and go (its slots are reused).
    #[test]
    fn answers_then_closes_a_half_closed_client() {
        for addr in [
            spawn().expect("origin"),
            spawn_evented().expect("evented origin"),
        ] {
            for _ in 0..20 {
                let mut stream = TcpStream::connect(addr).expect("connect to the origin");
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .expect("read timeout");
                stream
                    .write_all(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
                    .expect("write");
                stream
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shut the write side");
                let mut all = Vec::new();
                stream.read_to_end(&mut all).expect("the answer, then EOF");
                assert_eq!(all, canned().small, "{addr}");
            }
        }
    }

    #[test]
    fn serves_the_roundtrip_client() {
        serves_the_client(spawn().expect("start the origin"));
        serves_the_client(spawn_evented().expect("start the evented origin"));
    }

    fn serves_the_client(addr: SocketAddr) {
        let client = roundtrip_blocking::Client::new();
        for _ in 0..3 {
            let mut response = client
                .get(format!("http://{addr}/small"))
                .send()
                .expect("GET /small");
            let body = response.body_mut().bytes(1024).expect("body");
            assert_eq!(&body[..], SMALL_BODY);
        }
        let stats = client.stats();
        assert_eq!(stats.dials, 1, "{stats:?}");
    }
}
