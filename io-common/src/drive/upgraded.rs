//! A connection switched to another protocol (`101`, or a `2xx` to
//! `CONNECT`), handed over to the caller: over `http`, the bytes read past
//! the head and then the socket; over `https`, the same through the TLS
//! session, which goes on with the connection.
//!
//! Written once for every backend: the reads and writes are driven through
//! the socket's own poll functions, given as closures, so the async
//! runtimes (`futures-io`, tokio) and the `std::io` sockets (blocking, and
//! mio's non-blocking ones, whose `WouldBlock` passes through) share the
//! one implementation of the TLS side.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
#[cfg(feature = "tls")]
use bytes::BytesMut;

use crate::exchange::Link;

/// A connection switched to another protocol, from
/// [`ResponseBody::upgrade`](super::ResponseBody::upgrade) (and the other
/// backends' `upgrade`): the bytes that came right after the response
/// head, then the socket. Over `https` the TLS session goes on: reads
/// give its plaintext and writes are sealed into its records, so the
/// caller speaks the new protocol (a WebSocket, a tunnel) as over `http`.
///
/// It is a `futures_io::AsyncRead + AsyncWrite` on a socket with those
/// traits, and a `std::io::Read + Write` on a socket with those (a
/// non-blocking one's `WouldBlock` comes through as it is).
///
/// ```
/// use roundtrip_io::drive::Upgraded;
/// let mut upgraded = Upgraded::new((), bytes::Bytes::from_static(b"hello"));
/// assert_eq!(upgraded.read_leftover(3).as_deref(), Some(&b"hel"[..]));
/// let ((), rest) = upgraded.into_parts().unwrap();
/// assert_eq!(rest, "lo");
/// ```
pub struct Upgraded<S> {
    socket: S,
    /// Bytes received after the head, not yet read.
    leftover: Bytes,
    /// The TLS session of an `https` connection.
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsSide>>,
}

/// The TLS session of a switched `https` connection.
#[cfg(feature = "tls")]
struct TlsSide {
    link: Box<crate::tls::TlsLink>,
    /// Plaintext received, not yet read (the bytes after the head first).
    plain: BytesMut,
    /// The server ended its side: `close_notify`, or a clean end of an
    /// outer session.
    ended: bool,
    /// The caller closed: `close_notify` was queued.
    closing: bool,
}

/// The most ciphertext one read of the socket takes: a whole record.
#[cfg(feature = "tls")]
const RECORD_READ: usize = 16 * 1024 + 256;

