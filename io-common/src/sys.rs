//! Not part of the public API; used by the backends.
//!
//! The non-blocking socket probes every backend needs, and the reads
//! into uninitialized memory of the blocking one, in one place (the
//! crate's libc calls, each on a borrowed fd). Linux only, as the crate
//! is built and tested: `MSG_NOSIGNAL` and the `msghdr` field types are
//! Linux's.

use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;

/// Without blocking, asks the kernel whether the peer closed this idle
/// connection or sent bytes on it; either makes it unusable for a new
/// request. One `recv(MSG_PEEK | MSG_DONTWAIT)`; nothing is consumed.
pub fn is_stale(socket: &impl AsFd) -> bool {
    let fd = socket.as_fd().as_raw_fd();
    let mut byte = 0u8;
    // Bounded: only a signal repeats it (a recv that does not wait is not
    // expected to see one, but an answer must not come from it).
    loop {
        // SAFETY: `byte` is a valid one-byte buffer for the duration of the
        // call, and `fd` is borrowed from a live socket that outlives it.
        let n = unsafe {
            libc::recv(
                fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return false,
                _ => return true,
            }
        }
        return true; // 0: EOF; > 0: bytes nobody asked for
    }
}

/// Writes what of `bufs` the socket takes now, without waiting: one
/// `send` (one slice) or `sendmsg` (several), with `MSG_DONTWAIT` and
/// `MSG_NOSIGNAL`. `WouldBlock` when it has no room; the caller waits
/// with a deadline of its own ([`wait_writable`],
/// [`wait_read_or_write`]). Never a blocking send: a socket's send
/// timeout starts again after each signal (Linux fails such a send with
/// `EINTR` even under `SA_RESTART`), and a blocking send of a large body
/// is deaf to the server's early answer. Nor `SIGPIPE` on a socket the
/// peer reset (std's `write_vectored` is a `writev`, which raises it,
/// killing a host that left the signal at its default).
pub fn try_send(socket: &impl AsFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // Bounded: only `EINTR` repeats, and a send that does not wait is
    // not expected to see one.
    loop {
        let n = match bufs {
            // SAFETY: `one` is valid for the call; the fd is borrowed from a
            // live socket that outlives it.
            [one] => unsafe { libc::send(fd, one.as_ptr().cast(), one.len(), flags) },
            _ => {
                // SAFETY: an all-zero `msghdr` is valid (no name, no control data).
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                // `IoSlice` is ABI-compatible with `iovec` on Unix (std
                // documents it), and the kernel only reads through `msg_iov`
                // for a send.
                msg.msg_iov = bufs.as_ptr().cast_mut().cast();
                // Linux takes at most `UIO_MAXIOV` (1024) slices: more is a
                // short write.
                msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
                // SAFETY: `msg` points at `bufs`, valid for the call; the fd
                // is borrowed from a live socket that outlives it.
                unsafe { libc::sendmsg(fd, &msg, flags) }
            }
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Sends `bytes` if the socket takes them now, in one
/// `send(MSG_DONTWAIT | MSG_NOSIGNAL)`, ignoring failure: a goodbye
/// before a close ([`Link::goodbye`](crate::exchange::Link::goodbye)),
/// which must neither wait nor raise `SIGPIPE` on a socket the peer reset.
pub fn send_nowait(socket: &impl AsFd, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // Bounded: only `EINTR` repeats, and a signal interrupts finitely often.
    for _ in 0..4 {
        // SAFETY: `bytes` is valid for the call; the fd is borrowed from a
        // live socket that outlives it.
        let n = unsafe {
            libc::send(
                socket.as_fd().as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                flags,
            )
        };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// A read given no room: `read(2)` would return 0, which reads as the
/// peer's end. A caller's bug, reported as one instead.
fn no_room() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "a read into no room")
}

/// Without blocking, tells whether bytes (or EOF) are waiting to be read.
/// One `poll` with a zero timeout.
pub fn is_readable(socket: &impl AsFd) -> bool {
    let mut fd = libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; timeout 0.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents != 0
}

/// Reads from `socket` straight into the spare capacity of `buf`, without
/// zeroing it first; returns the bytes read (0 = EOF). One `read(2)`.
pub fn read_into_spare(socket: &impl AsFd, buf: &mut bytes::BytesMut) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    let spare = buf.spare_capacity_mut();
    if spare.is_empty() {
        return Err(no_room());
    }
    // SAFETY: `read(2)` only writes into the memory it is given and never
    // reads the uninitialized bytes; we pass the spare capacity's pointer and
    // length, and `fd` is borrowed from a live socket.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialized `n` bytes past the current length, and
    // `n <= spare.len()`, so the new length is within capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Reads from `socket` straight into the spare capacity of `buf` (at most
/// `max` bytes), without zeroing it first; returns the bytes read and
/// appended (0 = EOF). One `read(2)`.
///
/// ```
/// use std::io::Write;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// client.write_all(b"hello")?;
/// let mut buf = Vec::with_capacity(16);
/// buf.push(b'>');
/// let n = roundtrip_io::sys::read_into_vec(&server, &mut buf, 3)?;
/// assert_eq!((n, &buf[..]), (3, &b">hel"[..]));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_into_vec(socket: &impl AsFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    if len == 0 {
        return Err(no_room());
    }
    // SAFETY: `read(2)` only writes into the memory it is given and never
    // reads the uninitialized bytes; we pass the spare capacity's pointer
    // and at most its length, and `fd` is borrowed from a live socket.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialized `n <= len` bytes past the current
    // length, within the capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Reads from `socket` into `first`, and on into the spare capacity of
/// `rest` (appended to it), in one `readv(2)`: returns how many bytes went
/// into each (`(0, 0)` = EOF, given room in either part: `first` not
/// empty or `rest` with spare capacity). What the socket holds past
/// `first` is in `rest` after the call, up to its room: a body read into
/// the caller's memory also shows what followed it.
///
/// ```
/// use std::io::Write;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// client.write_all(b"hello, world")?;
/// let mut first = [0; 5];
/// let mut rest = bytes::BytesMut::with_capacity(64);
/// let mut got = (0, 0);
/// // Bounded: loopback delivers the twelve bytes at once or in two reads.
/// for _ in 0..2 {
///     let (a, b) = roundtrip_io::sys::read_scatter(&server, &mut first[got.0..], &mut rest)?;
///     got = (got.0 + a, got.1 + b);
///     if got.1 == 7 { break; }
/// }
/// assert_eq!((&first[..], &rest[..]), (&b"hello"[..], &b", world"[..]));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_scatter(
    socket: &impl AsFd,
    first: &mut [u8],
    rest: &mut bytes::BytesMut,
) -> io::Result<(usize, usize)> {
    // SAFETY: `first` is memory we may write (`readv(2)` writes only
    // bytes it read into it, never reads it), `first.len()` long.
    unsafe { readv_two(socket, first.as_mut_ptr(), first.len(), rest) }
}

/// [`read_scatter`] with the spare capacity of `vec` (at most `max`
/// bytes) as the first part, appended to it.
///
/// ```
/// use std::io::Write;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// client.write_all(b"ab")?;
/// let mut vec = Vec::with_capacity(8);
/// let mut rest = bytes::BytesMut::with_capacity(8);
/// let (a, b) = roundtrip_io::sys::read_scatter_vec(&server, &mut vec, 1, &mut rest)?;
/// assert_eq!((a, &vec[..]), (1, &b"a"[..]));
/// assert!(b == 0 || &rest[..] == b"b");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_scatter_vec(
    socket: &impl AsFd,
    vec: &mut Vec<u8>,
    max: usize,
    rest: &mut bytes::BytesMut,
) -> io::Result<(usize, usize)> {
    let spare = vec.spare_capacity_mut();
    let len = spare.len().min(max);
    // SAFETY: the spare capacity is memory we may write, `len` at most its
    // length; `readv(2)` never reads the uninitialized bytes.
    let (a, b) = unsafe { readv_two(socket, spare.as_mut_ptr().cast(), len, rest)? };
    // SAFETY: the kernel initialized `a <= len` bytes past the length,
    // within the capacity.
    unsafe { vec.set_len(vec.len() + a) };
    Ok((a, b))
}

