//! A scripted loopback HTTP server for byte-exact client tests.
//!
//! Each accepted connection plays one [`Script`], a list of [`Step`]s: read a
//! request, write bytes (at once or one byte at a time), sleep, close
//! gracefully, reset, expect the client's EOF, serve requests in a loop. The
//! server records every request it reads and every script error, so a test
//! asserts both what the client sent and that the exchange went as scripted.
//! In the spirit of hyper's `tests/client.rs` `test!` macro.
//!
//! The script runs over a [`Wire`]: the TCP socket itself ([`Plain`], what
//! [`ScriptServer::start`] uses), or a session over it, such as the TLS of
//! `crate::tls_server`, so the same scripts test `http://` and `https://`.
//!
//! Everything is bounded: the server binds `127.0.0.1:0` only, every wait for
//! client bytes gives up after [`DEFAULT_READ_TIMEOUT`] without progress (see
//! [`ScriptServer::read_timeout`]), every loop has a count bound, and dropping
//! the [`ScriptServer`] stops the accept loop and joins the connection threads
//! within [`DROP_JOIN_BOUND`].
//!
//! ```no_run
//! use roundtrip_tests::server::{ok, ScriptServer, Step};
//!
//! let server = ScriptServer::start(vec![vec![
//!     Step::ReadRequest,
//!     Step::Write(ok(b"hello")),
//!     Step::Close,
//! ]]);
//! // ... point the client at server.url("/") ...
//! assert_eq!(server.count_method("GET"), 1);
//! server.assert_no_errors();
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a read waits for the client's next bytes before the script fails.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a [`ScriptServer`] waits for its threads to end.
pub const DROP_JOIN_BOUND: Duration = Duration::from_secs(5);

/// The most requests one [`Step::Serve`] answers before it ends.
pub const SERVE_MAX_REQUESTS: usize = 100_000;

/// The largest request head the server reads, terminating blank line included.
pub const MAX_HEAD: usize = 1 << 20;

/// The largest request body the server reads.
pub const MAX_BODY: usize = 256 << 20;

/// How often the accept loop and blocked reads or writes check for shutdown.
const POLL: Duration = Duration::from_millis(2);
const IO_SLICE: Duration = Duration::from_millis(25);
const MAX_CONNECTIONS: usize = 1_000_000;

/// The reply a [`Step::Serve`] handler builds for each request.
pub type Handler = Arc<dyn Fn(&Request) -> Vec<u8> + Send + Sync>;

/// The steps a [`Step::ServeWith`] handler picks for each request: the
/// answer, and any fault to inject (a close, a reset, a pause, ...).
pub type StepHandler = Arc<dyn Fn(&Request) -> Vec<Step> + Send + Sync>;

/// The steps one connection plays, in order.
pub type Script = Vec<Step>;

