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
/// The most room a single read is given (a body remainder, a chunk, a
/// stretch).
pub const MAX_READ_RESERVE: u64 = 1024 * 1024;
/// Write buffer capacity an idle connection may keep.
pub const WRITE_BUF_IDLE: usize = 4 * 1024;
/// Read buffer capacity an idle connection may keep.
pub const READ_BUF_IDLE: usize = 12 * 1024;
/// Most body bytes a driver decodes ahead of its caller when the head
/// arrives, from what is already buffered: a body that came with its head
/// then completes at once (its connection back in the pool, no byte of it
/// carried between reads), and a compressed one cannot make it decode much.
pub const EAGER_BODY_BYTES: usize = 64 * 1024;
/// Room beyond the rest of a chunk: its CRLF, then a size line or the
/// body's end (`0`, CRLF, CRLF), so that a read taking the last chunk
/// whole also takes the end.
const CHUNK_SLACK: u64 = 64;

/// Makes room for the next read: a head-sized buffer, or the rest of a body
/// of known length (`remaining_body`, the core's
/// [`remaining_body`](roundtrip_proto::conn::Connection::remaining_body)), so
/// that one read can take it whole.
///
/// The buffer is reused when it can be (no allocation); otherwise a new one
/// of the size asked for takes the few undecoded bytes, rather than
/// `BytesMut::reserve`'s growth, which may double the allocation (2 MiB for
/// a 1 MiB read) and copy the bytes already decoded along.
pub fn reserve_read(read_buf: &mut BytesMut, remaining_body: Option<u64>) {
    let want = room_for(remaining_body.unwrap_or(0));
    if read_buf.capacity() - read_buf.len() >= want || read_buf.try_reclaim(want) {
        return;
    }
    let mut fresh = BytesMut::with_capacity(read_buf.len() + want.max(READ_BUF));
    fresh.extend_from_slice(read_buf);
    *read_buf = fresh;
}

/// How many bytes one read of body bytes straight into a caller's vector
/// that holds `len` appends, with `room` allowed
/// ([`Exchange::direct_body_room`](crate::exchange::Exchange::direct_body_room)):
/// the rest of a sized body or of a chunk, bounded by
/// [`MAX_READ_RESERVE`], or, for a body that runs until the close (`room`
/// unbounded), as much as the vector holds, [`READ_BUF`] at least: a
/// short body then does not cost a megabyte, a long one grows by doubling.
///
/// ```
/// use roundtrip_io::buf::{MAX_READ_RESERVE, READ_BUF, direct_vec_len};
/// assert_eq!(direct_vec_len(0, 56 * 1024), 56 * 1024);
/// assert_eq!(direct_vec_len(0, u64::MAX - 1), MAX_READ_RESERVE as usize);
/// assert_eq!(direct_vec_len(100, u64::MAX), READ_BUF);
/// assert_eq!(direct_vec_len(64 * 1024, u64::MAX), 64 * 1024);
/// ```
pub fn direct_vec_len(len: usize, room: u64) -> usize {
    match room {
        u64::MAX => len.clamp(READ_BUF, MAX_READ_RESERVE as usize),
        room => room.min(MAX_READ_RESERVE) as usize,
    }
}

/// The spare capacity [`reserve_read`] makes sure of for `rest` bytes.
fn room_for(rest: u64) -> usize {
    (rest.min(MAX_READ_RESERVE) as usize).max(READ_BUF / 2)
}

/// Sizes each read of a connection, the same way on every backend:
///
/// - a body of known length (`Content-Length`): the rest of it;
/// - otherwise (a head, a chunked body, a body that runs until the close)
///   the largest of: the rest of the current chunk as its size line
///   announced it; the previous response's size, so that a 64 KiB response
///   arrives in one read and one piece (no second read, no copy to join
///   pieces); and a *stretch* earned by reads that filled all the room they
///   had (the kernel held more): each such read doubles it, a read that
///   takes under a quarter of it halves it, so a stream of small chunks
///   soon gets reads as large as a sized body's;
///
/// all bounded by [`MAX_READ_RESERVE`], with at least half a [`READ_BUF`].
/// An idle connection holds no big buffer, only these numbers, and starts
/// each exchange without stretch.
///
/// ```
/// use bytes::BytesMut;
/// use roundtrip_io::buf::ReadSizer;
/// let mut sizer = ReadSizer::default();
/// sizer.record(70_000);
/// sizer.end_exchange(&mut BytesMut::new());
/// let mut read_buf = BytesMut::new();
/// sizer.reserve(&mut read_buf, None, None);
/// assert!(read_buf.capacity() >= 70_000);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadSizer {
    /// Bytes the previous exchange read.
    hint: u32,
    /// Bytes this exchange read so far.
    this_exchange: u64,
    /// Room earned by reads that filled theirs (0: none).
    stretch: u32,
    /// Spare capacity of the buffer reserved last, which the next read
    /// goes into (0: none reserved since the last read).
    offered: u32,
    /// Body bytes of this exchange read past the buffer (into the caller's
    /// memory), counted in `this_exchange` but not in what the buffer held.
    direct: u64,
    /// A bound on the room after reads that took under a quarter of theirs
    /// (0: none): halved by each such read, dropped by one that fills its
    /// room. A server that trickles a large body then gets reads sized like
    /// what it sends, not the megabyte the rest of the body would ask for:
    /// each read's piece, which a caller may keep, shares a buffer with the
    /// pieces before it instead of pinning a new megabyte of its own.
    cap: u32,
}

