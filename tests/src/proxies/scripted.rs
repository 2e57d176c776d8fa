//! Scripted proxies: a [`ScriptServer`] plays the proxy for refusals,
//! `407`s, closes, garbage and silence, and for the exact request it reads
//! when forwarding; a [`RelayProxy`] plays a working `CONNECT` proxy (its
//! `CONNECT` line recorded, optionally cut mid-response) in front of the
//! [`TlsOrigin`]. Host names other than `localhost` and `127.0.0.1` only
//! ever reach the scripted proxy as text: nothing resolves or dials them.

use std::sync::Arc;
use std::time::Instant;

use roundtrip_io::proxy::{NoProxy, ProxyError};
use roundtrip_io::{Phase, TimeoutKind};

use super::*;
use crate::proxy_peers::{RelayProxy, TlsOrigin};
use crate::server::{Request, Script, ScriptServer, Step, ok, response};

/// The connect timeout of the silent-proxy case.
const SHORT: Duration = Duration::from_millis(300);

/// Upper bound for a deadline of [`SHORT`] to fire (debug builds, loaded CI).
const LATE: Duration = Duration::from_millis(2000);

/// A proxy that plays `script` on every connection.
pub(super) fn scripted(script: Script) -> ScriptServer {
    ScriptServer::start(vec![script]).repeat_last(true)
}

/// A server answering every request on every connection with `answer`.
fn serving(answer: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static) -> ScriptServer {
    scripted(vec![Step::Serve(Arc::new(answer))])
}

/// A forwarding proxy that answers each request itself with
/// `proxied {target}`.
fn forwarder() -> ScriptServer {
    serving(|r| ok(format!("proxied {}", r.target).as_bytes()))
}

/// Reads a `CONNECT` and answers `status` (empty body), then expects the
/// client to close.
fn refusing(status: u16, extra: &[(&str, &str)]) -> ScriptServer {
    let mut headers = vec![("Content-Length", "0")];
    headers.extend_from_slice(extra);
    let answer = response(status, &headers, b"");
    scripted(vec![Step::ReadHead, Step::Write(answer), Step::ExpectEof])
}

/// `http://127.0.0.1:PORT` of a scripted proxy, optionally with `user:pw@`.
pub(super) fn proxy_url(server: &ScriptServer, credentials: bool) -> String {
    match credentials {
        true => format!("http://user:pw@{}", server.addr()),
        false => format!("http://{}", server.addr()),
    }
}

/// Requires that the scripted peers' connections ended as scripted.
pub(super) fn settle(servers: &[&ScriptServer]) {
    for server in servers {
        assert!(server.wait_idle(SETTLE), "server scripts still running");
        server.assert_no_errors();
    }
}

/// `method target` and `Proxy-Authorization` of each request `server` read.
fn heads(server: &ScriptServer) -> Vec<(String, Option<String>)> {
    server
        .requests()
        .iter()
        .map(|r| {
            let auth = r.header("proxy-authorization").map(str::to_string);
            (format!("{} {}", r.method, r.target), auth)
        })
        .collect()
}

/// Panics unless `err` is [`Error::Proxy`] from `proxy` whose source
/// `matches`.
fn assert_proxy_error<B: Backend>(
    err: &Error,
    proxy: &str,
    what: &str,
    matches: impl Fn(&ProxyError) -> bool,
) {
    match err {
        Error::Proxy { proxy: p, source } if p == proxy && matches(source) => {}
        other => panic!(
            "{}: want Proxy {{ {proxy}, {what} }}, got {other:?}",
            B::NAME
        ),
    }
}

/// Sends an https request through a proxy that reads the `CONNECT` and
/// never answers, with a 300 ms connect timeout: the error, how long it
/// took, and the proxy.
pub(super) fn silent_proxy<B: Backend>() -> (Error, Duration, ScriptServer) {
    let silent = vec![Step::ReadHead, Step::Sleep(Duration::from_secs(5))];
    let proxy_server = scripted(silent);
    let url = proxy_url(&proxy_server, false);
    let mut config = config(Proxies::all(proxy(&url)), &Recorder::default());
    config.connect_timeout = Some(SHORT);
    let client = B::client(config);
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get("https://localhost:9/"));
    (err, started.elapsed(), proxy_server)
}

