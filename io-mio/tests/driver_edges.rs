//! The mio driver at its edges: results not taken, an idle loop, a
//! deadline too far for `std`, a `101` nobody asked for, and a resolver
//! that panics. Loopback servers scripted here; every wait bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_mio::resolve::Resolve;
use roundtrip_mio::{Driver, Error};

/// A loopback server: each connection goes to `serve` on its own thread.
fn server(serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Reads requests and answers each with `answer`, until the client closes
/// (or 10 s of silence).
fn answering(answer: &'static [u8]) -> impl Fn(TcpStream) + Send + Sync + Clone + 'static {
    move |mut stream: TcpStream| {
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                seen.drain(..end + 4);
                if answer.is_empty() || stream.write_all(answer).is_err() {
                    continue;
                }
            }
        }
    }
}

/// A result left in `take_finished` does not make `run_once` return at
/// once again and again while another request is still under way: the
/// loop waits as asked (it spun at 100% CPU).
#[test]
fn results_not_taken_do_not_make_run_once_spin() {
    let fast = server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let stall = server(answering(b""));
    let mut driver = Driver::new().unwrap();
    driver.get(format!("http://{fast}/")).submit();
    driver.get(format!("http://{stall}/")).submit();
    let started = Instant::now();
    while driver.run_once(Some(Duration::from_secs(1))).unwrap() == 0 {
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // One result waits, untaken; the other request stalls.
    let (mut calls, started) = (0, Instant::now());
    while started.elapsed() < Duration::from_millis(500) {
        driver.run_once(Some(Duration::from_millis(100))).unwrap();
        calls += 1;
    }
    assert!(calls <= 8, "{calls} calls in 500 ms: run_once did not wait");
    assert!(driver.take_finished().is_some());
}

/// `run_once(None)` with nothing in flight returns at once (nothing can
/// finish, however long it waits); `run_once(Some(t))` waits `t`.
#[test]
fn run_once_without_work_returns_at_once() {
    let mut driver = Driver::new().unwrap();
    let started = Instant::now();
    assert_eq!(driver.run_once(None).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(1));
    // With a timeout it waits it out: a loop that takes work from other
    // threads between turns must not spin.
    let started = Instant::now();
    assert_eq!(
        driver.run_once(Some(Duration::from_millis(200))).unwrap(),
        0
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

/// An idle timeout of `Duration::MAX` (and no other timeout) makes the
/// pool's expiry the next deadline: converting it must not overflow (it
/// panicked in `Instant + Duration`).
#[test]
fn a_deadline_too_far_for_std_is_no_panic() {
    let fast = server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let mut driver = Driver::builder()
        .idle_timeout(Some(Duration::MAX))
        .timeout(None)
        .read_timeout(None)
        .write_timeout(None)
        .build()
        .unwrap();
    driver.get(format!("http://{fast}/")).submit();
    let finished = driver.run_until_idle().unwrap();
    assert!(finished[0].1.is_ok(), "{:?}", finished[0].1);
    assert!(
        driver.poll_timeout().is_some(),
        "the idle connection's expiry"
    );
    driver.run_once(Some(Duration::from_millis(10))).unwrap();
}

/// A `101` to a request that asked for no upgrade is an error, and the
/// socket is not kept for a `take_upgraded` nobody will call.
#[test]
fn a_101_nobody_asked_for_is_an_error_and_keeps_no_socket() {
    let switching = server(answering(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ));
    let mut driver = Driver::new().unwrap();
    let id = driver.get(format!("http://{switching}/")).submit();
    let finished = driver.run_until_idle().unwrap();
    assert!(
        matches!(&finished[0].1, Err(Error::Protocol { .. })),
        "{:?}",
        finished[0].1
    );
    assert!(driver.take_upgraded(id).is_none());
    assert_eq!(driver.stats().in_use, 0);
}

/// A resolver that panics fails its request (and only it), and the
/// driver does not count the lookup as running for ever.
#[test]
fn a_resolver_that_panics_fails_its_request() {
    struct Panics;
    impl Resolve for Panics {
        fn resolve(&self, _: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
            panic!("a resolver bug");
        }
    }
    let mut driver = Driver::builder()
        .dns_resolver(Panics)
        .connect_timeout(Some(Duration::from_secs(5)))
        .build()
        .unwrap();
    driver.get("http://panics.test/").submit();
    let started = Instant::now();
    let finished = driver.run_until_idle().unwrap();
    assert!(finished[0].1.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it waited for the connect timeout: {:?}",
        started.elapsed()
    );
    // An idle driver does not poll for lookups every few milliseconds (a
    // stale deadline of the ended exchange may remain, seconds away).
    let next = driver.poll_timeout();
    assert!(
        next.is_none_or(|at| at > Instant::now() + Duration::from_millis(500)),
        "{next:?}"
    );
}

/// A stream callback that panics unwinds out of `run_once`, and the
/// driver's own loop still runs afterwards (it said "embedded in another
/// poll" for ever).
#[test]
fn a_panicking_callback_leaves_run_once_usable() {
    let fast = server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let mut driver = Driver::new().unwrap();
    let panics = roundtrip_mio::Receive::stream(|_, _| panic!("a callback bug"));
    let request = roundtrip_mio::http::Request::get(format!("http://{fast}/"))
        .body(roundtrip_mio::Body::empty())
        .unwrap();
    driver.submit_with(request, panics);
    let started = Instant::now();
    let unwound = loop {
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            driver.run_once(Some(Duration::from_millis(100)))
        }));
        match turn {
            Err(_) => break true,
            Ok(_) if started.elapsed() > Duration::from_secs(5) => break false,
            Ok(_) => {}
        }
    };
    assert!(unwound, "the callback ran");
    assert!(driver.run_once(Some(Duration::from_millis(10))).is_ok());
}

