//! Not part of the public API; used by the backends.
//!
//! The read buffers a driver's connections share: the mio driver's own,
//! and one per thread for the async drivers (a poll lends and takes back
//! within itself, so one thread's tasks share it). A connection holds no
//! read buffer between reads unless it was left with more than
//! [`MAX_CARRY`] bytes undecoded (a long head in pieces): it keeps the
//! buffer they came in until they are decoded.
//!
//! A connection keeps a read buffer only while it holds bytes not yet
//! decoded, and then only the few of them: for each read it borrows one of
//! the driver's buffers, and once its bytes are decoded the buffer goes
//! back. So connections hold no buffer between reads: at 10,000
//! connections reading 13 B responses, their own 8 KiB buffers were most
//! of what each one held, and a read now lands in a buffer warm in the
//! cache. Only the bytes of a connection move with it (a few left
//! undecoded, such as half a chunk size line, are copied out to a buffer
//! of its own, and copied in front of its next read), so no byte of one
//! connection is ever seen by another.
//!
//! Reads up to [`MAX_SHARED_READ`] go into the shared small buffer; the
//! bytes handed out (head fields, body pieces) share its allocation and
//! keep it alive while the caller holds them, and the buffer can be reused
//! from its start only once all are dropped. So it is large
//! ([`SHARED_BUF`]: some 800 small responses between two reuses), and the
//! one used before waits as a standby: when the buffer runs out while the
//! latest responses still hold it, the standby, whose responses are older
//! and usually dropped by then, takes over; only when both are held is a
//! new one allocated. (With one 8 KiB buffer a new one was allocated every
//! hundred responses, and glibc's `malloc` sorting its free lists for each
//! took 1,100 instructions per request.)
//!
//! Larger reads (a long body: the reader sizes each read to the rest of
//! it) borrow the driver's big buffer, sized for the largest such read.
//! Body pieces a caller streams and drops leave it free for the next
//! connection's read; pieces a caller keeps keep their part alive, and the
//! next read gets a new buffer. The head of a response whose body goes on
//! past its read is copied out by the decoder (one small allocation), so a
//! response in flight holds no buffer: at 256 connections streaming 64 KiB
//! bodies, a buffer per connection was 64 KiB of the 69 KiB each held.

use crate::buf::{MAX_READ_RESERVE, READ_BUF};
use crate::exchange::Link;
use bytes::BytesMut;

/// Size of a shared small buffer.
pub const SHARED_BUF: usize = 64 * 1024;
/// The most room a read taken in the shared small buffer may ask for;
/// larger reads borrow the big buffer.
pub const MAX_SHARED_READ: usize = 16 * 1024;
/// The most undecoded bytes a connection carries from one read to the
/// next in a buffer of its own (copied out of the shared one, and in front
/// of the next read); with more (a long head in pieces), it keeps the
/// buffer they came in.
pub const MAX_CARRY: usize = 1024;

/// Which of the driver's buffers a connection's read buffer is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lent {
    /// Its own (or none).
    #[default]
    No,
    /// The shared small buffer.
    Small,
    /// The big buffer.
    Big,
}

/// The driver's read buffers (see the module docs).
#[derive(Debug, Default)]
pub struct SharedReadBuf {
    /// The buffer the next small read borrows (empty while in the driver).
    current: BytesMut,
    /// The buffer used before, waiting for the bytes handed out of it to
    /// be dropped.
    standby: BytesMut,
    /// The buffer reads larger than [`MAX_SHARED_READ`] borrow.
    big: BytesMut,
}

