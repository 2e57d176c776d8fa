//! Through real proxies: squid (`http://` forwarded, `https://` through a
//! `CONNECT` tunnel to the [`TlsOrigin`], Basic authentication, `NO_PROXY`,
//! reuse) and microsocks (SOCKS5 with `socks5h://` and `socks5://`, with
//! and without credentials). squid's access log and microsocks's output
//! tell what the proxy did; the origins tell what came through.

use std::sync::Arc;

use roundtrip_io::proxy::{NoProxy, ProxyError};
use roundtrip_io::socks::SocksError;

use super::*;
use crate::proxy_peers::TlsOrigin;
use crate::server::{Request, ScriptServer, Step, ok};

/// An http origin answering every request with `origin {target}`.
fn origin() -> ScriptServer {
    let answer = |r: &Request| ok(format!("origin {}", r.target).as_bytes());
    ScriptServer::start(vec![vec![Step::Serve(Arc::new(answer))]]).repeat_last(true)
}

/// Ends the proxy (closing every connection it holds to the origins; the
/// client is gone already), then requires the origins' scripts to have
/// ended cleanly.
fn settle<B: Backend, P>(proxy: P, origins: &[&ScriptServer]) {
    drop(proxy);
    for origin in origins {
        assert!(
            origin.wait_idle(SETTLE),
            "{}: origin scripts still running",
            B::NAME
        );
        origin.assert_no_errors();
    }
}

/// Waits up to [`SETTLE`] for `check` to hold (polled every 20 ms).
fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + SETTLE;
    // Bounded by the deadline.
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one request `origin` read; panics unless there was exactly one.
fn only_request<B: Backend>(origin: &ScriptServer) -> Request {
    let seen = origin.requests();
    assert_eq!(seen.len(), 1, "{}: origin requests: {seen:#?}", B::NAME);
    seen.into_iter().next().expect("one request")
}

/// Whether `request` came through squid (squid adds `Via: 1.1 host (squid/x)`).
fn via_squid(request: &Request) -> bool {
    request.header("via").is_some_and(|v| v.contains("squid"))
}

