//! The `tracing` feature: `Tracer::tracing()` emits every trace event of a
//! request as a `tracing` event (target `roundtrip`, DEBUG, fields
//! `request_id`, `event`, `message`, `timestamp_us`), on every backend.
//!
//! A subscriber layer installed as the global default (this binary's one
//! test runs the backends in turn, so no other request emits meanwhile)
//! captures the events; the mio loop runs on a thread of its own, which a
//! thread-local subscriber would miss.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roundtrip_io::Tracer;
use roundtrip_tests::Smol;
use roundtrip_tests::backend::{
    Backend, Blocking, Mio, Req, TokioCurrent, TokioMulti, test_config,
};
use roundtrip_tests::server::{ScriptServer, Step, ok};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One `tracing` event as the layer saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Captured {
    target: String,
    level: String,
    request_id: Option<u64>,
    event: String,
    message: String,
    timestamp_us: u64,
}

impl Visit for Captured {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "request_id" => self.request_id = Some(value),
            "timestamp_us" => self.timestamp_us = value,
            other => panic!("unexpected u64 field {other}"),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        assert_eq!(field.name(), "event", "the one str field");
        self.event = value.to_string();
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        assert_eq!(field.name(), "message", "the one formatted field");
        self.message = format!("{value:?}");
    }
}

/// Captures every event into a shared list.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut captured = Captured {
            target: meta.target().to_string(),
            level: meta.level().to_string(),
            ..Captured::default()
        };
        event.record(&mut captured);
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.push(captured);
    }
}

fn unix_us() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_micros()).expect("fits")
}

/// One GET on a fresh client of backend `B` with `Tracer::tracing()`: the
/// request's events, in order, each with its id, name, text and time.
fn one_get<B: Backend>(capture: &Capture) {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"traced")),
        Step::ExpectEof,
    ]]);
    let mut config = test_config();
    config.trace = Some(Tracer::tracing());
    let client = B::client(config);
    capture.take();
    let before = unix_us();
    let resp = B::send(&client, Req::get(server.url("/t"))).expect("the GET");
    assert_eq!(resp.body, b"traced", "{}", B::NAME);
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(5)), "{}", B::NAME);
    server.assert_no_errors();
    let after = unix_us();
    let events = capture.take();

    let ours: Vec<&Captured> = events.iter().filter(|e| e.request_id.is_some()).collect();
    let names: Vec<&str> = ours.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "GotConn",
            "WroteHeaders",
            "WroteRequest",
            "GotFirstResponseByte",
            "PutIdleConn",
        ],
        "{}: {events:#?}",
        B::NAME
    );
    let addr: SocketAddr = server.addr();
    let texts: Vec<&str> = ours.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        texts,
        [
            format!("get connection to http://{addr}").as_str(),
            &format!("connect to {addr}"),
            &format!("connected to {addr}"),
            "got new conn#1",
            "wrote headers",
            "wrote request",
            "got first response byte",
            "put conn#1 back, kept",
        ],
        "{}",
        B::NAME
    );
    for e in &events {
        assert_eq!(
            (e.target.as_str(), e.level.as_str()),
            ("roundtrip", "DEBUG"),
            "{e:?}"
        );
        assert!(
            (before..=after).contains(&e.timestamp_us),
            "{}: {e:?} not within {before}..={after}",
            B::NAME
        );
    }
    assert!(
        ours.iter().all(|e| e.request_id == Some(1)),
        "{}: {ours:#?}",
        B::NAME
    );
    let times: Vec<u64> = events.iter().map(|e| e.timestamp_us).collect();
    assert!(times.is_sorted(), "{}: {times:?}", B::NAME);
    // Events no request caused (the idle connection closed when the client
    // went away) carry no id.
    for e in events.iter().filter(|e| e.request_id.is_none()) {
        assert_eq!(e.event, "ConnClosed", "{}: {e:?}", B::NAME);
    }
}

/// One GET on a client of backend `B` without a tracer, its idle
/// connection closed by dropping the client: no event at all.
fn quiet_get<B: Backend>(capture: &Capture) {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"quiet")),
        Step::ExpectEof,
    ]]);
    let client = B::client(test_config());
    let resp = B::send(&client, Req::get(server.url("/"))).expect("the GET");
    assert_eq!(resp.body, b"quiet", "{}", B::NAME);
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(5)), "{}", B::NAME);
    server.assert_no_errors();
    assert_eq!(capture.take(), [], "{}", B::NAME);
}

#[test]
fn every_backend_emits_its_trace_events_as_tracing_events() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    // Without `Tracer::tracing()`, a client emits nothing, whatever the
    // feature and on whatever thread (the tracer is opt-in).
    quiet_get::<Blocking>(&capture);
    quiet_get::<Mio>(&capture);
    quiet_get::<TokioCurrent>(&capture);
    quiet_get::<TokioMulti>(&capture);
    quiet_get::<Smol>(&capture);
    one_get::<Blocking>(&capture);
    one_get::<Mio>(&capture);
    one_get::<TokioCurrent>(&capture);
    one_get::<TokioMulti>(&capture);
    one_get::<Smol>(&capture);
}
