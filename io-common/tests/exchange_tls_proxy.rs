//! Through an `https://` proxy on a virtual clock: the simulator's
//! scripted TLS proxy ([`Server::behind_tls_proxy`]) reads the `CONNECT`
//! inside its own TLS session and relays to a scripted TLS origin, so the
//! origin's session runs inside the proxy's. Certificates made here with
//! rcgen: the proxy and the origin hold leaves of the trusted test CA, or
//! of a CA the client does not trust.
#![cfg(feature = "tls")]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use roundtrip_io::exchange::sim::{Reply, Server, Sim};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::trace::{TlsInfo, TraceEvent};
use roundtrip_io::proxy::{Proxies, Proxy, ProxyError};
use roundtrip_io::tls::{Certificate, TlsError};
use roundtrip_io::{Body, Config, Error, Phase, TimeoutKind, Tracer};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

/// The proxy's answer that opens the tunnel.
const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// The proxy as the client is configured with it.
const PROXY: &str = "https://user:pw@127.0.0.1:8443";

/// The proxy as errors name it (no credentials).
const PROXY_NAME: &str = "https://127.0.0.1:8443";

/// Server configurations: leaves of the trusted CA (TLS 1.3 and 1.2) and
/// one of a CA nobody trusts, each for `localhost` and `127.0.0.1`.
struct Pki {
    ca: CertificateDer<'static>,
    tls13: Arc<ServerConfig>,
    tls12: Arc<ServerConfig>,
    untrusted: Arc<ServerConfig>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let (trusted, other) = (ca("proxy test CA"), ca("untrusted CA"));
        let server = |issuer: &CertifiedIssuer<'static, KeyPair>,
                      version: &'static rustls::SupportedProtocolVersion| {
            let key = KeyPair::generate().unwrap();
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let leaf = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, issuer)
                .unwrap();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone()], key)
                .unwrap();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        };
        Pki {
            ca: trusted.der().clone(),
            tls13: server(&trusted, &rustls::version::TLS13),
            tls12: server(&trusted, &rustls::version::TLS12),
            untrusted: server(&other, &rustls::version::TLS13),
        }
    })
}

type Events = Arc<Mutex<Vec<TraceEvent>>>;

/// A client trusting only the test CA, every request through [`PROXY`],
/// its trace recorded.
fn config() -> (Config, Events) {
    let mut config = Config::default();
    config.gzip = false;
    config.write_timeout = Some(Duration::from_secs(5));
    config.tls.built_in_roots = false;
    config.tls.extra_roots = vec![Certificate::from_der(&pki().ca)];
    config.proxies = Proxies::all(Proxy::parse(PROXY).unwrap());
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    config.trace = Some(Tracer::new(move |e| seen.lock().unwrap().push(e.clone())));
    (config, events)
}

fn sim() -> (Sim, Events) {
    let (config, events) = config();
    (Sim::new(config), events)
}

/// An origin speaking TLS 1.3 with `replies`, behind a TLS 1.3 proxy that
/// answers the `CONNECT` with `answer`.
fn tunneled(replies: impl IntoIterator<Item = Reply>, answer: &[u8]) -> Server {
    Server::new(replies)
        .tls(pki().tls13.clone())
        .behind_tls_proxy(pki().tls13.clone(), answer)
}

/// The handshakes traced: each one's server name, and how it ended.
fn handshakes(events: &Events) -> (Vec<String>, Vec<Result<TlsInfo, String>>) {
    let events = events.lock().unwrap();
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
            TraceEvent::TlsHandshakeDone { result } => Some(result.clone()),
            _ => None,
        })
        .collect();
    (started, done)
}

