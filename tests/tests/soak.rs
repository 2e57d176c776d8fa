//! Soak under injected faults: 8 workers × `ROUNDTRIP_SOAK` requests
//! (default 2000) per backend (blocking, tokio multi-thread, mio) against a
//! loopback server that, for each request it reads, picks a fault from a
//! seeded generator (`ROUNDTRIP_SOAK_SEED`): a normal answer (sized,
//! chunked, after a 1xx), a close before the answer, in the head or in the
//! body, a reset, a second response in the same write, junk bytes 2 ms
//! after the answer, a slow head or body within the timeouts, a close after
//! the answer, a bad chunk size.
//!
//! Requests mix GET and POST; a POST carries its unique id in its target,
//! an `X-Id` header and its body. Checked afterwards:
//! - every request either succeeded with exactly its own body (status 200)
//!   or failed with a socket or protocol error: never a wrong or short body;
//! - the server never read a POST id twice (a non-idempotent request is
//!   never sent again), nor a GET again after reading it as a new
//!   connection's first request (only a failure on a reused connection is
//!   retried, as in Go), nor more often than the idle connections a host
//!   may hold plus one;
//! - a failed POST that the server read says it may have reached the server;
//! - the pool: nothing in use, dialing or waiting, every dialed connection
//!   idle or counted closed, as many dials as the server accepted; and once
//!   the client is dropped every server connection ends (no socket leaked).
//!
//! The same kind of loop over TLS (`soak_tls_*`, on blocking, tokio
//! multi-thread, mio and smol): 8 workers × `ROUNDTRIP_SOAK_TLS` requests
//! (default 500) against nginx's https listener (`Nginx::start_tls`), a
//! seeded mix of GETs (sized, gzip-chunked, plain chunked, 64 KiB) and
//! POSTs to `/echo` (in memory, streamed sized or chunked). nginx injects
//! no fault; it only ends each connection after 100 requests. Checked:
//! every request succeeded with exactly its body; the pool's books balance,
//! every close was nginx's, and the dials stay within one per worker plus
//! one per 100 requests; one handshake per dial, none failed, at most one
//! full handshake per worker (the rest resumed); with nginx's
//! `stub_status`, nginx accepted exactly the dials, served exactly the
//! requests (no retry), and holds no connection once the client is
//! dropped; nginx's error log has no error.
//!
//! Also holds `fault_matrix` (ignored by default): every case of the fault
//! suite on every backend, printed as the table `FAULTS.md` records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_io::http::{Method, StatusCode};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::{Error, Phase, Tracer};
use roundtrip_tests::Smol;
use roundtrip_tests::backend::{Backend, Blocking, Mio, Req, ReqBody, TokioMulti, test_config};
use roundtrip_tests::fixtures::{Nginx, chunked_text, pattern, skip_loudly};
use roundtrip_tests::server::{Request, ScriptServer, Step, chunked, ok, response};
use roundtrip_tests::tls_nginx::trusting;

/// Client threads per backend.
const WORKERS: usize = 8;

/// Requests per worker unless `ROUNDTRIP_SOAK` says otherwise.
const DEFAULT_EACH: usize = 2000;

/// The generator's seed unless `ROUNDTRIP_SOAK_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5eed_2024;

/// What the server does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    /// `200` with `Content-Length`.
    Normal,
    /// `200` chunked, in two chunks.
    Chunked,
    /// `103` then the answer.
    Interim,
    /// The answer with `Connection: close`, then a close.
    CloseHeader,
    /// The answer, then a close without warning.
    CloseAfter,
    /// A close before any answer byte.
    CloseBefore,
    /// A close after 10 bytes of the head.
    CloseMidHead,
    /// A close after half the body.
    CloseMidBody,
    /// A reset before any answer byte.
    ResetBefore,
    /// A reset after half the body.
    ResetMidBody,
    /// The answer and a second, unsolicited response in one write.
    ExtraResponse,
    /// The answer, then 2 ms later bytes nobody asked for (not HTTP: taken
    /// for the next answer they can only fail it, never pass as a body).
    ExtraLate,
    /// The head in two writes 5 ms apart.
    SlowHead,
    /// The body in two writes 5 ms apart.
    SlowBody,
    /// A chunk size of 2^64.
    BadChunk,
}

