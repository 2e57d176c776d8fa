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

    fn resolve(
        &self,
        resolver: &roundtrip_io::resolve::Resolver,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let (host, resolver) = (host.to_owned(), resolver.clone());
        async move {
            if !resolver.is_custom() {
                return Ok(tokio::net::lookup_host((host, port)).await?.collect());
            }
            tokio::task::spawn_blocking(move || resolver.resolve_blocking(&host, port))
                .await
                .map_err(io::Error::other)?
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
    /// that left the signal at its default (`roundtrip_io::sys::send_vectored`).
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
                roundtrip_io::sys::send_vectored(&*socket, several)
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

/// A connection switched to another protocol, from
/// [`ResponseBody::upgrade`](crate::ResponseBody::upgrade): reads give the
/// bytes that came right after the response head first, then what the
/// socket receives.
///
/// ```no_run
/// # async fn demo(mut upgraded: roundtrip_tokio::Upgraded) -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// upgraded.write_all(b"ping").await?;
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
    /// The socket, and the bytes received after the head not yet read.
    ///
    /// ```no_run
    /// # fn demo(upgraded: roundtrip_tokio::Upgraded) {
    /// let (stream, leftover) = upgraded.into_parts();
    /// # }
    /// ```
    pub fn into_parts(self) -> (TcpStream, Bytes) {
        self.0.into_parts()
    }

    fn socket(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(self.get_mut().0.socket_mut())
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(leftover) = self.0.read_leftover(buf.remaining()) else {
            return self.socket().poll_read(cx, buf);
        };
        buf.put_slice(&leftover);
        Poll::Ready(Ok(()))
    }
}

// Not vectored: tokio's vectored write is `writev`, which raises `SIGPIPE`
// on a connection the peer reset (a host that left the signal at its
// default dies); a plain write is `send(MSG_NOSIGNAL)`.
impl AsyncWrite for Upgraded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.socket().poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.socket().poll_shutdown(cx)
    }
}
