//! The backend test suite, written once. Each case is a generic function over
//! a [`Backend`]; [`backend_suite!`](crate::backend_suite) stamps every case
//! into a `#[test]` for one backend.
//!
//! Cases assert on three views of the same exchange: what the client returned,
//! what the scripted server read and accepted ([`ScriptServer::requests`],
//! [`ScriptServer::accepted`]), and the pool counters ([`Backend::stats`]).
//! Every wait is bounded; timing-based cases only assert lower bounds from
//! deadlines the client itself keeps, plus a generous upper bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_io::http::{Method, StatusCode, Version};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Error, Phase, TimeoutKind};

use crate::backend::{
    Backend, ReadMode, Req, ReqBody, Resp, assert_head_timeout, assert_timeout, drops_closed_idle,
    test_config, wait_no_idle,
};
use crate::fixtures::{chunked_text, pattern};
use crate::server::{ScriptServer, Step, chunked, ok, response};

/// How long a case waits for the server's connection threads to finish
/// their scripts before asserting on script errors.
const SETTLE: Duration = Duration::from_secs(5);

/// Sends `req` and panics, naming the backend and the request, if it fails.
fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e}", B::NAME))
}

/// Sends `req` and returns its error; panics if it succeeds.
fn send_err<B: Backend>(client: &B::Client, req: Req) -> Error {
    let what = format!("{} {}", req.method, req.url);
    match B::send(client, req) {
        Ok(resp) => panic!(
            "{}: {what}: expected an error, got {} with {} body bytes",
            B::NAME,
            resp.status,
            resp.body.len()
        ),
        Err(e) => e,
    }
}

/// Connections closed for `reason` so far.
fn closed(stats: &PoolStats, reason: CloseReason) -> u64 {
    stats.closed.get(reason)
}

/// Waits for every script to end, then requires that none failed.
fn settle(server: &ScriptServer) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    server.assert_no_errors();
}

/// Ends a script like a keep-alive server: the connection stays open until
/// the client closes it. A script that just ended would close it, and the mio
/// loop, which watches idle connections, drops one the moment its server
/// closes it (or does not pool it when the close came with the response):
/// an idle count or a reuse checked after the script would race that close.
fn held(mut steps: Vec<Step>) -> Vec<Step> {
    steps.push(Step::ExpectEof);
    steps
}

/// Drops the client (closing its idle connections, which ends [`held`]
/// scripts), then [`settle`]s.
fn settle_held<C>(client: C, server: &ScriptServer) {
    drop(client);
    settle(server);
}

/// Waits until the accept loop (which polls) has seen every connection the
/// client opened, so an `accepted()` upper bound is not read too early.
fn settle_accepts(server: &ScriptServer, at_least: usize) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while server.accepted() < at_least && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    // One more accept-poll period for connections beyond `at_least`.
    thread::sleep(Duration::from_millis(20));
}

/// A request of `method` on `url` with an in-memory body.
fn with_body(method: Method, url: String, body: &[u8]) -> Req {
    Req::new(method, url).body(ReqBody::Bytes(body.to_vec()))
}

/// Raw response bytes: `head` (status line and fields, CRLF-separated, no
/// final blank line), the blank line, then `body`.
fn raw(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// 100 keep-alive requests travel over one connection.
pub fn keep_alive_100<B: Backend>() {
    let server = ScriptServer::start(vec![held(vec![Step::Repeat(
        100,
        vec![Step::ReadRequest, Step::Write(ok(b"hello"))],
    )])]);
    let client = B::client(test_config());
    for i in 0..100 {
        let resp = B::send(&client, Req::get(server.url("/")))
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body, b"hello");
    }
    assert_eq!(server.accepted(), 1, "{}: one connection", B::NAME);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle, stats.in_use),
        (1, 99, 1, 0)
    );
    settle_held(client, &server);
}

/// `Connection: close` on a response: the next request dials anew and the
/// close is counted as `ServerClose`.
pub fn server_connection_close_redials<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[("Content-Length", "3"), ("Connection", "close")],
                b"one",
            )),
            Step::Close,
        ],
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/1"))).body,
        b"one"
    );
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/2"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    assert_eq!(closed(&stats, CloseReason::ServerClose), 1, "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");
    settle_held(client, &server);
}

/// An HTTP/1.0 response without `Connection: keep-alive`: the client closes
/// the connection itself (the server waits for its EOF) and dials anew.
pub fn http10_response_not_reused<B: Backend>() {
    let reply = raw("HTTP/1.0 200 OK\nContent-Length: 5", b"hello");
    let script = vec![Step::ReadRequest, Step::Write(reply), Step::ExpectEof];
    let server = ScriptServer::start(vec![script.clone(), script]);
    let client = B::client(test_config());
    for _ in 0..2 {
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(resp.version, Version::HTTP_10);
        assert_eq!(resp.body, b"hello");
    }
    assert_eq!(server.accepted(), 2);
    settle(&server);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Http10), 2, "{stats:?}");
    assert_eq!((stats.dials, stats.reuses, stats.idle), (2, 0, 0));
}

/// An HTTP/1.0 response with `Connection: keep-alive` is reused.
pub fn http10_keep_alive_reused<B: Backend>() {
    let reply = raw(
        "HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 5",
        b"hello",
    );
    let server = ScriptServer::start(vec![held(vec![Step::Repeat(
        3,
        vec![Step::ReadRequest, Step::Write(reply)],
    )])]);
    let client = B::client(test_config());
    for _ in 0..3 {
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(resp.version, Version::HTTP_10);
        assert_eq!(resp.body, b"hello");
    }
    assert_eq!(server.accepted(), 1);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses, stats.idle), (1, 2, 1));
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    settle_held(client, &server);
}

/// A body without framing headers ends where the server closes: read in
/// full, and the connection is not reused.
pub fn close_delimited_body<B: Backend>() {
    let body = pattern(50_000);
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(raw("HTTP/1.1 200 OK\nContent-Type: x/y", &body)),
            Step::Close,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.body.len(), body.len());
    assert!(resp.body == body, "close-delimited body differs");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::ReadToClose), 1, "{stats:?}");
    assert_eq!(stats.dials, 2);
    settle(&server);
}

