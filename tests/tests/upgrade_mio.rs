//! The mio backend: a `101 Switching Protocols` answer and a 2xx to
//! CONNECT end the HTTP exchange and hand the socket over
//! (`Driver::take_upgraded`); a sized streamed body of the wrong length
//! fails as sent and closes; a cancelled request releases its connection.
//! The cases of `upgrade_blocking.rs`, on one event loop.

use std::io::{Read, Write};
use std::thread;

use roundtrip_tests::peer::{echo, flood, serve};
use std::time::{Duration, Instant};

use roundtrip_io::proto::CloseReason;
use roundtrip_mio::mio::{Events, Interest, Poll, Token};
use roundtrip_mio::{Body, Driver, Error, Finished, RequestId, http};

/// Bound on every wait of a case.
const BOUND: Duration = Duration::from_secs(5);

fn driver() -> Driver {
    Driver::builder()
        .timeout(Some(BOUND))
        .build()
        .expect("a driver")
}

/// Turns the loop until the exchange `id` finished; panics after [`BOUND`].
fn finish(driver: &mut Driver, id: RequestId) -> Finished {
    let deadline = Instant::now() + BOUND;
    // Bounded by the deadline.
    loop {
        if let Some(done) = driver.take_finished() {
            assert_eq!(done.0, id);
            return done;
        }
        assert!(Instant::now() < deadline, "the exchange did not finish");
        driver
            .run_once(Some(Duration::from_millis(50)))
            .expect("run_once");
    }
}

fn upgrade_request(url: &str) -> http::Request<Body> {
    http::Request::get(format!("{url}/chat"))
        .header("connection", "upgrade")
        .header("upgrade", "test")
        .body(Body::empty())
        .unwrap()
}