impl ReadSizer {
    /// The room the next read should have: `remaining_body` is the rest of
    /// a `Content-Length` body, `remaining_chunk` the rest of the current
    /// chunk (the core's
    /// [`remaining_chunk`](roundtrip_proto::conn::Connection::remaining_chunk)).
    pub fn room(&self, remaining_body: Option<u64>, remaining_chunk: Option<u64>) -> u64 {
        let room = remaining_body.unwrap_or_else(|| {
            let earned = u64::from(self.hint.max(self.stretch));
            // The chunk's CRLF and what follows it: the next size line, or
            // the last chunk and the end of the body.
            let chunk = remaining_chunk.map_or(0, |rest| rest.saturating_add(CHUNK_SLACK));
            earned.max(chunk)
        });
        match self.cap {
            0 => room,
            cap => room.min(u64::from(cap)),
        }
    }

    /// Makes room in `read_buf` for the next read (see
    /// [`room`](Self::room)). With two buffers (TLS: plaintext and
    /// ciphertext), reserve the one the read goes into last: its spare
    /// capacity is what the read must fill to earn stretch.
    pub fn reserve(
        &mut self,
        read_buf: &mut BytesMut,
        remaining_body: Option<u64>,
        remaining_chunk: Option<u64>,
    ) {
        reserve_read(read_buf, Some(self.room(remaining_body, remaining_chunk)));
        let spare = read_buf.capacity() - read_buf.len();
        self.offered = u32::try_from(spare).unwrap_or(u32::MAX);
    }

    /// `n` bytes were read for the current exchange, into the buffer
    /// reserved last.
    pub fn record(&mut self, n: usize) {
        self.this_exchange = self.this_exchange.saturating_add(n as u64);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if self.offered != 0 && n >= self.offered {
            // The read took all its room: more was likely waiting.
            let doubled = u64::from(n).saturating_mul(2).min(MAX_READ_RESERVE);
            self.stretch = self.stretch.max(doubled as u32);
            self.cap = 0;
        } else {
            if n < self.stretch / 4 {
                self.stretch /= 2;
                if self.stretch < READ_BUF as u32 {
                    self.stretch = 0;
                }
            }
            if n < self.offered / 4 {
                // A trickle: the next read is offered half as much.
                self.cap = (self.offered / 2).max(READ_BUF as u32 / 2);
            }
        }
        self.offered = 0;
    }

    /// `n` body bytes were read past the buffer, into the caller's memory
    /// (a blocking `Read` of the body into its own slice).
    pub fn record_direct(&mut self, n: usize) {
        self.this_exchange = self.this_exchange.saturating_add(n as u64);
        self.direct = self.direct.saturating_add(n as u64);
    }

