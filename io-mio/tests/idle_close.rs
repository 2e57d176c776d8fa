//! The driver watches idle connections: a server closing one is acted on at
//! the close event, however young the connection, and a response that came
//! with the server's FIN does not put its connection back in the pool.
//!
//! `stale_check_after` is set far beyond the test's life in most cases,
//! so the probe at checkout never runs: only the close event can tell the
//! driver. The last two keep the default, to test the probe itself. Every wait
//! is bounded; the server is a plain loopback listener driven step by step
//! over channels, so each case controls when the close happens.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use roundtrip_mio::proto::CloseReason;
use roundtrip_mio::{Driver, Finished};

/// Longer than any case: the probe never runs.
const NO_PROBE: Duration = Duration::from_secs(10);
/// Bound on every wait of a case.
const BOUND: Duration = Duration::from_secs(5);

fn driver() -> Driver {
    Driver::builder()
        .stale_check_after(NO_PROBE)
        .timeout(Some(BOUND))
        .build()
        .expect("a driver")
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one request head (the cases send only bodiless GETs); panics on
/// EOF or after [`BOUND`].
fn read_request(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(BOUND)).expect("read timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded by the read timeout and the head size.
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "request head too long");
        match stream.read(&mut byte).expect("read the request") {
            0 => panic!(
                "EOF in a request head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            _ => head.push(byte[0]),
        }
    }
}

/// Waits (bounded) for the client to close; true when it did and sent
/// nothing more.
fn client_closes(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(BOUND)).expect("read timeout");
    let mut rest = Vec::new();
    matches!(stream.read_to_end(&mut rest), Ok(0))
}

fn accept(listener: &TcpListener) -> TcpStream {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + BOUND;
    // Bounded by the deadline.
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking stream");
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection came");
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The end of every case's server: reads what the client still sends on
/// `first` until it closes it (a request there would be one sent on a dead
/// connection), then answers one GET on a second connection and waits for
/// the client to close that too. Returns the bytes read on `first`.
fn then_second_connection(mut first: TcpStream, listener: &TcpListener) -> usize {
    first.set_read_timeout(Some(BOUND)).expect("read timeout");
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    drop(first);
    let mut second = accept(listener);
    read_request(&mut second);
    second.write_all(&ok("two")).expect("answer");
    assert!(client_closes(&mut second), "second connection not closed");
    rest.len()
}

/// Turns the loop (only waiting, no request) until the pool holds no idle
/// connection, at most [`BOUND`]; returns the stats then.
fn turn_until_no_idle(driver: &mut Driver) -> roundtrip_mio::proto::pool::PoolStats {
    let deadline = Instant::now() + BOUND;
    // Bounded by the deadline.
    while driver.stats().idle > 0 && Instant::now() < deadline {
        driver
            .run_once(Some(Duration::from_millis(50)))
            .expect("run_once");
    }
    driver.stats()
}

/// Turns the loop until `n` exchanges finished; panics after [`BOUND`].
fn finish(driver: &mut Driver, n: usize) -> Vec<Finished> {
    let deadline = Instant::now() + BOUND;
    let mut done = Vec::new();
    while done.len() < n {
        assert!(Instant::now() < deadline, "exchanges did not finish");
        driver
            .run_once(Some(Duration::from_millis(50)))
            .expect("run_once");
        done.extend(std::iter::from_fn(|| driver.take_finished()));
    }
    done
}

fn body_of(done: Vec<Finished>) -> Vec<u8> {
    let [(_, result)]: [Finished; 1] = done.try_into().expect("one exchange");
    let response = result.expect("a response");
    assert_eq!(response.status(), 200);
    response.into_body().to_vec()
}

/// The server answers, the connection goes idle, then the server closes it:
/// the pool drops it at the close event (idle falls to 0 while the loop only
/// waits), and the next GET dials a new connection: no reuse of the dead one,
/// so no failed attempt and no retry.
#[test]
fn idle_close_drops_the_connection_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (close_tx, close_rx): (Sender<()>, Receiver<()>) = channel();
    let server: JoinHandle<usize> = thread::spawn(move || {
        let mut first = accept(&listener);
        read_request(&mut first);
        first.write_all(&ok("one")).expect("answer");
        close_rx.recv_timeout(BOUND).expect("told to close");
        first.shutdown(Shutdown::Write).expect("FIN");
        then_second_connection(first, &listener)
    });

    let mut driver = driver();
    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"one");
    let stats = driver.stats();
    assert_eq!((stats.dials, stats.idle), (1, 1), "{stats:?}");

    close_tx.send(()).expect("server alive");
    let stats = turn_until_no_idle(&mut driver);
    assert_eq!(
        stats.idle, 0,
        "the closed connection stayed idle: {stats:?}"
    );
    assert_eq!(stats.closed.get(CloseReason::Stale), 1, "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");

    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"two");
    let stats = driver.stats();
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle),
        (2, 0, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.closed.total(),
        1,
        "a failed reuse closes one more: {stats:?}"
    );
    drop(driver);
    let unread = server.join().expect("server thread");
    assert_eq!(unread, 0, "a request went out on the closed connection");
}

