//! Small loopback peers for the hand-over tests (`upgrade_*.rs`): servers
//! that answer one request and then speak another protocol, stream, or
//! echo. Every loop is bounded by [`LIMIT`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Every peer gives up after this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A one-connection loopback server: reads one request head, writes
/// `answer`, then runs `after` on the socket.
pub fn serve(answer: &'static [u8], after: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
            if socket.read(&mut byte).unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        if socket.write_all(answer).is_ok() {
            after(socket);
        }
    });
    format!("http://{addr}")
}

/// Streams bytes for up to 5 s (the client must not buffer them).
pub fn flood(mut socket: TcpStream) {
    let chunk = vec![b'x'; 64 * 1024];
    let until = Instant::now() + LIMIT;
    while Instant::now() < until && socket.write_all(&chunk).is_ok() {}
}

/// Echoes what comes, for up to 5 s.
pub fn echo(mut socket: TcpStream) {
    let mut buf = [0u8; 1024];
    let until = Instant::now() + LIMIT;
    while Instant::now() < until {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if socket.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one request head (up to `\r\n\r\n`) from `stream`.
pub fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded: a head is at most 64 KiB here, and the read timeout ends a stall.
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// A server for one connection: answers the request with `answer`, then
/// sends `greeting`, then streams `x` bytes until the client leaves
/// (bounded by `LIMIT`) while echoing whatever the client sends, as the
/// protocol it switched to.
pub fn switching_server(
    answer: &'static [u8],
    greeting: &'static [u8],
) -> (String, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let head = read_head_patient(&mut stream);
        stream.write_all(answer).expect("answer");
        stream.write_all(greeting).expect("greeting");
        let started = Instant::now();
        let filler = [b'x'; 1024];
        let mut buf = [0u8; 1024];
        // Bounded by LIMIT: streams and echoes until the client closes.
        while started.elapsed() < LIMIT {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
            if stream.write_all(&filler).is_err() {
                break;
            }
        }
        head
    });
    (addr, handle)
}

/// Reads a head with the short read timeout retried until `LIMIT`.
pub fn read_head_patient(stream: &mut TcpStream) -> Vec<u8> {
    let started = Instant::now();
    let mut head = Vec::new();
    // Bounded by LIMIT.
    while !head.ends_with(b"\r\n\r\n") && started.elapsed() < LIMIT {
        head.extend(read_head(stream));
    }
    head
}

/// What the client sends through a switched `https` connection in the
/// hand-over tests over TLS: more than one TLS record (16 KiB) and more
/// than one seal (64 KiB).
pub fn tls_upload() -> Vec<u8> {
    crate::fixtures::pattern(100 * 1024 + 7)
}

/// The bytes the server sends right after the `101` head, in the same
/// records.
pub const TLS_HELLO: &[u8] = b"hello from the server|";

/// What the server answers once the upload came whole: more than one
/// record too.
pub fn tls_answer() -> Vec<u8> {
    let mut answer = b"got it|".to_vec();
    answer.extend_from_slice(&crate::fixtures::pattern(70 * 1024));
    answer
}

/// The upgrade request [`tls_switching_server`] answers, to `server`,
/// with `body` (each backend's empty body).
pub fn tls_upgrade_request<B>(
    server: &crate::server::ScriptServer,
    body: B,
) -> roundtrip_io::http::Request<B> {
    roundtrip_io::http::Request::get(format!("https://{}/chat", server.addr()))
        .header("connection", "upgrade")
        .header("upgrade", "test")
        .body(body)
        .expect("a valid request")
}

/// A TLS server (the test CA's certificate) that answers an upgrade
/// request with `101` and [`TLS_HELLO`] in one write, then reads
/// [`tls_upload`] exactly, answers [`tls_answer`], and requires the
/// client's `close_notify` before its close: the session goes on across
/// the switch, both ways. Its URL is `https://127.0.0.1:PORT`.
pub fn tls_switching_server() -> crate::server::ScriptServer {
    use crate::server::Step;
    let mut switch =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n"
            .to_vec();
    switch.extend_from_slice(TLS_HELLO);
    crate::tls_server::TlsServer::new().start(vec![vec![
        Step::ReadHead,
        Step::Write(switch),
        Step::ExpectBytes(tls_upload()),
        Step::Write(tls_answer()),
        Step::ExpectCloseNotify,
    ]])
}
