//! One pooled connection: the socket beside its [`Link`], and the socket
//! operations the driver needs (dial, write, read, probe). Each reports to
//! the exchange; none decides anything.

use std::io::{self, Read, Write};
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
    /// The send timeout currently set on the socket.
    write_timeout: Option<Duration>,
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
    pub fn new(
        stream: TcpStream,
        link: Link,
        write_timeout: Option<Duration>,
    ) -> io::Result<Box<Conn>> {
        // `std` refuses a zero timeout: a millisecond, then the exchange
        // hears its deadline passed.
        let write_timeout = write_timeout.map(|d| d.max(Duration::from_millis(1)));
        stream.set_write_timeout(write_timeout)?;
        Ok(Box::new(Conn {
            stream,
            link,
            watched: 0,
            read_timeout: None,
            write_timeout,
        }))
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

    /// Writes what the link holds, once (one `write` or `writev`). With
    /// `watch_read`, waits for room to write or for an answer, whichever
    /// comes first; bytes of an answer are read into the buffer.
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
        // A blocking write ends at the exchange's deadline too (the request's
        // total timeout may come before the write timeout).
        if !watch_read {
            self.set_write_timeout(until, now)?;
        }
        // Watching, the write must not block on a server that stopped
        // reading: it takes what fits and the wait above comes again.
        if watch_read {
            self.stream.set_nonblocking(true)?;
        }
        // Not watching for an answer (nothing went out yet): a blocking
        // write of a large in-memory body would hold the request until the
        // socket took it all, deaf to an early `413` meanwhile; a bounded
        // first write returns, and the writes after it watch.
        let slices = match watch_read {
            true => self.link.wire_out(),
            false => self.link.wire_out_upto(BLIND_WRITE_MAX),
        };
        let written = match roundtrip_io::buf::with_bytes(&slices) {
            [one] => self.stream.write(one),
            // `sendmsg(MSG_NOSIGNAL)`: no SIGPIPE on a reset socket.
            several => roundtrip_io::sys::send_vectored(&self.stream, several),
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
    /// `Some(n)` bytes (0 = the server closed), `None` at the deadline.
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
    /// deadline.
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

    /// Sets `SO_SNDTIMEO` for what is left until `until`, as
    /// [`set_read_timeout`](Self::set_read_timeout) does `SO_RCVTIMEO`
    /// (none without a deadline: a short one left by an earlier request
    /// would wake every write for nothing).
    fn set_write_timeout(&mut self, until: Option<StdInstant>, now: StdInstant) -> io::Result<()> {
        let Some(at) = until else {
            if self.write_timeout.is_some() {
                self.stream.set_write_timeout(None)?;
                self.write_timeout = None;
            }
            return Ok(());
        };
        let want = at
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        let off = self
            .write_timeout
            .is_none_or(|set| set > want || set + set / 2 < want);
        if off {
            let set = short_of(want);
            self.stream.set_write_timeout(Some(set))?;
            self.write_timeout = Some(set);
        }
        Ok(())
    }

    /// Without blocking, asks the kernel whether the server closed this idle
    /// connection or sent bytes on it.
    pub fn is_stale(&self) -> bool {
        roundtrip_io::sys::is_stale(&self.stream)
    }
}

/// The most one write takes without watching for an answer: a request's
/// head and the start of its body (every later write watches).
const BLIND_WRITE_MAX: usize = 256 * 1024;

/// A socket timeout for a wait of `want`: an eighth short of it (see
/// [`Conn::set_read_timeout`]), at least half a millisecond (`std`
/// refuses 0).
fn short_of(want: Duration) -> Duration {
    (want - want / 8).max(Duration::from_micros(500))
}

/// One read, retried when interrupted: `Some(n)` bytes (0 = the server
/// closed), `None` when the socket's read timeout expired.
#[inline(always)]
fn read_once<T>(mut read: impl FnMut() -> io::Result<T>) -> io::Result<Option<T>> {
    // Bounded: only `Interrupted` repeats.
    loop {
        match read() {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
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