/// One `readv(2)` into `len` bytes at `first`, then the spare capacity of
/// `rest`, whose length grows by what went there.
///
/// # Safety
///
/// `first` must be valid for writes of `len` bytes.
unsafe fn readv_two(
    socket: &impl AsFd,
    first: *mut u8,
    len: usize,
    rest: &mut bytes::BytesMut,
) -> io::Result<(usize, usize)> {
    let fd = socket.as_fd().as_raw_fd();
    let spare = rest.spare_capacity_mut();
    if len == 0 && spare.is_empty() {
        return Err(no_room());
    }
    let iov = [
        libc::iovec {
            iov_base: first.cast(),
            iov_len: len,
        },
        libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        },
    ];
    // SAFETY: both parts are memory we may write, of their lengths (the
    // caller's promise for `first`, the spare capacity for `rest`), and
    // `fd` is borrowed from a live socket.
    let n = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    let (a, b) = (n.min(len), n.saturating_sub(len));
    // SAFETY: the kernel filled the first part before the second, so the
    // `b` bytes past `rest`'s length are initialized, within its capacity.
    unsafe { rest.set_len(rest.len() + b) };
    Ok((a, b))
}

/// The monotonic clock (`CLOCK_MONOTONIC`, the one `std::time::Instant`
/// reads on Linux) in nanoseconds.
///
/// ```
/// let (a, b) = (roundtrip_io::sys::monotonic_nanos(), roundtrip_io::sys::monotonic_nanos());
/// assert!(b >= a);
/// ```
#[inline]
pub fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` only writes the `timespec` it is given, and
    // `CLOCK_MONOTONIC` always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `poll`'s timeout for a wait until `until` (-1: none), rounded up so
/// that it never wakes before the deadline; `None` once it passed.
fn poll_timeout_ms(until: Option<std::time::Instant>) -> Option<i32> {
    let Some(at) = until else {
        return Some(-1);
    };
    let left = at.saturating_duration_since(std::time::Instant::now());
    (!left.is_zero()).then(|| left.as_micros().div_ceil(1000).clamp(1, i32::MAX as u128) as i32)
}

/// What a socket became ready for first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// Bytes (or EOF) to read: the server answered.
    Readable,
    /// Room to write.
    Writable,
    /// Neither before the deadline.
    TimedOut,
}

/// Waits until `socket` is readable or writable, at most until `until`. One
/// `poll` (repeated only if a signal interrupts it). For uploads on a
/// non-blocking socket: an early answer is seen even while the server has
/// stopped reading.
pub fn wait_read_or_write(
    socket: &impl AsFd,
    until: Option<std::time::Instant>,
) -> io::Result<Ready> {
    let Some(revents) = poll_one(socket, libc::POLLIN | libc::POLLOUT, until)? else {
        return Ok(Ready::TimedOut);
    };
    // Readable wins: an answer (or a close) matters more than room to write.
    if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
        return Ok(Ready::Readable);
    }
    Ok(Ready::Writable)
}

/// Waits until `socket` can take bytes (or has failed: the next send
/// says how), at most until `until`: false at the deadline. One `poll`
/// for `POLLOUT` only (repeated if a signal interrupts it, with what is
/// left of the wait): a request none of whose bytes went out has no
/// answer to read.
pub fn wait_writable(socket: &impl AsFd, until: Option<std::time::Instant>) -> io::Result<bool> {
    Ok(poll_one(socket, libc::POLLOUT, until)?.is_some())
}

/// One `poll` of `socket` for `events`, at most until `until`, repeated
/// when a signal interrupts it or it wakes early: the events seen, or
/// `None` at the deadline.
fn poll_one(
    socket: &impl AsFd,
    events: libc::c_short,
    until: Option<std::time::Instant>,
) -> io::Result<Option<libc::c_short>> {
    let fd = socket.as_fd().as_raw_fd();
    // Bounded by the deadline: each pass waits what is left of it.
    loop {
        let Some(timeout_ms) = poll_timeout_ms(until) else {
            return Ok(None);
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n > 0 {
            return Ok(Some(pfd.revents));
        }
        if until.is_some_and(|at| std::time::Instant::now() >= at) {
            return Ok(None);
        }
    }
}

/// Waits until the connect of one of `sockets` (non-blocking, under way)
/// ended, at most until `until`: the index of the first that did (its
/// `SO_ERROR` tells how), or `None` at the deadline. One `poll` over all
/// of them (repeated only if a signal interrupts it), for Happy Eyeballs
/// on a thread of its own. With no socket, `None` at once (there is
/// nothing to wait for, and no deadline may be given).
pub fn wait_connected(
    sockets: &[std::os::fd::BorrowedFd<'_>],
    until: Option<std::time::Instant>,
) -> io::Result<Option<usize>> {
    if sockets.is_empty() {
        return Ok(None);
    }
    let mut pfds: Vec<libc::pollfd> = (sockets.iter())
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        })
        .collect();
    loop {
        let Some(timeout_ms) = poll_timeout_ms(until) else {
            return Ok(None);
        };
        let len = pfds.len() as libc::nfds_t;
        // SAFETY: `pfds` is a valid array of `len` pollfds for the duration
        // of the call, each fd borrowed from a live socket.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), len, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if let Some(i) = pfds.iter().position(|p| p.revents != 0) {
            return Ok(Some(i));
        }
    }
}

/// True for the error of a non-blocking connect that is under way
/// (`EINPROGRESS`).
pub fn is_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

#[cfg(test)]
mod tests {
    use std::io::{IoSlice, Read};

    /// No socket to wait for, and no deadline: an answer at once (a
    /// `poll` of nothing without a timeout never returned).
    #[test]
    fn waiting_for_no_connect_returns_at_once() {
        assert_eq!(super::wait_connected(&[], None).unwrap(), None);
    }

    /// A read given no room is an error, not the peer's end: `read(2)`
    /// into nothing returns 0, which every caller takes for EOF.
    #[test]
    fn a_read_into_no_room_is_no_eof() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let mut full = bytes::BytesMut::new();
        let no_room = |e: std::io::Error| e.kind() == std::io::ErrorKind::InvalidInput;
        assert!(super::read_into_spare(&client, &mut full).is_err_and(no_room));
        assert!(super::read_into_vec(&client, &mut Vec::new(), 0).is_err_and(no_room));
        let read = super::read_scatter(&client, &mut [], &mut full);
        assert!(read.is_err_and(no_room));
        // Many slices: a short write, not `EMSGSIZE`.
        let one = [7u8; 1];
        let many = vec![IoSlice::new(&one); 2000];
        assert_eq!(super::try_send(&client, &many).unwrap(), 1024);
    }

    #[test]
    fn try_send_writes_every_slice_in_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let bufs = [
            IoSlice::new(b"GET / "),
            IoSlice::new(b""),
            IoSlice::new(b"HTTP/1.1"),
        ];
        assert_eq!(super::try_send(&client, &bufs).unwrap(), 14);
        let mut got = [0u8; 14];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1");
        drop(server);
        // A peer gone: an error, not a signal (the test process would die
        // of SIGPIPE were it not ignored, which is what MSG_NOSIGNAL spares
        // hosts that do not ignore it).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let big = vec![0u8; 1 << 20];
        let bufs = [IoSlice::new(&big), IoSlice::new(&big)];
        let mut failed = false;
        for _ in 0..20 {
            if super::try_send(&client, &bufs).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writes to a closed peer keep succeeding");
    }
}
