//! Host names are looked up off the loop: a lookup that takes 2 s (a
//! resolver plugged in with `dns_resolver`) does not delay the other
//! exchanges of the same driver, and its own request completes after it,
//! traced with `DnsStart` and `DnsDone`. Loopback only; every wait bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_mio::resolve::Resolve;
use roundtrip_mio::{Driver, TraceEvent};

/// How long the slow name takes to resolve.
const SLOW: Duration = Duration::from_secs(2);

/// `slow.test` takes [`SLOW`]; every name resolves to 127.0.0.1.
struct SlowResolver;

impl Resolve for SlowResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if host == "slow.test" {
            thread::sleep(SLOW);
        }
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

/// A server answering every request of every connection with `ok`, for
/// `conns` connections.
fn serve(conns: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for stream in listener.incoming().take(conns) {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                // Bounded by the read timeout and the client's close.
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_slow_lookup_does_not_stall_the_loop() {
    let addr = serve(64);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let mut driver = Driver::builder()
        .dns_resolver(SlowResolver)
        .timeout(Some(Duration::from_secs(10)))
        .trace(move |e: &TraceEvent| seen.lock().unwrap().push(e.clone()))
        .build()
        .expect("a driver");
    let started = Instant::now();
    let slow = driver
        .get(format!("http://slow.test:{}/", addr.port()))
        .submit();
    let fast: Vec<_> = (0..20)
        .map(|_| {
            driver
                .get(format!("http://127.0.0.1:{}/", addr.port()))
                .submit()
        })
        .collect();
    let mut fast_done = 0;
    let mut fast_at = None;
    let mut slow_at = None;
    // Bounded: 10 s at most.
    while slow_at.is_none() && started.elapsed() < Duration::from_secs(10) {
        driver
            .run_once(Some(Duration::from_millis(50)))
            .expect("run");
        while let Some((id, result)) = driver.take_finished() {
            let response = result.expect("every request succeeds");
            assert_eq!(response.body().as_ref(), b"ok");
            if id == slow {
                slow_at = Some(started.elapsed());
            } else {
                assert!(fast.contains(&id));
                fast_done += 1;
                if fast_done == fast.len() {
                    fast_at = Some(started.elapsed());
                }
            }
        }
    }
    let fast_at = fast_at.expect("the 20 fast requests finished");
    let slow_at = slow_at.expect("the slow request finished");
    assert!(
        fast_at < Duration::from_millis(1500),
        "the fast requests waited for the slow lookup: {fast_at:?}"
    );
    assert!(
        slow_at >= SLOW,
        "the slow lookup did not take its time: {slow_at:?}"
    );
    let events = events.lock().unwrap();
    let dns: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, TraceEvent::DnsStart { .. } | TraceEvent::DnsDone { .. }))
        .collect();
    assert_eq!(
        dns.len(),
        2,
        "one lookup (the IP literal needs none): {dns:?}"
    );
    assert!(matches!(dns[0], TraceEvent::DnsStart { host } if host == "slow.test"));
    assert!(matches!(dns[1], TraceEvent::DnsDone { result: Ok(addrs) } if addrs.len() == 1));
}

#[test]
fn an_override_answers_without_a_lookup() {
    let addr = serve(1);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let mut driver = Driver::builder()
        .dns_resolver(SlowResolver)
        .resolve("slow.test", addr)
        .trace(move |e: &TraceEvent| seen.lock().unwrap().push(e.clone()))
        .build()
        .expect("a driver");
    let started = Instant::now();
    driver
        .get(format!("http://slow.test:{}/", addr.port()))
        .submit();
    let done = driver.run_until_idle().expect("run");
    assert_eq!(done.len(), 1);
    assert!(done[0].1.is_ok(), "{:?}", done[0].1.as_ref().err());
    assert!(started.elapsed() < SLOW, "the override was not used");
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, TraceEvent::DnsStart { .. }))
    );
}

/// Counts the lookups running at once, the most at once, and all of
/// them; each takes 100 ms.
struct Counting {
    now: Arc<Mutex<(usize, usize, usize)>>,
}

impl Resolve for Counting {
    fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        {
            let mut n = self.now.lock().unwrap();
            n.0 += 1;
            n.1 = n.1.max(n.0);
            n.2 += 1;
        }
        thread::sleep(Duration::from_millis(100));
        self.now.lock().unwrap().0 -= 1;
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

/// Lookups run on the resolver's threads, at most
/// `roundtrip_io::resolve::MAX_LOOKUP_THREADS` (64) at once, and requests
/// for a name whose lookup runs wait for that one (the driver ran a
/// lookup per request before, on 16 threads of its own).
#[test]
fn lookups_share_a_bounded_number_of_threads() {
    let addr = serve(90);
    let counts = Arc::new(Mutex::new((0, 0, 0)));
    let resolver = Counting {
        now: Arc::clone(&counts),
    };
    let mut driver = Driver::builder()
        .dns_resolver(resolver)
        .timeout(Some(Duration::from_secs(10)))
        .build()
        .expect("a driver");
    // 80 names, each its own host (and lookup), and 10 requests for one.
    // (Lookups start as requests are submitted.)
    let started = Instant::now();
    let ids: Vec<_> = (0..80)
        .map(|i| format!("http://host{i}.test:{}/", addr.port()))
        .chain((0..10).map(|_| format!("http://shared.test:{}/", addr.port())))
        .map(|url| driver.get(url).submit())
        .collect();
    let mut done = 0;
    // Bounded: 10 s at most.
    while done < ids.len() && started.elapsed() < Duration::from_secs(10) {
        driver
            .run_once(Some(Duration::from_millis(50)))
            .expect("run");
        while let Some((_, result)) = driver.take_finished() {
            assert_eq!(
                result.expect("every request succeeds").body().as_ref(),
                b"ok"
            );
            done += 1;
        }
    }
    assert_eq!(done, ids.len());
    let (running, most, calls) = *counts.lock().unwrap();
    assert_eq!(running, 0);
    assert_eq!(calls, 81, "one lookup per name");
    // At most 64 threads at once: 81 lookups of 100 ms take 2 rounds.
    assert!((32..=64).contains(&most), "{most} lookups ran at once");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}
