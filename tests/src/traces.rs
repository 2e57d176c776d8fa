//! Request traces, written once and stamped into every backend by
//! [`backend_traces!`](crate::backend_traces): each case runs a script
//! against the loopback [`ScriptServer`], records the client's
//! [`TraceEvent`]s through [`Config::trace`](roundtrip_io::Config::trace),
//! and asserts the exact sequence (kinds and key fields, never timings)
//! beside the pool counters. One script gives one sequence on every backend;
//! the one known difference (an event loop sees an idle connection die
//! before the next request asks for it) is spelled out where it shows.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use roundtrip_io::http::{Method, StatusCode};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::{Config, Error, Tracer};

use crate::backend::{Backend, Req, ReqBody, test_config, wait_no_idle};
use crate::fixtures::pattern;
use crate::server::{ScriptServer, Step, ok, response};

/// How long a case waits for the server's scripts to end.
const SETTLE: Duration = Duration::from_secs(5);

/// Collects the trace events of a client; clones share the list.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Vec<TraceEvent>>>);

impl Recorder {
    /// `config` with a tracer that records into this recorder.
    pub fn install(&self, mut config: Config) -> Config {
        let events = Arc::clone(&self.0);
        config.trace = Some(Tracer::new(move |event: &TraceEvent| {
            let mut events = events.lock().unwrap_or_else(PoisonError::into_inner);
            events.push(event.clone());
        }));
        config
    }

    /// The events recorded since the last call.
    pub fn take(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The events recorded since the last call, as [`line()`]s.
    pub fn lines(&self, server: SocketAddr) -> Vec<String> {
        self.take().iter().map(|e| line(e, server)).collect()
    }
}

/// One event as the cases compare it: kind and key fields, the server's
/// address written `S`, no timings and no error texts (they are the OS's).
pub fn line(event: &TraceEvent, server: SocketAddr) -> String {
    let outcome = |ok: bool| if ok { "ok" } else { "err" };
    let text = match event {
        TraceEvent::GetConn { key } => format!("GetConn {key}"),
        TraceEvent::ConnectStart { addr } => format!("ConnectStart {addr}"),
        TraceEvent::ConnectDone { addr, result } => {
            format!("ConnectDone {addr} {}", outcome(result.is_ok()))
        }
        TraceEvent::GotConn {
            id,
            reused,
            was_idle,
            idle_for,
        } => {
            assert!(*was_idle || idle_for.is_zero(), "{event:?}");
            let how = match (reused, was_idle) {
                (false, _) => "new",
                (true, true) => "idle",
                (true, false) => "handed over",
            };
            format!("GotConn {id} {how}")
        }
        TraceEvent::WroteHeaders => "WroteHeaders".into(),
        TraceEvent::WroteRequest { result } => {
            format!("WroteRequest {}", outcome(result.is_ok()))
        }
        TraceEvent::GotFirstResponseByte => "GotFirstResponseByte".into(),
        TraceEvent::Got1xx { status } => format!("Got1xx {status}"),
        TraceEvent::PutIdleConn { id, kept, reason } => match (kept, reason) {
            (true, None) => format!("PutIdleConn {id} kept"),
            (kept, reason) => format!("PutIdleConn {id} kept={kept} {reason:?}"),
        },
        TraceEvent::ConnClosed { id, reason } => format!("ConnClosed {id} {reason:?}"),
        other => format!("{other:?}"),
    };
    let addr = server.to_string();
    text.replace(&format!("http://{addr}"), "http://S")
        .replace(&addr, "S")
}

/// The lines of asking for a connection and dialing `conn#n`.
fn dial(n: u64) -> Vec<String> {
    vec![
        "GetConn http://S".into(),
        "ConnectStart S".into(),
        "ConnectDone S ok".into(),
        format!("GotConn conn#{n} new"),
    ]
}

/// The lines of asking for a connection and getting idle `conn#n`.
fn reuse(n: u64) -> Vec<String> {
    vec!["GetConn http://S".into(), format!("GotConn conn#{n} idle")]
}

/// The lines of a request without a body written, then answered.
fn write_and_answer() -> Vec<String> {
    vec![
        "WroteHeaders".into(),
        "WroteRequest ok".into(),
        "GotFirstResponseByte".into(),
    ]
}

/// `conn#n` went back to the pool and was kept.
fn kept(n: u64) -> String {
    format!("PutIdleConn conn#{n} kept")
}

/// Concatenates groups of lines.
fn seq(groups: &[&[String]]) -> Vec<String> {
    groups.concat()
}

/// Sends `req` and panics, naming the backend, if it fails.
fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Vec<u8> {
    let what = format!("{} {}", req.method, req.url);
    let resp = B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e}", B::NAME));
    assert_eq!(resp.status, StatusCode::OK, "{}: {what}", B::NAME);
    resp.body
}

