//! The blocking backend: a `101 Switching Protocols` answer and a 2xx to
//! CONNECT end the HTTP exchange and hand the connection over; a sized
//! streamed body of the wrong length fails as sent and closes; a request
//! is cancelled from another thread.

use std::io::{Read, Write};
use std::thread;

use roundtrip_tests::peer::{echo, flood, serve};
use std::time::{Duration, Instant};

use roundtrip_blocking::{Body, Cancel, Client, Error};
use roundtrip_io::http;
use roundtrip_io::proto::CloseReason;

fn upgrade_request(url: &str) -> http::Request<Body> {
    http::Request::get(format!("{url}/chat"))
        .header("connection", "upgrade")
        .header("upgrade", "test")
        .body(Body::empty())
        .unwrap()
}

#[test]
fn a_101_body_ends_at_once_while_the_server_streams() {
    let url = serve(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n",
        flood,
    );
    let client = Client::new();
    let started = Instant::now();
    let mut response = client.execute(upgrade_request(&url)).unwrap();
    assert_eq!(response.status(), 101);
    let mut body = Vec::new();
    response.body_mut().read_to_end(&mut body).unwrap();
    assert!(body.is_empty(), "{} bytes", body.len());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(response);
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0));
    assert_eq!(stats.closed.get(CloseReason::Switched), 1);
}

#[test]
fn a_101_hands_over_the_bytes_after_the_head_then_the_socket() {
    let url = serve(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\nhello from the server|",
        echo,
    );
    let client = Client::new();
    let response = client.execute(upgrade_request(&url)).unwrap();
    let mut stream = response.into_body().upgrade().unwrap();
    stream.write_all(b"ping").unwrap();
    let mut got = vec![0u8; "hello from the server|ping".len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, b"hello from the server|ping");
    assert_eq!(client.stats().in_use, 0, "the pool let it go");
}

#[test]
fn a_2xx_to_connect_is_a_tunnel() {
    let url = serve(b"HTTP/1.1 200 Connection established\r\n\r\n", echo);
    let authority = url.trim_start_matches("http://").to_string();
    let request = http::Request::connect(format!("http://{authority}"))
        .body(Body::empty())
        .unwrap();
    let client = Client::new();
    let mut response = client.execute(request).unwrap();
    assert_eq!(response.status(), 200);
    let mut body = Vec::new();
    response.body_mut().read_to_end(&mut body).unwrap();
    assert!(body.is_empty());
    let mut tunnel = response.into_body().upgrade().unwrap();
    tunnel.write_all(b"through").unwrap();
    let mut got = [0u8; 7];
    tunnel.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"through");
}

#[test]
fn an_ordinary_response_cannot_be_upgraded() {
    let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", |_| {});
    let response = Client::new().get(&url).send().unwrap();
    assert!(matches!(
        response.into_body().upgrade(),
        Err(Error::NotUpgraded)
    ));
}

#[test]
fn a_sized_body_of_the_wrong_length_fails_as_sent_and_closes() {
    let url = serve(b"", |socket| {
        // Hold the connection: the client must fail on its own.
        thread::sleep(Duration::from_secs(2));
        drop(socket);
    });
    let client = Client::new();
    let body = Body::from_reader(std::io::Cursor::new(b"abc".to_vec()), Some(5));
    let request = http::Request::post(format!("{url}/up")).body(body).unwrap();
    let err = client.execute(request).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BodyLength {
                declared: 5,
                supplied: 3,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    assert!(err.reached_server());
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "not reused");
}

#[test]
fn cancel_from_another_thread_ends_a_blocked_request() {
    let url = serve(b"", |socket| {
        thread::sleep(Duration::from_secs(5));
        drop(socket);
    });
    let cancel = Cancel::new();
    let request = http::Request::get(format!("{url}/slow"))
        .extension(cancel.clone())
        .body(Body::empty())
        .unwrap();
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let client = Client::new();
    let started = Instant::now();
    let err = client.execute(request).unwrap_err();
    canceller.join().unwrap();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                phase: roundtrip_io::Phase::ResponseHead,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0));
}

