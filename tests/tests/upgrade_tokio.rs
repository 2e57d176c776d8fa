//! The tokio backend on connections that leave HTTP (a `101 Switching
//! Protocols`, a `2xx` to `CONNECT`) and on a streamed body shorter than it
//! declared, against small loopback servers written here.

use std::io::Write;
use std::net::TcpListener;
use std::thread;

use roundtrip_tests::peer::{read_head, switching_server};
use std::time::{Duration, Instant};

use roundtrip_io::http;
use roundtrip_tokio::{Body, Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test ends within this.
const LIMIT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads from `io` until `want` bytes came, or `LIMIT` passed.
async fn read_exact_within(io: &mut roundtrip_tokio::Upgraded, want: usize) -> Vec<u8> {
    let mut got = vec![0u8; want];
    tokio::time::timeout(LIMIT, io.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    got
}

/// The body of a switched response ends at once, empty, even though the
/// server streams forever behind it; `upgrade` then gives the connection.
async fn check_switched(client: &Client, request: http::Request<Body>) {
    let started = Instant::now();
    let mut response = client.execute(request).await.expect("response");
    let body = response.body_mut().bytes(1 << 20).await.expect("body");
    assert!(body.is_empty(), "{} body bytes", body.len());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut io = response.into_body().upgrade().await.expect("upgraded");
    assert_eq!(read_exact_within(&mut io, 5).await, b"hello");
    io.write_all(b"ping!").await.expect("write");
    // The server streams `x` filler around the echo: find the echo in it.
    let mut seen = Vec::new();
    let deadline = Instant::now() + LIMIT;
    // Bounded by LIMIT.
    while !seen.windows(5).any(|w| w == b"ping!") && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(LIMIT, io.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "the tunnel closed");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.windows(5).any(|w| w == b"ping!"), "no echo");
    assert_eq!(
        client.stats().in_use,
        0,
        "the switched connection left the pool"
    );
}

#[test]
fn switching_protocols_ends_the_body_and_upgrades() {
    let (addr, server) = switching_server(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        b"hello",
    );
    let client = Client::new();
    runtime().block_on(async {
        let request = http::Request::get(format!("http://{addr}/chat"))
            .header("Connection", "upgrade")
            .header("Upgrade", "echo")
            .body(Body::empty())
            .expect("request");
        check_switched(&client, request).await;
    });
    let head = server.join().expect("server");
    assert!(head.starts_with(b"GET /chat HTTP/1.1\r\n"));
}

#[test]
fn connect_2xx_ends_the_body_and_upgrades() {
    let (addr, server) = switching_server(b"HTTP/1.1 200 Connection Established\r\n\r\n", b"hello");
    let client = Client::new();
    runtime().block_on(async {
        let request = http::Request::connect(format!("http://{addr}/"))
            .body(Body::empty())
            .expect("request");
        check_switched(&client, request).await;
    });
    let head = server.join().expect("server");
    assert!(
        head.starts_with(b"CONNECT "),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

#[test]
fn a_dropped_switched_body_closes_its_connection() {
    let (addr, server) = switching_server(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        b"hello",
    );
    let client = Client::new();
    runtime().block_on(async {
        let request = http::Request::get(format!("http://{addr}/chat"))
            .header("Connection", "upgrade")
            .header("Upgrade", "echo")
            .body(Body::empty())
            .expect("request");
        let response = client.execute(request).await.expect("response");
        drop(response);
    });
    let stats = client.stats();
    assert_eq!((stats.in_use, stats.idle), (0, 0), "{stats:?}");
    assert_eq!(
        stats.closed.get(roundtrip_io::proto::CloseReason::Switched),
        1
    );
    server.join().expect("server");
}

/// A reader that gives 3 bytes of the 5 its body declared: the request
/// fails as too short, the server may have seen its start, and the
/// connection is not used again.
#[test]
fn a_short_sized_stream_fails_and_its_connection_is_not_reused() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = thread::spawn(move || {
        listener.set_nonblocking(true).expect("nonblocking");
        let started = Instant::now();
        let mut accepted = Vec::new();
        // Bounded by LIMIT: accepts until the test is over.
        while started.elapsed() < Duration::from_secs(2) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    stream
                        .set_read_timeout(Some(Duration::from_millis(200)))
                        .expect("timeout");
                    let head = read_head(&mut stream);
                    if head.starts_with(b"GET") {
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext";
                        stream.write_all(ok).expect("answer");
                    }
                    accepted.push(stream);
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
        accepted.len()
    });
    let client = Client::new();
    runtime().block_on(async {
        let body = Body::from_reader(&b"abc"[..], Some(5));
        let request = http::Request::post(format!("http://{addr}/up"))
            .body(body)
            .expect("request");
        let err = tokio::time::timeout(LIMIT, client.execute(request))
            .await
            .expect("in time")
            .expect_err("a short body");
        assert!(
            matches!(
                err,
                Error::BodyLength {
                    reached_server: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let mut response =
            tokio::time::timeout(LIMIT, client.get(format!("http://{addr}/")).send())
                .await
                .expect("in time")
                .expect("the next request");
        assert_eq!(
            response.body_mut().bytes(1 << 10).await.expect("body"),
            "next"
        );
    });
    let stats = client.stats();
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    drop(client);
    assert_eq!(server.join().expect("server"), 2);
}

/// A body dropped with a little left that comes late is drained in a task
/// for at most `drain_timeout`: the rest arriving in time keeps the
/// connection (reused next); the drop itself returns at once.
#[test]
fn a_dropped_body_is_drained_in_a_task_within_the_drain_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(LIMIT)).expect("timeout");
        read_head(&mut stream);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n";
        stream.write_all(head).expect("head");
        stream.write_all(&[b'x'; 100]).expect("first half");
        thread::sleep(Duration::from_millis(100));
        stream.write_all(&[b'x'; 100]).expect("second half");
        read_head(&mut stream);
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext";
        stream.write_all(ok).expect("answer");
        read_head(&mut stream) // until the client closes
    });
    let client = Client::builder()
        .drain(64 * 1024, Duration::from_secs(5))
        .build();
    runtime().block_on(async {
        let mut response = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("head");
        let first = response.body_mut().chunk().await.expect("chunk");
        assert!(first.is_some_and(|c| !c.is_empty()));
        let dropped = Instant::now();
        drop(response);
        assert!(
            dropped.elapsed() < Duration::from_millis(50),
            "the drop waited"
        );
        let deadline = Instant::now() + LIMIT;
        // Bounded by LIMIT: waits for the drain task to give the connection back.
        while client.stats().idle == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut next = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("next");
        assert_eq!(next.body_mut().bytes(1 << 10).await.expect("body"), "next");
    });
    let stats = client.stats();
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
    drop(client);
    server.join().expect("server");
}

/// `upgrade` on a response that did not switch says so at once, without
/// waiting for a body that is slow to come (before: its first piece, or
/// the read timeout).
#[test]
fn upgrade_of_a_response_that_did_not_switch_fails_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let _ = read_head(&mut stream);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        stream.write_all(head).expect("answer");
        // The body never comes; the client closes.
        stream.set_read_timeout(Some(LIMIT)).expect("timeout");
        let _ = std::io::Read::read(&mut stream, &mut [0u8; 16]);
    });
    let client = roundtrip_tokio::Client::builder()
        .read_timeout(Some(Duration::from_secs(5)))
        .build();
    runtime().block_on(async {
        let response = client
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("a head");
        let started = Instant::now();
        let err = response.into_body().upgrade().await.expect_err("no switch");
        assert!(matches!(err, Error::NotUpgraded), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    });
    drop(client);
    server.join().expect("server");
}

