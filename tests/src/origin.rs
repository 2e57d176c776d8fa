//! A minimal loopback HTTP/1.1 origin for the speed benchmarks: keep-alive,
//! one thread per connection, canned responses.
//!
//! It does as little as a server can so that a benchmark measures the
//! client: per request one `read(2)` into a fixed buffer and one `write(2)`
//! of a response prepared at start-up. It answers `GET /small` with
//! `Hello, world!` (13 bytes) and `GET /64k` with [`pattern`]`(65536)`, the
//! same bodies as the nginx fixture, each with `Content-Length`; any other
//! target gets `404` with an empty body.
//!
//! What it does not do: request bodies, `Connection: close` (the client
//! closes; every response is length-delimited, so no client waits for the
//! server to close), heads longer than [`MAX_HEAD`] (the connection is
//! closed). Pipelined requests are answered in order.
//!
//! ```no_run
//! let addr = roundtrip_tests::origin::spawn()?;
//! let body = roundtrip_blocking::get(&format!("http://{addr}/small"))?
//!     .body_mut()
//!     .bytes(1024)?;
//! assert_eq!(&body[..], b"Hello, world!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread;

use crate::fixtures::pattern;

/// The body of `/small`.
pub const SMALL_BODY: &[u8] = b"Hello, world!";

/// Length of the body of `/64k`.
pub const BIG_LEN: usize = 64 * 1024;

/// The largest request head accepted; longer ones close the connection.
pub const MAX_HEAD: usize = 4096;

/// The canned responses, head and body in one buffer each.
struct Canned {
    small: Vec<u8>,
    big: Vec<u8>,
    not_found: Vec<u8>,
}

fn canned() -> &'static Canned {
    static CANNED: OnceLock<Canned> = OnceLock::new();
    CANNED.get_or_init(|| Canned {
        small: response(SMALL_BODY),
        big: response(&pattern(BIG_LEN)),
        not_found: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    })
}

fn response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Binds `127.0.0.1:0` (a free loopback port).
pub fn bind() -> io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

/// Serves `listener` on the calling thread, one thread per connection, until
/// `accept` fails.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    let canned = canned();
    loop {
        let (stream, _) = listener.accept()?;
        thread::Builder::new()
            .name("origin-conn".into())
            .spawn(move || {
                // A connection ends at EOF or at the first error; either
                // way there is nobody to tell.
                let _ = serve_conn(stream, canned);
            })?;
    }
}

/// Starts the origin on a background thread of this process; returns its
/// address. It lives as long as the process.
pub fn spawn() -> io::Result<SocketAddr> {
    let listener = bind()?;
    let addr = listener.local_addr()?;
    thread::Builder::new()
        .name("origin".into())
        .spawn(move || serve(listener))?;
    Ok(addr)
}

/// Answers the requests of one connection until the client closes it.
fn serve_conn(mut stream: TcpStream, canned: &Canned) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        // Answer every complete head in the buffer, then keep the rest.
        let mut start = 0;
        while let Some(end) = head_end(&buf[start..len]) {
            stream.write_all(answer(&buf[start..start + end], canned))?;
            start += end;
        }
        buf.copy_within(start..len, 0);
        len -= start;
        if len == buf.len() {
            return Ok(()); // head too large: close
        }
    }
}

/// The length of the first complete head in `bytes` (through `\r\n\r\n`).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// The canned response for a request head.
fn answer<'a>(head: &[u8], canned: &'a Canned) -> &'a [u8] {
    if head.starts_with(b"GET /small ") {
        &canned.small
    } else if head.starts_with(b"GET /64k ") {
        &canned.big
    } else {
        &canned.not_found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one response of a known total length.
    fn read_exact_len(stream: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        stream.read_exact(&mut out).expect("read a whole response");
        out
    }

    #[test]
    fn answers_keep_alive_and_pipelined_requests() {
        let addr = spawn().expect("start the origin");
        let mut stream = TcpStream::connect(addr).expect("connect to the origin");
        let canned = canned();
        stream
            .write_all(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        assert_eq!(
            read_exact_len(&mut stream, canned.small.len()),
            canned.small
        );
        // Two pipelined requests, the second split across writes.
        stream
            .write_all(b"GET /64k HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\n")
            .expect("write");
        stream.write_all(b"Host: x\r\n\r\n").expect("write");
        let big = read_exact_len(&mut stream, canned.big.len());
        assert!(big.ends_with(&pattern(BIG_LEN)));
        assert!(big.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let missing = read_exact_len(&mut stream, canned.not_found.len());
        assert_eq!(missing, canned.not_found);
    }

    #[test]
    fn serves_the_roundtrip_client() {
        let addr = spawn().expect("start the origin");
        let client = roundtrip_blocking::Client::new();
        for _ in 0..3 {
            let mut response = client
                .get(&format!("http://{addr}/small"))
                .expect("GET /small");
            let body = response.body_mut().bytes(1024).expect("body");
            assert_eq!(&body[..], SMALL_BODY);
        }
        let stats = client.stats();
        assert_eq!(stats.dials, 1, "{stats:?}");
    }
}