/// Sends a chunked body that never ends (one chunk every 10 ms, bounded
/// by the peer's LIMIT).
fn endless_chunks(mut socket: std::net::TcpStream) {
    let until = Instant::now() + roundtrip_tests::peer::LIMIT;
    while Instant::now() < until && socket.write_all(b"400\r\n").is_ok() {
        if socket.write_all(&[b'x'; 0x400]).is_err() || socket.write_all(b"\r\n").is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The request's timeout holds while the server keeps sending: the body
/// fails with the total timeout, it does not stream for ever.
#[test]
fn the_total_timeout_ends_a_body_that_never_ends() {
    let url = serve(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        endless_chunks,
    );
    let client = Client::builder()
        .timeout(Some(Duration::from_secs(1)))
        .build();
    let started = Instant::now();
    let mut response = client.get(&url).send().unwrap();
    let err = response.body_mut().bytes(u64::MAX).unwrap_err();
    assert_eq!(
        err.timeout_kind(),
        Some(roundtrip_io::TimeoutKind::Total),
        "{err:?}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(client.stats().in_use, 0);
}

/// A request waiting for a connection (the host is at
/// `max_conns_per_host`) and cancelled from another thread ends at once,
/// and gives its place up: the next request gets the connection.
#[test]
fn cancel_while_waiting_for_a_connection_gives_the_place_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        // Bounded: three requests at most on this one connection.
        for delay in [600, 0, 0] {
            if matches!(socket.read(&mut buf), Ok(0) | Err(_)) {
                return;
            }
            thread::sleep(Duration::from_millis(delay));
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if socket.write_all(ok).is_err() {
                return;
            }
        }
    });
    let client = Client::builder().max_conns_per_host(Some(1)).build();
    let first = {
        let (client, url) = (client.clone(), url.clone());
        thread::spawn(move || {
            client
                .get(&url)
                .send()
                .and_then(|mut r| r.body_mut().text(16))
        })
    };
    // The first request holds the one connection (bounded: 5 s).
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what} within 5 s");
            thread::sleep(Duration::from_millis(2));
        }
    };
    until("the first request in use", &|| client.stats().in_use == 1);
    let cancel = Cancel::new();
    let waiting = {
        let (client, url, cancel) = (client.clone(), url.clone(), cancel.clone());
        thread::spawn(move || {
            let request = http::Request::get(&url)
                .extension(cancel)
                .body(Body::empty())
                .unwrap();
            let started = Instant::now();
            (client.execute(request).map(|_| ()), started.elapsed())
        })
    };
    until("the second request queued", &|| client.stats().waiters == 1);
    cancel.cancel();
    let (result, took) = waiting.join().unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Cancelled {
                phase: roundtrip_io::Phase::PoolWait,
                reached_server: false
            })
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_millis(400), "{took:?}");
    assert_eq!(first.join().unwrap().unwrap(), "ok");
    let next = client
        .get(&url)
        .send()
        .unwrap()
        .body_mut()
        .text(16)
        .unwrap();
    assert_eq!(next, "ok");
    let stats = client.stats();
    assert_eq!(
        (stats.dials, stats.in_use, stats.dialing, stats.waiters),
        (1, 0, 0, 0),
        "{stats:?}"
    );
}

/// Over `https` the TLS session goes on across the switch: the bytes that
/// came with the head, then a 100 KiB upload and a 70 KiB answer through
/// the session, then its `close_notify` (the server checks each byte).
#[test]
fn a_101_over_tls_goes_on_in_the_session() {
    use roundtrip_tests::peer::tls_switching_server;
    let server = tls_switching_server();
    let config = roundtrip_tests::tls_faults::trusting(roundtrip_tests::backend::test_config());
    let client = Client::builder().config(config).build();
    let response = client
        .execute(upgrade_request(&format!("https://{}", server.addr())))
        .unwrap();
    assert_eq!(response.status(), 101);
    let mut stream = response.into_body().upgrade().unwrap();
    talk_through(&mut stream).unwrap();
    assert!(stream.write_all(b"more").is_err(), "closed");
    drop(stream);
    assert!(server.wait_idle(Duration::from_secs(5)));
    server.assert_no_errors();
    assert_eq!(client.stats().in_use, 0, "the pool let it go");
}

