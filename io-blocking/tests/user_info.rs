//! `user:pass@` in a URL on a real loopback socket: sent as
//! `Authorization: Basic`, never in `Host`.

use std::io::{Read, Write};
use std::net::TcpListener;

#[test]
fn user_info_is_sent_as_basic_auth() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = [0; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before the end of the head");
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let client = roundtrip_blocking::Client::new();
    let mut response = client
        .get(format!("http://Aladdin:open%20sesame@127.0.0.1:{port}/"))
        .send()
        .unwrap();
    assert_eq!(response.body_mut().text(16).unwrap(), "ok");
    let head = server.join().unwrap();
    assert!(
        head.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("\r\nauthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
        "{head}"
    );
    assert!(!head.contains("Aladdin"), "{head}");
}
