//! Everything a user of the blocking backend needs is named through
//! `roundtrip_blocking` alone: no second dependency on `roundtrip-io` or
//! `roundtrip-proto` to configure traces, timeouts and redirects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roundtrip_blocking::{
    Client, Config, Error, Phase, PoolStats, RedirectAction, RedirectPolicy, RequestId,
    RequestTimeout, TimeoutKind, TraceEvent, Traced, Tracer,
};

type Log = Arc<Mutex<Vec<(Option<RequestId>, TraceEvent)>>>;

#[test]
fn the_facade_names_everything_a_user_configures() {
    let seen: Log = Arc::default();
    let sink = Arc::clone(&seen);
    let tracer = Tracer::with_ids(move |t: &Traced| {
        sink.lock().unwrap().push((t.request, t.event.clone()));
    });
    let policy = RedirectPolicy::new(|_| RedirectAction::Follow);
    let client = Client::builder()
        .config(Config::default())
        .trace(|event: &TraceEvent| drop(event.to_string()))
        .trace(tracer)
        .redirect_policy(Some(policy))
        .build();
    let stats: PoolStats = client.stats();
    assert_eq!(stats.in_use, 0);

    let mut request = http_get();
    request
        .extensions_mut()
        .insert(RequestTimeout(Some(Duration::from_secs(1))));
    // Nothing listens on port 1 of the loopback address: the connect fails.
    let err: Error = client.execute(request).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let phase: Phase = Phase::Connect;
    let kind: TimeoutKind = TimeoutKind::Connect;
    assert_ne!(phase.to_string(), kind.to_string());
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(id, _)| *id == Some(RequestId::new(1))));
}

fn http_get() -> roundtrip_blocking::http::Request<roundtrip_blocking::Body> {
    roundtrip_blocking::http::Request::get("http://127.0.0.1:1/")
        .body(roundtrip_blocking::Body::empty())
        .unwrap()
}