impl<S> fmt::Debug for Upgraded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("leftover", &self.leftover.len())
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl<S> Upgraded<S> {
    /// `socket`, with `leftover` to be read before it.
    ///
    /// ```
    /// let upgraded = roundtrip_io::drive::Upgraded::new((), bytes::Bytes::new());
    /// assert_eq!(upgraded.into_parts().unwrap().1, "");
    /// ```
    pub fn new(socket: S, leftover: Bytes) -> Upgraded<S> {
        Upgraded {
            socket,
            leftover,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The switched connection `link` on `socket`, for a driver's
    /// `upgrade`: the bytes decoded past the head, and the TLS session of
    /// an `https` connection, are taken from the link.
    ///
    /// ```
    /// use roundtrip_io::{Config, drive::Upgraded, exchange::Link};
    /// use roundtrip_io::proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
    /// use roundtrip_io::proto::time::Instant;
    /// let key = Key::new(Scheme::Http, "127.0.0.1", 80);
    /// let mut pool = Pool::<()>::new(PoolConfig::default());
    /// let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else { unreachable!() };
    /// let mut link = Link::new(permit.id(), key, &Config::default());
    /// link.read_buf.extend_from_slice(b"hi");
    /// let upgraded = Upgraded::from_link((), &mut link);
    /// assert!(!upgraded.is_tls());
    /// assert_eq!(upgraded.into_parts().unwrap().1, "hi");
    /// ```
    pub fn from_link(socket: S, link: &mut Link) -> Upgraded<S> {
        let read = link.read_buf.split();
        #[cfg(feature = "tls")]
        if let Some(tls) = link.tls.take() {
            let side = TlsSide {
                link: tls,
                plain: read,
                ended: false,
                closing: false,
            };
            return Upgraded {
                socket,
                leftover: Bytes::new(),
                tls: Some(Box::new(side)),
            };
        }
        Upgraded::new(socket, read.freeze())
    }

    /// True when the connection is `https`: the socket carries TLS
    /// records, and the session here reads and writes them.
    ///
    /// ```
    /// assert!(!roundtrip_io::drive::Upgraded::new((), bytes::Bytes::new()).is_tls());
    /// ```
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The socket, and the bytes received after the head not yet read;
    /// `Err(self)` for an `https` connection, whose socket carries records
    /// only its session can read.
    ///
    /// ```
    /// let upgraded = roundtrip_io::drive::Upgraded::new(7u8, bytes::Bytes::from_static(b"x"));
    /// assert_eq!(upgraded.into_parts().unwrap(), (7, bytes::Bytes::from_static(b"x")));
    /// ```
    pub fn into_parts(self) -> Result<(S, Bytes), Self> {
        if self.is_tls() {
            return Err(self);
        }
        Ok((self.socket, self.leftover))
    }

    /// The socket (to register it with an event loop; reading or writing
    /// it directly skips the bytes here and, over `https`, the session).
    ///
    /// ```
    /// let mut upgraded = roundtrip_io::drive::Upgraded::new(7u8, bytes::Bytes::new());
    /// *upgraded.socket_mut() += 1;
    /// assert_eq!(upgraded.into_parts().unwrap().0, 8);
    /// ```
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Up to `max` of the bytes received after the head, not yet read;
    /// `None` once they were all read (read the socket then). Over
    /// `https`, the plaintext the session holds.
    ///
    /// ```
    /// let mut upgraded = roundtrip_io::drive::Upgraded::new((), bytes::Bytes::from_static(b"ab"));
    /// assert_eq!(upgraded.read_leftover(8).as_deref(), Some(&b"ab"[..]));
    /// assert_eq!(upgraded.read_leftover(8), None);
    /// ```
    pub fn read_leftover(&mut self, max: usize) -> Option<Bytes> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let n = tls.plain.len().min(max);
            return (n > 0).then(|| tls.plain.split_to(n).freeze());
        }
        let n = self.leftover.len().min(max);
        (n > 0).then(|| self.leftover.split_to(n))
    }

    /// Reads into `out` with `read`, the socket's poll function: the bytes
    /// after the head first, then the socket (over `https`, the plaintext
    /// of the records it brings; `Ok(0)` once the server sent
    /// `close_notify`, `UnexpectedEof` if it closed without one).
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
        mut read: impl FnMut(&mut S, &mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if let Some(bytes) = self.read_leftover(out.len()) {
            out[..bytes.len()].copy_from_slice(&bytes);
            return Poll::Ready(Ok(bytes.len()));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.poll_read(cx, &mut self.socket, out, read);
        }
        read(&mut self.socket, cx, out)
    }

    /// Writes `data` with `write`, the socket's poll function (over
    /// `https`, sealed into records: the count is of `data` taken, whose
    /// records may still wait for [`poll_flush_with`](Self::poll_flush_with)).
    pub fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        mut write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.poll_write(cx, &mut self.socket, data, write);
        }
        write(&mut self.socket, cx, data)
    }

    /// Sends what waits (over `https`, sealed records) with `write`, then
    /// flushes the socket with `flush`.
    pub fn poll_flush_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
        mut flush: impl FnMut(&mut S, &mut Context<'_>) -> Poll<io::Result<()>>,
    ) -> Poll<io::Result<()>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            std::task::ready!(tls.poll_send(cx, &mut self.socket, &mut write))?;
        }
        let _ = &mut write;
        flush(&mut self.socket, cx)
    }

    /// Ends the caller's side: over `https` the session's `close_notify`
    /// first (RFC 8446 section 6.1), sent with `write`; then `close`, the
    /// socket's own (its write side shut down).
    pub fn poll_close_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
        mut close: impl FnMut(&mut S, &mut Context<'_>) -> Poll<io::Result<()>>,
    ) -> Poll<io::Result<()>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            if !tls.closing {
                // Records partly sent go first: an alert after a cut
                // record would reach the server as garbage.
                std::task::ready!(tls.poll_send(cx, &mut self.socket, &mut write))?;
                tls.closing = true;
                tls.link.close_notify();
            }
            std::task::ready!(tls.poll_send(cx, &mut self.socket, &mut write))?;
        }
        let _ = &mut write;
        close(&mut self.socket, cx)
    }
}