/// A callback that panics ends its own exchange with an error; the panic
/// still unwinds out of the call, but only after the other exchanges of
/// the turn were driven: a second large body, cut short for fairness in
/// the same turn, still arrives whole (it was dropped from the ready list
/// and, with no timeout, waited for ever).
#[test]
fn a_panicking_callback_fails_its_exchange_alone() {
    const LEN: usize = 4 << 20;
    let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").into_bytes();
    answer.resize(answer.len() + LEN, b'x');
    let big = server(answering(Box::leak(answer.into_boxed_slice())));
    let mut driver = Driver::builder().max_body_bytes(8 << 20).build().unwrap();
    let get = || {
        roundtrip_mio::http::Request::get(format!("http://{big}/"))
            .body(roundtrip_mio::Body::empty())
            .unwrap()
    };
    let panics = roundtrip_mio::Receive::stream(|_, _| panic!("a callback bug"));
    let bad = driver.submit_with(get(), panics);
    let good = driver.submit(get());
    let started = Instant::now();
    let (mut unwound, mut done) = (0, Vec::<roundtrip_mio::Finished>::new());
    while done.len() < 2 {
        let ended: Vec<_> = done.iter().map(|(id, r)| (*id, r.is_ok())).collect();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "ended: {ended:?}"
        );
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            driver.run_once(Some(Duration::from_millis(100)))
        }));
        unwound += usize::from(turn.is_err());
        done.extend(std::iter::from_fn(|| driver.take_finished()));
    }
    assert_eq!(unwound, 1, "the panic is passed on once");
    for (id, result) in done {
        match result {
            Ok(r) => assert_eq!((id, r.body().len()), (good, LEN)),
            Err(e) => assert!(id == bad && e.to_string().contains("panicked"), "{e}"),
        }
    }
}

