//! A runtime built without tokio's time driver (no `enable_time()`): a
//! client whose timeouts are all off (the pool's idle timeout included,
//! whose expiry runs on a timer task) arms no timer and works on it, also
//! when the server's `Keep-Alive` hint gives its connection an expiry. (With
//! a timeout on, tokio panics at the first one, saying to call
//! `enable_time`, as it does for hyper-util's `TokioTimer` and reqwest;
//! the crate's docs say so.)

use std::io::{Read, Write};
use std::net::TcpListener;

#[test]
fn a_client_without_timeouts_needs_no_time_driver() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buf = [0; 1024];
        let _ = socket.read(&mut buf);
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let client = roundtrip_tokio::Client::builder()
        .connect_timeout(None)
        .read_timeout(None)
        .write_timeout(None)
        .response_head_timeout(None)
        .tls_handshake_timeout(None)
        .idle_timeout(None)
        .build();
    let url = format!("http://127.0.0.1:{port}/");
    // A panic in a task the client spawned (a timer on this runtime) is
    // counted: the task's panic is caught by tokio, not seen here.
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        hook(info);
    }));
    let body = runtime.block_on(async {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().bytes(16).await.unwrap();
        // The connection went idle with the server's `Keep-Alive` hint:
        // whatever that arms runs now.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        body
    });
    assert_eq!(&body[..], b"hi");
    assert_eq!(PANICS.load(std::sync::atomic::Ordering::SeqCst), 0);
    server.join().unwrap();
}