/// The pool keys of the `GetConn` events.
fn keys(events: &Events) -> Vec<String> {
    let events = events.lock().unwrap();
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::GetConn { key } => Some(key.to_string()),
            _ => None,
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_get_goes_through_the_proxy_session_and_the_origin_session_inside_it() {
    let (mut sim, events) = sim();
    sim.serve(tunneled(
        [Reply::Send(OK.to_vec()), Reply::Send(OK.to_vec())],
        ESTABLISHED,
    ));
    let r = sim.get("https://localhost/a").unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hi"[..]));
    // What the proxy read inside its session, then what the origin read
    // inside its own: the credentials went to the proxy only.
    let wire = text(&sim.wire[0]);
    let connect = "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n";
    assert!(wire.starts_with(connect), "{wire}");
    let (head, request) = wire.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpwdw=="),
        "{head}"
    );
    assert!(
        request.starts_with("GET /a HTTP/1.1\r\nHost: localhost\r\n"),
        "{request}"
    );
    assert!(
        !request.to_ascii_lowercase().contains("proxy-authorization"),
        "{request}"
    );
    // The proxy's handshake (its Finished, then the CONNECT: as on a
    // direct connection, where the Finished and the request are two
    // writes), the proxy's answer, the origin's handshake, the request.
    assert_eq!(
        sim.actions,
        [
            "checkout",
            "connect",
            "await-connect",
            "write",
            "read",
            "write",
            "write",
            "read",
            "write",
            "read",
            "write",
            "write",
            "read",
            "head",
            "data",
            "release",
            "end"
        ]
    );
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1", "localhost"]);
    assert!(matches!(&done[..], [Ok(_), Ok(_)]), "{done:?}");

    // The tunnel is kept: the next request is one write and one read,
    // with no handshake and no CONNECT.
    let r = sim.get("https://localhost/b").unwrap();
    assert_eq!(r.body, "hi");
    assert_eq!(
        sim.actions,
        [
            "checkout", "write", "read", "head", "data", "release", "end"
        ]
    );
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.reuses, stats.idle), (1, 1, 1));
    assert_eq!(handshakes(&events).0.len(), 2);
    let key = "https://localhost:443 via https://127.0.0.1:8443";
    assert_eq!(keys(&events), [key, key]);
    let wire = text(&sim.wire[0]);
    assert_eq!(wire.matches("CONNECT ").count(), 1, "{wire}");
    assert!(wire.contains("GET /b HTTP/1.1\r\n"), "{wire}");

    // Idle, both sessions gave back their buffers.
    let mut links: Vec<_> = sim.links_mut().collect();
    let [link] = &mut links[..] else {
        panic!("one idle connection");
    };
    assert!(link.is_tls() && !link.has_output());
    assert!(link.out.head.capacity() <= roundtrip_io::buf::WRITE_BUF_IDLE);
}

/// TLS 1.2 on either side, and a body written one byte at a time: the
/// socket's progress maps back through both sessions, and the request
/// arrives whole.
#[test]
fn a_post_through_the_tunnel_arrives_whole_through_a_one_byte_window() {
    for (proxy, origin) in [
        (pki().tls12.clone(), pki().tls13.clone()),
        (pki().tls13.clone(), pki().tls12.clone()),
    ] {
        let (mut sim, events) = sim();
        let server = Server::reply(OK)
            .tls(origin)
            .behind_tls_proxy(proxy, ESTABLISHED)
            .window(1);
        sim.serve(server);
        let body = vec![b'p'; 20_000];
        let request = http::Request::post("https://localhost/up")
            .body(Body::from(body.clone()))
            .unwrap();
        let r = sim.send(request).unwrap();
        assert_eq!(r.body, "hi");
        let wire = &sim.wire[0];
        let at = wire.windows(4).rposition(|w| w == b"\r\n\r\n").unwrap();
        assert!(wire[at + 4..] == body[..], "the body arrived whole");
        let writes = sim.actions.iter().filter(|a| *a == "write").count();
        assert!(writes > 20_000, "one byte per write: {writes}");
        assert!(matches!(&handshakes(&events).1[..], [Ok(_), Ok(_)]));
        assert_eq!(sim.stats().idle, 1);
    }
}

/// The socket takes nothing of the request's records: no plaintext is
/// reported written through two layers, so the request did not reach the
/// server. Part of the outer record taken: still writing (a record cut by
/// the socket is never reported whole, in either layer), and nothing
/// reached the origin.
#[test]
fn a_request_whose_records_never_left_did_not_reach_the_origin() {
    let (mut config, _) = config();
    config.write_timeout = Some(Duration::from_secs(2));
    for taken in [0, 40] {
        let mut sim = Sim::new(config.clone());
        let server = tunneled([Reply::Send(OK.to_vec())], ESTABLISHED)
            .window(1)
            .stop_reading_after(taken);
        sim.serve(server);
        let err = sim.get("https://localhost/").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    kind: TimeoutKind::Write,
                    phase: Phase::Write,
                    reached_server,
                } if reached_server == (taken > 0)
            ),
            "{taken} bytes taken: {err:?}"
        );
        assert_eq!(sim.now().since_origin(), Duration::from_secs(2));
        let wire = text(&sim.wire[0]);
        assert!(
            wire.ends_with("\r\n\r\n") && wire.starts_with("CONNECT "),
            "{wire}"
        );
        assert_eq!(
            wire.matches("\r\n\r\n").count(),
            1,
            "only the CONNECT: {wire}"
        );
    }
}

