//! Scripted-peer tests for `conn::Connection`, in the spirit of quinn's
//! `Pair`, h11's `ConnectionPair` and ureq-proto's `Scenario`.
//!
//! A test is a [`Step`] script: user commands (`Start`, `SendBody`,
//! `FinishBody`, `Written`, `Abandon`), what the server does (`ServerSends`,
//! `Eof`) and the virtual clock (`Advance`). After every step the driver runs
//! the adapter loop (pull `poll_event` until `Ok(None)` or an error, with a
//! bound so a livelock fails) and takes a [`Snap`] of every question the
//! connection answers. `Check(name)` keeps a snapshot under a name for the
//! test to assert.
//!
//! Every split, always: [`run`] plays the script with each `ServerSends`
//! chunk fed whole, byte by byte, and split in two at every boundary, and
//! requires the same observations from all of them (adjacent `Data` events
//! are merged, since their sizes follow the reads).

use core::time::Duration;

use bytes::BytesMut;
use roundtrip_proto::conn::{
    ConnConfig, Connection, RetryFacts, RetrySafety, Timer, is_idempotent,
};
use roundtrip_proto::encode::BodyFraming;
use roundtrip_proto::encode::RequestHead;
use roundtrip_proto::time::Instant;
use roundtrip_proto::{CloseReason, Error, Event, Framing, Phase, Reuse};

/// Most `poll_event` calls one drive may make before it is called a livelock.
const MAX_POLLS: usize = 10_000;

type Fields = &'static [(&'static [u8], &'static [u8])];

// ---------------------------------------------------------------------------
// The script
// ---------------------------------------------------------------------------

/// A request to start: the fields of `RequestHead` (host is always `x`) plus
/// extra header fields.
#[derive(Clone, Copy, Debug)]
struct Req {
    method: &'static [u8],
    target: &'static [u8],
    body: BodyFraming,
    expect_continue: bool,
    close: bool,
    fields: Fields,
}

const fn req(method: &'static [u8], target: &'static [u8]) -> Req {
    Req {
        method,
        target,
        body: BodyFraming::None,
        expect_continue: false,
        close: false,
        fields: &[],
    }
}

const fn get(target: &'static [u8]) -> Req {
    req(b"GET", target)
}

const fn post(target: &'static [u8], len: u64) -> Req {
    req(b"POST", target).body(BodyFraming::Length(len))
}

impl Req {
    const fn body(mut self, body: BodyFraming) -> Self {
        self.body = body;
        self
    }
    const fn expect(mut self) -> Self {
        self.expect_continue = true;
        self
    }
    const fn close(mut self) -> Self {
        self.close = true;
        self
    }
    const fn fields(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }
}

/// One step of a script.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// `Connection::start` at the current time.
    Start(Req),
    /// `frame_body`, then prefix + data + suffix into the written bytes when
    /// it succeeds (it must fail unless `may_send_body`).
    SendBody(&'static [u8]),
    /// `finish_body` with these trailers at the current time.
    FinishBody(Fields),
    /// `handle_written(n)`: the socket took `n` more bytes.
    Written(usize),
    /// `handle_written` of everything produced and not yet reported.
    WrittenAll,
    /// The server sends these bytes (fed whole or split, see [`run`]).
    ServerSends(&'static [u8]),
    /// The server closes its side: `handle_eof`.
    Eof,
    /// Move the virtual clock by this many ms, then `handle_timeout(now)`.
    Advance(u64),
    /// `abandon(now)`.
    Abandon,
    /// Keep the snapshot taken here under this name.
    Check(&'static str),
}

use Step::*;

/// How `ServerSends` chunks are cut into reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Whole,
    ByteByByte,
    /// Chunk number `chunk` (counting `ServerSends` steps from 0) is cut
    /// in two at `at`; every other chunk is fed whole.
    SplitAt {
        chunk: usize,
        at: usize,
    },
}

impl Feed {
    fn pieces(self, index: usize, chunk: &'static [u8]) -> Vec<&'static [u8]> {
        match self {
            Feed::Whole => vec![chunk],
            Feed::ByteByByte => chunk.chunks(1).collect(),
            Feed::SplitAt { chunk: i, at } if i == index => vec![&chunk[..at], &chunk[at..]],
            Feed::SplitAt { .. } => vec![chunk],
        }
    }
}

// ---------------------------------------------------------------------------
// What is observed
// ---------------------------------------------------------------------------

/// One line of the log: a command's reply (`>`), a response event (`<`) or
/// the error (`!`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Reply(&'static str, Result<(), Error>),
    Abandoned(roundtrip_proto::conn::Abandon),
    Event(Ev),
    Error(Error),
}

/// An [`Event`] with owned payloads, so `Data` can be merged.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Status(String),
    Field(String),
    HeadEnd {
        framing: Framing,
        reuse: Reuse,
        interim: bool,
        keep_alive: Option<Duration>,
    },
    Data(Vec<u8>),
    Trailer(String),
    End,
    Switched,
}

fn field_line(name: &[u8], value: &[u8]) -> String {
    format!("{}: {}", name.escape_ascii(), value.escape_ascii())
}

impl From<Event<'_>> for Ev {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Status(s) => Ev::Status(format!(
                "{} {} {}",
                s.version.as_str(),
                s.code,
                s.reason.escape_ascii()
            )),
            Event::Field(f) => Ev::Field(field_line(f.name(), f.value())),
            Event::HeadEnd(end) => Ev::HeadEnd {
                framing: end.framing,
                reuse: end.reuse,
                interim: end.interim,
                keep_alive: end.keep_alive_timeout,
            },
            Event::Data(d) => Ev::Data(d.to_vec()),
            Event::Trailer(f) => Ev::Trailer(field_line(f.name(), f.value())),
            Event::End => Ev::End,
            Event::Switched => Ev::Switched,
        }
    }
}

fn short_error(e: &Error) -> String {
    match e {
        Error::Misuse(_) => "Misuse".to_string(),
        e => format!("{e:?}"),
    }
}