/// How often each fault is picked, out of the sum.
const WEIGHTS: [(Fault, u64); 15] = [
    (Fault::Normal, 50),
    (Fault::Chunked, 10),
    (Fault::Interim, 4),
    (Fault::CloseHeader, 4),
    (Fault::CloseAfter, 4),
    (Fault::CloseBefore, 5),
    (Fault::CloseMidHead, 3),
    (Fault::CloseMidBody, 4),
    (Fault::ResetBefore, 3),
    (Fault::ResetMidBody, 3),
    (Fault::ExtraResponse, 4),
    (Fault::ExtraLate, 3),
    (Fault::SlowHead, 3),
    (Fault::SlowBody, 2),
    (Fault::BadChunk, 1),
];

/// The number in environment variable `name` (decimal, or hex after `0x`),
/// or `default` when it is unset; panics when it is set but not a number.
fn env_or(name: &str, default: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}"))
}

/// SplitMix64: a deterministic, well-mixed function of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fault for the `attempt`-th sighting (from 0) of request `id`.
fn pick(seed: u64, id: u64, attempt: u64) -> Fault {
    let total: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut r = mix(seed ^ mix(id ^ (attempt << 48))) % total;
    for (fault, weight) in WEIGHTS {
        if r < weight {
            return fault;
        }
        r -= weight;
    }
    unreachable!("r < total")
}

/// Whether request `id` is a POST (about one in three), and whether its
/// body is streamed (not replayable) rather than in memory.
fn kind_of(seed: u64, id: u64) -> (bool, bool) {
    let r = mix(seed.rotate_left(17) ^ id);
    (r.is_multiple_of(3), (r >> 8).is_multiple_of(4))
}

/// The body the server answers request `id` with: its own length and bytes,
/// starting with the id.
fn body_of(id: u64) -> Vec<u8> {
    let mut body = format!("<{id}>").into_bytes();
    let len = (id.wrapping_mul(7919) % 3000) as usize;
    body.extend((0..len).map(|k| ((k as u64 + id) % 251) as u8));
    body
}

/// The body POST `id` carries.
fn post_body(id: u64) -> Vec<u8> {
    format!("post-{id}").into_bytes()
}

/// The id in a target `/g/ID` or `/p/ID`.
fn id_of(req: &Request) -> Option<u64> {
    req.target.get(3..)?.parse().ok()
}

