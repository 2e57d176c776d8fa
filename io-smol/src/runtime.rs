//! The smol side of the shared driver: [`Smol`], the [`Runtime`] impl on
//! `async-io` sockets and timers and smol's global executor. No protocol
//! here: only smol's primitives.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::BytesMut;
use roundtrip_io::drive::{self, Runtime};
use roundtrip_io::sys;
use smol::io::AsyncRead;
use smol::{Async, Timer};

/// The reader a streamed request body holds.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// smol as the shared driver ([`roundtrip_io::drive`]) sees it: sockets
/// are `Async<TcpStream>`, timers `async-io`'s, and a drain goes on in a
/// task on smol's global executor.
///
/// ```
/// let client = roundtrip_io::drive::Client::new(roundtrip_io::Config::default(), roundtrip_smol::Smol);
/// assert_eq!(client.stats().idle, 0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Socket = Async<TcpStream>;
    type Reader = Reader;
    type Timer = Timer;
    type Home = ();
    type Upgraded = drive::Upgraded<Async<TcpStream>>;

    // Not an `async fn`: the future must not borrow `self` (it is kept).
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<Self::Socket>> + Send + 'static {
        async move {
            let stream = Async::<TcpStream>::connect(addr).await?;
            stream.get_ref().set_nodelay(true)?;
            Ok(stream)
        }
    }

    fn timer(&self, at: Instant) -> Timer {
        Timer::at(at)
    }

    /// async-io's timers are the process's (its reactor thread's).
    fn home(&self) {}

    fn reset_timer(timer: Pin<&mut Timer>, at: Instant) {
        timer.get_mut().set_at(at);
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }

    /// `read(2)` straight into the spare capacity, waiting for readiness
    /// while the socket has nothing.
    fn poll_read(
        socket: &mut Self::Socket,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        // Bounded: a wake-up without bytes is rare, and each costs a wait;
        // a signal interrupts finitely often.
        loop {
            match sys::read_into_spare(socket.get_ref(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(socket.poll_readable(cx))?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                read => return Poll::Ready(read),
            }
        }
    }

    /// One `sendmsg(MSG_NOSIGNAL)`: async-io's vectored write is a
    /// `writev`, which raises `SIGPIPE` on a socket the peer reset and
    /// kills a host that left the signal at its default.
    fn poll_write(
        socket: &mut Self::Socket,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Bounded: a wait follows each write the socket refused.
        loop {
            match sys::try_send(socket.get_ref(), bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(socket.poll_writable(cx))?
                }
                sent => return Poll::Ready(sent),
            }
        }
    }

    /// `futures-io` reads into initialized memory: the spare capacity is
    /// zeroed first, and what was not read cut off again.
    fn poll_read_body(
        reader: &mut Reader,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let room = buf.len() - start;
        let read = Pin::new(reader).poll_read(cx, &mut buf[start..]);
        let n = match &read {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        if n > room {
            // A reader that breaks its contract: the zeros past what it
            // wrote must not go out as body bytes.
            buf.truncate(start);
            let why = format!("the body's reader said it read {n} bytes into {room}");
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        buf.truncate(start + n);
        read
    }
}