/// Over `https` the TLS session goes on across the switch: the bytes that
/// came with the head, then a 100 KiB upload and a 70 KiB answer through
/// the session, then `shutdown` sends its `close_notify` (the server
/// checks each byte).
#[test]
fn a_101_over_tls_goes_on_in_the_session() {
    use roundtrip_tests::peer::{TLS_HELLO, tls_answer, tls_switching_server, tls_upload};
    let server = tls_switching_server();
    let config = roundtrip_tests::tls_faults::trusting(roundtrip_tests::backend::test_config());
    let rt = runtime();
    let client = rt.block_on(async { Client::builder().config(config).build() });
    rt.block_on(async {
        let request = roundtrip_tests::peer::tls_upgrade_request(&server, Body::empty());
        let response = client.execute(request).await.expect("response");
        assert_eq!(response.status(), 101);
        let mut io = response.into_body().upgrade().await.expect("upgraded");
        assert!(io.is_tls());
        assert_eq!(read_exact_within(&mut io, TLS_HELLO.len()).await, TLS_HELLO);
        tokio::time::timeout(LIMIT, io.write_all(&tls_upload()))
            .await
            .expect("in time")
            .expect("write");
        let answer = read_exact_within(&mut io, tls_answer().len()).await;
        assert!(answer == tls_answer(), "the answer differs");
        io.shutdown().await.expect("close_notify");
        assert!(io.write_all(b"more").await.is_err(), "closed");
    });
    assert!(server.wait_idle(Duration::from_secs(5)));
    server.assert_no_errors();
    assert_eq!(client.stats().in_use, 0, "the pool let it go");
}
