//! The process's idle alarm thread (one for every blocking client) goes on
//! after a client's tracer panicked on it: a second client's idle
//! connection still closes on time. Its own test binary: the thread is
//! the process's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_blocking::{Client, TraceEvent};

/// A keep-alive origin answering every request with `ok`, on loopback.
fn origin() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        head.clear();
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Waits (bounded by 5 s) until `client` holds no idle connection.
fn idle_goes(client: &Client) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if client.stats().idle == 0 {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_panicking_tracer_does_not_stop_the_alarms() {
    static PANICKED: AtomicBool = AtomicBool::new(false);
    let url = format!("http://{}/", origin());
    let idle = Some(Duration::from_millis(300));
    let panicking = Client::builder()
        .idle_timeout(idle)
        .trace(|event: &TraceEvent| {
            if let TraceEvent::ConnClosed { .. } = event {
                PANICKED.store(true, Ordering::SeqCst);
                panic!("the tracer panics (as this test wants)");
            }
        })
        .build();
    let mut response = panicking.get(url.as_str()).send().unwrap();
    assert_eq!(response.body_mut().bytes(10).unwrap(), "ok");
    drop(response);
    assert!(idle_goes(&panicking), "{:?}", panicking.stats());
    assert!(PANICKED.load(Ordering::SeqCst), "the tracer was called");
    let client = Client::builder().idle_timeout(idle).build();
    let mut response = client.get(url.as_str()).send().unwrap();
    assert_eq!(response.body_mut().bytes(10).unwrap(), "ok");
    drop(response);
    assert_eq!(client.stats().idle, 1);
    assert!(idle_goes(&client), "{:?}", client.stats());
}