/// One thing the server does on a connection.
#[derive(Clone)]
pub enum Step {
    /// Reads exactly one full request: the head, then the body framed by
    /// `Content-Length` or chunked coding (trailers included). Does not answer
    /// `Expect: 100-continue`; script [`Step::ReadHead`], a `Write` of the
    /// interim response and [`Step::ReadBody`] for that.
    ReadRequest,
    /// Reads one request head only and records the request with an empty body.
    ReadHead,
    /// Reads the body of the request whose head the last [`Step::ReadHead`]
    /// read, and stores it in that recorded request.
    ReadBody,
    /// Reads exactly these bytes; anything else is a script error.
    ExpectBytes(Vec<u8>),
    /// Writes these bytes.
    Write(Vec<u8>),
    /// Writes these bytes one at a time, sleeping `every` before each byte.
    WriteSlowly {
        /// The bytes to write.
        bytes: Vec<u8>,
        /// The pause before each byte.
        every: Duration,
    },
    /// Sleeps (the server stopping cuts it short).
    Sleep(Duration),
    /// Sets the flag: the steps before it are done (their bytes written),
    /// for a test that must not act before.
    Reached(std::sync::Arc<std::sync::atomic::AtomicBool>),
    /// Closes gracefully: ends the session (over TLS, sends `close_notify`),
    /// shuts the write side (FIN), reads away what the client already sent
    /// without waiting (so the kernel does not answer unread bytes with
    /// RST), then drops the socket. Ends the script.
    Close,
    /// Closes like [`Step::Close`] but without ending the session first: over
    /// TLS no `close_notify`, so the client cannot tell the end from a cut.
    /// Over plain TCP the same as [`Step::Close`]. Ends the script.
    CloseWithoutNotify,
    /// Sends the session's fatal alert (over TLS, an encrypted
    /// `bad_record_mac`), then closes like [`Step::CloseWithoutNotify`]. A
    /// script error over plain TCP. Ends the script.
    FatalAlert,
    /// Sets `SO_LINGER` to zero and drops the socket, so the kernel sends RST.
    /// Ends the script.
    Reset,
    /// Reads until the client closes; bytes received meanwhile are a script
    /// error. A reset by the client counts as closing.
    ExpectEof,
    /// Like [`Step::ExpectEof`], and the client must have ended its TLS
    /// session with `close_notify` first (RFC 8446 section 6.1); a script
    /// error over plain TCP.
    ExpectCloseNotify,
    /// Loops: read a request, write the handler's reply; ends when the client
    /// closes between requests or after [`SERVE_MAX_REQUESTS`] requests.
    Serve(Handler),
    /// Plays the steps `n` times.
    Repeat(usize, Vec<Step>),
    /// Reads and throws away what the client sends, at most `chunk` bytes
    /// every `every`, until the client closes or `for_at_most` has passed: a
    /// server that answered early and now drains the request body slowly.
    DiscardSlowly {
        /// Most bytes read per pause.
        chunk: usize,
        /// The pause before each read.
        every: Duration,
        /// When to stop reading even if the client goes on.
        for_at_most: Duration,
    },
    /// Loops like [`Step::Serve`], but the handler returns steps to play for
    /// each request (e.g. `[Write(reply)]`, or `[Write(half), Reset]`). Ends
    /// when the client closes between requests, when the steps ended the
    /// connection ([`Step::Close`], [`Step::Reset`]), or after
    /// [`SERVE_MAX_REQUESTS`] requests.
    ServeWith(StepHandler),
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::ReadRequest => f.write_str("ReadRequest"),
            Step::ReadHead => f.write_str("ReadHead"),
            Step::ReadBody => f.write_str("ReadBody"),
            Step::ExpectBytes(b) => write!(f, "ExpectBytes({})", escape(b)),
            Step::Write(b) => write!(f, "Write({} bytes)", b.len()),
            Step::WriteSlowly { bytes, every } => {
                write!(f, "WriteSlowly({} bytes every {every:?})", bytes.len())
            }
            Step::Sleep(d) => write!(f, "Sleep({d:?})"),
            Step::Reached(_) => f.write_str("Reached"),
            Step::Close => f.write_str("Close"),
            Step::CloseWithoutNotify => f.write_str("CloseWithoutNotify"),
            Step::FatalAlert => f.write_str("FatalAlert"),
            Step::Reset => f.write_str("Reset"),
            Step::ExpectEof => f.write_str("ExpectEof"),
            Step::ExpectCloseNotify => f.write_str("ExpectCloseNotify"),
            Step::Serve(_) => f.write_str("Serve(..)"),
            Step::Repeat(n, steps) => write!(f, "Repeat({n}, {steps:?})"),
            Step::DiscardSlowly {
                chunk,
                every,
                for_at_most,
            } => write!(
                f,
                "DiscardSlowly({chunk} bytes every {every:?} for at most {for_at_most:?})"
            ),
            Step::ServeWith(_) => f.write_str("ServeWith(..)"),
        }
    }
}

/// The session a connection's script runs in over its TCP socket: none
/// ([`Plain`]), or TLS (`crate::tls_server`). Every call gets the socket,
/// which the connection keeps (its `Close` and `Reset` act on it directly).
/// The socket's reads and writes time out every few milliseconds; a call
/// that cannot go on now returns that `WouldBlock` or `TimedOut` error, and
/// the script calls again until its own deadline.
pub trait Wire: Send {
    /// Moves the opening exchange on (a TLS handshake); `Ok(true)` once it
    /// is over. An error ends the connection before its script.
    fn open(&mut self, tcp: &TcpStream) -> io::Result<bool>;
    /// Reads what the client sent; `Ok(0)` at its end.
    fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize>;
    /// Takes bytes to send; some may wait in the session until
    /// [`Wire::flush`].
    fn write(&mut self, tcp: &TcpStream, buf: &[u8]) -> io::Result<usize>;
    /// Sends what [`Wire::write`] left waiting.
    fn flush(&mut self, tcp: &TcpStream) -> io::Result<()>;
    /// Queues the announcement of the end of the data (TLS `close_notify`)
    /// for the next [`Wire::flush`].
    fn close_notify(&mut self) {}
    /// Queues a fatal alert for the next [`Wire::flush`]; `Err` says why the
    /// wire has none.
    fn fatal_alert(&mut self) -> Result<(), String> {
        Err("a plain TCP connection has no alerts".into())
    }
    /// After [`Wire::read`] gave the client's end: whether the client sent
    /// `close_notify` before it; `None` on a wire without one.
    fn peer_notified(&self) -> Option<bool> {
        None
    }
}