    /// The exchange ended: the bytes it read into the buffer become the
    /// hint for the next one, the stretch is dropped. Bytes the caller
    /// read into its own memory do not count: a caller that reads bodies
    /// so keeps head-sized reads (and the rest of a long body then goes
    /// where it reads it again), one that takes them as pieces gets reads
    /// of a whole response. A read buffer grown past what an idle
    /// connection may keep is let go (`BytesMut::capacity` after the
    /// decoder's splits shows only the unused tail, not the allocation, so
    /// the size read into it is what tells).
    pub fn end_exchange(&mut self, read_buf: &mut BytesMut) {
        let buffered = self.this_exchange.saturating_sub(self.direct);
        if buffered > READ_BUF_IDLE as u64 && read_buf.is_empty() {
            *read_buf = BytesMut::new();
        }
        self.hint = buffered.min(MAX_READ_RESERVE) as u32;
        self.this_exchange = 0;
        self.direct = 0;
        self.stretch = 0;
        self.cap = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use roundtrip_proto::decode::{Event, ResponseDecoder};

    const MIB: usize = 1024 * 1024;

    /// A large body trickled a kilobyte per read, every piece kept by the
    /// caller (as `http_body_util`'s `collect` keeps them): the pieces
    /// share the read buffers, which are allocated at least three quarters
    /// full. (Each read asked for a megabyte, the rest of the body, and
    /// got a new one beside the one its kept piece held: 256 MiB for 256
    /// KiB of body.)
    #[test]
    fn kept_pieces_of_a_trickled_body_share_their_buffers() {
        let (mut sizer, mut buf) = (ReadSizer::default(), BytesMut::new());
        let (mut kept, mut allocated) = (Vec::new(), 0);
        let body = 64 * MIB;
        for i in 0..256 {
            let next = buf.as_ptr().wrapping_add(buf.len());
            sizer.reserve(&mut buf, Some((body - i * 1024) as u64), None);
            if buf.as_ptr().wrapping_add(buf.len()) != next || allocated == 0 {
                allocated += buf.capacity();
            }
            buf.extend_from_slice(&[b'x'; 1024]); // the read
            sizer.record(1024);
            kept.push(buf.split().freeze());
        }
        assert!(
            allocated <= 2 * MIB,
            "{allocated} bytes allocated for 256 KiB of kept pieces"
        );
        // A read that fills its room lifts the bound.
        let room = sizer.room(Some(body as u64), None);
        assert!(room < MAX_READ_RESERVE, "{room}");
        sizer.reserve(&mut buf, Some(body as u64), None);
        sizer.record(sizer.offered as usize);
        assert_eq!(sizer.room(Some(body as u64), None), body as u64);
    }

    /// A response of `len` body bytes: sized, or chunked in `chunk`s.
    fn response(len: usize, chunk: Option<usize>) -> Vec<u8> {
        let Some(chunk) = chunk else {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
            r.resize(r.len() + len, b'x');
            return r;
        };
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk);
            r.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            r.resize(r.len() + n, b'x');
            r.extend_from_slice(b"\r\n");
            left -= n;
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    }