/// A chunked body with trailers: body exact, trailers returned, connection
/// reused.
pub fn chunked_with_trailers<B: Backend>() {
    let big = pattern(20_000);
    let reply = chunked(
        &[b"hello", b", ", &big, b"world"],
        &[("X-Checksum", "abc123"), ("X-Count", "4")],
    );
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(reply),
        Step::ReadRequest,
        Step::Write(ok(b"again")),
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    let mut want = b"hello, ".to_vec();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"world");
    assert!(resp.body == want, "chunked body differs");
    let trailers = resp.trailers.expect("trailers present");
    assert_eq!(trailers["x-checksum"], "abc123");
    assert_eq!(trailers["x-count"], "4");
    assert_eq!(trailers.len(), 2);
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.body, b"again");
    assert!(resp.trailers.is_none(), "no trailers on a sized body");
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// A response whose bytes arrive one at a time still decodes exactly (the
/// client's reads end at every possible split).
pub fn response_trickled_byte_by_byte<B: Backend>() {
    let every = Duration::ZERO;
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::WriteSlowly {
            bytes: chunked(&[b"abc", b"defgh"], &[("X-T", "1")]),
            every,
        },
        Step::ReadRequest,
        Step::WriteSlowly {
            bytes: response(
                200,
                &[("Content-Length", "10"), ("X-A", "b")],
                b"0123456789",
            ),
            every,
        },
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.body, b"abcdefgh");
    assert_eq!(resp.trailers.expect("trailers")["x-t"], "1");
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.body, b"0123456789");
    assert_eq!(resp.headers["x-a"], "b");
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// HEAD: `Content-Length` describes the GET body, which is not sent; no body
/// is read and the connection carries the next request.
pub fn head_with_content_length_reused<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(200, &[("Content-Length", "1000")], b"")),
        Step::ReadRequest,
        Step::Write(response(200, &[("Transfer-Encoding", "chunked")], b"")),
        Step::ReadRequest,
        Step::Write(ok(b"after head")),
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::new(Method::HEAD, server.url("/h")));
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.headers["content-length"], "1000");
    assert!(resp.body.is_empty());
    let resp = send_ok::<B>(&client, Req::new(Method::HEAD, server.url("/h")));
    assert_eq!(resp.headers["transfer-encoding"], "chunked");
    assert!(resp.body.is_empty() && resp.trailers.is_none());
    let resp = send_ok::<B>(&client, Req::get(server.url("/g")));
    assert_eq!(resp.body, b"after head");
    assert_eq!(server.accepted(), 1);
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "HEAD", "GET"]);
    settle(&server);
}

/// 204 and 304 (the 304 with a stray `Content-Length`) have empty bodies and
/// leave the connection reusable.
pub fn no_body_statuses_204_304<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(204, &[("X-A", "1")], b"")),
        Step::ReadRequest,
        Step::Write(response(
            304,
            &[("Content-Length", "100"), ("ETag", "\"v1\"")],
            b"",
        )),
        Step::ReadRequest,
        Step::Write(ok(b"third")),
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/a")));
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert!(resp.body.is_empty());
    let resp = send_ok::<B>(&client, Req::get(server.url("/b")));
    assert_eq!(resp.status, StatusCode::NOT_MODIFIED);
    assert!(resp.body.is_empty());
    assert_eq!(resp.headers["etag"], "\"v1\"");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/c"))).body,
        b"third"
    );
    assert_eq!(server.accepted(), 1);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 2));
    settle(&server);
}

/// Interim 1xx responses (103) before the final one are skipped.
pub fn interim_103_skipped<B: Backend>() {
    let mut reply = raw("HTTP/1.1 103 Early Hints\nLink: </s.css>; rel=preload", b"");
    reply.extend_from_slice(&ok(b"final"));
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(reply),
        Step::ReadRequest,
        Step::Write(ok(b"next")),
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body, b"final");
    assert!(!resp.headers.contains_key("link"), "1xx fields leaked");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// `Expect: 100-continue`, server answers `100 Continue`: the body follows
/// and arrives exactly; the connection is reused.
pub fn expect_continue_accepted<B: Backend>() {
    let body = pattern(30_000);
    let server = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::Write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Step::ReadBody,
        Step::Write(ok(b"stored")),
        Step::ReadRequest,
        Step::Write(ok(b"next")),
    ]]);
    let client = B::client(test_config());
    let req = with_body(Method::POST, server.url("/up"), &body).header("Expect", "100-continue");
    let resp = send_ok::<B>(&client, req);
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body, b"stored");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    let requests = server.requests();
    assert_eq!(requests[0].header("expect"), Some("100-continue"));
    assert_eq!(requests[0].header("content-length"), Some("30000"));
    assert!(requests[0].body == body, "uploaded body differs");
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// `Expect: 100-continue` and no `100` within the continue timeout: the body
/// is sent anyway, after that timeout.
pub fn expect_continue_timeout_sends_body<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::ReadBody,
        Step::Write(ok(b"late")),
    ]]);
    let mut config = test_config();
    config.conn = config.conn.continue_timeout(Duration::from_millis(100));
    let client = B::client(config);
    let started = Instant::now();
    let req =
        with_body(Method::PUT, server.url("/up"), b"payload").header("Expect", "100-continue");
    assert_eq!(send_ok::<B>(&client, req).body, b"late");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(90),
        "body sent early ({took:?})"
    );
    assert!(took < Duration::from_secs(5), "too slow ({took:?})");
    assert_eq!(server.requests()[0].body, b"payload");
    settle(&server);
}

