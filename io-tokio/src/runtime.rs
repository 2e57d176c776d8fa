//! The tokio side of the shared driver: [`Tokio`], the [`Runtime`] impl,
//! and the types whose traits are tokio's (the request body's reader, a
//! switched connection). No protocol here: only tokio's primitives.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use roundtrip_io::drive::{self, Runtime};
use roundtrip_io::{BoxReader, Clock};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::io::poll_read_buf;

/// The tokio runtime as the shared driver ([`roundtrip_io::drive`]) sees
/// it: sockets are tokio's `TcpStream`s, timers its `Sleep`, and a drain
/// goes on in a task spawned on the current runtime (without one, the
/// connection is closed instead).
///
/// ```
/// let client = roundtrip_io::drive::Client::new(roundtrip_io::Config::default(), roundtrip_tokio::Tokio);
/// assert_eq!(client.stats().idle, 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Socket = TcpStream;
    type Reader = BodyReader;
    type Timer = Sleep;
    type Home = Option<tokio::runtime::Id>;
    type Upgraded = Upgraded;

    // Not an `async fn`: the future must not borrow `self` (it is kept).
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send + 'static {
        async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }
    }

    /// tokio's own clock, which its timers fire by: under paused time
    /// (`test-util`) the client's deadlines pass by virtual time, as a
    /// `tokio::time::sleep`'s do; otherwise it reads the system's. Under
    /// paused time, keep a client within its one runtime: outside any
    /// runtime tokio's clock reads real time, and another runtime keeps
    /// its own virtual time (the client's deadlines then jump, harmlessly
    /// for the pool, which never lets its time go back).
    fn clock(&self) -> Clock {
        Clock::with_source(|| tokio::time::Instant::now().into_std())
    }

    fn timer(&self, at: Instant) -> Sleep {
        tokio::time::sleep_until(at.into())
    }

    fn home(&self) -> Option<tokio::runtime::Id> {
        tokio::runtime::Handle::try_current().ok().map(|h| h.id())
    }

    fn reset_timer(timer: Pin<&mut Sleep>, at: Instant) {
        timer.reset(at.into());
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(task);
        }
    }

    fn poll_read(
        socket: &mut TcpStream,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        poll_read_buf(Pin::new(socket), cx, buf)
    }

    /// `send(2)` for a single piece (std's, with `MSG_NOSIGNAL`), else
    /// one `sendmsg(MSG_NOSIGNAL)`: tokio's vectored write is a `writev`,
    /// which raises `SIGPIPE` on a socket the peer reset and kills a host
    /// that left the signal at its default (`roundtrip_io::sys::try_send`).
    fn poll_write(
        socket: &mut TcpStream,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let several = match bufs {
            [one] => return Pin::new(socket).poll_write(cx, one),
            several => several,
        };
        // Bounded: a wait follows each write the socket refused.
        loop {
            ready!(socket.poll_write_ready(cx))?;
            let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
                roundtrip_io::sys::try_send(&*socket, several)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                sent => return Poll::Ready(sent),
            }
        }
    }

    fn poll_read_body(
        reader: &mut BodyReader,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        poll_read_buf(reader.0.as_mut(), cx, buf)
    }
}

/// The reader a streamed [`Body`](crate::Body) holds: what
/// [`Body::from_reader`](roundtrip_io::Body::from_reader) makes of any
/// `AsyncRead + Send + 'static`.
///
/// ```
/// let body = roundtrip_tokio::Body::from_reader(&b"0123456789"[..], Some(10));
/// assert_eq!(body.len(), Some(10));
/// ```
pub struct BodyReader(Pin<Box<dyn AsyncRead + Send>>);

impl<T: AsyncRead + Send + 'static> BoxReader<T> for BodyReader {
    fn box_reader(reader: T) -> Self {
        BodyReader(Box::pin(reader))
    }
}

impl fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyReader")
    }
}

/// A connection switched to another protocol (`101`, or a `2xx` to
/// `CONNECT`), from
/// [`ResponseBody::upgrade`](crate::ResponseBody::upgrade): reads give the
/// bytes that came right after the response head first, then what the
/// socket receives. Over `https` the TLS session goes on: reads give its
/// plaintext, writes are sealed into its records (`flush` sends those that
/// wait; reads send them first too), and `shutdown` sends its
/// `close_notify` before it shuts the socket's write side. Dropped, it
/// sends none: the server sees the stream cut.
///
/// ```no_run
/// # async fn demo(mut upgraded: roundtrip_tokio::Upgraded) -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// upgraded.write_all(b"ping").await?;
/// upgraded.flush().await?; // over https, records may wait after a write
/// let mut answer = [0u8; 4];
/// upgraded.read_exact(&mut answer).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Upgraded(drive::Upgraded<TcpStream>);

impl From<drive::Upgraded<TcpStream>> for Upgraded {
    fn from(upgraded: drive::Upgraded<TcpStream>) -> Self {
        Upgraded(upgraded)
    }
}

impl Upgraded {
    /// The socket, and the bytes received after the head not yet read;
    /// `Err(self)` over `https`, where the socket carries records only the
    /// session here can read.
    ///
    /// ```no_run
    /// # fn demo(upgraded: roundtrip_tokio::Upgraded) {
    /// if let Ok((stream, leftover)) = upgraded.into_parts() {
    ///     println!("{} bytes came with the head", leftover.len());
    /// }
    /// # }
    /// ```
    pub fn into_parts(self) -> Result<(TcpStream, Bytes), Self> {
        self.0.into_parts().map_err(Upgraded)
    }

    /// True over `https`: the TLS session goes on in here.
    ///
    /// ```no_run
    /// # fn demo(upgraded: roundtrip_tokio::Upgraded) {
    /// println!("tls: {}", upgraded.is_tls());
    /// # }
    /// ```
    pub fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

/// The socket's write, for the poll functions.
fn write_socket(s: &mut TcpStream, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_write(cx, b)
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut self.get_mut().0;
        if !this.is_tls() {
            // Over `http`, the socket's own read (into the caller's
            // buffer as it is) once the bytes after the head were read.
            let Some(leftover) = this.read_leftover(buf.remaining()) else {
                return Pin::new(this.socket_mut()).poll_read(cx, buf);
            };
            buf.put_slice(&leftover);
            return Poll::Ready(Ok(()));
        }
        let out = buf.initialize_unfilled();
        let read = |s: &mut TcpStream, cx: &mut Context<'_>, out: &mut [u8]| {
            let mut read = ReadBuf::new(out);
            ready!(Pin::new(s).poll_read(cx, &mut read))?;
            Poll::Ready(Ok(read.filled().len()))
        };
        let n = ready!(this.poll_read_with(cx, out, read, write_socket))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

// Not vectored: tokio's vectored write is `writev`, which raises `SIGPIPE`
// on a connection the peer reset (a host that left the signal at its
// default dies); a plain write is `send(MSG_NOSIGNAL)`.
impl AsyncWrite for Upgraded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write_with(cx, b, write_socket)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .0
            .poll_flush_with(cx, write_socket, |s, cx| Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .0
            .poll_close_with(cx, write_socket, |s, cx| Pin::new(s).poll_shutdown(cx))
    }
}