crate::cases! {
    /// Stamps the scripted-proxy cases (see [`proxy_suite!`](crate::proxy_suite)).
    #[doc(hidden)]
    stamp __proxies_scripted, list cases, path proxies::scripted;

/// A `403` to `CONNECT` ends in `ProxyStatus` 403 naming the proxy; one
/// `CONNECT` was sent, and the client closed that connection itself (the
/// proxy's `ExpectEof` ends while the client still lives), nothing retried.
pub fn connect_refused<B: Backend>() {
    let proxy_server = refusing(403, &[]);
    let url = proxy_url(&proxy_server, false);
    let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let err = send_err::<B>(&client, Req::get("https://localhost:9/refused"));
    assert_proxy_status::<B>(&err, &url, 403);
    assert_eq!(
        heads(&proxy_server),
        [("CONNECT localhost:9".to_string(), None)],
        "{}",
        B::NAME
    );
    assert_eq!(proxy_server.accepted(), 1, "{}", B::NAME);
    settle(&[&proxy_server]);
    drop(client);
}

/// A `101` to `CONNECT` opens no tunnel (only a 2xx does, RFC 9110 section
/// 9.3.6): `ProxyStatus` 101, and the client closes the connection.
pub fn connect_answered_101_opens_no_tunnel<B: Backend>() {
    let proxy_server = refusing(101, &[("Upgrade", "tunnel")]);
    let url = proxy_url(&proxy_server, false);
    let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let err = send_err::<B>(&client, Req::get("https://localhost:9/switched"));
    assert_proxy_status::<B>(&err, &url, 101);
    assert_eq!(proxy_server.accepted(), 1, "{}", B::NAME);
    settle(&[&proxy_server]);
    drop(client);
}

/// A proxy that answers `407` to every `CONNECT`, even with credentials:
/// each request sends exactly one `CONNECT` (with the credentials) and
/// ends in `ProxyStatus` 407 carrying the proxy's `Proxy-Authenticate`;
/// the error text does not show the password.
pub fn connect_407_is_not_retried<B: Backend>() {
    let challenge = ("Proxy-Authenticate", "Basic realm=\"scripted\"");
    let proxy_server = refusing(407, &[challenge]);
    let client = B::client(config(
        Proxies::all(proxy(&proxy_url(&proxy_server, true))),
        &Recorder::default(),
    ));
    let name = proxy_url(&proxy_server, false);
    for _ in 0..2 {
        let err = send_err::<B>(&client, Req::get("https://localhost:9/"));
        let head = assert_proxy_status::<B>(&err, &name, 407);
        let want = ("proxy-authenticate".to_string(), challenge.1.to_string());
        assert!(head.contains(&want), "{}: {head:?}", B::NAME);
        assert!(!err.to_string().contains("pw"), "{}: {err}", B::NAME);
    }
    let connect = ("CONNECT localhost:9".to_string(), Some(USER_BASIC.to_string()));
    assert_eq!(heads(&proxy_server), [connect.clone(), connect], "{}", B::NAME);
    assert_eq!(proxy_server.accepted(), 2, "{}", B::NAME);
    // Both connections were closed by the client, not left idle.
    settle(&[&proxy_server]);
    drop(client);
}

/// The proxy answers the `CONNECT` (an SSH banner, `200` followed by bytes
/// nobody asked for yet, half a status line, nothing)
/// and closes: each ends in a typed `Error::Proxy` naming the proxy
/// (`BadAnswer` or `Closed`), after one `CONNECT`.
pub fn proxy_answers_garbage<B: Backend>() {
    type Check = fn(&ProxyError) -> bool;
    let cases: [(&str, &[u8], Check); 4] = [
        ("garbage", b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n\r\n", |e| {
            matches!(e, ProxyError::BadAnswer(_))
        }),
        (
            "bytes after the 200",
            b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            |e| matches!(e, ProxyError::BadAnswer(_)),
        ),
        ("half a status line", b"HTTP/1.1 200 Conn", |e| {
            matches!(e, ProxyError::Closed)
        }),
        ("nothing", b"", |e| matches!(e, ProxyError::Closed)),
    ];
    for (what, answer, check) in cases {
        let proxy_server = scripted(vec![Step::ReadHead, Step::Write(answer.to_vec()), Step::Close]);
        let url = proxy_url(&proxy_server, false);
        let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
        let err = send_err::<B>(&client, Req::get("https://localhost:9/"));
        assert_proxy_error::<B>(&err, &url, what, check);
        assert_eq!(proxy_server.count_method("CONNECT"), 1, "{}: {what}", B::NAME);
        assert_eq!(proxy_server.accepted(), 1, "{}: {what}", B::NAME);
        drop(client);
        settle(&[&proxy_server]);
    }
}