/// `Expect: 100-continue` answered with a final status at once (417, 401):
/// the client returns it, never sends the body, and closes the connection.
pub fn expect_continue_rejected<B: Backend>() {
    for status in [417u16, 401] {
        let server = ScriptServer::start(vec![
            vec![
                Step::ReadHead,
                Step::Write(response(status, &[("Content-Length", "4")], b"nope")),
                // Any body byte the client sent would fail this step.
                Step::ExpectEof,
            ],
            vec![Step::ReadRequest, Step::Write(ok(b"next"))],
        ]);
        let client = B::client(test_config());
        let req = with_body(Method::POST, server.url("/up"), &pattern(10_000))
            .header("Expect", "100-continue");
        let resp = send_ok::<B>(&client, req);
        assert_eq!(resp.status.as_u16(), status);
        assert_eq!(resp.body, b"nope");
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/"))).body,
            b"next"
        );
        assert_eq!(server.accepted(), 2, "{status}: connection not reused");
        settle(&server);
        let requests = server.requests();
        assert!(requests[0].body.is_empty() && requests[0].raw_body.is_empty());
        let stats = B::stats(&client);
        assert_eq!(closed(&stats, CloseReason::BodyNotSent), 1, "{stats:?}");
    }
}

/// A body dropped early with little left is drained: the connection is
/// reused. Both a sized body and a chunked one.
pub fn early_drop_small_body_drained<B: Backend>() {
    let body = pattern(10_000);
    let pieces: Vec<&[u8]> = body.chunks(1_000).collect();
    let server = ScriptServer::start(vec![held(vec![
        Step::ReadRequest,
        Step::Write(ok(&body)),
        Step::ReadRequest,
        Step::Write(chunked(&pieces, &[("X-T", "1")])),
        Step::ReadRequest,
        Step::Write(ok(b"next")),
    ])]);
    let client = B::client(test_config());
    for _ in 0..2 {
        let resp = send_ok::<B>(
            &client,
            Req::get(server.url("/big")).read(ReadMode::DropAfter(100)),
        );
        assert!(resp.body.len() >= 100 && body.starts_with(&resp.body));
    }
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 1);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 2));
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    settle_held(client, &server);
}

/// Draining an abandoned body is bounded by the drain timeout: when the rest
/// does not come, the drop returns soon and the connection is closed.
pub fn early_drop_drain_bounded<B: Backend>() {
    let mut reply = response(200, &[("Content-Length", "1000")], b"");
    reply.extend_from_slice(&[b'x'; 200]);
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(reply), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.conn = config.conn.drain_timeout(Duration::from_millis(100));
    let client = B::client(config);
    let started = Instant::now();
    let req = Req::get(server.url("/")).read(ReadMode::DropAfter(50));
    assert!(send_ok::<B>(&client, req).body.len() >= 50);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "drain not bounded: {took:?}");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Abandoned), 1, "{stats:?}");
    settle(&server);
}

/// A body dropped early with much left (10 MB announced) closes the
/// connection: the next request dials and the close counts as `Abandoned`.
pub fn early_drop_large_body_closes<B: Backend>() {
    let mut reply = response(200, &[("Content-Length", "10000000")], b"");
    reply.extend_from_slice(&pattern(32 * 1024));
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(reply), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let client = B::client(test_config());
    let started = Instant::now();
    let resp = send_ok::<B>(
        &client,
        Req::get(server.url("/huge")).read(ReadMode::DropAfter(100)),
    );
    assert!(resp.body.len() >= 100);
    assert!(pattern(resp.body.len()) == resp.body);
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "slow abandon");
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Abandoned), 1, "{stats:?}");
    assert_eq!(stats.dials, 2);
    settle(&server);
}

/// A body shorter than its `Content-Length`, then the server closes:
/// `ClosedEarly` in the body phase.
pub fn body_shorter_than_content_length<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(200, &[("Content-Length", "100")], &[b'x'; 50])),
            Step::Close,
        ],
        held(vec![Step::ReadRequest, Step::Write(ok(b"next"))]),
    ]);
    let client = B::client(test_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::Body,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.in_use, stats.idle, stats.dials),
        (0, 1, 2),
        "{stats:?}"
    );
    settle_held(client, &server);
}

/// The server resets the connection in the middle of a body: an error in the
/// body phase, and the pool is left consistent.
pub fn reset_mid_body<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(200, &[("Content-Length", "100")], b"0123456789")),
        Step::Sleep(Duration::from_millis(30)),
        Step::Reset,
    ]]);
    let client = B::client(test_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::Body,
                ..
            } | Error::Io {
                phase: Phase::Body,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.reached_server());
    let stats = B::stats(&client);
    assert_eq!((stats.in_use, stats.idle), (0, 0), "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");
    settle(&server);
}

/// The first connection's script for the stale cases: one answered request,
/// then the server closes the idle connection.
fn answer_then_close() -> Vec<Step> {
    vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::Close]
}

/// A config whose stale probe never runs (connections are younger than it).
fn no_probe_config() -> roundtrip_io::Config {
    let mut config = test_config();
    config.stale_check_after = Duration::from_secs(3600);
    config
}

/// How long a mio case waits for its loop to drop a connection the server
/// closed while idle.
const DROP_BOUND: Duration = Duration::from_secs(2);

/// Closes dropped when the server closed an idle connection: `Stale` when
/// the close was seen while idle, `PeerClosed` when mio saw it come with the
/// response and did not pool the connection.
fn closed_by_server(stats: &PoolStats) -> u64 {
    closed(stats, CloseReason::Stale) + closed(stats, CloseReason::PeerClosed)
}