impl Entry {
    fn render(&self) -> String {
        match self {
            Entry::Reply(what, Ok(())) => format!("> {what}"),
            Entry::Reply(what, Err(e)) => format!("> {what} {}", short_error(e)),
            Entry::Abandoned(verdict) => format!("> abandon {verdict:?}"),
            Entry::Error(e) => format!("! {e:?}"),
            Entry::Event(ev) => match ev {
                Ev::Status(line) => format!("< {line}"),
                Ev::Field(line) => format!("< {line}"),
                Ev::HeadEnd { interim: true, .. } => "< interim-end".to_string(),
                Ev::HeadEnd { framing, reuse, .. } => format!("< head-end {framing:?} {reuse:?}"),
                Ev::Data(d) => format!("< data {}", d.escape_ascii()),
                Ev::Trailer(line) => format!("< trailer {line}"),
                Ev::End => "< end".to_string(),
                Ev::Switched => "< switched".to_string(),
            },
        }
    }
}

/// Every question the connection answers, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snap {
    /// `poll_timeout()`, in ms from the origin.
    timeout_ms: Option<u128>,
    may_send_body: bool,
    is_sending: bool,
    complete: bool,
    idle: bool,
    reusable: bool,
    reuse: Reuse,
    verdict: Reuse,
    wrote_any: bool,
    received_any: bool,
    keep_alive: Option<Duration>,
    switched: bool,
    draining: bool,
    /// `retry_safety` for every combination of facts, see [`facts`].
    retry: [RetrySafety; 8],
}

fn facts(i: usize) -> RetryFacts {
    RetryFacts {
        reused: i & 4 != 0,
        idempotent: i & 2 != 0,
        body_replayable: i & 1 != 0,
    }
}

impl Snap {
    fn of(conn: &Connection) -> Self {
        let snap = Snap {
            timeout_ms: conn.poll_timeout().map(|t| t.since_origin().as_millis()),
            may_send_body: conn.may_send_body(),
            is_sending: conn.is_sending(),
            complete: conn.is_complete(),
            idle: conn.is_idle(),
            reusable: conn.is_reusable(),
            reuse: conn.reuse(),
            verdict: conn.checkin_verdict(),
            wrote_any: conn.wrote_any_byte(),
            received_any: conn.received_any_byte(),
            keep_alive: conn.keep_alive_timeout(),
            switched: conn.is_switched(),
            draining: conn.is_draining(),
            retry: core::array::from_fn(|i| conn.retry_safety(facts(i))),
        };
        // Invariants that hold in every state.
        assert_eq!(
            snap.reusable,
            snap.verdict == Reuse::Yes,
            "checkin_verdict is Yes iff reusable: {snap:?}"
        );
        assert!(
            !snap.may_send_body || snap.is_sending,
            "may_send_body implies is_sending: {snap:?}"
        );
        assert!(
            !snap.reusable || snap.reuse == Reuse::Yes,
            "reusable implies reuse Yes: {snap:?}"
        );
        snap
    }
}

/// Everything one play of a script observed; must not depend on the split.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Obs {
    log: Vec<Entry>,
    /// Every byte the client produced, in order.
    written: Vec<u8>,
    /// The first error `poll_event` returned (errors are sticky).
    error: Option<Error>,
    /// A snapshot after every step.
    trace: Vec<Snap>,
    checks: Vec<(&'static str, Snap)>,
    /// The read buffer at the end (the caller's bytes after a switch).
    leftover: Vec<u8>,
}

// ---------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------

struct Driver {
    conn: Connection,
    buf: BytesMut,
    now_ms: u64,
    /// Bytes of `obs.written` already reported with `handle_written`.
    flushed: usize,
    obs: Obs,
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_origin(Duration::from_millis(self.now_ms))
    }

    fn push(&mut self, entry: Entry) {
        if let (Some(Entry::Event(Ev::Data(prev))), Entry::Event(Ev::Data(more))) =
            (self.obs.log.last_mut(), &entry)
        {
            prev.extend_from_slice(more);
            return;
        }
        self.obs.log.push(entry);
    }

    /// The adapter's output loop: pull events until `Ok(None)` or an error.
    fn drive(&mut self) {
        for _ in 0..MAX_POLLS {
            let polled = self.conn.poll_event(&mut self.buf).map(|e| e.map(Ev::from));
            match polled {
                Ok(Some(event)) => self.push(Entry::Event(event)),
                Ok(None) => {
                    // "Need more bytes" must stay so until something changes.
                    assert_eq!(
                        self.conn.poll_event(&mut self.buf),
                        Ok(None),
                        "Ok(None) is stable"
                    );
                    return;
                }
                Err(e) => {
                    let again = self.conn.poll_event(&mut self.buf);
                    assert_eq!(again, Err(e.clone()), "errors are sticky");
                    match &self.obs.error {
                        Some(first) => assert_eq!(first, &e, "errors are sticky across inputs"),
                        None => {
                            self.obs.error = Some(e.clone());
                            self.push(Entry::Error(e));
                        }
                    }
                    return;
                }
            }
        }
        panic!("livelock: {MAX_POLLS} events without Ok(None)");
    }

    fn step(&mut self, step: Step, feed: Feed, chunk_index: &mut usize) {
        match step {
            Start(r) => {
                let head = RequestHead {
                    method: r.method,
                    target: r.target,
                    host: Some(b"x"),
                    body: r.body,
                    preset: None,
                    expect_continue: r.expect_continue,
                    close: r.close,
                };
                let before = self.obs.written.len();
                let now = self.now();
                let result =
                    self.conn
                        .start(&head, r.fields.iter().copied(), now, &mut self.obs.written);
                if result.is_err() {
                    assert_eq!(
                        self.obs.written.len(),
                        before,
                        "a failed start writes nothing"
                    );
                }
                self.push(Entry::Reply("start", result));
            }
            SendBody(data) => {
                let allowed = self.conn.may_send_body();
                let result = self.conn.frame_body(data.len()).map(|frame| {
                    self.obs.written.extend_from_slice(frame.prefix());
                    self.obs.written.extend_from_slice(data);
                    self.obs.written.extend_from_slice(frame.suffix());
                });
                if !allowed {
                    assert!(
                        matches!(result, Err(Error::Misuse(_))),
                        "frame_body must fail unless may_send_body"
                    );
                }
                self.push(Entry::Reply("body", result));
            }
            FinishBody(trailers) => {
                let now = self.now();
                let result =
                    self.conn
                        .finish_body(trailers.iter().copied(), now, &mut self.obs.written);
                self.push(Entry::Reply("finish", result));
            }
            Written(n) => {
                assert!(
                    self.flushed + n <= self.obs.written.len(),
                    "script reports more written than produced"
                );
                self.flushed += n;
                self.conn.handle_written(n);
            }
            WrittenAll => {
                let n = self.obs.written.len() - self.flushed;
                self.flushed += n;
                self.conn.handle_written(n);
            }
            ServerSends(chunk) => {
                for piece in feed.pieces(*chunk_index, chunk) {
                    self.buf.extend_from_slice(piece);
                    if self.obs.error.is_none() {
                        self.drive();
                    }
                }
                *chunk_index += 1;
            }
            Eof => self.conn.handle_eof(),
            Advance(ms) => {
                self.now_ms += ms;
                let now = self.now();
                self.conn.handle_timeout(now);
            }
            Abandon => {
                let now = self.now();
                let verdict = self.conn.abandon(now);
                self.push(Entry::Abandoned(verdict));
            }
            Check(_) => {}
        }
        self.drive();
        let snap = Snap::of(&self.conn);
        if let Check(name) = step {
            assert!(
                self.obs.checks.iter().all(|(n, _)| *n != name),
                "check {name:?} used twice"
            );
            self.obs.checks.push((name, snap.clone()));
        }
        self.obs.trace.push(snap);
    }
}

