//! A resolver that hangs cannot hold a request past its deadline: the
//! lookup runs on a thread of its own and the request ends at the connect
//! timeout, traced with `DnsStart` and a failed `DnsDone`. No network: the
//! resolver never answers in time, and nothing is dialed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roundtrip_blocking::resolve::Resolve;
use roundtrip_blocking::{Client, Error, Phase, TimeoutKind, TraceEvent};

/// Answers after 3 s (with an address nothing is dialed to in time).
struct Hanging;

impl Resolve for Hanging {
    fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        std::thread::sleep(Duration::from_secs(3));
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

#[test]
fn a_hanging_lookup_ends_at_the_connect_timeout() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let client = Client::builder()
        .dns_resolver(Hanging)
        .connect_timeout(Some(Duration::from_millis(300)))
        .trace(move |e: &TraceEvent| seen.lock().unwrap().push(e.clone()))
        .build();
    let started = Instant::now();
    let err = client.get("http://hangs.test:9/").send().unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Connect,
                phase: Phase::Connect,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let events = events.lock().unwrap();
    assert!(
        matches!(&events[1], TraceEvent::DnsStart { host } if host == "hangs.test"),
        "{events:?}"
    );
    assert!(
        matches!(&events[2], TraceEvent::DnsDone { result: Err(_) }),
        "{events:?}"
    );
}

/// A cancel ends a request waiting on a lookup that hangs at once, not at
/// its connect timeout.
#[test]
fn a_cancel_ends_a_hanging_lookup() {
    let cancel = roundtrip_blocking::Cancel::new();
    let client = Client::builder()
        .dns_resolver(Hanging)
        .connect_timeout(Some(Duration::from_secs(10)))
        .build();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let err = client
        .get("http://hangs.test:9/")
        .extension(cancel)
        .send()
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    canceller.join().unwrap();
}

/// Counts its lookups, each of which hangs 10 s (the threads left are
/// ended with the test binary).
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl Resolve for Counting {
    fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(10));
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

/// Requests that need a name whose lookup hangs wait for that one lookup
/// (Go's `singleflight`): a resolver that hangs costs a thread per name,
/// not one per request left behind at its deadline.
#[test]
fn requests_share_a_hanging_lookup() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = Client::builder()
        .dns_resolver(Counting(Arc::clone(&calls)))
        .connect_timeout(Some(Duration::from_millis(300)))
        .build();
    let start = Arc::new(std::sync::Barrier::new(16));
    let requests: Vec<_> = (0..16)
        .map(|_| {
            let (client, start) = (client.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                client.get("http://hangs.test:9/").send().unwrap_err()
            })
        })
        .collect();
    for request in requests {
        let err = request.join().unwrap();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    kind: TimeoutKind::Connect,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // Later requests, the lookup still hanging, join it too.
    for _ in 0..3 {
        let err = client.get("http://HANGS.test:9/").send().unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Refuses every lookup.
struct NoLookup;

impl Resolve for NoLookup {
    fn resolve(&self, host: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
        Err(std::io::Error::other(format!(
            "no lookup expected for {host}"
        )))
    }
}

/// `resolve(host, addr)` pins the name on every port, as reqwest's does
/// (the URL's port is dialed; `addr`'s, here 0, is not used): it fell
/// back to the system's lookup for any port but `addr`'s before.
#[test]
fn resolve_pins_a_name_on_every_port() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\npinned")
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let client = Client::builder()
        // No lookup may leave the machine: one that is made fails.
        .dns_resolver(NoLookup)
        .resolve("pinned.invalid", "127.0.0.1:0".parse().unwrap())
        .connect_timeout(Some(Duration::from_secs(5)))
        .build();
    let url = format!("http://pinned.invalid:{port}/");
    let mut response = client.get(url.as_str()).send().unwrap();
    assert_eq!(response.body_mut().text(1024).unwrap(), "pinned");
    let head = server.join().unwrap();
    assert!(
        head.contains(&format!("\r\nhost: pinned.invalid:{port}\r\n"))
            || head.contains(&format!("\r\nHost: pinned.invalid:{port}\r\n")),
        "{head}"
    );
}