/// The server closed an idle pooled connection and the probe notices before
/// reuse (idle longer than `stale_check_after`): GET and POST go out on a new
/// connection, each exactly once. Blocking and tokio take the dead connection
/// from the pool and the probe closes it (`Stale`); mio already dropped it at
/// the close event, so it is never taken.
pub fn stale_idle_probe_redials<B: Backend>() {
    for method in [Method::GET, Method::POST] {
        let server = ScriptServer::start(vec![
            answer_then_close(),
            held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
        ]);
        let config = test_config();
        let wait = config.stale_check_after + Duration::from_millis(30);
        let client = B::client(config);
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/"))).body,
            b"one"
        );
        assert!(server.wait_idle(SETTLE), "server did not close");
        thread::sleep(wait);
        if drops_closed_idle::<B>() {
            assert!(
                wait_no_idle::<B>(&client, DROP_BOUND),
                "{method}: still idle"
            );
        }
        let req = if method == Method::GET {
            Req::get(server.url("/x"))
        } else {
            with_body(method.clone(), server.url("/x"), b"data")
        };
        assert_eq!(send_ok::<B>(&client, req).body, b"two");
        assert_eq!(server.accepted(), 2);
        // The first request was a GET too; the second went out once.
        let want = if method == Method::GET { 2 } else { 1 };
        assert_eq!(server.count_method(method.as_str()), want);
        let stats = B::stats(&client);
        if drops_closed_idle::<B>() {
            assert_eq!(closed_by_server(&stats), 1, "{method}: {stats:?}");
            assert_eq!(stats.reuses, 0, "{method}: {stats:?}");
        } else {
            assert_eq!(closed(&stats, CloseReason::Stale), 1, "{method}: {stats:?}");
        }
        assert_eq!(stats.closed.total(), 1, "{method}: {stats:?}");
        assert_eq!(stats.dials, 2);
        settle_held(client, &server);
    }
}

/// The server closed an idle pooled connection and no probe runs: on
/// blocking and tokio the GET fails on the dead connection and is retried
/// transparently on a new one. Mio dropped the connection at the close
/// event: the GET dials at once, with no failed reuse.
pub fn stale_idle_get_retried_without_probe<B: Backend>() {
    let server = ScriptServer::start(vec![
        answer_then_close(),
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(no_probe_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    assert!(server.wait_idle(SETTLE), "server did not close");
    let drops = drops_closed_idle::<B>();
    if drops {
        assert!(wait_no_idle::<B>(&client, DROP_BOUND), "still idle");
    }
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    let reuses = if drops {
        assert_eq!(closed_by_server(&stats), 1, "{stats:?}");
        0
    } else {
        1
    };
    assert_eq!((stats.dials, stats.reuses), (2, reuses), "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");
    settle_held(client, &server);
}

/// The server closed an idle pooled connection and no probe runs: on
/// blocking and tokio a POST with a body goes out on the dead connection and
/// is not sent again; its error says it may have reached the server. Mio
/// dropped the connection at the close event, so the POST goes out once, on
/// a new connection, and succeeds.
pub fn stale_idle_post_not_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        answer_then_close(),
        // Only a new connection gets here: a (wrong) retry, or mio's dial.
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(no_probe_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    assert!(server.wait_idle(SETTLE), "server did not close");
    if drops_closed_idle::<B>() {
        assert!(wait_no_idle::<B>(&client, DROP_BOUND), "still idle");
        let req = with_body(Method::POST, server.url("/"), b"data");
        assert_eq!(send_ok::<B>(&client, req).body, b"two");
        assert_eq!(server.accepted(), 2);
        let posts: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| (r.conn, r.body))
            .collect();
        assert_eq!(posts, [(1, b"data".to_vec())], "the POST went out once");
        let stats = B::stats(&client);
        assert_eq!(
            (stats.dials, stats.reuses, stats.idle),
            (2, 0, 1),
            "{stats:?}"
        );
        assert_eq!(closed_by_server(&stats), 1, "{stats:?}");
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        return settle_held(client, &server);
    }
    let err = send_err::<B>(&client, with_body(Method::POST, server.url("/"), b"data"));
    assert!(err.reached_server(), "{err:?}");
    assert!(
        matches!(err, Error::ClosedEarly { .. } | Error::Io { .. }),
        "{err:?}"
    );
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "the POST was retried");
    // The dead connection's server side was gone: nobody read the POST.
    assert_eq!(server.count_method("POST"), 0);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.in_use, stats.idle),
        (1, 0, 0),
        "{stats:?}"
    );
    settle(&server);
}

/// The script of a server that answers one request, then reads the next and
/// closes without answering (it closes exactly when the client reuses).
fn close_on_reuse() -> Vec<Step> {
    vec![
        Step::ReadRequest,
        Step::Write(ok(b"one")),
        Step::ReadRequest,
        Step::Close,
    ]
}

/// The server reads the reused connection's GET and closes unanswered: the
/// GET is retried once on a new connection and succeeds.
pub fn close_on_reuse_get_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/a"))).body,
        b"one"
    );
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/b"))).body,
        b"two"
    );
    let conns: Vec<(usize, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.conn, r.target))
        .collect();
    assert_eq!(
        conns,
        [(0, "/a".into()), (0, "/b".into()), (1, "/b".into())]
    );
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::PeerClosed), 1, "{stats:?}");
    settle_held(client, &server);
}

/// A GET whose retry fails too is not retried a second time.
pub fn get_retried_at_most_once<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Close],
        vec![Step::ReadRequest, Step::Write(ok(b"third"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert!(matches!(err, Error::ClosedEarly { .. }), "{err:?}");
    assert!(err.reached_server());
    settle_accepts(&server, 2);
    assert_eq!(server.accepted(), 2, "retried more than once");
    assert_eq!(server.count_method("GET"), 3);
    settle(&server);
}

/// The server reads the reused connection's POST and closes unanswered: the
/// POST is not sent again; `ClosedEarly`, may have reached the server.
pub fn close_on_reuse_post_not_resent<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let err = send_err::<B>(&client, with_body(Method::POST, server.url("/"), b"data"));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "the POST was retried");
    assert_eq!(server.count_method("POST"), 1);
    assert_eq!(server.requests()[1].body, b"data");
    settle(&server);
}

/// An `Idempotency-Key` makes a POST safe to repeat: retried like a GET.
pub fn idempotency_key_post_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let req = with_body(Method::POST, server.url("/"), b"data").header("Idempotency-Key", "k-42");
    assert_eq!(send_ok::<B>(&client, req).body, b"two");
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(post.body, b"data");
        assert_eq!(post.header("idempotency-key"), Some("k-42"));
    }
    assert_eq!((posts[0].conn, posts[1].conn), (0, 1));
    settle(&server);
}

