//! One pooled connection: the socket beside its [`Link`], and the socket
//! operations the driver needs (dial, write, read, probe). Each reports to
//! the exchange; none decides anything.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant as StdInstant};

use roundtrip_io::Clock;
use roundtrip_io::exchange::{Exchange, Link};
use roundtrip_io::sys::Ready;
use socket2::{Domain, Protocol, Socket, Type};

/// How often a dial waiting on its connects looks whether the request
/// was cancelled.
pub(crate) const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A connection as the pool keeps it. It travels boxed between the pool,
/// the exchange and the response body: every hand-over moves a pointer.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub link: Link,
    /// The number a request's `Cancel` watches this socket under (0:
    /// none), here rather than in the flow, which is moved with each body.
    pub watched: u64,
    /// The receive timeout currently set on the socket.
    read_timeout: Option<Duration>,
}

roundtrip_io::impl_pool_link!(Box<Conn>, stream);

/// What a wait on the socket ended with.
enum Waited {
    /// Bytes (`n`) were appended to the read buffer, or the server closed.
    Read(usize),
    /// The socket can take bytes.
    Writable,
    /// The deadline passed.
    TimedOut,
}

/// The connects of one dial under way (Happy Eyeballs: the exchange says
/// when to start and abort each): non-blocking sockets, waited on together.
#[derive(Debug, Default)]
pub(crate) struct Attempts(Vec<(SocketAddr, Socket)>);

impl Attempts {
    /// Starts connecting to `addr`; an error is a connect that failed at
    /// once.
    pub fn start(&mut self, addr: SocketAddr) -> io::Result<()> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if roundtrip_io::sys::is_in_progress(&e) => {}
            Err(e) => return Err(e),
        }
        self.0.push((addr, socket));
        Ok(())
    }

    /// Closes the attempt to `addr`.
    pub fn abort(&mut self, addr: SocketAddr) {
        self.0.retain(|(a, _)| *a != addr);
    }

    /// Waits until one connect ended, at most until `until`, looking at
    /// `cancelled` every [`CANCEL_CHECK`] meanwhile: the address and the
    /// connected stream (blocking again) or why it failed; `None` at the
    /// deadline or once cancelled.
    pub fn wait(
        &mut self,
        until: Option<StdInstant>,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Option<(SocketAddr, io::Result<TcpStream>)> {
        if self.0.is_empty() {
            // Nothing to wait for: the machine's deadline or next step says
            // what comes (never a wait without end).
            return None;
        }
        // Bounded by `until`, or by the cancel check for a dial with no
        // deadline at all (each round waits `CANCEL_CHECK` at most).
        loop {
            let slice = cancelled.map(|_| StdInstant::now() + CANCEL_CHECK);
            let wake = match (until, slice) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let fds: Vec<BorrowedFd<'_>> = self.0.iter().map(|(_, s)| s.as_fd()).collect();
            let ended = roundtrip_io::sys::wait_connected(&fds, wake);
            drop(fds);
            let i = match ended {
                Ok(Some(i)) => i,
                Ok(None) if until.is_some_and(|at| StdInstant::now() >= at) => return None,
                Ok(None) if cancelled.is_some_and(|c| c()) => return None,
                Ok(None) => continue,
                // `poll` itself failed: the first attempt fails with it.
                Err(e) => {
                    let (addr, _) = self.0.swap_remove(0);
                    return Some((addr, Err(e)));
                }
            };
            let (addr, socket) = self.0.swap_remove(i);
            let connected = match socket.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => socket
                    .set_nonblocking(false)
                    .and_then(|()| socket.set_tcp_nodelay(true))
                    .map(|()| TcpStream::from(socket)),
            };
            return Some((addr, connected));
        }
    }
}

impl Conn {
    /// A new connection on `stream`, with its link.
    pub fn new(stream: TcpStream, link: Link) -> Box<Conn> {
        Box::new(Conn {
            stream,
            link,
            watched: 0,
            read_timeout: None,
        })
    }