fn play(config: ConnConfig, script: &[Step], feed: Feed) -> (Obs, Connection) {
    let mut driver = Driver {
        conn: Connection::new(config),
        buf: BytesMut::new(),
        now_ms: 0,
        flushed: 0,
        obs: Obs {
            log: vec![],
            written: vec![],
            error: None,
            trace: vec![],
            checks: vec![],
            leftover: vec![],
        },
    };
    let mut chunk_index = 0;
    for &step in script {
        driver.step(step, feed, &mut chunk_index);
    }
    driver.obs.leftover = driver.buf.to_vec();
    (driver.obs, driver.conn)
}

/// The result of a script, played every way.
struct Outcome {
    obs: Obs,
    /// The connection at the end of the whole-chunk play.
    conn: Connection,
}

impl Outcome {
    fn log(&self) -> Vec<String> {
        self.obs.log.iter().map(Entry::render).collect()
    }
    fn written(&self) -> String {
        String::from_utf8(self.obs.written.clone()).expect("test requests are ASCII")
    }
    fn at(&self, name: &str) -> &Snap {
        match self.obs.checks.iter().find(|(n, _)| *n == name) {
            Some((_, snap)) => snap,
            None => panic!("no Check({name:?}) in the script"),
        }
    }
    /// The snapshot after the last step.
    fn last(&self) -> &Snap {
        self.obs.trace.last().expect("scripts are not empty")
    }
    fn error(&self) -> Option<&Error> {
        self.obs.error.as_ref()
    }
    fn retry(&self, reused: bool, idempotent: bool, body_replayable: bool) -> RetrySafety {
        self.conn.retry_safety(RetryFacts {
            reused,
            idempotent,
            body_replayable,
        })
    }
}

/// Plays `script` with the default config, every split.
fn run(script: &[Step]) -> Outcome {
    run_with(ConnConfig::default(), script)
}

/// Plays `script` fed whole, byte by byte and split in two at every boundary
/// of every `ServerSends` chunk, and whole and byte by byte with heads
/// shared the other way; all plays must observe the same.
fn run_with(config: ConnConfig, script: &[Step]) -> Outcome {
    let (whole, conn) = play(config, script, Feed::Whole);
    let mut feeds = vec![Feed::ByteByByte];
    let chunks = script.iter().filter_map(|s| {
        if let ServerSends(c) = s {
            Some(c.len())
        } else {
            None
        }
    });
    for (chunk, len) in chunks.enumerate() {
        feeds.extend((1..len).map(|at| Feed::SplitAt { chunk, at }));
    }
    for feed in feeds {
        let (split, _) = play(config, script, feed);
        assert_eq!(
            split, whole,
            "fed {feed:?}, observed differently than fed whole"
        );
    }
    // Sharing heads (the adapters do) changes nothing observable either.
    let other = config.share_heads(!config.share_heads);
    for feed in [Feed::Whole, Feed::ByteByByte] {
        let (shared, _) = play(other, script, feed);
        assert_eq!(
            shared, whole,
            "fed {feed:?} with share_heads({}), observed differently",
            other.share_heads
        );
    }
    Outcome { obs: whole, conn }
}

fn ms(n: u64) -> Option<u128> {
    Some(u128::from(n))
}

const OK_HI: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
const GET_ROOT: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn head_timeout(secs: u64) -> ConnConfig {
    ConnConfig::default().response_head_timeout(Some(Duration::from_secs(secs)))
}

// ---------------------------------------------------------------------------
// Keep-alive and close
// ---------------------------------------------------------------------------

#[test]
fn get_keep_alive_then_second_exchange_on_same_connection() {
    let o = run(&[
        Check("fresh"),
        Start(get(b"/a")),
        Check("started"),
        WrittenAll,
        Check("sent"),
        ServerSends(OK_HI),
        Check("first done"),
        Start(get(b"/b")),
        Check("second started"),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye"),
    ]);
    assert_eq!(
        o.written(),
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 2",
            "< head-end Length(2) Yes",
            "< data hi",
            "< end",
            "> start",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 3",
            "< head-end Length(3) Yes",
            "< data bye",
            "< end",
        ]
    );
    let fresh = o.at("fresh");
    assert!(fresh.idle && fresh.reusable && !fresh.complete && !fresh.wrote_any);
    let started = o.at("started");
    assert!(!started.idle && !started.reusable && !started.wrote_any && !started.is_sending);
    assert_eq!(
        started.verdict,
        Reuse::No(CloseReason::Abandoned),
        "mid-exchange a checkin would close"
    );
    let sent = o.at("sent");
    assert!(sent.wrote_any && !sent.received_any && !sent.complete);
    assert_eq!(sent.timeout_ms, None, "no response-head timeout configured");
    let first = o.at("first done");
    assert!(first.complete && first.reusable && first.received_any);
    assert_eq!(first.verdict, Reuse::Yes);
    let second = o.at("second started");
    assert!(
        !second.wrote_any && !second.received_any,
        "per-request facts reset on start"
    );
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn server_connection_close_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
        Check("done"),
        Eof,
        Check("closed"),
        Start(get(b"/again")),
    ]);
    let done = o.at("done");
    assert!(done.complete && !done.reusable);
    assert_eq!(done.reuse, Reuse::No(CloseReason::ServerClose));
    assert_eq!(done.verdict, Reuse::No(CloseReason::ServerClose));
    assert_eq!(
        o.at("closed").verdict,
        Reuse::No(CloseReason::ServerClose),
        "first reason kept"
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> start Misuse"));
    assert_eq!(o.written(), GET_ROOT);
    assert_eq!(o.error(), None);
}

