//! The two non-blocking socket probes every backend needs, in one place
//! (the only `unsafe` of this crate: two libc calls on a borrowed fd).

use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;

/// Without blocking, asks the kernel whether the peer closed this idle
/// connection or sent bytes on it; either makes it unusable for a new
/// request. One `recv(MSG_PEEK | MSG_DONTWAIT)`; nothing is consumed.
pub fn is_stale(socket: &impl AsFd) -> bool {
    let fd = socket.as_fd().as_raw_fd();
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid one-byte buffer for the duration of the call,
    // and `fd` is borrowed from a live socket that outlives it.
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
        return !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        );
    }
    true // 0: EOF; > 0: bytes nobody asked for
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
