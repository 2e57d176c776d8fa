//! The blocking client's `Cancel`, an upgraded socket and a body read on
//! after its error, against loopback servers scripted here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_blocking::{Cancel, Client, Error};

/// A loopback server: each accepted connection is handed to `serve` on a
/// thread of its own. Returns the base URL.
fn server(serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> String {
    serve_on(TcpListener::bind("127.0.0.1:0").unwrap(), serve)
}

/// Hands each connection `listener` accepts to `serve` on a thread of
/// its own. Returns the base URL.
fn serve_on(
    listener: TcpListener,
    serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static,
) -> String {
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            thread::spawn(move || serve(stream));
        }
    });
    format!("http://{addr}")
}

/// Reads one request head from `stream`.
fn read_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// Waits until the client closes (or 10 s pass).
fn hold(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// A cancel while the body is being read (chunked, the rest never coming)
/// ends the read at once with `Cancelled`: it spun on the empty reads the
/// shutdown made, then failed as misuse.
#[test]
fn a_cancel_mid_body_ends_the_read_with_cancelled() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            hold(stream);
        }
    });
    let cancel = Cancel::new();
    let client = Client::new();
    let response = client.get(&url).extension(cancel.clone()).send().unwrap();
    let mut body = response.into_body();
    assert_eq!(&body.chunk().unwrap().unwrap()[..], b"hello");
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = body.chunk().unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    canceller.join().unwrap();
    assert_eq!(client.stats().idle, 0, "a shut-down socket is not pooled");
}

/// One token shared by two requests in flight wakes both; a cancel that
/// comes after a request ended does not touch its pooled connection.
#[test]
fn a_shared_token_wakes_every_request_and_a_late_cancel_touches_nothing() {
    let stall = server(|mut stream| {
        if read_head(&mut stream) {
            hold(stream);
        }
    });
    let cancel = Cancel::new();
    let client = Client::new();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (client, cancel, url) = (client.clone(), cancel.clone(), stall.clone());
            thread::spawn(move || client.get(&url).extension(cancel).send())
        })
        .collect();
    // Both requests are in flight (bounded: 5 s) before the cancel.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.stats().in_use < 2 {
        assert!(Instant::now() < deadline, "{:?}", client.stats());
        thread::sleep(Duration::from_millis(2));
    }
    let started = Instant::now();
    cancel.cancel();
    for request in waiting {
        let err = request.join().unwrap().unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));

    let ok = server(|mut stream| {
        while read_head(&mut stream) {
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let late = Cancel::new();
    let client = Client::new();
    let first = client.get(&ok).extension(late.clone()).send().unwrap();
    assert_eq!(first.into_body().text(16).unwrap(), "ok");
    late.cancel();
    let second = client.get(&ok).send().unwrap();
    assert_eq!(second.into_body().text(16).unwrap(), "ok");
    let stats = client.stats();
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
}

/// An upgraded socket is the caller's: blocking, without the read timeout
/// the exchange had (a quiet peer is not an error).
#[test]
fn an_upgraded_socket_keeps_no_timeout() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\n",
            );
            thread::sleep(Duration::from_millis(600));
            let _ = stream.write_all(b"late");
        }
    });
    let client = Client::builder()
        .read_timeout(Some(Duration::from_millis(200)))
        .build();
    let response = client
        .get(&url)
        .header("upgrade", "test")
        .header("connection", "upgrade")
        .send()
        .unwrap();
    assert_eq!(response.status(), 101);
    let mut upgraded = response.into_body().upgrade().unwrap();
    let mut got = [0u8; 4];
    upgraded.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"late");
}

/// A cancel after the switch's head: `upgrade` says the request was
/// cancelled (the cancel shut the socket down) instead of handing over
/// a socket that reads nothing.
#[test]
fn an_upgrade_after_a_cancel_is_cancelled() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: upgrade\r\n\r\n",
            );
            hold(stream);
        }
    });
    let cancel = Cancel::new();
    let response = Client::new()
        .get(&url)
        .header("upgrade", "test")
        .header("connection", "upgrade")
        .extension(cancel.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 101);
    cancel.cancel();
    let err = response.into_body().upgrade().unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
}