/// Writes `out` on the handed-over socket and reads `want.len()` bytes back
/// (after `leftover`), waiting on a `Poll` of the test's own.
fn exchange_on(
    mut socket: roundtrip_mio::mio::net::TcpStream,
    leftover: &[u8],
    out: &[u8],
) -> Vec<u8> {
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(
            &mut socket,
            Token(7),
            Interest::READABLE | Interest::WRITABLE,
        )
        .unwrap();
    let mut events = Events::with_capacity(8);
    let mut got = leftover.to_vec();
    let want = leftover.len() + out.len();
    let mut written = 0;
    let deadline = Instant::now() + BOUND;
    let mut buf = [0u8; 1024];
    // Bounded by the deadline.
    while got.len() < want {
        assert!(Instant::now() < deadline, "no echo: {got:?}");
        if written < out.len() {
            match socket.write(&out[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        match socket.read(&mut buf) {
            Ok(0) => panic!("closed early"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                poll.poll(&mut events, Some(Duration::from_millis(50)))
                    .unwrap();
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

#[test]
fn a_101_ends_at_once_while_the_server_streams() {
    let url = serve(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n",
        flood,
    );
    let mut driver = driver();
    let started = Instant::now();
    let id = driver.submit(upgrade_request(&url));
    let (_, result) = finish(&mut driver, id);
    let response = result.expect("a response");
    assert_eq!(response.status(), 101);
    assert!(
        response.body().is_empty(),
        "{} bytes",
        response.body().len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(driver.is_idle());
    let stats = driver.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    assert_eq!(stats.closed.get(CloseReason::Switched), 1, "{stats:?}");
    // The stream was left in the socket: the driver read at most one buffer.
    let (_socket, leftover) = driver
        .take_upgraded(id)
        .expect("handed over")
        .into_parts()
        .expect("plain");
    assert!(
        leftover.len() <= 1 << 20,
        "{} bytes buffered",
        leftover.len()
    );
    assert!(driver.take_upgraded(id).is_none(), "taken once");
}

#[test]
fn a_101_hands_over_the_bytes_after_the_head_then_the_socket() {
    let url = serve(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\nhello from the server|",
        echo,
    );
    let mut driver = driver();
    let id = driver.submit(upgrade_request(&url));
    let (_, result) = finish(&mut driver, id);
    assert_eq!(result.expect("a response").status(), 101);
    let (socket, leftover) = driver
        .take_upgraded(id)
        .expect("handed over")
        .into_parts()
        .expect("plain");
    let got = exchange_on(socket, &leftover, b"ping");
    assert_eq!(got, b"hello from the server|ping");
    assert_eq!(driver.stats().in_use, 0, "the pool let it go");
}

#[test]
fn a_2xx_to_connect_is_a_tunnel() {
    let url = serve(b"HTTP/1.1 200 Connection established\r\n\r\n", echo);
    let authority = url.trim_start_matches("http://").to_string();
    let request = http::Request::connect(format!("http://{authority}"))
        .body(Body::empty())
        .unwrap();
    let mut driver = driver();
    let id = driver.submit(request);
    let (_, result) = finish(&mut driver, id);
    let response = result.expect("a response");
    assert_eq!(response.status(), 200);
    assert!(response.body().is_empty());
    let (socket, leftover) = driver
        .take_upgraded(id)
        .expect("a tunnel")
        .into_parts()
        .expect("plain");
    assert_eq!(exchange_on(socket, &leftover, b"through"), b"through");
}

#[test]
fn an_ordinary_response_is_not_handed_over() {
    let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", |_| {});
    let mut driver = driver();
    let id = driver.get(&url).submit();
    let (_, result) = finish(&mut driver, id);
    assert_eq!(result.expect("a response").body().as_ref(), b"hi");
    assert!(driver.take_upgraded(id).is_none());
}

#[test]
fn a_sized_body_of_the_wrong_length_fails_as_sent_and_closes() {
    let url = serve(b"", |socket| {
        // Hold the connection: the client must fail on its own.
        thread::sleep(Duration::from_secs(2));
        drop(socket);
    });
    let mut driver = driver();
    let body = Body::from_reader(std::io::Cursor::new(b"abc".to_vec()), Some(5));
    let request = http::Request::post(format!("{url}/up")).body(body).unwrap();
    let started = Instant::now();
    let id = driver.submit(request);
    let (_, result) = finish(&mut driver, id);
    let err = result.expect_err("a body of the wrong length");
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
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let stats = driver.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "not reused: {stats:?}");
}

#[test]
fn cancel_releases_the_connection_of_a_request_in_flight() {
    let url = serve(b"", |socket| {
        thread::sleep(BOUND);
        drop(socket);
    });
    let mut driver = driver();
    let started = Instant::now();
    let id = driver.get(format!("{url}/slow")).submit();
    // Turn the loop until the request is on its connection.
    let deadline = Instant::now() + BOUND;
    // Bounded by the deadline.
    while driver.stats().in_use == 0 {
        assert!(Instant::now() < deadline, "never connected");
        driver
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    for _ in 0..5 {
        driver
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    assert!(driver.cancel(id));
    assert!(!driver.cancel(id), "cancelled twice");
    let deadline = Instant::now() + BOUND;
    // Bounded by the deadline.
    while !driver.is_idle() {
        assert!(Instant::now() < deadline, "the cancelled request lingers");
        driver
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    assert!(
        driver.take_finished().is_none(),
        "a cancelled request reports nothing"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let stats = driver.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    assert_eq!(stats.closed.get(CloseReason::Abandoned), 1, "{stats:?}");
}

/// Over `https` the TLS session goes on across the switch, on a
/// non-blocking socket: the bytes that came with the head, then a 100 KiB
/// upload and a 70 KiB answer through the session (`WouldBlock` as a
/// socket gives it), then its `close_notify` (the server checks each
/// byte).
#[test]
fn a_101_over_tls_goes_on_in_the_session() {
    use roundtrip_tests::peer::{TLS_HELLO, tls_answer, tls_switching_server, tls_upload};
    use std::io::ErrorKind::WouldBlock;
    let server = tls_switching_server();
    let config = roundtrip_tests::tls_faults::trusting(roundtrip_tests::backend::test_config());
    let mut driver = Driver::builder().config(config).build().expect("a driver");
    let id = driver.submit(upgrade_request(&format!("https://{}", server.addr())));
    let (_, result) = finish(&mut driver, id);
    assert_eq!(result.expect("a response").status(), 101);
    let mut io = driver.take_upgraded(id).expect("handed over");
    assert!(io.is_tls());
    let mut poll = Poll::new().unwrap();
    let interest = Interest::READABLE | Interest::WRITABLE;
    poll.registry()
        .register(io.socket_mut(), Token(7), interest)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let (upload, want) = (tls_upload(), TLS_HELLO.len() + tls_answer().len());
    let (mut written, mut got) = (0, Vec::new());
    let deadline = Instant::now() + BOUND;
    let mut buf = vec![0u8; 32 * 1024];
    // Bounded by the deadline.
    while got.len() < want {
        assert!(Instant::now() < deadline, "{} of {want} bytes", got.len());
        // Edge-triggered: write and read until the socket would block.
        while written < upload.len() {
            match io.write(&upload[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        match io.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == WouldBlock => {}
            Err(e) => panic!("flush: {e}"),
        }
        loop {
            match io.read(&mut buf) {
                Ok(0) => panic!("the server closed after {} bytes", got.len()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        if got.len() < want {
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
        }
    }
    assert_eq!(&got[..TLS_HELLO.len()], TLS_HELLO);
    assert!(
        got[TLS_HELLO.len()..] == tls_answer()[..],
        "the answer differs"
    );
    // Bounded by the deadline.
    loop {
        match io.close_notify() {
            Ok(()) => break,
            Err(e) if e.kind() == WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("close_notify: {e}"),
        }
    }
    drop(io);
    assert!(server.wait_idle(BOUND));
    server.assert_no_errors();
}
