//! Stale idle connections, connections closed on reuse, and which requests are sent again.

use super::*;

crate::cases! {
        /// Stamps the `retries` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_retries, list cases, path suite::retries;

/// The first connection's script for the stale cases: one answered request,
/// then the server closes the idle connection.
fn answer_then_close() -> Vec<Step> {
    vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::Close]
}

/// A config whose stale probe never runs (connections are younger than it).
fn no_probe_config() -> roundtrip_io::Config {
    let mut config = test_config();
    config.stale_check_after = Duration::from_secs(3600);
    config
}

/// How long a mio case waits for its loop to drop a connection the server
/// closed while idle.
const DROP_BOUND: Duration = Duration::from_secs(2);

/// Closes dropped when the server closed an idle connection: `Stale` when
/// the close was seen while idle, `PeerClosed` when mio saw it come with the
/// response and did not pool the connection.
fn closed_by_server(stats: &PoolStats) -> u64 {
    closed(stats, CloseReason::Stale) + closed(stats, CloseReason::PeerClosed)
}

/// The server closed an idle pooled connection and the probe notices before
/// reuse (idle longer than `stale_check_after`): GET and POST go out on a new
/// connection, each exactly once. Blocking and tokio take the dead connection
/// from the pool and the probe closes it (`Stale`); mio already dropped it at
/// the close event, so it is never taken.
pub fn stale_idle_probe_redials<B: Backend>() {
    for method in [Method::GET, Method::POST] {
        let server = ScriptServer::start(vec![
            answer_then_close(),
            held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
        ]);
        let config = test_config();
        let wait = config.stale_check_after + Duration::from_millis(30);
        let client = B::client(config);
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/"))).body,
            b"one"
        );
        assert!(server.wait_idle(SETTLE), "server did not close");
        thread::sleep(wait);
        if B::DROPS_CLOSED_IDLE {
            assert!(
                wait_no_idle::<B>(&client, DROP_BOUND),
                "{method}: still idle"
            );
        }
        let req = if method == Method::GET {
            Req::get(server.url("/x"))
        } else {
            with_body(method.clone(), server.url("/x"), b"data")
        };
        assert_eq!(send_ok::<B>(&client, req).body, b"two");
        assert_eq!(server.accepted(), 2);
        // The first request was a GET too; the second went out once.
        let want = if method == Method::GET { 2 } else { 1 };
        assert_eq!(server.count_method(method.as_str()), want);
        let stats = B::stats(&client);
        if B::DROPS_CLOSED_IDLE {
            assert_eq!(closed_by_server(&stats), 1, "{method}: {stats:?}");
            assert_eq!(stats.reuses, 0, "{method}: {stats:?}");
        } else {
            assert_eq!(closed(&stats, CloseReason::Stale), 1, "{method}: {stats:?}");
        }
        assert_eq!(stats.closed.total(), 1, "{method}: {stats:?}");
        assert_eq!(stats.dials, 2);
        settle_held(client, &server);
    }
}

/// The server closed an idle pooled connection and no probe runs: on
/// blocking and tokio the GET fails on the dead connection and is retried
/// transparently on a new one. Mio dropped the connection at the close
/// event: the GET dials at once, with no failed reuse.
pub fn stale_idle_get_retried_without_probe<B: Backend>() {
    let server = ScriptServer::start(vec![
        answer_then_close(),
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(no_probe_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    assert!(server.wait_idle(SETTLE), "server did not close");
    let drops = B::DROPS_CLOSED_IDLE;
    if drops {
        assert!(wait_no_idle::<B>(&client, DROP_BOUND), "still idle");
    }
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    let reuses = if drops {
        assert_eq!(closed_by_server(&stats), 1, "{stats:?}");
        0
    } else {
        1
    };
    assert_eq!((stats.dials, stats.reuses), (2, reuses), "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");
    settle_held(client, &server);
}

/// The server closed an idle pooled connection and no probe runs: on
/// blocking and tokio a POST with a body goes out on the dead connection and
/// is not sent again; its error says it may have reached the server. Mio
/// dropped the connection at the close event, so the POST goes out once, on
/// a new connection, and succeeds.
pub fn stale_idle_post_not_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        answer_then_close(),
        // Only a new connection gets here: a (wrong) retry, or mio's dial.
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(no_probe_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    assert!(server.wait_idle(SETTLE), "server did not close");
    if B::DROPS_CLOSED_IDLE {
        assert!(wait_no_idle::<B>(&client, DROP_BOUND), "still idle");
        let req = with_body(Method::POST, server.url("/"), b"data");
        assert_eq!(send_ok::<B>(&client, req).body, b"two");
        assert_eq!(server.accepted(), 2);
        let posts: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| (r.conn, r.body))
            .collect();
        assert_eq!(posts, [(1, b"data".to_vec())], "the POST went out once");
        let stats = B::stats(&client);
        assert_eq!(
            (stats.dials, stats.reuses, stats.idle),
            (2, 0, 1),
            "{stats:?}"
        );
        assert_eq!(closed_by_server(&stats), 1, "{stats:?}");
        assert_eq!(stats.closed.total(), 1, "{stats:?}");
        return settle_held(client, &server);
    }
    let err = send_err::<B>(&client, with_body(Method::POST, server.url("/"), b"data"));
    assert!(err.reached_server(), "{err:?}");
    assert!(
        matches!(err, Error::ClosedEarly { .. } | Error::Io { .. }),
        "{err:?}"
    );
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "the POST was retried");
    // The dead connection's server side was gone: nobody read the POST.
    assert_eq!(server.count_method("POST"), 0);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.in_use, stats.idle),
        (1, 0, 0),
        "{stats:?}"
    );
    settle(&server);
}