    /// Runs the lookup the exchange asks for, bounded by its deadline:
    /// `None` when the deadline passed first.
    pub fn resolve<R>(
        ex: &Exchange<R>,
        clock: &Clock,
        cancelled: Option<&dyn Fn() -> bool>,
    ) -> Option<io::Result<Vec<SocketAddr>>> {
        let (host, port) = ex.lookup_target()?;
        let until = ex.poll_timeout(None).map(|at| clock.to_std(at));
        let resolver = &ex.settings().config.resolver;
        resolver.resolve_within(host, port, until, cancelled)
    }

    /// Writes what the link holds, once, taking what the socket has room
    /// for without waiting (one `send` or `sendmsg`). With `watch_read`,
    /// first waits for room to write or for an answer, whichever comes
    /// first (bytes of an answer are read into the buffer); without it
    /// (nothing of the request went out yet, so nothing can be its
    /// answer), a socket with no room is waited on for room only. Every
    /// wait ends at `until`: a blocking send would end at the socket's
    /// send timeout, which each signal starts again, and would not see
    /// an early `413` while a large body goes out.
    pub fn write(
        &mut self,
        watch_read: bool,
        until: Option<StdInstant>,
        now: StdInstant,
    ) -> io::Result<Written> {
        if watch_read {
            match self.wait(true, until, now)? {
                Waited::Read(n) => return Ok(Written::Answer(n)),
                Waited::TimedOut => return Ok(Written::TimedOut),
                Waited::Writable => {}
            }
        }
        let slices = self.link.wire_out();
        let written =
            roundtrip_io::sys::try_send(&self.stream, roundtrip_io::buf::with_bytes(&slices));
        match written {
            Ok(0) => Err(roundtrip_io::buf::write_zero()),
            Ok(n) => Ok(Written::Bytes(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !watch_read => {
                match roundtrip_io::sys::wait_writable(&self.stream, until)? {
                    true => Ok(Written::Bytes(0)),
                    false => Ok(Written::TimedOut),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Written::Bytes(0)),
            Err(e) => Err(e),
        }
    }

    /// Waits for readability (and writability, with `write`) until
    /// `until`, reading what arrived.
    fn wait(
        &mut self,
        write: bool,
        until: Option<StdInstant>,
        now: StdInstant,
    ) -> io::Result<Waited> {
        if write {
            match roundtrip_io::sys::wait_read_or_write(&self.stream, until)? {
                Ready::Writable => return Ok(Waited::Writable),
                Ready::TimedOut => return Ok(Waited::TimedOut),
                Ready::Readable => {}
            }
        }
        self.link.reserve_read();
        self.set_read_timeout(until, now)?;
        let (stream, link) = (&self.stream, &mut self.link);
        Ok(
            match read_once(|| roundtrip_io::sys::read_into_spare(stream, link.wire_in()))? {
                Some(n) => Waited::Read(n),
                None => Waited::TimedOut,
            },
        )
    }

    /// Reads once into the link's buffer, waiting at most until `until`:
    /// `Some(n)` bytes (0 = the server closed), `None` at the deadline
    /// (or early, a signal having cut the wait short: see `read_once`).
    pub fn read(
        &mut self,
        until: Option<StdInstant>,
        now: StdInstant,
    ) -> io::Result<Option<usize>> {
        match self.wait(false, until, now)? {
            Waited::Read(n) => Ok(Some(n)),
            Waited::TimedOut | Waited::Writable => Ok(None),
        }
    }

    /// Reads once into `out` (body bytes the exchange lets skip the read
    /// buffer), with `tail` on into the link's buffer
    /// ([`Link::tail_room`]) in the same `readv`, waiting at most until
    /// `until`: `Some((direct, buffered))` bytes (`(0, 0)` = the server
    /// closed; `buffered` is `None` without `tail`), `None` at the
    /// deadline (or early, cut short by a signal).
    ///
    /// [`Link::tail_room`]: roundtrip_io::exchange::Link::tail_room
    pub fn read_direct(
        &mut self,
        out: &mut [u8],
        tail: bool,
        until: Option<StdInstant>,
        now: StdInstant,
    ) -> io::Result<Option<(usize, Option<usize>)>> {
        self.set_read_timeout(until, now)?;
        let stream = &self.stream;
        if !tail {
            return read_once(|| Ok((Read::read(&mut &*stream, out)?, None)));
        }
        let rest = self.link.tail_room();
        read_once(|| roundtrip_io::sys::read_scatter(stream, out, rest).map(|(a, b)| (a, Some(b))))
    }

    /// Reads once into the spare capacity of `out` (at most `want` bytes,
    /// see [`roundtrip_io::buf::direct_vec_len`]) and appends what came, with `tail` on into
    /// the link's buffer: as [`read_direct`](Self::read_direct). `out` is
    /// grown first to take `want`.
    pub fn read_direct_vec(
        &mut self,
        out: &mut Vec<u8>,
        want: usize,
        tail: bool,
        until: Option<StdInstant>,
        now: StdInstant,
    ) -> io::Result<Option<(usize, Option<usize>)>> {
        if out.capacity() - out.len() < want {
            out.try_reserve(want)?;
        }
        self.set_read_timeout(until, now)?;
        let stream = &self.stream;
        if !tail {
            return read_once(|| Ok((roundtrip_io::sys::read_into_vec(stream, out, want)?, None)));
        }
        let rest = self.link.tail_room();
        read_once(|| {
            roundtrip_io::sys::read_scatter_vec(stream, out, want, rest).map(|(a, b)| (a, Some(b)))
        })
    }

    /// Sets `SO_RCVTIMEO` only when what is set would fire after the
    /// deadline, or far before it: a timeout that fires early is re-checked
    /// by the exchange, so the option is set an eighth short of the wait
    /// (a keep-alive loop's next wait, a little longer, keeps it: no
    /// syscall per read) and a deadline is never passed by more than the
    /// wake-up.
    // Inlined into each read: out of line (three callers) it cost 30
    // instructions per GET.
    #[inline(always)]
    fn set_read_timeout(&mut self, until: Option<StdInstant>, now: StdInstant) -> io::Result<()> {
        // A deadline already passed waits a millisecond, then the exchange
        // hears the timeout. `now` is the caller's, read after its last
        // wait: the work since then (no wait) makes the timeout that much
        // longer, and the exchange checks its deadline again anyway.
        let want = until.map(|at| {
            at.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        let off = match (self.read_timeout, want) {
            (_, None) => self.read_timeout.is_some(),
            (None, Some(_)) => true,
            (Some(set), Some(want)) => set > want || set + set / 2 < want,
        };
        if off {
            let set = want.map(short_of);
            self.stream.set_read_timeout(set)?;
            self.read_timeout = set;
        }
        Ok(())
    }

    /// Without blocking, asks the kernel whether the server closed this idle
    /// connection or sent bytes on it.
    pub fn is_stale(&self) -> bool {
        roundtrip_io::sys::is_stale(&self.stream)
    }
}

/// A socket timeout for a wait of `want`: an eighth short of it (see
/// [`Conn::set_read_timeout`]), at least half a millisecond (`std`
/// refuses 0).
fn short_of(want: Duration) -> Duration {
    (want - want / 8).max(Duration::from_micros(500))
}

/// One read: `Some(n)` bytes (0 = the server closed), `None` when the
/// socket's read timeout expired or a signal cut the wait short. Not
/// retried here: Linux fails a read under a receive timeout with `EINTR`
/// at any signal, even under `SA_RESTART`, and a retry would start the
/// timeout again (signals more often than it would hold the read for
/// ever). The caller's loop hears "no bytes", checks its deadlines and
/// waits again for what is left of them.
#[inline(always)]
fn read_once<T>(read: impl FnOnce() -> io::Result<T>) -> io::Result<Option<T>> {
    match read() {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => Ok(None),
        Err(e) => Err(e),
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
/// Over `https` the TLS session goes on: reads give its plaintext, writes
/// are sealed into its records (flush sends any that wait), and
/// [`close_notify`](roundtrip_io::drive::Upgraded::close_notify) ends it.
/// `into_parts` gives the socket and the bytes of an `http` connection.
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
pub type Upgraded = roundtrip_io::drive::Upgraded<TcpStream>;