/// `max_conns_per_host = 2` under 8 threads × 25 requests: the server never
/// sees more than 2 connections and every request succeeds.
pub fn max_conns_per_host_honoured<B: Backend>() {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        Arc::new(move |req: &crate::server::Request| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            ok(req.target.as_bytes())
        })
    };
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(2));
    let client = B::client(config);
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start, url) = (client.clone(), Arc::clone(&start), server.url("/"));
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let path = format!("/{t}/{i}");
                    let resp = send_ok::<B>(&client, Req::get(format!("{url}{t}/{i}")));
                    assert_eq!(resp.body, path.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let stats = B::stats(&client);
    assert!(stats.dials <= 2, "{stats:?}");
    assert!(server.accepted() <= 2, "accepted {}", server.accepted());
    assert!(peak.load(Ordering::SeqCst) <= 2, "peak {peak:?}");
    assert_eq!(server.requests().len(), THREADS * EACH);
    assert_eq!(stats.dials + stats.reuses, (THREADS * EACH) as u64);
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    server.assert_no_errors();
}

/// `max_conns_per_host = 1` with a server that closes after every response:
/// each freed slot becomes a dial for the next waiter; 4 threads × 5
/// requests all succeed, one connection at a time.
pub fn max_conns_with_closing_server<B: Backend>() {
    const THREADS: usize = 4;
    const EACH: usize = 5;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        Arc::new(move |req: &crate::server::Request| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let len = req.target.len().to_string();
            response(
                200,
                &[("Content-Length", &len), ("Connection", "close")],
                req.target.as_bytes(),
            )
        })
    };
    // Serve ends when the client closes after reading the response.
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(1));
    let client = B::client(config);
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start, base) = (client.clone(), Arc::clone(&start), server.url("/"));
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let resp = send_ok::<B>(&client, Req::get(format!("{base}{t}-{i}")));
                    assert_eq!(resp.body, format!("/{t}-{i}").as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let total = (THREADS * EACH) as u64;
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (total, 0), "{stats:?}");
    assert_eq!(closed(&stats, CloseReason::ServerClose), total, "{stats:?}");
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters, stats.idle),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(server.accepted() as u64, total);
    settle(&server);
}

/// A request waiting for a connection slot (`max_conns_per_host = 1`, the
/// only connection busy draining) gives up at its `timeout` with
/// `Timeout { phase: PoolWait }`, and leaves no waiter behind.
pub fn pool_wait_bounded_by_timeout<B: Backend>() {
    let mut reply = response(200, &[("Content-Length", "200")], b"");
    reply.extend_from_slice(&[b'x'; 100]);
    let server = ScriptServer::start(vec![held(vec![
        Step::ReadRequest,
        Step::Write(reply),
        // The holder reads slowly: the connection stays in use meanwhile.
        Step::Sleep(Duration::from_millis(600)),
        Step::Write(vec![b'x'; 100]),
    ])]);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(1));
    config.timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let holder = {
        let (client, url) = (client.clone(), server.url("/hold"));
        thread::spawn(move || {
            // Its own deadline outlasts the slow body.
            let req = Req::get(url).timeout(Some(Duration::from_secs(5)));
            assert_eq!(send_ok::<B>(&client, req).body.len(), 200);
        })
    };
    // Until the holder's request is on the wire, the connection may be free.
    let deadline = Instant::now() + SETTLE;
    while server.requests().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get(server.url("/wait")));
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::Total, Phase::PoolWait, false, B::NAME);
    assert!(took >= Duration::from_millis(190), "fired early: {took:?}");
    assert!(took < Duration::from_millis(1500), "fired late: {took:?}");
    assert_eq!(B::stats(&client).waiters, 0);
    holder.join().expect("holder thread");
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.in_use, stats.dialing, stats.waiters),
        (1, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(
        stats.idle, 1,
        "the holder's connection went back: {stats:?}"
    );
    assert_eq!(server.requests().len(), 1);
    settle_held(client, &server);
}

/// An idle connection older than the pool's idle timeout is closed; the next
/// request dials anew.
pub fn idle_timeout_expires<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let mut config = test_config();
    config.pool = config.pool.idle_timeout(Some(Duration::from_millis(100)));
    let client = B::client(config);
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    thread::sleep(Duration::from_millis(250));
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert!(closed(&stats, CloseReason::IdleTimeout) >= 1, "{stats:?}");
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    settle(&server);
}

/// `Keep-Alive: timeout=N` from the server: with the default 1 s margin,
/// `timeout=5` keeps the connection and `timeout=1` expires it at once.
pub fn keep_alive_hint_honoured<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[
                    ("Content-Length", "1"),
                    ("Keep-Alive", "timeout=5, max=100"),
                ],
                b"a",
            )),
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[("Content-Length", "1"), ("Keep-Alive", "timeout=1")],
                b"b",
            )),
            Step::ExpectEof,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"c"))],
    ]);
    let client = B::client(test_config());
    for want in [b"a", b"b", b"c"] {
        assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, want);
    }
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(
        closed(&stats, CloseReason::KeepAliveTimeout),
        1,
        "{stats:?}"
    );
    assert_eq!((stats.dials, stats.reuses), (2, 1), "{stats:?}");
    settle(&server);
}

/// A server that reads the request and stalls: the response-head timeout
/// fires in time, and the connection is not reused.
pub fn response_head_timeout<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.response_head_timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let (early, late) = (Duration::from_millis(190), Duration::from_secs(3));
    assert_head_timeout::<B>(&client, server.url("/"), early, late);
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Timeout), 1, "{stats:?}");
    settle(&server);
}

/// The read timeout bounds a stalled body: `Timeout` in the body phase.
pub fn body_read_timeout<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(200, &[("Content-Length", "100")], b"0123456789")),
            Step::ExpectEof,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.read_timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::ReadIdle, Phase::Body, true, B::NAME);
    assert!(took >= Duration::from_millis(190), "fired early: {took:?}");
    assert!(took < Duration::from_secs(3), "fired late: {took:?}");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Timeout), 1, "{stats:?}");
    settle(&server);
}

