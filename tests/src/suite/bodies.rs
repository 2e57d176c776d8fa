//! `Expect: 100-continue`, response bodies dropped early, bodies cut short.

use super::*;

crate::cases! {
        /// Stamps the `bodies` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_bodies, list cases, path suite::bodies;

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
    // The drain has the same bound on every backend (the blocking one
    // spends it in the drop, the async ones in a task): once it passed, the
    // connection is closed and the next request dials.
    std::thread::sleep(Duration::from_millis(150));
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
}
