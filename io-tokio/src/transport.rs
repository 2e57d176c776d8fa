//! One pooled connection: the socket, its buffers and the core's state.

use std::io::{self, IoSlice};
use std::time::Instant as StdInstant;

use bytes::BytesMut;
use roundtrip_io::proto::conn::Connection;
use roundtrip_io::proto::pool::{ConnId, Key};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::{TIMED_OUT, connect_failure};
use roundtrip_io::{Config, Error, Filled, Phase, TimeoutKind, earliest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, lookup_host};
use tokio::time::timeout_at;

/// A connection as the pool keeps it.
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
    /// Longest wait for the socket to take more request bytes.
    pub write_timeout: Option<std::time::Duration>,
}

impl Conn {
    /// Connects to `key`, trying each resolved address in turn.
    pub async fn connect(
        key: &Key,
        id: ConnId,
        config: &Config,
        deadline: Option<StdInstant>,
    ) -> Result<Conn, Error> {
        let addr = format!("{}:{}", key.host(), key.port());
        let connect_err = |source| Error::Connect {
            addr: addr.clone(),
            source,
        };
        let timed_out = || Error::timed_out(TimeoutKind::Connect, deadline, Phase::Connect, false);
        // Per address tried, as `Config::connect_timeout` says.
        let limit = || {
            earliest([
                deadline,
                config.connect_timeout.map(|t| StdInstant::now() + t),
            ])
        };
        let resolved = within(limit(), lookup_host((key.host(), key.port()))).await;
        let addrs = resolved.ok_or_else(timed_out)?.map_err(connect_err)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
        for sock_addr in addrs {
            config.trace(|| TraceEvent::ConnectStart { addr: sock_addr });
            let attempt = within(limit(), TcpStream::connect(sock_addr)).await;
            let attempt = attempt.map(|r| r.and_then(|s| s.set_nodelay(true).map(|()| s)));
            config.trace(|| TraceEvent::ConnectDone {
                addr: sock_addr,
                result: match &attempt {
                    None => Err(TIMED_OUT.to_string()),
                    Some(r) => r.as_ref().map(|_| ()).map_err(connect_failure),
                },
            });
            match attempt {
                None => return Err(timed_out()),
                Some(Ok(stream)) => return Ok(Conn::wrap(stream, key, id, config)),
                Some(Err(e)) => last = e,
            }
        }
        Err(connect_err(last))
    }

    fn wrap(stream: TcpStream, key: &Key, id: ConnId, config: &Config) -> Conn {
        Conn {
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
            write_timeout: config.write_timeout,
        }
    }

    /// Writes every slice in full, reporting progress to the core. Stops at
    /// `deadline`. Cancel-safe: each `write` either wrote (and reported) or
    /// did nothing.
    pub async fn write_all(
        &mut self,
        bufs: &mut [IoSlice<'_>],
        deadline: Option<StdInstant>,
    ) -> Result<(), Error> {
        let mut bufs = bufs;
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            // The write timeout bounds each wait for room; the request's
            // deadline bounds them all.
            let until = earliest([deadline, self.write_deadline()]);
            let stream = &mut self.stream;
            let write = async {
                match roundtrip_io::buf::with_bytes(bufs) {
                    [one] => stream.write(one).await,
                    several => stream.write_vectored(several).await,
                }
            };
            let result = match until {
                Some(at) => match timeout_at(at.into(), write).await {
                    Ok(result) => result,
                    Err(_) => {
                        let reached = self.proto.wrote_any_byte();
                        let kind = TimeoutKind::Write;
                        return Err(Error::timed_out(kind, deadline, Phase::Write, reached));
                    }
                },
                None => write.await,
            };
            match result {
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

    /// When a wait for room to write started now must end.
    pub fn write_deadline(&self) -> Option<StdInstant> {
        self.write_timeout.map(|t| StdInstant::now() + t)
    }

    /// Reads once into the read buffer, waiting at most until `until`.
    /// Cancel-safe (`read_buf` is).
    pub async fn fill(&mut self, until: Option<StdInstant>) -> io::Result<Filled> {
        self.reserve();
        let read = self.stream.read_buf(&mut self.read_buf);
        let n = match until {
            Some(at) => match timeout_at(at.into(), read).await {
                Ok(result) => result?,
                Err(_) => return Ok(Filled::TimedOut),
            },
            None => read.await?,
        };
        self.sizer.record(n);
        Ok(if n == 0 { Filled::Eof } else { Filled::Bytes })
    }

    /// Makes room for the next read: a head-sized buffer, or the rest of a
    /// body of known length, so that one read can take it whole.
    pub fn reserve(&mut self) {
        self.sizer
            .reserve(&mut self.read_buf, self.proto.remaining_body());
    }

    /// Without blocking, tells whether the server closed this idle
    /// connection or sent bytes on it; either makes it unusable.
    /// (Asks the kernel, not the reactor's cached readiness, which a
    /// current-thread runtime updates only while it runs.)
    pub fn is_stale(&self) -> bool {
        roundtrip_io::sys::is_stale(&self.stream)
    }
}

// Goes back to the pool through `roundtrip_io::pool::SharedPool`.
roundtrip_io::impl_pool_conn!(Conn);

/// `future`'s output, or `None` when `limit` passes first.
async fn within<F: Future>(limit: Option<StdInstant>, future: F) -> Option<F::Output> {
    match limit {
        Some(at) => timeout_at(at.into(), future).await.ok(),
        None => Some(future.await),
    }
}
