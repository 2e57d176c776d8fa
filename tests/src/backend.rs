//! One interface over the three backends, so that the suite in
//! [`crate::suite`] is written once and stamped into `suite_blocking.rs`,
//! `suite_mio.rs` and `suite_tokio.rs` by [`backend_suite!`](crate::backend_suite).

use std::io::Read;
use std::time::Duration;

use roundtrip_io::http::{Extensions, HeaderMap, Method, StatusCode, Version};
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Config, Error, Phase, ResponseExt, TimeoutKind};

/// A request as the suite describes it.
#[derive(Clone, Debug)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Absolute URL (always loopback).
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: ReqBody,
    /// How much of the response body to read.
    pub read: ReadMode,
    /// A deadline for this request alone, overriding the client's.
    pub timeout: Option<Option<Duration>>,
}

impl Req {
    /// `GET url`, body read in full.
    pub fn get(url: impl Into<String>) -> Req {
        Req::new(Method::GET, url)
    }

    /// `method url`, no body, response body read in full.
    pub fn new(method: Method, url: impl Into<String>) -> Req {
        Req {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: ReqBody::Empty,
            read: ReadMode::All,
            timeout: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: ReqBody) -> Req {
        self.body = body;
        self
    }

    /// Sets a deadline for this request alone.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Req {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how much of the response body is read.
    pub fn read(mut self, read: ReadMode) -> Req {
        self.read = read;
        self
    }
}

impl Req {
    /// The `http` request of a backend whose request body is
    /// `roundtrip_io::Body<R>`; `wrap` makes its reader of the suite's
    /// [`Pieces`]. The read mode stays with the caller.
    pub fn into_http<R, T>(
        self,
        wrap: impl FnOnce(Pieces) -> T,
    ) -> Result<(roundtrip_io::http::Request<roundtrip_io::Body<R>>, ReadMode), Error>
    where
        R: roundtrip_io::BoxReader<T>,
    {
        use roundtrip_io::Body;
        let body = match self.body {
            ReqBody::Empty => Body::empty(),
            ReqBody::Bytes(b) => Body::from(b),
            ReqBody::Stream { data, piece, sized } => {
                let len = sized.then_some(data.len() as u64);
                Body::from_reader(wrap(Pieces::new(data, piece)), len)
            }
            ReqBody::Declared { data, declared } => {
                let piece = data.len().max(1);
                Body::from_reader(wrap(Pieces::new(data, piece)), Some(declared))
            }
        };
        let mut builder = roundtrip_io::http::Request::builder()
            .method(self.method)
            .uri(&self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.extension(roundtrip_io::RequestTimeout(timeout));
        }
        let request = builder
            .body(body)
            .map_err(roundtrip_io::InvalidRequest::from)?;
        Ok((request, self.read))
    }
}

/// Request bodies.
#[derive(Clone, Debug)]
pub enum ReqBody {
    /// None.
    Empty,
    /// In memory (replayable).
    Bytes(Vec<u8>),
    /// Streamed from a reader in pieces of `piece` bytes; `Content-Length`
    /// when `sized`, chunked otherwise. Not replayable once started.
    Stream {
        /// The bytes the reader yields.
        data: Vec<u8>,
        /// Largest piece one read yields.
        piece: usize,
        /// Whether the length is declared.
        sized: bool,
    },
    /// Streamed from a reader in one piece, sent with `Content-Length:
    /// declared` whatever `data` holds (a body that breaks its length).
    Declared {
        /// The bytes the reader yields.
        data: Vec<u8>,
        /// The length announced.
        declared: u64,
    },
}

/// How much of a response body the suite reads before dropping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// All of it.
    All,
    /// This many bytes (at least), then the body is dropped.
    DropAfter(usize),
}

