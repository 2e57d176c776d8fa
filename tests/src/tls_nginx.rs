//! `https://` against a real server: nginx with `ssl` on loopback
//! ([`Nginx::start_tls`](crate::fixtures::Nginx::start_tls)), written once
//! over a [`Backend`]; [`tls_nginx_suite!`](crate::tls_nginx_suite) stamps
//! every case into a `#[test]` for one backend
//! (`tests/tls_nginx_{blocking,mio,tokio,smol}.rs`).
//!
//! The client trusts the test CA ([`crate::certs::pki`]) as an extra root
//! (what `add_root_certificate` does), except in the case that shows it
//! must. Each case checks what the client returned, the pool counters, and
//! where TLS shows, the handshakes in the trace. Without nginx every case
//! skips loudly (fails under `ROUNDTRIP_REQUIRE_SERVERS=1`).

use roundtrip_io::http::{Method, StatusCode, Uri, Version};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::trace::{TlsInfo, TraceEvent};
use roundtrip_io::tls::{Certificate, TlsError};
use roundtrip_io::{Config, Decompressed, Error, Phase, RedirectChain};

use crate::backend::{Backend, Req, ReqBody, Resp, test_config};
use crate::fixtures::{Nginx, chunked_text, pattern};
use crate::traces::Recorder;

/// `config` trusting the test CA besides the built-in roots.
pub fn trusting(mut config: Config) -> Config {
    let ca = Certificate::from_pem(crate::certs::pki().ca.as_bytes()).expect("the test CA");
    config.tls.extra_roots.push(ca);
    config
}

/// A client trusting the test CA, recording its trace into a new recorder.
fn traced<B: Backend>(config: Config) -> (B::Client, Recorder) {
    let recorder = Recorder::default();
    (B::client(recorder.install(trusting(config))), recorder)
}

/// Sends `req` and panics, naming the backend and the request, with nginx's
/// error log, if it fails.
fn send_ok<B: Backend>(nginx: &Nginx, client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req)
        .unwrap_or_else(|e| panic!("{}: {what}: {e}\n{}", B::NAME, nginx.error_log()))
}

/// The outcome of every TLS handshake in `events`, in order.
pub fn handshakes(events: &[TraceEvent]) -> Vec<Result<TlsInfo, String>> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeDone { result } => Some(result.clone()),
            _ => None,
        })
        .collect()
}

/// The `server_name` of every `TlsHandshakeStart` in `events`.
fn server_names(events: &[TraceEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeStart { server_name } => Some(server_name.clone()),
            _ => None,
        })
        .collect()
}

/// `reused` of every `GotConn` in `events`.
fn got_conns(events: &[TraceEvent]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::GotConn { reused, .. } => Some(*reused),
            _ => None,
        })
        .collect()
}

/// Each handshake as `(version, resumed)`; panics on a failed one.
fn versions(handshakes: &[Result<TlsInfo, String>]) -> Vec<(&'static str, bool)> {
    handshakes
        .iter()
        .map(|h| match h {
            Ok(info) => (info.version, info.resumed),
            Err(e) => panic!("a handshake failed: {e}"),
        })
        .collect()
}

crate::cases! {
    /// Stamps every nginx-over-TLS case into `#[test]` functions for a backend.
    stamp tls_nginx_suite, list cases, path tls_nginx;

/// GETs over https: status, version, exact bodies of every size, one
/// connection for all of them.
pub fn nginx_tls_get<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let client = B::client(trusting(test_config()));
    let files = [
        ("/small", b"Hello, world!".to_vec()),
        ("/64k", pattern(64 * 1024)),
        ("/1m", pattern(1024 * 1024)),
        ("/small", b"Hello, world!".to_vec()),
    ];
    for (path, want) in files {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url(path)));
        assert_eq!(resp.status, StatusCode::OK, "{path}");
        assert_eq!(resp.version, Version::HTTP_11, "{path}");
        assert_eq!(resp.headers["content-length"], want.len().to_string());
        assert!(resp.body == want, "{}: {path} differs", B::NAME);
    }
    let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/missing")));
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 4), "{stats:?}");
}

/// POSTs over https: nginx answers `/echo` with the body it read, so each
/// body came through whole: in memory, streamed with a length, streamed
/// chunked, empty; all on one connection.
pub fn nginx_tls_post_echo<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let client = B::client(trusting(test_config()));
    let bodies = [
        ("bytes", ReqBody::Bytes(b"hello over tls".to_vec())),
        ("64k bytes", ReqBody::Bytes(pattern(64 * 1024))),
        ("sized stream", ReqBody::Stream {
            data: pattern(100_000),
            piece: 4096,
            sized: true,
        }),
        ("chunked stream", ReqBody::Stream {
            data: pattern(30_000),
            piece: 1000,
            sized: false,
        }),
        ("empty", ReqBody::Bytes(Vec::new())),
    ];
    for (what, body) in bodies {
        let sent = match &body {
            ReqBody::Bytes(data) | ReqBody::Stream { data, .. } => data.clone(),
            _ => unreachable!("only bodies of data"),
        };
        let req = Req::new(Method::POST, nginx.https_url("/echo")).body(body);
        let resp = send_ok::<B>(&nginx, &client, req);
        assert_eq!(resp.status, StatusCode::OK, "{what}");
        assert_eq!(resp.headers["content-length"], sent.len().to_string(), "{what}");
        assert!(resp.body == sent, "{}: {what}: the echo differs", B::NAME);
    }
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 4), "{stats:?}");
}