impl SharedReadBuf {
    /// Lends a buffer to `link` for its next read, unless its own has the
    /// room the read wants or holds more than [`MAX_CARRY`] undecoded
    /// bytes. The bytes it holds go first in the lent buffer.
    pub fn lend(&mut self, link: &mut Link, lent: &mut Lent) {
        let room = link
            .sizer
            .room(link.proto.remaining_body(), link.proto.remaining_chunk());
        // What `ReadSizer::reserve` will make sure of.
        let want = (room.min(MAX_READ_RESERVE) as usize).max(READ_BUF / 2);
        let own = &mut link.read_buf;
        if *lent != Lent::No || own.capacity() - own.len() >= want || own.len() > MAX_CARRY {
            return;
        }
        let need = own.len() + want;
        let (slot, kind) = if need <= MAX_SHARED_READ {
            if !has_room(&mut self.current, need) {
                std::mem::swap(&mut self.current, &mut self.standby);
                if !has_room(&mut self.current, need) {
                    self.current = BytesMut::with_capacity(SHARED_BUF);
                }
            }
            (&mut self.current, Lent::Small)
        } else {
            if !has_room(&mut self.big, need) {
                self.big = BytesMut::with_capacity(need);
            }
            (&mut self.big, Lent::Big)
        };
        let mut buf = std::mem::take(slot);
        buf.extend_from_slice(own);
        // The link's own buffer (empty, or a few carried bytes) is let go.
        *own = buf;
        *lent = kind;
    }

    /// Takes `link`'s read buffer back after its bytes were decoded: a lent
    /// one, with the few bytes left undecoded (at most [`MAX_CARRY`])
    /// copied out to a buffer of the link's own; or an empty one of its
    /// own, which may serve others. A link left with more bytes keeps the
    /// buffer until they are decoded.
    pub fn take_back(&mut self, link: &mut Link, lent: &mut Lent) {
        let own = &mut link.read_buf;
        if own.len() > MAX_CARRY {
            return;
        }
        match std::mem::take(lent) {
            // An empty buffer of its own may serve others, unless it is
            // larger than a shared one (sized for a big body before the
            // big buffer came): the link lets that go when the exchange
            // ends.
            Lent::No => {
                if own.is_empty() && own.capacity() > 0 && own.capacity() <= SHARED_BUF {
                    let back = std::mem::take(own);
                    self.put_back(back, Lent::Small);
                }
            }
            kind => {
                let carry = if own.is_empty() {
                    BytesMut::new()
                } else {
                    BytesMut::from(&own[..])
                };
                own.clear();
                let back = std::mem::replace(own, carry);
                self.put_back(back, kind);
            }
        }
    }

