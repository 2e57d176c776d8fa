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
/// non-blocking one's `WouldBlock` comes through as it is). Over `https`,
/// a write may leave records waiting for the socket
/// ([`wants_write`](Self::wants_write)): a flush, or the next read or
/// write, sends them. Closing it sends the session's `close_notify`;
/// dropping it does not (the server then sees the stream cut), as a
/// dropped rustls `StreamOwned`.
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
    /// Where the socket's ciphertext is read, before it joins the
    /// session's buffer (allocated and zeroed at the first read only).
    scratch: Vec<u8>,
    /// How the server's side ended, given to reads once `plain` is read.
    end: Option<End>,
    /// The session failed (an alert was sent or received): what writes
    /// return from then on.
    broken: Option<String>,
    /// The caller closed: `close_notify` was queued.
    closing: bool,
}

/// How the server's side of a switched `https` connection ended.
#[cfg(feature = "tls")]
#[derive(Debug)]
enum End {
    /// With `close_notify`: reads give `Ok(0)`.
    Clean,
    /// Without it (RFC 8446 section 6.1): reads fail with `UnexpectedEof`,
    /// as for a cut body.
    Cut,
    /// The session failed: reads fail with `InvalidData` and this.
    Failed(String),
}

/// The most ciphertext one read of the socket takes: a whole record
/// (TLS 1.2 allows 2 KiB of expansion over 16 KiB of plaintext).
#[cfg(feature = "tls")]
const RECORD_READ: usize = 16 * 1024 + 2048 + 5;

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
            let mut side = TlsSide {
                link: tls,
                plain: read,
                scratch: Vec::new(),
                end: None,
                broken: None,
                closing: false,
            };
            // The exchange may have met the server's end with the head.
            match side.link.ended() {
                Some(true) => side.end = Some(End::Clean),
                Some(false) => side.outer_ended(),
                None => {}
            }
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
    /// `https`, the plaintext the session holds (read through the session
    /// then: the socket carries records).
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

    /// True when sealed records wait for the socket (over `https`): a
    /// write took the caller's bytes but the socket not all of their
    /// records. Reads and writes send them first; an event loop that
    /// stops writing watches for writability while this holds (or calls
    /// `flush`).
    ///
    /// ```
    /// assert!(!roundtrip_io::drive::Upgraded::new((), bytes::Bytes::new()).wants_write());
    /// ```
    pub fn wants_write(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.link.has_output();
        }
        false
    }

    /// Reads into `out` with `read`, the socket's poll function: the bytes
    /// after the head first, then the socket (over `https`, the plaintext
    /// of the records it brings; `Ok(0)` once the server sent
    /// `close_notify`, `UnexpectedEof` if it closed without one). Over
    /// `https`, records an earlier write left waiting go first, with
    /// `write`: a caller waiting for an answer may not write again.
    pub fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
        read: impl FnMut(&mut S, &mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
        write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let mut read = read;
        if let Some(bytes) = self.read_leftover(out.len()) {
            out[..bytes.len()].copy_from_slice(&bytes);
            return Poll::Ready(Ok(bytes.len()));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.poll_read(cx, &mut self.socket, out, read, write);
        }
        let _ = write;
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
                // record would reach the server as garbage. A session
                // that failed sent its alert instead.
                if tls.broken.is_none() {
                    std::task::ready!(tls.poll_send(cx, &mut self.socket, &mut write))?;
                    tls.link.close_notify();
                }
                tls.closing = true;
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
        mut write: impl FnMut(&mut S, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        // Bounded: each round reads the socket, which ends or blocks.
        loop {
            if !self.plain.is_empty() {
                let n = self.plain.len().min(out.len());
                out[..n].copy_from_slice(&self.plain.split_to(n));
                return Poll::Ready(Ok(n));
            }
            match &self.end {
                Some(End::Clean) => return Poll::Ready(Ok(0)),
                Some(End::Cut) => return Poll::Ready(Err(cut())),
                Some(End::Failed(why)) => return Poll::Ready(Err(invalid(why))),
                None if out.is_empty() => return Poll::Ready(Ok(0)),
                None => {}
            }
            if self.link.has_output() {
                // Records a write left: the server may wait for them
                // before it answers. Not sent now is not the read's
                // failure: the read goes on (a server that closed may have
                // sent its last bytes and `close_notify` first), and the
                // next write or flush tries again, and fails then.
                let _ = self.poll_send(cx, socket, &mut write);
            }
            if self.scratch.is_empty() {
                self.scratch = vec![0; RECORD_READ];
            }
            match std::task::ready!(read(socket, cx, &mut self.scratch)) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(0) => self.outer_ended(),
                Ok(n) => {
                    self.link.wire_in().extend_from_slice(&self.scratch[..n]);
                    match self.link.open(&mut self.plain) {
                        Ok(None) => {}
                        Ok(Some(true)) => self.end = Some(End::Clean),
                        Ok(Some(false)) => self.outer_ended(),
                        Err(e) => {
                            self.failed(e.error.to_string());
                            // Its alert, if the socket takes it now.
                            let _ = self.poll_send(cx, socket, &mut write);
                        }
                    }
                }
            }
        }
    }

    /// The socket, or the session around the innermost one, ended: the
    /// innermost session says whether its server closed cleanly.
    fn outer_ended(&mut self) {
        self.end = Some(match self.link.eof(&mut self.plain) {
            Ok(true) => End::Clean,
            Ok(false) => End::Cut,
            Err(e) => {
                self.broken = Some(e.error.to_string());
                End::Failed(e.error.to_string())
            }
        });
    }

    /// The session failed: reads and writes fail with `why` from now on.
    fn failed(&mut self, why: String) {
        self.broken = Some(why.clone());
        self.end = Some(End::Failed(why));
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
        if let Some(why) = &self.broken {
            return Poll::Ready(Err(invalid(why)));
        }
        // Earlier records first, whole and in order.
        std::task::ready!(self.poll_send(cx, socket, &mut write))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = self.link.seal_slice(data);
        if n == 0 {
            // Nothing waits and the session is established: only a
            // session that failed takes nothing.
            let why = "the TLS session takes no more data".to_string();
            self.broken = Some(why.clone());
            return Poll::Ready(Err(invalid(&why)));
        }
        // What the socket takes now goes; the rest waits for the next
        // read, write or flush ([`Upgraded::wants_write`]): the caller's
        // bytes are taken either way, and an error comes again then.
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
            if self.link.wire_out_bytes().is_empty() {
                // Records of an inner session wait for the outer one.
                self.link.pump();
                if self.link.wire_out_bytes().is_empty() {
                    let why = "the proxy's TLS session cannot carry the origin's records";
                    return Poll::Ready(Err(invalid(why)));
                }
            }
            match std::task::ready!(write(socket, cx, self.link.wire_out_bytes())) {
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

/// A read's error for a server that closed without `close_notify`.
#[cfg(feature = "tls")]
fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection without close_notify",
    )
}