#[test]
fn client_close_is_not_reusable() {
    let o = run(&[
        Start(get(b"/").close()),
        Check("started"),
        WrittenAll,
        ServerSends(OK_HI),
        Check("done"),
    ]);
    assert_eq!(
        o.written(),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(o.at("started").reuse, Reuse::No(CloseReason::ClientClose));
    let done = o.at("done");
    assert!(done.complete && !done.reusable);
    assert_eq!(done.verdict, Reuse::No(CloseReason::ClientClose));
}

#[test]
fn http10_without_keep_alive_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
    ]);
    assert_eq!(o.log()[3], "< head-end Length(2) No(Http10)");
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Http10));
}

#[test]
fn http10_with_keep_alive_is_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"),
        Check("first"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"),
    ]);
    assert!(o.at("first").reusable);
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.written(), GET_ROOT.repeat(2));
}

#[test]
fn close_delimited_body_ends_on_eof_and_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n\r\nabc"),
        ServerSends(b"def"),
        Check("open"),
        Eof,
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 200 OK",
            "< head-end UntilClose No(ReadToClose)",
            "< data abcdef",
            "< end"
        ]
    );
    let open = o.at("open");
    assert!(!open.complete && !open.reusable);
    assert_eq!(open.reuse, Reuse::No(CloseReason::ReadToClose));
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ReadToClose));
    assert_eq!(o.error(), None);
}

#[test]
fn keep_alive_timeout_hint_is_reported_per_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n",
        ),
        Check("hinted"),
        Start(get(b"/")),
        Check("restarted"),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.at("hinted").keep_alive, Some(Duration::from_secs(5)));
    assert!(o.at("hinted").reusable);
    assert_eq!(o.at("restarted").keep_alive, None);
    assert_eq!(o.last().keep_alive, None);
}

// ---------------------------------------------------------------------------
// Bodiless responses, chunked, interim, switching
// ---------------------------------------------------------------------------

#[test]
fn head_response_with_content_length_has_no_body() {
    let o = run(&[
        Start(req(b"HEAD", b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        Check("head done"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.written(),
        format!("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n{GET_ROOT}")
    );
    assert_eq!(
        o.log()[1..5],
        [
            "< HTTP/1.1 200 OK",
            "< Content-Length: 10",
            "< head-end NoBody Yes",
            "< end"
        ]
    );
    assert!(o.at("head done").complete && o.at("head done").reusable);
    assert!(o.last().reusable);
    assert_eq!(
        o.log()[9],
        "< data hi",
        "the GET after HEAD reads its own body"
    );
}

#[test]
fn status_204_and_304_have_no_body() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Check("204"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 204 No Content",
            "< head-end NoBody Yes",
            "< end",
            "> start",
            "< HTTP/1.1 304 Not Modified",
            "< Content-Length: 5",
            "< head-end NoBody Yes",
            "< end",
        ]
    );
    assert!(o.at("204").reusable);
    assert!(o.last().reusable);
}

#[test]
fn chunked_request_and_response_with_trailers() {
    let o = run(&[
        Start(post(b"/up", 0).body(BodyFraming::Chunked)),
        Check("started"),
        SendBody(b"hello"),
        SendBody(b""),
        SendBody(b"!"),
        FinishBody(&[(b"Digest", b"sha-256=:x:")]),
        Check("finished"),
        SendBody(b"late"),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n\
              3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nExpires: never\r\n\r\n",
        ),
    ]);
    assert_eq!(
        o.written(),
        "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n1\r\n!\r\n0\r\nDigest: sha-256=:x:\r\n\r\n"
    );
    assert_eq!(
        o.log(),
        [
            "> start",
            "> body",
            "> body",
            "> body",
            "> finish",
            "> body Misuse",
            "< HTTP/1.1 200 OK",
            "< Transfer-Encoding: chunked",
            "< Trailer: Expires",
            "< head-end Chunked Yes",
            "< data abcde",
            "< trailer Expires: never",
            "< end",
        ]
    );
    assert!(o.at("started").may_send_body);
    assert!(!o.at("finished").may_send_body && !o.at("finished").is_sending);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn interim_103_before_final_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"),
        Check("hinted"),
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 103 Early Hints",
            "< Link: </a.css>; rel=preload",
            "< interim-end",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 2",
            "< head-end Length(2) Yes",
            "< data hi",
            "< end",
        ]
    );
    assert!(!o.at("hinted").complete && o.at("hinted").received_any);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn switching_protocols_leaves_leftover_bytes_to_the_caller() {
    let o = run(&[
        Start(get(b"/chat").fields(&[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])),
        WrittenAll,
        ServerSends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"),
        Check("switched"),
        ServerSends(b"more"),
    ]);
    assert_eq!(
        o.written(),
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    );
    assert_eq!(o.log()[4], "< head-end Switched No(Switched)");
    assert_eq!(o.obs.leftover, b"\x81\x02himore");
    assert!(o.conn.is_switched());
    let s = o.at("switched");
    assert!(s.switched && !s.complete && !s.reusable && !s.is_sending);
    assert_eq!(s.verdict, Reuse::No(CloseReason::Switched));
    assert_eq!(s.timeout_ms, None);
    assert_eq!(
        o.error(),
        None,
        "bytes after the switch are not HTTP's business"
    );
}

