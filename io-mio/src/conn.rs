//! One connection: the non-blocking socket, its read buffer, its queue of
//! bytes to write, the core's state, and the little the driver tracks about
//! its readiness. Every protocol decision is the core's ([`Connection`]).

use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use mio::Interest;
use mio::net::TcpStream;
use roundtrip_io::proto::conn::Connection;
use roundtrip_io::proto::pool::{ConnId, DialPermit, Key};
use roundtrip_io::proto::time::Instant;

use crate::timer::{ConnTimer, Deadline};

/// What a connection is doing.
pub(crate) enum ConnState {
    /// A non-blocking connect is in progress.
    Connecting(Dial),
    /// Carrying the exchange in this slot.
    Busy(usize),
    /// In the pool.
    Idle,
}

/// A dial in progress: the pool's permit, the addresses left to try, and for
/// which exchange.
pub(crate) struct Dial {
    pub permit: DialPermit,
    pub exchange: usize,
    /// `host:port`, for errors.
    pub addr: String,
    pub rest: std::vec::IntoIter<SocketAddr>,
    /// The address being tried, for traces.
    pub trying: Option<SocketAddr>,
    pub last_error: io::Error,
    /// When the address being tried times out.
    pub deadline: Option<Instant>,
}

/// Bytes waiting to be written, in wire order: the head (plus a body
/// framing prefix), body data passed through untouched, then the framing
/// suffix and the body's end. One vectored write takes all three.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    pub head: Vec<u8>,
    head_at: usize,
    pub body: Bytes,
    pub tail: Vec<u8>,
    tail_at: usize,
}

impl OutQueue {
    pub fn is_empty(&self) -> bool {
        self.head_at == self.head.len() && self.body.is_empty() && self.tail_at == self.tail.len()
    }

    /// True when body data and its framing were written: the next piece may
    /// be queued (its prefix goes after what is left of the head).
    pub fn can_queue_body(&self) -> bool {
        self.body.is_empty() && self.tail_at == self.tail.len()
    }

    /// Empties the queue, keeping the allocations.
    pub fn clear(&mut self) {
        self.head.clear();
        self.head_at = 0;
        self.body = Bytes::new();
        self.tail.clear();
        self.tail_at = 0;
    }

    /// Drops written parts so the next piece's framing starts afresh.
    pub fn compact(&mut self) {
        if self.head_at == self.head.len() {
            self.head.clear();
            self.head_at = 0;
        }
        if self.tail_at == self.tail.len() {
            self.tail.clear();
            self.tail_at = 0;
        }
    }

    fn advance(&mut self, mut n: usize) {
        let head = n.min(self.head.len() - self.head_at);
        self.head_at += head;
        n -= head;
        let body = n.min(self.body.len());
        self.body.advance(body);
        n -= body;
        self.tail_at += n.min(self.tail.len() - self.tail_at);
    }
}