#[test]
fn a_407_from_the_tls_proxy_is_proxy_status_and_not_retried() {
    let (mut sim, events) = sim();
    let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"sim\"\r\nContent-Length: 0\r\n\r\n";
    sim.serve(tunneled([Reply::Send(OK.to_vec())], answer));
    sim.serve(tunneled([Reply::Send(OK.to_vec())], answer));
    let err = sim.get("https://localhost/").unwrap_err();
    match &err {
        Error::ProxyStatus {
            proxy,
            status,
            head,
        } => {
            assert_eq!((proxy.as_str(), status.as_u16()), (PROXY_NAME, 407));
            assert_eq!(head.headers["proxy-authenticate"], "Basic realm=\"sim\"");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("pw"), "{err}");
    assert_eq!(sim.stats().dials, 1, "a 407 is never retried");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);
    assert_eq!(sim.stats().idle, 0);
    // Only the proxy's session was made.
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1"]);
    assert!(matches!(&done[..], [Ok(_)]), "{done:?}");
}

#[test]
fn an_untrusted_proxy_certificate_fails_naming_the_proxy() {
    let (mut sim, events) = sim();
    let server = Server::reply(OK)
        .tls(pki().tls13.clone())
        .behind_tls_proxy(pki().untrusted.clone(), ESTABLISHED);
    sim.serve(server);
    let err = sim.get("https://localhost/").unwrap_err();
    match &err {
        Error::Proxy {
            proxy,
            source: ProxyError::Tls(TlsError::NotTrusted { host }),
        } => assert_eq!((proxy.as_str(), host.as_str()), (PROXY_NAME, "127.0.0.1")),
        other => panic!("{other:?}"),
    }
    assert!(!err.reached_server());
    let shown = err.to_string();
    assert!(
        shown.contains(PROXY_NAME) && shown.contains("not trusted"),
        "{shown}"
    );
    assert!(sim.wire[0].is_empty(), "no CONNECT was sent");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);
    // The client told the proxy why (its alert) before closing.
    assert_eq!(
        sim.actions[sim.actions.len() - 3..],
        ["write", "discard", "fail"]
    );
    assert_eq!(sim.now().since_origin(), Duration::ZERO);
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1"]);
    assert!(matches!(&done[..], [Err(_)]), "{done:?}");

    // Forwarding (an http:// URL) through the same proxy fails the same.
    let (mut sim, _) = self::sim();
    sim.serve(Server::reply(OK).tls(pki().untrusted.clone()));
    let err = sim.get("http://origin.test/").unwrap_err();
    assert!(
        matches!(&err, Error::Proxy { proxy, source: ProxyError::Tls(TlsError::NotTrusted { .. }) } if proxy == PROXY_NAME),
        "{err:?}"
    );
}

#[test]
fn an_untrusted_origin_certificate_fails_naming_the_origin() {
    let (mut sim, events) = sim();
    let server = Server::reply(OK)
        .tls(pki().untrusted.clone())
        .behind_tls_proxy(pki().tls13.clone(), ESTABLISHED);
    sim.serve(server);
    let err = sim.get("https://localhost/").unwrap_err();
    match &err {
        Error::Tls {
            phase: Phase::Handshake,
            source: TlsError::NotTrusted { host },
            reached_server: false,
        } => assert_eq!(host, "localhost"),
        other => panic!("{other:?}"),
    }
    let wire = text(&sim.wire[0]);
    assert_eq!(
        wire.matches("\r\n\r\n").count(),
        1,
        "only the CONNECT: {wire}"
    );
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);
    // The origin's alert went out, sealed in the proxy's session: a write
    // the socket took at once (one with nothing to write would have waited
    // for the write timeout).
    assert_eq!(
        sim.actions[sim.actions.len() - 3..],
        ["write", "discard", "fail"]
    );
    assert_eq!(sim.now().since_origin(), Duration::ZERO);
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1", "localhost"]);
    assert!(matches!(&done[..], [Ok(_), Err(_)]), "{done:?}");
}

