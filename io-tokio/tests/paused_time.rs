//! The tokio backend keeps time by the runtime's clock: under tokio's paused
//! time (`test-util`, `#[tokio::test(start_paused = true)]`), its timeouts
//! pass when virtual time gets there, as `tokio::time::sleep`'s do, not
//! after as long in real time (nor with the task spinning meanwhile).

use std::time::{Duration, Instant as RealInstant};

use roundtrip_tokio::{Client, TimeoutKind};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A server on a loopback port that takes one connection, reads what comes
/// and never answers, until the client closes.
async fn stalling_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0; 1024];
        // Reads until the client gives up (0) or resets; never writes.
        while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    (port, server)
}

/// The server reads the request and never answers: the client's read
/// timeout (30 s) must end the request after 30 s of virtual time, at
/// once in real time.
#[tokio::test(start_paused = true)]
async fn a_read_timeout_passes_on_the_runtime_clock() {
    let (port, server) = stalling_server().await;
    let client = Client::builder()
        .read_timeout(Some(Duration::from_secs(30)))
        .build();
    let (virtual_start, real_start) = (tokio::time::Instant::now(), RealInstant::now());
    let err = client
        .get(format!("http://127.0.0.1:{port}/stall"))
        .send()
        .await
        .expect_err("the server never answers");
    let (virtual_took, real_took) = (virtual_start.elapsed(), real_start.elapsed());
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::ReadIdle), "{err}");
    assert!(
        virtual_took >= Duration::from_secs(30),
        "virtual time {virtual_took:?}"
    );
    assert!(
        real_took < Duration::from_secs(10),
        "the timeout waited {real_took:?} of real time: the driver kept the system's clock"
    );
    drop(client);
    server.await.unwrap();
}

/// The client's deadlines are on the runtime's clock: a request timeout
/// of 5 s passes after 5 s of virtual time (the paused runtime advances
/// it to the next timer) while the server keeps quiet, in far less real
/// time.
#[tokio::test(start_paused = true)]
async fn a_request_timeout_passes_on_the_runtime_clock() {
    let (port, server) = stalling_server().await;
    let client = Client::builder()
        .timeout(Some(Duration::from_secs(5)))
        .build();
    let real_start = RealInstant::now();
    let virtual_start = tokio::time::Instant::now();
    let err = client
        .get(format!("http://127.0.0.1:{port}/stall"))
        .send()
        .await
        .expect_err("the server never answers");
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total), "{err}");
    assert!(virtual_start.elapsed() >= Duration::from_secs(5), "{err}");
    assert!(real_start.elapsed() < Duration::from_secs(4), "{err}");
    drop(client);
    server.await.unwrap();
}

/// The pool's idle timeout is on the runtime's clock too: after
/// `tokio::time::advance` past it, the idle connection is not reused (the
/// second request dials a second connection); before it, it is.
#[tokio::test(start_paused = true)]
async fn an_idle_connection_expires_on_the_runtime_clock() {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut accepted = 0;
        let mut conns = Vec::new();
        // Three requests: the first two on one connection, the third on
        // a second one (the first expired while idle).
        for _ in 0..2 {
            let (socket, _) = listener.accept().await.unwrap();
            accepted += 1;
            conns.push(tokio::spawn(async move {
                let mut socket = socket;
                let mut buf = [0; 1024];
                let mut pending = Vec::new();
                loop {
                    match socket.read(&mut buf).await {
                        Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            }));
        }
        for conn in conns {
            conn.await.unwrap();
        }
        accepted
    });
    let client = Client::builder()
        .idle_timeout(Some(Duration::from_secs(90)))
        .build();
    let url = format!("http://127.0.0.1:{port}/");
    let get = || async {
        let mut response = client.get(&url).send().await.unwrap();
        assert_eq!(response.body_mut().bytes(16).await.unwrap(), &b"ok"[..]);
    };
    get().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    get().await;
    assert_eq!(client.stats().dials, 1, "reused within the idle timeout");
    tokio::time::advance(Duration::from_secs(91)).await;
    get().await;
    assert_eq!(client.stats().dials, 2, "expired after 90 s idle");
    drop(client);
    assert_eq!(server.await.unwrap(), 2);
}