#[test]
fn connect_2xx_switches_too() {
    let o = run(&[
        Start(req(b"CONNECT", b"example.com:443")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01"),
    ]);
    assert_eq!(
        o.written(),
        "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    assert!(o.last().switched && !o.last().reusable);
    assert_eq!(o.obs.leftover, b"\x16\x03\x01");
}

/// `ResponseDecoder` documents `Switched` as the event that follows the head
/// of a 101; `Connection::poll_event` returns `Ok(None)` in `Recv::Switched`
/// before asking the decoder, so a caller of the connection never sees it.
#[test]

fn switching_protocols_reports_switched_event() {
    let o = run(&[
        Start(get(b"/chat").fields(&[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])),
        WrittenAll,
        ServerSends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("< switched"));
}

// ---------------------------------------------------------------------------
// 100-continue and early final responses
// ---------------------------------------------------------------------------

const POST5_EXPECT: &str =
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";

#[test]
fn continue_100_releases_the_body() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            Check("waiting"),
            SendBody(b"early"),
            ServerSends(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Check("released"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Check("finished"),
            WrittenAll,
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert_eq!(o.written(), format!("{POST5_EXPECT}hello"));
    assert_eq!(
        o.log(),
        [
            "> start",
            "> body Misuse",
            "< HTTP/1.1 100 Continue",
            "< interim-end",
            "> body",
            "> finish",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 0",
            "< head-end Length(0) Yes",
            "< end",
        ]
    );
    let waiting = o.at("waiting");
    assert!(!waiting.may_send_body && waiting.is_sending);
    assert_eq!(
        waiting.timeout_ms,
        ms(1000),
        "continue deadline, not the head timeout"
    );
    let released = o.at("released");
    assert!(released.may_send_body);
    assert_eq!(
        released.timeout_ms, None,
        "continue deadline disarmed, head timeout not yet armed"
    );
    assert_eq!(o.at("finished").timeout_ms, ms(5000));
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.last().timeout_ms, None);
}

#[test]
fn continue_100_timeout_sends_the_body_anyway() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            Check("t=0"),
            Advance(999),
            Check("t=999"),
            Advance(1),
            Check("t=1000"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Check("finished"),
            WrittenAll,
            // A 100 after the timeout is only an interim response.
            ServerSends(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
        ],
    );
    assert_eq!(o.written(), format!("{POST5_EXPECT}hello"));
    assert_eq!(o.at("t=0").timeout_ms, ms(1000));
    let early = o.at("t=999");
    assert!(!early.may_send_body && early.is_sending);
    assert_eq!(
        early.timeout_ms,
        ms(1000),
        "an early handle_timeout changes nothing"
    );
    let fired = o.at("t=1000");
    assert!(fired.may_send_body);
    assert_eq!(fired.timeout_ms, None);
    assert_eq!(
        o.at("finished").timeout_ms,
        ms(6000),
        "head timeout counts from the body's end"
    );
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn final_status_before_continue_skips_the_body() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            ServerSends(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
            Check("answered"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Advance(2000),
        ],
    );
    assert_eq!(o.written(), POST5_EXPECT, "the body is never written");
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["> body Misuse", "> finish Misuse"]
    );
    let answered = o.at("answered");
    assert!(
        answered.complete && !answered.may_send_body && !answered.is_sending && !answered.reusable
    );
    assert_eq!(answered.timeout_ms, None, "continue deadline disarmed");
    assert_eq!(answered.verdict, Reuse::No(CloseReason::BodyNotSent));
    assert!(
        !o.last().may_send_body,
        "the continue timer must not release a skipped body"
    );
    assert_eq!(o.error(), None);
}

#[test]
fn final_413_with_body_before_continue_skips_the_body() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        ServerSends(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope"),
        SendBody(b"hello"),
    ]);
    assert_eq!(o.written(), POST5_EXPECT);
    assert!(o.log().contains(&"< data nope".to_string()));
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::BodyNotSent));
}

#[test]
fn early_413_while_sending_a_body_stops_it() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 10)),
            Check("started"),
            SendBody(b"hello"),
            WrittenAll,
            Check("half sent"),
            ServerSends(
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            Check("answered"),
            SendBody(b"world"),
            FinishBody(&[]),
        ],
    );
    assert_eq!(
        o.written(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"
    );
    let started = o.at("started");
    assert!(started.may_send_body);
    assert_eq!(
        started.timeout_ms, None,
        "no head timeout while the body is owed"
    );
    assert_eq!(o.at("half sent").timeout_ms, None);
    let answered = o.at("answered");
    assert!(answered.complete && !answered.may_send_body && !answered.reusable);
    assert_eq!(answered.verdict, Reuse::No(CloseReason::BodyNotSent));
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["> body Misuse", "> finish Misuse"]
    );
}

#[test]
fn abandon_while_waiting_for_continue_closes() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        Abandon,
        Check("abandoned"),
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.at("abandoned").reuse, Reuse::No(CloseReason::Abandoned));
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

#[test]
fn response_head_timeout_fires_and_is_sticky() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(get(b"/")),
            WrittenAll,
            Check("t=0"),
            Advance(4999),
            Check("t=4999"),
            Advance(1),
            Check("t=5000"),
            ServerSends(OK_HI),
            Advance(10_000),
            Start(get(b"/")),
        ],
    );
    assert_eq!(o.at("t=0").timeout_ms, ms(5000));
    assert_eq!(o.at("t=4999").timeout_ms, ms(5000));
    assert!(
        o.at("t=4999").verdict == Reuse::No(CloseReason::Abandoned)
            && o.at("t=4999").reuse == Reuse::Yes
    );
    assert_eq!(
        o.error(),
        Some(&Error::TimedOut {
            timer: Timer::ResponseHead
        })
    );
    let fired = o.at("t=5000");
    assert_eq!(fired.timeout_ms, None);
    assert_eq!(fired.verdict, Reuse::No(CloseReason::Timeout));
    assert!(!fired.reusable);
    assert_eq!(
        o.log(),
        [
            "> start",
            "! TimedOut { timer: ResponseHead }",
            "> start Misuse"
        ],
        "the late response is not decoded"
    );
    assert_eq!(o.last(), fired, "nothing changes after the error");
}