/// After a body's error, reading on fails again instead of reporting a
/// clean end: the body was cut, not complete.
#[test]
fn a_body_read_on_after_its_error_keeps_failing() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        }
    });
    let mut body = Client::new().get(&url).send().unwrap().into_body();
    let mut all = Vec::new();
    let first_err = loop {
        match body.chunk() {
            Ok(Some(piece)) => all.extend_from_slice(&piece),
            Ok(None) => panic!("a cut body reported complete"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(first_err, Error::ClosedEarly { .. }),
        "{first_err:?}"
    );
    assert!(body.chunk().is_err(), "read on after the error");
    let mut rest = Vec::new();
    assert!(body.read_to_end(&mut rest).is_err());
}

/// A tracer that panics (then again, on the lock its panic poisoned)
/// unwinds out of the request without aborting the process, and the pool
/// keeps no slot for the connection it held.
#[test]
fn a_panicking_tracer_neither_aborts_nor_leaks_a_slot() {
    let url = server(|mut stream| {
        while read_head(&mut stream) {
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(0));
    let client = Client::builder()
        .max_conns_per_host(Some(1))
        .trace(move |event: &roundtrip_blocking::TraceEvent| {
            let mut count = seen.lock().unwrap(); // panics once poisoned
            *count += 1;
            if matches!(event, roundtrip_blocking::TraceEvent::GotConn { .. }) {
                panic!("a tracer bug");
            }
        })
        .build();
    let unwound =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.get(&url).send()));
    assert!(unwound.is_err(), "the tracer's panic comes through");
    let stats = client.stats();
    assert_eq!((stats.in_use, stats.dialing), (0, 0), "{stats:?}");
}

/// A reader that gives one byte at a time.
struct OneByte(usize);

impl Read for OneByte {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 || out.is_empty() {
            return Ok(0);
        }
        self.0 -= 1;
        out[0] = b'x';
        Ok(1)
    }
}

/// An upload of many small pieces is many waits, not a machine that
/// spins: 60,000 one-byte reads (120,000 actions in one call, over the
/// bound on actions between waits) go out whole (the call failed with
/// "the exchange made no progress").
#[test]
fn an_upload_of_many_small_pieces_goes_out_whole() {
    const LEN: usize = 60_000;
    let url = server(|mut stream: TcpStream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        if !read_head(&mut stream) {
            return;
        }
        let mut body = vec![0u8; LEN];
        if stream.read_exact(&mut body).is_ok() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        hold(stream);
    });
    let client = Client::new();
    let body = roundtrip_blocking::Body::from_reader(OneByte(LEN), Some(LEN as u64));
    let mut response = client
        .post(format!("{url}/up"))
        .body(body)
        .send()
        .expect("the upload goes out");
    assert_eq!(response.status(), 200);
    assert_eq!(response.body_mut().text(16).unwrap(), "ok");
}

/// A deadline is not passed by the socket's timeout: a head that comes
/// in part early, then never ends, fails at the request's timeout, not
/// an eighth of it later (the socket kept the first wait's timeout while
/// it was at most an eighth longer than the wait left).
#[test]
fn the_total_timeout_is_kept_when_a_head_comes_in_part() {
    let url = server(|mut stream: TcpStream| {
        if !read_head(&mut stream) {
            return;
        }
        // Within the first ninth of the timeout: the socket's first
        // timeout was kept for the rest (an eighth of slack), and fired
        // 150 ms past the deadline.
        thread::sleep(Duration::from_millis(150));
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
        hold(stream);
    });
    let client = Client::builder()
        .timeout(Some(Duration::from_millis(1600)))
        .build();
    let started = Instant::now();
    let err = client.get(format!("{url}/")).send().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(1590) && took < Duration::from_millis(1700),
        "{took:?}"
    );
}