/// The server answers and shuts its side at once, so the response and the
/// FIN are both in the socket when the driver reads: the connection is not
/// pooled (`PeerClosed`), and the next GET dials.
#[test]
fn response_with_fin_is_not_pooled() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (read_tx, read_rx) = channel();
    let (answer_tx, answer_rx) = channel::<()>();
    let (answered_tx, answered_rx) = channel();
    let server = thread::spawn(move || {
        let mut first = accept(&listener);
        read_request(&mut first);
        read_tx.send(()).expect("test alive");
        answer_rx.recv_timeout(BOUND).expect("told to answer");
        first.write_all(&ok("one")).expect("answer");
        first.shutdown(Shutdown::Write).expect("FIN");
        answered_tx.send(()).expect("test alive");
        then_second_connection(first, &listener)
    });

    let mut driver = driver();
    driver.get(&url).submit();
    let deadline = Instant::now() + BOUND;
    // Turn the loop until the request is out; then leave the socket alone
    // while the server answers and closes, so that one read finds both.
    // Bounded by the deadline.
    while read_rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the request did not arrive");
        driver
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    answer_tx.send(()).expect("server alive");
    answered_rx.recv_timeout(BOUND).expect("server answered");
    assert_eq!(body_of(finish(&mut driver, 1)), b"one");
    let stats = driver.stats();
    assert_eq!(stats.idle, 0, "pooled after the FIN: {stats:?}");
    assert_eq!(stats.closed.get(CloseReason::PeerClosed), 1, "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");

    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"two");
    let stats = driver.stats();
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    drop(driver);
    assert_eq!(server.join().expect("server thread"), 0);
}

/// The server sends bytes nobody asked for on an idle connection (a stray
/// `408`, as servers send before closing) and does not close: the event is
/// probed at once (`recv(MSG_PEEK)`), the connection leaves the pool, and
/// the next GET dials instead of reading the `408` as its answer.
#[test]
fn stray_bytes_on_idle_connection_drop_it_at_the_event() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (stray_tx, stray_rx) = channel::<()>();
    let server = thread::spawn(move || {
        let mut first = accept(&listener);
        read_request(&mut first);
        first.write_all(&ok("one")).expect("answer");
        stray_rx.recv_timeout(BOUND).expect("told to send");
        first
            .write_all(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            .expect("stray bytes");
        then_second_connection(first, &listener)
    });

    let mut driver = driver();
    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"one");
    stray_tx.send(()).expect("server alive");
    let stats = turn_until_no_idle(&mut driver);
    assert_eq!(stats.idle, 0, "still pooled after stray bytes: {stats:?}");
    assert_eq!(stats.closed.get(CloseReason::Stale), 1, "{stats:?}");

    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"two");
    let stats = driver.stats();
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    drop(driver);
    assert_eq!(
        server.join().expect("server thread"),
        0,
        "a request went out on it"
    );
}