/// The server reads the reused connection's GET and closes unanswered: the
/// GET is retried once on a new connection and succeeds.
pub fn close_on_reuse_get_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        held(vec![Step::ReadRequest, Step::Write(ok(b"two"))]),
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/a"))).body,
        b"one"
    );
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/b"))).body,
        b"two"
    );
    let conns: Vec<(usize, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.conn, r.target))
        .collect();
    assert_eq!(
        conns,
        [(0, "/a".into()), (0, "/b".into()), (1, "/b".into())]
    );
    let stats = B::stats(&client);
    assert_eq!(closed(&stats, CloseReason::PeerClosed), 1, "{stats:?}");
    settle_held(client, &server);
}

/// A GET whose retry fails too is not retried a second time.
pub fn get_retried_at_most_once<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Close],
        vec![Step::ReadRequest, Step::Write(ok(b"third"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert!(matches!(err, Error::ClosedEarly { .. }), "{err:?}");
    assert!(err.reached_server());
    settle_accepts(&server, 2);
    assert_eq!(server.accepted(), 2, "retried more than once");
    assert_eq!(server.count_method("GET"), 3);
    settle(&server);
}

/// Two pooled connections, both closed by the server when reused: a GET
/// fails on the first, is sent again on the second, fails there too, and
/// is sent once more on a new connection, where it succeeds (Go's retry
/// loop goes on while each failure is on a pooled connection; a request
/// retried once failed where it needed not).
pub fn a_get_walks_every_dead_pooled_connection<B: Backend>() {
    let slow = vec![
        Step::ReadRequest,
        Step::Sleep(Duration::from_millis(300)),
        Step::Write(ok(b"one")),
        Step::ReadRequest,
        Step::Close,
    ];
    let server = ScriptServer::start(vec![
        slow,
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Write(ok(b"three"))],
    ]);
    let client = B::client(test_config());
    // Two at once: the second dials while the first waits for its answer.
    thread::scope(|scope| {
        let first = scope.spawn(|| send_ok::<B>(&client, Req::get(server.url("/a"))));
        thread::sleep(Duration::from_millis(100));
        let second = send_ok::<B>(&client, Req::get(server.url("/b")));
        assert_eq!(second.body, b"one", "{}", B::NAME);
        assert_eq!(first.join().expect("first").body, b"one", "{}", B::NAME);
    });
    assert_eq!(B::live_stats(&client).idle, 2, "{}", B::NAME);
    let third = send_ok::<B>(&client, Req::get(server.url("/c")));
    assert_eq!(third.body, b"three", "{}", B::NAME);
    settle_accepts(&server, 3);
    assert_eq!(server.accepted(), 3, "{}", B::NAME);
    assert_eq!(server.count_method("GET"), 5, "{}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (3, 2), "{}: {stats:?}", B::NAME);
    settle_held(client, &server);
}

/// The server reads the reused connection's POST and closes unanswered: the
/// POST is not sent again; `ClosedEarly`, may have reached the server.
pub fn close_on_reuse_post_not_resent<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let err = send_err::<B>(&client, with_body(Method::POST, server.url("/"), b"data"));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::ResponseHead,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "the POST was retried");
    assert_eq!(server.count_method("POST"), 1);
    assert_eq!(server.requests()[1].body, b"data");
    settle(&server);
}

/// An `Idempotency-Key` makes a POST safe to repeat: retried like a GET.
pub fn idempotency_key_post_retried<B: Backend>() {
    let server = ScriptServer::start(vec![
        close_on_reuse(),
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let client = B::client(test_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    let req = with_body(Method::POST, server.url("/"), b"data").header("Idempotency-Key", "k-42");
    assert_eq!(send_ok::<B>(&client, req).body, b"two");
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(post.body, b"data");
        assert_eq!(post.header("idempotency-key"), Some("k-42"));
    }
    assert_eq!((posts[0].conn, posts[1].conn), (0, 1));
    settle(&server);
}
}
