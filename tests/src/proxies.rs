//! The proxy suite of issue #14, written once over a [`Backend`] and
//! stamped into `proxies_{blocking,mio,tokio,smol}.rs` by
//! [`proxy_suite!`](crate::proxy_suite).
//!
//! - [`real`]: squid (forwarding `http://`, `CONNECT` tunnels to a TLS
//!   origin, Basic authentication, `NO_PROXY`, connection reuse) and
//!   microsocks (SOCKS5 with the client's or the proxy's name resolution,
//!   with and without credentials), started by the tests on loopback; they
//!   skip loudly when the binary is missing (and fail under
//!   `ROUNDTRIP_REQUIRE_SERVERS=1`).
//! - [`scripted`]: a [`ScriptServer`](crate::server::ScriptServer) or a
//!   [`RelayProxy`](crate::proxy_peers::RelayProxy) playing the proxy, for
//!   what a real proxy does not do on demand: refusals, a `407` to every
//!   attempt, closes and garbage at each point, silence; and for the exact
//!   bytes a client sends (the absolute-form request line, the `CONNECT`
//!   line, `Proxy-Authorization`), redirects that change the route, and
//!   proxies read from a fake environment ([`Proxies::from_vars`]).
//! - [`tls`]: through an `https://` proxy (TLS to the proxy, then the
//!   `CONNECT` and the origin's TLS session inside it, or a forwarded
//!   request), a TLS relay in front of a TLS origin: reuse, credentials,
//!   `407`, an untrusted proxy or origin certificate.
//! - [`regressions`]: cases that once found library bugs, stamped as plain
//!   tests by [`proxy_regressions!`](crate::proxy_regressions).
//!
//! Each case asserts what the client returned (the typed error, naming the
//! proxy), what the proxy and the origin saw (request lines, headers,
//! connections counted), and the route the client took (the pool key in
//! its `GetConn` trace and the addresses it dialed).

use std::net::SocketAddr;
use std::time::Duration;

use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::proxy::{Proxies, Proxy};
use roundtrip_io::tls::Certificate;
use roundtrip_io::{Config, Error};

use crate::backend::{Backend, Req, Resp, test_config};
use crate::traces::Recorder;

pub mod real;
pub mod regressions;
pub mod scripted;
pub mod tls;

crate::cases! {
    /// Stamps every case of the proxy suite into `#[test]` functions for a
    /// backend.
    stamp proxy_suite, list cases, groups;
    real => __proxies_real,
    scripted => __proxies_scripted,
    tls => __proxies_tls,
}

/// How long a case waits for a server's scripts or a proxy's log.
const SETTLE: Duration = Duration::from_secs(5);

/// The credentials the cases give proxies.
const USER: (&str, &str) = ("user", "pw");

/// `Basic` + base64 of `user:pw`, as `Proxy-Authorization` carries it.
const USER_BASIC: &str = "Basic dXNlcjpwdw==";

/// [`test_config`] that trusts the test CA (and nothing else) and records
/// the trace into `recorder`, with `proxies`.
fn config(proxies: Proxies, recorder: &Recorder) -> Config {
    let mut config = recorder.install(test_config());
    config.tls.built_in_roots = false;
    config.tls.extra_roots =
        vec![Certificate::from_pem(crate::certs::pki().ca.as_bytes()).expect("the test CA parses")];
    config.proxies = proxies;
    config
}

/// `url` parsed as a proxy; panics if it does not parse.
fn proxy(url: &str) -> Proxy {
    Proxy::parse(url).unwrap_or_else(|e| panic!("proxy url {url}: {e}"))
}

/// Sends `req` and panics, naming the backend and the request, if it fails.
fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e:?}", B::NAME))
}

/// Sends `req` and returns its error; panics if it succeeds.
fn send_err<B: Backend>(client: &B::Client, req: Req) -> Error {
    let what = format!("{} {}", req.method, req.url);
    match B::send(client, req) {
        Ok(resp) => panic!(
            "{}: {what}: expected an error, got {} with {} body bytes",
            B::NAME,
            resp.status,
            resp.body.len()
        ),
        Err(e) => e,
    }
}

/// The route of each request in `events`: the pool key of every `GetConn`
/// (`http://* via http://127.0.0.1:3128`, `https://localhost:443 via ...`,
/// `http://127.0.0.1:80` when direct).
fn keys(events: &[TraceEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::GetConn { key } => Some(key.to_string()),
            _ => None,
        })
        .collect()
}

/// Every address the client dialed, in order.
fn dialed(events: &[TraceEvent]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::ConnectStart { addr } => Some(*addr),
            _ => None,
        })
        .collect()
}

/// Panics unless `err` is [`Error::ProxyStatus`] from `proxy` with
/// `status`; returns the answer's head fields as `(name, value)` text.
fn assert_proxy_status<B: Backend>(err: &Error, proxy: &str, status: u16) -> Vec<(String, String)> {
    match err {
        Error::ProxyStatus {
            proxy: p,
            status: s,
            head,
        } if p == proxy && s.as_u16() == status => head
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        other => panic!(
            "{}: want ProxyStatus {{ proxy: {proxy}, status: {status} }}, got {other:?}",
            B::NAME
        ),
    }
}

/// The body of `resp` as text.
fn text(resp: &Resp) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}
