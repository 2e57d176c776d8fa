//! Heap allocations per keep-alive GET (13 B body, nginx's 8 response
//! fields, no redirect, the body read to its end) on every backend: issue
//! 16 asks for at most 4. What they are: the request's URI (the URL string
//! copied into one allocation its parts share), the response's
//! `HeaderMap` (its index and its entries: 2), and the request's state
//! (blocking: the exchange, boxed so the response stays small to move;
//! tokio and smol: the task-side driver, boxed likewise; mio keeps it in
//! a slab slot and allocates none). Counted on the client's thread only
//! (the origin runs on threads of its own), after a warm-up that dials and
//! sizes the buffers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use roundtrip_io::ResponseExt;

#[global_allocator]
static GLOBAL: roundtrip_io::counting::ThreadCounting = roundtrip_io::counting::ThreadCounting;

/// The goal of issue 16.
const MAX_PER_GET: u64 = 4;
/// GETs counted in each batch, after [`WARM_UP`] uncounted ones.
const GETS: u64 = 50;
/// Batches counted: the fewest allocations of a batch is the client's
/// own count (a runtime may allocate for itself now and then, such as
/// smol's reactor when its thread parks on a busy machine).
const BATCHES: usize = 5;
const WARM_UP: u64 = 5;

/// nginx's answer to a GET of a 13 B file, for every request head read.
const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\
Date: Sun, 06 Dec 2026 20:00:00 GMT\r\nContent-Type: text/plain\r\n\
Content-Length: 13\r\nLast-Modified: Sun, 06 Dec 2026 19:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"6753a1b0-d\"\r\nAccept-Ranges: bytes\r\n\r\n\
Hello, world!";

/// A loopback origin answering every request head with [`REPLY`], one
/// thread per connection (each ends when its client closes, or after a
/// minute of silence).
fn origin() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind on loopback");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if stream.write_all(REPLY).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}/")
}

/// Allocations in each batch of [`GETS`] calls of `get` on this thread,
/// after the warm-up; the fewest must be at most [`MAX_PER_GET`] each.
fn per_get(backend: &str, mut get: impl FnMut()) {
    (0..WARM_UP).for_each(|_| get());
    let batches: Vec<u64> = (0..BATCHES)
        .map(|_| {
            let before = roundtrip_io::counting::thread_allocs();
            (0..GETS).for_each(|_| get());
            roundtrip_io::counting::thread_allocs() - before
        })
        .collect();
    let fewest = batches.iter().copied().min().unwrap_or(u64::MAX);
    eprintln!(
        "{backend}: allocations in batches of {GETS} keep-alive GETs {batches:?} \
         (fewest {:.2} per GET)",
        fewest as f64 / GETS as f64
    );
    assert!(
        fewest <= MAX_PER_GET * GETS,
        "{backend}: {batches:?} allocations in batches of {GETS} GETs"
    );
}

#[test]
fn blocking_allocates_at_most_4_per_get() {
    let url = origin();
    let client = roundtrip_blocking::Client::new();
    per_get("blocking", || {
        let mut response = client.get(url.as_str()).send().expect("a response");
        assert!(response.url().is_some_and(|u| *u == *url), "the URL");
        let body = response.body_mut().bytes(1024).expect("the body");
        assert_eq!(&body[..], b"Hello, world!");
    });
}

#[test]
fn mio_allocates_at_most_4_per_get() {
    let url = origin();
    let mut driver = roundtrip_mio::Driver::new().expect("a driver");
    per_get("mio", || {
        let id = driver.get(url.as_str()).submit();
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = loop {
            if let Some((done, result)) = driver.take_finished() {
                assert_eq!(done, id);
                break result.expect("a response");
            }
            assert!(Instant::now() < deadline, "no answer in 10 s");
            driver
                .run_once(Some(Duration::from_millis(100)))
                .expect("poll");
        };
        assert!(response.url().is_some_and(|u| *u == *url), "the URL");
        assert_eq!(*response.body(), "Hello, world!");
    });
}

#[test]
fn tokio_allocates_at_most_4_per_get() {
    let url = origin();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = roundtrip_tokio::Client::new();
    per_get("tokio", || {
        runtime.block_on(async {
            let response = client.get(url.as_str()).send().await.expect("a response");
            assert!(response.url().is_some_and(|u| *u == *url), "the URL");
            let body = response.into_body().bytes(1024).await.expect("the body");
            assert_eq!(&body[..], b"Hello, world!");
        })
    });
}

#[test]
fn smol_allocates_at_most_4_per_get() {
    let url = origin();
    let client = roundtrip_smol::Client::new();
    per_get("smol", || {
        smol::block_on(async {
            let response = client.get(url.as_str()).send().await.expect("a response");
            assert!(response.url().is_some_and(|u| *u == *url), "the URL");
            let body = response.into_body().bytes(1024).await.expect("the body");
            assert_eq!(&body[..], b"Hello, world!");
        })
    });
}