/// A loop that stood still while the server closed an idle connection
/// (a client sending in bursts) saw no event of it: the checkout's probe
/// asks the kernel then, and a POST (never sent twice) goes out on a new
/// connection instead of failing on the dead one.
#[test]
fn a_close_while_the_loop_stood_still_is_found_by_the_probe() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (close_tx, close_rx) = channel::<()>();
    let (closed_tx, closed_rx) = channel();
    let server = thread::spawn(move || {
        let mut first = accept(&listener);
        read_request(&mut first);
        first.write_all(&ok("one")).expect("answer");
        close_rx.recv_timeout(BOUND).expect("told to close");
        first.shutdown(Shutdown::Write).expect("FIN");
        closed_tx.send(()).expect("client alive");
        then_second_connection(first, &listener)
    });
    // The default probe threshold (1 ms), unlike the other cases.
    let mut driver = Driver::builder()
        .timeout(Some(BOUND))
        .build()
        .expect("a driver");
    driver.get(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"one");
    assert_eq!(driver.stats().idle, 1);
    close_tx.send(()).expect("server alive");
    closed_rx.recv_timeout(BOUND).expect("the server closed");
    // The FIN is in the client's socket; the loop is not turned.
    thread::sleep(Duration::from_millis(50));
    driver.post(&url).submit();
    assert_eq!(body_of(finish(&mut driver, 1)), b"two");
    let stats = driver.stats();
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    assert_eq!(stats.closed.get(CloseReason::Stale), 1, "{stats:?}");
    drop(driver);
    let unread = server.join().expect("server thread");
    assert_eq!(unread, 0, "the POST went out on the closed connection");
}

/// Two pooled connections close at once, while the loop stands still, so
/// one poll brings both closes. The first event fails the GET in flight on
/// one of them (nothing came back: it is retried), and the retry checks out
/// the other, whose close is later in the same batch: the probe at checkout
/// must ask the kernel (what the batch holds is not applied yet), find it
/// closed, and dial, instead of sending the retry on the dead connection.
#[test]
fn a_close_later_in_the_same_batch_is_found_by_the_probe() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (got_tx, got_rx) = channel::<()>();
    let (close_tx, close_rx) = channel::<()>();
    let (closed_tx, closed_rx) = channel::<()>();
    let server = thread::spawn(move || {
        let mut conns = [accept(&listener), accept(&listener)];
        for conn in &mut conns {
            read_request(conn);
            conn.write_all(&ok("one")).expect("answer");
        }
        // Which connection the next GET came on.
        for conn in &conns {
            conn.set_read_timeout(Some(Duration::from_millis(5)))
                .expect("read timeout");
        }
        let deadline = Instant::now() + BOUND;
        let mut byte = [0u8; 1];
        // Bounded by the deadline.
        let on = loop {
            assert!(Instant::now() < deadline, "the third GET did not come");
            if let Some(i) = (0..2).find(|&i| matches!(conns[i].peek(&mut byte), Ok(1))) {
                break i;
            }
        };
        read_request(&mut conns[on]);
        got_tx.send(()).expect("client alive");
        close_rx.recv_timeout(BOUND).expect("told to close");
        let [a, b] = conns;
        let (first, second) = if on == 0 { (a, b) } else { (b, a) };
        drop(first);
        drop(second);
        closed_tx.send(()).expect("client alive");
        let mut third = accept(&listener);
        read_request(&mut third);
        third.write_all(&ok("two")).expect("answer");
        assert!(client_closes(&mut third), "third connection not closed");
    });
    // The default probe threshold (1 ms): the idle connections are older.
    let mut driver = Driver::builder()
        .timeout(Some(BOUND))
        .build()
        .expect("a driver");
    driver.get(&url).submit();
    driver.get(&url).submit();
    assert_eq!(finish(&mut driver, 2).len(), 2);
    let stats = driver.stats();
    assert_eq!((stats.dials, stats.idle), (2, 2), "{stats:?}");
    driver.get(&url).submit();
    let deadline = Instant::now() + BOUND;
    // Turn the loop until the GET is out; then leave the sockets alone
    // while the server closes both. Bounded by the deadline.
    while got_rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the GET did not arrive");
        driver
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    close_tx.send(()).expect("server alive");
    closed_rx.recv_timeout(BOUND).expect("the server closed");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(body_of(finish(&mut driver, 1)), b"two");
    let stats = driver.stats();
    assert_eq!(
        (stats.dials, stats.reuses),
        (3, 1),
        "the retry reused the other dead connection: {stats:?}"
    );
    assert_eq!(stats.closed.get(CloseReason::Stale), 1, "{stats:?}");
    drop(driver);
    server.join().expect("server thread");
}