/// A response head of 100 KiB against the default 64 KiB limit:
/// `LimitExceeded`, and the connection is dropped.
pub fn oversized_head_rejected<B: Backend>() {
    let value = "v".repeat(1000);
    let names: Vec<String> = (0..100).map(|i| format!("X-Pad-{i}")).collect();
    let mut fields: Vec<(&str, &str)> =
        names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    fields.push(("Content-Length", "0"));
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(200, &fields, b"")),
            Step::ExpectEof,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let client = B::client(test_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    assert!(server.wait_idle(SETTLE));
    // The client closes with the rest of the head unread, so the kernel may
    // reset the first connection while its write is still going: only the
    // second connection's script must be clean.
    let errors: Vec<_> = server
        .errors()
        .into_iter()
        .filter(|e| e.conn != 0)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Bytes after a complete response (nobody asked for them) make the
/// connection unusable.
pub fn unsolicited_bytes_not_reused<B: Backend>() {
    let mut reply = ok(b"hi");
    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(reply), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, b"hi");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(
        closed(&stats, CloseReason::UnsolicitedBytes),
        1,
        "{stats:?}"
    );
    settle(&server);
}

/// A request head as the server saw it: method, target with query, Host,
/// the user's headers and the default User-Agent, a sized body.
pub fn request_head_and_body_exact<B: Backend>() {
    let server = ScriptServer::start(vec![vec![Step::Repeat(
        3,
        vec![Step::ReadRequest, Step::Write(ok(b""))],
    )]]);
    let client = B::client(test_config());
    let req = with_body(Method::PUT, server.url("/p/a?x=1&y=%20"), b"0123456789")
        .header("X-Custom", "v1")
        .header("X-Custom", "v2");
    let resp = send_ok::<B>(&client, req);
    assert!(resp.body.is_empty());
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("PUT", "/p/a?x=1&y=%20")
    );
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.header("host"), Some(server.addr().to_string().as_str()));
    assert_eq!(r.header_all("x-custom"), ["v1", "v2"]);
    assert!(
        r.header("user-agent")
            .is_some_and(|v| v.starts_with("roundtrip/"))
    );
    assert_eq!(r.header("content-length"), Some("10"));
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.body, b"0123456789");
    // No body: POST announces an empty one, GET none at all.
    send_ok::<B>(&client, Req::new(Method::POST, server.url("/e")));
    send_ok::<B>(&client, Req::get(server.url("/g")));
    let requests = server.requests();
    assert_eq!(requests[1].header("content-length"), Some("0"));
    assert!(requests[2].header("content-length").is_none());
    assert!(requests[2].header("transfer-encoding").is_none());
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// A streamed body of unknown length goes chunked and arrives exactly.
pub fn chunked_request_body<B: Backend>() {
    let data = pattern(200_000);
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"got")),
        Step::ReadRequest,
        Step::Write(ok(b"next")),
        Step::ReadRequest,
        Step::Write(ok(b"empty")),
    ]]);
    let client = B::client(test_config());
    let req = Req::new(Method::POST, server.url("/up")).body(ReqBody::Stream {
        data: data.clone(),
        piece: 7_000,
        sized: false,
    });
    assert_eq!(send_ok::<B>(&client, req).body, b"got");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    let r = &server.requests()[0];
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.header("content-length").is_none());
    assert!(r.body == data, "chunked upload differs");
    assert!(r.raw_body.ends_with(b"\r\n0\r\n\r\n"));
    // An empty stream of unknown length is the last chunk alone.
    let req = Req::new(Method::POST, server.url("/empty")).body(ReqBody::Stream {
        data: Vec::new(),
        piece: 10,
        sized: false,
    });
    assert_eq!(send_ok::<B>(&client, req).body, b"empty");
    let r = &server.requests()[2];
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.raw_body, b"0\r\n\r\n");
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// A streamed body of declared length goes with `Content-Length` and
/// arrives exactly.
pub fn sized_stream_request_body<B: Backend>() {
    let data = pattern(300_001);
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"got")),
        Step::ReadRequest,
        Step::Write(ok(b"next")),
    ]]);
    let client = B::client(test_config());
    let req = Req::new(Method::PUT, server.url("/up")).body(ReqBody::Stream {
        data: data.clone(),
        piece: 4_096,
        sized: true,
    });
    assert_eq!(send_ok::<B>(&client, req).body, b"got");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    let r = &server.requests()[0];
    assert_eq!(r.header("content-length"), Some("300001"));
    assert!(r.header("transfer-encoding").is_none());
    assert!(r.body == data, "sized upload differs");
    assert_eq!(server.accepted(), 1);
    settle(&server);
}

/// A request with the user's `Connection: close`: the client closes the
/// connection after the response (the server waits for that EOF).
pub fn request_connection_close_not_reused<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let client = B::client(test_config());
    let req = Req::get(server.url("/")).header("Connection", "close");
    assert_eq!(send_ok::<B>(&client, req).body, b"one");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.requests()[0].header("connection"), Some("close"));
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::ClientClose), 1, "{stats:?}");
    settle(&server);
}

/// `keep_alive = false`: every request says `Connection: close` and gets its
/// own connection.
pub fn keep_alive_off_sends_close<B: Backend>() {
    let script = vec![Step::ReadRequest, Step::Write(ok(b"x")), Step::ExpectEof];
    let server = ScriptServer::start(vec![script.clone(), script.clone(), script]);
    let mut config = test_config();
    config.keep_alive = false;
    let client = B::client(config);
    for _ in 0..3 {
        assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, b"x");
    }
    assert_eq!(server.accepted(), 3);
    settle(&server);
    for r in server.requests() {
        assert_eq!(r.header("connection"), Some("close"));
    }
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses, stats.idle), (3, 0, 0));
    assert_eq!(closed(&stats, CloseReason::ClientClose), 3, "{stats:?}");
}

