//! The response helpers on the async driver (shared with smol), over a real
//! loopback socket: `url()`, `error_for_status()`, `text()` with the
//! charset of the `Content-Type`.

use roundtrip_tokio::{Client, Error, ResponseExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn url_status_and_charset() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let answers: [&[u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain;charset=windows-1252\r\nContent-Length: 5\r\n\r\n\x93hi\x94!",
            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        ];
        for answer in answers {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    let client = Client::builder().keep_alive(false).build();
    let url = format!("http://127.0.0.1:{port}/quote");
    let mut response = client.get(&url).send().await.unwrap();
    let answered = response.url().map(ToString::to_string);
    assert_eq!(
        answered,
        Some(url.clone()),
        "no redirect: the URL requested"
    );
    let text = response.body_mut().text(64).await.unwrap();
    assert_eq!(text, "\u{201c}hi\u{201d}!");
    let response = client.get(&url).send().await.unwrap();
    match response.error_for_status() {
        Err(Error::Status { status, .. }) => assert_eq!(status, 503),
        other => panic!("{other:?}"),
    }
}

/// A response and its body are `Send` and `Sync`, as hyper's `Incoming`:
/// they go into a `BoxBody`, or are held by reference across an `.await`
/// in a spawned task.
#[test]
fn responses_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<roundtrip_tokio::ResponseBody>();
    send_sync::<roundtrip_tokio::http::Response<roundtrip_tokio::ResponseBody>>();
}
