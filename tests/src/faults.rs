//! The fault-injection suite, written once over a [`Backend`] and stamped
//! into `faults_blocking.rs`, `faults_tokio.rs` and `faults_mio.rs` by
//! [`fault_suite!`](crate::fault_suite).
//!
//! Each case makes the scripted server misbehave in one way (close or reset
//! at a given byte, drip, flood, send what nobody asked for, answer early,
//! never answer) and asserts what a careful client gives: the exact
//! [`Error`] variant and [`Phase`], [`Error::reached_server`], whether the
//! request went out again, and the pool counters afterwards (nothing in use,
//! dialing or waiting; every dialed connection either idle or counted
//! closed). [`matrix`] runs every case on every backend and prints the
//! scenario × backend table that `FAULTS.md` records. With
//! [`Tls`](crate::tls_faults::Tls) every case runs on `https://` against
//! the scripted TLS server instead (`tls_faults_*.rs`): `serve` picks
//! the server.
//!
//! Every wait is bounded; timing cases use deadlines of a few hundred
//! milliseconds and assert a lower bound from the client's own deadline and
//! a generous upper bound.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_io::http::{Method, StatusCode};
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::proto::{CloseReason, Limits};
use roundtrip_io::{Config, Error, Phase, TimeoutKind};

use crate::backend::{
    Backend, Req, ReqBody, Resp, assert_head_timeout, assert_timeout, test_config,
};
pub use crate::cases::Case;
use crate::fixtures::pattern;
use crate::server::{ScriptServer, Step, ok, response};

/// How long a case waits for the server's scripts to end.
const SETTLE: Duration = Duration::from_secs(5);

/// The short deadline of the timeout cases.
const SHORT: Duration = Duration::from_millis(300);

/// Upper bound for a deadline of [`SHORT`] to fire (debug builds, loaded CI).
const LATE: Duration = Duration::from_millis(2000);

/// The size of the streamed request body the early-answer cases upload:
/// more than loopback socket buffers hold, so a client that does not watch
/// for the answer blocks in its write.
const BIG_UPLOAD: usize = 8 << 20;

/// The upload of the slow-drain case: at the server's drain rate (about
/// 6 MB/s) a client that goes on sending after the answer needs 5 s or
/// more, far beyond the 2 s allowed.
const HUGE_UPLOAD: usize = 32 << 20;

/// A scripted server for backend `B`: over TLS when [`Backend::TLS`] says
/// so (the suite then runs on `https://`, see `crate::tls_faults`).
pub(crate) fn serve<B: Backend>(conns: Vec<Vec<Step>>) -> ScriptServer {
    if B::TLS {
        crate::tls_server::TlsServer::new().start(conns)
    } else {
        ScriptServer::start(conns)
    }
}

/// Sends `req` and panics, naming the backend and the request, if it fails.
pub(crate) fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e:?}", B::NAME))
}

/// Sends `req` and returns its error; panics if it succeeds.
pub(crate) fn send_err<B: Backend>(client: &B::Client, req: Req) -> Error {
    let what = format!("{} {}", req.method, req.url);
    match B::send(client, req) {
        Ok(resp) => panic!(
            "{}: {what}: expected an error, got {} with body {}",
            B::NAME,
            resp.status,
            crate::server::escape(&resp.body)
        ),
        Err(e) => e,
    }
}

/// The pool holds nothing for a request and its books balance: no
/// connection in use or being dialed, no waiter, `idle` idle connections,
/// and every connection dialed is either idle or counted closed.
pub(crate) fn assert_clean<B: Backend>(client: &B::Client, idle: usize) -> PoolStats {
    let stats = B::stats(client);
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters, stats.idle),
        (0, 0, 0, idle),
        "{}: (in_use, dialing, waiters, idle): {stats:?}",
        B::NAME
    );
    assert_eq!(
        stats.dials,
        stats.idle as u64 + stats.closed.total(),
        "{}: a dialed connection is neither idle nor counted closed: {stats:?}",
        B::NAME
    );
    stats
}

/// Waits for every script to end (drop the client first: the last
/// connection waits for its close), then requires that none failed.
pub(crate) fn settle(server: &ScriptServer) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    server.assert_no_errors();
}

