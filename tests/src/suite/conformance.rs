//! The response conformance corpus, on the wire: every case of
//! `tests/conformance` played by a scripted server to the backend, one
//! response per request, so that the exchange machine and the driver (not
//! only `roundtrip_proto`'s decoder, which `tests/tests/conformance.rs`
//! holds to the corpus) deliver what the corpus says.
//!
//! A backend sees a case as a client does, one request at a time. The
//! core's decoder, run on the case's bytes, says where each final response
//! ends and whether its connection may carry another request; the server
//! writes each response (its interim heads first) when its request comes,
//! and the client must return it: status, version, reason, fields, body,
//! trailers and interim heads. After the last response the client could
//! ask for, one more request meets what the case says comes next: the
//! decoder's error (the backend must fail with the same error), a response
//! the case leaves unfinished (the backend must time out, not report a
//! response as complete), or nothing.
//!
//! Each case runs twice: the server writes each part at once, and one
//! byte at a time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use bytes::BytesMut;
use roundtrip_io::http::HeaderMap;
use roundtrip_io::{InterimResponses, ReasonPhrase};
use roundtrip_proto::{Error as ProtoError, Event, ResponseDecoder};

use super::*;
use crate::Response;
use crate::conformance::{Case, corpus_dir, json_files, load_str, local_files, read_all};
use crate::server::escape;

crate::cases! {
        /// Stamps the `conformance` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_conformance, list cases, path suite::conformance;

/// Every corpus case, each response written at once.
pub fn conformance_on_the_wire<B: Backend>() {
    run_corpus::<B>(Feed::Whole);
}

/// Every corpus case, the server writing one byte at a time.
pub fn conformance_on_the_wire_byte_by_byte<B: Backend>() {
    run_corpus::<B>(Feed::ByteByByte);
}
}

/// How the server writes a case's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Whole,
    ByteByByte,
}

/// How long a request whose response the case leaves unfinished waits
/// before its timeout: the client must give up, not report a response.
const UNFINISHED_WAIT: Duration = Duration::from_millis(200);

/// Cases run at once: most of a case's time is spent waiting.
const WORKERS: usize = 8;

/// The most failures a run lists (all are counted).
const LISTED: usize = 25;

/// A final response the client asks for, and the bytes that carry it.
#[derive(Debug)]
struct Exchange {
    /// Its bytes in the case's input, interim heads first.
    bytes: std::ops::Range<usize>,
    /// The interim heads before it.
    interim: Vec<Response>,
    /// The final response.
    fin: Response,
    /// Whether HTTP ended with it (101, a 2xx to CONNECT).
    switched: bool,
    /// Whether its connection may carry another request.
    reusable: bool,
}

/// What the request after the last [`Exchange`] meets.
#[derive(Debug)]
enum Then {
    /// No such request: the connection cannot carry one, or nothing follows.
    Nothing,
    /// The decoder's error.
    Error(ProtoError),
    /// A response the case leaves unfinished: in its body (its final head
    /// came whole), or before (the client waits for a head).
    Unfinished { in_body: bool },
}

/// What the client sees of a case.
#[derive(Debug)]
struct Plan {
    exchanges: Vec<Exchange>,
    then: Then,
    /// Where the bytes of the request after the exchanges start.
    rest: usize,
}