/// A chunked response over https (`/chunked-plain`: chunked, never
/// compressed) reads back whole, and the connection is reused after it.
pub fn nginx_tls_chunked<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let client = B::client(trusting(test_config()));
    for _ in 0..2 {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/chunked-plain")));
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.headers["transfer-encoding"], "chunked");
        assert!(resp.headers.get("content-length").is_none());
        assert!(resp.headers.get("content-encoding").is_none());
        assert!(resp.extensions.get::<Decompressed>().is_none());
        assert!(resp.body == chunked_text(), "{}: /chunked-plain differs", B::NAME);
    }
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
}

/// gzip over https: `/chunked` comes compressed and chunked because the
/// client asks, and reads back as the text; asked for explicitly, the
/// gzip bytes come as they are.
pub fn nginx_tls_gzip<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let client = B::client(trusting(test_config()));
    let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/chunked")));
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.extensions.get::<Decompressed>().is_some(), "{:?}", resp.headers);
    assert_eq!(resp.headers["transfer-encoding"], "chunked");
    assert!(resp.headers.get("content-encoding").is_none());
    assert!(resp.body == chunked_text(), "{}: /chunked differs", B::NAME);
    let req = Req::get(nginx.https_url("/chunked")).header("Accept-Encoding", "gzip");
    let resp = send_ok::<B>(&nginx, &client, req);
    assert_eq!(resp.headers["content-encoding"], "gzip");
    assert!(resp.extensions.get::<Decompressed>().is_none());
    assert!(resp.body != chunked_text() && resp.body.starts_with(&[0x1f, 0x8b]));
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
}

/// Keep-alive over https: three requests, one connection, one handshake;
/// the trace shows the connection new, then reused.
pub fn nginx_tls_keep_alive<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let (client, recorder) = traced::<B>(test_config());
    for _ in 0..3 {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/small")));
        assert_eq!(resp.body, b"Hello, world!");
    }
    let events = recorder.take();
    assert_eq!(got_conns(&events), [false, true, true], "{events:#?}");
    assert_eq!(versions(&handshakes(&events)), [("TLSv1_3", false)]);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses, stats.idle), (1, 2, 1), "{stats:?}");
}

/// Session resumption: with no idle connection kept, each request dials
/// anew; the first handshake is full, the next ones resume the session
/// (a TLS 1.3 ticket nginx sent on an earlier connection).
pub fn nginx_tls_resumption<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let mut config = test_config();
    config.pool.max_idle_per_host = 0;
    let (client, recorder) = traced::<B>(config);
    for _ in 0..3 {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/small")));
        assert_eq!(resp.body, b"Hello, world!");
    }
    let events = recorder.take();
    assert_eq!(got_conns(&events), [false, false, false], "{events:#?}");
    assert_eq!(
        versions(&handshakes(&events)),
        [("TLSv1_3", false), ("TLSv1_3", true), ("TLSv1_3", true)]
    );
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses, stats.idle), (3, 0, 0), "{stats:?}");
}

/// TLS 1.2 (nginx's listener that speaks nothing newer): the handshake
/// says so, uses an ECDHE suite, and the second connection resumes.
pub fn nginx_tls12_resumption<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let mut config = test_config();
    config.pool.max_idle_per_host = 0;
    let (client, recorder) = traced::<B>(config);
    for _ in 0..2 {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https12_url("/64k")));
        assert!(resp.body == pattern(64 * 1024), "{}: /64k differs", B::NAME);
    }
    let shakes = handshakes(&recorder.take());
    assert_eq!(versions(&shakes), [("TLSv1_2", false), ("TLSv1_2", true)]);
    for info in shakes.iter().flatten() {
        assert!(info.cipher.starts_with("TLS_ECDHE_"), "{info:?}");
        assert_eq!(info.alpn, Some("http/1.1"), "{info:?}");
    }
}