/// No session: the script's bytes are the socket's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Wire for Plain {
    fn open(&mut self, _tcp: &TcpStream) -> io::Result<bool> {
        Ok(true)
    }

    fn read(&mut self, mut tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        tcp.read(buf)
    }

    fn write(&mut self, mut tcp: &TcpStream, buf: &[u8]) -> io::Result<usize> {
        tcp.write(buf)
    }

    fn flush(&mut self, _tcp: &TcpStream) -> io::Result<()> {
        Ok(())
    }
}

/// Makes the [`Wire`] of each accepted connection.
pub type Wires = Arc<dyn Fn() -> Box<dyn Wire> + Send + Sync>;

/// A request as the server read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Index of the connection it came on, in accept order from 0.
    pub conn: usize,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/path?q`.
    pub target: String,
    /// The version as sent, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header fields in order; values trimmed of surrounding whitespace.
    pub headers: Vec<(String, String)>,
    /// The body with any chunked framing removed.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body, in order.
    pub trailers: Vec<(String, String)>,
    /// The head exactly as received, terminating blank line included.
    pub raw_head: Vec<u8>,
    /// The body exactly as received, chunked framing included.
    pub raw_body: Vec<u8>,
}

impl Request {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers named `name` (ASCII case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A script failure on one connection: the client sent garbage, went silent,
/// closed early, or sent bytes other than expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// Index of the connection, in accept order from 0.
    pub conn: usize,
    /// The step that failed, as `{:?}` prints it.
    pub step: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn {} at {}: {}", self.conn, self.step, self.message)
    }
}

#[derive(Default)]
struct Record {
    requests: Vec<Request>,
    errors: Vec<ScriptError>,
}

struct Shared {
    stop: AtomicBool,
    repeat_last: AtomicBool,
    read_timeout_ms: AtomicUsize,
    accepted: AtomicUsize,
    /// Accepted connections whose thread is in `threads` (or that have
    /// none: unscripted, or no thread could start). Behind `accepted`
    /// while the accept loop is between the two: a connection's thread may
    /// run (and finish its exchange with the client) before its handle is
    /// stored, and [`ScriptServer::wait_idle`] must not miss it.
    registered: AtomicUsize,
    unscripted: AtomicUsize,
    /// Script errors the test has looked at ([`ScriptServer::errors`]):
    /// dropping the server fails on those that came after.
    checked: AtomicUsize,
    record: Mutex<Record>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        // A poisoned lock only means a panicking thread held it; the data is
        // plain records and stays readable.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The scripted server. Dropping it stops the server.
pub struct ScriptServer {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ScriptServer {
    /// Binds `127.0.0.1:0` and starts accepting; connection `i` (in accept
    /// order) plays `conns[i]`. Connections beyond the list are accepted and
    /// closed at once (see [`ScriptServer::unscripted`]) unless
    /// [`ScriptServer::repeat_last`] is on.
    pub fn start(conns: Vec<Script>) -> ScriptServer {
        ScriptServer::start_on(conns, "http", Arc::new(|| Box::new(Plain)))
    }

    /// Like [`ScriptServer::start`], each connection's script running over
    /// a wire `wires` makes; [`ScriptServer::url`] gives `scheme` URLs.
    pub fn start_on(conns: Vec<Script>, scheme: &'static str, wires: Wires) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for ScriptServer");
        let addr = listener
            .local_addr()
            .expect("local_addr of ScriptServer listener");
        listener
            .set_nonblocking(true)
            .expect("set ScriptServer listener non-blocking");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            repeat_last: AtomicBool::new(false),
            read_timeout_ms: AtomicUsize::new(DEFAULT_READ_TIMEOUT.as_millis() as usize),
            accepted: AtomicUsize::new(0),
            registered: AtomicUsize::new(0),
            unscripted: AtomicUsize::new(0),
            checked: AtomicUsize::new(0),
            record: Mutex::new(Record::default()),
            threads: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("script-accept".into())
                .spawn(move || accept_loop(listener, conns, wires, shared))
                .expect("spawn ScriptServer accept thread")
        };
        ScriptServer {
            addr,
            scheme,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Makes connections beyond the script list play the last script. Set it
    /// before the client connects.
    pub fn repeat_last(self, on: bool) -> ScriptServer {
        self.shared.repeat_last.store(on, Ordering::Relaxed);
        self
    }

    /// Sets how long each read waits for the client's next bytes (default
    /// [`DEFAULT_READ_TIMEOUT`]). Applies to connections accepted afterwards.
    pub fn read_timeout(self, timeout: Duration) -> ScriptServer {
        let ms = timeout.as_millis().clamp(1, usize::MAX as u128) as usize;
        self.shared.read_timeout_ms.store(ms, Ordering::Relaxed);
        self
    }

    /// The address the server listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or the scheme given to
    /// [`ScriptServer::start_on`]) followed by `path` (a `/` is added if
    /// missing).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{}://{}{slash}{path}", self.scheme, self.addr)
    }

    /// How many connections were accepted, unscripted ones included.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections came beyond the scripts and were closed at once.
    pub fn unscripted(&self) -> usize {
        self.shared.unscripted.load(Ordering::SeqCst)
    }

    /// Every request read so far, in the order read.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.record().requests.clone()
    }

    /// How many requests with this method were read.
    pub fn count_method(&self, method: &str) -> usize {
        self.shared
            .record()
            .requests
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// Every script error so far.
    pub fn errors(&self) -> Vec<ScriptError> {
        let errors = self.shared.record().errors.clone();
        self.shared.checked.store(errors.len(), Ordering::SeqCst);
        errors
    }

    /// Panics listing the script errors, if any.
    pub fn assert_no_errors(&self) {
        let errors = self.errors();
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            panic!("script server errors:\n  {}", list.join("\n  "));
        }
    }

    /// Waits until every connection accepted so far finished its script, up
    /// to `timeout`; returns whether they all did. Use it before asserting on
    /// [`ScriptServer::errors`] when the last step may still be running.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let registering = self.shared.registered.load(Ordering::SeqCst)
                < self.shared.accepted.load(Ordering::SeqCst);
            let busy = registering || {
                let threads = self
                    .shared
                    .threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                threads.iter().any(|t| !t.is_finished())
            };
            if !busy {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }
}

impl fmt::Debug for ScriptServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptServer")
            .field("addr", &self.addr)
            .field("accepted", &self.accepted())
            .finish_non_exhaustive()
    }
}

/// The error of a connection the server's stop cut in its opening.
const STOPPED_OPENING: &str = "the server stopped during the opening";

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + DROP_JOIN_BOUND;
        if let Some(acceptor) = self.acceptor.take() {
            join_until(acceptor, deadline);
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in threads {
            join_until(t, deadline);
        }
        // A script step that failed fails the test, even one that never
        // asked (a test that expects errors looks at them first).
        // The stop itself cuts a connection in its opening: not the test's.
        let seen = self.shared.checked.load(Ordering::SeqCst);
        let errors = self.shared.record().errors.clone();
        let unseen: Vec<String> = (errors.get(seen..).unwrap_or_default().iter())
            .filter(|e| e.message != STOPPED_OPENING)
            .map(|e| e.to_string())
            .collect();
        if !unseen.is_empty() && !thread::panicking() {
            panic!(
                "script server errors nobody looked at:\n  {}",
                unseen.join("\n  ")
            );
        }
    }
}

/// Joins `t` if it ends before `deadline`; otherwise leaves it detached.
fn join_until(t: JoinHandle<()>, deadline: Instant) {
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    if t.is_finished() {
        // A panic in a connection thread was already recorded or is a bug in
        // this module; either way dropping must not panic.
        let _ = t.join();
    }
}

fn accept_loop(listener: TcpListener, conns: Vec<Script>, wires: Wires, shared: Arc<Shared>) {
    // Bounded by the stop flag and by MAX_CONNECTIONS.
    while !shared.stopped() && shared.accepted.load(Ordering::SeqCst) < MAX_CONNECTIONS {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(POLL);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Transient (e.g. ECONNABORTED, EMFILE): back off and retry.
                eprintln!("ScriptServer: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let script = match conns.get(index) {
            Some(s) => Some(s.clone()),
            None if shared.repeat_last.load(Ordering::Relaxed) => conns.last().cloned(),
            None => None,
        };
        let Some(script) = script else {
            shared.unscripted.fetch_add(1, Ordering::SeqCst);
            shared.registered.fetch_add(1, Ordering::SeqCst);
            drop(stream);
            continue;
        };
        let conn_shared = Arc::clone(&shared);
        let wire = wires();
        let spawned = thread::Builder::new()
            .name(format!("script-conn-{index}"))
            .spawn(move || run_connection(index, stream, wire, script, conn_shared));
        match spawned {
            Ok(handle) => shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle),
            Err(e) => shared.record().errors.push(ScriptError {
                conn: index,
                step: "accept".into(),
                message: format!("could not spawn a thread: {e}"),
            }),
        }
        shared.registered.fetch_add(1, Ordering::SeqCst);
    }
}

/// Why a step sequence stopped early.
enum Stop {
    /// The connection is gone (Close or Reset ran); no step may follow.
    Ended,
    /// The server is being dropped.
    ServerStopped,
    /// A script error, recorded by the caller.
    Failed(String),
    /// A script error already recorded; stop quietly.
    Recorded,
}

struct Conn {
    index: usize,
    stream: Option<TcpStream>,
    wire: Box<dyn Wire>,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
    read_timeout: Duration,
    shared: Arc<Shared>,
    /// Index in the record of the request the last `ReadHead` read.
    pending_body: Option<(usize, Framing)>,
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

fn run_connection(
    index: usize,
    stream: TcpStream,
    wire: Box<dyn Wire>,
    script: Script,
    shared: Arc<Shared>,
) {
    let read_timeout = Duration::from_millis(shared.read_timeout_ms.load(Ordering::Relaxed) as u64);
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(IO_SLICE)))
        .and_then(|()| stream.set_write_timeout(Some(IO_SLICE)))
        .and_then(|()| stream.set_nodelay(true));
    let mut conn = Conn {
        index,
        stream: Some(stream),
        wire,
        buf: Vec::new(),
        read_timeout,
        shared,
        pending_body: None,
    };
    if let Err(e) = setup {
        conn.fail("setup", format!("socket setup failed: {e}"));
        return;
    }
    if let Err(message) = conn.open() {
        conn.fail("open", message);
        conn.close_after_failed_open();
        return;
    }
    let _ = conn.play(&script);
}

impl Conn {
    fn fail(&self, step: &str, message: String) {
        self.shared.record().errors.push(ScriptError {
            conn: self.index,
            step: step.to_string(),
            message,
        });
    }

    /// Plays `steps`, recording the first failure.
    fn play(&mut self, steps: &[Step]) -> Result<(), Stop> {
        for (i, step) in steps.iter().enumerate() {
            if self.stream.is_none() {
                let rest = format!("{:?}", &steps[i..]);
                self.fail(&rest, "steps after Close or Reset".into());
                return Err(Stop::Ended);
            }
            match self.step(step) {
                Ok(()) => {}
                Err(Stop::Failed(message)) => {
                    self.fail(&format!("{step:?}"), message);
                    return Err(Stop::Recorded);
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), Stop> {
        match step {
            Step::ReadRequest => {
                let (at, framing) = self.read_head()?;
                self.read_body_into(at, framing)
            }
            Step::ReadHead => {
                let pending = self.read_head()?;
                self.pending_body = Some(pending);
                Ok(())
            }
            Step::ReadBody => {
                let (at, framing) = self
                    .pending_body
                    .take()
                    .ok_or_else(|| Stop::Failed("ReadBody without a ReadHead before it".into()))?;
                self.read_body_into(at, framing)
            }
            Step::ExpectBytes(want) => {
                let got = self.take_exact(want.len())?;
                if &got != want {
                    return Err(Stop::Failed(format!(
                        "expected {} got {}",
                        escape(want),
                        escape(&got)
                    )));
                }
                Ok(())
            }
            Step::Write(bytes) => self.write_all(bytes),
            Step::WriteSlowly { bytes, every } => {
                for b in bytes {
                    self.sleep(*every)?;
                    self.write_all(std::slice::from_ref(b))?;
                }
                Ok(())
            }
            Step::Sleep(d) => self.sleep(*d),
            Step::Reached(flag) => {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Step::Close => {
                self.wire.close_notify();
                // The client may be gone already; the close goes on.
                let _ = self.flush();
                self.close()
            }
            Step::CloseWithoutNotify => self.close(),
            Step::FatalAlert => {
                self.wire.fatal_alert().map_err(Stop::Failed)?;
                let _ = self.flush();
                self.close()
            }
            Step::Reset => {
                let stream = self.stream.take().expect("stream present before Reset");
                socket2::SockRef::from(&stream)
                    .set_linger(Some(Duration::ZERO))
                    .map_err(|e| Stop::Failed(format!("SO_LINGER 0 failed: {e}")))?;
                drop(stream);
                Ok(())
            }
            Step::ExpectCloseNotify => {
                self.step(&Step::ExpectEof)?;
                match self.wire.peer_notified() {
                    Some(true) => Ok(()),
                    Some(false) => Err(Stop::Failed(
                        "the client closed without close_notify".into(),
                    )),
                    None => Err(Stop::Failed("no TLS session to end".into())),
                }
            }
            Step::ExpectEof => {
                let mut extra = std::mem::take(&mut self.buf).len();
                loop {
                    match self.fill("waiting for the client to close")? {
                        0 => break,
                        n => {
                            extra += n;
                            self.buf.clear();
                        }
                    }
                }
                if extra > 0 {
                    return Err(Stop::Failed(format!("{extra} unexpected bytes before EOF")));
                }
                Ok(())
            }
            Step::Serve(handler) => {
                for _ in 0..SERVE_MAX_REQUESTS {
                    if self.buf.is_empty() && self.fill("waiting for the next request")? == 0 {
                        return Ok(());
                    }
                    let (at, framing) = self.read_head()?;
                    self.read_body_into(at, framing)?;
                    let request = self.shared.record().requests[at].clone();
                    let reply =
                        catch_unwind(AssertUnwindSafe(|| handler(&request))).map_err(|p| {
                            Stop::Failed(format!("handler panicked: {}", panic_message(&p)))
                        })?;
                    self.write_all(&reply)?;
                }
                Ok(())
            }
            Step::Repeat(n, steps) => {
                for _ in 0..*n {
                    self.play(steps)?;
                }
                Ok(())
            }
            Step::DiscardSlowly {
                chunk,
                every,
                for_at_most,
            } => self.discard_slowly(*chunk, *every, *for_at_most),
            Step::ServeWith(handler) => {
                for _ in 0..SERVE_MAX_REQUESTS {
                    if self.buf.is_empty() && self.fill("waiting for the next request")? == 0 {
                        return Ok(());
                    }
                    let (at, framing) = self.read_head()?;
                    self.read_body_into(at, framing)?;
                    let request = self.shared.record().requests[at].clone();
                    let steps =
                        catch_unwind(AssertUnwindSafe(|| handler(&request))).map_err(|p| {
                            Stop::Failed(format!("handler panicked: {}", panic_message(&p)))
                        })?;
                    self.play(&steps)?;
                    if self.stream.is_none() {
                        return Ok(());
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs the wire's opening exchange, up to the read timeout without
    /// progress; `Err` says why it failed.
    fn open(&mut self) -> Result<(), String> {
        let mut deadline = Instant::now() + self.read_timeout;
        // Bounded by the deadline, moved only when the wire made progress.
        loop {
            if self.shared.stopped() {
                return Err(STOPPED_OPENING.into());
            }
            let Some(stream) = self.stream.as_ref() else {
                return Err("no socket".into());
            };
            match self.wire.open(stream) {
                Ok(true) => return Ok(()),
                Ok(false) => deadline = Instant::now() + self.read_timeout,
                Err(e) if is_pause(&e) => {
                    if Instant::now() >= deadline {
                        return Err(format!("opening stalled for {:?}", self.read_timeout));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// After a failed opening (the wire sent its alert, if any): shuts the
    /// write side and reads until the client closes, up to the read
    /// timeout, so the client reads the alert before any reset.
    fn close_after_failed_open(&mut self) {
        let _ = self.flush();
        let Some(stream) = self.stream.take() else {
            return;
        };
        let _ = stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + self.read_timeout;
        let mut scratch = [0u8; 8192];
        while Instant::now() < deadline && !self.shared.stopped() {
            match (&stream).read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if is_pause(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// [`Step::CloseWithoutNotify`]: FIN, read away what already arrived
    /// (so the close is not an RST), drop the socket.
    fn close(&mut self) -> Result<(), Stop> {
        let stream = self.stream.take().ok_or(Stop::Ended)?;
        let _ = stream.shutdown(Shutdown::Write);
        if stream.set_nonblocking(true).is_ok() {
            let mut scratch = [0u8; 8192];
            for _ in 0..10_000 {
                match (&stream).read(&mut scratch) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        drop(stream);
        Ok(())
    }

    /// Sends what the wire holds, up to the read timeout without progress.
    fn flush(&mut self) -> Result<(), Stop> {
        let deadline = Instant::now() + self.read_timeout;
        loop {
            if self.shared.stopped() {
                return Err(Stop::ServerStopped);
            }
            let stream = self.stream.as_ref().ok_or(Stop::Ended)?;
            match self.wire.flush(stream) {
                Ok(()) => return Ok(()),
                Err(e) if is_pause(&e) => {
                    if Instant::now() >= deadline {
                        return Err(Stop::Failed(format!(
                            "flush stalled for {:?}",
                            self.read_timeout
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Failed(format!("flush failed: {e}"))),
            }
        }
    }

    /// [`Step::DiscardSlowly`]: bytes already buffered are dropped too.
    fn discard_slowly(
        &mut self,
        chunk: usize,
        every: Duration,
        for_at_most: Duration,
    ) -> Result<(), Stop> {
        let end = Instant::now() + for_at_most;
        self.buf.clear();
        let mut scratch = vec![0u8; chunk.max(1)];
        // Bounded by `end`: every turn sleeps `every` or the time left.
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.sleep(every.min(left))?;
            // One read, waiting at most IO_SLICE (the socket's timeout).
            let stream = self.stream.as_ref().ok_or(Stop::Ended)?;
            match self.wire.read(stream, &mut scratch) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(Stop::Failed(format!("read failed while discarding: {e}"))),
            }
        }
    }

    /// Reads once more into `buf`, waiting up to the read timeout for bytes.
    /// Returns how many bytes came; 0 means EOF (a reset counts as EOF).
    fn fill(&mut self, what: &str) -> Result<usize, Stop> {
        let deadline = Instant::now() + self.read_timeout;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.shared.stopped() {
                return Err(Stop::ServerStopped);
            }
            let stream = self.stream.as_ref().ok_or(Stop::Ended)?;
            match self.wire.read(stream, &mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(Stop::Failed(format!(
                            "read timeout after {:?} {what}",
                            self.read_timeout
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(0),
                Err(e) => return Err(Stop::Failed(format!("read failed {what}: {e}"))),
            }
        }
    }

    /// Fills until `buf` holds at least `n` bytes; EOF before is an error.
    fn want(&mut self, n: usize, what: &str) -> Result<(), Stop> {
        while self.buf.len() < n {
            if self.fill(what)? == 0 {
                return Err(Stop::Failed(format!(
                    "EOF {what} ({} of {n} bytes)",
                    self.buf.len()
                )));
            }
        }
        Ok(())
    }

    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, Stop> {
        self.want(n, "reading bytes")?;
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (without the CRLF) of at most `max`.
    fn take_line(&mut self, max: usize, what: &str) -> Result<Vec<u8>, Stop> {
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], b"\r\n") {
                let end = searched + pos;
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > max {
                return Err(Stop::Failed(format!("line longer than {max} bytes {what}")));
            }
            searched = self.buf.len().saturating_sub(1);
            if self.fill(what)? == 0 {
                return Err(Stop::Failed(format!("EOF {what}")));
            }
        }
    }

    /// Reads and records one request head; returns its record index and how
    /// its body is framed.
    fn read_head(&mut self) -> Result<(usize, Framing), Stop> {
        let mut searched = 0;
        let end = loop {
            if let Some(pos) = find(&self.buf[searched..], b"\r\n\r\n") {
                break searched + pos + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Stop::Failed(format!(
                    "request head longer than {MAX_HEAD} bytes"
                )));
            }
            searched = self.buf.len().saturating_sub(3);
            if self.fill("reading a request head")? == 0 {
                let why = if self.buf.is_empty() {
                    "EOF before a request".to_string()
                } else {
                    format!("EOF inside a request head: {}", escape(&self.buf))
                };
                return Err(Stop::Failed(why));
            }
        };
        let raw_head: Vec<u8> = self.buf.drain(..end).collect();
        let mut request = parse_head(&raw_head).map_err(Stop::Failed)?;
        request.conn = self.index;
        let framing = framing(&request).map_err(Stop::Failed)?;
        let mut record = self.shared.record();
        record.requests.push(request);
        Ok((record.requests.len() - 1, framing))
    }

    /// Reads a body framed by `framing` into the recorded request `at`.
    fn read_body_into(&mut self, at: usize, framing: Framing) -> Result<(), Stop> {
        let (body, trailers, raw) = match framing {
            Framing::None => (Vec::new(), Vec::new(), Vec::new()),
            Framing::Length(n) => {
                let body = self.take_exact(n)?;
                (body.clone(), Vec::new(), body)
            }
            Framing::Chunked => self.read_chunked()?,
        };
        let mut record = self.shared.record();
        let request = &mut record.requests[at];
        request.body = body;
        request.trailers = trailers;
        request.raw_body = raw;
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn read_chunked(&mut self) -> Result<(Vec<u8>, Vec<(String, String)>, Vec<u8>), Stop> {
        let (mut body, mut raw) = (Vec::new(), Vec::new());
        loop {
            let line = self.take_line(4096, "reading a chunk size")?;
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            let hex = line.split(|&b| b == b';').next().unwrap_or_default();
            let hex = std::str::from_utf8(hex)
                .unwrap_or("")
                .trim_matches([' ', '\t']);
            let size = usize::from_str_radix(hex, 16)
                .ok()
                .filter(|_| !hex.is_empty() && !hex.starts_with('+'))
                .ok_or_else(|| Stop::Failed(format!("bad chunk size line {}", escape(&line))))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(Stop::Failed(format!(
                    "chunked body larger than {MAX_BODY} bytes"
                )));
            }
            let data = self.take_exact(size)?;
            let crlf = self.take_exact(2)?;
            if crlf != b"\r\n" {
                return Err(Stop::Failed(format!(
                    "chunk data not followed by CRLF but {}",
                    escape(&crlf)
                )));
            }
            body.extend_from_slice(&data);
            raw.extend_from_slice(&data);
            raw.extend_from_slice(b"\r\n");
        }
        let mut trailers = Vec::new();
        for _ in 0..1000 {
            let line = self.take_line(MAX_HEAD, "reading trailers")?;
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            if line.is_empty() {
                return Ok((body, trailers, raw));
            }
            trailers.push(parse_field(&line).map_err(Stop::Failed)?);
        }
        Err(Stop::Failed("more than 1000 trailer fields".into()))
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        let mut deadline = Instant::now() + self.read_timeout;
        while !bytes.is_empty() {
            if self.shared.stopped() {
                return Err(Stop::ServerStopped);
            }
            let stream = self.stream.as_ref().ok_or(Stop::Ended)?;
            match self.wire.write(stream, bytes) {
                Ok(0) => return Err(Stop::Failed("write returned 0".into())),
                Ok(n) => {
                    bytes = &bytes[n..];
                    deadline = Instant::now() + self.read_timeout;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(Stop::Failed(format!(
                            "write stalled for {:?} ({} bytes left)",
                            self.read_timeout,
                            bytes.len()
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Failed(format!("write failed: {e}"))),
            }
        }
        self.flush()
    }

    fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + d;
        loop {
            if self.shared.stopped() {
                return Err(Stop::ServerStopped);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            thread::sleep(left.min(IO_SLICE));
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".into()
    }
}

/// A socket timeout: no progress now, try again.
fn is_pause(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a request head (request line and fields, ending in CRLF CRLF).
fn parse_head(raw: &[u8]) -> Result<Request, String> {
    let text = raw
        .strip_suffix(b"\r\n\r\n")
        .ok_or("head does not end in CRLF CRLF")?;
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let bad_line = || format!("bad request line {}", escape(line));
    let line_str = std::str::from_utf8(line).map_err(|_| bad_line())?;
    let mut parts = line_str.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_line());
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !token(target) || !version.starts_with("HTTP/") {
        return Err(bad_line());
    }
    let mut headers = Vec::new();
    for line in lines {
        headers.push(parse_field(line)?);
    }
    Ok(Request {
        method: method.into(),
        target: target.into(),
        version: version.into(),
        headers,
        raw_head: raw.to_vec(),
        ..Request::default()
    })
}

/// Parses `name: value` (no whitespace before the colon).
fn parse_field(line: &[u8]) -> Result<(String, String), String> {
    let bad = || format!("bad field line {}", escape(line));
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let name = std::str::from_utf8(&line[..colon]).map_err(|_| bad())?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    let value = String::from_utf8_lossy(&line[colon + 1..])
        .trim_matches([' ', '\t'])
        .to_string();
    Ok((name.to_string(), value))
}

/// How the body of `request` is framed (RFC 9112 §6.3, for requests).
fn framing(request: &Request) -> Result<Framing, String> {
    let te = request.header_all("transfer-encoding");
    if !te.is_empty() {
        let last = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(format!(
                "request Transfer-Encoding {te:?} does not end in chunked"
            )),
        };
    }
    let mut length = None;
    for v in request.header_all("content-length") {
        for part in v.split(',').map(str::trim) {
            let n: usize = part
                .parse()
                .ok()
                .filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad Content-Length {v:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err(format!("conflicting Content-Length values {v:?}"));
            }
            length = Some(n);
        }
    }
    match length {
        Some(n) if n > MAX_BODY => Err(format!("Content-Length {n} above {MAX_BODY}")),
        Some(n) => Ok(Framing::Length(n)),
        None => Ok(Framing::None),
    }
}

/// Shows bytes as a quoted string with non-printable bytes escaped, cut
/// after 200 bytes.
pub fn escape(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(200)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    let more = if bytes.len() > 200 {
        format!("... ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!("\"{shown}\"{more}")
}

/// The reason phrase the helpers put in status lines.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// `HTTP/1.1 200 OK` with `Content-Length` and `body`.
pub fn ok(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    response(200, &[("Content-Length", &len)], body)
}

/// `HTTP/1.1 200 OK` with `Transfer-Encoding: chunked`: one chunk per
/// non-empty element of `chunks` (an empty chunk would end the body), the
/// last chunk, then `trailers`. No `Trailer` header is added.
pub fn chunked(chunks: &[&[u8]], trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = response(200, &[("Transfer-Encoding", "chunked")], b"");
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `HTTP/1.1 {status} {reason}`, exactly `headers`, a blank line, `body`.
/// Adds no header of its own.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
