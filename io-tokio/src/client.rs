//! `Client`: `Client.do` and `Transport.RoundTrip` on tokio.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use roundtrip_io::http;
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::conn::RetryFacts;
use roundtrip_io::proto::pool::{Key, PoolStats};
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::trace::Written;
use roundtrip_io::{
    Clock, Config, DefaultFields, Error, Filled, HeadBuilder, Phase, Prepared, ReadWait,
    ResponseHead, TimeoutKind, earliest, frame_whole, prepare,
};

use crate::body::{Body, ResponseBody};
use crate::pool::{Got, SharedPool};
use crate::transport::Conn;

/// Size of one read from a streamed request body.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// An async HTTP/1.1 client with a connection pool, for tokio's current-thread
/// and multi-thread runtimes. Cheap to clone: clones share the pool. Its
/// futures are `Send`, and dropping one at any await point is safe: a
/// connection in the middle of an exchange is closed, never pooled.
///
/// ```no_run
/// # async fn demo() -> Result<(), roundtrip_tokio::Error> {
/// let client = roundtrip_tokio::Client::new();
/// let mut response = client.get("http://127.0.0.1:8080/").await?;
/// let text = response.body_mut().text(1 << 20).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Config,
    /// The config's default fields, encoded once.
    pub defaults: DefaultFields,
    pub pool: SharedPool,
    pub clock: Clock,
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

/// Owns a connection during an exchange; dropped before it was handed on
/// (the request future was cancelled, or an error), it closes the connection
/// and frees its pool slot.
struct Held<'a> {
    conn: Option<Conn>,
    inner: &'a Inner,
}