/// A zero write timeout bounds writes that would wait; it does not fail
/// every connect (`std` refuses a zero socket timeout: each connect
/// failed with 'cannot set a 0 duration timeout'). A request the socket
/// takes at once goes out.
#[test]
fn a_zero_write_timeout_does_not_fail_the_connect() {
    let url = server(|mut stream: TcpStream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        hold(stream);
    });
    let client = Client::builder()
        .write_timeout(Some(Duration::ZERO))
        .build();
    let mut response = client.get(format!("{url}/")).send().expect("sent");
    assert_eq!(response.body_mut().text(16).unwrap(), "ok");
}

/// Answers `413` to a request's head, then reads nothing more (5 s).
fn refuse_the_upload(mut stream: TcpStream) {
    if read_head(&mut stream) {
        let answer = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n";
        let _ = stream.write_all(answer);
        thread::sleep(Duration::from_secs(5));
    }
}

/// A large in-memory upload to `url` (a server that refuses it): the
/// answer comes back at once, not after the write timeout.
fn assert_the_early_413_is_seen_at_once(url: &str) {
    let client = Client::builder()
        .write_timeout(Some(Duration::from_secs(3)))
        .build();
    let started = Instant::now();
    let result = client
        .post(format!("{url}/up"))
        .body(vec![0u8; 64 << 20])
        .send();
    let took = started.elapsed();
    let response = result.expect("the early answer");
    assert_eq!(response.status(), 413);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// A server that answers `413` to the head of a large in-memory upload
/// and stops reading: the answer is seen at once (one blocking write of
/// the whole body held the request).
#[test]
fn an_early_413_during_a_large_in_memory_body_is_seen_at_once() {
    assert_the_early_413_is_seen_at_once(&server(refuse_the_upload));
}

/// A listener whose connections have a small receive buffer (set before
/// `listen`, so accepted sockets inherit it): a client's upload soon
/// fills the window, and its socket has no room.
fn small_window_server(serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> String {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(16).unwrap();
    serve_on(socket.into(), serve)
}

/// The same behind a small window. The first write (nothing sent yet, so
/// not watching for an answer) was a blocking send of up to 256 KiB,
/// held until the socket's send timeout where the kernel's send buffer
/// is small (on loopback it grows to megabytes: this passed before too).
#[test]
fn an_early_413_behind_a_small_window_is_seen_at_once() {
    assert_the_early_413_is_seen_at_once(&small_window_server(refuse_the_upload));
}

/// A cancel while the upload waits for room says the request may have
/// reached the server: bytes of it went out. (The driver dropped the
/// count of a write that returned after the cancel came: a blocking send
/// the cancel's shutdown cut short. On loopback, where the kernel grows
/// the client's send buffer to megabytes, that send never blocked, so
/// this case passed before that fix too; it holds the rule for every
/// write path.)
#[test]
fn a_cancel_during_a_stalled_upload_says_it_reached_the_server() {
    let url = small_window_server(|mut stream: TcpStream| {
        if read_head(&mut stream) {
            hold_without_reading(stream);
        }
    });
    let cancel = Cancel::new();
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = Client::new()
        .post(format!("{url}/up"))
        .body(vec![0u8; 16 << 20])
        .extension(cancel)
        .send()
        .unwrap_err();
    canceller.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(err.reached_server(), "{err:?}");
}

/// Holds a connection open without reading from it (bounded: 6 s).
fn hold_without_reading(stream: TcpStream) {
    thread::sleep(Duration::from_secs(6));
    drop(stream);
}

/// Signals sent to a thread waiting for a body do not hold its read
/// timeout off: each one ended the read with `EINTR`, which was retried
/// with the socket's receive timeout started again, so signals more often
/// than the timeout kept the read waiting for ever (and one signal
/// pushed the deadline back by up to the whole wait).
#[test]
fn signals_do_not_hold_the_read_timeout_off() {
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: a handler that does nothing, installed with SA_RESTART (the
    // kernel still fails a socket read under a timeout with EINTR).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
            hold(stream);
        }
    });
    let reader = thread::spawn(move || {
        let client = Client::builder()
            .read_timeout(Some(Duration::from_millis(300)))
            .build();
        let mut body = client.get(&url).send().unwrap().into_body();
        let started = Instant::now();
        let err = body.chunk().unwrap_err();
        (err, started.elapsed())
    });
    // SIGUSR1 to the reader every 50 ms until it is done (bounded: 5 s).
    use std::os::unix::thread::JoinHandleExt;
    let thread = reader.as_pthread_t();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() && Instant::now() < deadline {
        // SAFETY: the thread has not been joined, so its id is live.
        unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        reader.is_finished(),
        "the read outlived its timeout by 4.7 s"
    );
    let (err, took) = reader.join().unwrap();
    assert!(err.is_timeout(), "{err:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// After `bytes` failed on its limit, reading on fails too: the pieces
/// decoded ahead come after those the failed call dropped, and were
/// returned as if they followed on.
#[test]
fn a_body_read_on_after_its_limit_keeps_failing() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..10 {
                answer.extend_from_slice(b"3e8\r\n");
                answer.extend_from_slice(&[b'x'; 1000]);
                answer.extend_from_slice(b"\r\n");
            }
            let _ = stream.write_all(&answer);
            hold(stream);
        }
    });
    let mut body = Client::new().get(&url).send().unwrap().into_body();
    let err = roundtrip_blocking::ResponseBody::bytes(&mut body, 1500).unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { .. }), "{err:?}");
    let mut rest = Vec::new();
    let read_on = body.read_to_end(&mut rest);
    assert!(read_on.is_err(), "read on after the limit: {read_on:?}");
    assert!(rest.is_empty(), "{} bytes after the hole", rest.len());
}