/// The gauges and counters the cases check: dials, reuses, idle, in use,
/// waiters.
fn gauges(stats: &PoolStats) -> (u64, u64, usize, usize, usize) {
    (
        stats.dials,
        stats.reuses,
        stats.idle,
        stats.in_use,
        stats.waiters,
    )
}

/// Ends a script like a keep-alive server: the connection stays open until
/// the client closes it. A script that just ended would close it, and the mio
/// loop, which watches idle connections, could log that close as `Stale`
/// before the test reads the trace.
fn held(mut steps: Vec<Step>) -> Vec<Step> {
    steps.push(Step::ExpectEof);
    steps
}

/// Drops the client (closing its idle connections), waits for every script
/// to end, then requires that none failed.
fn settle<C>(client: C, server: &ScriptServer) {
    drop(client);
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    server.assert_no_errors();
}

crate::cases! {
    /// Every trace case as a `#[test]` for one backend:
    /// `roundtrip_tests::backend_traces!(Blocking);`.
    stamp backend_traces, list cases, path traces;

/// (1) A fresh connection: dial, write, answer, kept.
pub fn trace_fresh_connection<B: Backend>() {
    let server = ScriptServer::start(vec![held(vec![Step::ReadRequest, Step::Write(ok(b"one"))])]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))), b"one");
    let want = seq(&[&dial(1), &write_and_answer(), &[kept(1)]]);
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    assert_eq!(gauges(&B::stats(&client)), (1, 0, 1, 0, 0), "{}", B::NAME);
    settle(client, &server);
}

/// (2) A reused connection: taken idle from the pool, no dial.
pub fn trace_reused_connection<B: Backend>() {
    let server = ScriptServer::start(vec![held(vec![Step::Repeat(
        2,
        vec![Step::ReadRequest, Step::Write(ok(b"hi"))],
    )])]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    send_ok::<B>(&client, Req::get(server.url("/1")));
    recorder.take();
    send_ok::<B>(&client, Req::get(server.url("/2")));
    let want = seq(&[&reuse(1), &write_and_answer(), &[kept(1)]]);
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    assert_eq!(gauges(&B::stats(&client)), (1, 1, 1, 0, 0), "{}", B::NAME);
    settle(client, &server);
}

/// The retry of a GET that failed on a reused connection the server closed:
/// the dead connection's `ConnClosed`, then a second `GetConn` that dials.
fn retried_lines() -> Vec<String> {
    let failed = [
        "WroteHeaders".into(),
        "WroteRequest ok".into(),
        "ConnClosed conn#1 PeerClosed".into(),
    ];
    seq(&[
        &reuse(1),
        &failed,
        &dial(2),
        &write_and_answer(),
        &[kept(2)],
    ])
}

/// (3) The server reads the GET on the reused connection and closes without
/// answering: the GET is retried once on a new connection.
pub fn trace_closed_on_reuse_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok(b"one")),
            Step::ReadRequest,
            Step::Close,
        ],
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    send_ok::<B>(&client, Req::get(server.url("/a")));
    recorder.take();
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/b"))), b"two");
    assert_eq!(
        recorder.lines(server.addr()),
        retried_lines(),
        "{}",
        B::NAME
    );
    let stats = B::stats(&client);
    assert_eq!(gauges(&stats), (2, 1, 1, 0, 0), "{}: {stats:?}", B::NAME);
    assert_eq!(stats.closed.get(CloseReason::PeerClosed), 1, "{stats:?}");
    settle(client, &server);
}

