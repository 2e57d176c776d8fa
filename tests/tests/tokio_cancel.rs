//! Cancellation safety of the tokio backend: requests and bodies dropped at
//! many different await points (timeouts of pseudo-random length over a slow
//! scripted server) never leave a connection in an unknown state in the pool.
//! Every later request on the same client succeeds with the exact body, and
//! the pool counters show no leak.

use std::time::Duration;

use roundtrip_tests::server::{ScriptServer, Step, response};

const BODY: &[u8] = b"the exact body, every time: 0123456789abcdefghijklmnopqrstuvwxyz";

/// A connection's script: answer requests slowly, byte by byte, in a
/// keep-alive loop (a cancelled client cuts it short; that is expected).
fn slow_script() -> Vec<Step> {
    let reply = response(200, &[("Content-Length", &BODY.len().to_string())], BODY);
    vec![Step::Repeat(
        10_000,
        vec![
            Step::ReadRequest,
            Step::Sleep(Duration::from_millis(1)),
            Step::WriteSlowly {
                bytes: reply,
                every: Duration::from_micros(100),
            },
        ],
    )]
}

/// A small deterministic generator (no rand dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn run(runtime: tokio::runtime::Runtime) {
    let server = ScriptServer::start(vec![slow_script()]).repeat_last(true);
    let url = server.url("/");
    let client = roundtrip_tokio::Client::builder()
        .max_conns_per_host(Some(4))
        .timeout(Some(Duration::from_secs(20)))
        .build();
    runtime.block_on(async {
        let mut rng = Lcg(0x5eed);
        let (mut completed, mut cancelled) = (0u32, 0u32);
        // How long a whole request takes here now (the server writes its
        // body slowly, which a loaded machine makes slower): the fastest of
        // five on a pooled connection (the first dials, and one slow
        // request made the span so wide that too few requests were
        // cancelled, 46 of 300 in one CI run). The timeouts below spread
        // over three times that, 40 ms at least.
        let mut fastest = Duration::MAX;
        for _ in 0..6 {
            let started = std::time::Instant::now();
            let mut response = client.get(&url).send().await.expect("a first request");
            response.body_mut().bytes(1 << 20).await.expect("its body");
            fastest = fastest.min(started.elapsed());
        }
        let span = (fastest * 3).max(Duration::from_millis(40));
        let span = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
        // 300 requests, 8 at a time, each under a timeout of 0 to `span`: the
        // cancellation lands while waiting for the pool, connecting, writing,
        // waiting for the head, or in the middle of the body.
        for _round in 0..38 {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let (client, url) = (client.clone(), url.clone());
                let limit = Duration::from_micros(rng.below(span));
                tasks.push(tokio::spawn(async move {
                    tokio::time::timeout(limit, async {
                        let mut response = client.get(&url).send().await?;
                        response.body_mut().bytes(1 << 20).await
                    })
                    .await
                }));
            }
            for task in tasks {
                match task.await.expect("task") {
                    Ok(Ok(body)) => {
                        assert_eq!(&body[..], BODY, "a completed request got a wrong body");
                        completed += 1;
                    }
                    Ok(Err(e)) => panic!("a request failed outright: {e}"),
                    Err(_elapsed) => cancelled += 1,
                }
            }
        }
        eprintln!("cancellation: {completed} completed, {cancelled} cancelled");
        assert!(
            cancelled > 50 && completed > 20,
            "cancelled {cancelled}, completed {completed}"
        );

        // Everything after must succeed with the exact body.
        for i in 0..40 {
            let mut response = client
                .get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i} after: {e}"));
            let body = response
                .body_mut()
                .bytes(1 << 20)
                .await
                .expect("body after");
            assert_eq!(&body[..], BODY);
        }
    });
    let stats = client.stats();
    eprintln!("pool after: {stats:?}");
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "leak: {stats:?}"
    );
    assert!(stats.idle <= 4, "{stats:?}");
    // A cancelled request closes its connection under the server's slow
    // write: those writes fail; the client's going closes its idle ones
    // between requests. Nothing else.
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    for e in server.errors() {
        let cut = e.step.starts_with("WriteSlowly")
            && (e.message.contains("Broken pipe") || e.message.contains("reset by peer"));
        let idle = e.step == "ReadRequest" && e.message == "EOF before a request";
        assert!(cut || idle, "{e}");
    }
}

