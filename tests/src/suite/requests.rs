//! Requests as the server reads them: heads, body framings, `Connection: close`.

use super::*;

crate::cases! {
        /// Stamps the `requests` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_requests, list cases, path suite::requests;

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
    // A path and query in UTF-8 go percent-encoded.
    send_ok::<B>(&client, Req::get(server.url("/g/ü?q=é")));
    let requests = server.requests();
    assert_eq!(requests[2].target, "/g/%C3%BC?q=%C3%A9");
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
}
