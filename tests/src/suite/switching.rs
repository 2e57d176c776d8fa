//! What ends the HTTP exchange on a connection (101, a 2xx to CONNECT), and
//! a request body that breaks its own declared length.

use super::*;

crate::cases! {
        /// Stamps the `switching` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_switching, list cases, path suite::switching;

/// A `101 Switching Protocols` answer ends the HTTP exchange: reading its
/// body ends at once and empty, however much the server sends after the
/// head (none of it is buffered), and the connection never returns to the
/// pool.
pub fn switched_body_ends_empty<B: Backend>() {
    let mut flood = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n".to_vec();
    flood.extend_from_slice(&vec![b'x'; 256 * 1024]);
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(flood),
        Step::Sleep(Duration::from_secs(3)),
    ]]);
    let client = B::client(test_config());
    let started = Instant::now();
    let req = Req::get(server.url("/chat"))
        .header("connection", "upgrade")
        .header("upgrade", "test");
    let resp = send_ok::<B>(&client, req);
    assert_eq!(resp.status, StatusCode::SWITCHING_PROTOCOLS);
    assert!(resp.body.is_empty(), "{}: {} body bytes", B::NAME, resp.body.len());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{}: took {took:?}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{}: {stats:?}", B::NAME);
    assert_eq!(closed(&stats, CloseReason::Switched), 1, "{}: {stats:?}", B::NAME);
}

/// A 2xx answer to CONNECT is a tunnel: the body is empty, the exchange
/// ends at once, and the connection leaves the pool.
pub fn connect_2xx_ends_the_exchange<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::Write(b"HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes".to_vec()),
        Step::Sleep(Duration::from_secs(3)),
    ]]);
    let client = B::client(test_config());
    let started = Instant::now();
    let resp = send_ok::<B>(&client, Req::new(Method::CONNECT, server.url("")));
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.body.is_empty(), "{}: {:?}", B::NAME, resp.body);
    assert!(started.elapsed() < Duration::from_secs(2), "{}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{}: {stats:?}", B::NAME);
    assert_eq!(closed(&stats, CloseReason::Switched), 1, "{}: {stats:?}", B::NAME);
}

/// A streamed body that gives fewer bytes than its `Content-Length` fails
/// after the head was written: the error says the request may have
/// reached the server, and the connection is closed, never reused.
pub fn short_sized_body_fails_as_sent<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadHead,
            Step::ExpectBytes(b"abc".to_vec()),
            Step::ExpectEof,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let client = B::client(test_config());
    let req = Req::new(Method::POST, server.url("/up")).body(ReqBody::Declared {
        data: b"abc".to_vec(),
        declared: 5,
    });
    let err = send_err::<B>(&client, req);
    assert!(
        matches!(err, Error::BodyLength { declared: 5, supplied: 3, reached_server: true }),
        "{}: {err:?}",
        B::NAME
    );
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, b"next");
    assert_eq!(server.accepted(), 2, "{}: the broken connection was reused", B::NAME);
    settle(&server);
}

}