/// What the handshake with nginx agreed on: TLS 1.3, a TLS 1.3 suite,
/// ALPN `http/1.1`. By IP address the client sends no SNI (RFC 6066
/// section 3) and nginx saw none; by name it sends `localhost`.
pub fn nginx_tls_handshake_info<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let (client, recorder) = traced::<B>(test_config());
    let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/sni")));
    assert_eq!((resp.status, resp.body.as_slice()), (StatusCode::OK, &b""[..]));
    let events = recorder.take();
    assert_eq!(server_names(&events), ["127.0.0.1"]);
    let shakes = handshakes(&events);
    let [Ok(info)] = shakes.as_slice() else {
        panic!("{}: one successful handshake expected: {shakes:?}", B::NAME);
    };
    assert_eq!(info.version, "TLSv1_3", "{info:?}");
    assert!(info.cipher.starts_with("TLS13_"), "{info:?}");
    assert_eq!(info.alpn, Some("http/1.1"), "{info:?}");
    assert!(!info.resumed, "{info:?}");

    let by_name = format!("https://localhost:{}/sni", nginx.https_addr().port());
    let resp = send_ok::<B>(&nginx, &client, Req::get(by_name));
    assert_eq!((resp.status, resp.body.as_slice()), (StatusCode::OK, &b"localhost"[..]));
    let events = recorder.take();
    assert_eq!(server_names(&events), ["localhost"]);
    // Another name, another session cache entry: a full handshake.
    assert_eq!(versions(&handshakes(&events)), [("TLSv1_3", false)]);
}

/// A plain-http URL that nginx redirects (`301`) to its https listener is
/// followed: the final URL is https, the body the file's.
pub fn nginx_tls_redirect_from_http<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let (client, recorder) = traced::<B>(test_config());
    let start = nginx.url("/to-https/small");
    let resp = send_ok::<B>(&nginx, &client, Req::get(start.clone()));
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body, b"Hello, world!");
    let chain = resp
        .extensions
        .get::<RedirectChain>()
        .expect("a redirected response carries its RedirectChain");
    let chain: Vec<String> = chain.0.iter().map(Uri::to_string).collect();
    assert_eq!(chain, [start, nginx.https_url("/small")]);
    assert!(chain[1].starts_with("https://"), "{chain:?}");
    assert_eq!(versions(&handshakes(&recorder.take())), [("TLSv1_3", false)]);
    // Two origins, two connections.
    assert_eq!(B::stats(&client).dials, 2, "{:?}", B::stats(&client));
}

/// Without the test CA the certificate leads to no trusted root: the
/// request fails in the handshake with `NotTrusted`, before any request
/// byte went out, and the trace says the handshake failed.
pub fn nginx_tls_untrusted_without_ca<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(test_config()));
    let err = match B::send(&client, Req::get(nginx.https_url("/small"))) {
        Ok(resp) => panic!("{}: untrusted server answered {}", B::NAME, resp.status),
        Err(e) => e,
    };
    match &err {
        Error::Tls {
            phase: Phase::Handshake,
            source: TlsError::NotTrusted { host },
            reached_server: false,
        } => assert_eq!(host, "127.0.0.1"),
        other => panic!("{}: want Tls/NotTrusted in the handshake, got {other:?}", B::NAME),
    }
    let shakes = handshakes(&recorder.take());
    assert!(matches!(shakes.as_slice(), [Err(_)]), "{shakes:?}");
    let stats = B::stats(&client);
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
}

/// The wrong scheme for a port: `https://` to the plain listener fails
/// with `PlaintextHttp` (nginx answers the ClientHello with a plaintext
/// `400`); `http://` to the https listener gets nginx's plaintext `400`.
pub fn nginx_tls_wrong_scheme<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let client = B::client(trusting(test_config()));
    let https_to_plain = nginx.url("/small").replacen("http:", "https:", 1);
    match B::send(&client, Req::get(https_to_plain)) {
        Err(Error::Tls {
            source: TlsError::PlaintextHttp,
            ..
        }) => {}
        other => panic!("{}: want Tls/PlaintextHttp, got {other:?}", B::NAME),
    }
    let http_to_tls = nginx.https_url("/small").replacen("https:", "http:", 1);
    let resp = send_ok::<B>(&nginx, &client, Req::get(http_to_tls));
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.contains("plain HTTP request was sent to HTTPS port"), "{body}");
}

/// nginx ends a connection after 100 requests (the 100th answer says
/// `Connection: close`) over TLS as over plain http: 101 requests take
/// two connections, and the second handshake resumes the first's session.
pub fn nginx_tls_server_close_then_resume<B: Backend>() {
    let nginx = crate::require_nginx!(tls);
    let (client, recorder) = traced::<B>(test_config());
    for i in 0..101 {
        let resp = send_ok::<B>(&nginx, &client, Req::get(nginx.https_url("/small")));
        assert_eq!(resp.body, b"Hello, world!", "request {i}");
    }
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (2, 99), "{stats:?}");
    assert_eq!(stats.closed.get(CloseReason::ServerClose), 1, "{stats:?}");
    assert_eq!(stats.closed.total(), 1, "{stats:?}");
    assert_eq!(
        versions(&handshakes(&recorder.take())),
        [("TLSv1_3", false), ("TLSv1_3", true)]
    );
}
}