/// The tunnel is cut 20000 bytes into the origin's answer (a 64 KiB
/// body): the request fails with `ClosedEarly` in the body phase, the
/// connection is not pooled, and the next request opens a new tunnel.
pub fn proxy_closes_mid_response<B: Backend>() {
    let tls = TlsOrigin::start();
    let relay = RelayProxy::cut_after(Some(20_000));
    let url = format!("http://{}", relay.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let target = tls.url("127.0.0.1", "/64k");
    let err = send_err::<B>(&client, Req::get(&target));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::Body,
                reached_server: true
            }
        ),
        "{}: {err:?}",
        B::NAME
    );
    assert_eq!(B::live_stats(&client).idle, 0, "{}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(tls.url("127.0.0.1", "/small")));
    assert_eq!(text(&resp), "tls origin /small", "{}", B::NAME);
    assert_eq!((relay.accepted(), tls.accepted()), (2, 2), "{}", B::NAME);
    assert_eq!(relay.errors(), Vec::<String>::new(), "{}", B::NAME);
}

/// A proxy that reads the `CONNECT` and never answers: the connect timeout
/// (300 ms) ends the request as a connect timeout, not sooner and not
/// much later, after one `CONNECT`. (`reached_server` is checked in
/// [`regressions`].)
pub fn proxy_never_answers_connect<B: Backend>() {
    let (err, took, proxy_server) = silent_proxy::<B>();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Connect,
                phase: Phase::Connect,
                ..
            }
        ),
        "{}: {err:?}",
        B::NAME
    );
    assert!(took >= SHORT, "{}: fired early: {took:?}", B::NAME);
    assert!(took < LATE, "{}: fired late: {took:?}", B::NAME);
    assert_eq!(proxy_server.count_method("CONNECT"), 1, "{}", B::NAME);
}

/// Forwarding: the request line is in absolute form with the query, `Host`
/// is the origin's, `Proxy-Authorization` carries the proxy URL's
/// credentials (and no `Authorization` appears); requests to two origins
/// share the one connection to the proxy, under the key
/// `http://* via http://127.0.0.1:P` (no credentials in it).
pub fn forward_request_in_absolute_form<B: Backend>() {
    let proxy_server = forwarder();
    let rec = Recorder::default();
    let url = proxy_url(&proxy_server, true);
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    let first = "http://origin.invalid:8080/path?q=1";
    let second = "http://other.invalid/x";
    for target in [first, second] {
        // A `Proxy-Authorization` of the caller's gives way to the proxy
        // URL's credentials: one field, theirs (Go sets it over).
        let req = Req::get(target).header("Proxy-Authorization", "Basic b3duOm93bg==");
        let resp = send_ok::<B>(&client, req);
        assert_eq!(text(&resp), format!("proxied {target}"), "{}", B::NAME);
    }
    let seen = proxy_server.requests();
    assert_eq!(seen.len(), 2, "{}: {seen:#?}", B::NAME);
    let line = format!("GET {first} HTTP/1.1\r\n");
    assert!(seen[0].raw_head.starts_with(line.as_bytes()), "{}: {seen:?}", B::NAME);
    for (r, host) in seen.iter().zip(["origin.invalid:8080", "other.invalid"]) {
        assert_eq!(r.header("host"), Some(host), "{}", B::NAME);
        assert_eq!(r.header_all("proxy-authorization"), [USER_BASIC], "{}", B::NAME);
        assert_eq!(r.header("authorization"), None, "{}", B::NAME);
        assert_eq!(r.conn, 0, "{}", B::NAME);
    }
    assert_eq!(seen[1].target, second, "{}", B::NAME);
    assert_eq!(proxy_server.accepted(), 1, "{}", B::NAME);
    let events = rec.take();
    let key = format!("http://* via http://{}", proxy_server.addr());
    assert_eq!(keys(&events), [key.clone(), key], "{}", B::NAME);
    assert_eq!(dialed(&events), [proxy_server.addr()], "{}", B::NAME);
    drop(client);
    settle(&[&proxy_server]);
}