/// A response as the suite sees it.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Version.
    pub version: Version,
    /// Headers.
    pub headers: HeaderMap,
    /// The body bytes read (all of them with [`ReadMode::All`]).
    pub body: Vec<u8>,
    /// Trailers, when the body had some.
    pub trailers: Option<HeaderMap>,
    /// The response's extensions (`RedirectChain`, `Decompressed`, ...).
    pub extensions: Extensions,
    /// The URL that answered, as `ResponseExt::url` reads it (`None` if
    /// the backend gave none: a defect every redirect test catches).
    pub url: Option<roundtrip_io::http::Uri>,
}

/// What every backend offers the suite.
pub trait Backend: 'static {
    /// For messages.
    const NAME: &'static str;
    /// Whether the backend drops an idle connection the moment its server
    /// closes it: an event loop that keeps idle sockets registered acts on
    /// the close event, so the next request dials without trying the dead
    /// connection. A backend that finds out only when a request takes the
    /// connection (probe or failure) sets `false`.
    const DROPS_CLOSED_IDLE: bool;
    /// Whether the suites' scripted servers speak TLS (`https://`) to this
    /// backend: [`Tls`](crate::tls_faults::Tls) wraps a backend so.
    const TLS: bool = false;
    /// A client; clones share one pool.
    type Client: Clone + Send + Sync + 'static;
    /// A client with `config`.
    fn client(config: Config) -> Self::Client;
    /// Sends one request and reads its body as `req.read` says; blocks.
    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error>;
    /// Sends one request made with the backend's own request builder (see
    /// [`crate::builders`]) and reads its whole body; blocks.
    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error>;
    /// Pool counters.
    fn stats(client: &Self::Client) -> PoolStats;
    /// Closes the idle connections (`close_idle`); blocks until done.
    fn close_idle(client: &Self::Client);
    /// Pool counters as they are now, with what happened since the last
    /// reply (mio's [`stats`](Self::stats) are the pool as the last reply
    /// left it). The same as `stats` where those are always current.
    fn live_stats(client: &Self::Client) -> PoolStats {
        Self::stats(client)
    }
    /// Lets `d` pass with no request in flight, the client's background
    /// work running (a current-thread tokio runtime runs its tasks only
    /// while it is blocked on).
    fn pass_time(_client: &Self::Client, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Waits until the client's pool holds no idle connection, up to `bound`
/// (checked every 2 ms on [`Backend::live_stats`]); returns whether it did.
pub fn wait_no_idle<B: Backend>(client: &B::Client, bound: Duration) -> bool {
    let deadline = std::time::Instant::now() + bound;
    // Bounded by the deadline.
    loop {
        if B::live_stats(client).idle == 0 {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A reader that yields `data` in pieces of at most `piece` bytes.
#[derive(Debug)]
pub struct Pieces {
    data: Vec<u8>,
    at: usize,
    piece: usize,
}

impl Pieces {
    /// The reader.
    pub fn new(data: Vec<u8>, piece: usize) -> Pieces {
        Pieces {
            data,
            at: 0,
            piece: piece.max(1),
        }
    }
}

impl Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.piece).min(self.data.len() - self.at);
        out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The blocking backend.
#[derive(Debug)]
pub struct Blocking;

impl Backend for Blocking {
    const NAME: &'static str = "blocking";
    const DROPS_CLOSED_IDLE: bool = false;
    type Client = roundtrip_blocking::Client;

    fn client(config: Config) -> Self::Client {
        roundtrip_blocking::Client::builder().config(config).build()
    }

    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error> {
        let (request, read) = req.into_http(|pieces| pieces)?;
        blocking_resp(client.execute(request)?, read)
    }

    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error> {
        let builder = crate::apply_built!(client, built, roundtrip_blocking::Body, |p| p);
        blocking_resp(builder.send()?, ReadMode::All)
    }

    fn stats(client: &Self::Client) -> PoolStats {
        client.stats()
    }

    fn close_idle(client: &Self::Client) {
        client.close_idle();
    }
}

/// A blocking response as the suite sees it: the body read as `read` says.
fn blocking_resp(
    response: roundtrip_io::http::Response<roundtrip_blocking::ResponseBody>,
    read: ReadMode,
) -> Result<Resp, Error> {
    {
        let url = response.url().cloned();
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        match read {
            ReadMode::All => {
                body.read_to_end(&mut bytes).map_err(into_error)?;
            }
            ReadMode::DropAfter(n) => {
                while bytes.len() < n {
                    match body.chunk()? {
                        Some(chunk) => bytes.extend_from_slice(&chunk),
                        None => break,
                    }
                }
            }
        }
        Ok(Resp {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: bytes,
            trailers: body.trailers().cloned(),
            extensions: parts.extensions,
            url,
        })
    }
}

/// Recovers the client error carried inside an `io::Error` from `Read`.
pub fn into_error(e: std::io::Error) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        Some(Err(other)) => Error::Io {
            phase: roundtrip_io::Phase::Body,
            source: std::io::Error::other(other),
            reached_server: true,
        },
        None => Error::Io {
            phase: roundtrip_io::Phase::Body,
            source: std::io::Error::other("i/o error"),
            reached_server: true,
        },
    }
}

/// Panics, naming `context`, unless `err` is a timeout of `kind` in `phase`
/// whose request did (`reached`) or did not reach the server.
pub fn assert_timeout(err: &Error, kind: TimeoutKind, phase: Phase, reached: bool, context: &str) {
    let want = Error::Timeout {
        kind,
        phase,
        reached_server: reached,
    };
    assert!(
        matches!(err, Error::Timeout { kind: k, phase: p, reached_server: r }
            if (*k, *p, *r) == (kind, phase, reached)),
        "{context}: want {want:?}, got {err:?}"
    );
}

/// Sends a GET of `url` that must end in a response-head timeout (the
/// request reached the server) at least `early` and less than `late` after
/// it was sent; panics, naming the backend, otherwise.
pub fn assert_head_timeout<B: Backend>(
    client: &B::Client,
    url: String,
    early: Duration,
    late: Duration,
) {
    let started = std::time::Instant::now();
    let err = match B::send(client, Req::get(url)) {
        Ok(resp) => panic!("{}: expected a head timeout, got {}", B::NAME, resp.status),
        Err(err) => err,
    };
    let took = started.elapsed();
    assert_timeout(
        &err,
        TimeoutKind::ResponseHead,
        Phase::ResponseHead,
        true,
        B::NAME,
    );
    assert!(took >= early, "{}: fired early: {took:?}", B::NAME);
    assert!(took < late, "{}: fired late: {took:?}", B::NAME);
}

/// A config for tests: short timeouts so a broken case fails fast.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(10));
    config.write_timeout = Some(Duration::from_secs(10));
    config.timeout = Some(Duration::from_secs(30));
    config
}