#[test]
fn the_handshake_timeout_with_the_proxy_fires_at_its_deadline() {
    let (mut config, events) = config();
    config.tls.handshake_timeout = Some(Duration::from_secs(3));
    let mut sim = Sim::new(config);
    // The proxy never answers the ClientHello.
    sim.serve(tunneled([Reply::Stall], ESTABLISHED));
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::TlsHandshake,
                phase: Phase::Handshake,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.now().since_origin(), Duration::from_secs(3));
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Timeout)]);
    assert!(sim.wire[0].is_empty());
    let (names, done) = handshakes(&events);
    assert_eq!(names, ["127.0.0.1"]);
    assert!(matches!(&done[..], [Err(_)]), "{done:?}");
}

/// The origin's fatal alert mid-body, inside the proxy's session: an
/// `Error::Tls` of the body phase (the origin answered).
#[test]
fn an_origin_alert_inside_the_tunnel_ends_the_body() {
    let (mut sim, _) = sim();
    sim.serve(tunneled(
        [
            Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
            Reply::Alert,
        ],
        ESTABLISHED,
    ));
    let err = sim.get("https://localhost/").unwrap_err();
    match err {
        Error::Tls {
            phase: Phase::Body,
            source: TlsError::Alert { alert },
            reached_server: true,
        } => assert_eq!(alert, "BadRecordMac"),
        err => panic!("{err:?}"),
    }
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);
    assert_eq!(sim.stats().idle, 0);
}

/// A body that runs until the close is complete only with the origin's
/// `close_notify`, which comes inside the proxy's session.
#[test]
fn a_body_until_close_through_the_tunnel_needs_the_origin_close_notify() {
    let head = b"HTTP/1.1 200 OK\r\n\r\npartial".to_vec();
    let (mut sim, _) = sim();
    sim.serve(tunneled(
        [Reply::Send(head.clone()), Reply::CloseNotify],
        ESTABLISHED,
    ));
    let r = sim.get("https://localhost/").unwrap();
    assert_eq!(r.body, "partial");

    let (mut sim, _) = self::sim();
    sim.serve(tunneled([Reply::Send(head), Reply::Close], ESTABLISHED));
    let err = sim.get("https://localhost/").unwrap_err();
    assert_truncated(&err);
}

/// The error of a body until close that ended without the origin's
/// `close_notify` (RFC 8446 section 6.1).
fn assert_truncated(err: &Error) {
    assert!(
        matches!(
            err,
            Error::Tls {
                phase: Phase::Body,
                source: TlsError::Truncated,
                reached_server: true
            }
        ),
        "{err:?}"
    );
}

/// The proxy's `close_notify` in the same read as the origin's head: the
/// origin's session ended without its own, so a body that runs until the
/// close is cut (RFC 8446 section 6.1) wherever the reads split; a sized
/// body that came whole is whole.
#[test]
fn the_proxys_close_notify_with_the_head_still_truncates_a_body_until_close() {
    let (mut sim, _) = sim();
    let head = b"HTTP/1.1 200 OK\r\n\r\npartial".to_vec();
    sim.serve(tunneled([Reply::SendThenProxyCloses(head)], ESTABLISHED));
    let err = sim.get("https://localhost/").unwrap_err();
    assert_truncated(&err);
    let (mut sim, _) = self::sim();
    let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\npartial".to_vec();
    sim.serve(tunneled([Reply::SendThenProxyCloses(sized)], ESTABLISHED));
    assert_eq!(sim.get("https://localhost/").unwrap().body, "partial");
}

/// Closing a connection through the tunnel says `close_notify` to both:
/// the origin's inside the proxy's session, then the proxy's own.
#[test]
fn a_closed_tunnel_says_close_notify_to_the_origin_and_the_proxy() {
    let (mut sim, _) = sim();
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    sim.serve(tunneled(
        [Reply::Send(close.to_vec()), Reply::Stall],
        ESTABLISHED,
    ));
    let r = sim.get("https://localhost/a").unwrap();
    assert_eq!(r.body, "hi");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::ServerClose)]);
    assert_eq!(sim.goodbyes, [(sim.closed[0].0, true, true)]);
}

/// A proxy that never answers the `CONNECT`: the response-head timeout
/// bounds the wait (it runs from the `CONNECT`'s last byte, as for any
/// request), with no read or total timeout to end it otherwise.
#[test]
fn a_connect_never_answered_meets_the_head_timeout() {
    let (mut config, _) = config();
    config.response_head_timeout = Some(Duration::from_secs(2));
    config.read_timeout = None;
    config.timeout = None;
    let mut sim = Sim::new(config);
    sim.serve(tunneled([Reply::Send(OK.to_vec())], b""));
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::ResponseHead,
                phase: Phase::Connect,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.now().since_origin(), Duration::from_secs(2));
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Timeout)]);
}