/// The steps that answer request `id` with `fault`.
fn answer(fault: Fault, id: u64) -> Vec<Step> {
    let body = body_of(id);
    let whole = ok(&body);
    let head_len = whole.len() - body.len();
    let half = head_len + body.len() / 2;
    let pause = Step::Sleep(Duration::from_millis(5));
    match fault {
        Fault::Normal => vec![Step::Write(whole)],
        Fault::Chunked => {
            let (a, b) = body.split_at(body.len() / 2);
            vec![Step::Write(chunked(&[a, b], &[]))]
        }
        Fault::Interim => {
            let mut out = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n".to_vec();
            out.extend_from_slice(&whole);
            vec![Step::Write(out)]
        }
        Fault::CloseHeader => {
            let len = body.len().to_string();
            let closing = response(
                200,
                &[("Content-Length", &len), ("Connection", "close")],
                &body,
            );
            vec![Step::Write(closing), Step::Close]
        }
        Fault::CloseAfter => vec![Step::Write(whole), Step::Close],
        Fault::CloseBefore => vec![Step::Close],
        Fault::CloseMidHead => vec![Step::Write(whole[..10].to_vec()), Step::Close],
        Fault::CloseMidBody => vec![Step::Write(whole[..half].to_vec()), Step::Close],
        Fault::ResetBefore => vec![Step::Reset],
        Fault::ResetMidBody => vec![Step::Write(whole[..half].to_vec()), Step::Reset],
        Fault::ExtraResponse => {
            let mut out = whole;
            out.extend_from_slice(&ok(b"STALE"));
            vec![Step::Write(out)]
        }
        Fault::ExtraLate => vec![
            Step::Write(whole),
            Step::Sleep(Duration::from_millis(2)),
            Step::Write(b"\0\0junk nobody asked for\r\n\r\n".to_vec()),
        ],
        Fault::SlowHead => vec![
            Step::Write(whole[..8].to_vec()),
            pause,
            Step::Write(whole[8..].to_vec()),
        ],
        Fault::SlowBody => vec![
            Step::Write(whole[..half].to_vec()),
            pause,
            Step::Write(whole[half..].to_vec()),
        ],
        Fault::BadChunk => {
            let mut out = response(200, &[("Transfer-Encoding", "chunked")], b"");
            out.extend_from_slice(b"10000000000000000\r\nabc");
            vec![Step::Write(out)]
        }
    }
}

/// What the server's handler saw.
#[derive(Default)]
struct Seen {
    /// Sightings per request id.
    attempts: HashMap<u64, u64>,
    /// Faults injected, per kind.
    faults: HashMap<Fault, usize>,
}

/// One failed request, as the worker saw it.
struct Failure {
    id: u64,
    post: bool,
    error: Error,
}

/// A short name for an error's kind and phase, for the summary.
fn error_kind(e: &Error) -> String {
    let phase = |p: &Phase| format!("{p:?}");
    match e {
        Error::ClosedEarly { phase: p, .. } => format!("ClosedEarly/{}", phase(p)),
        Error::Io { phase: p, .. } => format!("Io/{}", phase(p)),
        Error::Protocol { phase: p, .. } => format!("Protocol/{}", phase(p)),
        Error::Timeout { kind, phase: p, .. } => format!("Timeout/{kind:?}/{}", phase(p)),
        other => format!("{other:?}"),
    }
}

/// Whether `e` is an error the injected faults can cause.
fn expected_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ClosedEarly { .. } | Error::Io { .. } | Error::Protocol { .. }
    )
}