/// A tunnel through a working proxy with credentials: the proxy read
/// `CONNECT localhost:T HTTP/1.1` with `Host: localhost:T` and the
/// `Proxy-Authorization`; the origin read two plain `GET`s on one tunnel,
/// never a `Proxy-Authorization`.
pub fn connect_line_and_credentials<B: Backend>() {
    let tls = TlsOrigin::start();
    let relay = RelayProxy::start();
    let rec = Recorder::default();
    let url = format!("http://user:pw@{}", relay.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    for path in ["/a", "/b"] {
        let resp = send_ok::<B>(&client, Req::get(tls.url("localhost", path)));
        assert_eq!(text(&resp), format!("tls origin {path}"), "{}", B::NAME);
    }
    let port = tls.addr().port();
    let connects = relay.requests();
    assert_eq!(connects.len(), 1, "{}: {connects:#?}", B::NAME);
    let line = format!("CONNECT localhost:{port} HTTP/1.1\r\n");
    assert!(connects[0].raw_head.starts_with(line.as_bytes()), "{}: {connects:?}", B::NAME);
    let host = format!("localhost:{port}");
    assert_eq!(connects[0].header("host"), Some(host.as_str()), "{}", B::NAME);
    let auth = connects[0].header_all("proxy-authorization");
    assert_eq!(auth, [USER_BASIC], "{}", B::NAME);
    let seen = tls.requests();
    assert_eq!(seen.len(), 2, "{}", B::NAME);
    for r in &seen {
        assert_eq!((r.method.as_str(), r.conn), ("GET", 0), "{}", B::NAME);
        assert_eq!(r.header("proxy-authorization"), None, "{}", B::NAME);
    }
    assert_eq!((relay.accepted(), tls.accepted()), (1, 1), "{}", B::NAME);
    let key = format!("https://localhost:{port} via http://{}", relay.addr());
    assert_eq!(keys(&rec.take()), [key.clone(), key], "{}", B::NAME);
    drop(client);
    assert_eq!(relay.errors(), Vec::<String>::new(), "{}", B::NAME);
}

/// A `Proxy-Authorization` the client sets by default (a token the proxy
/// URL cannot carry) goes on the `CONNECT` when the proxy URL has no
/// credentials, and never inside the tunnel to the origin; a request's
/// own field likewise, on a tunnel of its own.
pub fn connect_carries_a_default_proxy_authorization<B: Backend>() {
    let tls = TlsOrigin::start();
    let relay = RelayProxy::start();
    let rec = Recorder::default();
    let url = format!("http://{}", relay.addr());
    let mut cfg = config(Proxies::all(proxy(&url)), &rec);
    let token = roundtrip_io::http::HeaderValue::from_static("Bearer t");
    let name = roundtrip_io::http::header::PROXY_AUTHORIZATION;
    cfg.default_headers.insert(name, token);
    let client = B::client(cfg);
    let resp = send_ok::<B>(&client, Req::get(tls.url("localhost", "/a")));
    assert_eq!(text(&resp), "tls origin /a", "{}", B::NAME);
    // Another credential: a tunnel of its own (one authenticated by the
    // default token is not shared with it), then the first is reused.
    let own = Req::get(tls.url("localhost", "/b")).header("Proxy-Authorization", "Bearer own");
    assert_eq!(text(&send_ok::<B>(&client, own)), "tls origin /b", "{}", B::NAME);
    let again = send_ok::<B>(&client, Req::get(tls.url("localhost", "/c")));
    assert_eq!(text(&again), "tls origin /c", "{}", B::NAME);
    let connects = relay.requests();
    assert_eq!(connects.len(), 2, "{}: {connects:#?}", B::NAME);
    let auth: Vec<_> = connects
        .iter()
        .map(|c| c.header_all("proxy-authorization"))
        .collect();
    assert_eq!(auth, [["Bearer t"], ["Bearer own"]], "{}", B::NAME);
    let seen = tls.requests();
    assert_eq!(seen.len(), 3, "{}", B::NAME);
    for r in &seen {
        assert_eq!(r.header("proxy-authorization"), None, "{}: {r:?}", B::NAME);
    }
    drop(client);
    assert_eq!(relay.errors(), Vec::<String>::new(), "{}", B::NAME);
}

/// A default `Proxy-Authorization` is for proxies only: a request that
/// `NO_PROXY` sends straight to its origin goes without it (it went there
/// in clear, as it would to every origin without a proxy).
pub fn a_default_proxy_authorization_never_goes_direct<B: Backend>() {
    let origin = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"direct")),
        Step::ExpectEof,
    ]]);
    let relay = RelayProxy::start();
    let rec = Recorder::default();
    let url = format!("http://{}", relay.addr());
    let proxies = Proxies::all(proxy(&url)).no_proxy(NoProxy::parse("127.0.0.1"));
    let mut cfg = config(proxies, &rec);
    let token = roundtrip_io::http::HeaderValue::from_static("Bearer t");
    cfg.default_headers
        .insert(roundtrip_io::http::header::PROXY_AUTHORIZATION, token);
    let client = B::client(cfg);
    let resp = send_ok::<B>(&client, Req::get(origin.url("/")));
    assert_eq!(text(&resp), "direct", "{}", B::NAME);
    drop(client);
    settle(&[&origin]);
    let seen = origin.requests();
    assert_eq!(seen.len(), 1, "{}", B::NAME);
    assert_eq!(seen[0].header("proxy-authorization"), None, "{}", B::NAME);
    assert_eq!(relay.accepted(), 0, "{}: went direct", B::NAME);
}