/// Like [`settle`], but ignores connection `conn`, whose script is expected
/// to fail (its writes meet the client's close).
fn settle_except(server: &ScriptServer, conn: usize) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    let errors: Vec<_> = server
        .errors()
        .into_iter()
        .filter(|e| e.conn != conn)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Waits until the accept loop (which polls) has seen every connection the
/// client opened, so an `accepted()` upper bound is not read too early.
pub(crate) fn settle_accepts(server: &ScriptServer, at_least: usize) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while server.accepted() < at_least && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    // One more accept-poll period for connections beyond `at_least`.
    thread::sleep(Duration::from_millis(30));
}

/// A second connection that answers `next`: the request after a fault.
/// It then waits for the client to close (a case drops its client before
/// it settles), so the idle connection stays open while the case checks the
/// pool.
fn next_conn() -> Vec<Step> {
    vec![Step::ReadRequest, Step::Write(ok(b"next")), Step::ExpectEof]
}

/// After the fault: the next GET goes out on a new connection (number
/// `conns` in accept order) and gets its own body.
fn next_request_fresh<B: Backend>(client: &B::Client, server: &ScriptServer, conns: usize) {
    let resp = send_ok::<B>(client, Req::get(server.url("/next")));
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body, b"next", "{}", B::NAME);
    assert_eq!(server.accepted(), conns, "{}", B::NAME);
    let last = server.requests().pop().expect("the next request");
    assert_eq!((last.conn, last.target.as_str()), (conns - 1, "/next"));
}

/// A GET, and a POST with an in-memory body.
fn get_and_post(url: String) -> [Req; 2] {
    [
        Req::get(url.clone()),
        Req::new(Method::POST, url).body(ReqBody::Bytes(b"post-body".to_vec())),
    ]
}

/// A config with these decoder limits.
fn with_limits(limits: Limits) -> Config {
    let mut config = test_config();
    config.set_limits(limits);
    config
}

/// Shared by the cases where the server stops at some byte of its answer:
/// `answer` is written, then `end` (a close or a reset) ends the connection.
/// Checks GET and POST: the error `want` (with `reached_server`), no second
/// attempt (a fresh connection's failure is not retried), the request read
/// once, the connection not pooled, the next request fine on a new one.
fn stop_at<B: Backend>(answer: &[u8], end: Step, want: impl Fn(&Error) -> bool) {
    for req in get_and_post(String::new()) {
        let method = req.method.clone();
        let mut first = vec![Step::ReadRequest];
        if !answer.is_empty() {
            first.push(Step::Write(answer.to_vec()));
            // Let the bytes arrive on their own before the close or reset.
            first.push(Step::Sleep(Duration::from_millis(30)));
        }
        first.push(end.clone());
        let server = serve::<B>(vec![first, next_conn()]);
        let client = B::client(test_config());
        let req = Req {
            url: server.url("/a"),
            ..req
        };
        let err = send_err::<B>(&client, req);
        assert!(want(&err), "{}: {method}: {err:?}", B::NAME);
        assert!(err.reached_server(), "{}: {method}: {err:?}", B::NAME);
        settle_accepts(&server, 1);
        assert_eq!(server.accepted(), 1, "{}: {method} was sent again", B::NAME);
        assert_eq!(server.count_method(method.as_str()), 1);
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{}: {stats:?}", B::NAME);
        next_request_fresh::<B>(&client, &server, 2);
        assert_clean::<B>(&client, 1);
        drop(client);
        settle(&server);
    }
}

crate::cases! {
    /// Stamps every fault case into `#[test]` functions for a backend:
    /// `fault_suite!(Blocking)` for all of them, or
    /// `fault_suite!(@cases Blocking; case, ...)` for a chosen list (a backend
    /// that fails a case deterministically leaves it out, with the reason in
    /// `FAULTS.md`).
    stamp fault_suite, list cases, path faults;

/// The server reads the request and closes before any response byte:
/// `ClosedEarly` in the response-head phase, may have reached the server;
/// not retried (the connection was fresh).
pub fn close_before_response<B: Backend>() {
    stop_at::<B>(b"", Step::Close, |e| {
        matches!(
            e,
            Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true
            }
        )
    });
}