#[test]
fn response_head_timeout_is_armed_when_the_request_is_sent_and_disarmed_by_the_final_head() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5)),
            Advance(10_000),
            SendBody(b"hello"),
            Check("body written"),
            Advance(1000),
            FinishBody(&[]),
            Check("finished"),
            WrittenAll,
            ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
            Check("interim"),
            Advance(4999),
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
            Check("head"),
            Advance(60_000),
            ServerSends(b"body"),
        ],
    );
    assert_eq!(
        o.at("body written").timeout_ms,
        None,
        "not armed while the body is being sent"
    );
    assert_eq!(o.at("finished").timeout_ms, ms(16_000));
    assert_eq!(
        o.at("interim").timeout_ms,
        ms(16_000),
        "a 1xx does not disarm it"
    );
    assert_eq!(o.at("head").timeout_ms, None, "the final head disarms it");
    assert_eq!(o.error(), None);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn response_head_timeout_counts_through_interim_responses() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(get(b"/")),
            WrittenAll,
            Advance(3000),
            ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
            Advance(2000),
        ],
    );
    assert_eq!(
        o.error(),
        Some(&Error::TimedOut {
            timer: Timer::ResponseHead
        })
    );
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Timeout));
}

#[test]
fn spurious_early_timeouts_are_harmless() {
    let o = run_with(
        head_timeout(5),
        &[
            Advance(0),
            Advance(7),
            Start(get(b"/")),
            Advance(0),
            WrittenAll,
            Advance(4992),
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"),
            Advance(0),
            ServerSends(b"\r\nab"),
            Advance(100_000),
            ServerSends(b"cd"),
            Advance(0),
            Advance(1),
        ],
    );
    assert_eq!(o.error(), None);
    assert!(o.last().complete && o.last().reusable);
    assert!(o.obs.trace.iter().all(|s| s.reuse == Reuse::Yes));
}

// ---------------------------------------------------------------------------
// Unsolicited bytes and EOF
// ---------------------------------------------------------------------------

#[test]
fn unsolicited_byte_after_a_complete_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiX"),
    ]);
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["< end", "! UnsolicitedBytes { byte: 88 }"]
    );
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::UnsolicitedBytes));
}

/// Whole, the response and `XYZ` arrive together; byte by byte, `X` alone
/// is seen first. The error names the first unsolicited byte either way.
#[test]
fn unsolicited_bytes_error_is_split_independent() {
    run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ"),
    ]);
}

#[test]
fn unsolicited_byte_after_a_closing_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
        ServerSends(b"X"),
    ]);
    assert_eq!(o.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        o.last().verdict,
        Reuse::No(CloseReason::ServerClose),
        "first reason kept"
    );
}

#[test]
fn bytes_while_idle_are_unsolicited() {
    let fresh = run(&[ServerSends(b"X")]);
    assert_eq!(fresh.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        fresh.last().verdict,
        Reuse::No(CloseReason::UnsolicitedBytes)
    );
    assert!(
        !fresh.last().received_any,
        "no request, so no response byte"
    );

    let used = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
        Check("done"),
        ServerSends(b"X"),
    ]);
    assert!(used.at("done").reusable);
    assert_eq!(used.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        used.last().verdict,
        Reuse::No(CloseReason::UnsolicitedBytes)
    );
    assert!(!used.last().reusable);
}

#[test]
fn eof_while_idle_means_peer_closed() {
    for script in [
        &[Eof][..],
        &[Start(get(b"/")), WrittenAll, ServerSends(OK_HI), Eof],
    ] {
        let o = run(script);
        assert_eq!(o.error(), None);
        assert!(!o.last().reusable);
        assert_eq!(o.last().verdict, Reuse::No(CloseReason::PeerClosed));
        assert_eq!(o.last().reuse, Reuse::No(CloseReason::PeerClosed));
    }
}

#[test]
fn eof_before_any_response_byte() {
    let o = run(&[Start(get(b"/")), WrittenAll, Eof]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Head,
            received: 0,
            expected: None
        })
    );
    assert!(o.last().wrote_any && !o.last().received_any);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert_eq!(o.retry(true, true, true), RetrySafety::IdempotentUnanswered);
}

#[test]
fn eof_inside_a_body() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe"),
        Eof,
    ]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Body,
            received: 2,
            expected: Some(5)
        })
    );
    assert!(!o.last().complete);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert_eq!(o.retry(true, true, true), RetrySafety::ResponseStarted);
}

#[test]
fn bytes_after_eof_are_not_decoded() {
    // EOF with nothing buffered is an error, and it is sticky: bytes that
    // (impossibly) follow it are not decoded.
    let o = run(&[Start(get(b"/")), WrittenAll, Eof, ServerSends(OK_HI)]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Head,
            received: 0,
            expected: None
        })
    );
    assert!(!o.last().reusable);
}

#[test]
fn invalid_response_is_a_sticky_error() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
        ServerSends(b"more"),
    ]);
    assert_eq!(
        o.error(),
        Some(&Error::InvalidFieldName {
            offset: 20,
            byte: b' '
        })
    );
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert!(o.last().received_any);
}

// ---------------------------------------------------------------------------
// Retry safety
// ---------------------------------------------------------------------------

/// A first exchange, so the connection counts as reused for what follows.
const FIRST: [Step; 3] = [Start(get(b"/")), WrittenAll, ServerSends(OK_HI)];

fn after_first(rest: &[Step]) -> Outcome {
    run(&[&FIRST[..], rest].concat())
}

