//! A tiny loopback HTTP/1.1 origin: keep-alive, one thread per connection,
//! one canned response. What `roundtrip bench` measures against, so a new
//! user sees the whole stack work with no server of their own.
//!
//! Every request is answered `200 OK` with a body of the configured size
//! (`x` bytes) and `Content-Length`; the connection stays open until the
//! client closes it. Requests with a body are not supported (their bytes
//! would be read as the next request).
//!
//! ```
//! use std::io::{Read, Write};
//! let addr = roundtrip::origin::spawn(5)?;
//! let mut socket = std::net::TcpStream::connect(addr)?;
//! socket.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
//! let mut reply = [0u8; 256];
//! let n = socket.read(&mut reply)?;
//! assert!(reply[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(reply[..n].ends_with(b"xxxxx"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

/// The longest request head read; longer ones close the connection.
const MAX_HEAD: usize = 16 * 1024;

/// Starts the origin on a free port of 127.0.0.1 (loopback only), answering
/// every request with `body_len` bytes. The server threads live as long as
/// the process.
pub fn spawn(body_len: usize) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    reply.resize(reply.len() + body_len, b'x');
    let reply: Arc<[u8]> = reply.into();
    thread::Builder::new()
        .name("origin-accept".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let reply = Arc::clone(&reply);
                let _ = thread::Builder::new()
                    .name("origin-conn".into())
                    .spawn(move || serve(stream, &reply));
            }
        })?;
    Ok(addr)
}

/// Answers each complete request head with `reply` until the client closes.
fn serve(mut stream: TcpStream, reply: &[u8]) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; MAX_HEAD];
    let mut have = 0;
    loop {
        match stream.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        // Answer every complete head in what arrived (pipelining included).
        let mut start = 0;
        while let Some(end) = head_end(&buf[start..have]) {
            if stream.write_all(reply).is_err() {
                return;
            }
            start += end;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            return; // a head longer than MAX_HEAD
        }
    }
}

/// Length of the first complete head in `bytes` (through its blank line).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}