#[cfg(feature = "tls")]
impl TlsSide {
    fn poll_read<S>(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut S,
        out: &mut [u8],
        mut read: impl FnMut(&mut S, &mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        // Bounded: each round reads the socket, which ends or blocks.
        loop {
            if !self.plain.is_empty() {
                let n = self.plain.len().min(out.len());
                out[..n].copy_from_slice(&self.plain.split_to(n));
                return Poll::Ready(Ok(n));
            }
            if self.ended || out.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let wire = self.link.wire_in();
            let held = wire.len();
            wire.resize(held + RECORD_READ, 0);
            let got = read(socket, cx, &mut wire[held..]);
            let n = match &got {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            wire.truncate(held + n);
            match got {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    self.ended = true;
                    let clean = self.link.eof(&mut self.plain).map_err(tls_io)?;
                    if !clean && self.plain.is_empty() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection without close_notify",
                        )));
                    }
                }
                Poll::Ready(Ok(_)) => {
                    if self.link.open(&mut self.plain).map_err(tls_io)?.is_some() {
                        self.ended = true;
                    }
                }
            }
        }
    }

    fn poll_write<S>(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut S,
        data: &[u8],
        mut write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if self.closing {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the TLS session was closed (close_notify sent)",
            )));
        }
        // Earlier records first, whole and in order.
        std::task::ready!(self.poll_send(cx, socket, &mut write))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = self.link.seal_slice(data);
        // What the socket takes now goes; the rest waits for the next
        // write or flush (the caller's bytes are taken either way). An
        // error comes again at the next write or flush.
        let _ = self.poll_send(cx, socket, &mut write);
        Poll::Ready(Ok(n))
    }

    /// Writes the ciphertext that waits, until none does.
    fn poll_send<S>(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut S,
        write: &mut impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<()>> {
        // Bounded: each round writes bytes, or returns.
        while self.link.has_output() {
            let wire = self.link.wire_out_bytes();
            if wire.is_empty() {
                // Records of an inner session wait for the outer one.
                self.link.pump();
                if self.link.wire_out_bytes().is_empty() {
                    break;
                }
                continue;
            }
            match std::task::ready!(write(socket, cx, wire)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.link.written(n);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A session's failure as the `io::Error` a read returns.
#[cfg(feature = "tls")]
fn tls_io(e: crate::tls::SessionError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.error)
}

impl<S: futures_io::AsyncRead + Unpin> futures_io::AsyncRead for Upgraded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_read_with(cx, out, |s, cx, out| Pin::new(s).poll_read(cx, out))
    }
}

/// The socket's write, for the poll functions.
fn write_async<S: futures_io::AsyncWrite + Unpin>(
    s: &mut S,
    cx: &mut Context<'_>,
    b: &[u8],
) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_write(cx, b)
}

// Not vectored: a socket's vectored write is `writev`, which raises
// `SIGPIPE` on a connection the peer reset (a host that left the signal at
// its default dies); a plain write is `send(MSG_NOSIGNAL)`.
impl<S: futures_io::AsyncWrite + Unpin> futures_io::AsyncWrite for Upgraded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_with(cx, b, write_async)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_flush_with(cx, write_async, |s, cx| Pin::new(s).poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_close_with(cx, write_async, |s, cx| Pin::new(s).poll_close(cx))
    }
}

/// Runs a poll function of a `std::io` socket, which never answers
/// `Pending` (a non-blocking socket's `WouldBlock` is an error it returns).
fn now<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>) -> io::Result<T> {
    match f(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<S: io::Read> io::Read for Upgraded<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        now(|cx| self.poll_read_with(cx, out, |s, _, out| Poll::Ready(s.read(out))))
    }
}

impl<S: io::Write> io::Write for Upgraded<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        now(|cx| self.poll_write_with(cx, data, |s, _, b| Poll::Ready(s.write(b))))
    }

    fn flush(&mut self) -> io::Result<()> {
        now(|cx| {
            self.poll_flush_with(
                cx,
                |s, _, b| Poll::Ready(s.write(b)),
                |s, _| Poll::Ready(s.flush()),
            )
        })
    }
}

impl<S: io::Write> Upgraded<S> {
    /// Over `https`, sends the session's `close_notify` (RFC 8446 section
    /// 6.1), after what waits; writes fail afterwards. Over `http`,
    /// flushes. Then shut the socket down, or drop it.
    ///
    /// ```
    /// let mut upgraded = roundtrip_io::drive::Upgraded::new(Vec::<u8>::new(), bytes::Bytes::new());
    /// std::io::Write::write_all(&mut upgraded, b"bye")?;
    /// upgraded.close_notify()?;
    /// assert_eq!(upgraded.into_parts().unwrap().0, b"bye");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close_notify(&mut self) -> io::Result<()> {
        now(|cx| {
            self.poll_close_with(
                cx,
                |s, _, b| Poll::Ready(s.write(b)),
                |s, _| Poll::Ready(s.flush()),
            )
        })
    }
}