/// The tokio backend on a runtime of its own; `MULTI` picks the
/// multi-thread runtime, otherwise current-thread.
#[derive(Debug)]
pub struct Tokio<const MULTI: bool>;

/// The tokio backend on a current-thread runtime.
pub type TokioCurrent = Tokio<false>;
/// The tokio backend on a multi-thread runtime.
pub type TokioMulti = Tokio<true>;

/// A tokio client with the runtime its sockets are registered with.
#[derive(Clone, Debug)]
pub struct TokioClient {
    /// The client.
    pub client: roundtrip_tokio::Client,
    /// Its runtime.
    pub runtime: std::sync::Arc<tokio::runtime::Runtime>,
}

impl<const MULTI: bool> Backend for Tokio<MULTI> {
    const NAME: &'static str = if MULTI {
        "tokio-multi"
    } else {
        "tokio-current"
    };
    const DROPS_CLOSED_IDLE: bool = false;
    type Client = TokioClient;

    fn client(config: Config) -> Self::Client {
        let mut builder = if MULTI {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime = builder.enable_all().build().expect("a tokio runtime");
        let client = roundtrip_tokio::Client::builder().config(config).build();
        TokioClient {
            client,
            runtime: std::sync::Arc::new(runtime),
        }
    }

    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error> {
        client.runtime.block_on(tokio_send(&client.client, req))
    }

    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error> {
        let builder =
            crate::apply_built!(&client.client, built, roundtrip_tokio::Body, AsyncPieces);
        client
            .runtime
            .block_on(async { drive_resp(builder.send().await?, ReadMode::All).await })
    }

    fn stats(client: &Self::Client) -> PoolStats {
        client.client.stats()
    }

    fn close_idle(client: &Self::Client) {
        client.client.close_idle();
    }

    fn pass_time(client: &Self::Client, d: Duration) {
        client
            .runtime
            .block_on(async { tokio::time::sleep(d).await });
    }
}