/// The server closes in the middle of the response head.
pub fn close_mid_head<B: Backend>() {
    let half = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Hal";
    stop_at::<B>(half, Step::Close, |e| {
        matches!(
            e,
            Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true
            }
        )
    });
}

/// The server closes after 400 of 1000 `Content-Length` bytes.
pub fn close_mid_body_sized<B: Backend>() {
    let answer = response(200, &[("Content-Length", "1000")], &pattern(400));
    stop_at::<B>(&answer, Step::Close, |e| {
        matches!(
            e,
            Error::ClosedEarly {
                phase: Phase::Body,
                reached_server: true
            }
        )
    });
}

/// The server closes inside the second chunk of a chunked body, and (second
/// script) right after a whole chunk, before the last chunk.
pub fn close_mid_body_chunked<B: Backend>() {
    let mut inside = response(200, &[("Transfer-Encoding", "chunked")], b"");
    inside.extend_from_slice(b"100\r\n");
    inside.extend_from_slice(&pattern(256));
    inside.extend_from_slice(b"\r\n100\r\n");
    inside.extend_from_slice(&pattern(100));
    let mut between = response(200, &[("Transfer-Encoding", "chunked")], b"");
    between.extend_from_slice(b"5\r\nhello\r\n");
    for answer in [inside, between] {
        stop_at::<B>(&answer, Step::Close, |e| {
            matches!(
                e,
                Error::ClosedEarly {
                    phase: Phase::Body,
                    reached_server: true
                }
            )
        });
    }
}

/// The server resets (RST) the connection after 1000 of 100000 body bytes:
/// `ClosedEarly` in the body phase (a reset is a close the server did not
/// finish).
pub fn reset_mid_body<B: Backend>() {
    let answer = response(200, &[("Content-Length", "100000")], &pattern(1000));
    stop_at::<B>(&answer, Step::Reset, |e| {
        matches!(
            e,
            Error::ClosedEarly {
                phase: Phase::Body,
                reached_server: true
            }
        )
    });
}

/// The server resets the connection before any response byte.
pub fn reset_before_response<B: Backend>() {
    stop_at::<B>(b"", Step::Reset, |e| {
        matches!(
            e,
            Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true
            }
        )
    });
}

/// The head drips in one byte every 150 ms: each byte resets no timer that
/// matters, the response-head timeout (300 ms, from the request's end) fires
/// anyway. The connection is closed, the next request dials.
pub fn head_drip_timeout<B: Backend>() {
    let server = serve::<B>(vec![
        vec![
            Step::ReadRequest,
            Step::WriteSlowly {
                bytes: ok(b"slow"),
                every: Duration::from_millis(150),
            },
        ],
        next_conn(),
    ]);
    let mut config = test_config();
    config.response_head_timeout = Some(SHORT);
    let client = B::client(config);
    let early = SHORT - Duration::from_millis(10);
    assert_head_timeout::<B>(&client, server.url("/"), early, LATE);
    let stats = assert_clean::<B>(&client, 0);
    assert_eq!(stats.closed.get(CloseReason::Timeout), 1, "{stats:?}");
    next_request_fresh::<B>(&client, &server, 2);
    assert_clean::<B>(&client, 1);
    // The drip's writes fail once the client closed; that is the point.
    drop(client);
    settle_except(&server, 0);
}

/// A flood of 1xx responses: at `max_interim_responses` (4) the final
/// response still comes through; one more is `LimitExceeded` naming the
/// limit; with the default limit (32), 1000 interim responses are refused.
pub fn interim_flood<B: Backend>() {
    let hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
    let flood = |n: usize| {
        let mut out = hint.repeat(n);
        out.extend_from_slice(&ok(b"final"));
        out
    };
    // At the limit: fine, and the connection is reused.
    let server = serve::<B>(vec![vec![
        Step::Repeat(2, vec![Step::ReadRequest, Step::Write(flood(4))]),
        Step::ExpectEof,
    ]]);
    let client = B::client(with_limits(Limits::default().max_interim_responses(4)));
    for _ in 0..2 {
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (StatusCode::OK, &b"final"[..])
        );
    }
    assert_eq!(server.accepted(), 1);
    assert_clean::<B>(&client, 1);
    drop(client);
    settle(&server);
    // Over it: refused, connection dropped.
    for (limit, n) in [(Some(4), 5), (None, 1000)] {
        let server = serve::<B>(vec![
            vec![Step::ReadRequest, Step::Write(flood(n)), Step::ExpectEof],
            next_conn(),
        ]);
        let config = match limit {
            Some(l) => with_limits(Limits::default().max_interim_responses(l)),
            None => test_config(),
        };
        let client = B::client(config);
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        let want = limit.unwrap_or(32);
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    source: roundtrip_io::proto::Error::TooManyInterimResponses { limit },
                } if limit == want
            ),
            "{}: {n} interim responses: {err:?}",
            B::NAME
        );
        assert!(err.reached_server());
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        next_request_fresh::<B>(&client, &server, 2);
        // The client may close with flood bytes unread (a reset).
        drop(client);
        settle_except(&server, 0);
    }
}