/// Runs the core's decoder over the case's bytes (then its EOF, when
/// `closed`) and cuts them into what each request gets.
fn plan(case: &Case) -> Plan {
    let mut dec = ResponseDecoder::new(case.limits);
    dec.set_request_method(case.method.as_bytes());
    let total = case.input.len();
    let mut buf = BytesMut::from(&case.input[..]);
    let mut exchanges = Vec::new();
    let (mut start, mut interim, mut current) = (0, Vec::new(), None::<Response>);
    let mut reusable = true;
    // The final head of the response under way came whole.
    let mut in_body = false;
    let mut eof = false;
    let field = |f: &roundtrip_proto::Field| (f.name().to_vec(), f.value().to_vec());
    // Bounded: every event consumes input or advances the decoder.
    for _ in 0..10_000_000 {
        let event = match dec.poll_event(&mut buf) {
            Err(e) => {
                let rest = start;
                return Plan {
                    exchanges,
                    then: Then::Error(e),
                    rest,
                };
            }
            Ok(None) if case.closed && !eof => {
                dec.handle_eof();
                eof = true;
                continue;
            }
            Ok(None) => {
                let open = current.is_some() || !interim.is_empty() || !buf.is_empty();
                let then = match open {
                    true => Then::Unfinished { in_body },
                    false => Then::Nothing,
                };
                return Plan {
                    exchanges,
                    then,
                    rest: start,
                };
            }
            Ok(Some(event)) => event,
        };
        let cur = |c: &mut Option<Response>| c.take().expect("an event inside a response");
        match event {
            Event::Status(s) => {
                current = Some(Response {
                    version: s.version.as_str().to_string(),
                    status: s.code,
                    reason: s.reason.to_vec(),
                    ..Response::default()
                })
            }
            Event::Field(f) => current
                .as_mut()
                .expect("status first")
                .headers
                .push(field(&f)),
            Event::HeadEnd(end) if end.interim => interim.push(cur(&mut current)),
            Event::HeadEnd(end) => {
                reusable = end.reuse.is_yes();
                in_body = true;
            }
            Event::Data(d) => current
                .as_mut()
                .expect("status first")
                .body
                .extend_from_slice(&d),
            Event::Trailer(f) => current
                .as_mut()
                .expect("status first")
                .trailers
                .push(field(&f)),
            Event::End | Event::Switched => {
                in_body = false;
                let switched = matches!(event, Event::Switched);
                let end = total - buf.len();
                exchanges.push(Exchange {
                    bytes: start..end,
                    interim: std::mem::take(&mut interim),
                    fin: cur(&mut current),
                    switched,
                    reusable,
                });
                start = end;
                if switched || !reusable {
                    return Plan {
                        exchanges,
                        then: Then::Nothing,
                        rest: start,
                    };
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    panic!("{}: the decoder did not settle", case.id);
}

/// Every corpus case: the shared corpus's copy and the project's own.
fn corpus() -> Vec<Case> {
    let mut files = json_files(&corpus_dir());
    files.extend(local_files());
    let texts = read_all(&files).unwrap_or_else(|e| panic!("corpus: {e}"));
    let mut cases = Vec::new();
    for (path, text) in &texts {
        cases.extend(load_str(text, path).unwrap_or_else(|e| panic!("corpus: {e}")));
    }
    assert!(cases.len() >= 500, "{} corpus cases", cases.len());
    cases
}

fn run_corpus<B: Backend>(feed: Feed) {
    let cases = corpus();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    // Responses checked, errors met, unfinished responses timed out, and
    // cases with nothing to ask.
    let seen: [AtomicUsize; 5] = Default::default();
    thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                // Bounded by the case count.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { return };
                    match run_case::<B>(case, feed) {
                        Ok(tally) => {
                            for (n, count) in tally.iter().zip(&seen) {
                                count.fetch_add(*n, Ordering::Relaxed);
                            }
                        }
                        Err(why) => failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{}: {why}", case.id)),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let [responses, errors, unfinished, silent, pooled] = seen.map(AtomicUsize::into_inner);
    let summary = format!(
        "conformance on the wire, {} ({feed:?}): {} cases, {} failed; of those that passed, \
         {responses} responses checked, {errors} errors met, {unfinished} unfinished responses \
         timed out, {silent} cases with nothing to ask, {pooled} pool verdicts checked\n",
        B::NAME,
        cases.len(),
        failures.len()
    );
    if failures.is_empty() {
        // Each kind of check was made: a runner that skipped one would
        // pass everything.
        assert!(
            responses >= 200 && errors >= 200 && unfinished >= 40 && pooled >= 100,
            "{summary}"
        );
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), summary.as_bytes());
    assert!(
        failures.is_empty(),
        "{summary}{}",
        failures
            .iter()
            .take(LISTED)
            .map(|f| format!("  {f}\n"))
            .collect::<String>()
    );
}

/// Plays one case; returns what it checked (responses, errors, unfinished
/// responses, nothing to ask), or why it failed.
fn run_case<B: Backend>(case: &Case, feed: Feed) -> Result<[usize; 5], String> {
    let plan = plan(case);
    let input = &case.input;
    let write = |bytes: &[u8]| match feed {
        Feed::Whole => Step::Write(bytes.to_vec()),
        Feed::ByteByByte => Step::WriteSlowly {
            bytes: bytes.to_vec(),
            every: Duration::ZERO,
        },
    };
    let read = if case.method == "CONNECT" {
        Step::ReadHead
    } else {
        Step::ReadRequest
    };
    let mut script = Vec::new();
    for ex in &plan.exchanges {
        script.push(read.clone());
        script.push(write(&input[ex.bytes.clone()]));
    }
    let asks_more = !matches!(plan.then, Then::Nothing);
    if asks_more {
        script.push(read.clone());
    }
    if plan.rest < input.len() {
        script.push(write(&input[plan.rest..]));
    }
    script.push(if case.closed {
        Step::Close
    } else {
        Step::ExpectEof
    });
    let tally = [
        plan.exchanges.len(),
        usize::from(matches!(plan.then, Then::Error(_))),
        usize::from(matches!(plan.then, Then::Unfinished { .. })),
        usize::from(plan.exchanges.is_empty() && !asks_more),
        0,
    ];
    if tally[3] == 1 {
        return Ok(tally);
    }
    let server = crate::faults::serve::<B>(vec![script]);
    let mut config = test_config();
    config.set_limits(case.limits);
    config.gzip = false;
    config.max_redirects = 0;
    let client = B::client(config);
    let method = Method::from_bytes(case.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut pooled = false;
    let result = (|| {
        for (i, ex) in plan.exchanges.iter().enumerate() {
            let mut req = Req::new(method.clone(), server.url("/"));
            if ex.fin.status == 101 {
                req = req
                    .header("connection", "upgrade")
                    .header("upgrade", "test");
            }
            let resp = B::send(&client, req).map_err(|e| format!("response {i}: {e}"))?;
            same(&resp, ex).map_err(|why| format!("response {i}: {why}"))?;
        }
        let i = plan.exchanges.len();
        let req = Req::new(method.clone(), server.url("/"));
        match &plan.then {
            Then::Nothing => {
                pooled = kept_as_decided::<B>(&client, case, &plan)?;
                Ok(())
            }
            Then::Error(want) => match B::send(&client, req) {
                Ok(resp) => Err(format!(
                    "request {i}: expected the decoder's error {want:?}, got {} with {} body bytes",
                    resp.status,
                    resp.body.len()
                )),
                Err(got) if same_error(&got, want) => Ok(()),
                Err(got) => Err(format!(
                    "request {i}: expected the decoder's error {want:?}, got {got:?}"
                )),
            },
            Then::Unfinished { in_body } => {
                match B::send(&client, req.timeout(Some(UNFINISHED_WAIT))) {
                    Ok(resp) => Err(format!(
                        "request {i}: the case leaves it unfinished, but the client returned {} \
                     with body {}",
                        resp.status,
                        escape(&resp.body)
                    )),
                    // Waiting where the bytes stop: for the body once its head
                    // came whole, else for a head.
                    Err(Error::Timeout { phase, .. }) if phase == waits_in(*in_body) => Ok(()),
                    Err(e) => Err(format!(
                        "request {i}: the case leaves it unfinished (in its body: {in_body}): \
                     expected a timeout there, got {e:?}"
                    )),
                }
            }
        }
    })();
    drop(client);
    if !server.wait_idle(SETTLE) {
        return Err("the server's script did not end".into());
    }
    // A client that fails as the case says, or whose last response closes
    // the connection, may close it while the server still writes the bytes
    // after that: bytes no request asks for.
    let unasked = matches!(plan.then, Then::Error(_)) || (!asks_more && plan.rest < input.len());
    let errors: Vec<_> = server
        .errors()
        .into_iter()
        .filter(|e| !(unasked && e.message.starts_with("write failed")))
        .collect();
    if result.is_ok() && !errors.is_empty() {
        return Err(format!("server: {errors:?}"));
    }
    if server.accepted() != 1 {
        return Err(format!("{} connections, one expected", server.accepted()));
    }
    result.map(|()| {
        let mut tally = tally;
        tally[4] = usize::from(pooled);
        tally
    })
}

/// After the last response of a case that asks nothing more, the pool
/// keeps its connection exactly when the core's decoder says it may carry
/// another request: checked where nothing else decides (the server did not
/// close, sent no bytes after the response, and switched nothing).
/// Returns whether it checked.
fn kept_as_decided<B: Backend>(
    client: &B::Client,
    case: &Case,
    plan: &Plan,
) -> Result<bool, String> {
    let Some(last) = plan.exchanges.last() else {
        return Ok(false);
    };
    if case.closed || last.switched || plan.rest < case.input.len() {
        return Ok(false);
    }
    let want = usize::from(last.reusable);
    // The connection goes back when the body was read, on some backends
    // from another thread: bounded.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let idle = B::live_stats(client).idle;
        if idle == want {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{idle} idle connections after the last response, {want} expected (reusable: {})",
                last.reusable
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// A backend's error is the decoder's: its protocol error of the same kind
/// (fields such as offsets may differ: the backend's buffer is not the
/// case's), or a close before the end where the decoder met the EOF.
fn same_error(got: &Error, want: &ProtoError) -> bool {
    match got {
        Error::Protocol { source, .. } | Error::LimitExceeded { source } => {
            std::mem::discriminant(source) == std::mem::discriminant(want)
        }
        Error::ClosedEarly { .. } => matches!(want, ProtoError::UnexpectedEof { .. }),
        _ => false,
    }
}

/// The phase a request waits in when its response stops: the body once
/// its final head came whole, else a head.
fn waits_in(in_body: bool) -> Phase {
    match in_body {
        true => Phase::Body,
        false => Phase::ResponseHead,
    }
}

/// Fields by lower-case name, each name's values in order (what a
/// `HeaderMap` keeps of a head's order), escaped for messages.
type Grouped = BTreeMap<String, Vec<String>>;

fn grouped_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Grouped {
    let mut out = Grouped::new();
    for (name, value) in fields {
        out.entry(escape(&name.to_ascii_lowercase()))
            .or_default()
            .push(escape(value));
    }
    out
}

fn grouped_map(map: &HeaderMap) -> Grouped {
    let mut out = Grouped::new();
    for (name, value) in map {
        out.entry(escape(name.as_str().as_bytes()))
            .or_default()
            .push(escape(value.as_bytes()));
    }
    out
}

/// The reason phrase a response carries: the one sent when unusual,
/// else the status's usual one.
fn reason(status: StatusCode, ext: &roundtrip_io::http::Extensions) -> Vec<u8> {
    match ext.get::<ReasonPhrase>() {
        Some(r) => r.as_bytes().to_vec(),
        None => status.canonical_reason().unwrap_or("").as_bytes().to_vec(),
    }
}

fn version(v: &str) -> Version {
    if v == "HTTP/1.0" {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    }
}

/// The head of a response, as comparable values.
fn head(
    status: StatusCode,
    v: Version,
    ext: &roundtrip_io::http::Extensions,
    fields: &HeaderMap,
) -> (u16, Version, String, Grouped) {
    (
        status.as_u16(),
        v,
        escape(&reason(status, ext)),
        grouped_map(fields),
    )
}

fn want_head(r: &Response) -> (u16, Version, String, Grouped) {
    (
        r.status,
        version(&r.version),
        escape(&r.reason),
        grouped_fields(&r.headers),
    )
}

/// Whether the client returned `ex`'s response whole.
fn same(resp: &Resp, ex: &Exchange) -> Result<(), String> {
    let got = head(resp.status, resp.version, &resp.extensions, &resp.headers);
    let want = want_head(&ex.fin);
    if got != want {
        return Err(format!("head: got {got:?}\n    want {want:?}"));
    }
    if resp.body != ex.fin.body {
        return Err(format!(
            "body: got {}\n    want {}",
            escape(&resp.body),
            escape(&ex.fin.body)
        ));
    }
    let trailers = resp.trailers.as_ref().map(grouped_map).unwrap_or_default();
    if trailers != grouped_fields(&ex.fin.trailers) {
        return Err(format!(
            "trailers: got {trailers:?}\n    want {:?}",
            grouped_fields(&ex.fin.trailers)
        ));
    }
    let interim: Vec<_> = resp
        .extensions
        .get::<InterimResponses>()
        .map(|i| {
            i.0.iter()
                .map(|r| head(r.status(), r.version(), r.extensions(), r.headers()))
                .collect()
        })
        .unwrap_or_default();
    let want: Vec<_> = ex.interim.iter().map(want_head).collect();
    if interim != want {
        return Err(format!("interim heads: got {interim:?}\n    want {want:?}"));
    }
    if ex.switched && !resp.body.is_empty() {
        return Err("a switch with body bytes".into());
    }
    Ok(())
}