/// The read timeout is the longest wait for the next bytes once the
/// caller asks for them: time the caller spends between reads is not
/// counted. After a read straight into the caller's slice (and when the
/// head arrived) the body looked, without waiting, whether it had ended,
/// and that look started the read timeout: a caller that read on later
/// than the timeout failed at once (a 1 ms wait) though the server was
/// about to send, while the same caller over TLS or gzip did not.
#[test]
fn time_between_reads_is_not_waiting() {
    let url = server(|mut stream| {
        if read_head(&mut stream) {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
            thread::sleep(Duration::from_millis(600));
            let _ = stream.write_all(b"a");
            thread::sleep(Duration::from_millis(600));
            let _ = stream.write_all(b"bc");
            hold(stream);
        }
    });
    let client = Client::builder()
        .read_timeout(Some(Duration::from_millis(400)))
        .build();
    let mut body = client.get(&url).send().unwrap().into_body();
    // The caller starts reading late: 450 ms after the head.
    thread::sleep(Duration::from_millis(450));
    let mut byte = [0u8; 1];
    assert_eq!(body.read(&mut byte).unwrap(), 1, "the body's first byte");
    // And reads on late again.
    thread::sleep(Duration::from_millis(450));
    let mut rest = Vec::new();
    body.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"bc");
}

/// A body reader that breaks `Read`'s contract.
enum Liar {
    /// Says it read one byte more than it was given room for.
    OverClaims,
    /// Answers `Interrupted` for ever.
    Interrupted,
}

impl Read for Liar {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Liar::OverClaims => Ok(out.len() + 1),
            Liar::Interrupted => Err(std::io::ErrorKind::Interrupted.into()),
        }
    }
}

/// A reader that claims more bytes than its buffer held, or is
/// interrupted for ever, fails its request with `RequestBody` (before: a
/// panic in `split_to`, and a call that never returned), and its
/// connection is not kept.
#[test]
fn a_body_reader_that_breaks_its_contract_fails_the_request() {
    for liar in [Liar::OverClaims, Liar::Interrupted] {
        let url = server(|mut stream: TcpStream| {
            if read_head(&mut stream) {
                hold(stream);
            }
        });
        let client = Client::new();
        let body = roundtrip_blocking::Body::from_reader(liar, None);
        let err = client
            .post(format!("{url}/up"))
            .body(body)
            .send()
            .unwrap_err();
        let Error::RequestBody(source) = &err else {
            panic!("{err:?}");
        };
        assert!(source.to_string().contains("the body's reader"), "{err}");
        assert!(err.is_body(), "{err:?}");
        let stats = client.stats();
        assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
    }
}