    /// `back`, empty, returns. The big buffer returns to its slot (its
    /// capacity now is what is left after the bytes handed out of it, and
    /// all of it once they are dropped). Of a small one and the driver's,
    /// the roomier goes to the next read, the other waits as the standby
    /// (or, smaller than the standby, is let go).
    fn put_back(&mut self, back: BytesMut, kind: Lent) {
        if kind == Lent::Big {
            if back.capacity() >= self.big.capacity() {
                self.big = back;
            }
            return;
        }
        // A lent small buffer that its link grew for a read of its own
        // (it kept more than `MAX_CARRY` undecoded bytes) is let go.
        if back.capacity() > SHARED_BUF {
            return;
        }
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
    use crate::Config;
    use roundtrip_proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
    use roundtrip_proto::time::Instant;

    /// `n` links, each with the record of which buffer it borrows.
    fn links(n: usize) -> Vec<(Link, Lent)> {
        let key = Key::new(Scheme::Http, "127.0.0.1", 80);
        let mut pool = Pool::<()>::new(PoolConfig::default().max_conns_per_host(None));
        (0..n)
            .map(|_| {
                let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else {
                    unreachable!("no limit")
                };
                let link = Link::new(permit.id(), key.clone(), &Config::default());
                pool.dial_succeeded(permit);
                (link, Lent::No)
            })
            .collect()
    }

    /// A read of `n` bytes into `link`'s buffer, decoded at once but for
    /// `left` bytes: the bytes handed out are returned (the caller may
    /// hold them).
    fn read_leaving(
        shared: &mut SharedReadBuf,
        (link, lent): &mut (Link, Lent),
        n: usize,
        left: usize,
    ) -> bytes::Bytes {
        shared.lend(link, lent);
        link.reserve_read();
        link.read_buf.extend_from_slice(&vec![b'x'; n]);
        let piece = link.read_buf.split_to(n - left).freeze();
        shared.take_back(link, lent);
        piece
    }

    fn read(shared: &mut SharedReadBuf, link: &mut (Link, Lent), n: usize) -> bytes::Bytes {
        read_leaving(shared, link, n, 0)
    }

    /// The link expects a body of `len` bytes: its reads ask for the rest.
    fn expect_body(link: &mut Link, len: usize) {
        link.sizer.record(len);
        link.sizer.end_exchange(&mut BytesMut::new());
    }

    #[test]
    fn links_that_read_whole_responses_share_two_buffers() {
        let (mut shared, mut links) = (SharedReadBuf::default(), links(100));
        let (mut held, mut starts, mut last) = (Vec::new(), Vec::new(), 0);
        for _ in 0..20 {
            for link in &mut links {
                let piece = read(&mut shared, link, 80);
                assert_eq!(
                    link.0.read_buf.capacity(),
                    0,
                    "an idle link holds no buffer"
                );
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

    /// Links reading long bodies one after another, their pieces dropped
    /// at once (a streaming caller), all read into one big buffer, from
    /// its start each time; a piece kept sends the next read to a new one.
    #[test]
    fn long_bodies_streamed_by_many_links_share_one_big_buffer() {
        let (mut shared, mut links) = (SharedReadBuf::default(), links(256));
        let mut starts = Vec::new();
        for (link, _) in &mut links {
            expect_body(link, 64 * 1024);
        }
        for _ in 0..4 {
            for link in &mut links {
                let piece = read(&mut shared, link, 64 * 1024);
                assert_eq!(link.1, Lent::No);
                assert_eq!(
                    link.0.read_buf.capacity(),
                    0,
                    "a link holds no buffer between reads"
                );
                starts.push(piece.as_ptr() as usize);
            }
        }
        starts.dedup();
        assert_eq!(starts.len(), 1, "one big buffer for 1,024 reads");
        // A caller that keeps a piece keeps its buffer; the next read gets
        // another, and the kept one is let go with the piece.
        let kept = read(&mut shared, &mut links[0], 64 * 1024);
        let next = read(&mut shared, &mut links[1], 64 * 1024);
        assert_ne!(kept.as_ptr(), next.as_ptr());
        drop(kept);
        drop(next);
        let again = read(&mut shared, &mut links[2], 64 * 1024);
        assert!(again.len() == 64 * 1024);
    }

    /// A few bytes left undecoded (half a size line) go to a buffer of the
    /// link's own and in front of its next read; the lent buffer goes back.
    /// More than [`MAX_CARRY`] (a long head in pieces) keep the buffer they
    /// came in until they are decoded.
    #[test]
    fn a_link_carries_a_few_undecoded_bytes_and_keeps_many() {
        let (mut shared, mut links) = (SharedReadBuf::default(), links(2));
        expect_body(&mut links[0].0, 64 * 1024);
        let piece = read_leaving(&mut shared, &mut links[0], 40_000, 5);
        assert_eq!(links[0].1, Lent::No);
        assert_eq!(links[0].0.read_buf.len(), 5);
        assert!(
            links[0].0.read_buf.capacity() < 64,
            "only the bytes are carried"
        );
        drop(piece);
        // The other link reads into the big buffer meanwhile.
        expect_body(&mut links[1].0, 64 * 1024);
        let other = read(&mut shared, &mut links[1], 30_000);
        drop(other);
        // The carried bytes come first in the next read.
        let (link, lent) = &mut links[0];
        shared.lend(link, lent);
        assert_eq!(*lent, Lent::Big);
        assert_eq!(&link.read_buf[..], b"xxxxx");
        assert!(link.read_buf.capacity() >= 64 * 1024);
        link.read_buf.clear();
        shared.take_back(link, lent);
        // Many bytes left: the link keeps its buffer.
        let piece = read_leaving(&mut shared, &mut links[0], 4_000, MAX_CARRY + 1);
        assert_eq!(links[0].1, Lent::Big);
        assert_eq!(links[0].0.read_buf.len(), MAX_CARRY + 1);
        drop(piece);
        let (link, lent) = &mut links[0];
        link.read_buf.clear();
        shared.take_back(link, lent);
        assert_eq!((*lent, link.read_buf.capacity()), (Lent::No, 0));
    }
}