/// Sends `req` on a tokio client and reads its body as `req.read` says.
pub async fn tokio_send(client: &roundtrip_tokio::Client, req: Req) -> Result<Resp, Error> {
    let (request, read) = req.into_http(AsyncPieces)?;
    drive_resp(client.execute(request).await?, read).await
}

/// A response of the async driver (tokio, smol) as the suite sees it: the
/// body read as `read` says; the rest, if any, is given up when the body
/// drops (drained in a task, or closed, as the machine decides).
pub async fn drive_resp<R: roundtrip_io::drive::Runtime>(
    response: roundtrip_io::http::Response<roundtrip_io::drive::ResponseBody<R>>,
    read: ReadMode,
) -> Result<Resp, Error> {
    let url = response.url().cloned();
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    let want = match read {
        ReadMode::All => usize::MAX,
        ReadMode::DropAfter(n) => n,
    };
    while bytes.len() < want {
        match body.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(Resp {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: bytes,
        trailers: body.trailers().cloned(),
        extensions: parts.extensions,
        url,
    })
}

/// [`Pieces`] as an `AsyncRead`.
#[derive(Debug)]
pub struct AsyncPieces(pub Pieces);

impl tokio::io::AsyncRead for AsyncPieces {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let mut tmp = vec![0u8; buf.remaining()];
        let n = self.0.read(&mut tmp)?;
        buf.put_slice(&tmp[..n]);
        std::task::Poll::Ready(Ok(()))
    }
}

/// The mio backend. The driver is single-threaded and the suite sends from
/// many threads, so each client runs one driver thread: the driver is
/// embedded in that thread's own `Poll` next to a `Waker` (token 0; the
/// driver takes tokens from 1), and `send` hands the request over a channel,
/// wakes the loop and blocks for the reply.
#[derive(Debug)]
pub struct Mio;

/// The waker's token in a mio client's loop.
const MIO_WAKER: roundtrip_mio::mio::Token = roundtrip_mio::mio::Token(0);

/// Longest the mio loop sleeps without checking its channel.
const MIO_MAX_WAIT: Duration = Duration::from_secs(1);

/// A handle on a mio driver thread; clones share it. The thread ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct MioClient {
    inner: std::sync::Arc<MioInner>,
}

impl std::fmt::Debug for MioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MioClient").finish_non_exhaustive()
    }
}

struct MioInner {
    jobs: std::sync::mpsc::Sender<MioJob>,
    /// Shared with the loop thread, so the wake-up fd outlives this handle
    /// and a `Stop` sent on drop is seen at once.
    waker: std::sync::Arc<roundtrip_mio::mio::Waker>,
    /// The pool counters as the last reply left them.
    stats: std::sync::Arc<std::sync::Mutex<PoolStats>>,
    /// The pool counters, copied after every loop turn.
    live: std::sync::Arc<std::sync::Mutex<PoolStats>>,
}

impl Drop for MioInner {
    fn drop(&mut self) {
        let _ = self.jobs.send(MioJob::Stop);
        let _ = self.waker.wake();
    }
}

enum MioJob {
    Send(Req, std::sync::mpsc::Sender<Result<Resp, Error>>),
    CloseIdle(std::sync::mpsc::Sender<()>),
    Built(
        crate::builders::Built,
        std::sync::mpsc::Sender<Result<Resp, Error>>,
    ),
    Stop,
}