/// A read's or write's error for a session that failed.
#[cfg(feature = "tls")]
fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("tls failed: {why}"))
}

impl<S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin> futures_io::AsyncRead
    for Upgraded<S>
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_with(
            cx,
            out,
            |s, cx, out| Pin::new(s).poll_read(cx, out),
            write_async,
        )
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

impl<S: io::Read + io::Write> io::Read for Upgraded<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        now(|cx| {
            self.poll_read_with(
                cx,
                out,
                |s, _, out| Poll::Ready(s.read(out)),
                |s, _, b| Poll::Ready(s.write(b)),
            )
        })
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

/// The TLS side on a socket the test controls: how much it takes at a
/// time, what the server sent, and its end; the server is a rustls
/// session in memory.
#[cfg(all(test, feature = "tls"))]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use bytes::BytesMut;
    use rustls::ServerConnection;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::Upgraded;
    use crate::exchange::Link;
    use crate::proto::pool::{Checkout, Key, Pool, PoolConfig, Scheme};
    use crate::proto::time::Instant;
    use crate::tls::{Peer, TlsConfig, TlsLink, client_config};

    /// The client's socket.
    #[derive(Default)]
    struct Pipe {
        /// Ciphertext written, not yet taken by the server.
        to_server: Vec<u8>,
        /// How many more bytes writes take (`WouldBlock` at 0).
        room: usize,
        /// Ciphertext for the client.
        from_server: Vec<u8>,
        /// The server closed: reads give 0 once `from_server` is read.
        eof: bool,
    }

    impl Read for Pipe {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.from_server.is_empty() {
                return match self.eof {
                    true => Ok(0),
                    false => Err(std::io::ErrorKind::WouldBlock.into()),
                };
            }
            let n = out.len().min(self.from_server.len());
            out[..n].copy_from_slice(&self.from_server[..n]);
            self.from_server.drain(..n);
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = data.len().min(self.room);
            self.to_server.extend_from_slice(&data[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn server() -> ServerConnection {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        ServerConnection::new(Arc::new(config)).unwrap()
    }

    /// The server takes what the client wrote; returns its plaintext.
    fn take(server: &mut ServerConnection, pipe: &mut Pipe) -> Vec<u8> {
        let wire = std::mem::take(&mut pipe.to_server);
        let mut src = &wire[..];
        let mut plain = Vec::new();
        // Bounded: each round takes bytes, or stops.
        while !src.is_empty() {
            if server.read_tls(&mut src).unwrap() == 0 {
                break;
            }
            server.process_new_packets().unwrap();
            let _ = server.reader().read_to_end(&mut plain);
        }
        plain
    }

    /// Moves what the server's session wrote to the client's socket.
    fn give(server: &mut ServerConnection, pipe: &mut Pipe) {
        // Bounded: a `Vec` takes all rustls holds.
        while server.wants_write() {
            server.write_tls(&mut pipe.from_server).unwrap();
        }
    }

    /// A client session whose handshake with `server` ended, in memory.
    fn handshake(server: &mut ServerConnection) -> TlsLink {
        let config = TlsConfig {
            danger_accept_invalid_certs: true,
            ..TlsConfig::default()
        };
        let mut link =
            TlsLink::new(client_config(&config).unwrap(), "localhost", Peer::Origin).unwrap();
        let mut pipe = Pipe::default();
        let mut plain = BytesMut::new();
        for _ in 0..10 {
            link.seal_slice(&[]); // the session's own records (ClientHello, Finished)
            pipe.to_server.extend_from_slice(link.wire_out_bytes());
            link.written(link.wire_out_bytes().len());
            take(server, &mut pipe);
            give(server, &mut pipe);
            link.wire_in().extend_from_slice(&pipe.from_server);
            pipe.from_server.clear();
            link.open(&mut plain).unwrap();
            if !link.is_handshaking() && !server.is_handshaking() && !link.has_output() {
                return link;
            }
        }
        panic!("no handshake");
    }

    /// The switched connection, as a driver hands it over: the link with
    /// the session, and `plain` decoded past the head.
    fn upgraded(tls: TlsLink, plain: &[u8]) -> Upgraded<Pipe> {
        let key = Key::new(Scheme::Https, "localhost", 443);
        let mut pool = Pool::<()>::new(PoolConfig::default());
        let Checkout::Dial(permit) = pool.checkout(&key, Instant::ZERO) else {
            panic!("a dial")
        };
        let mut link = Link::new(permit.id(), key, &crate::Config::default());
        link.tls = Some(Box::new(tls));
        link.read_buf.extend_from_slice(plain);
        let pipe = Pipe {
            room: usize::MAX,
            ..Pipe::default()
        };
        Upgraded::from_link(pipe, &mut link)
    }

    /// A request's pieces (a head and its body, a chunk and its framing)
    /// are sealed together: one record here, not one per piece (each
    /// record is an AEAD seal and 22 bytes more on the wire).
    #[test]
    fn a_head_and_its_body_are_sealed_into_one_record() {
        let mut server = server();
        let mut tls = handshake(&mut server);
        let mut out = crate::exchange::Outbox::default();
        out.head
            .extend_from_slice(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n");
        out.body = bytes::Bytes::from_static(b"body");
        tls.prepare_write(&out);
        let wire = tls.wire_out_bytes().to_vec();
        let mut records = 0;
        let mut at = 0;
        while at + 5 <= wire.len() {
            records += 1;
            at += 5 + usize::from(u16::from_be_bytes([wire[at + 3], wire[at + 4]]));
        }
        assert_eq!((records, at), (1, wire.len()));
        let mut pipe = Pipe {
            to_server: wire,
            ..Pipe::default()
        };
        let plain = take(&mut server, &mut pipe);
        assert_eq!(plain, b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
    }

    /// A write the socket took only part of leaves records waiting
    /// (`wants_write`); the next read sends them, so that a caller who
    /// writes a request and then waits for its answer never deadlocks.
    #[test]
    fn records_a_write_left_go_out_with_the_next_read() {
        let mut server = server();
        let mut io = upgraded(handshake(&mut server), b"");
        io.socket_mut().room = 100;
        let data = vec![7u8; 5000];
        assert_eq!(io.write(&data).unwrap(), 5000, "taken whole");
        assert!(io.wants_write());
        assert!(
            take(&mut server, io.socket_mut()).is_empty(),
            "a cut record"
        );
        io.socket_mut().room = usize::MAX;
        let mut buf = [0u8; 64];
        let err = io.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        assert!(!io.wants_write());
        assert_eq!(take(&mut server, io.socket_mut()), data);
    }

    /// The server's `close_notify` came with the head (the exchange read
    /// it): reads give what came before it, then the end, without waiting
    /// on the socket for more.
    #[test]
    fn a_close_notify_read_with_the_head_ends_reads() {
        let mut server = server();
        let mut tls = handshake(&mut server);
        server.writer().write_all(b"hello").unwrap();
        server.send_close_notify();
        let mut pipe = Pipe::default();
        give(&mut server, &mut pipe);
        tls.wire_in().extend_from_slice(&pipe.from_server);
        let mut plain = BytesMut::new();
        assert_eq!(tls.open(&mut plain).unwrap(), Some(true));
        let mut io = upgraded(tls, &plain);
        let mut got = Vec::new();
        io.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(io.read(&mut [0u8; 8]).unwrap(), 0);
    }

    /// A server that closes without `close_notify` cuts the stream: the
    /// bytes before the close, then `UnexpectedEof` on every read (never a
    /// clean end after it).
    #[test]
    fn a_close_without_close_notify_is_cut_on_every_read() {
        let mut server = server();
        let mut io = upgraded(handshake(&mut server), b"");
        server.writer().write_all(b"abc").unwrap();
        give(&mut server, io.socket_mut());
        io.socket_mut().eof = true;
        let mut buf = [0u8; 16];
        assert_eq!(io.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        for _ in 0..2 {
            let err = io.read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
        }
    }

    /// A record the session cannot open fails reads and writes from then
    /// on; `close_notify` is not sent after the alert.
    #[test]
    fn a_broken_session_fails_reads_and_writes() {
        let mut server = server();
        let mut io = upgraded(handshake(&mut server), b"");
        io.socket_mut()
            .from_server
            .extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            let err = io.read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        }
        let err = io.write(b"more").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        io.close_notify().unwrap();
        let sent = std::mem::take(&mut io.socket_mut().to_server);
        assert!(
            sent.len() < 32,
            "an alert, no close_notify after it: {sent:?}"
        );
    }

    /// `close_notify` waits for records a write left, and goes after them
    /// once the socket takes them; writes fail afterwards.
    #[test]
    fn close_notify_follows_the_records_that_wait() {
        let mut server = server();
        let mut io = upgraded(handshake(&mut server), b"");
        io.socket_mut().room = 10;
        assert_eq!(io.write(b"last words").unwrap(), 10);
        let err = io.close_notify().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        io.socket_mut().room = usize::MAX;
        io.close_notify().unwrap();
        assert_eq!(take(&mut server, io.socket_mut()), b"last words");
        let mut plain = Vec::new();
        let state = server.process_new_packets().unwrap();
        let _ = server.reader().read_to_end(&mut plain);
        assert!(state.peer_has_closed(), "close_notify came");
        assert!(io.write(b"more").is_err());
    }
}