/// A `RequestId` names a request of its own driver only: another driver's
/// `cancel` with it touches none of its own (each counted from 1, so the
/// first request of two drivers had the same id).
#[test]
fn an_id_from_another_driver_names_nothing() {
    let stall = server(answering(b""));
    let (mut a, mut b) = (Driver::new().unwrap(), Driver::new().unwrap());
    let from_a = a.get(format!("http://{stall}/")).submit();
    let from_b = b.get(format!("http://{stall}/")).submit();
    assert_ne!(from_a, from_b);
    assert!(!b.cancel(from_a), "b has no such request");
    assert!(b.cancel(from_b));
    assert!(a.cancel(from_a));
}

/// `run_until_idle` on a driver that cannot run its own loop (embedded)
/// fails, and what had finished before stays for `take_finished`.
#[test]
fn a_failed_run_until_idle_keeps_the_finished_results() {
    let poll = roundtrip_mio::mio::Poll::new().unwrap();
    let mut driver = Driver::builder()
        .build_in(poll.registry(), roundtrip_mio::mio::Token(1))
        .unwrap();
    let refused = driver.get("http://[::1/").submit();
    // In flight: a listener that never accepts.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let pending = driver
        .get(format!("http://{}/", silent.local_addr().unwrap()))
        .submit();
    assert!(driver.run_until_idle().is_err(), "embedded: no own loop");
    let (id, result) = driver.take_finished().expect("the refused request");
    assert_eq!(id, refused);
    assert!(result.is_err());
    assert!(driver.cancel(pending));
}

