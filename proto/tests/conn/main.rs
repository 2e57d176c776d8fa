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

mod abandon;
mod bodies;
mod expect_continue;
mod keep_alive;
mod misuse;
mod retry;
mod timeouts;
mod unsolicited;

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
                let now = self.now();
                self.conn.handle_written(n, now);
            }
            WrittenAll => {
                let n = self.obs.written.len() - self.flushed;
                self.flushed += n;
                let now = self.now();
                self.conn.handle_written(n, now);
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
const TEN_PARTIAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";

fn head_timeout(secs: u64) -> ConnConfig {
    ConnConfig::default().response_head_timeout(Some(Duration::from_secs(secs)))
}