/// A PUT is idempotent: on a connection the server closes at reuse, it is
/// retried when its body is in memory, but not when the body was streamed
/// (the reader cannot be replayed).
pub fn put_retry_needs_replayable_body<B: Backend>() {
    for streamed in [false, true] {
        let server = ScriptServer::start(vec![
            close_on_reuse(),
            vec![Step::ReadRequest, Step::Write(ok(b"two"))],
        ]);
        let client = B::client(test_config());
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/"))).body,
            b"one"
        );
        let data = pattern(1_000);
        let body = if streamed {
            ReqBody::Stream {
                data: data.clone(),
                piece: 100,
                sized: true,
            }
        } else {
            ReqBody::Bytes(data.clone())
        };
        let req = Req::new(Method::PUT, server.url("/p")).body(body);
        if streamed {
            let err = send_err::<B>(&client, req);
            assert!(matches!(err, Error::ClosedEarly { .. }), "{err:?}");
            assert!(err.reached_server());
            settle_accepts(&server, 1);
            assert_eq!(server.accepted(), 1, "streamed PUT retried");
        } else {
            assert_eq!(send_ok::<B>(&client, req).body, b"two");
        }
        let puts: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .collect();
        assert_eq!(puts.len(), if streamed { 1 } else { 2 });
        assert!(puts.iter().all(|r| r.body == data), "PUT body differs");
        settle(&server);
    }
}

/// Nothing listens: `Error::Connect`, the request did not reach a server,
/// and the pool holds no slot for it afterwards.
pub fn connect_refused<B: Backend>() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local_addr").port()
    };
    let client = B::client(test_config());
    for _ in 0..2 {
        let err = send_err::<B>(&client, Req::get(format!("http://127.0.0.1:{port}/")));
        assert!(matches!(err, Error::Connect { .. }), "{err:?}");
        assert!(!err.reached_server());
    }
    let stats = B::stats(&client);
    assert_eq!(
        (
            stats.dials,
            stats.dialing,
            stats.in_use,
            stats.idle,
            stats.waiters
        ),
        (0, 0, 0, 0, 0),
        "{stats:?}"
    );
}

/// A loopback listener that never accepts, with its accept queue full: the
/// kernel drops further SYNs, so a connect to it hangs until the client's
/// own timeout. Kept alive (with the queued connections) while in scope.
struct Jammed {
    addr: std::net::SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<std::net::TcpStream>,
}

impl Jammed {
    fn new() -> Jammed {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
        listener.bind(&any.into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("local_addr");
        let mut queued = Vec::new();
        // Bounded: the queue holds a connection or two before SYNs drop.
        for _ in 0..64 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Jammed {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    };
                }
                Err(e) => panic!("filling the accept queue: {e}"),
            }
        }
        panic!("the accept queue of a backlog-0 listener never filled");
    }
}

/// A connect that hangs: `connect_timeout` fires as its own kind, in the
/// connect phase, nothing sent, and the pool's books stay clean. With a
/// request `timeout` shorter than it, the same wait is the total kind.
pub fn connect_timeout<B: Backend>() {
    let jam = Jammed::new();
    let mut config = test_config();
    config.connect_timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let url = format!("http://{}/", jam.addr);
    for (timeout, kind) in [
        (None, TimeoutKind::Connect),
        (Some(Duration::from_millis(100)), TimeoutKind::Total),
    ] {
        let started = Instant::now();
        let err = send_err::<B>(&client, Req::get(url.clone()).timeout(timeout));
        let took = started.elapsed();
        assert_timeout(&err, kind, Phase::Connect, false, B::NAME);
        let limit = timeout.unwrap_or(Duration::from_millis(200));
        assert!(took >= limit - Duration::from_millis(10), "early: {took:?}");
        assert!(took < Duration::from_secs(3), "late: {took:?}");
    }
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dialing, stats.in_use, stats.idle, stats.waiters),
        (0, 0, 0, 0),
        "{}: {stats:?}",
        B::NAME
    );
}

/// Requests refused before anything is sent: `InvalidRequest`, not reached.
pub fn invalid_requests_not_sent<B: Backend>() {
    let server = ScriptServer::start(vec![held(vec![
        Step::ReadRequest,
        Step::Write(ok(b"fine")),
    ])]);
    let client = B::client(test_config());
    let bad = [
        Req::get(format!("https://{}/", server.addr())),
        with_body(Method::POST, server.url("/"), b"abc").header("Content-Length", "5"),
        Req::get(server.url("/")).header("X-Bad", "a\nb"),
        Req::get(server.url("/")).header("Transfer-Encoding", "gzip"),
    ];
    for req in bad {
        let what = format!("{req:?}");
        let err = send_err::<B>(&client, req);
        assert!(matches!(err, Error::InvalidRequest(_)), "{what}: {err:?}");
        assert!(!err.reached_server());
    }
    // The client is still fine, and the refusals left no trace on the wire.
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"fine"
    );
    assert_eq!(server.requests().len(), 1);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.in_use, stats.idle),
        (1, 0, 1),
        "{stats:?}"
    );
    settle_held(client, &server);
}

/// The response-head timeout counts from the request's end, so a head that
/// trickles in (a byte every 50 ms) still times out.
pub fn response_head_timeout_trickled_head<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::WriteSlowly {
                bytes: ok(b"slow"),
                every: Duration::from_millis(50),
            },
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.response_head_timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let (early, late) = (Duration::from_millis(190), Duration::from_millis(1500));
    assert_head_timeout::<B>(&client, server.url("/"), early, late);
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    assert!(server.wait_idle(SETTLE));
    // The first script's writes fail once the client gave up; that is fine.
    let errors: Vec<_> = server
        .errors()
        .into_iter()
        .filter(|e| e.conn != 0)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The whole-request `timeout` also bounds a body that keeps trickling in
/// (so the read timeout never fires).
pub fn total_timeout_bounds_slow_body<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(200, &[("Content-Length", "100")], b"")),
            Step::WriteSlowly {
                bytes: vec![b'z'; 100],
                every: Duration::from_millis(20),
            },
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.timeout = Some(Duration::from_millis(300));
    let client = B::client(config);
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::Total, Phase::Body, true, B::NAME);
    assert!(took >= Duration::from_millis(290), "fired early: {took:?}");
    assert!(took < Duration::from_millis(1500), "fired late: {took:?}");
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"next"
    );
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::Timeout), 1, "{stats:?}");
    assert!(server.wait_idle(SETTLE));
    let errors: Vec<_> = server
        .errors()
        .into_iter()
        .filter(|e| e.conn != 0)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The body of request `n` in the stress case: its own length and bytes.
