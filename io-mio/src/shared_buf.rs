//! The read buffer a driver's connections share.
//!
//! A connection keeps a read buffer only while it holds bytes not yet
//! decoded (a partial head, a piece of a body): for each read that fits
//! [`MAX_SHARED_READ`] it borrows the driver's buffer, and once its bytes
//! are decoded the empty buffer goes back. So connections that read whole
//! responses hold no buffer between reads: at 10,000 connections reading
//! 13 B responses, their own 8 KiB buffers were most of what each one
//! held, and a read now lands in a buffer warm in the cache. Only empty
//! buffers move, so no byte of one connection is ever seen by another.
//! Larger reads (a big body: the reader sizes each read to the rest of
//! it) use a buffer of the connection's own, as before.
//!
//! The bytes handed out (head fields, body pieces) share the buffer's
//! allocation and keep it alive while the caller holds them; the buffer
//! can be reused from its start only once all are dropped. So it is large
//! ([`SHARED_BUF`]: some 800 small responses between two reuses), and the
//! one used before waits as a standby: when the buffer runs out while the
//! latest responses still hold it, the standby, whose responses are older
//! and usually dropped by then, takes over; only when both are held is a
//! new one allocated. (With one 8 KiB buffer a new one was allocated every
//! hundred responses, and glibc's `malloc` sorting its free lists for each
//! took 1,100 instructions per request.)

use bytes::BytesMut;
use roundtrip_io::buf::{MAX_READ_RESERVE, READ_BUF};
use roundtrip_io::exchange::Link;

/// Size of a shared buffer.
pub(crate) const SHARED_BUF: usize = 64 * 1024;
/// The most room a read taken in the shared buffer may ask for; larger
/// reads go into a buffer of the connection's own.
pub(crate) const MAX_SHARED_READ: usize = 16 * 1024;

/// The driver's read buffer and its standby (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct SharedReadBuf {
    /// The buffer the next read borrows (empty while in the driver).
    current: BytesMut,
    /// The buffer used before, waiting for the bytes handed out of it to
    /// be dropped.
    standby: BytesMut,
}

impl SharedReadBuf {
    /// Lends the shared buffer to `link` for its next read, if the link
    /// holds no bytes and has not the room the read wants.
    pub fn lend(&mut self, link: &mut Link) {
        let room = link
            .sizer
            .room(link.proto.remaining_body(), link.proto.remaining_chunk());
        // What `ReadSizer::reserve` will make sure of.
        let want = (room.min(MAX_READ_RESERVE) as usize).max(READ_BUF / 2);
        let own = &mut link.read_buf;
        if !own.is_empty() || own.capacity() >= want || want > MAX_SHARED_READ {
            return;
        }
        if !has_room(&mut self.current, want) {
            std::mem::swap(&mut self.current, &mut self.standby);
            if !has_room(&mut self.current, want) {
                self.current = BytesMut::with_capacity(SHARED_BUF);
            }
        }
        std::mem::swap(own, &mut self.current);
    }

    /// Takes `link`'s read buffer back once it holds no bytes. The roomier
    /// of it and the driver's goes to the next read, the other waits as
    /// the standby (or, smaller than the standby, is let go). A buffer
    /// larger than a shared one (sized for a big body) stays with its
    /// link, which lets it go when the exchange ends, as before.
    pub fn take_back(&mut self, link: &mut Link) {
        let own = &mut link.read_buf;
        if !own.is_empty() || own.capacity() == 0 || own.capacity() > SHARED_BUF {
            return;
        }
        let back = std::mem::take(own);
        let other = if back.capacity() > self.current.capacity() {
            std::mem::replace(&mut self.current, back)
        } else {
            back
        };
        if other.capacity() > self.standby.capacity() {
            self.standby = other;
        }
    }
}

/// True when `buf` (empty) has `want` bytes of room, reclaiming its
/// allocation when nothing else holds it.
fn has_room(buf: &mut BytesMut, want: usize) -> bool {
    buf.capacity() >= want || buf.try_reclaim(want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roundtrip_io::Config;
    use roundtrip_io::proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
    use roundtrip_io::proto::time::Instant;

    fn links(n: usize) -> Vec<Link> {
        let key = Key::new(Scheme::Http, "127.0.0.1", 80);
        let mut pool = Pool::<()>::new(PoolConfig::default().max_conns_per_host(None));
        (0..n)
            .map(|_| {
                let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else {
                    unreachable!("no limit")
                };
                let link = Link::new(permit.id(), key.clone(), &Config::default());
                pool.dial_succeeded(permit);
                link
            })
            .collect()
    }

    /// A read of `n` bytes into `link`'s buffer, decoded at once: the bytes
    /// handed out are returned (the caller may hold them).
    fn read(shared: &mut SharedReadBuf, link: &mut Link, n: usize) -> bytes::Bytes {
        shared.lend(link);
        link.reserve_read();
        link.read_buf.extend_from_slice(&vec![b'x'; n]);
        let piece = link.read_buf.split().freeze();
        shared.take_back(link);
        piece
    }

    #[test]
    fn links_that_read_whole_responses_share_two_buffers() {
        let (mut shared, mut links) = (SharedReadBuf::default(), links(100));
        let (mut held, mut starts, mut last) = (Vec::new(), Vec::new(), 0);
        for _ in 0..20 {
            for link in &mut links {
                let piece = read(&mut shared, link, 80);
                assert_eq!(link.read_buf.capacity(), 0, "an idle link holds no buffer");
                // A piece not right after the last one starts a buffer, or
                // a buffer reused from its start.
                let at = piece.as_ptr() as usize;
                if at != last + 80 {
                    starts.push(at);
                }
                last = at;
                // The caller holds the last ten responses at any time.
                held.push(piece);
                if held.len() > 10 {
                    held.remove(0);
                }
            }
        }
        // 2,000 responses of 80 bytes, 160 KB: two 64 KiB buffers, each
        // reused from its start once the responses in it were dropped.
        let mut buffers = starts.clone();
        buffers.sort_unstable();
        buffers.dedup();
        assert_eq!(buffers.len(), 2, "{starts:x?}");
        assert!(starts.len() >= 3, "{starts:x?}");
    }

    #[test]
    fn a_link_with_bytes_keeps_them_and_a_big_read_uses_its_own_buffer() {
        let (mut shared, mut links) = (SharedReadBuf::default(), links(2));
        let piece = read(&mut shared, &mut links[0], 80);
        drop(piece);
        // Undecoded bytes stay with their link; the next link gets another
        // buffer.
        shared.lend(&mut links[0]);
        links[0].read_buf.extend_from_slice(b"HTTP/1.1 200");
        shared.take_back(&mut links[0]);
        assert_eq!(&links[0].read_buf[..], b"HTTP/1.1 200");
        shared.lend(&mut links[1]);
        assert!(links[1].read_buf.is_empty() && links[1].read_buf.capacity() > 0);
        let ptr = links[1].read_buf.as_ptr();
        assert!(!std::ptr::eq(ptr, links[0].read_buf.as_ptr()));
        shared.take_back(&mut links[1]);
        // A read that wants more than a shared buffer gives is not lent one.
        links[1].sizer.record(200_000);
        links[1].sizer.end_exchange(&mut bytes::BytesMut::new());
        shared.lend(&mut links[1]);
        assert_eq!(links[1].read_buf.capacity(), 0);
    }
}