/// The lines of `conn#1`'s first exchange when the server closed it right
/// after answering, as mio tells it: put back and dropped at the close event
/// (`Stale`), or, when the close came with the response, not put back at all
/// (`PeerClosed`). Both are accepted: which one depends on when the FIN
/// arrives.
fn closed_while_idle(lines: &[String]) -> bool {
    let first = seq(&[&dial(1), &write_and_answer()]);
    let seen_idle = [kept(1), "ConnClosed conn#1 Stale".into()];
    let with_response = [
        "PutIdleConn conn#1 kept=false Some(PeerClosed)".into(),
        "ConnClosed conn#1 PeerClosed".into(),
    ];
    lines == seq(&[&first, &seen_idle]) || lines == seq(&[&first, &with_response])
}

/// (3') The server answers, then closes the idle connection. Blocking and
/// tokio reuse it without a probe (it is younger than `stale_check_after`),
/// the GET fails on it and is retried on a new connection. The mio loop
/// drops it at the close event, however young: the GET just dials.
pub fn trace_stale_idle_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::Close],
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let recorder = Recorder::default();
    let mut config = test_config();
    config.stale_check_after = Duration::from_secs(3600);
    let client = B::client(recorder.install(config));
    send_ok::<B>(&client, Req::get(server.url("/")));
    assert!(server.wait_idle(SETTLE), "server did not close");
    let drops = B::DROPS_CLOSED_IDLE;
    if drops {
        assert!(wait_no_idle::<B>(&client, SETTLE), "still idle");
        let lines = recorder.lines(server.addr());
        assert!(closed_while_idle(&lines), "{}: {lines:#?}", B::NAME);
    } else {
        recorder.take();
    }
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))), b"two");
    let (want, reuses) = if drops {
        (seq(&[&dial(2), &write_and_answer(), &[kept(2)]]), 0)
    } else {
        (retried_lines(), 1)
    };
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    let want = (2, reuses, 1, 0, 0);
    assert_eq!(gauges(&B::stats(&client)), want, "{}", B::NAME);
    settle(client, &server);
}

/// The server closes the idle connection a moment after answering, and the
/// client finds it dead before reuse: it is closed as `Stale` and the next
/// request dials. Blocking and tokio find out when a request asks for it
/// (the probe), so `ConnClosed` follows `GetConn`, and the dead connection
/// counts as a reuse. The mio event loop hears the close while the
/// connection is idle and drops it then, before any request asks:
/// `ConnClosed` first, and no reuse.
pub fn trace_stale_idle_probed<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok(b"one")),
            Step::Sleep(Duration::from_millis(20)),
            Step::Close,
        ],
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let recorder = Recorder::default();
    let config = test_config();
    let wait = config.stale_check_after + Duration::from_millis(50);
    let client = B::client(recorder.install(config));
    send_ok::<B>(&client, Req::get(server.url("/")));
    recorder.take();
    assert!(server.wait_idle(SETTLE), "server did not close");
    thread::sleep(wait);
    let drops = B::DROPS_CLOSED_IDLE;
    if drops {
        assert!(wait_no_idle::<B>(&client, SETTLE), "still idle");
    }
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))), b"two");
    let lines = recorder.lines(server.addr());
    let stats = B::stats(&client);
    let stale = ["ConnClosed conn#1 Stale".to_string()];
    let second = seq(&[&dial(2), &write_and_answer(), &[kept(2)]]);
    if drops {
        // The loop saw the close while the connection was idle (`Stale`,
        // logged after `take`), or, had it been late by the 20 ms the
        // server waits, together with the response (`PeerClosed`, logged
        // with the first exchange). Either way the GET just dials.
        let seen_idle = lines == seq(&[&stale, &second]);
        let with_response = lines == second;
        assert!(seen_idle || with_response, "{}: {lines:#?}", B::NAME);
        let reason = if seen_idle {
            CloseReason::Stale
        } else {
            CloseReason::PeerClosed
        };
        assert_eq!(stats.closed.get(reason), 1, "{stats:?}");
        assert_eq!(gauges(&stats), (2, 0, 1, 0, 0), "{}: {stats:?}", B::NAME);
    } else {
        let mut at_checkout = dial(2);
        at_checkout.splice(1..1, stale.clone());
        // The dead connection was checked out before the probe, but it
        // carried nothing: it counts as no reuse, as on the evented
        // backend (`-v` said "1 reused" when nothing was).
        let want = seq(&[&at_checkout, &write_and_answer(), &[kept(2)]]);
        assert_eq!(lines, want, "{}", B::NAME);
        assert_eq!(gauges(&stats), (2, 0, 1, 0, 0), "{}: {stats:?}", B::NAME);
        assert_eq!(stats.closed.get(CloseReason::Stale), 1, "{stats:?}");
    }
    assert_eq!(stats.closed.total(), 1, "{}: {stats:?}", B::NAME);
    settle(client, &server);
}