/// What `tls_switching_server` wants through a switched `https` stream:
/// its hello read, the upload written, its answer read, then
/// `close_notify`.
fn talk_through(stream: &mut roundtrip_blocking::Upgraded) -> std::io::Result<()> {
    use roundtrip_tests::peer::{TLS_HELLO, tls_answer, tls_upload};
    assert!(stream.is_tls());
    let mut hello = vec![0u8; TLS_HELLO.len()];
    stream.read_exact(&mut hello)?;
    assert_eq!(hello, TLS_HELLO);
    stream.write_all(&tls_upload())?;
    stream.flush()?;
    let mut answer = vec![0u8; tls_answer().len()];
    stream.read_exact(&mut answer)?;
    assert!(answer == tls_answer(), "the answer differs");
    stream.close_notify()
}

/// An `https://` proxy relaying tunnels to loopback, and a client that
/// goes through it, trusting the test CA.
fn through_https_proxy() -> (roundtrip_tests::proxy_peers::RelayProxy, Client) {
    use roundtrip_io::proxy::{Proxies, Proxy};
    let relay =
        roundtrip_tests::proxy_peers::RelayProxy::start_tls(&roundtrip_tests::certs::pki().server);
    let mut config = roundtrip_tests::tls_faults::trusting(roundtrip_tests::backend::test_config());
    let proxy = Proxy::parse(&format!("https://{}", relay.addr())).unwrap();
    config.proxies = Proxies::all(proxy);
    (relay, Client::builder().config(config).build())
}

/// The same through an `https://` proxy's tunnel: the origin's session
/// runs inside the proxy's, and both go on across the switch (the
/// origin's records sealed into the proxy's, `close_notify` through both).
#[test]
fn a_101_over_tls_through_an_https_proxy_goes_on_in_both_sessions() {
    use roundtrip_tests::peer::tls_switching_server;
    let server = tls_switching_server();
    let (relay, client) = through_https_proxy();
    let response = client
        .execute(upgrade_request(&format!("https://{}", server.addr())))
        .unwrap();
    assert_eq!(response.status(), 101);
    let mut stream = response.into_body().upgrade().unwrap();
    if let Err(e) = talk_through(&mut stream) {
        server.wait_idle(Duration::from_secs(5));
        panic!(
            "{e}: server {:?}, relay {:?}",
            server.errors(),
            relay.errors()
        );
    }
    drop(stream);
    assert!(server.wait_idle(Duration::from_secs(5)));
    server.assert_no_errors();
    assert_eq!(relay.requests().len(), 1, "one CONNECT");
    assert_eq!(relay.errors(), Vec::<String>::new());
}

/// Through an `https://` proxy, an origin that closes without its
/// `close_notify` cuts the stream even though the proxy ends its own
/// session cleanly: the bytes before the close, then `UnexpectedEof`.
#[test]
fn a_switched_origin_cut_behind_an_https_proxy_is_not_a_clean_end() {
    use roundtrip_tests::server::Step;
    let server = roundtrip_tests::tls_server::TlsServer::new().start(vec![vec![
        Step::ReadHead,
        Step::Write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\nhello"
                .to_vec(),
        ),
        Step::Sleep(Duration::from_millis(100)),
        Step::CloseWithoutNotify,
    ]]);
    let (relay, client) = through_https_proxy();
    let response = client
        .execute(upgrade_request(&format!("https://{}", server.addr())))
        .unwrap();
    let mut stream = response.into_body().upgrade().unwrap();
    stream
        .socket_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let err = stream.read_to_end(&mut got).unwrap_err();
    assert_eq!(got, b"hello");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    drop(stream);
    assert!(server.wait_idle(Duration::from_secs(5)));
    server.assert_no_errors();
    assert_eq!(relay.requests().len(), 1, "one CONNECT");
}
