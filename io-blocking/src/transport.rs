//! One pooled connection: the socket beside its [`Link`], and the socket
//! operations the driver needs (dial, write, read, probe). Each reports to
//! the exchange; none decides anything.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use roundtrip_io::resolve::Lookup;
use std::time::{Duration, Instant as StdInstant};

use roundtrip_io::Clock;
use roundtrip_io::exchange::{Exchange, Link};
use roundtrip_io::proto::pool::DialPermit;
use roundtrip_io::sys::Ready;

/// A connection as the pool keeps it. It travels boxed between the pool,
/// the exchange and the response body: every hand-over moves a pointer.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub link: Link,
    /// The receive timeout currently set on the socket.
    read_timeout: Option<Duration>,
    /// The send timeout currently set on the socket.
    write_timeout: Option<Duration>,
}

roundtrip_io::impl_pool_link!(Box<Conn>);

/// What a wait on the socket ended with.
enum Waited {
    /// Bytes (`n`) were appended to the read buffer, or the server closed.
    Read(usize),
    /// The socket can take bytes.
    Writable,
    /// The deadline passed.
    TimedOut,
}

/// Looks `host` up on a thread of its own and waits at most until
/// `until`: a resolver that hangs cannot hold the request past its
/// deadline (`None` then; the thread ends when the lookup does).
fn resolve_until(
    settings: &roundtrip_io::exchange::Settings,
    host: &str,
    port: u16,
    until: Option<StdInstant>,
) -> Option<io::Result<Vec<std::net::SocketAddr>>> {
    let resolver = settings.config.resolver.clone();
    let Some(until) = until else {
        return Some(resolver.resolve_blocking(host, port));
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let name = host.to_string();
    let spawned = std::thread::Builder::new()
        .name("roundtrip-dns".into())
        .spawn(move || {
            let _ = tx.send(resolver.resolve_blocking(&name, port));
        });
    if spawned.is_err() {
        return Some(settings.config.resolver.resolve_blocking(host, port));
    }
    let left = until.saturating_duration_since(StdInstant::now());
    rx.recv_timeout(left).ok()
}

impl Conn {
    /// Dials the exchange's host: each resolved address in turn, each
    /// bounded by the exchange's deadline. Reports every attempt and the
    /// outcome to the exchange.
    pub fn dial<R>(
        ex: &mut Exchange<R>,
        permit: &DialPermit,
        clock: &Clock,
    ) -> Result<Box<Conn>, Option<(String, io::Error)>> {
        let key = permit.key().clone();
        let (host, port) = key.dial_addr();
        let addr = format!("{host}:{port}");
        let addrs = match ex.lookup(host, port) {
            Lookup::Ready(addrs) => addrs,
            Lookup::Blocking => {
                let until = ex.poll_timeout(None).map(|at| clock.to_std(at));
                let Some(resolved) = resolve_until(ex.settings(), host, port, until) else {
                    let timed_out = io::Error::from(io::ErrorKind::TimedOut);
                    ex.handle_resolved(Err(&timed_out));
                    return Err(None); // the deadline passed first
                };
                ex.handle_resolved(resolved.as_deref());
                resolved.map_err(|e| Some((addr.clone(), e)))?
            }
        };
        let write_timeout = ex.settings().config.write_timeout;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
        for sock_addr in addrs {
            ex.handle_connect_start(sock_addr, clock.now());
            let until = ex.poll_timeout(None).map(|at| clock.to_std(at));
            let left = until.map(|at| at.saturating_duration_since(StdInstant::now()));
            let result = match left {
                Some(left) if left.is_zero() => Err(io::ErrorKind::TimedOut.into()),
                Some(left) => TcpStream::connect_timeout(&sock_addr, left),
                None => TcpStream::connect(sock_addr),
            }
            .and_then(|stream| {
                stream.set_nodelay(true)?;
                stream.set_write_timeout(write_timeout)?;
                Ok(stream)
            });
            ex.handle_connect_done(sock_addr, result.as_ref().map(|_| ()));
            match result {
                Ok(stream) => {
                    let link = Link::new(permit.id(), key, &ex.settings().config);
                    return Ok(Box::new(Conn {
                        stream,
                        link,
                        read_timeout: None,
                        write_timeout,
                    }));
                }
                // The exchange's deadline passed: its timer says which. A
                // kernel timeout before it is a failed address like others.
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        && until.is_some_and(|at| at <= StdInstant::now()) =>
                {
                    return Err(None);
                }
                Err(e) => last = e,
            }
        }
        Err(Some((addr, last)))
    }

    /// Writes what the link holds, once (one `write` or `writev`). With
    /// `watch_read`, waits for room to write or for an answer, whichever
    /// comes first; bytes of an answer are read into the buffer.
    pub fn write(&mut self, watch_read: bool, until: Option<StdInstant>) -> io::Result<Written> {
        if watch_read {
            match self.wait(true, until)? {
                Waited::Read(n) => return Ok(Written::Answer(n)),
                Waited::TimedOut => return Ok(Written::TimedOut),
                Waited::Writable => {}
            }
        }
        // A blocking write ends at the exchange's deadline too (the request's
        // total timeout may come before the write timeout).
        if !watch_read {
            self.set_write_timeout(until)?;
        }
        // Watching, the write must not block on a server that stopped
        // reading: it takes what fits and the wait above comes again.
        if watch_read {
            self.stream.set_nonblocking(true)?;
        }
        let slices = self.link.wire_out();
        let written = match roundtrip_io::buf::with_bytes(&slices) {
            [one] => self.stream.write(one),
            several => self.stream.write_vectored(several),
        };
        if watch_read {
            self.stream.set_nonblocking(false)?;
        }
        match written {
            Err(e) if watch_read && e.kind() == io::ErrorKind::WouldBlock => Ok(Written::Bytes(0)),
            Ok(0) => Err(roundtrip_io::buf::write_zero()),
            Ok(n) => Ok(Written::Bytes(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Written::Bytes(0)),
            Err(e) if is_timeout(&e) => Ok(Written::TimedOut),
            Err(e) => Err(e),
        }
    }

    /// Waits for readability (and writability, with `write`) until
    /// `until`, reading what arrived.
    fn wait(&mut self, write: bool, until: Option<StdInstant>) -> io::Result<Waited> {
        if write {
            match roundtrip_io::sys::wait_read_or_write(&self.stream, until)? {
                Ready::Writable => return Ok(Waited::Writable),
                Ready::TimedOut => return Ok(Waited::TimedOut),
                Ready::Readable => {}
            }
        }
        self.link.reserve_read();
        self.set_read_timeout(until)?;
        // Bounded: only `Interrupted` repeats.
        loop {
            match roundtrip_io::sys::read_into_spare(&self.stream, self.link.wire_in()) {
                Ok(n) => return Ok(Waited::Read(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Ok(Waited::TimedOut),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once into the link's buffer, waiting at most until `until`:
    /// `Some(n)` bytes (0 = the server closed), `None` at the deadline.
    pub fn read(&mut self, until: Option<StdInstant>) -> io::Result<Option<usize>> {
        match self.wait(false, until)? {
            Waited::Read(n) => Ok(Some(n)),
            Waited::TimedOut | Waited::Writable => Ok(None),
        }
    }

    /// Sets `SO_RCVTIMEO` only when it must be shorter than what is set: a
    /// timeout that fires early is re-checked by the exchange, so the
    /// option is not rewritten (a syscall) on every read.
    fn set_read_timeout(&mut self, until: Option<StdInstant>) -> io::Result<()> {
        // A deadline already passed waits a millisecond, then the exchange
        // hears the timeout.
        let want = until.map(|at| {
            at.saturating_duration_since(StdInstant::now())
                .max(Duration::from_millis(1))
        });
        let too_long = match (self.read_timeout, want) {
            (_, None) => self.read_timeout.is_some(),
            (None, Some(_)) => true,
            (Some(set), Some(want)) => set > want + want / 8 || set + set / 2 < want,
        };
        if too_long {
            self.stream.set_read_timeout(want)?;
            self.read_timeout = want;
        }
        Ok(())
    }

    /// Sets `SO_SNDTIMEO` to what is left until `until`, only when that must
    /// be shorter than what is set (no syscall per write otherwise).
    fn set_write_timeout(&mut self, until: Option<StdInstant>) -> io::Result<()> {
        let Some(at) = until else { return Ok(()) };
        let want = at
            .saturating_duration_since(StdInstant::now())
            .max(Duration::from_millis(1));
        let too_long = self
            .write_timeout
            .is_none_or(|set| set > want + want / 8 || set + set / 2 < want);
        if too_long {
            self.stream.set_write_timeout(Some(want))?;
            self.write_timeout = Some(want);
        }
        Ok(())
    }

    /// Without blocking, asks the kernel whether the server closed this idle
    /// connection or sent bytes on it.
    pub fn is_stale(&self) -> bool {
        roundtrip_io::sys::is_stale(&self.stream)
    }
}

/// What one write attempt did.
pub(crate) enum Written {
    /// The socket took this many bytes.
    Bytes(usize),
    /// An answer arrived first: this many bytes (0 = the server closed).
    Answer(usize),
    /// The deadline passed.
    TimedOut,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connection switched to another protocol (101, or 2xx to CONNECT),
/// handed over: the bytes that came after the head first, then the socket.
///
/// ```no_run
/// use std::io::{Read, Write};
/// let client = roundtrip_blocking::Client::new();
/// let response = client
///     .get("http://127.0.0.1:8080/chat")
///     .header("connection", "upgrade")
///     .header("upgrade", "websocket")
///     .send()?;
/// assert_eq!(response.status(), 101);
/// let mut stream = response.into_body().upgrade()?;
/// stream.write_all(b"hello")?;
/// let mut buf = [0u8; 5];
/// stream.read_exact(&mut buf)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Upgraded {
    leftover: bytes::Bytes,
    stream: TcpStream,
}

impl Upgraded {
    pub(crate) fn new(leftover: bytes::Bytes, stream: TcpStream) -> Upgraded {
        Upgraded { leftover, stream }
    }

    /// The socket and the bytes read past the head that are not yet
    /// returned by [`Read`].
    pub fn into_parts(self) -> (TcpStream, bytes::Bytes) {
        (self.stream, self.leftover)
    }
}

impl Read for Upgraded {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.leftover.is_empty() {
            return self.stream.read(out);
        }
        let n = out.len().min(self.leftover.len());
        out[..n].copy_from_slice(&self.leftover.split_to(n));
        Ok(n)
    }
}

impl Write for Upgraded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.stream.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
