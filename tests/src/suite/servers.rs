//! Many requests at once, and real servers (nginx, Python's `http.server`).

use super::*;

crate::cases! {
        /// Stamps the `servers` cases of the suite (see [`backend_suite!`](crate::backend_suite)).
        #[doc(hidden)]
    stamp __suite_servers, list cases, path suite::servers;

/// The body of request `n` in the stress case: its own length and bytes.
fn stress_body(n: usize) -> Vec<u8> {
    let len = (n * 37) % 4001;
    (0..len).map(|k| ((k + n) % 251) as u8).collect()
}

/// 8 threads × 1000 keep-alive requests, bodies of varying size checked
/// exactly, then the pool's books balance.
pub fn stress_keep_alive<B: Backend>() {
    const THREADS: usize = 8;
    const EACH: usize = 1000;
    let handler = Arc::new(|req: &crate::server::Request| {
        let n: usize = req.target[1..].parse().expect("numeric target");
        ok(&stress_body(n))
    });
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]).repeat_last(true);
    let client = B::client(test_config());
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, start) = (client.clone(), Arc::clone(&start));
            let base = server.url("/");
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let n = t * EACH + i;
                    let resp = send_ok::<B>(&client, Req::get(format!("{base}{n}")));
                    assert!(resp.body == stress_body(n), "request {n}: body differs");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let stats = B::stats(&client);
    // No cap and each thread holds one connection at a time: a dial happens
    // only when no connection is idle, i.e. all are held by other threads.
    assert!(stats.dials <= THREADS as u64, "{stats:?}");
    assert!(stats.idle as u64 <= stats.dials, "{stats:?}");
    assert_eq!(
        (stats.in_use, stats.dialing, stats.waiters),
        (0, 0, 0),
        "{stats:?}"
    );
    // Every checkout that got a connection is a dial or a reuse; nothing was
    // closed, so nothing was retried.
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    assert_eq!(
        stats.dials + stats.reuses,
        (THREADS * EACH) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.idle as u64, stats.dials, "{stats:?}");
    assert_eq!(server.accepted() as u64, stats.dials);
    assert_eq!(server.requests().len(), THREADS * EACH);
    server.assert_no_errors();
}

/// nginx: 350 GETs on one client although nginx closes every 100 requests
/// (`keepalive_requests 100`), then exact bodies of 64 KiB and 1 MiB.
pub fn nginx_real_server<B: Backend>() {
    let nginx = crate::require_nginx!();
    let client = B::client(test_config());
    for i in 0..350 {
        let resp = B::send(&client, Req::get(nginx.url("/small")))
            .unwrap_or_else(|e| panic!("request {i}: {e}\n{}", nginx.error_log()));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body, b"Hello, world!");
    }
    let stats = B::stats(&client);
    assert_eq!(stats.dials, 4, "{stats:?}");
    assert_eq!(stats.reuses, 346, "{stats:?}");
    assert_eq!(closed(&stats, CloseReason::ServerClose), 3, "{stats:?}");
    assert_eq!(stats.closed.total(), 3, "{stats:?}");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/64k")));
    assert!(resp.body == pattern(64 * 1024), "/64k differs");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/1m")));
    assert!(resp.body == pattern(1024 * 1024), "/1m differs");
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/chunked")));
    assert!(resp.body == chunked_text(), "/chunked differs");
    if nginx.has_chunked_plain() {
        let resp = send_ok::<B>(&client, Req::get(nginx.url("/chunked-plain")));
        assert_eq!(resp.headers["transfer-encoding"], "chunked");
        assert!(resp.body == chunked_text(), "/chunked-plain differs");
    } else {
        crate::fixtures::skip_loudly("nginx has no ngx_http_sub_module: /chunked-plain not tested");
    }
    let resp = send_ok::<B>(&client, Req::get(nginx.url("/missing")));
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(B::stats(&client).dials, 4, "{:?}", B::stats(&client));
}

/// Python's `http.server` (HTTP/1.0, closes after each response): every GET
/// succeeds on a new connection, bodies exact.
pub fn python_http10_server<B: Backend>() {
    let py = crate::require_python!();
    let client = B::client(test_config());
    for (i, (path, want)) in [
        ("/small", b"Hello, world!".to_vec()),
        ("/64k", pattern(64 * 1024)),
        ("/small", b"Hello, world!".to_vec()),
        ("/1m", pattern(1024 * 1024)),
        ("/small", b"Hello, world!".to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = B::send(&client, Req::get(py.url(path)))
            .unwrap_or_else(|e| panic!("request {i} {path}: {e}\n{}", py.log()));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.version, Version::HTTP_10);
        assert!(resp.body == want, "{path} differs");
    }
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle),
        (5, 0, 0),
        "{stats:?}"
    );
    assert_eq!(closed(&stats, CloseReason::Http10), 5, "{stats:?}");
}
}