#[test]
fn retry_safety_table() {
    let post5 = post(b"/", 5);
    let fresh = run(&[Start(get(b"/")), WrittenAll, Eof]);
    let nothing_written_post = after_first(&[Start(post5), Eof]);
    let get_unanswered = after_first(&[Start(get(b"/")), WrittenAll, Eof]);
    let get_partly_written = after_first(&[Start(get(b"/")), Written(3), Eof]);
    let post_unanswered = after_first(&[
        Start(post5),
        SendBody(b"hello"),
        FinishBody(&[]),
        WrittenAll,
        Eof,
    ]);
    let started = after_first(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200"),
        Eof,
    ]);

    let get = is_idempotent(b"GET", false);
    let post = is_idempotent(b"POST", false);
    let cases = [
        (&fresh, false, get, true, RetrySafety::FreshConnection),
        (
            &nothing_written_post,
            true,
            post,
            true,
            RetrySafety::NothingWritten,
        ),
        (
            &get_unanswered,
            true,
            get,
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (
            &get_partly_written,
            true,
            get,
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (
            &post_unanswered,
            true,
            post,
            true,
            RetrySafety::NotIdempotent,
        ),
        (
            &post_unanswered,
            true,
            is_idempotent(b"POST", true),
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (&started, true, get, true, RetrySafety::ResponseStarted),
        (
            &post_unanswered,
            true,
            post,
            false,
            RetrySafety::BodyNotReplayable,
        ),
    ];
    for (i, (o, reused, idempotent, replayable, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            o.retry(reused, idempotent, replayable),
            expected,
            "case {i}"
        );
        let safe = matches!(
            expected,
            RetrySafety::NothingWritten | RetrySafety::IdempotentUnanswered
        );
        assert_eq!(expected.is_safe(), safe, "case {i}");
        assert!(o.error().is_some(), "case {i}: each case ends in a failure");
    }
    assert!(!nothing_written_post.last().wrote_any);
    assert!(get_partly_written.last().wrote_any);
    assert!(started.last().received_any);
}

// ---------------------------------------------------------------------------
// Abandoning a body
// ---------------------------------------------------------------------------

const TEN_PARTIAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";

#[test]
fn abandon_with_small_remainder_drains_and_reuses() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Advance(10),
        Abandon,
        Check("draining"),
        ServerSends(b"lo worl"),
        Check("drained"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log()[5..8],
        ["> abandon Drain", "< data lo worl", "< end"]
    );
    let draining = o.at("draining");
    assert!(draining.draining && !draining.reusable && !draining.complete);
    assert_eq!(draining.reuse, Reuse::Yes);
    assert_eq!(draining.timeout_ms, ms(110));
    let drained = o.at("drained");
    assert!(drained.complete && drained.reusable && !drained.draining);
    assert_eq!(drained.timeout_ms, None);
    assert!(o.last().reusable);
}

#[test]
fn abandon_with_large_remainder_closes() {
    let config = ConnConfig::default().max_drain_bytes(4);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(TEN_PARTIAL),
            Abandon,
        ],
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert!(!o.last().draining && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
    assert_eq!(o.last().timeout_ms, None);

    // Exactly the budget left: drain.
    let config = ConnConfig::default().max_drain_bytes(7);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(TEN_PARTIAL),
            Abandon,
        ],
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Drain"));
}

#[test]
fn abandon_drain_budget_exceeded_is_not_reusable() {
    let config = ConnConfig::default().max_drain_bytes(4);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"),
            Abandon,
            Check("draining"),
            ServerSends(b"5\r\nabcde\r\n0\r\n\r\n"),
        ],
    );
    assert!(o.at("draining").draining);
    assert!(o.last().complete && !o.last().draining && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
    assert_eq!(o.error(), None);
}

#[test]
fn abandon_drain_timeout_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Abandon,
        Advance(99),
        Check("t=99"),
        Advance(1),
        Check("t=100"),
        ServerSends(b"lo worl"),
    ]);
    assert!(o.at("t=99").draining);
    let expired = o.at("t=100");
    assert!(!expired.draining && !expired.reusable);
    assert_eq!(expired.reuse, Reuse::No(CloseReason::Abandoned));
    assert_eq!(expired.timeout_ms, None);
    assert_eq!(o.error(), None, "the drain deadline is not an error");
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
}

#[test]
fn abandon_before_the_head_closes() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n"),
        Abandon,
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
}

#[test]
fn abandon_after_completion_changes_nothing() {
    let o = run(&[Start(get(b"/")), WrittenAll, ServerSends(OK_HI), Abandon]);
    assert_eq!(
        o.log().last().map(String::as_str),
        Some("> abandon Complete")
    );
    assert!(o.last().reusable);
}

#[test]
fn abandon_a_close_delimited_body_closes() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n\r\nabc"),
        Abandon,
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ReadToClose));
}

// ---------------------------------------------------------------------------
// Misuse and request validation
// ---------------------------------------------------------------------------

#[test]
fn start_on_a_busy_or_closed_connection_is_misuse() {
    let o = run(&[
        Start(get(b"/a")),
        Start(get(b"/b")),
        WrittenAll,
        Start(get(b"/c")),
        ServerSends(OK_HI),
        Check("first done"),
        Start(post(b"/d", 2)),
        Start(get(b"/e")),
        SendBody(b"ok"),
        FinishBody(&[]),
        WrittenAll,
        Start(get(b"/f")),
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        Start(get(b"/g")),
    ]);
    let starts: Vec<String> = o
        .log()
        .into_iter()
        .filter(|l| l.starts_with("> start"))
        .collect();
    assert_eq!(
        starts,
        [
            "> start",
            "> start Misuse",
            "> start Misuse",
            "> start",
            "> start Misuse",
            "> start Misuse",
            "> start Misuse"
        ]
    );
    assert_eq!(
        o.written(),
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
    );
    assert!(
        o.at("first done").reusable,
        "a refused start leaves the exchange alone"
    );
    assert_eq!(o.error(), None, "misuse is not a connection error");
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ServerClose));
}

