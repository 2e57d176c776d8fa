//! The byte side of one connection, as every driver keeps it: the core's
//! state, the read buffer and the bytes waiting to be written. The driver
//! owns the socket beside it; the exchange machine reads and writes these
//! buffers and never the socket.

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};
use roundtrip_proto::conn::Connection;
use roundtrip_proto::pool::{ConnId, Key};

use crate::buf::{ReadSizer, WRITE_BUF_IDLE, shrink_for_idle};

/// What is queued for the socket: the head (and a body's framing prefix),
/// a body piece kept as `Bytes` (never copied), and the framing suffix and
/// end of the body. Written front to back with one vectored write.
///
/// ```
/// use roundtrip_io::exchange::Outbox;
/// let mut out = Outbox::default();
/// out.head.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
/// assert_eq!(out.len(), 18);
/// out.advance(10);
/// assert_eq!(out.io_slices()[0].len(), 8);
/// out.advance(8);
/// assert!(out.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Outbox {
    /// The head, or a body piece's framing prefix.
    pub head: Vec<u8>,
    /// A body piece.
    pub body: Bytes,
    /// A body piece's framing suffix and the body's end.
    pub tail: Vec<u8>,
    /// Bytes of `head`, `body`, `tail` (in that order) already written.
    sent: usize,
}

impl Outbox {
    /// Bytes still to write.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len() - self.sent
    }

    /// True when nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unwritten bytes as three slices (some may be empty; give the
    /// socket [`crate::buf::with_bytes`] of them).
    pub fn io_slices(&self) -> [IoSlice<'_>; 3] {
        let mut skip = self.sent;
        let mut part = |bytes: &[u8]| -> usize {
            let from = skip.min(bytes.len());
            skip -= from;
            from
        };
        let (h, b, t) = (part(&self.head), part(&self.body), part(&self.tail));
        [
            IoSlice::new(&self.head[h..]),
            IoSlice::new(&self.body[b..]),
            IoSlice::new(&self.tail[t..]),
        ]
    }

    /// The socket took `n` more bytes. Once everything went out the
    /// buffers are emptied (keeping their capacity).
    pub fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.head.len() + self.body.len() + self.tail.len());
        if self.is_empty() {
            self.clear();
        }
    }

    /// Forgets everything queued.
    pub fn clear(&mut self) {
        self.head.clear();
        self.body = Bytes::new();
        self.tail.clear();
        self.sent = 0;
    }
}

/// One connection's protocol side, owned by the driver's connection type
/// next to its socket, and lent to the [`Exchange`](super::Exchange) while
/// it carries a request.
///
/// ```
/// use roundtrip_io::Config;
/// use roundtrip_io::exchange::Link;
/// use roundtrip_io::proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
/// use roundtrip_io::proto::time::Instant;
/// let key = Key::new(Scheme::Http, "127.0.0.1", 80);
/// let mut pool = Pool::<()>::new(PoolConfig::default());
/// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { unreachable!() };
/// let link = Link::new(permit.id(), key, &Config::default());
/// assert!(link.proto.is_reusable());
/// ```
#[derive(Debug)]
pub struct Link {
    /// The core's state of the connection.
    pub proto: Connection,
    /// Received bytes not yet decoded.
    pub read_buf: BytesMut,
    /// Sizes reads from the previous response's size.
    pub sizer: ReadSizer,
    /// Bytes queued for the socket.
    pub out: Outbox,
    /// The pool's id for it.
    pub id: ConnId,
    /// Where it is connected.
    pub key: Key,
    /// The request it carries (or last carried), for the pool's trace
    /// events; taken when it is checked in or closed.
    pub request: Option<crate::trace::RequestId>,
    /// The last body bytes were read into the caller's memory by a read
    /// sized to them, with no room beyond (not a scatter read, see
    /// [`Exchange::handle_body_read`](super::Exchange::handle_body_read)):
    /// bytes the server sent after them (an extra response, garbage) were
    /// not seen as they would be by a read into the buffer. The next reuse
    /// probes the connection first, however young. (A scatter read, like
    /// a read into the buffer, sees what had arrived with the body; bytes
    /// that arrive later are the stale check's, as after any response.)
    /// A driver sets it too for a connection it cannot vouch for (the
    /// async driver, for a socket of another runtime's reactor), and
    /// answers the probe stale.
    pub unchecked_tail: bool,
    /// The TLS session of an `https` connection (or two: an origin's
    /// inside an `https://` proxy's), between the socket and the buffers
    /// above (which then hold plaintext).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<crate::tls::TlsLink>>,
}

