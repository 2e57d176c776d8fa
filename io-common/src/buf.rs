//! Not part of the public API; used by the backends.
//!
//! How every backend sizes a connection's buffers: the read buffer before
//! each read, and what an idle connection may keep (16 KiB in all).
//!
//! ```
//! use bytes::BytesMut;
//! let mut read_buf = BytesMut::new();
//! roundtrip_io::buf::reserve_read(&mut read_buf, Some(100_000));
//! assert!(read_buf.capacity() >= 100_000);
//! let (mut write_buf, mut tail_buf) = (Vec::with_capacity(64 * 1024), vec![0u8; 10]);
//! read_buf.clear();
//! roundtrip_io::buf::shrink_for_idle(&mut read_buf, &mut write_buf, &mut tail_buf);
//! assert!(write_buf.capacity() <= roundtrip_io::buf::WRITE_BUF_IDLE);
//! assert_eq!(read_buf.capacity(), 0);
//! ```

use bytes::BytesMut;

/// Read buffer capacity for a head.
pub const READ_BUF: usize = 8 * 1024;
/// Largest body remainder a single read is sized for.
pub const MAX_READ_RESERVE: u64 = 1024 * 1024;
/// Write buffer capacity an idle connection may keep.
pub const WRITE_BUF_IDLE: usize = 4 * 1024;
/// Read buffer capacity an idle connection may keep.
pub const READ_BUF_IDLE: usize = 12 * 1024;

/// Makes room for the next read: a head-sized buffer, or the rest of a body
/// of known length (`remaining_body`, the core's
/// [`remaining_body`](roundtrip_proto::conn::Connection::remaining_body)), so
/// that one read can take it whole.
pub fn reserve_read(read_buf: &mut BytesMut, remaining_body: Option<u64>) {
    let rest = remaining_body.unwrap_or(0).min(MAX_READ_RESERVE) as usize;
    let want = rest.max(READ_BUF / 2);
    if read_buf.capacity() - read_buf.len() < want {
        read_buf.reserve(want.max(READ_BUF));
    }
}

/// Remembers how large the last response on a connection was, so the first
/// read of the next one can take it whole: a 64 KiB response then arrives
/// in one read and one piece (no second read, no copy to join pieces),
/// while an idle connection still holds no big buffer (only this number).
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_io::buf::ReadSizer;
/// let mut sizer = ReadSizer::default();
/// sizer.record(70_000);
/// sizer.end_exchange(&mut BytesMut::new());
/// let mut read_buf = BytesMut::new();
/// sizer.reserve(&mut read_buf, None);
/// assert!(read_buf.capacity() >= 70_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadSizer {
    /// Bytes the previous exchange read.
    hint: u32,
    /// Bytes this exchange read so far.
    this_exchange: u64,
}

impl ReadSizer {
    /// Makes room for the next read: the larger of [`reserve_read`]'s size
    /// and the previous response's size.
    pub fn reserve(&self, read_buf: &mut BytesMut, remaining_body: Option<u64>) {
        let hinted = remaining_body.unwrap_or(u64::from(self.hint));
        reserve_read(read_buf, Some(hinted.max(remaining_body.unwrap_or(0))));
    }

    /// `n` bytes were read for the current exchange.
    pub fn record(&mut self, n: usize) {
        self.this_exchange = self.this_exchange.saturating_add(n as u64);
    }

    /// The exchange ended: its size becomes the hint for the next one. A
    /// read buffer grown past what an idle connection may keep is let go
    /// (`BytesMut::capacity` after the decoder's splits shows only the unused
    /// tail, not the allocation, so the size read is what tells).
    pub fn end_exchange(&mut self, read_buf: &mut BytesMut) {
        if self.this_exchange > READ_BUF_IDLE as u64 && read_buf.is_empty() {
            *read_buf = BytesMut::new();
        }
        self.hint = self.this_exchange.min(MAX_READ_RESERVE) as u32;
        self.this_exchange = 0;
    }
}

/// Before a connection goes idle: gives back memory beyond what an idle
/// connection may hold. The write buffer is emptied, the tail freed.
pub fn shrink_for_idle(read_buf: &mut BytesMut, write_buf: &mut Vec<u8>, tail_buf: &mut Vec<u8>) {
    if read_buf.capacity() > READ_BUF_IDLE && read_buf.is_empty() {
        *read_buf = BytesMut::new();
    }
    write_buf.clear();
    write_buf.shrink_to(WRITE_BUF_IDLE);
    *tail_buf = Vec::new();
}

/// The error for a write the socket took nothing of (`Ok(0)` for bytes
/// offered): the connection cannot carry the request, and trying again
/// would spin.
///
/// ```
/// assert_eq!(roundtrip_io::buf::write_zero().kind(), std::io::ErrorKind::WriteZero);
/// ```
pub fn write_zero() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::WriteZero, "socket accepted no bytes")
}

/// The slices of `bufs` from the first to the last that holds bytes: what a
/// write should be given. Leading empty slices would make a write of
/// nothing look like a dead socket; with trailing ones dropped too, a
/// request without a body is one slice, which backends send with `write(2)`
/// (the kernel does less for it than for a `writev`).
///
/// ```
/// use std::io::IoSlice;
/// let bufs = [IoSlice::new(b""), IoSlice::new(b"GET / HTTP/1.1\r\n\r\n"), IoSlice::new(b"")];
/// let used = roundtrip_io::buf::with_bytes(&bufs);
/// assert_eq!(used.len(), 1);
/// assert!(roundtrip_io::buf::with_bytes(&[IoSlice::new(b"")]).is_empty());
/// ```
pub fn with_bytes<'a, 'b>(bufs: &'b [std::io::IoSlice<'a>]) -> &'b [std::io::IoSlice<'a>] {
    let first = bufs.iter().position(|b| !b.is_empty());
    let last = bufs.iter().rposition(|b| !b.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => &bufs[first..=last],
        _ => &[],
    }
}
