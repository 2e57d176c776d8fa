//! Responses on a kept-alive connection: framing, interim heads, when a connection is reused.

use super::*;

crate::cases! {
        /// Stamps the `responses` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_responses, list cases, path suite::responses;

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
}
