//! The sans-IO core on a plain `std::net::TcpStream`, with nothing else:
//! one `POST` with a body and one `GET` on the same kept-alive connection,
//! against a loopback server this example spawns.
//!
//! What an adapter does, each in a few lines: the core's
//! [`poll_timeout`](Connection::poll_timeout) becomes the socket's read
//! timeout; received bytes are read into the `BytesMut`'s spare capacity;
//! a write the socket takes only in part is reported and resumed.
//!
//! ```text
//! cargo run -p roundtrip-proto --example std_socket
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use roundtrip_proto::Event;
use roundtrip_proto::conn::{ConnConfig, Connection};
use roundtrip_proto::encode::{BodyFraming, RequestHead};
use roundtrip_proto::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = spawn_server()?;
    let mut socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    let origin = std::time::Instant::now();
    let now = || Instant::from_origin(origin.elapsed());

    // The core's own deadline for the response head: the socket is told.
    let config = ConnConfig::default().response_head_timeout(Some(Duration::from_secs(5)));
    let mut conn = Connection::new(config);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let host = addr.to_string();

    let body = br#"{"greeting":"hello"}"#;
    let post = RequestHead {
        method: b"POST",
        target: b"/echo",
        host: Some(host.as_bytes()),
        body: BodyFraming::Length(body.len() as u64),
        expect_continue: false,
        close: false,
        preset: None,
    };
    let mut out = Vec::new();
    conn.start(
        &post,
        [(&b"Content-Type"[..], &b"application/json"[..])],
        now(),
        &mut out,
    )?;
    // The framing around the body (nothing for a known length), then the end.
    let frame = conn.frame_body(body.len())?;
    out.extend_from_slice(frame.prefix());
    out.extend_from_slice(body);
    out.extend_from_slice(frame.suffix());
    conn.finish_body([], now(), &mut out)?;
    write_all(&mut socket, &mut conn, &out, now)?;
    let (status, answer) = read_response(&mut socket, &mut conn, &mut buf, now)?;
    println!(
        "POST /echo -> {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(answer, body);

    // The same connection again, when the core says it may carry another.
    assert!(conn.is_reusable(), "kept alive");
    let get = RequestHead {
        method: b"GET",
        target: b"/",
        host: Some(host.as_bytes()),
        body: BodyFraming::None,
        expect_continue: false,
        close: true,
        preset: None,
    };
    out.clear();
    conn.start(&get, [], now(), &mut out)?;
    write_all(&mut socket, &mut conn, &out, now)?;
    let (status, answer) = read_response(&mut socket, &mut conn, &mut buf, now)?;
    println!("GET / -> {status}: {}", String::from_utf8_lossy(&answer));
    Ok(())
}

/// Writes `out` whole, however little each `write` takes, telling the core
/// what went out.
fn write_all(
    socket: &mut TcpStream,
    conn: &mut Connection,
    mut out: &[u8],
    now: impl Fn() -> Instant,
) -> io::Result<()> {
    while !out.is_empty() {
        match socket.write(out) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.handle_written(n, now());
                out = &out[n..];
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one response: its status and body.
fn read_response(
    socket: &mut TcpStream,
    conn: &mut Connection,
    buf: &mut BytesMut,
    now: impl Fn() -> Instant,
) -> Result<(u16, Vec<u8>), Box<dyn std::error::Error>> {
    let (mut status, mut body) = (0, Vec::new());
    loop {
        // Everything the buffer already holds first.
        while let Some(event) = conn.poll_event(buf)? {
            match event {
                Event::Status(line) if !line.is_interim() => status = line.code,
                Event::Data(piece) => body.extend_from_slice(&piece),
                Event::End => return Ok((status, body)),
                _ => {}
            }
        }
        // Wait no longer than the core's next deadline.
        let wait = conn
            .poll_timeout()
            .map(|at| at.saturating_since(now()).max(Duration::from_millis(1)));
        socket.set_read_timeout(wait)?;
        // Into the spare capacity: grow the length over it, read, cut back
        // to what arrived.
        buf.reserve(8 * 1024);
        let filled = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = socket.read(&mut buf[filled..]);
        buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => conn.handle_eof(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The deadline passed: the core turns it into its error.
                conn.handle_timeout(now());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A loopback server: answers `POST` with its body, chunked, and `GET`
/// with a short text, on one kept-alive connection.
fn spawn_server() -> io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || -> io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        let mut input = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
                match socket.read(&mut chunk)? {
                    0 => return Ok(()),
                    n => input.extend_from_slice(&chunk[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&input[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            while input.len() < end + 4 + len {
                match socket.read(&mut chunk)? {
                    0 => return Ok(()),
                    n => input.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = input.drain(..end + 4 + len).skip(end + 4).collect();
            if head.starts_with("post") {
                let (a, b) = body.split_at(body.len() / 2);
                let mut reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for piece in [a, b] {
                    reply.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    reply.extend_from_slice(piece);
                    reply.extend_from_slice(b"\r\n");
                }
                reply.extend_from_slice(b"0\r\n\r\n");
                socket.write_all(&reply)?;
            } else {
                socket.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbye!\n",
                )?;
                return Ok(());
            }
        }
    });
    Ok(addr)
}