/// Redirects re-decide the proxy per hop, with `NO_PROXY=localhost`: a
/// proxied hop to `127.0.0.1:9` redirected to `localhost:B` goes direct
/// (origin form, no `Proxy-Authorization`), and a direct hop redirected to
/// `127.0.0.1:9` goes through the proxy again (absolute form, with it).
pub fn redirect_redecides_the_proxy<B: Backend>() {
    let to_proxied = "http://127.0.0.1:9/next";
    let direct = serving(move |r| match r.target.as_str() {
        "/start" => response(302, &[("Location", to_proxied), ("Content-Length", "0")], b""),
        target => ok(format!("direct {target}").as_bytes()),
    });
    let port = direct.addr().port();
    // The proxy plays every origin but `localhost`.
    let to_direct = format!("http://localhost:{port}/end");
    let proxy_server = serving(move |r| match r.target.ends_with("/start") {
        true => response(302, &[("Location", &to_direct), ("Content-Length", "0")], b""),
        false => ok(format!("proxied {}", r.target).as_bytes()),
    });
    let rec = Recorder::default();
    let proxies = Proxies::all(proxy(&proxy_url(&proxy_server, true)))
        .no_proxy(NoProxy::parse("localhost"));
    let client = B::client(config(proxies, &rec));
    let resp = send_ok::<B>(&client, Req::get("http://127.0.0.1:9/start"));
    assert_eq!(text(&resp), "direct /end", "{}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(format!("http://localhost:{port}/start")));
    assert_eq!(text(&resp), format!("proxied {to_proxied}"), "{}", B::NAME);
    let auth = Some(USER_BASIC.to_string());
    assert_eq!(
        heads(&proxy_server),
        [
            ("GET http://127.0.0.1:9/start".to_string(), auth.clone()),
            (format!("GET {to_proxied}"), auth),
        ],
        "{}",
        B::NAME
    );
    assert_eq!(
        heads(&direct),
        [("GET /end".to_string(), None), ("GET /start".to_string(), None)],
        "{}",
        B::NAME
    );
    let via = format!("http://* via http://{}", proxy_server.addr());
    let local = format!("http://localhost:{port}");
    assert_eq!(
        keys(&rec.take()),
        [via.clone(), local.clone(), local, via],
        "{}",
        B::NAME
    );
    drop(client);
    settle(&[&proxy_server, &direct]);
}

/// [`Proxies::from_vars`] over a fake environment routes as curl would:
/// `http_proxy` forwards, lowercase `https_proxy` wins over `HTTPS_PROXY`
/// for tunnels, `NO_PROXY` sends `localhost` direct; `HTTP_PROXY` is
/// ignored when `REQUEST_METHOD` is set (CGI); `ALL_PROXY` covers both
/// schemes.
pub fn proxies_from_fake_environment<B: Backend>() {
    let http = forwarder();
    let https = refusing(403, &[]);
    let origin = serving(|r| ok(format!("origin {}", r.target).as_bytes()));
    let env = |vars: Vec<(&'static str, String)>| {
        Proxies::from_vars(move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    };
    let client = |proxies| B::client(config(proxies, &Recorder::default()));
    let port = origin.addr().port();
    let https_name = proxy_url(&https, false);
    let all = client(env(vec![
        ("http_proxy", proxy_url(&http, false)),
        ("https_proxy", https_name.clone()),
        ("HTTPS_PROXY", "http://127.0.0.1:9".into()),
        ("NO_PROXY", "localhost".into()),
    ]));
    let resp = send_ok::<B>(&all, Req::get("http://127.0.0.1:9/env"));
    assert_eq!(text(&resp), "proxied http://127.0.0.1:9/env", "{}", B::NAME);
    let resp = send_ok::<B>(&all, Req::get(format!("http://localhost:{port}/env")));
    assert_eq!(text(&resp), "origin /env", "{}", B::NAME);
    let err = send_err::<B>(&all, Req::get("https://127.0.0.1:9/env"));
    assert_proxy_status::<B>(&err, &https_name, 403);
    let cgi = client(env(vec![
        ("REQUEST_METHOD", "GET".into()),
        ("HTTP_PROXY", proxy_url(&http, false)),
    ]));
    let resp = send_ok::<B>(&cgi, Req::get(origin.url("/cgi")));
    assert_eq!(text(&resp), "origin /cgi", "{}", B::NAME);
    let only = client(env(vec![("ALL_PROXY", https_name.clone())]));
    let resp = send_ok::<B>(&only, Req::get("http://127.0.0.1:9/all"));
    assert_eq!(resp.status, 403, "{}", B::NAME);
    let err = send_err::<B>(&only, Req::get("https://localhost:9/all"));
    assert_proxy_status::<B>(&err, &https_name, 403);
    let targets = |s: &ScriptServer| -> Vec<String> { heads(s).into_iter().map(|h| h.0).collect() };
    assert_eq!(targets(&http), ["GET http://127.0.0.1:9/env"], "{}", B::NAME);
    assert_eq!(
        targets(&https),
        ["CONNECT 127.0.0.1:9", "GET http://127.0.0.1:9/all", "CONNECT localhost:9"],
        "{}",
        B::NAME
    );
    assert_eq!(targets(&origin), ["GET /env", "GET /cgi"], "{}", B::NAME);
    drop((all, cgi, only));
    settle(&[&http, &https, &origin]);
}

}