/// A `103 Early Hints` before the final response: `Got1xx` after the first
/// byte.
pub fn trace_interim_103<B: Backend>() {
    let mut reply = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n".to_vec();
    reply.extend_from_slice(&ok(b"final"));
    let server = ScriptServer::start(vec![held(vec![Step::ReadRequest, Step::Write(reply)])]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))), b"final");
    let want = seq(&[
        &dial(1),
        &write_and_answer(),
        &["Got1xx 103".into(), kept(1)],
    ]);
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    assert_eq!(gauges(&B::stats(&client)), (1, 0, 1, 0, 0), "{}", B::NAME);
    settle(client, &server);
}

/// `Expect: 100-continue`: the head goes out, `100 Continue` comes back,
/// then the body: `WroteRequest` after `Got1xx 100`.
pub fn trace_expect_100_continue<B: Backend>() {
    let body = pattern(30_000);
    let server = ScriptServer::start(vec![held(vec![
        Step::ReadHead,
        Step::Write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Step::ReadBody,
        Step::Write(ok(b"stored")),
    ])]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    let req = Req::new(Method::POST, server.url("/up"))
        .body(ReqBody::Bytes(body.clone()))
        .header("Expect", "100-continue");
    assert_eq!(send_ok::<B>(&client, req), b"stored");
    let sent = [
        "WroteHeaders".into(),
        "GotFirstResponseByte".into(),
        "Got1xx 100".into(),
        "WroteRequest ok".into(),
        kept(1),
    ];
    assert_eq!(
        recorder.lines(server.addr()),
        seq(&[&dial(1), &sent]),
        "{}",
        B::NAME
    );
    assert!(server.requests()[0].body == body, "uploaded body differs");
    assert_eq!(gauges(&B::stats(&client)), (1, 0, 1, 0, 0), "{}", B::NAME);
    settle(client, &server);
}

/// `Connection: close` on a response: not kept (`ServerClose`), closed, and
/// the next request dials.
pub fn trace_server_close<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[("Content-Length", "3"), ("Connection", "close")],
                b"one",
            )),
            Step::Close,
        ],
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    send_ok::<B>(&client, Req::get(server.url("/1")));
    let closed = [
        "PutIdleConn conn#1 kept=false Some(ServerClose)".into(),
        "ConnClosed conn#1 ServerClose".into(),
    ];
    let want = seq(&[&dial(1), &write_and_answer(), &closed]);
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    assert_eq!(gauges(&B::stats(&client)), (1, 0, 0, 0, 0), "{}", B::NAME);
    send_ok::<B>(&client, Req::get(server.url("/2")));
    let want = seq(&[&dial(2), &write_and_answer(), &[kept(2)]]);
    assert_eq!(recorder.lines(server.addr()), want, "{}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!(gauges(&stats), (2, 0, 1, 0, 0), "{}: {stats:?}", B::NAME);
    assert_eq!(stats.closed.get(CloseReason::ServerClose), 1, "{stats:?}");
    settle(client, &server);
}

/// A refused connect: `ConnectDone` with an error, and nothing after it.
pub fn trace_connect_refused<B: Backend>() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local_addr")
    };
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    let err = B::send(&client, Req::get(format!("http://{addr}/")));
    assert!(matches!(err, Err(Error::Connect { .. })), "{err:?}");
    let want = ["GetConn http://S", "ConnectStart S", "ConnectDone S err"];
    assert_eq!(recorder.lines(addr), want, "{}", B::NAME);
    assert_eq!(gauges(&B::stats(&client)), (0, 0, 0, 0, 0), "{}", B::NAME);
}
}