/// A connection in the driver's slab; its slot is its token.
pub(crate) struct Conn {
    pub stream: TcpStream,
    /// Tells this connection from a later one in the same slot.
    pub serial: u64,
    pub state: ConnState,
    pub proto: Connection,
    pub read_buf: BytesMut,
    /// Sizes reads from the previous response's size.
    pub sizer: roundtrip_io::buf::ReadSizer,
    pub out: OutQueue,
    /// The interest registered now.
    pub interest: Interest,
    pub id: ConnId,
    pub key: Key,
    /// Served a request before the current one (came from the pool).
    pub reused: bool,
    /// When it last went idle.
    pub idle_since: Instant,
    /// The last read or write progress, for the inactivity timeouts.
    pub last_io: Instant,
    /// Readiness may be pending that no event will report again: the last
    /// read stopped before the socket was read dry (an exchange ended, or a
    /// turn's read budget ran out), or a probe saw bytes or EOF without
    /// consuming them. Read before waiting for an event.
    pub read_pending: bool,
    /// An event said the server shut its side (or the socket failed): once
    /// the bytes before it are read, a read returns EOF or the error, and no
    /// further event will say so. Such a connection is not pooled.
    pub peer_closed: bool,
    /// While idle, the server closed it or sent bytes nobody asked for (it
    /// leaves the pool then; this keeps a checkout from taking it if not).
    pub stale_seen: bool,
    pub timers: [Deadline; ConnTimer::COUNT],
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        serial: u64,
        dial: Dial,
        proto: Connection,
        now: Instant,
    ) -> Conn {
        Conn {
            stream,
            serial,
            id: dial.permit.id(),
            key: dial.permit.key().clone(),
            state: ConnState::Connecting(dial),
            proto,
            read_buf: BytesMut::new(),
            sizer: roundtrip_io::buf::ReadSizer::default(),
            out: OutQueue::default(),
            interest: Interest::READABLE | Interest::WRITABLE,
            reused: false,
            idle_since: now,
            last_io: now,
            read_pending: false,
            peer_closed: false,
            stale_seen: false,
            timers: [Deadline::default(); ConnTimer::COUNT],
        }
    }

    /// The interest the connection needs now: writability while connecting
    /// or while bytes wait to be written, readability always (an idle
    /// connection is watched for the server closing it).
    pub fn wanted_interest(&self) -> Interest {
        match self.state {
            ConnState::Connecting(_) => Interest::READABLE | Interest::WRITABLE,
            _ if !self.out.is_empty() => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        }
    }

    /// Writes the queue until it is empty (`Ok(true)`) or the socket is full
    /// (`Ok(false)`), reporting every write to the core.
    pub fn flush(&mut self, now: Instant) -> io::Result<bool> {
        // Bounded: every pass writes at least one byte or returns.
        loop {
            let (head, tail) = (
                &self.out.head[self.out.head_at..],
                &self.out.tail[self.out.tail_at..],
            );
            let all = [
                IoSlice::new(head),
                IoSlice::new(&self.out.body),
                IoSlice::new(tail),
            ];
            let written = match roundtrip_io::buf::with_bytes(&all) {
                [] => {
                    self.out.compact();
                    return Ok(true);
                }
                // One piece (a request without a body, or the rest of a
                // body): write(2), which the kernel does with less work than
                // a writev of one piece.
                [one] => io::Write::write(&mut self.stream, one),
                several => self.stream.write_vectored(several),
            };
            match written {
                Ok(0) => return Err(roundtrip_io::buf::write_zero()),
                Ok(n) => {
                    self.proto.handle_written(n);
                    self.out.advance(n);
                    self.last_io = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once into the read buffer's spare capacity (0 = EOF).
    ///
    /// Returns the bytes read and whether the read came back short, which
    /// (TCP hands over all it holds, up to the room given) means the socket
    /// was read dry: with edge-triggered readiness the next bytes, EOF or
    /// error raise a new event, unless [`Conn::peer_closed`] says the EOF
    /// was already announced.
    pub fn read(&mut self) -> io::Result<(usize, bool)> {
        self.reserve();
        let room = self.read_buf.capacity() - self.read_buf.len();
        let n = roundtrip_io::sys::read_into_spare(&self.stream, &mut self.read_buf)?;
        self.sizer.record(n);
        Ok((n, n < room))
    }

    /// Makes room for the next read: a head-sized buffer, or the rest of a
    /// body of known length, so that one read can take it whole.
    fn reserve(&mut self) {
        self.sizer
            .reserve(&mut self.read_buf, self.proto.remaining_body());
    }

    /// Before going idle: gives back memory beyond what an idle connection
    /// may hold (16 KiB of buffers in all).
    pub fn shrink_for_idle(&mut self, now: Instant) {
        self.out.clear();
        let out = &mut self.out;
        roundtrip_io::buf::shrink_for_idle(&mut self.read_buf, &mut out.head, &mut out.tail);
        self.sizer.end_exchange(&mut self.read_buf);
        self.idle_since = now;
        self.stale_seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::OutQueue;
    use bytes::Bytes;

    #[test]
    fn queue_advances_across_parts() {
        let mut q = OutQueue {
            head: b"head".to_vec(),
            body: Bytes::from_static(b"body"),
            tail: b"tail".to_vec(),
            ..OutQueue::default()
        };
        q.advance(6);
        assert_eq!(&q.body[..], b"dy");
        assert!(!q.can_queue_body());
        q.advance(4);
        assert_eq!(&q.tail[q.tail_at..], b"il");
        q.advance(2);
        assert!(q.is_empty() && q.can_queue_body());
        q.compact();
        assert!(q.head.is_empty() && q.tail.is_empty());
    }
}