/// The soak on backend `B`; panics listing every violation.
fn soak<B: Backend>() {
    let each = env_or("ROUNDTRIP_SOAK", DEFAULT_EACH as u64) as usize;
    let seed = env_or("ROUNDTRIP_SOAK_SEED", DEFAULT_SEED);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = {
        let seen = Arc::clone(&seen);
        Arc::new(move |req: &Request| {
            let Some(id) = id_of(req) else {
                return vec![Step::Write(response(400, &[("Content-Length", "0")], b""))];
            };
            if req.method == "POST"
                && (req.body != post_body(id) || req.header("x-id") != Some(&id.to_string()))
            {
                return vec![Step::Write(response(400, &[("Content-Length", "0")], b""))];
            }
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            let attempt = seen.attempts.entry(id).or_default();
            let fault = pick(seed, id, *attempt);
            *attempt += 1;
            *seen.faults.entry(fault).or_default() += 1;
            answer(fault, id)
        })
    };
    // Pooled connections may sit idle for long: the server waits for them.
    let server = ScriptServer::start(vec![vec![Step::ServeWith(handler)]])
        .repeat_last(true)
        .read_timeout(Duration::from_secs(120));
    let mut config = test_config();
    config.response_head_timeout = Some(Duration::from_secs(10));
    let max_idle = config.pool.max_idle_per_host;
    let client = B::client(config);
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(WORKERS));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (client, barrier) = (client.clone(), Arc::clone(&barrier));
            let base = server.url("");
            thread::spawn(move || {
                barrier.wait();
                let (mut successes, mut failures, mut wrong) = (0usize, Vec::new(), Vec::new());
                for i in 0..each {
                    let id = (w * each + i) as u64;
                    let (post, streamed) = kind_of(seed, id);
                    let req = if post {
                        let body = if streamed {
                            ReqBody::Stream {
                                data: post_body(id),
                                piece: 3,
                                sized: id.is_multiple_of(2),
                            }
                        } else {
                            ReqBody::Bytes(post_body(id))
                        };
                        Req::new(Method::POST, format!("{base}p/{id}"))
                            .header("X-Id", &id.to_string())
                            .body(body)
                    } else {
                        Req::get(format!("{base}g/{id}"))
                    };
                    match B::send(&client, req) {
                        Ok(resp) if resp.status == StatusCode::OK && resp.body == body_of(id) => {
                            successes += 1;
                        }
                        Ok(resp) => wrong.push(format!(
                            "request {id}: {} with {} body bytes {} (want 200 with {} bytes)",
                            resp.status,
                            resp.body.len(),
                            roundtrip_tests::server::escape(&resp.body[..resp.body.len().min(16)]),
                            body_of(id).len()
                        )),
                        Err(error) => failures.push(Failure { id, post, error }),
                    }
                }
                (successes, failures, wrong)
            })
        })
        .collect();
    let mut successes = 0;
    let mut failures = Vec::new();
    let mut violations = Vec::new();
    for worker in workers {
        let (s, f, w) = worker.join().expect("soak worker");
        successes += s;
        failures.extend(f);
        violations.extend(w);
    }
    let elapsed = started.elapsed();
    let wrong_answers = violations.len();
    assert_eq!(successes + failures.len() + wrong_answers, WORKERS * each);
    // About four in five faults are answers a client reads whole (clean,
    // chunked, interim, closing after it, slow within the timeouts, extra
    // bytes after it): a client failing them all would pass the rest.
    assert!(
        successes * 10 >= WORKERS * each * 7,
        "{successes} of {} succeeded (about 80% expected)",
        WORKERS * each
    );

    // What the server read: POST ids at most once; a GET sent again only
    // after a failure on a reused connection (not the first request the
    // server read on it: Go's rule), at most the idle connections a host
    // may hold plus one new one.
    let requests = server.requests();
    let mut reads: HashMap<(bool, u64), usize> = HashMap::new();
    let mut per_conn: HashMap<usize, usize> = HashMap::new();
    let mut resent_after_new: Vec<u64> = Vec::new();
    let mut last_on_new: HashMap<u64, bool> = HashMap::new();
    for r in &requests {
        let id = id_of(r).expect("an id in every target");
        *reads.entry((r.method == "POST", id)).or_default() += 1;
        let nth = per_conn.entry(r.conn).or_default();
        *nth += 1;
        if r.method == "GET" {
            // Read again after a read that was a new connection's first.
            if last_on_new.insert(id, *nth == 1) == Some(true) {
                resent_after_new.push(id);
            }
        }
    }
    for (&(post, id), &n) in &reads {
        if post && n > 1 {
            violations.push(format!("POST {id} read {n} times by the server"));
        }
        if !post && n > max_idle + 1 {
            violations.push(format!("GET {id} read {n} times (resent past the bound)"));
        }
    }
    for id in resent_after_new {
        violations.push(format!(
            "GET {id} sent again after failing on a new connection"
        ));
    }
    // A request that failed though the server's last answer to it was
    // one a client reads whole: a violation, unless the answer before it
    // on the same connection spoiled what came after (bytes nobody asked
    // for, a close without warning).
    let mut attempts: HashMap<u64, u64> = HashMap::new();
    let mut last_read: HashMap<(bool, u64), (Fault, Option<Fault>)> = HashMap::new();
    let mut previous_on: HashMap<usize, Fault> = HashMap::new();
    for r in &requests {
        let id = id_of(r).expect("an id in every target");
        let attempt = attempts.entry(id).or_default();
        let fault = pick(seed, id, *attempt);
        *attempt += 1;
        let before = previous_on.insert(r.conn, fault);
        last_read.insert((r.method == "POST", id), (fault, before));
    }
    for f in &failures {
        let Some(&(fault, before)) = last_read.get(&(f.post, f.id)) else {
            continue; // failed before the server read it
        };
        let whole = matches!(
            fault,
            Fault::Normal | Fault::Chunked | Fault::Interim | Fault::SlowHead | Fault::SlowBody
        );
        let spoiled = matches!(
            before,
            Some(Fault::ExtraResponse | Fault::ExtraLate | Fault::CloseAfter)
        );
        if whole && !spoiled {
            violations.push(format!(
                "request {} failed though its answer was {fault:?} (after {before:?}): {:?}",
                f.id, f.error
            ));
        }
    }
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for f in &failures {
        *kinds.entry(error_kind(&f.error)).or_default() += 1;
        if !expected_error(&f.error) {
            violations.push(format!("request {}: unexpected error {:?}", f.id, f.error));
        }
        if f.post && reads.contains_key(&(true, f.id)) && !f.error.reached_server() {
            violations.push(format!(
                "POST {} was read by the server but its error says it was not sent: {:?}",
                f.id, f.error
            ));
        }
    }

    // The pool's books.
    let stats = B::stats(&client);
    if (stats.in_use, stats.dialing, stats.waiters) != (0, 0, 0) {
        violations.push(format!("pool holds connections or waiters: {stats:?}"));
    }
    if stats.dials != stats.idle as u64 + stats.closed.total() {
        violations.push(format!(
            "dialed connections neither idle nor closed: {stats:?}"
        ));
    }
    if stats.dials != server.accepted() as u64 {
        violations.push(format!(
            "{} dials but {} connections accepted",
            stats.dials,
            server.accepted()
        ));
    }
    // A client that gave up on a connection (after a fault on it) hangs up
    // whenever: the server's write fails, or its read of a request meets
    // EOF (junk read as an early answer stops a streamed body). Anything
    // else (a malformed request, a client silent mid-request) is the
    // client's fault.
    for e in server.errors() {
        if !(e.message.starts_with("write failed") || e.message.starts_with("EOF")) {
            violations.push(format!("server script error: {e}"));
        }
    }
    drop(client);
    if !server.wait_idle(Duration::from_secs(10)) {
        violations.push("server connections still open 10 s after the client was dropped".into());
    }

    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let mut faults: Vec<_> = seen.faults.iter().collect();
    faults.sort();
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    let name = B::NAME;
    let total = WORKERS * each;
    let secs = elapsed.as_secs_f64();
    let failed = failures.len();
    let reads = requests.len();
    let script_errors = server.errors().len();
    println!(
        "soak {name}: {total} requests ({WORKERS} workers × {each}, seed {seed:#x}) in \
         {secs:.1} s: {successes} ok, {failed} failed, {wrong_answers} wrong; {reads} \
         server reads\n  faults injected: {faults:?}\n  errors: {kinds:?}\n  pool: \
         {stats:?}\n  server script errors: {script_errors}"
    );
    for e in server.errors().iter().take(5) {
        println!("  server: {e}");
    }
    assert!(
        violations.is_empty(),
        "soak {}: {} violations:\n  {}",
        B::NAME,
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn soak_blocking() {
    soak::<Blocking>();
}

#[test]
fn soak_tokio_multi() {
    soak::<TokioMulti>();
}

#[test]
fn soak_mio() {
    soak::<Mio>();
}

/// Requests per worker of the TLS soak unless `ROUNDTRIP_SOAK_TLS` says
/// otherwise.
const DEFAULT_TLS_EACH: usize = 500;

/// Requests nginx serves on one connection before it closes it
/// (`keepalive_requests` in `tests/nginx/nginx.conf.in`).
const NGINX_KEEPALIVE_REQUESTS: usize = 100;

/// Request `id` of the TLS soak, and the body its answer must have.
fn tls_request(nginx: &Nginx, seed: u64, id: u64) -> (Req, Vec<u8>) {
    let r = mix(seed.rotate_left(29) ^ id);
    let get = |path: &str| Req::get(nginx.https_url(path));
    match r % 8 {
        0..=2 => (get("/small"), b"Hello, world!".to_vec()),
        3 => (get("/64k"), pattern(64 * 1024)),
        // gzip-compressed and chunked, decoded by the client.
        4 => (get("/chunked"), chunked_text()),
        5 => (get("/chunked-plain"), chunked_text()),
        _ => {
            let data = body_of(id);
            let body = match (r >> 8) % 3 {
                0 => ReqBody::Bytes(data.clone()),
                streamed => ReqBody::Stream {
                    data: data.clone(),
                    piece: 700,
                    sized: streamed == 1,
                },
            };
            let req = Req::new(Method::POST, nginx.https_url("/echo")).body(body);
            (req, data)
        }
    }
}

/// Handshakes seen in a client's trace: full, resumed, failed.
#[derive(Default)]
struct Handshakes([AtomicU64; 3]);

impl Handshakes {
    fn counts(&self) -> [u64; 3] {
        self.0.each_ref().map(|n| n.load(AtomicOrdering::Relaxed))
    }
}

/// The TLS soak on backend `B` against nginx; panics listing every
/// violation.
fn soak_tls<B: Backend>() {
    let nginx = roundtrip_tests::require_nginx!(tls);
    let each = env_or("ROUNDTRIP_SOAK_TLS", DEFAULT_TLS_EACH as u64) as usize;
    let seed = env_or("ROUNDTRIP_SOAK_SEED", DEFAULT_SEED);
    let shakes = Arc::new(Handshakes::default());
    let mut config = trusting(test_config());
    config.trace = Some(Tracer::new({
        let shakes = Arc::clone(&shakes);
        move |event: &TraceEvent| {
            if let TraceEvent::TlsHandshakeDone { result } = event {
                let slot = match result {
                    Ok(info) if !info.resumed => 0,
                    Ok(_) => 1,
                    Err(_) => 2,
                };
                shakes.0[slot].fetch_add(1, AtomicOrdering::Relaxed);
            }
        }
    }));
    let before = nginx.status();
    let client = B::client(config);
    let nginx = Arc::new(nginx);
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(WORKERS));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (client, barrier, nginx) =
                (client.clone(), Arc::clone(&barrier), Arc::clone(&nginx));
            thread::spawn(move || {
                barrier.wait();
                let mut wrong = Vec::new();
                for i in 0..each {
                    let id = (w * each + i) as u64;
                    let (req, want) = tls_request(&nginx, seed, id);
                    let what = format!("request {id}: {} {}", req.method, req.url);
                    match B::send(&client, req) {
                        Ok(resp) if resp.status == StatusCode::OK && resp.body == want => {}
                        Ok(resp) => wrong.push(format!(
                            "{what}: {} with {} body bytes (want 200 with {})",
                            resp.status,
                            resp.body.len(),
                            want.len()
                        )),
                        Err(e) => wrong.push(format!("{what}: {e:?}")),
                    }
                }
                wrong
            })
        })
        .collect();
    let mut violations: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("soak worker"))
        .collect();
    let elapsed = started.elapsed();
    let total = WORKERS * each;

    // The pool's books: every close was nginx's, after its 100th answer,
    // so the dials are bounded by one per worker plus one per 100 requests.
    let stats = B::stats(&client);
    if (stats.in_use, stats.dialing, stats.waiters) != (0, 0, 0) {
        violations.push(format!("pool holds connections or waiters: {stats:?}"));
    }
    if stats.dials != stats.idle as u64 + stats.closed.total() {
        violations.push(format!(
            "dialed connections neither idle nor closed: {stats:?}"
        ));
    }
    if stats.closed.total() != stats.closed.get(CloseReason::ServerClose) {
        violations.push(format!("a close that was not nginx's: {stats:?}"));
    }
    let max_dials = (WORKERS + total / NGINX_KEEPALIVE_REQUESTS) as u64;
    if stats.dials > max_dials {
        violations.push(format!("{} dials, more than {max_dials}", stats.dials));
    }
    // One handshake per dial; after the first connections, sessions resume.
    let [full, resumed, failed] = shakes.counts();
    if full + resumed + failed != stats.dials || failed != 0 {
        violations.push(format!(
            "{} dials but handshakes: {full} full, {resumed} resumed, {failed} failed",
            stats.dials
        ));
    }
    if full > WORKERS as u64 {
        violations.push(format!("{full} full handshakes for {WORKERS} workers"));
    }

    // nginx's side: the connections it accepted and the requests it
    // served, counted between two `/status` reads that count themselves;
    // then, with the client gone, no connection left but the one asking.
    drop(client);
    let after = match before {
        Some(before) => {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut probes = 0;
            // Bounded by the deadline.
            let after = loop {
                let now = nginx.status().expect("status as before");
                probes += 1;
                if now.active == 1 || Instant::now() >= deadline {
                    break now;
                }
                thread::sleep(Duration::from_millis(20));
            };
            if after.active != 1 {
                violations.push(format!(
                    "nginx holds {} connections 10 s after the client was dropped",
                    after.active - 1
                ));
            }
            let accepted = after.accepts - before.accepts - probes;
            if accepted != stats.dials {
                violations.push(format!(
                    "{} dials but nginx accepted {accepted}",
                    stats.dials
                ));
            }
            let served = after.requests - before.requests - probes;
            if served != total as u64 {
                violations.push(format!("{total} requests but nginx served {served}"));
            }
            Some(after)
        }
        None => {
            skip_loudly("nginx has no stub_status: its connection counts are not checked");
            None
        }
    };
    let log = nginx.error_log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            ["[error]", "[crit]", "[alert]", "[emerg]"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    if !errors.is_empty() {
        violations.push(format!(
            "nginx logged errors:\n    {}",
            errors.join("\n    ")
        ));
    }

    let name = B::NAME;
    let secs = elapsed.as_secs_f64();
    println!(
        "soak tls {name}: {total} requests ({WORKERS} workers × {each}, seed {seed:#x}) in \
         {secs:.1} s\n  pool: {stats:?}\n  handshakes: {full} full, {resumed} resumed, \
         {failed} failed\n  nginx before: {before:?}, after: {after:?}"
    );
    assert!(
        violations.is_empty(),
        "soak tls {name}: {} violations:\n  {}",
        violations.len(),
        violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn soak_tls_blocking() {
    soak_tls::<Blocking>();
}

#[test]
fn soak_tls_tokio_multi() {
    soak_tls::<TokioMulti>();
}

#[test]
fn soak_tls_mio() {
    soak_tls::<Mio>();
}

#[test]
fn soak_tls_smol() {
    soak_tls::<Smol>();
}

/// Every fault case on every backend, `ROUNDTRIP_MATRIX_RUNS` times each
/// (default 1), printed as a scenario × backend table:
/// `cargo test -p roundtrip-tests --test soak fault_matrix -- --ignored --nocapture`.
#[test]
#[ignore = "runs the whole fault suite on every backend; prints the FAULTS.md table"]
fn fault_matrix() {
    let runs = env_or("ROUNDTRIP_MATRIX_RUNS", 1) as usize;
    let table = roundtrip_tests::faults::matrix(runs.max(1));
    assert!(!table.contains("FAIL"), "failed cells in the table above");
}
