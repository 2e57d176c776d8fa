//! The smol backend on connections that leave HTTP (a `101 Switching
//! Protocols`, a `2xx` to `CONNECT`), and a request future dropped in
//! flight, against small loopback servers written here.

use std::io::Read;
use std::net::TcpListener;
use std::thread;

use roundtrip_tests::peer::{read_head, switching_server};
use std::time::{Duration, Instant};

use roundtrip_io::http;
use roundtrip_smol::{Body, Client};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// Every test ends within this.
const LIMIT: Duration = Duration::from_secs(10);

/// Reads from `io` until `want` bytes came.
async fn read_exact_within(io: &mut roundtrip_smol::Upgraded, want: usize) -> Vec<u8> {
    let mut got = vec![0u8; want];
    let read = io.read_exact(&mut got);
    let late = async {
        smol::Timer::after(LIMIT).await;
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    };
    smol::future::or(read, late).await.expect("read in time");
    got
}

/// The body of a switched response ends at once, empty, though the server
/// streams behind it; `upgrade` then gives the connection, greeting first.
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
    let mut seen = Vec::new();
    let deadline = Instant::now() + LIMIT;
    // Bounded by LIMIT.
    while !seen.windows(5).any(|w| w == b"ping!") && Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        let n = io.read(&mut buf).await.expect("read");
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
    smol::block_on(async {
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
    smol::block_on(async {
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

/// A request future dropped while it waits for the answer gives its
/// connection up: closed (the request was sent), never pooled mid-way.
#[test]
fn a_dropped_request_future_releases_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let head = read_head(&mut stream);
        // Never answers; waits for the client to close (bounded).
        let mut rest = [0u8; 64];
        let closed = matches!(stream.read(&mut rest), Ok(0));
        (head, closed)
    });
    let client = Client::new();
    smol::block_on(async {
        let request = http::Request::get(format!("http://{addr}/slow"))
            .body(Body::empty())
            .expect("request");
        let sent = async { Some(client.execute(request).await) };
        let give_up = async {
            smol::Timer::after(Duration::from_millis(200)).await;
            None
        };
        assert!(smol::future::or(sent, give_up).await.is_none(), "answered?");
    });
    let stats = client.stats();
    assert_eq!((stats.in_use, stats.idle), (0, 0), "{stats:?}");
    let (head, closed) = server.join().expect("server");
    assert!(head.starts_with(b"GET /slow "));
    assert!(
        closed,
        "the connection was closed when the request was dropped"
    );
}

/// Over `https` the TLS session goes on across the switch: the bytes that
/// came with the head, then a 100 KiB upload and a 70 KiB answer through
/// the session, then `close` sends its `close_notify` (the server checks
/// each byte).
#[test]
fn a_101_over_tls_goes_on_in_the_session() {
    use roundtrip_tests::peer::{TLS_HELLO, tls_answer, tls_switching_server, tls_upload};
    let server = tls_switching_server();
    let config = roundtrip_tests::tls_faults::trusting(roundtrip_tests::backend::test_config());
    let client = Client::builder().config(config).build();
    smol::block_on(async {
        let request = roundtrip_tests::peer::tls_upgrade_request(&server, Body::empty());
        let response = client.execute(request).await.expect("response");
        assert_eq!(response.status(), 101);
        let mut io = response.into_body().upgrade().await.expect("upgraded");
        assert!(io.is_tls());
        assert_eq!(read_exact_within(&mut io, TLS_HELLO.len()).await, TLS_HELLO);
        let upload = tls_upload();
        let write = io.write_all(&upload);
        let late = async {
            smol::Timer::after(LIMIT).await;
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
        };
        smol::future::or(write, late).await.expect("write in time");
        let answer = read_exact_within(&mut io, tls_answer().len()).await;
        assert!(answer == tls_answer(), "the answer differs");
        io.close().await.expect("close_notify");
        assert!(io.write_all(b"more").await.is_err(), "closed");
    });
    assert!(server.wait_idle(Duration::from_secs(5)));
    server.assert_no_errors();
    assert_eq!(client.stats().in_use, 0, "the pool let it go");
}
