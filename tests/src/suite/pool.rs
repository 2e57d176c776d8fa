//! The pool's limits and timers: connections per host, waiting for a slot, idle expiry.

use super::*;

crate::cases! {
        /// Stamps the `pool` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_pool, list cases, path suite::pool;

/// `max_conns_per_host = 2` under 8 threads × 25 requests: the server never
/// sees more than 2 connections and every request succeeds.
pub fn max_conns_per_host_honoured<B: Backend>() {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        Arc::new(move |req: &crate::server::Request| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            ok(req.target.as_bytes())
        })
    };
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(2));
    let client = B::client(config);
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start, url) = (client.clone(), Arc::clone(&start), server.url("/"));
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let path = format!("/{t}/{i}");
                    let resp = send_ok::<B>(&client, Req::get(format!("{url}{t}/{i}")));
                    assert_eq!(resp.body, path.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let stats = B::stats(&client);
    assert!(stats.dials <= 2, "{stats:?}");
    assert!(server.accepted() <= 2, "accepted {}", server.accepted());
    assert!(peak.load(Ordering::SeqCst) <= 2, "peak {peak:?}");
    assert_eq!(server.requests().len(), THREADS * EACH);
    assert_eq!(stats.dials + stats.reuses, (THREADS * EACH) as u64);
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    server.assert_no_errors();
}

/// `max_conns_per_host = 1` with a server that closes after every response:
/// each freed slot becomes a dial for the next waiter; 4 threads × 5
/// requests all succeed, one connection at a time.
pub fn max_conns_with_closing_server<B: Backend>() {
    const THREADS: usize = 4;
    const EACH: usize = 5;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
        Arc::new(move |req: &crate::server::Request| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let len = req.target.len().to_string();
            response(
                200,
                &[("Content-Length", &len), ("Connection", "close")],
                req.target.as_bytes(),
            )
        })
    };
    // Serve ends when the client closes after reading the response.
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(1));
    let client = B::client(config);
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start, base) = (client.clone(), Arc::clone(&start), server.url("/"));
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let resp = send_ok::<B>(&client, Req::get(format!("{base}{t}-{i}")));
                    assert_eq!(resp.body, format!("/{t}-{i}").as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let total = (THREADS * EACH) as u64;
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (total, 0), "{stats:?}");
    assert_eq!(closed(&stats, CloseReason::ServerClose), total, "{stats:?}");
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters, stats.idle),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert_eq!(server.accepted() as u64, total);
    settle(&server);
}

/// A request waiting for a connection slot (`max_conns_per_host = 1`, the
/// only connection busy draining) gives up at its `timeout` with
/// `Timeout { phase: PoolWait }`, and leaves no waiter behind.
pub fn pool_wait_bounded_by_timeout<B: Backend>() {
    let mut reply = response(200, &[("Content-Length", "200")], b"");
    reply.extend_from_slice(&[b'x'; 100]);
    let server = ScriptServer::start(vec![held(vec![
        Step::ReadRequest,
        Step::Write(reply),
        // The holder reads slowly: the connection stays in use meanwhile.
        Step::Sleep(Duration::from_millis(600)),
        Step::Write(vec![b'x'; 100]),
    ])]);
    let mut config = test_config();
    config.pool = config.pool.max_conns_per_host(Some(1));
    config.timeout = Some(Duration::from_millis(200));
    let client = B::client(config);
    let holder = {
        let (client, url) = (client.clone(), server.url("/hold"));
        thread::spawn(move || {
            // Its own deadline outlasts the slow body.
            let req = Req::get(url).timeout(Some(Duration::from_secs(5)));
            assert_eq!(send_ok::<B>(&client, req).body.len(), 200);
        })
    };
    // Until the holder's request is on the wire, the connection may be free.
    let deadline = Instant::now() + SETTLE;
    while server.requests().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get(server.url("/wait")));
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::Total, Phase::PoolWait, false, B::NAME);
    assert!(took >= Duration::from_millis(190), "fired early: {took:?}");
    assert!(took < Duration::from_millis(1500), "fired late: {took:?}");
    assert_eq!(B::stats(&client).waiters, 0);
    holder.join().expect("holder thread");
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.in_use, stats.dialing, stats.waiters),
        (1, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(
        stats.idle, 1,
        "the holder's connection went back: {stats:?}"
    );
    assert_eq!(server.requests().len(), 1);
    settle_held(client, &server);
}

/// An idle connection older than the pool's idle timeout is closed; the next
/// request dials anew.
pub fn idle_timeout_expires<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(ok(b"one")), Step::ExpectEof],
        vec![Step::ReadRequest, Step::Write(ok(b"two"))],
    ]);
    let mut config = test_config();
    config.pool = config.pool.idle_timeout(Some(Duration::from_millis(100)));
    let client = B::client(config);
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"one"
    );
    thread::sleep(Duration::from_millis(250));
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/"))).body,
        b"two"
    );
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert!(closed(&stats, CloseReason::IdleTimeout) >= 1, "{stats:?}");
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    settle(&server);
}

/// An idle connection is closed when its idle timeout passes, with no
/// request after it to notice (Go's `IdleConnTimeout` timer): a quiet
/// client holds no socket its server has long given up.
pub fn idle_connection_closes_on_time<B: Backend>() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"one")),
        Step::ExpectEof,
    ]]);
    let mut config = test_config();
    config.pool = config.pool.idle_timeout(Some(Duration::from_millis(100)));
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(server.url("/")));
    assert_eq!(resp.body, b"one");
    B::pass_time(&client, Duration::from_millis(600));
    let stats = B::live_stats(&client);
    assert_eq!(stats.idle, 0, "{}: {stats:?}", B::NAME);
    assert!(closed(&stats, CloseReason::IdleTimeout) >= 1, "{stats:?}");
    settle(&server);
    drop(client);
}

/// `Keep-Alive: timeout=N` from the server: with the default 1 s margin,
/// `timeout=5` keeps the connection and `timeout=1` expires it at once.
pub fn keep_alive_hint_honoured<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[
                    ("Content-Length", "1"),
                    ("Keep-Alive", "timeout=5, max=100"),
                ],
                b"a",
            )),
            Step::ReadRequest,
            Step::Write(response(
                200,
                &[("Content-Length", "1"), ("Keep-Alive", "timeout=1")],
                b"b",
            )),
            Step::ExpectEof,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"c"))],
    ]);
    let client = B::client(test_config());
    for want in [b"a", b"b", b"c"] {
        assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, want);
    }
    assert_eq!(server.accepted(), 2);
    let stats = B::stats(&client);
    assert_eq!(
        closed(&stats, CloseReason::KeepAliveTimeout),
        1,
        "{stats:?}"
    );
    assert_eq!((stats.dials, stats.reuses), (2, 1), "{stats:?}");
    settle(&server);
}
}