/// A request in flight on the mio loop: where to reply, and the bytes a
/// `DropAfter` callback kept.
struct MioPending {
    reply: std::sync::mpsc::Sender<Result<Resp, Error>>,
    streamed: Option<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>,
}

impl Backend for Mio {
    const NAME: &'static str = "mio";
    const DROPS_CLOSED_IDLE: bool = true;
    type Client = MioClient;

    fn client(config: Config) -> Self::Client {
        use roundtrip_mio::mio::{Poll, Token, Waker};
        let poll = Poll::new().expect("a mio poll");
        let waker =
            std::sync::Arc::new(Waker::new(poll.registry(), MIO_WAKER).expect("a mio waker"));
        let loop_waker = std::sync::Arc::clone(&waker);
        let driver = roundtrip_mio::Driver::builder()
            .config(config)
            .build_in(poll.registry(), Token(1))
            .expect("a mio driver");
        let stats = std::sync::Arc::new(std::sync::Mutex::new(driver.stats()));
        let live = std::sync::Arc::new(std::sync::Mutex::new(driver.stats()));
        let (jobs, rx) = std::sync::mpsc::channel();
        let loop_stats = [std::sync::Arc::clone(&stats), std::sync::Arc::clone(&live)];
        std::thread::Builder::new()
            .name("mio-driver".into())
            .spawn(move || {
                let _waker = loop_waker;
                mio_loop(poll, driver, rx, loop_stats)
            })
            .expect("spawn the mio driver thread");
        MioClient {
            inner: std::sync::Arc::new(MioInner {
                jobs,
                waker,
                stats,
                live,
            }),
        }
    }

    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error> {
        mio_job(client, |reply| MioJob::Send(req, reply))
    }

    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error> {
        mio_job(client, |reply| MioJob::Built(built, reply))
    }