crate::cases! {
    /// Stamps the cases through real proxies (see [`proxy_suite!`](crate::proxy_suite)).
    #[doc(hidden)]
    stamp __proxies_real, list cases, path proxies::real;

/// `GET http://origin/small?q=1` through squid: squid read the absolute
/// form (its log), the origin read the origin form with squid's `Via`, and
/// the client dialed only squid, under the shared forward key.
pub fn squid_forwards_http<B: Backend>() {
    let squid = crate::require_squid!(None);
    let origin = origin();
    let rec = Recorder::default();
    let client = B::client(config(Proxies::all(proxy(&squid.url(None))), &rec));
    let url = origin.url("/small?q=1");
    let resp = send_ok::<B>(&client, Req::get(&url));
    assert_eq!(resp.status, 200, "{}", B::NAME);
    assert_eq!(text(&resp), "origin /small?q=1", "{}", B::NAME);
    let seen = only_request::<B>(&origin);
    assert_eq!(seen.target, "/small?q=1", "{}", B::NAME);
    assert!(via_squid(&seen), "{}: no squid Via: {seen:?}", B::NAME);
    assert_eq!(seen.header("proxy-authorization"), None, "{}", B::NAME);
    let logged = squid.wait_log(&format!(" GET {url} "), 1, SETTLE);
    assert_eq!(logged.len(), 1, "{}: {}", B::NAME, squid.access_log());
    assert!(logged[0].contains("/200 "), "{}: {logged:?}", B::NAME);
    let events = rec.take();
    let key = format!("http://* via http://{}", squid.addr());
    assert_eq!(keys(&events), [key], "{}", B::NAME);
    assert_eq!(dialed(&events), [squid.addr()], "{}", B::NAME);
    drop(client);
    settle::<B, _>(squid, &[&origin]);
}

/// `https://localhost:T` and `https://127.0.0.1:T` through squid: one
/// `CONNECT` each (two pool keys), TLS to the origin inside, the origin
/// read plain `GET`s without `Proxy-Authorization`.
pub fn squid_tunnels_https<B: Backend>() {
    let squid = crate::require_squid!(None);
    let tls = TlsOrigin::start();
    let rec = Recorder::default();
    let client = B::client(config(Proxies::all(proxy(&squid.url(None))), &rec));
    let port = tls.addr().port();
    for host in ["localhost", "127.0.0.1"] {
        let resp = send_ok::<B>(&client, Req::get(tls.url(host, "/hello")));
        assert_eq!(resp.status, 200, "{}", B::NAME);
        assert_eq!(text(&resp), "tls origin /hello", "{}", B::NAME);
    }
    let seen = tls.requests();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {} host={:?}", r.method, r.target, r.header("host")))
        .collect();
    assert_eq!(
        lines,
        [
            format!("GET /hello host=Some(\"localhost:{port}\")"),
            format!("GET /hello host=Some(\"127.0.0.1:{port}\")"),
        ],
        "{}",
        B::NAME
    );
    assert!(seen.iter().all(|r| r.header("proxy-authorization").is_none()));
    assert_eq!(tls.accepted(), 2, "{}", B::NAME);
    let events = rec.take();
    let via = format!("via http://{}", squid.addr());
    assert_eq!(
        keys(&events),
        [
            format!("https://localhost:{port} {via}"),
            format!("https://127.0.0.1:{port} {via}")
        ],
        "{}",
        B::NAME
    );
    assert_eq!(dialed(&events), [squid.addr(); 2], "{}", B::NAME);
    drop(client);
    // A tunnel is logged when it closes.
    let tunnels = squid.wait_log(" CONNECT ", 2, SETTLE);
    assert_eq!(tunnels.len(), 2, "{}: {}", B::NAME, squid.access_log());
    for host in ["localhost", "127.0.0.1"] {
        let target = format!(" CONNECT {host}:{port} ");
        assert!(
            tunnels
                .iter()
                .any(|l| l.contains("TCP_TUNNEL/200") && l.contains(&target)),
            "{}: no tunnel to {host}: {tunnels:?}",
            B::NAME
        );
    }
}

/// Requests to two http origins and two https requests to one TLS origin
/// through squid: one connection carries both http origins (the forward
/// key is per proxy), one tunnel carries both https requests; squid logged
/// three `GET`s and one `CONNECT`.
pub fn squid_reuses_connections<B: Backend>() {
    let squid = crate::require_squid!(None);
    let (one, two) = (origin(), origin());
    let tls = TlsOrigin::start();
    let rec = Recorder::default();
    let client = B::client(config(Proxies::all(proxy(&squid.url(None))), &rec));
    for url in [one.url("/a"), two.url("/b"), one.url("/c")] {
        let resp = send_ok::<B>(&client, Req::get(&url));
        assert_eq!(resp.status, 200, "{}: {url}", B::NAME);
    }
    for path in ["/x", "/y"] {
        let resp = send_ok::<B>(&client, Req::get(tls.url("127.0.0.1", path)));
        assert_eq!(text(&resp), format!("tls origin {path}"), "{}", B::NAME);
    }
    let events = rec.take();
    assert_eq!(dialed(&events), [squid.addr(); 2], "{}: {events:#?}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (2, 3), "{}: {stats:?}", B::NAME);
    assert_eq!(tls.accepted(), 1, "{}", B::NAME);
    assert!(tls.requests().iter().all(|r| r.conn == 0), "{}", B::NAME);
    drop(client);
    let tunnels = squid.wait_log(" CONNECT ", 1, SETTLE);
    assert_eq!(tunnels.len(), 1, "{}: {}", B::NAME, squid.access_log());
    assert_eq!(squid.wait_log(" GET ", 3, SETTLE).len(), 3, "{}", B::NAME);
    settle::<B, _>(squid, &[&one, &two]);
}

/// squid requiring `user:pw`: without credentials a `CONNECT` ends in
/// `ProxyStatus` 407 with squid's `Proxy-Authenticate` after exactly one
/// attempt, and a forwarded `GET` returns squid's 407 as the response; a
/// wrong password the same; the right one goes through both ways, and
/// neither origin read a `Proxy-Authorization`.
pub fn squid_requires_credentials<B: Backend>() {
    let squid = crate::require_squid!(Some(USER));
    let origin = origin();
    let tls = TlsOrigin::start();
    let name = format!("http://{}", squid.addr());
    let https = tls.url("127.0.0.1", "/secret");
    for url in [squid.url(None), squid.url(Some(("user", "nope")))] {
        let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
        let err = send_err::<B>(&client, Req::get(&https));
        let head = assert_proxy_status::<B>(&err, &name, 407);
        assert!(
            head.iter()
                .any(|(n, v)| n == "proxy-authenticate" && v.contains("Basic realm=\"roundtrip\"")),
            "{}: {head:?}",
            B::NAME
        );
        let resp = send_ok::<B>(&client, Req::get(origin.url("/denied")));
        assert_eq!(resp.status, 407, "{}: {url}", B::NAME);
        assert!(resp.headers.contains_key("proxy-authenticate"), "{}", B::NAME);
    }
    assert_eq!(tls.accepted(), 0, "{}", B::NAME);
    assert!(origin.requests().is_empty(), "{}", B::NAME);
    let client = B::client(config(
        Proxies::all(proxy(&squid.url(Some(USER)))),
        &Recorder::default(),
    ));
    let marker = origin.url("/granted");
    assert_eq!(send_ok::<B>(&client, Req::get(&marker)).status, 200);
    // squid logs in the order transactions end: once the marker is there,
    // every earlier CONNECT is too.
    assert_eq!(squid.wait_log(&format!(" GET {marker} "), 1, SETTLE).len(), 1);
    let connect = format!(" CONNECT 127.0.0.1:{} ", tls.addr().port());
    let denied: Vec<String> = squid
        .access_log()
        .lines()
        .filter(|l| l.contains(&connect) && l.contains("/407 "))
        .map(str::to_string)
        .collect();
    assert_eq!(denied.len(), 2, "{}: one CONNECT per request: {denied:?}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(&https));
    assert_eq!(text(&resp), "tls origin /secret", "{}", B::NAME);
    let seen = origin.requests();
    assert_eq!(seen.len(), 1, "{}: {seen:?}", B::NAME);
    for r in seen.iter().chain(&tls.requests()) {
        assert_eq!(r.header("proxy-authorization"), None, "{}: {r:?}", B::NAME);
    }
    drop(client);
    settle::<B, _>(squid, &[&origin]);
}

/// `NO_PROXY=localhost` with squid for everything: `http://localhost:O`
/// and `https://localhost:T` are dialed directly (no `Via`, direct pool
/// keys, squid logged nothing for them), `http://127.0.0.1:O` goes through
/// squid.
pub fn squid_no_proxy_goes_direct<B: Backend>() {
    let squid = crate::require_squid!(None);
    let origin = origin();
    let tls = TlsOrigin::start();
    let rec = Recorder::default();
    let proxies = Proxies::all(proxy(&squid.url(None))).no_proxy(NoProxy::parse("localhost"));
    let client = B::client(config(proxies, &rec));
    let port = origin.addr().port();
    let direct = format!("http://localhost:{port}/direct");
    assert_eq!(send_ok::<B>(&client, Req::get(&direct)).status, 200);
    let resp = send_ok::<B>(&client, Req::get(tls.url("localhost", "/direct")));
    assert_eq!(text(&resp), "tls origin /direct", "{}", B::NAME);
    let proxied = origin.url("/proxied");
    assert_eq!(send_ok::<B>(&client, Req::get(&proxied)).status, 200);
    let seen = origin.requests();
    let via: Vec<(&str, bool)> = seen
        .iter()
        .map(|r| (r.target.as_str(), via_squid(r)))
        .collect();
    assert_eq!(via, [("/direct", false), ("/proxied", true)], "{}", B::NAME);
    let events = rec.take();
    let tls_port = tls.addr().port();
    assert_eq!(
        keys(&events),
        [
            format!("http://localhost:{port}"),
            format!("https://localhost:{tls_port}"),
            format!("http://* via http://{}", squid.addr()),
        ],
        "{}",
        B::NAME
    );
    assert_eq!(
        dialed(&events),
        [origin.addr(), tls.addr(), squid.addr()],
        "{}",
        B::NAME
    );
    assert_eq!(squid.wait_log(&format!(" GET {proxied} "), 1, SETTLE).len(), 1);
    let log = squid.access_log();
    assert!(!log.contains("/direct") && !log.contains(" CONNECT "), "{}: {log}", B::NAME);
    drop(client);
    settle::<B, _>(squid, &[&origin]);
}

/// `socks5h://`: microsocks resolves `localhost` (its log names the host
/// as the client sent it) for an http and an https origin; the client
/// dialed only microsocks, and the pool keys name the origin via it.
pub fn socks5h_resolves_at_the_proxy<B: Backend>() {
    let socks = crate::require_microsocks!(None);
    let origin = origin();
    let tls = TlsOrigin::start();
    let rec = Recorder::default();
    let url = format!("socks5h://{}", socks.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    let (port, tls_port) = (origin.addr().port(), tls.addr().port());
    let resp = send_ok::<B>(&client, Req::get(format!("http://localhost:{port}/plain")));
    assert_eq!(text(&resp), "origin /plain", "{}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(tls.url("localhost", "/tls")));
    assert_eq!(text(&resp), "tls origin /tls", "{}", B::NAME);
    let seen = only_request::<B>(&origin);
    assert_eq!(seen.target, "/plain", "{}", B::NAME);
    assert_eq!(seen.header("host"), Some(format!("localhost:{port}").as_str()));
    for target in [port, tls_port].map(|p| format!("connected to localhost:{p}")) {
        assert!(eventually(|| socks.log().contains(&target)), "{}: {}", B::NAME, socks.log());
    }
    let events = rec.take();
    assert_eq!(
        keys(&events),
        [
            format!("http://localhost:{port} via {url}"),
            format!("https://localhost:{tls_port} via {url}"),
        ],
        "{}",
        B::NAME
    );
    assert_eq!(dialed(&events), [socks.addr(); 2], "{}", B::NAME);
    drop(client);
    settle::<B, _>(socks, &[&origin]);
}

/// `socks5://`: the client resolves. IP literals go to microsocks as
/// sent, for http and https; a name (here `origin.test`, which only the
/// client's plugged-in resolver knows) is looked up by the client (a
/// `DnsStart` for it in the trace) and microsocks is asked for the address,
/// never the name, while the origin still reads its `Host`.
pub fn socks5_resolves_names_at_the_client<B: Backend>() {
    struct OnlyOriginTest;
    impl roundtrip_io::resolve::Resolve for OnlyOriginTest {
        fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            match host {
                "origin.test" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
                _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, host)),
            }
        }
    }
    let socks = crate::require_microsocks!(None);
    let origin = origin();
    let tls = TlsOrigin::start();
    let url = format!("socks5://{}", socks.addr());
    let rec = Recorder::default();
    let mut config = config(Proxies::all(proxy(&url)), &rec);
    config.resolver = roundtrip_io::resolve::Resolver::default().with_resolver(OnlyOriginTest);
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(origin.url("/plain")));
    assert_eq!(text(&resp), "origin /plain", "{}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(tls.url("127.0.0.1", "/tls")));
    assert_eq!(text(&resp), "tls origin /tls", "{}", B::NAME);
    for addr in [origin.addr(), tls.addr()] {
        let target = format!("connected to {addr}");
        assert!(eventually(|| socks.log().contains(&target)), "{}: {}", B::NAME, socks.log());
    }
    let port = origin.addr().port();
    let resp = send_ok::<B>(&client, Req::get(format!("http://origin.test:{port}/name")));
    assert_eq!(text(&resp), "origin /name", "{}", B::NAME);
    let seen = origin.requests();
    assert_eq!(seen.len(), 2, "{}", B::NAME);
    assert_eq!(seen[1].header("host"), Some(format!("origin.test:{port}").as_str()));
    assert!(!socks.log().contains("origin.test"), "{}: {}", B::NAME, socks.log());
    let looked_up: Vec<String> = (rec.take().into_iter())
        .filter_map(|e| match e {
            TraceEvent::DnsStart { host } => Some(host),
            _ => None,
        })
        .collect();
    assert_eq!(looked_up, ["origin.test"], "{}", B::NAME);
    drop(client);
    settle::<B, _>(socks, &[&origin]);
}

/// microsocks requiring `user:pw` (RFC 1929): the right password goes
/// through; a wrong one ends in `Socks(AuthFailed)`, none in
/// `Socks(NoAcceptableMethod)`, both naming the proxy; only the first
/// request reached the origin.
pub fn socks5_credentials<B: Backend>() {
    let socks = crate::require_microsocks!(Some(USER));
    let origin = origin();
    let addr = socks.addr();
    let port = origin.addr().port();
    let target = format!("http://localhost:{port}/");
    let client = |url: String| B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let good = client(format!("socks5h://user:pw@{addr}"));
    assert_eq!(send_ok::<B>(&good, Req::get(&target)).status, 200);
    let name = format!("socks5h://{addr}");
    let err = send_err::<B>(&client(format!("socks5h://user:nope@{addr}")), Req::get(&target));
    assert!(
        matches!(&err, Error::Proxy { proxy, source: ProxyError::Socks(SocksError::AuthFailed) }
            if *proxy == name),
        "{}: {err:?}",
        B::NAME
    );
    let err = send_err::<B>(&client(name.clone()), Req::get(&target));
    assert!(
        matches!(&err, Error::Proxy {
            proxy,
            source: ProxyError::Socks(SocksError::NoAcceptableMethod { offered_password: false }),
        } if *proxy == name),
        "{}: {err:?}",
        B::NAME
    );
    assert_eq!(origin.requests().len(), 1, "{}", B::NAME);
    drop(good);
    settle::<B, _>(socks, &[&origin]);
}

}