#[test]
fn cancellation_never_leaks_multi_thread() {
    run(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime"));
}

#[test]
fn cancellation_never_leaks_current_thread() {
    run(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime"));
}

/// The steps of a connection whose first answer's body comes late: that
/// request holds the only connection while the next one starts waiting.
fn late_first_body() -> Vec<Step> {
    vec![
        Step::ReadRequest,
        Step::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfi".to_vec()),
        Step::Sleep(Duration::from_millis(50)),
        Step::Write(b"rst".to_vec()),
    ]
}

/// A client of one connection per host.
fn one_conn(trace: Option<roundtrip_io::Tracer>) -> roundtrip_tokio::Client {
    let builder = roundtrip_tokio::Client::builder()
        .max_conns_per_host(Some(1))
        .timeout(Some(Duration::from_secs(10)));
    match trace {
        Some(trace) => builder.trace(trace).build(),
        None => builder.build(),
    }
}

/// Sends a GET of `url` whose body comes late ([`late_first_body`]),
/// polls `next` once (it waits for the connection), then reads the GET's
/// body to its end, which hands the connection to `next`; returns `next`,
/// not polled since.
async fn queued_behind_a_late_body<F: std::future::Future>(
    client: &roundtrip_tokio::Client,
    url: &str,
    next: F,
) -> std::pin::Pin<Box<F>> {
    let mut first = client.get(url).send().await.expect("the first answer");
    let mut next = Box::pin(next);
    let waited = tokio::time::timeout(Duration::from_millis(20), &mut next).await;
    assert!(waited.is_err(), "the next request did not wait");
    assert_eq!(&body(&mut first).await[..], b"first");
    next
}

async fn body(
    response: &mut roundtrip_io::http::Response<roundtrip_tokio::ResponseBody>,
) -> bytes::Bytes {
    let body = response.body_mut().bytes(1 << 10).await;
    body.expect("a body")
}

fn current_thread() -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    runtime.expect("a runtime")
}

/// A connection a check-in hands to a waiting request counts as idle from
/// that check-in: the waiting task, not polled for a while, takes it
/// later, after the server closed it, and probes it before use (a POST
/// is never sent twice, so on the dead connection it would fail); it
/// dials instead, and the POST succeeds.
#[test]
fn a_grant_taken_late_is_probed() {
    let mut first = late_first_body();
    first.extend([Step::Sleep(Duration::from_millis(100)), Step::Close]);
    let second = response(200, &[("Content-Length", "6")], b"second");
    let server = ScriptServer::start(vec![
        first,
        vec![Step::ReadRequest, Step::Write(second), Step::ExpectEof],
    ]);
    let url = server.url("/");
    let client = one_conn(None);
    current_thread().block_on(async {
        let post = client.post(&url).body("x").send();
        let post = queued_behind_a_late_body(&client, &url, post).await;
        // The connection is the POST's now; the server closes it meanwhile.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut second = post.await.expect("the POST goes out on a new connection");
        assert_eq!(&body(&mut second).await[..], b"second");
    });
    let stats = client.stats();
    assert_eq!(stats.dials, 2, "{stats:?}");
    assert_eq!(
        stats.closed.get(roundtrip_tokio::proto::CloseReason::Stale),
        1,
        "{stats:?}"
    );
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
    assert_eq!(server.count_method("POST"), 1);
}

/// A connection a check-in hands to a waiting request is traced as handed
/// over (`was_idle` false), not as taken from the idle set.
#[test]
fn a_handover_is_traced_as_such() {
    let mut script = late_first_body();
    script.extend([
        Step::ReadRequest,
        Step::Write(response(200, &[("Content-Length", "2")], b"ok")),
        Step::ExpectEof,
    ]);
    let server = ScriptServer::start(vec![script]);
    let url = server.url("/");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&events);
    let client = one_conn(Some(roundtrip_io::Tracer::new(move |e| {
        use roundtrip_io::proto::trace::TraceEvent;
        if let TraceEvent::GotConn {
            reused, was_idle, ..
        } = e
        {
            let mut seen = seen.lock().expect("not poisoned");
            seen.push((*reused, *was_idle));
        }
    })));
    current_thread().block_on(async {
        let next = client.get(&url).send();
        let next = queued_behind_a_late_body(&client, &url, next).await;
        let mut second = next.await.expect("the second answer");
        assert_eq!(&body(&mut second).await[..], b"ok");
    });
    // New, then handed over.
    let got = events.lock().expect("not poisoned").clone();
    assert_eq!(got, [(false, false), (true, false)]);
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
}