/// A body reader that claims more bytes than its buffer held, or is
/// interrupted for ever, fails its request with `RequestBody` (before: a
/// panic in `split_to` out of `run_until_idle`, and an event loop that
/// never returned), and the driver stays usable.
#[test]
fn a_body_reader_that_breaks_its_contract_fails_its_request() {
    enum Liar {
        OverClaims,
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
    let fast = server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let mut driver = Driver::new().unwrap();
    for liar in [Liar::OverClaims, Liar::Interrupted] {
        let body = roundtrip_mio::Body::from_reader(liar, None);
        driver.post(format!("http://{fast}/up")).body(body).submit();
        let finished = driver.run_until_idle().unwrap();
        let Err(Error::RequestBody(source)) = &finished[0].1 else {
            panic!("{:?}", finished[0].1);
        };
        assert!(source.to_string().contains("the body's reader"), "{source}");
    }
    driver.get(format!("http://{fast}/")).submit();
    assert!(driver.run_until_idle().unwrap()[0].1.is_ok());
    assert_eq!(driver.stats().in_use, 0);
}

/// A tracer that panics ends its own request alone, whatever it was
/// doing: at its checkout (inside `submit`), at its connect, or when a
/// check-in hands it a connection; and one that panics at every event
/// (again at the close the failed request's end traces). The panic comes
/// out of the driver's call; the request ends with `Error::Panicked`
/// ("not sent": nothing was written); its slot, permit and connection go
/// back; the loop goes idle and the host serves the next request.
/// (Before, the request stayed in flight for ever: `run_until_idle` never
/// returned.)
#[test]
fn a_panicking_tracer_ends_its_request_alone() {
    use roundtrip_mio::TraceEvent;
    use std::sync::{Arc, Mutex};
    let fast = server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let url = format!("http://{fast}/");
    // Which event panics next (once), by a name of the test's; "always":
    // every event panics (a tracer whose channel closed).
    let armed: Arc<Mutex<Option<&'static str>>> = Arc::default();
    let fires = Arc::clone(&armed);
    let mut driver = Driver::builder()
        .max_conns_per_host(Some(1))
        .trace(move |e: &TraceEvent| {
            let name = match e {
                TraceEvent::GetConn { .. } => "checkout",
                TraceEvent::ConnectDone { result: Ok(()), .. } => "connect",
                TraceEvent::GotConn {
                    was_idle: false,
                    reused: true,
                    ..
                } => "handover",
                _ => "any",
            };
            let hit = {
                let mut armed = fires.lock().unwrap();
                *armed == Some("always") || armed.take_if(|armed| *armed == name).is_some()
            };
            if hit {
                panic!("a tracer bug at {name}");
            }
        })
        .build()
        .unwrap();
    let finish = |driver: &mut Driver| {
        let started = Instant::now();
        let mut panics = 0;
        while !driver.is_idle() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still in flight"
            );
            let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                driver.run_once(Some(Duration::from_millis(50)))
            }));
            panics += usize::from(turn.is_err());
        }
        let done: Vec<_> = std::iter::from_fn(|| driver.take_finished()).collect();
        (panics, done)
    };
    let not_sent =
        |r: &Result<_, Error>| matches!(r, Err(e @ Error::Panicked { .. }) if !e.reached_server());
    let assert_settled = |driver: &Driver| {
        let stats = driver.stats();
        assert_eq!(
            (stats.in_use, stats.dialing, stats.waiters),
            (0, 0, 0),
            "{stats:?}"
        );
    };
    let submit = |driver: &mut Driver| {
        let submitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            driver.get(&url).submit();
        }));
        assert!(submitted.is_err(), "the panic comes out of submit");
    };
    // At the checkout, in `submit` itself.
    *armed.lock().unwrap() = Some("checkout");
    submit(&mut driver);
    let (_, done) = finish(&mut driver);
    assert!(done.len() == 1 && not_sent(&done[0].1), "{done:?}");
    // At the connect.
    *armed.lock().unwrap() = Some("connect");
    driver.get(&url).submit();
    let (panics, done) = finish(&mut driver);
    assert_eq!((panics, done.len()), (1, 1), "{done:?}");
    assert!(not_sent(&done[0].1), "{done:?}");
    // At a handover: the second request waits for the first's connection.
    *armed.lock().unwrap() = Some("handover");
    driver.get(&url).submit();
    driver.get(&url).submit();
    let (panics, done) = finish(&mut driver);
    assert_eq!(panics, 1);
    assert_eq!(
        done.iter().filter(|(_, r)| r.is_ok()).count(),
        1,
        "{done:?}"
    );
    assert!(done.iter().any(|(_, r)| not_sent(r)), "{done:?}");
    assert_settled(&driver);
    // At every event.
    *armed.lock().unwrap() = Some("always");
    submit(&mut driver);
    let (_, done) = finish(&mut driver);
    assert!(done.len() == 1 && done[0].1.is_err(), "{done:?}");
    *armed.lock().unwrap() = None;
    assert_settled(&driver);
    driver.get(&url).submit();
    assert!(driver.run_until_idle().unwrap()[0].1.is_ok());
}

/// A redirect policy that panics on a `307` to a POST ends the request
/// with `Error::Panicked`, which says the request may have reached the
/// server (it answered): a caller must not take it for one never sent
/// (it was a misuse error, "not sent").
#[test]
fn a_panicking_redirect_policy_says_the_request_was_sent() {
    let moved = server(answering(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
    ));
    let policy = roundtrip_mio::RedirectPolicy::new(|_| panic!("a policy bug"));
    let mut driver = Driver::builder()
        .redirect_policy(Some(policy))
        .build()
        .unwrap();
    let body = roundtrip_mio::Body::from("form");
    driver.post(format!("http://{moved}/")).body(body).submit();
    let started = Instant::now();
    let mut done = Vec::new();
    while done.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still in flight"
        );
        let turn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            driver.run_once(Some(Duration::from_millis(50)))
        }));
        drop(turn);
        done.extend(std::iter::from_fn(|| driver.take_finished()));
    }
    let Err(e @ Error::Panicked { .. }) = &done[0].1 else {
        panic!("{:?}", done[0].1);
    };
    assert!(e.reached_server(), "{e}");
    assert_eq!(driver.stats().in_use, 0);
}