/// Shared by the idle-bytes cases: the server answers `one`, then after
/// `server_pause` sends `extra` on the idle connection; the client sends
/// its next GET `client_pause` after the first answer. The extra bytes must
/// never become the next request's answer: that goes out on a new
/// connection and gets `next`.
fn bytes_on_idle<B: Backend>(extra: &[u8], server_pause: Duration, client_pause: Duration) {
    bytes_on_idle_with::<B>(test_config(), extra, server_pause, client_pause);
}

/// [`bytes_on_idle`] with a given config.
fn bytes_on_idle_with<B: Backend>(
    config: Config,
    extra: &[u8],
    server_pause: Duration,
    client_pause: Duration,
) {
    let written = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve::<B>(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok(b"one")),
            Step::Sleep(server_pause),
            Step::Write(extra.to_vec()),
            Step::Reached(written.clone()),
            Step::ExpectEof,
        ],
        next_conn(),
    ]);
    let client = B::client(config);
    let started = std::time::Instant::now();
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/one"))).body,
        b"one"
    );
    // The next request goes after the server's extra bytes, whatever the
    // load (bounded: 5 s); the pause counts from the first answer. A
    // server thread late past `stale_check_after` turns the case into the
    // probed one, which ends the same.
    let deadline = started + Duration::from_secs(5);
    while !written.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the server wrote its extra bytes");
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(client_pause.saturating_sub(started.elapsed()));
    let resp = B::send(&client, Req::get(server.url("/next")));
    match &resp {
        Ok(r) => assert_eq!(
            r.body,
            b"next",
            "{}: bytes the server sent on the idle connection were handed to the next request",
            B::NAME
        ),
        Err(e) => panic!("{}: the next request failed: {e:?}", B::NAME),
    }
    assert_eq!(server.accepted(), 2, "{}", B::NAME);
    let conns: Vec<usize> = server.requests().iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 1], "{}: the idle connection was reused", B::NAME);
    let stats = assert_clean::<B>(&client, 1);
    let why =
        stats.closed.get(CloseReason::Stale) + stats.closed.get(CloseReason::UnsolicitedBytes);
    assert_eq!((why, stats.closed.total()), (1, 1), "{stats:?}");
    drop(client);
    settle(&server);
}

/// Garbage arrives on an idle pooled connection 30 ms after its answer; the
/// next request comes 300 ms later (past `stale_check_after`, 100 ms).
pub fn unsolicited_bytes_on_idle<B: Backend>() {
    bytes_on_idle::<B>(
        b"\0\0garbage nobody asked for",
        Duration::from_millis(30),
        Duration::from_millis(300),
    );
}

/// A whole plausible response (`STALE`) arrives on an idle pooled
/// connection 10 ms after its answer; the next request comes 60 ms after the
/// first answer, while the connection is younger than `stale_check_after`
/// (so no probe is due): the bytes are already there and must still not be
/// taken for the next request's answer.
pub fn unsolicited_response_on_young_idle<B: Backend>() {
    bytes_on_idle::<B>(
        &ok(b"STALE"),
        Duration::from_millis(10),
        Duration::from_millis(60),
    );
}

