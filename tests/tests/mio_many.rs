//! The mio driver's reason to exist: many exchanges at once on one thread.
//! 256 requests submitted together over at most 16 connections
//! (`max_conns_per_host`), answered with sized and chunked bodies of varying
//! length; every body exact, 16 connections accepted, the pool clean after.
//! Then cancellation in the middle of a batch leaves the pool clean too, and
//! bodies over the collect limit fail alone while the rest of a batch goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtrip_mio::{Body, Driver, RequestId, Trailers, http};
use roundtrip_tests::server::{Request, ScriptServer, Step, chunked, ok};

const REQUESTS: usize = 256;
const CONNS: usize = 16;

/// The body of request `n`: its own length and bytes.
fn body_of(n: usize) -> Vec<u8> {
    let len = (n * 37) % 4001;
    (0..len).map(|k| ((k + n) % 251) as u8).collect()
}

/// Answers `/n` with request n's body: sized for even n, chunked (in two
/// pieces, with a trailer naming n) for odd n.
fn handler(req: &Request) -> Vec<u8> {
    let n: usize = req.target[1..].parse().expect("numeric target");
    let body = body_of(n);
    if n.is_multiple_of(2) {
        ok(&body)
    } else {
        let (a, b) = body.split_at(body.len() / 2);
        chunked(&[a, b], &[("X-N", &n.to_string())])
    }
}

fn get(driver: &mut Driver, base: &str, n: usize) -> RequestId {
    let request = http::Request::get(format!("{base}{n}"))
        .body(Body::empty())
        .expect("a valid request");
    driver.submit(request)
}

/// Turns the loop until `want` results arrived or 30 s passed.
fn collect(driver: &mut Driver, want: usize) -> Vec<roundtrip_mio::Finished> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = Vec::new();
    // Bounded by the count and the deadline.
    while done.len() < want && Instant::now() < deadline {
        driver
            .run_once(Some(Duration::from_millis(100)))
            .expect("poll");
        while let Some(finished) = driver.take_finished() {
            done.push(finished);
        }
    }
    done
}

#[test]
fn many_requests_over_few_connections_on_one_thread() {
    let server = ScriptServer::start(vec![vec![Step::Serve(Arc::new(handler))]]).repeat_last(true);
    let base = server.url("/");
    let mut driver = Driver::builder()
        .max_conns_per_host(Some(CONNS))
        .timeout(Some(Duration::from_secs(20)))
        .build()
        .expect("a driver");
    let ids: HashMap<RequestId, usize> = (0..REQUESTS)
        .map(|n| (get(&mut driver, &base, n), n))
        .collect();
    let stats = driver.stats();
    assert_eq!(
        (stats.dialing, stats.waiters),
        (CONNS, REQUESTS - CONNS),
        "{stats:?}"
    );
    let done = collect(&mut driver, REQUESTS);
    assert_eq!(done.len(), REQUESTS, "not all finished");
    for (id, result) in done {
        let n = ids[&id];
        let response = result.unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert_eq!(response.status(), 200);
        assert!(*response.body() == body_of(n), "request {n}: body differs");
        let trailer = response
            .extensions()
            .get::<Trailers>()
            .map(|t| t.0["x-n"].clone());
        assert_eq!(trailer.is_some(), n % 2 == 1, "request {n}: trailers");
        if let Some(value) = trailer {
            assert_eq!(value, n.to_string().as_str());
        }
    }
    assert!(driver.is_idle());
    assert_eq!(server.accepted(), CONNS);
    assert_eq!(server.requests().len(), REQUESTS);
    let stats = driver.stats();
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle),
        (CONNS as u64, (REQUESTS - CONNS) as u64, CONNS),
        "{stats:?}"
    );
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    server.assert_no_errors();
}

#[test]
fn cancelled_requests_leave_the_pool_clean() {
    let server = ScriptServer::start(vec![vec![Step::Serve(Arc::new(handler))]]).repeat_last(true);
    let base = server.url("/");
    let mut driver = Driver::builder()
        .max_conns_per_host(Some(4))
        .timeout(Some(Duration::from_secs(20)))
        .build()
        .expect("a driver");
    let ids: Vec<(RequestId, usize)> = (0..64).map(|n| (get(&mut driver, &base, n), n)).collect();
    // Cancel every third request: some are on connections, most still wait.
    let mut kept = HashMap::new();
    for (i, (id, n)) in ids.into_iter().enumerate() {
        if i.is_multiple_of(3) {
            assert!(driver.cancel(id), "request {n} was in flight");
            assert!(!driver.cancel(id), "cancelled twice");
        } else {
            kept.insert(id, n);
        }
    }
    let done = collect(&mut driver, kept.len());
    assert_eq!(done.len(), kept.len());
    for (id, result) in done {
        let n = kept.remove(&id).expect("only kept requests report");
        let response = result.unwrap_or_else(|e| panic!("request {n}: {e}"));
        assert!(*response.body() == body_of(n), "request {n}: body differs");
    }
    assert!(driver.is_idle() && driver.take_finished().is_none());
    let stats = driver.stats();
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.dials <= 4 + stats.closed.total(), "{stats:?}");
    assert_eq!(
        stats.idle as u64,
        stats.dials - stats.closed.total(),
        "{stats:?}"
    );
    // Connects cancelled halfway were accepted by the server but never dialed.
    assert!(server.accepted() as u64 >= stats.dials);
}

#[test]
fn bodies_over_the_limit_fail_alone() {
    let server = ScriptServer::start(vec![vec![Step::Serve(Arc::new(handler))]]).repeat_last(true);
    let base = server.url("/");
    let mut driver = Driver::builder()
        .max_conns_per_host(Some(2))
        .max_body_bytes(500)
        .timeout(Some(Duration::from_secs(20)))
        .build()
        .expect("a driver");
    let ids: HashMap<RequestId, usize> = (0..32).map(|n| (get(&mut driver, &base, n), n)).collect();
    let done = collect(&mut driver, ids.len());
    assert_eq!(done.len(), ids.len());
    let refused = done.iter().filter(|(_, r)| r.is_err()).count();
    assert_eq!(refused, (0..32).filter(|&n| body_of(n).len() > 500).count());
    for (id, result) in done {
        let n = ids[&id];
        match result {
            Ok(response) => {
                assert!(
                    body_of(n).len() <= 500,
                    "request {n}: over the limit yet ok"
                );
                assert!(*response.body() == body_of(n), "request {n}: body differs");
            }
            Err(roundtrip_mio::Error::BodyTooLarge { limit }) => {
                assert_eq!(limit, 500);
                assert!(
                    body_of(n).len() > 500,
                    "request {n}: refused under the limit"
                );
            }
            Err(e) => panic!("request {n}: {e}"),
        }
    }
    let stats = driver.stats();
    assert_eq!((stats.in_use, stats.waiters), (0, 0), "{stats:?}");
    // Small remainders were drained, so the connections mostly survived.
    assert!(stats.dials <= 2 + stats.closed.total(), "{stats:?}");
}