/// A client shared by two runtimes: a connection the first made and
/// pooled is not used by a request on the second. tokio wakes a socket's
/// reader only from the reactor of the runtime that made it, and a
/// current-thread runtime outside its `block_on` runs none: the second
/// request waited for its read timeout although the server had answered.
/// Now the connection is closed as unusable there, and a new one dialed.
#[test]
fn a_connection_of_another_runtime_is_not_reused() {
    let reply = response(200, &[("Content-Length", "2")], b"ok");
    let conn = vec![Step::ReadRequest, Step::Write(reply), Step::ExpectEof];
    let server = ScriptServer::start(vec![conn.clone(), conn]);
    let url = server.url("/");
    let client = roundtrip_tokio::Client::builder()
        .read_timeout(Some(Duration::from_secs(3)))
        .build();
    let first = current_thread();
    first.block_on(async {
        let mut response = client.get(&url).send().await.expect("the first answer");
        assert_eq!(&body(&mut response).await[..], b"ok");
    });
    assert_eq!(client.stats().idle, 1);
    // `first` lives on, not driven.
    let started = std::time::Instant::now();
    current_thread().block_on(async {
        let mut response = client.get(&url).send().await.expect("the second answer");
        assert_eq!(&body(&mut response).await[..], b"ok");
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    let stats = client.stats();
    assert_eq!(stats.dials, 2, "{stats:?}");
    assert_eq!(
        stats.closed.get(roundtrip_tokio::proto::CloseReason::Stale),
        1,
        "{stats:?}"
    );
    drop(client);
    drop(first);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
}

/// A tracer that panics while a new connection is taken (at its
/// `ConnectDone`) unwinds out of the request without aborting the
/// process (a debug assertion fired in the pool while unwinding: the
/// dropped future discarded a connection the pool never counted), and
/// the pool keeps no dial slot for it: the next request to the host,
/// with one connection allowed, dials.
#[test]
fn a_tracer_panicking_at_connect_leaks_no_slot() {
    let ok = response(200, &[("Content-Length", "2")], b"ok");
    let server = ScriptServer::start(vec![
        // The connection the panic dropped: closed before any request.
        vec![Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok), Step::ExpectEof],
    ]);
    let url = server.url("/");
    let panicked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = std::sync::Arc::clone(&panicked);
    let trace = roundtrip_io::Tracer::new(move |event| {
        let connected = matches!(
            event,
            roundtrip_io::proto::trace::TraceEvent::ConnectDone { result: Ok(()), .. }
        );
        if connected && !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a tracer bug");
        }
    });
    let client = one_conn(Some(trace));
    current_thread().block_on(async {
        let first = tokio::spawn(client.get(&url).send());
        assert!(
            first.await.is_err_and(|e| e.is_panic()),
            "the panic comes through"
        );
        let stats = client.stats();
        assert_eq!((stats.dialing, stats.in_use), (0, 0), "{stats:?}");
        let mut second = client
            .get(&url)
            .send()
            .await
            .expect("the host has its slot");
        assert_eq!(&body(&mut second).await[..], b"ok");
    });
    assert!(panicked.load(std::sync::atomic::Ordering::SeqCst));
}