fn stress_body(n: usize) -> Vec<u8> {
    let len = (n * 37) % 4001;
    (0..len).map(|k| ((k + n) % 251) as u8).collect()
}

/// 8 threads × 1000 keep-alive requests, bodies of varying size checked
/// exactly, then the pool's books balance.
pub fn stress_keep_alive<B: Backend>() {
    const THREADS: usize = 8;
    const EACH: usize = 1000;
    let handler = Arc::new(|req: &crate::server::Request| {
        let n: usize = req.target[1..].parse().expect("numeric target");
        ok(&stress_body(n))
    });
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let client = B::client(test_config());
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start) = (client.clone(), Arc::clone(&start));
            let base = server.url("/");
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let n = t * EACH + i;
                    let resp = send_ok::<B>(&client, Req::get(format!("{base}{n}")));
                    assert!(resp.body == stress_body(n), "request {n}: body differs");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let stats = B::stats(&client);
    // No cap and each thread holds one connection at a time: a dial happens
    // only when no connection is idle, i.e. all are held by other threads.
    assert!(stats.dials <= THREADS as u64, "{stats:?}");
    assert!(stats.idle as u64 <= stats.dials, "{stats:?}");
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    // Every checkout that got a connection is a dial or a reuse; nothing was
    // closed, so nothing was retried.
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    assert_eq!(
        stats.dials + stats.reuses,
        (THREADS * EACH) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.idle as u64, stats.dials, "{stats:?}");
    assert_eq!(server.accepted() as u64, stats.dials);
    assert_eq!(server.requests().len(), THREADS * EACH);
    server.assert_no_errors();
}

/// nginx: 350 GETs on one client although nginx closes every 100 requests
/// (`keepalive_requests 100`), then exact bodies of 64 KiB and 1 MiB.
pub fn nginx_real_server<B: Backend>() {
    let nginx = crate::require_nginx!();
    let client = B::client(test_config());
    for i in 0..350 {
        let resp = B::send(&client, Req::get(nginx.url("/small")))
            .unwrap_or_else(|e| panic!("request {i}: {e}\n{}", nginx.error_log()));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body, b"Hello, world!");
    }
    let stats = B::stats(&client);
    assert_eq!(stats.dials, 4, "{stats:?}");
    assert_eq!(stats.reuses, 346, "{stats:?}");
    assert_eq!(closed(&stats, CloseReason::ServerClose), 3, "{stats:?}");
    assert_eq!(stats.closed.total(), 3, "{stats:?}");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/64k")));
    assert!(resp.body == pattern(64 * 1024), "/64k differs");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/1m")));
    assert!(resp.body == pattern(1024 * 1024), "/1m differs");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/chunked")));
    assert!(resp.body == chunked_text(), "/chunked differs");
    if nginx.has_chunked_plain() {
        let resp = send_ok::<B>(&client, Req::get(nginx.url("/chunked-plain")));
        assert_eq!(resp.headers["transfer-encoding"], "chunked");
        assert!(resp.body == chunked_text(), "/chunked-plain differs");
    } else {
        crate::fixtures::skip_loudly("nginx has no ngx_http_sub_module: /chunked-plain not tested");
    }
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/missing")));
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(B::stats(&client).dials, 4, "{:?}", B::stats(&client));
}

/// Python's `http.server` (HTTP/1.0, closes after each response): every GET
/// succeeds on a new connection, bodies exact.
pub fn python_http10_server<B: Backend>() {
    let py = crate::require_python!();
    let client = B::client(test_config());
    for (i, (path, want)) in [
        ("/small", b"Hello, world!".to_vec()),
        ("/64k", pattern(64 * 1024)),
        ("/small", b"Hello, world!".to_vec()),
        ("/1m", pattern(1024 * 1024)),
        ("/small", b"Hello, world!".to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = B::send(&client, Req::get(py.url(path)))
            .unwrap_or_else(|e| panic!("request {i} {path}: {e}\n{}", py.log()));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.version, Version::HTTP_10);
        assert!(resp.body == want, "{path} differs");
    }
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle),
        (5, 0, 0),
        "{stats:?}"
    );
    assert_eq!(closed(&stats, CloseReason::Http10), 5, "{stats:?}");
}

/// Stamps every case of the suite into `#[test]` functions for a backend.
#[macro_export]
macro_rules! backend_suite {
    ($backend:ty) => {
        $crate::backend_suite!(@cases $backend;
            keep_alive_100,
            server_connection_close_redials,
            http10_response_not_reused,
            http10_keep_alive_reused,
            close_delimited_body,
            chunked_with_trailers,
            response_trickled_byte_by_byte,
            head_with_content_length_reused,
            no_body_statuses_204_304,
            interim_103_skipped,
            expect_continue_accepted,
            expect_continue_timeout_sends_body,
            expect_continue_rejected,
            early_drop_small_body_drained,
            early_drop_large_body_closes,
            early_drop_drain_bounded,
            body_shorter_than_content_length,
            reset_mid_body,
            stale_idle_probe_redials,
            stale_idle_get_retried_without_probe,
            stale_idle_post_not_retried,
            close_on_reuse_get_retried,
            get_retried_at_most_once,
            close_on_reuse_post_not_resent,
            idempotency_key_post_retried,
            max_conns_per_host_honoured,
            max_conns_with_closing_server,
            pool_wait_bounded_by_timeout,
            idle_timeout_expires,
            keep_alive_hint_honoured,
            response_head_timeout,
            body_read_timeout,
            oversized_head_rejected,
            unsolicited_bytes_not_reused,
            request_head_and_body_exact,
            chunked_request_body,
            sized_stream_request_body,
            request_connection_close_not_reused,
            keep_alive_off_sends_close,
            put_retry_needs_replayable_body,
            connect_refused,
            connect_timeout,
            invalid_requests_not_sent,
            response_head_timeout_trickled_head,
            total_timeout_bounds_slow_body,
            stress_keep_alive,
            nginx_real_server,
            python_http10_server,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::suite::$case::<$backend>();
            }
        )*
    };
}
