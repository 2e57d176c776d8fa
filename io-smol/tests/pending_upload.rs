//! A streamed request body whose reader has nothing yet does not stop the
//! client from hearing the server: an early answer ends the request while
//! the reader still waits (as on tokio: the drive is shared).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use roundtrip_smol::{Body, Client};

/// A loopback server for one connection, handled by `serve` on its own
/// thread (reads time out after 10 s): its port, and what `serve` returns.
fn accept_one(
    serve: impl FnOnce(TcpStream) -> Vec<u8> + Send + 'static,
) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        serve(socket)
    });
    (port, server)
}

/// Reads from `socket` until `done` says so of what came, or the end.
fn read_until(socket: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while !done(&got) {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// A reader that never has anything: a body waiting on something else.
struct Waiting;

impl smol::io::AsyncRead for Waiting {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Pending
    }
}

#[test]
fn an_early_answer_is_heard_while_the_body_reader_waits() {
    let (port, server) = accept_one(|mut socket| {
        let got = read_until(&mut socket, |got| got.windows(4).any(|w| w == b"\r\n\r\n"));
        let answer = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!";
        socket.write_all(answer).unwrap();
        got
    });
    let client = Client::new();
    let status = smol::block_on(async {
        let sent = async {
            let body = Body::from_reader(Waiting, None);
            let url = format!("http://127.0.0.1:{port}/upload");
            let response = client.post(url).body(body).send().await;
            Some(response.expect("the early answer is the response"))
        };
        let bound = async {
            smol::Timer::after(Duration::from_secs(10)).await;
            None
        };
        let response = smol::future::or(sent, bound)
            .await
            .expect("the answer came while the body waited, and was not heard");
        let status = response.status();
        let body = response.into_body().bytes(1024).await.unwrap();
        assert_eq!(&body[..], b"big!");
        status
    });
    assert_eq!(status, 413);
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    let got = server.join().unwrap();
    assert!(got.starts_with(b"POST /upload HTTP/1.1\r\n"), "{got:?}");
}

/// A reader that says it read more than its buffer held.
struct OverClaims;

impl smol::io::AsyncRead for OverClaims {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len() + 1))
    }
}

/// A body reader that claims more bytes than its buffer held fails the
/// request with `RequestBody`; the zeros past what it wrote are not sent
/// (they were: a chunk of the buffer's whole size went out).
#[test]
fn a_reader_that_claims_more_than_it_read_fails_the_request() {
    // Everything the client sends, until it closes.
    let (port, server) = accept_one(|mut socket| read_until(&mut socket, |_| false));
    let client = Client::new();
    let err = smol::block_on(async {
        let body = Body::from_reader(OverClaims, None);
        let url = format!("http://127.0.0.1:{port}/upload");
        // Bounded: before the fix the zero-filled pieces went out for ever.
        let request = client.post(url).body(body).timeout(Duration::from_secs(5));
        request.send().await.unwrap_err()
    });
    let roundtrip_smol::Error::RequestBody(source) = &err else {
        panic!("{err:?}");
    };
    assert!(source.to_string().contains("the body's reader"), "{err}");
    let stats = client.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    drop(client);
    let got = server.join().unwrap();
    let head_end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(
        got[head_end..].is_empty(),
        "no body byte went out: {:?}",
        String::from_utf8_lossy(&got[head_end..(head_end + 16).min(got.len())])
    );
}