    fn stats(client: &Self::Client) -> PoolStats {
        *client
            .inner
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live_stats(client: &Self::Client) -> PoolStats {
        *client
            .inner
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close_idle(client: &Self::Client) {
        let (done, wait) = std::sync::mpsc::channel();
        let inner = &client.inner;
        if inner.jobs.send(MioJob::CloseIdle(done)).is_ok() && inner.waker.wake().is_ok() {
            // Bounded: the loop answers on its next turn (or is gone).
            let _ = wait.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

/// Hands a job to a mio client's loop and blocks for its reply.
fn mio_job(
    client: &MioClient,
    job: impl FnOnce(std::sync::mpsc::Sender<Result<Resp, Error>>) -> MioJob,
) -> Result<Resp, Error> {
    let gone = || Error::Io {
        phase: roundtrip_io::Phase::PoolWait,
        source: std::io::Error::other("the mio driver thread is gone"),
        reached_server: false,
    };
    let (reply, result) = std::sync::mpsc::channel();
    let inner = &client.inner;
    inner.jobs.send(job(reply)).map_err(|_| gone())?;
    inner.waker.wake().map_err(|_| gone())?;
    // Bounded by the client's timeouts, which the driver enforces.
    result.recv().map_err(|_| gone())?
}

/// The driver thread of a [`MioClient`]: polls, hands events and the time
/// to the driver, submits requests from the channel, replies with results.
fn mio_loop(
    mut poll: roundtrip_mio::mio::Poll,
    mut driver: roundtrip_mio::Driver,
    jobs: std::sync::mpsc::Receiver<MioJob>,
    [stats, live]: [std::sync::Arc<std::sync::Mutex<PoolStats>>; 2],
) {
    use std::sync::mpsc::TryRecvError;
    use std::time::Instant;
    let mut events = roundtrip_mio::mio::Events::with_capacity(1024);
    let mut pending = std::collections::HashMap::new();
    let publish = |to: &std::sync::Mutex<PoolStats>, driver: &roundtrip_mio::Driver| {
        *to.lock().unwrap_or_else(|p| p.into_inner()) = driver.stats();
    };
    // Bounded by the client's life: ends at `Stop` or when the channel closes.
    loop {
        let wait = driver.poll_timeout().map_or(MIO_MAX_WAIT, |at| {
            at.saturating_duration_since(Instant::now())
                .min(MIO_MAX_WAIT)
        });
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "mio poll: {e}");
        }
        for event in events.iter() {
            if event.token() != MIO_WAKER {
                driver.handle_event(event);
            }
        }
        loop {
            match jobs.try_recv() {
                Ok(MioJob::Send(req, reply)) => mio_submit(&mut driver, &mut pending, req, reply),
                Ok(MioJob::Built(built, reply)) => {
                    let builder =
                        crate::apply_built!(&mut driver, built, roundtrip_mio::Body, |p| p);
                    let id = builder.submit_with(roundtrip_mio::Receive::Collect {
                        max_bytes: u64::MAX,
                    });
                    let streamed = None;
                    pending.insert(id, MioPending { reply, streamed });
                }
                Ok(MioJob::CloseIdle(done)) => {
                    driver.close_idle();
                    publish(&stats, &driver);
                    publish(&live, &driver);
                    let _ = done.send(());
                }
                Ok(MioJob::Stop) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        driver.handle_timeout(Instant::now());
        // Stats are published with each reply only: what a test reads right
        // after `send` is the pool as that request left it, not whatever the
        // loop saw since (a server closing at the end of its script).
        while let Some((id, result)) = driver.take_finished() {
            publish(&stats, &driver);
            // Live too, before the reply: a test woken by it must not read
            // the previous turn's live counters.
            publish(&live, &driver);
            if let Some(p) = pending.remove(&id) {
                let _ = p.reply.send(result.map(|r| mio_resp(r, p.streamed)));
            }
        }
        publish(&live, &driver);
    }
}

/// Submits a suite request; a request the `http` builder refuses is
/// answered at once.
fn mio_submit(
    driver: &mut roundtrip_mio::Driver,
    pending: &mut std::collections::HashMap<roundtrip_mio::RequestId, MioPending>,
    req: Req,
    reply: std::sync::mpsc::Sender<Result<Resp, Error>>,
) {
    use roundtrip_mio::{Flow, Receive};
    let (request, read) = match req.into_http(|pieces| pieces) {
        Ok(request) => request,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let (receive, streamed) = match read {
        ReadMode::All => (
            Receive::Collect {
                max_bytes: u64::MAX,
            },
            None,
        ),
        ReadMode::DropAfter(n) => {
            let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = std::sync::Arc::clone(&kept);
            let receive = Receive::stream(move |_head, data| {
                let mut kept = sink.lock().unwrap_or_else(|p| p.into_inner());
                kept.extend_from_slice(&data);
                if kept.len() >= n {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            });
            (receive, Some(kept))
        }
    };
    let id = driver.submit_with(request, receive);
    pending.insert(id, MioPending { reply, streamed });
}

/// A finished mio response as the suite sees it.
fn mio_resp(
    response: roundtrip_mio::Response,
    streamed: Option<std::sync::Arc<std::sync::Mutex<Vec<u8>>>>,
) -> Resp {
    let url = response.url().cloned();
    let (parts, body) = response.into_parts();
    let body = match streamed {
        Some(kept) => std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner())),
        None => body.to_vec(),
    };
    Resp {
        status: parts.status,
        version: parts.version,
        trailers: parts
            .extensions
            .get::<roundtrip_mio::Trailers>()
            .map(|t| t.0.clone()),
        extensions: parts.extensions,
        headers: parts.headers,
        body,
        url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assert_timeout_tells_kinds_apart() {
        let err = Error::Timeout {
            kind: TimeoutKind::ReadIdle,
            phase: Phase::Body,
            reached_server: true,
        };
        assert_timeout(&err, TimeoutKind::ReadIdle, Phase::Body, true, "same");
        let other = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_timeout(&err, TimeoutKind::Total, Phase::Body, true, "other kind")
        }));
        assert!(other.is_err(), "a ReadIdle timeout passed for Total");
    }
}
