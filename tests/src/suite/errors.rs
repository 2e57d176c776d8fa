//! Exchanges that end in an error: deadlines, refused connects, oversized heads, invalid requests.

use super::*;

crate::cases! {
        /// Stamps the `errors` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_errors, list cases, path suite::errors;

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
        assert!(
            matches!(err, Error::Connect { proxy: false, .. }),
            "{err:?}"
        );
        assert!(!err.reached_server());
        assert!(err.is_connect() && !err.is_body() && !err.is_timeout(), "{err:?}");
    }
    // Through a proxy nothing listens on: the error says it was the proxy.
    let mut config = test_config();
    let proxy = roundtrip_io::proxy::Proxy::parse(&format!("http://127.0.0.1:{port}"));
    config.proxies = roundtrip_io::proxy::Proxies::all(proxy.expect("a proxy url"));
    let via = B::client(config);
    let err = send_err::<B>(&via, Req::get("http://origin.test/"));
    assert!(matches!(err, Error::Connect { proxy: true, .. }), "{err:?}");
    assert!(err.is_connect(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("connecting to proxy 127.0.0.1:{port} failed")),
        "{err}"
    );
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

/// A name with two addresses where nothing listens: `Error::Connect`
/// names every address tried and why each failed, in order, and the trace
/// has a `ConnectStart`/`ConnectDone` pair for each; the name was answered
/// by an override (no `DnsStart`).
pub fn connect_errors_name_every_address<B: Backend>() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local_addr").port()
    };
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    let mut config = test_config();
    config
        .resolver
        .add_override(&format!("two.test:{port}:127.0.0.1,127.0.0.2"))
        .expect("an override");
    config.trace = Some(roundtrip_io::Tracer::new(move |e| {
        seen.lock().expect("trace lock").push(e.clone())
    }));
    let client = B::client(config);
    let err = send_err::<B>(&client, Req::get(format!("http://two.test:{port}/")));
    let Error::Connect { tried, .. } = &err else {
        panic!("{}: {err:?}", B::NAME)
    };
    let addrs: Vec<_> = tried.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(
        addrs,
        [format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")],
        "{}",
        B::NAME
    );
    assert!(tried.iter().all(|(_, why)| why.contains("refused")), "{tried:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("tried 127.0.0.1:{port}: ")) && text.contains(&format!("; 127.0.0.2:{port}: ")),
        "{text}"
    );
    let events = events.lock().expect("trace lock");
    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
    let connects = names.iter().filter(|n| n.starts_with("Connect")).count();
    assert_eq!(connects, 4, "{}: {names:?}", B::NAME);
    assert!(!names.contains(&"DnsStart"), "{names:?}");
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
        Req::get(format!("ftp://{}/", server.addr())),
        Req::get(server.addr().to_string()).header("Authorization", "Bearer t0ken"),
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
}
