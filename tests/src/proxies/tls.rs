//! Through an `https://` proxy: TLS to the proxy (its certificate checked
//! against `127.0.0.1`), the `CONNECT` or the forwarded request inside
//! that session, and for `https://` URLs the origin's own TLS session
//! inside the tunnel (TLS inside TLS). The proxy is a
//! [`RelayProxy::start_tls`] (a working tunnel) or a [`TlsServer`]
//! script (a `407`, a forwarded answer, an untrusted certificate); the
//! origin a [`TlsServer`] script that records what came out of the tunnel.

use std::sync::Arc;

use roundtrip_io::Phase;
use roundtrip_io::http::Method;
use roundtrip_io::proxy::ProxyError;
use roundtrip_io::tls::TlsError;

use super::scripted::settle;
use super::*;
use crate::backend::ReqBody;
use crate::certs::pki;
use crate::fixtures::pattern;
use crate::proxy_peers::RelayProxy;
use crate::server::{Request, ScriptServer, Step, ok, response};
use crate::tls_server::TlsServer;

/// A TLS origin (the PKI's good certificate) answering every request on
/// every connection with `{method} {target} {body length}` (`/64k` with
/// [`pattern`]`(65536)`), keep-alive.
fn tls_origin() -> ScriptServer {
    tls_origin_with(TlsServer::new())
}

fn tls_origin_with(server: TlsServer) -> ScriptServer {
    let answer = |r: &Request| match r.target.as_str() {
        "/64k" => ok(&pattern(64 * 1024)),
        _ => ok(format!("{} {} {}", r.method, r.target, r.body.len()).as_bytes()),
    };
    server
        .start(vec![vec![Step::Serve(Arc::new(answer))]])
        .repeat_last(true)
}

/// `https://localhost:PORT{path}` of a TLS origin.
fn origin_url(origin: &ScriptServer, path: &str) -> String {
    format!("https://localhost:{}{path}", origin.addr().port())
}

/// The server name of every `TlsHandshakeStart`, and whether each
/// handshake ended well, in order.
fn handshakes(events: &[TraceEvent]) -> (Vec<String>, Vec<bool>) {
    let started = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeStart { server_name } => Some(server_name.clone()),
            _ => None,
        })
        .collect();
    let done = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeDone { result } => Some(result.is_ok()),
            _ => None,
        })
        .collect();
    (started, done)
}

/// Waits for `server`'s scripts to end, then requires exactly one error:
/// connection 0's handshake failed with the server's rustls saying
/// `message` (the alert the client sent).
fn handshake_failed_on(server: &ScriptServer, message: &str, what: &str) {
    assert!(server.wait_idle(SETTLE), "{what}: scripts still running");
    let errors = server.errors();
    assert!(
        errors.len() == 1
            && errors[0].conn == 0
            && errors[0].step == "open"
            && errors[0].message.contains(message),
        "{what}: want the handshake to fail with {message:?}, got {errors:?}"
    );
}