/// As [`unsolicited_response_on_young_idle`], with `stale_check_after` at
/// zero (every reuse is probed): the mitigation for that case.
pub fn unsolicited_response_on_young_idle_probed<B: Backend>() {
    let mut config = test_config();
    config.stale_check_after = Duration::ZERO;
    bytes_on_idle_with::<B>(
        config,
        &ok(b"STALE"),
        Duration::from_millis(10),
        Duration::from_millis(60),
    );
}

/// A second response to a single request, in the same write as the first:
/// the first is returned exactly, the connection is not reused, and the next
/// request gets its own body on a new connection.
pub fn second_response_same_write<B: Backend>() {
    let mut answer = ok(b"one");
    answer.extend_from_slice(&ok(b"EXTRA"));
    let server = serve::<B>(vec![
        vec![Step::ReadRequest, Step::Write(answer), Step::ExpectEof],
        next_conn(),
    ]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/one")));
    assert_eq!(resp.body, b"one");
    next_request_fresh::<B>(&client, &server, 2);
    let stats = assert_clean::<B>(&client, 1);
    assert_eq!(
        (
            stats.closed.get(CloseReason::UnsolicitedBytes),
            stats.closed.total()
        ),
        (1, 1),
        "{stats:?}"
    );
    drop(client);
    settle(&server);
}

/// A second response 20 ms after the first; the next request comes 300 ms
/// later.
pub fn second_response_delayed<B: Backend>() {
    bytes_on_idle::<B>(
        &ok(b"EXTRA"),
        Duration::from_millis(20),
        Duration::from_millis(300),
    );
}

/// Response heads over `max_head_bytes` (16 KiB here): 40 fields of 500
/// bytes, and a head that never ends (1 MiB without a line end). Both are
/// `LimitExceeded` naming the limit, the connection is dropped.
pub fn oversized_head<B: Backend>() {
    let value = "v".repeat(500);
    let names: Vec<String> = (0..40).map(|i| format!("X-Pad-{i}")).collect();
    let mut fields: Vec<(&str, &str)> =
        names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    fields.push(("Content-Length", "0"));
    let many = response(200, &fields, b"");
    let mut endless = b"HTTP/1.1 200 OK\r\nX-Endless: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 1 << 20));
    for answer in [many, endless] {
        let server = serve::<B>(vec![
            vec![Step::ReadRequest, Step::Write(answer), Step::ExpectEof],
            next_conn(),
        ]);
        let client = B::client(with_limits(Limits::default().max_head_bytes(16 * 1024)));
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    source: roundtrip_io::proto::Error::HeadTooLarge { limit: 16384 },
                }
            ),
            "{}: {err:?}",
            B::NAME
        );
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        next_request_fresh::<B>(&client, &server, 2);
        // The client closes with head bytes unread: the first connection's
        // write may meet a reset.
        drop(client);
        settle_except(&server, 0);
    }
}

/// A chunk size of 2^64 (`10000000000000000` hex), and a longer one:
/// `Protocol` error `ChunkSizeOverflow` in the body phase.
pub fn chunk_size_overflow<B: Backend>() {
    for size in ["10000000000000000", "ffffffffffffffff0"] {
        let mut answer = response(200, &[("Transfer-Encoding", "chunked")], b"");
        answer.extend_from_slice(format!("{size}\r\nabc").as_bytes());
        let server = serve::<B>(vec![
            vec![Step::ReadRequest, Step::Write(answer), Step::ExpectEof],
            next_conn(),
        ]);
        let client = B::client(test_config());
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        assert!(
            matches!(
                err,
                Error::Protocol {
                    phase: Phase::Body,
                    source: roundtrip_io::proto::Error::ChunkSizeOverflow { .. },
                    reached_server: true,
                }
            ),
            "{}: chunk size {size}: {err:?}",
            B::NAME
        );
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        next_request_fresh::<B>(&client, &server, 2);
        drop(client);
        settle(&server);
    }
}

/// A streamed POST of `len` bytes, sized or chunked.
fn big_upload(url: String, len: usize, sized: bool) -> Req {
    Req::new(Method::POST, url).body(ReqBody::Stream {
        data: pattern(len),
        piece: 64 * 1024,
        sized,
    })
}

/// The 413 the early-answer cases send.
fn too_large() -> Vec<u8> {
    response(
        413,
        &[("Content-Length", "8"), ("Connection", "close")],
        b"too big!",
    )
}

