//! The tokio client as a `tower::Service` (feature `tower`): middleware
//! from `tower::ServiceBuilder` wraps it like any other service.

use std::time::Duration;

use roundtrip_tests::server::{ScriptServer, Step, ok};
use roundtrip_tokio::{Body, Client, http};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// How long a case waits for the server's scripts to end.
const SETTLE: Duration = Duration::from_secs(5);

/// A `map_request` layer adds a header and a `timeout` layer bounds the
/// call; the request (any body type the client takes) reaches the server
/// as the middleware made it, and the response comes back through both.
#[tokio::test]
async fn middleware_composes_with_the_client() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"through tower")),
        Step::ExpectEof,
    ]]);
    let client = Client::new();
    let mut service = ServiceBuilder::new()
        .timeout(Duration::from_secs(10))
        .map_request(|mut request: http::Request<&'static str>| {
            let value = http::HeaderValue::from_static("yes");
            request.headers_mut().insert("x-layer", value);
            request
        })
        .service(client.clone());
    let request = http::Request::post(server.url("/tower"))
        .body("hello")
        .unwrap();
    let mut response = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.body_mut().bytes(1024).await.unwrap();
    assert_eq!(&body[..], b"through tower");

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/tower")
    );
    assert_eq!(seen[0].header("x-layer"), Some("yes"));
    assert_eq!(seen[0].body, b"hello");
    assert_eq!(client.stats().in_use, 0);
    // The body shares the pool: all three go before the idle connection
    // is closed.
    drop((response, service, client));
    assert!(server.wait_idle(SETTLE));
    server.assert_no_errors();
}

/// tower's timeout drops the client's future when it fires: the call fails
/// with tower's `Elapsed`, and the dropped request holds nothing (no
/// connection in use; the one it had is closed, never pooled mid-way).
#[tokio::test]
async fn a_tower_timeout_cancels_the_request() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Sleep(Duration::from_secs(10)),
    ]]);
    let client = Client::new();
    let mut service = ServiceBuilder::new()
        .timeout(Duration::from_millis(200))
        .service(client.clone());
    let started = std::time::Instant::now();
    let request = http::Request::get(server.url("/slow"))
        .body(Body::empty())
        .unwrap();
    let ready = ServiceExt::<http::Request<Body>>::ready(&mut service);
    let err: BoxError = ready.await.unwrap().call(request).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stats = client.stats();
    assert_eq!((stats.in_use, stats.idle), (0, 0), "{stats:?}");
    // Dropping the server cuts its sleep short.
}

/// `Service` is implemented for every body type the client takes.
#[tokio::test]
async fn bytes_and_string_bodies_are_requests_too() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"one")),
        Step::ReadRequest,
        Step::Write(ok(b"two")),
        Step::ExpectEof,
    ]]);
    let client = Client::new();
    let bytes = http::Request::put(server.url("/a"))
        .body(bytes::Bytes::from_static(b"b1"))
        .unwrap();
    let response = client.clone().oneshot(bytes).await.unwrap();
    assert_eq!(response.into_body().bytes(64).await.unwrap(), "one");
    let string = http::Request::put(server.url("/b"))
        .body(String::from("b2"))
        .unwrap();
    let response = client.clone().oneshot(string).await.unwrap();
    assert_eq!(response.into_body().bytes(64).await.unwrap(), "two");
    let bodies: Vec<Vec<u8>> = server.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [b"b1".to_vec(), b"b2".to_vec()]);
    drop(client);
    assert!(server.wait_idle(SETTLE));
    server.assert_no_errors();
}