impl Held<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("held until taken")
    }
    fn take(mut self) -> Conn {
        self.conn.take().expect("held until taken")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.inner.pool.discard(conn, CloseReason::Abandoned);
        }
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

    /// Pool counters: dials, reuses, idle, in use, waiters, closes by reason.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// `GET uri`.
    pub async fn get(&self, uri: &str) -> Result<http::Response<ResponseBody>, Error> {
        let request = http::Request::get(uri)
            .body(Body::empty())
            .map_err(roundtrip_io::InvalidRequest::from)?;
        self.request(request).await
    }

    /// Sends `request` and returns the response once its head arrived; the
    /// body streams from the connection as it is polled.
    ///
    /// A request that fails on a pooled connection is sent once more on
    /// another connection when that is provably safe: nothing of it was
    /// written, or its method is idempotent and no byte of a response arrived
    /// (and its body can be sent again). Otherwise the error says whether the
    /// request may have reached the server.
    ///
    /// Redirects are followed up to [`Config::max_redirects`], and a gzip
    /// body the client asked for is decoded as it is polled (see
    /// [`roundtrip_io::RedirectChain`], [`roundtrip_io::Decompressed`]).
    pub async fn request(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        crate::follow::request(self, request).await
    }

    /// One request and its response head, on one connection (retried once
    /// when safe): Go's `Transport.RoundTrip`.
    pub(crate) async fn round_trip(
        &self,
        parts: &http::request::Parts,
        body: &mut Body,
        deadline: Option<StdInstant>,
    ) -> Result<http::Response<ResponseBody>, Error> {
        let inner = &*self.inner;
        let prepared = prepare(parts, body.body_len(), &inner.config)?;
        let mut retried = false;
        loop {
            let mut held = Held {
                conn: Some(self.conn_for(&prepared.key, deadline).await?),
                inner,
            };
            let result = exchange(inner, held.conn(), parts, &prepared, body, deadline).await;
            match result {
                Ok(head) => {
                    let body = ResponseBody::new(held.take(), self.inner.clone(), deadline);
                    return Ok(head.into_response(body));
                }
                Err(Error::InvalidRequest(why)) => {
                    // Refused before a byte was written: the connection is intact.
                    inner.pool.checkin(held.take());
                    return Err(Error::InvalidRequest(why));
                }
                Err(err) => {
                    let conn = held.take();
                    let facts = RetryFacts {
                        reused: conn.reused,
                        idempotent: prepared.idempotent,
                        body_replayable: body.is_replayable(),
                    };
                    let resend = !retried && err.may_resend(&conn.proto, facts);
                    inner.pool.discard(conn, err.close_reason());
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
    /// new one.
    async fn conn_for(&self, key: &Key, deadline: Option<StdInstant>) -> Result<Conn, Error> {
        let inner = &*self.inner;
        inner
            .config
            .trace(|| TraceEvent::GetConn { key: key.clone() });
        // Bounded: each pass either returns or discards one stale connection.
        for _ in 0..1024 {
            match inner.pool.checkout(key, deadline).await? {
                Got::Idle(mut conn, pooled_idle) => {
                    // Probing a connection just used would cost a syscall on
                    // every request of a busy client (the reactor still marks
                    // it readable from its last response).
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
                    // A dial cancelled halfway gives its permit back.
                    struct Permit<'a>(
                        Option<roundtrip_io::proto::pool::DialPermit>,
                        &'a SharedPool,
                    );
                    impl Drop for Permit<'_> {
                        fn drop(&mut self) {
                            if let Some(p) = self.0.take() {
                                self.1.dial_failed(p);
                            }
                        }
                    }
                    let mut guard = Permit(Some(permit), &inner.pool);
                    let id = guard.0.as_ref().expect("set above").id();
                    let conn = Conn::connect(key, id, &inner.config, deadline).await?;
                    if let Some(p) = guard.0.take() {
                        inner.pool.dial_succeeded(p);
                    }
                    inner.config.trace(|| TraceEvent::got_dialed(conn.id));
                    return Ok(conn);
                }
            }
        }
        Err(Error::Timeout {
            kind: TimeoutKind::Total,
            phase: Phase::PoolWait,
            reached_server: false,
        })
    }
}

/// Writes the request and reads the final response head.
async fn exchange(
    inner: &Inner,
    conn: &mut Conn,
    parts: &http::request::Parts,
    prepared: &Prepared,
    body: &mut Body,
    deadline: Option<StdInstant>,
) -> Result<ResponseHead, Error> {
    let clock = &inner.clock;
    conn.write_buf.clear();
    let now = clock.now();
    let config = &inner.config;
    prepared.start(
        parts,
        config,
        &inner.defaults,
        &mut conn.proto,
        now,
        &mut conn.write_buf,
    )?;
    let mut builder = HeadBuilder::default();
    if let Some(bytes) = body.as_bytes().filter(|_| conn.proto.may_send_body()) {
        // Head and body in one vectored write.
        let (head, tail) = (&mut conn.write_buf, &mut conn.tail_buf);
        frame_whole(&mut conn.proto, bytes.len(), now, head, tail)?;
        let tail = std::mem::take(&mut conn.tail_buf);
        let write_buf = std::mem::take(&mut conn.write_buf);
        let mut slices = [
            IoSlice::new(&write_buf),
            IoSlice::new(bytes),
            IoSlice::new(&tail),
        ];
        let written = conn.write_all(&mut slices, deadline).await;
        conn.write_buf = write_buf;
        conn.tail_buf = tail;
        inner.config.trace_write(&written, Written::Whole);
        written?;
    } else {
        let write_buf = std::mem::take(&mut conn.write_buf);
        let written = conn
            .write_all(&mut [IoSlice::new(&write_buf)], deadline)
            .await;
        conn.write_buf = write_buf;
        let part = if conn.proto.is_sending() {
            Written::Head
        } else {
            Written::Whole
        };
        inner.config.trace_write(&written, part);
        written?;
        if conn.proto.is_sending()
            && let Some(head) = send_body(inner, conn, body, &mut builder, deadline).await?
        {
            return Ok(head);
        }
    }
    loop {
        if let Some(head) = next_head_event(inner, conn, &mut builder, deadline).await? {
            return Ok(head);
        }
    }
}

/// Sends the body once the core allows it (at once, or after `100 Continue`
/// or its timeout); stops when a final response arrives first, and returns
/// its head if so.
async fn send_body(
    inner: &Inner,
    conn: &mut Conn,
    body: &mut Body,
    builder: &mut HeadBuilder,
    deadline: Option<StdInstant>,
) -> Result<Option<ResponseHead>, Error> {
    let clock = &inner.clock;
    let mut chunk = vec![0u8; UPLOAD_CHUNK];
    loop {
        while !conn.proto.may_send_body() {
            if !conn.proto.is_sending() {
                return Ok(None); // answered early: the body is not sent
            }
            if let Some(head) = next_head_event(inner, conn, builder, deadline).await? {
                return Ok(Some(head));
            }
        }
        // An answer while the body is still going (e.g. 413): take what is
        // readable without waiting; the core stops the body at a final status.
        if conn.proto.wrote_any_byte() && read_ready(conn).await {
            if let Some(head) = read_early(inner, conn, builder)? {
                return Ok(Some(head));
            }
            continue;
        }
        let n = match body.as_bytes() {
            Some(bytes) => {
                let bytes = bytes.clone();
                let written = write_data(inner, conn, &bytes, builder, deadline).await;
                inner.config.trace_write(&written, Written::Body);
                if let Some(head) = written? {
                    return Ok(Some(head));
                }
                if !conn.proto.is_sending() {
                    return Ok(None);
                }
                0
            }
            None => {
                let read = crate::body::read_chunk(body, &mut chunk).await;
                let read = read.map_err(Error::RequestBody);
                inner.config.trace_write(&read, Written::Body);
                read?
            }
        };
        if n == 0 {
            let reached = conn.proto.wrote_any_byte();
            conn.write_buf.clear();
            conn.proto
                .finish_body([], clock.now(), &mut conn.write_buf)
                .map_err(|e| Error::from_proto(e, Phase::Write, reached))?;
            let write_buf = std::mem::take(&mut conn.write_buf);
            let written = conn
                .write_all(&mut [IoSlice::new(&write_buf)], deadline)
                .await;
            conn.write_buf = write_buf;
            inner.config.trace_write(&written, Written::End);
            written?;
            return Ok(None);
        }
        let written = write_data(inner, conn, &chunk[..n], builder, deadline).await;
        inner.config.trace_write(&written, Written::Body);
        if let Some(head) = written? {
            return Ok(Some(head));
        }
    }
}

/// The reactor's cached read readiness, without waiting (and without a syscall).
async fn read_ready(conn: &Conn) -> bool {
    std::future::poll_fn(|cx| std::task::Poll::Ready(conn.stream.poll_read_ready(cx).is_ready()))
        .await
}

/// Writes one piece of body data with its framing, watching for an early
/// answer; returns the final head if one arrived meanwhile.
async fn write_data(
    inner: &Inner,
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
    write_watching(inner, conn, &mut slices, builder, deadline).await
}

/// What a wait during an upload ended with.
enum Woke {
    Readable,
    Writable,
    TimedOut,
}

/// Writes `bufs`, waiting for either room to write or an answer: a server
/// that answers early (413) and stops reading is heard at once, not after
/// the write timeout.
async fn write_watching(
    inner: &Inner,
    conn: &mut Conn,
    bufs: &mut [IoSlice<'_>],
    builder: &mut HeadBuilder,
    deadline: Option<StdInstant>,
) -> Result<Option<ResponseHead>, Error> {
    let mut bufs = bufs;
    IoSlice::advance_slices(&mut bufs, 0);
    let mut until = earliest([deadline, conn.write_deadline()]);
    // Bounded: every pass writes bytes, reads the answer, or waits until
    // `until`, which ends the loop.
    while !bufs.is_empty() {
        let reached = conn.proto.wrote_any_byte();
        let woke = {
            let stream = &conn.stream;
            let timer = async {
                match until {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                r = stream.readable() => r.map(|()| Woke::Readable),
                w = stream.writable() => w.map(|()| Woke::Writable),
                () = timer => Ok(Woke::TimedOut),
            }
        };
        match woke.map_err(|e| Error::from_io(e, Phase::Write, reached))? {
            Woke::TimedOut => {
                let kind = TimeoutKind::Write;
                return Err(Error::timed_out(kind, deadline, Phase::Write, reached));
            }
            Woke::Writable => match try_write(&conn.stream, bufs) {
                Ok(0) => {
                    let e = roundtrip_io::buf::write_zero();
                    return Err(Error::from_io(e, Phase::Write, reached));
                }
                Ok(n) => {
                    conn.proto.handle_written(n);
                    IoSlice::advance_slices(&mut bufs, n);
                    until = earliest([deadline, conn.write_deadline()]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::from_io(e, Phase::Write, reached)),
            },
            Woke::Readable => {
                if let Some(head) = read_early(inner, conn, builder)? {
                    return Ok(Some(head));
                }
                if !conn.proto.is_sending() {
                    return Ok(None); // a final answer: the rest is not sent
                }
            }
        }
    }
    Ok(None)
}

/// Takes what the socket holds of an early answer, without waiting, and
/// decodes every buffered head event.
fn read_early(
    inner: &Inner,
    conn: &mut Conn,
    builder: &mut HeadBuilder,
) -> Result<Option<ResponseHead>, Error> {
    conn.reserve();
    match conn.stream.try_read_buf(&mut conn.read_buf) {
        Ok(0) => conn.proto.handle_eof(),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(Error::from_io(e, Phase::ResponseHead, true)),
    }
    builder.push_buffered(&inner.config, &mut conn.proto, &mut conn.read_buf, true)
}

/// Decodes one head event (reading if needed); returns the final head.
async fn next_head_event(
    inner: &Inner,
    conn: &mut Conn,
    builder: &mut HeadBuilder,
    deadline: Option<StdInstant>,
) -> Result<Option<ResponseHead>, Error> {
    let clock = &inner.clock;
    let reached = conn.proto.wrote_any_byte();
    let refused = |e| Error::from_proto(e, Phase::ResponseHead, reached);
    let config = &inner.config;
    if let Some(event) = config
        .poll_event(&mut conn.proto, &mut conn.read_buf)
        .map_err(refused)?
    {
        return builder.push(event).map_err(refused);
    }
    let wait = ReadWait::new(&inner.config, &conn.proto, clock, deadline);
    let filled = conn.fill(wait.until).await;
    let phase = Phase::ResponseHead;
    Filled::report(filled, &mut conn.proto, clock, wait.ours, phase, reached)?;
    Ok(None)
}

/// Builds a [`Client`].
///
/// ```
/// use std::time::Duration;
/// let client = roundtrip_tokio::Client::builder()
///     .max_conns_per_host(Some(4))
///     .timeout(Some(Duration::from_secs(10)))
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
        "roundtrip_tokio",
        "roundtrip_tokio::Client::builder()"
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

/// One non-blocking write of `bufs`: `write(2)` for a single piece.
fn try_write(stream: &tokio::net::TcpStream, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
    match roundtrip_io::buf::with_bytes(bufs) {
        [one] => stream.try_write(one),
        several => stream.try_write_vectored(several),
    }
}
