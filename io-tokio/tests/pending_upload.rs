//! A streamed request body whose reader has nothing yet (a channel fed by
//! another task, a body that waits for the answer) does not stop the
//! client from hearing the server: an early answer ends the request, and a
//! server that closes fails it, while the reader still waits.

use std::time::Duration;

use roundtrip_tokio::{Body, Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that reads the request head (up to its blank line), then
/// writes `answer` (and closes when `close`), then reads until the client
/// goes.
async fn answering_server(
    answer: &'static [u8],
    close: bool,
) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        socket.write_all(answer).await.unwrap();
        if close {
            return got;
        }
        while let Ok(n @ 1..) = socket.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    (port, server)
}

/// POSTs a body read from a pipe nobody writes to (its reader stays
/// pending), for at most 10 s: the server's answer or close must end it.
async fn post_waiting(
    client: &Client,
    port: u16,
) -> Result<roundtrip_tokio::http::Response<roundtrip_tokio::ResponseBody>, Error> {
    let (reader, _writer) = tokio::io::duplex(64);
    let sent = client
        .post(format!("http://127.0.0.1:{port}/upload"))
        .body(Body::from_reader(reader, None))
        .send();
    tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("the server answered or closed while the body waited, and it was not heard")
}

#[tokio::test]
async fn an_early_answer_is_heard_while_the_body_reader_waits() {
    let answer = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!";
    let (port, server) = answering_server(answer, false).await;
    let client = Client::new();
    let response = post_waiting(&client, port)
        .await
        .expect("the early answer is the response");
    assert_eq!(response.status(), 413);
    let bytes = response.into_body().bytes(1024).await.unwrap();
    assert_eq!(&bytes[..], b"big!");
    // The request body was never finished: the connection is closed, not
    // pooled.
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    drop(client);
    let got = server.await.unwrap();
    assert!(got.starts_with(b"POST /upload HTTP/1.1\r\n"), "{got:?}");
}

#[tokio::test]
async fn a_close_is_heard_while_the_body_reader_waits() {
    let (port, server) = answering_server(b"", true).await;
    let err = post_waiting(&Client::new(), port)
        .await
        .expect_err("a request the server closed on");
    assert!(
        matches!(err, Error::ClosedEarly { .. }),
        "{err:?}: expected the connection closed early"
    );
    server.await.unwrap();
}