/// Shared by the early-answer cases: the server reads the head of a `len`
/// bytes upload, answers 413 and then does `after`. The client must stop sending
/// promptly (within 2 s; its write timeout is 3 s, so waiting for that does
/// not count) and return the 413 with its body, or, where the server's
/// close made the answer unreadable, a clear error: the write failed
/// (`ClosedEarly` or `Io` in the write phase), may have reached the server.
/// Either way the connection is not reused. Prints which of the two it got.
fn early_413<B: Backend>(case: &str, len: usize, after: Vec<Step>) {
    for sized in [true, false] {
        let mut first = vec![Step::ReadHead, Step::Write(too_large())];
        first.extend(after.iter().cloned());
        let server = serve::<B>(vec![first, next_conn()]);
        let mut config = test_config();
        config.write_timeout = Some(Duration::from_secs(3));
        let client = B::client(config);
        let req = big_upload(server.url("/upload"), len, sized);
        let started = Instant::now();
        let result = B::send(&client, req);
        let took = started.elapsed();
        let kind = if sized { "sized" } else { "chunked" };
        let got = match &result {
            Ok(resp) => {
                assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", B::NAME);
                assert_eq!(resp.body, b"too big!", "{}", B::NAME);
                "413".to_string()
            }
            Err(
                e @ (Error::ClosedEarly {
                    phase: Phase::Write,
                    reached_server: true,
                }
                | Error::Io {
                    phase: Phase::Write,
                    reached_server: true,
                    ..
                }),
            ) => format!("error {e:?}"),
            Err(e) => panic!(
                "{}: {kind} upload answered 413 early: got {e:?} after {took:?}",
                B::NAME
            ),
        };
        println!(
            "early-413 outcome: {case} {} {kind}: {got} after {took:?}",
            B::NAME
        );
        assert!(
            took < Duration::from_secs(2),
            "{}: {kind} upload answered 413 early: got {got} only after {took:?}",
            B::NAME
        );
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        next_request_fresh::<B>(&client, &server, 2);
        // The first script may still be sleeping or draining (it ends when
        // the server is dropped), or cut short by the client's close: only
        // the second, which already answered, must be clean.
        let errors: Vec<_> = server
            .errors()
            .into_iter()
            .filter(|e| e.conn != 0)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// 413 while the request body is still going, then the server closes (the
/// body bytes that keep coming make its kernel answer with RST).
pub fn early_413_then_close<B: Backend>() {
    early_413::<B>("then_close", BIG_UPLOAD, vec![Step::Close]);
}

/// 413 while the request body is still going, then the server stops
/// reading for 5 s (cut short when the case ends): the client's writes
/// block, and it must notice the answer anyway.
pub fn early_413_stops_reading<B: Backend>() {
    early_413::<B>(
        "stops_reading",
        BIG_UPLOAD,
        vec![Step::Sleep(Duration::from_secs(5)), Step::Close],
    );
}

/// 413 while a 32 MiB request body is still going, then the server reads
/// and discards the body slowly (64 KiB every 10 ms, for up to 10 s): the
/// writes keep making progress, and the client must still stop soon.
pub fn early_413_slow_drain<B: Backend>() {
    early_413::<B>(
        "slow_drain",
        HUGE_UPLOAD,
        vec![
            Step::DiscardSlowly {
                chunk: 64 * 1024,
                every: Duration::from_millis(10),
                for_at_most: Duration::from_secs(10),
            },
            Step::Close,
        ],
    );
}

/// The server answers one request, then reads the next one on the reused
/// connection and closes without answering.
fn close_on_reuse() -> Vec<Step> {
    vec![
        Step::ReadRequest,
        Step::Write(ok(b"one")),
        Step::ReadRequest,
        Step::Close,
    ]
}

/// Close exactly at reuse, GET: retried once on a new connection, succeeds.
pub fn close_on_reuse_get_retried<B: Backend>() {
    let server = serve::<B>(vec![close_on_reuse(), next_conn()]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/one"))).body,
        b"one"
    );
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/next"))).body,
        b"next"
    );
    let seen: Vec<(usize, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.conn, r.target))
        .collect();
    assert_eq!(
        seen,
        [(0, "/one".into()), (0, "/next".into()), (1, "/next".into())],
        "{}",
        B::NAME
    );
    let stats = assert_clean::<B>(&client, 1);
    assert_eq!((stats.dials, stats.closed.total()), (2, 1), "{stats:?}");
    drop(client);
    settle(&server);
}

