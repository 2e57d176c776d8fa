//! One connection: the non-blocking socket beside its [`Link`] (the core's
//! state, the read buffer, the bytes to write), and the little the driver
//! tracks about its readiness. Every protocol decision is the exchange
//! machine's; these are the socket operations it asks for.

use std::io;
use std::net::SocketAddr;

use mio::Interest;
use mio::net::TcpStream;
use roundtrip_io::exchange::Link;

use roundtrip_io::shared_buf::{Lent, SharedReadBuf};

/// What a connection is doing.
pub(crate) enum ConnState {
    /// A non-blocking connect to this address is in progress for the
    /// exchange in this slot (one of its Happy Eyeballs attempts).
    Connecting { exchange: usize, addr: SocketAddr },
    /// Carrying the exchange in this slot.
    Busy(usize),
    /// In the pool.
    Idle,
}

/// A connection in the driver's slab; its slot is its token.
pub(crate) struct Conn {
    pub socket: TcpStream,
    pub link: Link,
    pub state: ConnState,
    /// The interest registered now.
    pub interest: Interest,
    /// A read may find something no event will report again: an event said
    /// readable and no read since came back short. A short read (TCP hands
    /// over all it holds, up to the room given) means the socket was read
    /// dry, and with edge-triggered readiness the next bytes raise an event:
    /// the read that would only say `WouldBlock` is skipped (one syscall
    /// less per response).
    pub read_pending: bool,
    /// An event said the server shut its side (or the socket failed): once
    /// the bytes before it are read, a read returns EOF or the error, and no
    /// further event will say so. A hint until the socket confirms it: the
    /// event may be a late one of the connection that held this slot (its
    /// token) before, closed earlier in the same batch (see
    /// `Driver::release_conn`).
    pub peer_closed: bool,
    /// Which of the driver's buffers the link's read buffer is.
    pub lent: Lent,
}

/// What one read did.
pub(crate) enum Read {
    /// This many bytes were appended to the read buffer (0 = EOF).
    Bytes(usize),
    /// Nothing there now: wait for the next event.
    WouldBlock,
}

impl Conn {
    /// The interest the connection needs now: writability while connecting
    /// or while bytes wait to be written, readability always (an idle
    /// connection is watched for the server closing it).
    pub fn wanted_interest(&self) -> Interest {
        match self.state {
            ConnState::Connecting { .. } => Interest::READABLE | Interest::WRITABLE,
            _ if self.link.has_output() => Interest::READABLE | Interest::WRITABLE,
            _ => Interest::READABLE,
        }
    }

    /// Writes what the link holds, once (`send` for one piece, one
    /// `sendmsg` for several, neither raising `SIGPIPE`); `Ok(None)` when
    /// the socket is full.
    pub fn write(&mut self) -> io::Result<Option<usize>> {
        let slices = self.link.wire_out();
        let bufs = roundtrip_io::buf::with_bytes(&slices);
        match roundtrip_io::sys::try_send(&self.socket, bufs) {
            Ok(0) => Err(roundtrip_io::buf::write_zero()),
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads once into the link's buffer, sized by the link, unless the
    /// last read left the socket dry (see [`read_pending`](Self::read_pending)).
    /// The link borrows one of the driver's buffers for it (see
    /// [`SharedReadBuf`]).
    pub fn read(&mut self, shared: &mut SharedReadBuf) -> io::Result<Read> {
        if !self.read_pending {
            return Ok(Read::WouldBlock);
        }
        shared.lend(&mut self.link, &mut self.lent);
        self.link.reserve_read();
        let room = self.link.wire_in().capacity() - self.link.wire_in().len();
        // Bounded: only `Interrupted` repeats.
        loop {
            match roundtrip_io::sys::read_into_spare(&self.socket, self.link.wire_in()) {
                Ok(n) => {
                    // Dry, and no EOF announced that no event will repeat.
                    if n > 0 && n < room && !self.peer_closed {
                        self.read_pending = false;
                    }
                    return Ok(Read::Bytes(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    return Ok(Read::WouldBlock);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A connecting socket became ready: connected (`Ok(true)`), not yet
    /// (`Ok(false)`, a spurious event), or failed.
    pub fn connected(&self) -> io::Result<bool> {
        if let Some(e) = self.socket.take_error()? {
            return Err(e);
        }
        match self.socket.peer_addr() {
            Ok(_) => self.socket.set_nodelay(true).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}
