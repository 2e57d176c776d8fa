//! The response helpers on a real loopback socket: `url()` (after a
//! redirect, or the one requested), `error_for_status()`, `text()` with the
//! charset of the `Content-Type`, and `json()` with the `json` feature.

use std::io::{Read, Write};
use std::net::TcpListener;

use roundtrip_blocking::{Client, Error, ResponseExt};

/// A server answering each connection's requests with `answers`, in order,
/// one per request head.
fn serve(answers: Vec<&'static [u8]>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        while let Ok((mut socket, _)) = listener.accept() {
            let mut head = Vec::new();
            let mut buf = [0; 1024];
            loop {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                head.drain(..end + 4);
                let Some(answer) = answers.next() else { return };
                if socket.write_all(answer).is_err() {
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn url_status_and_charset() {
    let port = serve(vec![
        b"HTTP/1.1 301 Moved\r\nLocation: /there?x=1\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Length: 4\r\n\r\ncaf\xe9",
        b"HTTP/1.1 404 Not Found\r\nX-Why: gone\r\nContent-Length: 3\r\n\r\nno!",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok \xff",
    ]);
    let client = Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let response = client.get(format!("{base}/here")).send().unwrap();
    let followed = response.url().map(ToString::to_string);
    assert_eq!(followed, Some(format!("{base}/there?x=1")));
    let mut response = match response.error_for_status() {
        Ok(ok) => ok,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(response.body_mut().text(64).unwrap(), "café");

    let missing = format!("{base}/missing");
    let response = client.get(&missing).send().unwrap();
    let url = response.url().map(ToString::to_string);
    assert_eq!(
        url.as_ref(),
        Some(&missing),
        "no redirect: the URL requested"
    );
    match response.error_for_status() {
        Err(e @ Error::Status { .. }) => {
            // Its text names the URL, as reqwest's does.
            let text = format!("the server answered 404 Not Found for {missing}");
            assert_eq!(e.to_string(), text);
            assert_eq!(e.status().map(|s| s.as_u16()), Some(404));
            assert!(e.is_status() && !e.is_body() && !e.is_connect());
            let Error::Status { status, head } = e else {
                unreachable!()
            };
            assert_eq!(status, 404);
            assert_eq!(head.headers["x-why"], "gone");
            let roundtrip_blocking::FinalUrl(url) = head.extensions.get().unwrap();
            assert_eq!(url.to_string(), missing, "the head keeps its URL");
        }
        other => panic!("{other:?}"),
    }

    // No charset: UTF-8, malformed bytes replaced.
    let mut response = client.get(format!("{base}/plain")).send().unwrap();
    assert_eq!(response.body_mut().text(64).unwrap(), "ok \u{fffd}");
}

#[cfg(feature = "json")]
#[test]
fn json_body() {
    let port = serve(vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,2,3]",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1,",
    ]);
    let client = Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut response = client.get(format!("{base}/list")).send().unwrap();
    let list: Vec<u32> = response.body_mut().json(64).unwrap();
    assert_eq!(list, [1, 2, 3]);
    let mut response = client.get(format!("{base}/cut")).send().unwrap();
    let err = response.body_mut().json::<Vec<u32>>(64).unwrap_err();
    assert!(matches!(err, Error::Json(_)), "{err:?}");
}