/// Close exactly at reuse, POST (in-memory and streamed bodies): not sent
/// again; `ClosedEarly` in the response-head phase, may have reached the
/// server (it did: the server read it).
pub fn close_on_reuse_post_not_resent<B: Backend>() {
    let bodies = [
        ReqBody::Bytes(b"post-body".to_vec()),
        ReqBody::Stream {
            data: b"post-body".to_vec(),
            piece: 4,
            sized: false,
        },
    ];
    for body in bodies {
        let server = serve::<B>(vec![close_on_reuse(), next_conn()]);
        let client = B::client(test_config());
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/one"))).body,
            b"one"
        );
        let req = Req::new(Method::POST, server.url("/post")).body(body);
        let err = send_err::<B>(&client, req);
        assert!(
            matches!(
                err,
                Error::ClosedEarly {
                    phase: Phase::ResponseHead,
                    reached_server: true
                }
            ),
            "{}: {err:?}",
            B::NAME
        );
        settle_accepts(&server, 1);
        assert_eq!(server.accepted(), 1, "{}: the POST was sent again", B::NAME);
        let posts: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].body, b"post-body");
        let stats = assert_clean::<B>(&client, 0);
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        next_request_fresh::<B>(&client, &server, 2);
        drop(client);
        settle(&server);
    }
}

/// Shared by the never-answers cases: the server reads the request (or, if
/// `reads` is false, never even reads) and stays silent. The client gives
/// `Timeout` of `kind` in the response-head phase at its deadline (`config`
/// and `req` set it), closes, and the next request dials.
fn silent_server<B: Backend>(
    reads: bool,
    config: Config,
    timeout: Option<Duration>,
    kind: TimeoutKind,
) {
    let first = if reads {
        vec![Step::ReadRequest, Step::ExpectEof]
    } else {
        vec![Step::Sleep(Duration::from_secs(5))]
    };
    let server = serve::<B>(vec![first, next_conn()]);
    let client = B::client(config);
    let mut req = Req::get(server.url("/"));
    if timeout.is_some() {
        req = req.timeout(timeout);
    }
    let started = Instant::now();
    let err = send_err::<B>(&client, req);
    let took = started.elapsed();
    assert_timeout(&err, kind, Phase::ResponseHead, true, B::NAME);
    assert!(took >= SHORT - Duration::from_millis(10), "early: {took:?}");
    assert!(took < LATE, "late: {took:?}");
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "{}: retried after a timeout", B::NAME);
    let stats = assert_clean::<B>(&client, 0);
    assert_eq!(
        (stats.closed.get(CloseReason::Timeout), stats.closed.total()),
        (1, 1),
        "{stats:?}"
    );
    next_request_fresh::<B>(&client, &server, 2);
    assert_clean::<B>(&client, 1);
    if reads {
        drop(client);
        settle(&server);
    }
}

/// Accepts, reads, never answers: `response_head_timeout` (300 ms) fires.
pub fn never_answers_head_timeout<B: Backend>() {
    let mut config = test_config();
    config.response_head_timeout = Some(SHORT);
    silent_server::<B>(true, config, None, TimeoutKind::ResponseHead);
}

/// Accepts, reads, never answers: the whole-request `timeout` (300 ms)
/// fires in the response-head phase.
pub fn never_answers_total_timeout<B: Backend>() {
    let mut config = test_config();
    config.timeout = Some(SHORT);
    silent_server::<B>(true, config, None, TimeoutKind::Total);
}

/// Accepts, reads, never answers: the `read_timeout` (300 ms) fires while
/// the head is due, reported as a read-idle timeout, not a head timeout.
pub fn never_answers_read_timeout<B: Backend>() {
    let mut config = test_config();
    config.read_timeout = Some(SHORT);
    silent_server::<B>(true, config, None, TimeoutKind::ReadIdle);
}