#[test]
fn request_validation_error_leaves_the_connection_usable() {
    let o = run(&[
        Start(get(b"/a b")),
        Check("after bad target"),
        Start(get(b"/").fields(&[(b"X-Note", b"a\r\nContent-Length: 0")])),
        Start(get(b"/").fields(&[(b"Content-Length", b"0")])),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
        Start(req(b"G T", b"/")),
        Check("after bad method"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    let starts: Vec<String> = o
        .log()
        .into_iter()
        .filter(|l| l.starts_with("> start"))
        .collect();
    assert_eq!(
        starts,
        [
            "> start InvalidTarget",
            "> start InvalidHeaderValue { index: 0 }",
            "> start FramingHeader { index: 0 }",
            "> start",
            "> start InvalidMethod",
            "> start",
        ]
    );
    assert_eq!(o.written(), GET_ROOT.repeat(2));
    let bad = o.at("after bad target");
    assert!(bad.idle && bad.reusable && !bad.is_sending);
    assert!(o.at("after bad method").reusable);
    assert!(o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn body_calls_without_a_body_are_misuse() {
    let o = run(&[
        Start(get(b"/")),
        SendBody(b"x"),
        FinishBody(&[]),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(o.log()[1..3], ["> body Misuse", "> finish Misuse"]);
    assert_eq!(o.written(), GET_ROOT);
    assert!(o.last().reusable);
}

#[test]
fn body_length_mismatch_keeps_the_body_open() {
    let o = run(&[
        Start(post(b"/", 5)),
        SendBody(b"toolong"),
        SendBody(b"hel"),
        FinishBody(&[]),
        Check("short"),
        SendBody(b"lo"),
        FinishBody(&[]),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log()[1..7],
        [
            "> body BodyLengthMismatch { declared: 5, supplied: 7 }",
            "> body",
            "> finish BodyLengthMismatch { declared: 5, supplied: 3 }",
            "> body",
            "> finish",
            "< HTTP/1.1 200 OK",
        ]
    );
    assert!(o.at("short").may_send_body);
    assert_eq!(
        o.written(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    );
    assert!(o.last().reusable);
}

/// RFC 9110 section 7.8: a server must send 100 before a 101 to a request
/// with `Expect: 100-continue`. When one does not, the body stays owed:
/// `Continue100` stays armed on the switched connection and, when it fires,
/// `may_send_body` turns true, so the adapter writes HTTP body bytes into the
/// stream that now belongs to the new protocol.
#[test]

fn switching_protocols_ends_a_body_still_owed() {
    let o = run(&[
        Start(
            post(b"/", 5)
                .expect()
                .fields(&[(b"Upgrade", b"h2c"), (b"Connection", b"Upgrade")]),
        ),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        ),
        Check("switched"),
        Advance(1000),
        SendBody(b"hello"),
    ]);
    assert!(o.at("switched").switched);
    assert_eq!(
        o.at("switched").timeout_ms,
        None,
        "no deadline left on a switched connection"
    );
    assert!(!o.last().may_send_body && !o.last().is_sending);
    assert_eq!(o.log().last().map(String::as_str), Some("> body Misuse"));
}

#[test]
fn interim_103_does_not_release_an_expect_continue_body() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
        Check("hinted"),
    ]);
    assert!(!o.at("hinted").may_send_body && o.at("hinted").is_sending);
    assert_eq!(o.at("hinted").timeout_ms, ms(1000));
}

#[test]
fn start_while_draining_is_misuse() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Abandon,
        Start(get(b"/")),
        ServerSends(b"lo worl"),
    ]);
    assert_eq!(o.log()[5..7], ["> abandon Drain", "> start Misuse"]);
    assert!(o.last().reusable);
}

#[test]
fn caller_connection_close_and_expect_fields_count_like_the_head_flags() {
    let close = run(&[
        Start(get(b"/").fields(&[(b"Connection", b"keep-alive, Close")])),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        close.written(),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n"
    );
    assert_eq!(close.last().verdict, Reuse::No(CloseReason::ClientClose));

    let expect = run(&[
        Start(post(b"/", 5).fields(&[(b"Expect", b"100-continue")])),
        Check("waiting"),
        ServerSends(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Check("released"),
    ]);
    assert!(!expect.at("waiting").may_send_body && expect.at("waiting").is_sending);
    assert_eq!(expect.at("waiting").timeout_ms, ms(1000));
    assert!(expect.at("released").may_send_body);
}

/// A caller that takes bytes from the front of the read buffer while a
/// head is reported (the contract is: only append) gets a sticky
/// `Misuse` error, not a panic or a field pointing at other bytes.
#[test]
fn taking_the_buffer_mid_head_is_misuse() {
    use roundtrip_proto::{Error, Event, ResponseDecoder};
    for share in [false, true] {
        let mut dec = ResponseDecoder::default();
        dec.share_heads(share);
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 2\r\n\r\nhi"[..]);
        assert!(matches!(
            dec.poll_event(&mut buf),
            Ok(Some(Event::Status(_)))
        ));
        buf.clear();
        let next = dec
            .poll_event(&mut buf)
            .map(|e| e.map(|e| format!("{e:?}")));
        if share {
            // The shared head was split off already: the fields are intact.
            assert_eq!(next, Ok(Some(r#"Field(Field("A", "1"))"#.to_string())));
        } else {
            assert!(matches!(next, Err(Error::Misuse(_))), "{next:?}");
            assert!(
                matches!(dec.poll_event(&mut buf), Err(Error::Misuse(_))),
                "sticky"
            );
        }
    }
}

/// What a preset block of fields asks counts as if its fields were passed
/// in turn: its `Connection: close` ends reuse, its `Expect: 100-continue`
/// holds the body back.
#[test]
fn preset_fields_ask_like_fields_in_turn() {
    use roundtrip_proto::encode::FieldBlock;
    let close = FieldBlock::new([(&b"Connection"[..], &b"close"[..])]).unwrap();
    let expect = FieldBlock::new([(&b"Expect"[..], &b"100-continue"[..])]).unwrap();
    let head = |preset| RequestHead {
        method: b"POST",
        target: b"/",
        host: Some(b"x"),
        body: BodyFraming::Length(2),
        preset: Some(preset),
        expect_continue: false,
        close: false,
    };
    let mut conn = Connection::new(ConnConfig::default());
    let mut out = Vec::new();
    conn.start(&head(&close), [], Instant::ZERO, &mut out)
        .unwrap();
    assert_eq!(conn.reuse(), Reuse::No(CloseReason::ClientClose));
    assert!(conn.may_send_body());
    assert_eq!(
        out,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
    );

    let mut conn = Connection::new(ConnConfig::default());
    conn.start(&head(&expect), [], Instant::ZERO, &mut Vec::new())
        .unwrap();
    assert!(conn.reuse().is_yes());
    assert!(!conn.may_send_body(), "the body waits for 100 Continue");
}
