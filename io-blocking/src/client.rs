//! `Client`: `Client.do` and `Transport.RoundTrip` for blocking sockets.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use roundtrip_io::http::{self, Method};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::conn::RetryFacts;
use roundtrip_io::proto::pool::{Key, PoolStats};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::Written;
use roundtrip_io::{
    Clock, Config, DefaultFields, Error, Filled, HeadBuilder, Phase, Prepared, ReadWait,
    ResponseHead, TimeoutKind, earliest, frame_whole, prepare,
};

use roundtrip_io::sys::Ready;

use crate::body::{Body, ResponseBody};
use crate::pool::{Got, SharedPool};
use crate::transport::Conn;

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A blocking HTTP/1.1 client with a connection pool. Cheap to clone: clones
/// share the pool.
///
/// ```no_run
/// let client = roundtrip_blocking::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/")?;
/// println!("{}", response.status());
/// let body = response.body_mut().text(1 << 20)?;
/// # Ok::<(), roundtrip_blocking::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The config's default fields, encoded once.
    defaults: DefaultFields,
    pool: SharedPool,
    clock: Clock,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the default settings ([`Config`]'s table).
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder to change the settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Config::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn pool(&self) -> &SharedPool {
        &self.inner.pool
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// `GET uri`.
    pub fn get(&self, uri: &str) -> Result<http::Response<ResponseBody>, Error> {
        let request = http::Request::get(uri)
            .body(Body::empty())
            .map_err(roundtrip_io::InvalidRequest::from)?;
        self.request(request)
    }

    /// Sends `request` and returns the response once its head arrived; the
    /// body streams from the connection as it is read.
    ///
    /// A request that fails on a pooled connection is sent once more on
    /// another connection when that is provably safe: nothing of it was
    /// written, or its method is idempotent and no byte of a response arrived
    /// (and its body can be sent again). Otherwise the error says whether the
    /// request may have reached the server.
    ///
    /// Redirects are followed up to [`Config::max_redirects`], and a gzip
    /// body the client asked for is decoded as it is read (see
    /// [`roundtrip_io::RedirectChain`], [`roundtrip_io::Decompressed`]).
    pub fn request(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        crate::follow::request(self, request)
    }

    /// One request and its response head, on one connection (retried once
    /// when safe): Go's `Transport.RoundTrip`.
    pub(crate) fn round_trip(
        &self,
        parts: &http::request::Parts,
        body: &mut Body,
        deadline: Option<StdInstant>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        let config = &self.inner.config;
        let prepared = prepare(parts, body.body_len(), config)?;
        let mut retried = false;
        loop {
            let mut conn = self.conn_for(&prepared.key, deadline)?;
            let result = self.exchange(&mut conn, parts, &prepared, body, deadline);
            match result {
                Ok(head) => {
                    let body = ResponseBody::new(conn, self.clone(), deadline);
                    return Ok(head.into_response(body));
                }
                Err(Error::InvalidRequest(why)) => {
                    // Refused before a byte was written: the connection is intact.
                    self.inner.pool.checkin(conn);
                    return Err(Error::InvalidRequest(why));
                }
                Err(err) => {
                    let facts = RetryFacts {
                        reused: conn.reused,
                        idempotent: prepared.idempotent,
                        body_replayable: body.is_replayable(),
                    };
                    let resend = !retried && err.may_resend(&conn.proto, facts);
                    self.inner.pool.discard(conn, err.close_reason());
                    if resend {
                        retried = true;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// A connection for `key`: an idle one that passes the stale check, or a
    /// new one [`getConn`/`queueForDial` in Go].
    fn conn_for(&self, key: &Key, deadline: Option<StdInstant>) -> Result<Box<Conn>, Error> {
        let inner = &*self.inner;
        inner
            .config
            .trace(|| TraceEvent::GetConn { key: key.clone() });
        // Bounded: each pass either returns or discards one stale connection.
        for _ in 0..1024 {
            match inner.pool.checkout(key, deadline)? {
                Got::Idle(mut conn, pooled_idle) => {
                    let idle_for = conn.idle_since.elapsed();
                    if idle_for >= inner.config.stale_check_after && conn.is_stale() {
                        inner.pool.discard(conn, CloseReason::Stale);
                        continue;
                    }
                    conn.reused = true;
                    inner
                        .config
                        .trace(|| TraceEvent::got_pooled(conn.id, pooled_idle));
                    return Ok(conn);
                }
                Got::Dial(permit) => {
                    return match Conn::connect(key, permit.id(), &inner.config, deadline) {
                        Ok(conn) => {
                            inner.pool.dial_succeeded(permit);
                            inner.config.trace(|| TraceEvent::got_dialed(conn.id));
                            Ok(conn)
                        }
                        Err(e) => {
                            inner.pool.dial_failed(permit);
                            Err(e)
                        }
                    };
                }
            }
        }
        Err(Error::Timeout {
            kind: TimeoutKind::Total,
            phase: Phase::PoolWait,
            reached_server: false,
        })
    }

    /// Writes the request and reads the final response head.
    fn exchange(
        &self,
        conn: &mut Conn,
        parts: &http::request::Parts,
        prepared: &Prepared,
        body: &mut Body,
        deadline: Option<StdInstant>,
    ) -> Result<ResponseHead, Error> {
        let clock = &self.inner.clock;
        let config = &self.inner.config;
        conn.write_buf.clear();
        let now = clock.now();
        prepared.start(
            parts,
            config,
            &self.inner.defaults,
            &mut conn.proto,
            now,
            &mut conn.write_buf,
        )?;
        let mut builder = HeadBuilder::default();
        if let Some(bytes) = body.as_bytes().filter(|_| conn.proto.may_send_body()) {
            // Head and body in one vectored write.
            let (head, tail) = (&mut conn.write_buf, &mut conn.tail_buf);
            frame_whole(&mut conn.proto, bytes.len(), now, head, tail)?;
            let write_buf = std::mem::take(&mut conn.write_buf);
            let tail_buf = std::mem::take(&mut conn.tail_buf);
            let mut slices = [
                IoSlice::new(&write_buf),
                IoSlice::new(bytes),
                IoSlice::new(&tail_buf),
            ];
            let written = conn.write_all(&mut slices, deadline);
            conn.write_buf = write_buf;
            conn.tail_buf = tail_buf;
            config.trace_write(&written, Written::Whole);
            written?;
        } else {
            let write_buf = std::mem::take(&mut conn.write_buf);
            let written = conn.write_all(&mut [IoSlice::new(&write_buf)], deadline);
            conn.write_buf = write_buf;
            let part = if conn.proto.is_sending() {
                Written::Head
            } else {
                Written::Whole
            };
            config.trace_write(&written, part);
            written?;
            if conn.proto.is_sending()
                && let Some(head) = self.send_body(conn, body, &mut builder, deadline)?
            {
                return Ok(head);
            }
        }
        loop {
            if let Some(head) = self.next_head_event(conn, &mut builder, deadline)? {
                return Ok(head);
            }
        }
    }

    /// Sends the body once the core allows it (at once, or after `100
    /// Continue` or its timeout); stops when a final response arrives first.
    /// Returns that response's head if so.
    fn send_body(
        &self,
        conn: &mut Conn,
        body: &mut Body,
        builder: &mut HeadBuilder,
        deadline: Option<StdInstant>,
    ) -> Result<Option<ResponseHead>, Error> {
        let clock = &self.inner.clock;
        let mut chunk = vec![0u8; UPLOAD_CHUNK];
        loop {
            while !conn.proto.may_send_body() {
                if !conn.proto.is_sending() {
                    return Ok(None); // answered early: the body is not sent
                }
                if let Some(head) = self.next_head_event(conn, builder, deadline)? {
                    return Ok(Some(head));
                }
            }
            if conn.proto.wrote_any_byte() && conn.is_readable() {
                // The server answers while the body is still going: read the
                // answer and decode all of it (the core stops the body at a
                // final status).
                if let Some(head) = self.next_head_event(conn, builder, deadline)? {
                    return Ok(Some(head));
                }
                if let Some(head) = self.decode_buffered_head(conn, builder)? {
                    return Ok(Some(head));
                }
                continue;
            }
            let n = match body.as_bytes() {
                Some(bytes) => {
                    let bytes = bytes.clone();
                    if let Some(head) = self.write_data(conn, &bytes, builder, deadline)? {
                        return Ok(Some(head));
                    }
                    if !conn.proto.is_sending() {
                        return Ok(None);
                    }
                    0
                }
                None => {
                    let read = body.read_chunk(&mut chunk).map_err(Error::RequestBody);
                    self.inner.config.trace_write(&read, Written::Body);
                    read?
                }
            };
            if n == 0 {
                conn.write_buf.clear();
                finish_into_write_buf(conn, clock)?;
                let write_buf = std::mem::take(&mut conn.write_buf);
                let written = conn.write_all(&mut [IoSlice::new(&write_buf)], deadline);
                conn.write_buf = write_buf;
                self.inner.config.trace_write(&written, Written::End);
                written?;
                return Ok(None);
            }
            if let Some(head) = self.write_data(conn, &chunk[..n], builder, deadline)? {
                return Ok(Some(head));
            }
        }
    }

    /// Writes one piece of body data with its framing, watching for an
    /// early answer; returns the final head if one arrived meanwhile.
    fn write_data(
        &self,
        conn: &mut Conn,
        data: &[u8],
        builder: &mut HeadBuilder,
        deadline: Option<StdInstant>,
    ) -> Result<Option<ResponseHead>, Error> {
        let reached = conn.proto.wrote_any_byte();
        let frame = conn
            .proto
            .frame_body(data.len())
            .map_err(|e| Error::from_proto(e, Phase::Write, reached))?;
        let mut slices = [
            IoSlice::new(frame.prefix()),
            IoSlice::new(data),
            IoSlice::new(frame.suffix()),
        ];
        if let Err(e) = conn.stream.set_nonblocking(true) {
            return Err(Error::from_io(e, Phase::Write, reached));
        }
        let written = self.write_watching(conn, &mut slices, builder, deadline);
        let restored = conn.stream.set_nonblocking(false);
        let written = written.and_then(|head| {
            restored.map_err(|e| Error::from_io(e, Phase::Write, true))?;
            Ok(head)
        });
        self.inner.config.trace_write(&written, Written::Body);
        written
    }

    /// Writes `bufs` on the (non-blocking) socket, waiting with `poll` for
    /// either room to write or an answer: a server that answers early (413)
    /// and stops reading is heard at once, not after the write timeout.
    fn write_watching(
        &self,
        conn: &mut Conn,
        bufs: &mut [IoSlice<'_>],
        builder: &mut HeadBuilder,
        deadline: Option<StdInstant>,
    ) -> Result<Option<ResponseHead>, Error> {
        let mut bufs = bufs;
        IoSlice::advance_slices(&mut bufs, 0);
        let write_timeout = self.inner.config.write_timeout;
        let mut until = earliest([deadline, write_timeout.map(|t| StdInstant::now() + t)]);
        // Bounded: every pass writes bytes, reads the answer, or waits until
        // `until`, which ends the loop.
        while !bufs.is_empty() {
            let written = match roundtrip_io::buf::with_bytes(bufs) {
                [one] => std::io::Write::write(&mut conn.stream, one),
                several => std::io::Write::write_vectored(&mut conn.stream, several),
            };
            match written {
                Ok(0) => {
                    let e = roundtrip_io::buf::write_zero();
                    return Err(Error::from_io(e, Phase::Write, true));
                }
                Ok(n) => {
                    conn.proto.handle_written(n);
                    IoSlice::advance_slices(&mut bufs, n);
                    until = earliest([deadline, write_timeout.map(|t| StdInstant::now() + t)]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::from_io(e, Phase::Write, conn.proto.wrote_any_byte())),
            }
            let reached = conn.proto.wrote_any_byte();
            match roundtrip_io::sys::wait_read_or_write(&conn.stream, until) {
                Ok(Ready::Writable) => {}
                Ok(Ready::TimedOut) => {
                    let kind = TimeoutKind::Write;
                    return Err(Error::timed_out(kind, deadline, Phase::Write, reached));
                }
                Ok(Ready::Readable) => {
                    if let Some(head) = self.read_early(conn, builder)? {
                        return Ok(Some(head));
                    }
                    if !conn.proto.is_sending() {
                        return Ok(None); // a final answer: the rest is not sent
                    }
                }
                Err(e) => return Err(Error::from_io(e, Phase::Write, reached)),
            }
        }
        Ok(None)
    }

    /// Reads what the (non-blocking) socket holds of an early answer and
    /// decodes it.
    fn read_early(
        &self,
        conn: &mut Conn,
        builder: &mut HeadBuilder,
    ) -> Result<Option<ResponseHead>, Error> {
        conn.reserve_now();
        match roundtrip_io::sys::read_into_spare(&conn.stream, &mut conn.read_buf) {
            Ok(0) => conn.proto.handle_eof(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::from_io(e, Phase::ResponseHead, true)),
        }
        self.decode_buffered_head(conn, builder)
    }

    /// Decodes every head event already buffered; returns the final head.
    fn decode_buffered_head(
        &self,
        conn: &mut Conn,
        builder: &mut HeadBuilder,
    ) -> Result<Option<ResponseHead>, Error> {
        let reached = conn.proto.wrote_any_byte();
        let config = &self.inner.config;
        builder.push_buffered(config, &mut conn.proto, &mut conn.read_buf, reached)
    }

    /// Decodes one head event (reading if needed); returns the final head.
    fn next_head_event(
        &self,
        conn: &mut Conn,
        builder: &mut HeadBuilder,
        deadline: Option<StdInstant>,
    ) -> Result<Option<ResponseHead>, Error> {
        let clock = &self.inner.clock;
        let reached = conn.proto.wrote_any_byte();
        let config = &self.inner.config;
        let refused = |e| Error::from_proto(e, Phase::ResponseHead, reached);
        if let Some(event) = config
            .poll_event(&mut conn.proto, &mut conn.read_buf)
            .map_err(refused)?
        {
            return builder.push(event).map_err(refused);
        }
        let wait = ReadWait::new(&self.inner.config, &conn.proto, clock, deadline);
        let filled = conn.fill(wait.until);
        let phase = Phase::ResponseHead;
        Filled::report(filled, &mut conn.proto, clock, wait.ours, phase, reached)?;
        Ok(None)
    }
}

fn finish_into_write_buf(conn: &mut Conn, clock: &Clock) -> Result<(), Error> {
    let reached = conn.proto.wrote_any_byte();
    conn.proto
        .finish_body([], clock.now(), &mut conn.write_buf)
        .map_err(|e| Error::from_proto(e, Phase::Write, reached))
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_blocking::Client::builder()
///     .max_conns_per_host(Some(4))
///     .timeout(Some(Duration::from_secs(10)))
///     .user_agent("demo/1.0")
///     .build();
/// assert_eq!(client.config().pool.max_conns_per_host, Some(4));
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

impl ClientBuilder {
    roundtrip_io::config_setters!(
        config,
        "roundtrip_blocking",
        "roundtrip_blocking::Client::builder()"
    );

    /// The client.
    pub fn build(self) -> Client {
        let clock = Clock::new();
        Client {
            inner: Arc::new(Inner {
                pool: SharedPool::new(self.config.pool, clock, self.config.trace.clone()),
                defaults: DefaultFields::new(&self.config),
                config: self.config,
                clock,
            }),
        }
    }
}

#[allow(dead_code)]
fn _assert_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Client>();
    let _ = Method::GET;
}
