//! One client used from two runtimes (a `static` client shared by
//! `#[tokio::test]`s): a connection pooled by the first carries that
//! runtime's timer, and its socket is served by that runtime's reactor;
//! a request on the second must not poll that timer once the first
//! runtime is gone (tokio panics polling a timer of a runtime that shut
//! down), and does not use the connection (closed, and a new one dialed).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

/// Reads one request head (bounded by the socket's read timeout).
fn read_head(socket: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// Accepts one connection, with a bounded read timeout.
fn accept(listener: &TcpListener) -> TcpStream {
    let (socket, _) = listener.accept().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
}

/// The server's end of both cases: the next connection answers one
/// request; `first` (left unanswered) is dropped after.
fn answer_on_the_next(listener: &TcpListener, first: TcpStream) {
    let mut second = accept(listener);
    assert!(read_head(&mut second));
    second.write_all(OK).unwrap();
    drop(first);
}

/// A client with a total timeout (so its requests arm timers), and a
/// loopback URL on `listener`.
fn client_for(listener: &TcpListener) -> (roundtrip_tokio::Client, String) {
    let client = roundtrip_tokio::Client::builder()
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    (client, url)
}

/// The second runtime: multi-thread, one worker.
fn runtime_b() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// GET `url` on runtime `b`, its body as text.
fn get_on(
    b: &tokio::runtime::Runtime,
    client: &roundtrip_tokio::Client,
    url: &str,
) -> tokio::task::JoinHandle<Result<String, roundtrip_tokio::Error>> {
    let (client, url) = (client.clone(), url.to_string());
    b.spawn(async move {
        let response = client.get(&url).send().await?;
        response.into_body().text(1024).await
    })
}

#[test]
fn a_pooled_connection_from_a_runtime_that_shut_down_does_not_panic_the_next() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (client, url) = client_for(&listener);
    let server = std::thread::spawn(move || {
        // The first connection answers one request; the second request
        // comes on the next (a request on `b` does not take a connection
        // `a`'s reactor serves: it is closed, and a new one dialed).
        let mut first = accept(&listener);
        assert!(read_head(&mut first));
        first.write_all(OK).unwrap();
        answer_on_the_next(&listener, first);
    });
    let a = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let b = runtime_b();
    let first = a.block_on(async {
        let response = client.get(&url).send().await.unwrap();
        response.into_body().text(1024).await
    });
    assert_eq!(first.unwrap(), "hi");
    let task = get_on(&b, &client, &url);
    // `a` goes away with the first connection's reactor and timer.
    std::thread::sleep(Duration::from_millis(200));
    drop(a);
    let second = b.block_on(task).expect("the request's task did not panic");
    assert_eq!(second.unwrap(), "hi");
    server.join().unwrap();
}

/// A response made on one runtime, its body read on another: the
/// connection goes back to the pool from the second, with the first's
/// timer, which must still be known as the first's (it was recorded as
/// the runtime that checked the connection in).
#[test]
fn a_body_read_on_another_runtime_keeps_its_timer_home() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (client, url) = client_for(&listener);
    let server = std::thread::spawn(move || {
        let mut first = accept(&listener);
        assert!(read_head(&mut first));
        first
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        first.write_all(b"hi").unwrap();
        // Whatever comes next on it goes unanswered.
        answer_on_the_next(&listener, first);
    });
    // A current-thread runtime (a timer of its panics once it shut
    // down), kept running on a thread of its own while `b` reads its
    // socket, then stopped and dropped.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let a = std::thread::spawn(move || {
        let a = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        handle_tx.send(a.handle().clone()).unwrap();
        a.block_on(async {
            let _ = stopped.await;
        });
    });
    let a_handle = handle_rx.recv().unwrap();
    let b = runtime_b();
    let response = {
        let (client, url) = (client.clone(), url.clone());
        let first = a_handle.spawn(async move { client.get(&url).send().await.unwrap() });
        b.block_on(first).unwrap()
    };
    let body = b.block_on(async { response.into_body().text(1024).await });
    assert_eq!(body.unwrap(), "hi");
    stop.send(()).unwrap();
    a.join().unwrap();
    let task = get_on(&b, &client, &url);
    let second = b.block_on(task).expect("the request's task did not panic");
    assert_eq!(second.unwrap(), "hi");
    server.join().unwrap();
}