/// Accepts, reads, never answers: the request's own timeout (300 ms)
/// overrides the client's 30 s.
pub fn never_answers_request_timeout<B: Backend>() {
    silent_server::<B>(true, test_config(), Some(SHORT), TimeoutKind::Total);
}

/// Accepts and never reads (the request sits in the socket buffers): the
/// response-head timeout fires all the same.
pub fn never_reads<B: Backend>() {
    let mut config = test_config();
    config.response_head_timeout = Some(SHORT);
    silent_server::<B>(false, config, None, TimeoutKind::ResponseHead);
}

/// Accepts, reads the head of an 8 MiB upload and never reads the body nor
/// answers: the client's writes stall, and its `write_timeout` (300 ms)
/// fires: `Timeout` in the write phase. The whole-request `timeout` (3 s)
/// is only a backstop.
pub fn upload_never_read<B: Backend>() {
    let server = serve::<B>(vec![
        vec![Step::ReadHead, Step::Sleep(Duration::from_secs(5))],
        next_conn(),
    ]);
    let mut config = test_config();
    config.write_timeout = Some(SHORT);
    config.timeout = Some(Duration::from_secs(3));
    let client = B::client(config);
    let started = Instant::now();
    let err = send_err::<B>(&client, big_upload(server.url("/upload"), BIG_UPLOAD, true));
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::Write, Phase::Write, true, B::NAME);
    assert!(took >= SHORT - Duration::from_millis(10), "early: {took:?}");
    assert!(
        took < LATE,
        "{}: write timeout {SHORT:?} fired late: {took:?}",
        B::NAME
    );
    let stats = assert_clean::<B>(&client, 0);
    assert_eq!(
        (stats.closed.get(CloseReason::Timeout), stats.closed.total()),
        (1, 1),
        "{stats:?}"
    );
    next_request_fresh::<B>(&client, &server, 2);
}
}

/// Runs `case` on the current thread, catching its panic; returns the
/// panic's message, first line only.
fn outcome(case: fn()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(case)).map_err(|p| {
        let msg = if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic)".into()
        };
        msg.lines().next().unwrap_or_default().to_string()
    })
}

/// Runs every case on every backend `runs` times and prints the scenario ×
/// backend table (`pass`, or `FAIL n/runs` with the first failure's
/// message below the table). Returns the table.
pub fn matrix(runs: usize) -> String {
    use crate::Smol;
    use crate::backend::{Blocking, Mio, TokioCurrent, TokioMulti};
    let columns: [(&str, Vec<Case>); 5] = [
        (Blocking::NAME, cases::<Blocking>()),
        (TokioCurrent::NAME, cases::<TokioCurrent>()),
        (TokioMulti::NAME, cases::<TokioMulti>()),
        (Mio::NAME, cases::<Mio>()),
        (Smol::NAME, cases::<Smol>()),
    ];
    let names: Vec<&str> = columns[0].1.iter().map(|(n, _)| *n).collect();
    // Silence the default hook: failures are reported in the table.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut cells = vec![vec![String::new(); columns.len()]; names.len()];
    let mut notes = Vec::new();
    for (row, name) in names.iter().enumerate() {
        for (col, (backend, cases)) in columns.iter().enumerate() {
            let mut failed = 0;
            let mut first = None;
            let started = Instant::now();
            for _ in 0..runs {
                if let Err(msg) = outcome(cases[row].1) {
                    failed += 1;
                    first.get_or_insert(msg);
                }
            }
            let ms = started.elapsed().as_millis() / runs.max(1) as u128;
            cells[row][col] = if failed == 0 {
                format!("pass ({ms} ms)")
            } else {
                format!("FAIL {failed}/{runs}")
            };
            if let Some(msg) = first {
                notes.push(format!("{name} on {backend}: {msg}"));
            }
        }
    }
    std::panic::set_hook(hook);
    let mut out = String::new();
    out.push_str("| scenario |");
    for (backend, _) in &columns {
        out.push_str(&format!(" {backend} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(columns.len()));
    out.push('\n');
    for (row, name) in names.iter().enumerate() {
        out.push_str(&format!("| {name} |"));
        for cell in &cells[row] {
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    for note in &notes {
        out.push_str(&format!("\n- {note}"));
    }
    println!("{out}");
    out
}