impl Link {
    /// A new connection's side, before its first request.
    pub fn new(id: ConnId, key: Key, config: &crate::Config) -> Link {
        Link {
            proto: Connection::new(config.conn_config()),
            read_buf: BytesMut::new(),
            sizer: ReadSizer::default(),
            // Allocated by the first head written into it, to its size
            // (about 100 bytes for a GET), and kept: 1 KiB up front was a
            // tenth of what a connection held at 10,000 connections.
            out: Outbox::default(),
            id,
            key,
            request: None,
            unchecked_tail: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Makes room in [`wire_in`](Self::wire_in) for the next read: a
    /// head-sized buffer, the rest of a body of known length, or for a
    /// chunked body the rest of the chunk or more (see [`ReadSizer`]).
    pub fn reserve_read(&mut self) {
        let body = self.proto.remaining_body();
        let chunk = self.proto.remaining_chunk();
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            // The plaintext lands in `read_buf`: room for it too, so that
            // a response is one piece there as well. The ciphertext buffer
            // goes last: the read goes into it.
            self.sizer.reserve(&mut self.read_buf, body, chunk);
            return tls.reserve_read(&mut self.sizer, body, chunk);
        }
        self.sizer.reserve(&mut self.read_buf, body, chunk);
    }

    /// The read buffer as the second part of a scatter read after body
    /// bytes read into the caller's memory (see
    /// [`Exchange::handle_body_read`](super::Exchange::handle_body_read)),
    /// with room: its spare capacity, or a head-sized reserve when it has
    /// none. Any room will do: a byte there at all tells the machine what
    /// followed the body. For plaintext links, the only ones read so.
    pub fn tail_room(&mut self) -> &mut BytesMut {
        if self.read_buf.capacity() == self.read_buf.len() {
            crate::buf::reserve_read(&mut self.read_buf, None);
        }
        &mut self.read_buf
    }

    /// Where the driver appends the bytes it reads from the socket (then
    /// reports them with [`handle_input`](super::Exchange::handle_input)):
    /// [`read_buf`](Self::read_buf) itself, or the ciphertext buffer of a
    /// TLS connection.
    pub fn wire_in(&mut self) -> &mut BytesMut {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.wire_in();
        }
        &mut self.read_buf
    }

    /// What the driver writes to the socket (then reports with
    /// [`handle_written`](super::Exchange::handle_written)): [`out`](Self::out)
    /// itself, or the ciphertext of a TLS connection. Some slices may be
    /// empty; give the socket [`crate::buf::with_bytes`] of them.
    pub fn wire_out(&self) -> [IoSlice<'_>; 3] {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return [tls.wire_out(), IoSlice::new(&[]), IoSlice::new(&[])];
        }
        self.out.io_slices()
    }

    /// True when bytes wait for the socket (the driver then watches for
    /// writability).
    pub fn has_output(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.has_output() || !self.out.is_empty();
        }
        !self.out.is_empty()
    }

    /// Seals the next part of [`out`](Self::out) into ciphertext, on a TLS
    /// connection whose last part went out.
    pub(crate) fn prepare_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.prepare_write(&self.out);
        }
    }

    /// The socket took `n` bytes of [`wire_out`](Self::wire_out): the
    /// bytes of [`out`](Self::out) that completes.
    pub(crate) fn wire_written(&mut self, n: usize) -> usize {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.written(n);
        }
        n
    }

    /// Before the driver closes the socket: the bytes to send first,
    /// without waiting and ignoring failure (best effort, as Go's
    /// `tls.Conn.Close`), for a TLS connection its `close_notify` (RFC 8446
    /// section 6.1). Empty on plain TCP, and when the session cannot end
    /// cleanly: its handshake did not finish, a TLS error ended it, or a
    /// record is partly written.
    ///
    /// ```
    /// use roundtrip_io::exchange::Link;
    /// use roundtrip_io::proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
    /// use roundtrip_io::proto::time::Instant;
    /// let key = Key::new(Scheme::Http, "127.0.0.1", 80);
    /// let mut pool = Pool::<()>::new(PoolConfig::default());
    /// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { unreachable!() };
    /// let mut link = Link::new(permit.id(), key, &roundtrip_io::Config::default());
    /// assert!(link.goodbye().is_empty(), "nothing to say on plain TCP");
    /// ```
    pub fn goodbye(&mut self) -> &[u8] {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls
            && tls.close_notify()
        {
            return tls.wire_out_bytes();
        }
        &[]
    }

    /// `n` bytes were appended to the read buffer.
    pub fn record_read(&mut self, n: usize) {
        self.sizer.record(n);
    }

    /// Before it goes idle: gives back memory an idle connection may not
    /// hold.
    pub fn shrink_for_idle(&mut self) {
        self.out.clear();
        let mut tail = std::mem::take(&mut self.out.tail);
        shrink_for_idle(&mut self.read_buf, &mut self.out.head, &mut tail);
        self.out.head.shrink_to(WRITE_BUF_IDLE);
        self.sizer.end_exchange(&mut self.read_buf);
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.shrink_for_idle();
        }
    }
}

/// Implements [`PoolConn`](crate::pool::PoolConn) for a connection type
/// with a `link: Link` field and the socket field named second (which
/// [`Link::goodbye`]'s bytes go to before the pool closes it).
///
/// ```
/// use roundtrip_io::exchange::Link;
/// struct Conn { link: Link, stream: std::net::TcpStream }
/// roundtrip_io::impl_pool_link!(Conn, stream);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! impl_pool_link {
    ($conn:ty, $socket:ident) => {
        impl $crate::pool::PoolConn for $conn {
            fn id(&self) -> $crate::proto::pool::ConnId {
                self.link.id
            }
            fn key(&self) -> &$crate::proto::pool::Key {
                &self.link.key
            }
            fn proto(&self) -> &$crate::proto::conn::Connection {
                &self.link.proto
            }
            fn shrink_for_idle(&mut self) {
                self.link.shrink_for_idle();
            }
            fn take_request(&mut self) -> Option<$crate::trace::RequestId> {
                self.link.request.take()
            }
            fn goodbye(&mut self) {
                $crate::sys::send_nowait(&self.$socket, self.link.goodbye());
            }
        }
    };
}
