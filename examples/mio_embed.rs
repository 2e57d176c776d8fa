//! The mio driver embedded in the caller's own event loop: one `mio::Poll`
//! serves both the caller's `TcpListener` (here a tiny HTTP server on
//! loopback) and the driver's client connections, which fetch from it.
//!
//! ```text
//! cargo run --example mio_embed
//! ```
//!
//! Tokens: the caller keeps those below `DRIVER`; the driver registers its
//! connections from `DRIVER` up and says which events are its own
//! ([`Driver::handle_event`] returns false for the others).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

use roundtrip::mio::mio::net::{TcpListener, TcpStream};
use roundtrip::mio::mio::{Events, Interest, Poll, Token};
use roundtrip::mio::{CollectedExt, Driver, ResponseExt};

const LISTENER: Token = Token(0);
/// The first token of the driver's range; the server's connections take
/// the tokens between.
const DRIVER: Token = Token(1024);

/// One accepted connection of the caller's server.
struct Served {
    socket: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind("127.0.0.1:0".parse()?)?;
    let addr = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut driver = Driver::builder().build_in(poll.registry(), DRIVER)?;

    let ids: Vec<_> = (1..=3)
        .map(|n| driver.get(format!("http://{addr}/item/{n}")).submit())
        .collect();
    let mut served: HashMap<Token, Served> = HashMap::new();
    let mut next_token = 1;
    let mut done = 0;
    let mut events = Events::with_capacity(256);

    while done < ids.len() {
        // Sleep until a socket is ready or the driver's next deadline.
        let timeout = driver
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()));
        poll.poll(&mut events, timeout)?;
        for event in events.iter() {
            if driver.handle_event(event) {
                continue; // one of the driver's connections
            }
            match event.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut socket, _)) => {
                            let token = Token(next_token);
                            next_token += 1;
                            assert!(token.0 < DRIVER.0, "the server's token range is full");
                            poll.registry().register(
                                &mut socket,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            let (input, output) = (Vec::new(), Vec::new());
                            served.insert(
                                token,
                                Served {
                                    socket,
                                    input,
                                    output,
                                },
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e.into()),
                    }
                },
                token => {
                    let open = served.get_mut(&token).is_some_and(serve);
                    if !open && let Some(mut gone) = served.remove(&token) {
                        poll.registry().deregister(&mut gone.socket)?;
                    }
                }
            }
        }
        driver.handle_timeout(Instant::now());
        while let Some((id, result)) = driver.take_finished() {
            let response = result?;
            println!(
                "{id}: {} {} {:?}",
                response.status(),
                response
                    .url()
                    .map_or("(as requested)".into(), ToString::to_string),
                response.text()
            );
            done += 1;
        }
    }
    println!("pool: {:?}", driver.stats());
    Ok(())
}

/// Moves one server connection on: reads what arrived, answers each
/// complete request head, writes what the socket takes. False once closed.
fn serve(conn: &mut Served) -> bool {
    let mut chunk = [0; 4096];
    loop {
        match conn.socket.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    // GET requests only: a head is the whole request.
    while let Some(end) = conn.input.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&conn.input[..end]).into_owned();
        conn.input.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or("/");
        let body = format!("you asked for {path}");
        conn.output.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    while !conn.output.is_empty() {
        match conn.socket.write(&conn.output) {
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
