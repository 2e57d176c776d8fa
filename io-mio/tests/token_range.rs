//! Embedding in the caller's `mio::Poll` with a bounded token range: the
//! caller's tokens on both sides of the range are never the driver's, and a
//! connection beyond the range fails its request instead of taking a token
//! outside it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_mio::mio::net::UdpSocket;
use roundtrip_mio::mio::{Events, Interest, Poll, Token, Waker};
use roundtrip_mio::{Driver, Error};

const BOUND: Duration = Duration::from_secs(5);

/// Answers each request head on each connection with a small 200, until
/// the client closes.
fn serve(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        thread::spawn(move || {
            stream.set_read_timeout(Some(BOUND)).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
                if head.windows(4).any(|w| w == b"\r\n\r\n") {
                    head.clear();
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                }
            }
        });
    }
}

#[test]
fn the_driver_keeps_to_its_token_range() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || serve(listener));

    let mut poll = Poll::new().unwrap();
    // The caller's own sources below and above the driver's one token.
    let mut below = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    poll.registry()
        .register(&mut below, Token(0), Interest::READABLE)
        .unwrap();
    let above = Waker::new(poll.registry(), Token(2)).unwrap();
    let mut driver = Driver::builder()
        .timeout(Some(BOUND))
        .build_in_range(poll.registry(), 1..2)
        .unwrap();
    assert!(driver.owns(Token(1)));
    assert!(!driver.owns(Token(0)) && !driver.owns(Token(2)));
    assert!(
        Driver::builder()
            .build_in_range(poll.registry(), 3..3)
            .is_err()
    );

    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"ping", below.local_addr().unwrap())
        .unwrap();
    above.wake().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let first = driver.get(&url).submit();
    let second = driver.get(&url).submit();

    let mut events = Events::with_capacity(64);
    let mut own = Vec::new();
    let mut finished = Vec::new();
    let until = Instant::now() + BOUND;
    while finished.len() < 2 || own.len() < 2 {
        assert!(Instant::now() < until, "stuck: {finished:?}, own {own:?}");
        let wait = driver
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(BOUND)
            .min(Duration::from_millis(100));
        poll.poll(&mut events, Some(wait)).unwrap();
        for event in events.iter() {
            if !driver.handle_event(event) {
                own.push(event.token());
            }
        }
        driver.handle_timeout(Instant::now());
        while let Some(done) = driver.take_finished() {
            finished.push(done);
        }
    }
    // Its results taken, an embedded driver does not ask to be woken at
    // once for ever (it did, after its first result: a spinning loop).
    let next = driver.poll_timeout();
    assert!(
        next.is_none_or(|at| at > Instant::now() + Duration::from_millis(50)),
        "{next:?}"
    );
    own.sort();
    assert_eq!(
        own,
        [Token(0), Token(2)],
        "the caller's events stay the caller's"
    );
    // One connection fits in the range: one request got it, the other
    // failed to connect rather than take a token outside the range.
    let status = |id| {
        finished
            .iter()
            .find(|(done, _)| *done == id)
            .map(|(_, r)| r.as_ref().map(|r| r.status().as_u16()))
            .expect("finished")
    };
    let results = [status(first), status(second)];
    assert!(results.iter().any(|r| matches!(r, Ok(200))), "{finished:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(Error::Connect { .. }))),
        "{finished:?}"
    );
}

/// An embedder that leaves results in the driver for later is not asked
/// to wake at once for them again and again: a result is news until the
/// next `handle_timeout` (the loop spun at full speed before).
#[test]
fn results_left_for_later_do_not_keep_an_embedder_awake() {
    let poll = Poll::new().unwrap();
    let mut driver = Driver::builder()
        .build_in(poll.registry(), Token(1))
        .unwrap();
    // Refused at once: a result, nothing in flight.
    driver.get("http://[::1/").submit();
    let now = driver.poll_timeout().expect("the result is news");
    assert!(now <= Instant::now());
    driver.handle_timeout(Instant::now());
    assert_eq!(driver.poll_timeout(), None, "told once");
    assert!(driver.take_finished().is_some(), "still there to take");
}
