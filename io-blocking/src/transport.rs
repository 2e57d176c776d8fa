//! One pooled connection: the socket, its buffers and the core's state, and
//! the few socket operations the client needs.

use std::io::{self, IoSlice, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant as StdInstant};

use bytes::BytesMut;
use roundtrip_io::proto::conn::Connection;
use roundtrip_io::proto::pool::{ConnId, Key};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::connect_failure;
use roundtrip_io::{Config, Error, Filled, Phase, TimeoutKind, earliest};

/// A connection as the pool keeps it. It travels boxed (`Box<Conn>`)
/// between the pool, the exchange and the response body: every hand-over
/// then moves a pointer, not these ~800 bytes of buffers and core state,
/// for one allocation per dial.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub read_buf: BytesMut,
    /// Sizes reads from the previous response's size.
    pub sizer: roundtrip_io::buf::ReadSizer,
    pub write_buf: Vec<u8>,
    pub tail_buf: Vec<u8>,
    pub proto: Connection,
    pub id: ConnId,
    pub key: Key,
    /// Served a request before this one (came from the pool).
    pub reused: bool,
    /// When it last went idle.
    pub idle_since: StdInstant,
    /// The receive timeout currently set on the socket.
    read_timeout: Option<Duration>,
}

impl Conn {
    /// Connects to `key`, trying each resolved address in turn.
    pub fn connect(
        key: &Key,
        id: ConnId,
        config: &Config,
        deadline: Option<StdInstant>,
    ) -> Result<Box<Conn>, Error> {
        let addr = format!("{}:{}", key.host(), key.port());
        let connect_err = |source| Error::Connect {
            addr: addr.clone(),
            source,
        };
        let addrs = (key.host(), key.port())
            .to_socket_addrs()
            .map_err(connect_err)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
        for sock_addr in addrs {
            let limit = earliest([
                deadline,
                config.connect_timeout.map(|t| StdInstant::now() + t),
            ]);
            let left = limit.map(|at| at.saturating_duration_since(StdInstant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                let kind = TimeoutKind::Connect;
                return Err(Error::timed_out(kind, deadline, Phase::Connect, false));
            }
            config.trace(|| TraceEvent::ConnectStart { addr: sock_addr });
            let result = match left {
                Some(left) => TcpStream::connect_timeout(&sock_addr, left),
                None => TcpStream::connect(sock_addr),
            }
            .and_then(|stream| Conn::wrap(stream, key, id, config));
            config.trace(|| TraceEvent::ConnectDone {
                addr: sock_addr,
                result: result.as_ref().map(|_| ()).map_err(connect_failure),
            });
            match result {
                Ok(conn) => return Ok(conn),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let kind = TimeoutKind::Connect;
                    return Err(Error::timed_out(kind, deadline, Phase::Connect, false));
                }
                Err(e) => last = e,
            }
        }
        Err(connect_err(last))
    }

    fn wrap(stream: TcpStream, key: &Key, id: ConnId, config: &Config) -> io::Result<Box<Conn>> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(config.write_timeout)?;
        Ok(Box::new(Conn {
            stream,
            read_buf: BytesMut::new(),
            sizer: roundtrip_io::buf::ReadSizer::default(),
            write_buf: Vec::with_capacity(1024),
            tail_buf: Vec::new(),
            proto: Connection::new(config.conn_config()),
            id,
            key: key.clone(),
            reused: false,
            idle_since: StdInstant::now(),
            read_timeout: None,
        }))
    }

    /// Writes every slice in full, reporting progress to the core. Stops at
    /// `deadline`.
    pub fn write_all(
        &mut self,
        bufs: &mut [IoSlice<'_>],
        deadline: Option<StdInstant>,
    ) -> Result<(), Error> {
        let mut bufs = bufs;
        // Drop leading empty slices (an empty frame prefix, or the empty end
        // of a `Content-Length` body): a write of only empty slices returns
        // `Ok(0)`, which would read as a dead socket.
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            if deadline.is_some_and(|d| StdInstant::now() >= d) {
                let reached = self.proto.wrote_any_byte();
                return Err(Error::Timeout {
                    kind: TimeoutKind::Total,
                    phase: Phase::Write,
                    reached_server: reached,
                });
            }
            let written = match roundtrip_io::buf::with_bytes(bufs) {
                [one] => self.stream.write(one),
                several => self.stream.write_vectored(several),
            };
            match written {
                Ok(0) => {
                    let e = roundtrip_io::buf::write_zero();
                    return Err(Error::from_io(e, Phase::Write, self.proto.wrote_any_byte()));
                }
                Ok(n) => {
                    self.proto.handle_written(n);
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::from_io(e, Phase::Write, self.proto.wrote_any_byte())),
            }
        }
        Ok(())
    }

    /// Reads once into the read buffer, waiting at most until `until`.
    pub fn fill(&mut self, until: Option<StdInstant>) -> io::Result<Filled> {
        self.reserve();
        let wait = match until {
            Some(at) => {
                let left = at.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    return Ok(Filled::TimedOut);
                }
                Some(left)
            }
            None => None,
        };
        self.set_read_timeout(wait)?;
        loop {
            match roundtrip_io::sys::read_into_spare(&self.stream, &mut self.read_buf) {
                Ok(0) => return Ok(Filled::Eof),
                Ok(n) => {
                    self.sizer.record(n);
                    return Ok(Filled::Bytes);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Filled::TimedOut);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes room for the next read: a head-sized buffer, or the rest of a
    /// body of known length, so that one read can take it whole.
    /// Makes room for a read done outside [`fill`](Self::fill).
    pub fn reserve_now(&mut self) {
        self.reserve();
    }

    fn reserve(&mut self) {
        self.sizer
            .reserve(&mut self.read_buf, self.proto.remaining_body());
    }

    /// Sets `SO_RCVTIMEO` only when it must be shorter than what is set: a
    /// timeout that fires early is re-checked by the caller, so the socket
    /// option is not rewritten (a syscall) on every read.
    fn set_read_timeout(&mut self, want: Option<Duration>) -> io::Result<()> {
        let want = want.map(|d| d.max(Duration::from_millis(1)));
        let too_long = match (self.read_timeout, want) {
            (_, None) => self.read_timeout.is_some(),
            (None, Some(_)) => true,
            (Some(set), Some(want)) => set > want + want / 8 || set + set / 2 < want,
        };
        if too_long {
            self.stream.set_read_timeout(want)?;
            self.read_timeout = want;
        }
        Ok(())
    }

    /// Without blocking, asks the kernel whether the server closed this idle
    /// connection or sent bytes on it.
    pub fn is_stale(&self) -> bool {
        roundtrip_io::sys::is_stale(&self.stream)
    }

    /// Without blocking, tells whether response bytes (or EOF) are waiting:
    /// while streaming a request body, an early answer stops the upload.
    pub fn is_readable(&self) -> bool {
        roundtrip_io::sys::is_readable(&self.stream)
    }
}

// Goes back to the pool through `roundtrip_io::pool::SharedPool`.
roundtrip_io::impl_pool_conn!(Box<Conn>);