crate::cases! {
    /// Stamps the `https://` proxy cases (see [`proxy_suite!`](crate::proxy_suite)).
    #[doc(hidden)]
    stamp __proxies_tls, list cases, path proxies::tls;

/// A `GET`, a `POST` and a 64 KiB `GET` to an `https://` origin through
/// an `https://` proxy with credentials: all answered; the proxy read one
/// `CONNECT` (inside its TLS session) with the `Proxy-Authorization`; the
/// origin read every request on one connection, never a
/// `Proxy-Authorization`; the later requests reused the pooled tunnel
/// (one dial, no new handshake); the trace names both sessions' servers.
pub fn tls_proxy_tunnels_get_and_post_on_one_connection<B: Backend>() {
    let origin = tls_origin();
    let relay = RelayProxy::start_tls(&pki().server);
    let rec = Recorder::default();
    let url = format!("https://user:pw@{}", relay.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    let resp = send_ok::<B>(&client, Req::get(origin_url(&origin, "/get")));
    assert_eq!(text(&resp), "GET /get 0", "{}", B::NAME);
    let body = ReqBody::Bytes(vec![b'p'; 50_000]);
    let post = Req::new(Method::POST, origin_url(&origin, "/post")).body(body);
    let resp = send_ok::<B>(&client, post);
    assert_eq!(text(&resp), "POST /post 50000", "{}", B::NAME);
    let resp = send_ok::<B>(&client, Req::get(origin_url(&origin, "/64k")));
    assert!(resp.body == pattern(64 * 1024), "{}: the 64 KiB body", B::NAME);

    let port = origin.addr().port();
    let connects = relay.requests();
    assert_eq!(connects.len(), 1, "{}: {connects:#?}", B::NAME);
    let line = format!("CONNECT localhost:{port} HTTP/1.1\r\n");
    assert!(connects[0].raw_head.starts_with(line.as_bytes()), "{}: {connects:?}", B::NAME);
    let auth = connects[0].header_all("proxy-authorization");
    assert_eq!(auth, [USER_BASIC], "{}", B::NAME);
    let seen = origin.requests();
    assert_eq!(seen.len(), 3, "{}: {seen:#?}", B::NAME);
    for r in &seen {
        assert_eq!(r.conn, 0, "{}: one tunnel", B::NAME);
        assert_eq!(r.header("proxy-authorization"), None, "{}", B::NAME);
    }
    assert_eq!((relay.accepted(), origin.accepted()), (1, 1), "{}", B::NAME);
    let stats = B::live_stats(&client);
    assert_eq!((stats.dials, stats.reuses, stats.idle), (1, 2, 1), "{}: {stats:?}", B::NAME);
    let events = rec.take();
    let key = format!("https://localhost:{port} via https://{}", relay.addr());
    assert_eq!(keys(&events), [key.clone(), key.clone(), key], "{}", B::NAME);
    assert_eq!(dialed(&events), [relay.addr()], "{}", B::NAME);
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1", "localhost"], "{}", B::NAME);
    assert_eq!(done, [true, true], "{}", B::NAME);
    drop(client);
    settle(&[&origin]);
    assert_eq!(relay.errors(), Vec::<String>::new(), "{}", B::NAME);
}

/// An `https://` proxy that answers every `CONNECT` with `407`: each
/// request ends in `ProxyStatus` 407 naming the proxy (no credentials in
/// it) with the proxy's `Proxy-Authenticate`, after exactly one `CONNECT`
/// read inside TLS with the credentials; nothing retried, and the client
/// closed each connection.
pub fn tls_proxy_407_is_proxy_status<B: Backend>() {
    let challenge = ("Proxy-Authenticate", "Basic realm=\"tls\"");
    let answer = response(407, &[challenge, ("Content-Length", "0")], b"");
    let proxy_server = TlsServer::new()
        .start(vec![vec![Step::ReadHead, Step::Write(answer), Step::ExpectEof]])
        .repeat_last(true);
    let url = format!("https://user:pw@{}", proxy_server.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let name = format!("https://{}", proxy_server.addr());
    for _ in 0..2 {
        let err = send_err::<B>(&client, Req::get("https://localhost:9/"));
        let head = assert_proxy_status::<B>(&err, &name, 407);
        let want = ("proxy-authenticate".to_string(), challenge.1.to_string());
        assert!(head.contains(&want), "{}: {head:?}", B::NAME);
        assert!(!err.to_string().contains("pw"), "{}: {err}", B::NAME);
    }
    let seen = proxy_server.requests();
    assert_eq!(seen.len(), 2, "{}: {seen:#?}", B::NAME);
    for r in &seen {
        assert_eq!((r.method.as_str(), r.target.as_str()), ("CONNECT", "localhost:9"));
        assert_eq!(r.header_all("proxy-authorization"), [USER_BASIC], "{}", B::NAME);
    }
    assert_eq!(proxy_server.accepted(), 2, "{}", B::NAME);
    drop(client);
    settle(&[&proxy_server]);
}

/// An `https://` proxy whose certificate the client does not trust: the
/// request fails with `Error::Proxy` naming the proxy, its source the
/// typed TLS error for the proxy's host; the proxy heard the client's
/// `unknown_ca` alert, read no `CONNECT`, and nothing was retried. The
/// same for an `http://` URL (forwarded through that proxy).
pub fn tls_proxy_untrusted_certificate_names_the_proxy<B: Backend>() {
    for target in ["https://localhost:9/", "http://localhost:9/"] {
        let proxy_server = TlsServer::new()
            .cert(&pki().untrusted)
            .start(vec![vec![Step::ReadHead]]);
        let url = format!("https://{}", proxy_server.addr());
        let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
        let err = send_err::<B>(&client, Req::get(target));
        match &err {
            Error::Proxy {
                proxy,
                source: ProxyError::Tls(TlsError::NotTrusted { host }),
            } if *proxy == url && host == "127.0.0.1" => {}
            other => panic!("{}: {target}: want Proxy {{ {url}, Tls(NotTrusted) }}, got {other:?}", B::NAME),
        }
        assert!(!err.reached_server(), "{}: {target}", B::NAME);
        assert!(err.to_string().contains(&url), "{}: {err}", B::NAME);
        assert!(proxy_server.requests().is_empty(), "{}: {target}", B::NAME);
        assert_eq!(proxy_server.accepted(), 1, "{}: {target}", B::NAME);
        drop(client);
        handshake_failed_on(&proxy_server, "received fatal alert: UnknownCA", target);
    }
}

/// An origin whose certificate the client does not trust, behind a good
/// `https://` proxy: `Error::Tls` of the handshake for the origin's host
/// (not the proxy's); the origin heard the client's `unknown_ca` alert,
/// sent inside the proxy's session.
pub fn tls_proxy_untrusted_origin_names_the_origin<B: Backend>() {
    let origin = tls_origin_with(TlsServer::new().cert(&pki().untrusted));
    let relay = RelayProxy::start_tls(&pki().server);
    let rec = Recorder::default();
    let url = format!("https://{}", relay.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    let err = send_err::<B>(&client, Req::get(origin_url(&origin, "/")));
    match &err {
        Error::Tls {
            phase: Phase::Handshake,
            source: TlsError::NotTrusted { host },
            reached_server: false,
        } if host == "localhost" => {}
        other => panic!("{}: want Tls(NotTrusted localhost), got {other:?}", B::NAME),
    }
    assert_eq!(relay.requests().len(), 1, "{}: one CONNECT", B::NAME);
    let (names, done) = handshakes(&rec.take());
    assert_eq!(names, ["127.0.0.1", "localhost"], "{}", B::NAME);
    assert_eq!(done, [true, false], "{}", B::NAME);
    drop(client);
    handshake_failed_on(&origin, "received fatal alert: UnknownCA", B::NAME);
}

/// An `http://` URL through an `https://` proxy is forwarded inside the
/// proxy's TLS session: the absolute-form request line with the
/// `Proxy-Authorization`, two requests on one connection.
pub fn tls_proxy_forwards_http<B: Backend>() {
    let proxy_server = tls_origin();
    let rec = Recorder::default();
    let url = format!("https://user:pw@{}", proxy_server.addr());
    let client = B::client(config(Proxies::all(proxy(&url)), &rec));
    for target in ["http://origin.invalid/a?q=1", "http://other.invalid:8080/b"] {
        let resp = send_ok::<B>(&client, Req::get(target));
        assert_eq!(text(&resp), format!("GET {target} 0"), "{}", B::NAME);
    }
    let seen = proxy_server.requests();
    assert_eq!(seen.len(), 2, "{}: {seen:#?}", B::NAME);
    for r in &seen {
        assert_eq!(r.conn, 0, "{}", B::NAME);
        assert_eq!(r.header_all("proxy-authorization"), [USER_BASIC], "{}", B::NAME);
    }
    let key = format!("http://* via https://{}", proxy_server.addr());
    let events = rec.take();
    assert_eq!(keys(&events), [key.clone(), key], "{}", B::NAME);
    assert_eq!(handshakes(&events).0, ["127.0.0.1"], "{}", B::NAME);
    drop(client);
    settle(&[&proxy_server]);
}

}