    /// Reads `wire` the way a driver does (reserve, one read into the
    /// spare capacity, decode everything) from a socket that holds at most
    /// `ready` bytes at each read. Returns the number of reads and the
    /// largest spare capacity offered.
    fn reads(
        sizer: &mut ReadSizer,
        buf: &mut BytesMut,
        wire: &[u8],
        ready: usize,
    ) -> (usize, usize) {
        let mut dec = ResponseDecoder::default();
        let (mut at, mut reads, mut most) = (0, 0, 0);
        loop {
            sizer.reserve(buf, dec.remaining_body(), dec.remaining_chunk());
            let spare = buf.capacity() - buf.len();
            most = most.max(spare);
            let n = spare.min(ready).min(wire.len() - at);
            assert!(n > 0, "the response ended early");
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            reads += 1;
            sizer.record(n);
            loop {
                match dec.poll_event(buf).unwrap() {
                    Some(Event::End) => {
                        assert_eq!(at, wire.len());
                        return (reads, most);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }
    }

    fn count(len: usize, chunk: Option<usize>, ready: usize) -> usize {
        let mut sizer = ReadSizer::default();
        reads(
            &mut sizer,
            &mut BytesMut::new(),
            &response(len, chunk),
            ready,
        )
        .0
    }

    #[test]
    fn chunked_bodies_take_about_as_many_reads_as_sized_ones() {
        // A socket that always holds more than any read takes, and one
        // that holds 256 KiB at each read (the kernel's pace on loopback).
        for ready in [usize::MAX, 256 * 1024] {
            let sized = count(16 * MIB, None, ready);
            for chunk in [100, 16 * 1024, 64 * 1024, MIB, 4 * MIB] {
                let chunked = count(16 * MIB, Some(chunk), ready);
                assert!(
                    chunked * 2 <= sized * 3,
                    "chunks of {chunk}, {ready} ready: {chunked} reads against {sized} sized"
                );
            }
        }
        // Before: 8 KiB reads, 2,048 for 16 MiB.
        assert!(count(16 * MIB, Some(16 * 1024), usize::MAX) <= 16 + 10);
    }

    #[test]
    fn a_single_chunk_is_read_like_a_sized_body() {
        // The head's read (8 KiB) tells the chunk's size: the next read
        // takes the rest of it.
        assert_eq!(count(64 * 1024, Some(64 * 1024), usize::MAX), 2);
        assert_eq!(count(64 * 1024, None, usize::MAX), 2);
    }

    #[test]
    fn reads_stay_bounded() {
        let mut sizer = ReadSizer::default();
        let mut buf = BytesMut::new();
        let wire = response(8 * MIB, Some(3 * MIB));
        let (_, most) = reads(&mut sizer, &mut buf, &wire, usize::MAX);
        assert!(most <= MAX_READ_RESERVE as usize + 1024, "{most}");
    }

    #[test]
    fn small_responses_keep_one_head_sized_read() {
        let mut sizer = ReadSizer::default();
        let mut buf = BytesMut::new();
        let wire = response(13, None);
        for _ in 0..3 {
            let (n, most) = reads(&mut sizer, &mut buf, &wire, usize::MAX);
            assert_eq!(n, 1);
            assert!(most <= READ_BUF, "{most}");
            assert_eq!(sizer.stretch, 0);
            sizer.end_exchange(&mut buf);
        }
        // A chunked one too: no stretch from a read that did not fill.
        let (n, most) = reads(&mut sizer, &mut buf, &response(13, Some(5)), usize::MAX);
        assert_eq!((n, sizer.stretch), (1, 0));
        assert!(most <= READ_BUF, "{most}");
    }

    #[test]
    fn no_new_allocation_while_the_buffer_has_room() {
        let mut sizer = ReadSizer::default();
        let mut buf = BytesMut::new();
        sizer.reserve(&mut buf, None, None);
        let at = buf.as_ptr();
        buf.extend_from_slice(&[b'x'; 200]);
        sizer.record(200);
        drop(buf.split_to(200));
        sizer.reserve(&mut buf, None, None);
        assert_eq!(buf.as_ptr(), at.wrapping_add(200));
    }

    /// Bytes a caller read into its own memory do not size the next
    /// head's read: it stays head-sized while the caller reads bodies so,
    /// and grows back to a whole response once it takes them as pieces.
    #[test]
    fn direct_reads_leave_the_next_head_read_small() {
        let mut sizer = ReadSizer::default();
        let mut buf = BytesMut::new();
        sizer.record(6_000); // the head and the start of the body
        sizer.record_direct(58_000);
        sizer.end_exchange(&mut buf);
        assert_eq!(sizer.room(None, None), 6_000);
        sizer.record(64_000); // all of it through the buffer
        sizer.end_exchange(&mut buf);
        assert_eq!(sizer.room(None, None), 64_000);
    }

    #[test]
    fn stretch_grows_on_full_reads_and_shrinks_on_short_ones() {
        let mut sizer = ReadSizer::default();
        let mut buf = BytesMut::new();
        let mut step = |sizer: &mut ReadSizer, fill: bool| {
            buf.clear();
            sizer.reserve(&mut buf, None, Some(0));
            let spare = buf.capacity() - buf.len();
            sizer.record(if fill { spare } else { 100 });
            sizer.room(None, Some(0))
        };
        let mut last = 0;
        for _ in 0..20 {
            let room = step(&mut sizer, true);
            assert!(room >= last && room <= MAX_READ_RESERVE);
            last = room;
        }
        assert_eq!(last, MAX_READ_RESERVE);
        // Short reads: halved each time, down to no stretch.
        assert_eq!(step(&mut sizer, false), MAX_READ_RESERVE / 2);
        for _ in 0..10 {
            step(&mut sizer, false);
        }
        assert_eq!(sizer.stretch, 0);
        // A sized body is read to its rest, whatever the stretch.
        step(&mut sizer, true);
        assert_eq!(sizer.room(Some(10), None), 10);
        // The end of the exchange drops the stretch (the hint stays).
        sizer.end_exchange(&mut BytesMut::new());
        assert_eq!(sizer.stretch, 0);
        // A chunk's rest is taken whole (with the framing after it), up to
        // the bound.
        let sizer = ReadSizer::default();
        assert_eq!(sizer.room(None, Some(300_000)), 300_000 + CHUNK_SLACK);
        let (mut sizer, mut buf) = (sizer, BytesMut::new());
        sizer.reserve(&mut buf, None, Some(u64::MAX));
        assert_eq!(buf.capacity(), MAX_READ_RESERVE as usize);
    }
}
