//! One connection: the socket beside the exchange machine's side of it
//! ([`Link`]), and the socket work the driver does for the machine. No
//! protocol here: bytes move between the socket and the link's buffers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use roundtrip_io::exchange::Link;
use roundtrip_io::proto::pool::DialPermit;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// A connection as the pool keeps it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub link: Link,
}

// Goes back to the pool through `roundtrip_io::pool::SharedPool`.
roundtrip_io::impl_pool_link!(Conn);

impl Conn {
    /// One read into the spare capacity of the link's read buffer (sized
    /// by the link, so that a whole response usually takes one read).
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.link.reserve_read();
        poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.link.read_buf)
    }

    /// One write of what the link queued: `write(2)` for a single piece,
    /// else vectored. A write of nothing is [`write_zero`](roundtrip_io::buf::write_zero).
    pub fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let slices = self.link.out.io_slices();
        let stream = Pin::new(&mut self.stream);
        let written = match roundtrip_io::buf::with_bytes(&slices) {
            [one] => stream.poll_write(cx, one),
            several => stream.poll_write_vectored(cx, several),
        };
        written.map(|r| match r {
            Ok(0) => Err(roundtrip_io::buf::write_zero()),
            r => r,
        })
    }
}

/// A future the driver keeps between polls.
type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

/// A dial in progress: the pool's permit and where the dial stands.
pub(crate) struct Dialing {
    pub permit: DialPermit,
    pub step: DialStep,
    /// The last connect error, reported when no address is left.
    pub last: Option<io::Error>,
}

/// Where a dial stands.
pub(crate) enum DialStep {
    /// Nothing started yet.
    Resolve,
    Resolving(Pending<Vec<SocketAddr>>),
    /// The addresses left to try.
    Next(std::vec::IntoIter<SocketAddr>),
    Connecting {
        addr: SocketAddr,
        rest: std::vec::IntoIter<SocketAddr>,
        connect: Pending<TcpStream>,
    },
}

impl Dialing {
    pub fn new(permit: DialPermit) -> Dialing {
        Dialing {
            permit,
            step: DialStep::Resolve,
            last: None,
        }
    }
}

/// Resolves `host:port`.
pub(crate) fn resolve(host: String, port: u16) -> Pending<Vec<SocketAddr>> {
    Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
}

/// Connects to `addr`, with Nagle's algorithm off.
pub(crate) fn connect(addr: SocketAddr) -> Pending<TcpStream> {
    Box::pin(async move {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}
