//! The exchange machine's TLS rules on a virtual clock: scripted servers
//! that run a rustls session in memory (certificates made here with
//! rcgen), every handshake, record and close rule checked without a
//! socket or a real clock.
#![cfg(feature = "tls")]

use std::io::Cursor;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use roundtrip_io::exchange::sim::{Reply, Server, Sim};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::trace::{TlsInfo, TraceEvent};
use roundtrip_io::tls::{Certificate, TlsError};
use roundtrip_io::{Body, Config, Error, Phase, TimeoutKind, Tracer};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

/// A test CA and the server configurations its leaf serves, made once.
struct Pki {
    ca: CertificateDer<'static>,
    tls13: Arc<ServerConfig>,
    tls12: Arc<ServerConfig>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let chain = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = |version: &'static rustls::SupportedProtocolVersion| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain.clone(), key.clone_key())
                .unwrap();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        };
        Pki {
            ca: ca.der().clone(),
            tls13: server(&rustls::version::TLS13),
            tls12: server(&rustls::version::TLS12),
        }
    })
}

/// A TLS 1.3 server playing `replies`.
fn tls(replies: impl IntoIterator<Item = Reply>) -> Server {
    Server::new(replies).tls(pki().tls13.clone())
}

/// A client trusting only the test CA, with its trace recorded.
fn config() -> (Config, Arc<Mutex<Vec<TraceEvent>>>) {
    let mut config = Config::default();
    config.gzip = false;
    config.tls.built_in_roots = false;
    config.tls.extra_roots = vec![Certificate::from_der(&pki().ca)];
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    config.trace = Some(Tracer::new(move |e| seen.lock().unwrap().push(e.clone())));
    (config, events)
}

fn sim() -> (Sim, Arc<Mutex<Vec<TraceEvent>>>) {
    let (config, events) = config();
    (Sim::new(config), events)
}

/// The handshakes traced: started, and how each ended.
fn handshakes(events: &Mutex<Vec<TraceEvent>>) -> (usize, Vec<Result<TlsInfo, String>>) {
    let events = events.lock().unwrap();
    let started = events
        .iter()
        .filter(|e| matches!(e, TraceEvent::TlsHandshakeStart { .. }))
        .count();
    let done = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeDone { result } => Some(result.clone()),
            _ => None,
        })
        .collect();
    (started, done)
}

fn info(version: &'static str, cipher: &'static str, resumed: bool) -> TlsInfo {
    TlsInfo {
        version,
        cipher,
        alpn: Some("http/1.1"),
        resumed,
    }
}

fn get(uri: &str) -> http::Request<roundtrip_io::exchange::sim::SimBody> {
    http::Request::get(uri).body(Body::empty()).unwrap()
}

#[test]
fn a_get_over_tls13_is_answered_and_traced() {
    let (mut sim, events) = sim();
    sim.serve(Server::reply(OK).tls(pki().tls13.clone()));
    let r = sim.get("https://localhost/a").unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hi"[..]));
    assert!(
        sim.wire[0].starts_with(b"GET /a HTTP/1.1\r\nHost: localhost\r\n"),
        "the server decrypted: {:?}",
        String::from_utf8_lossy(&sim.wire[0])
    );
    // ClientHello, the server's flight, Finished, then the request.
    assert_eq!(
        sim.actions,
        [
            "checkout",
            "resolve",
            "connect",
            "await-connect",
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
    let names: Vec<&str> = events.lock().unwrap().iter().map(|e| e.name()).collect();
    assert_eq!(
        names[..8],
        [
            "GetConn",
            "DnsStart",
            "DnsDone",
            "ConnectStart",
            "ConnectDone",
            "TlsHandshakeStart",
            "TlsHandshakeDone",
            "GotConn"
        ]
    );
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&TraceEvent::TlsHandshakeStart {
                server_name: "localhost".into()
            })
    );
    let want = info("TLSv1_3", "TLS13_AES_256_GCM_SHA384", false);
    assert_eq!(handshakes(&events), (1, vec![Ok(want)]));
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.idle, stats.in_use), (1, 1, 0));
    assert_eq!(sim.now().since_origin(), Duration::ZERO);
}

#[test]
fn a_get_over_tls12_to_an_ip_address_is_answered() {
    let (mut sim, events) = sim();
    sim.serve(Server::reply(OK).tls(pki().tls12.clone()));
    let r = sim.get("https://127.0.0.1:8443/b").unwrap();
    assert_eq!(r.body, "hi");
    assert!(sim.wire[0].starts_with(b"GET /b HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"));
    let want = info("TLSv1_2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", false);
    assert_eq!(handshakes(&events), (1, vec![Ok(want)]));
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&TraceEvent::TlsHandshakeStart {
                server_name: "127.0.0.1".into()
            })
    );
    // TLS 1.2 takes one more round trip: the server's Finished comes after
    // the client's.
    assert_eq!(
        sim.actions,
        [
            "checkout",
            "connect",
            "await-connect",
            "write",
            "read",
            "write",
            "read",
            "write",
            "read",
            "head",
            "data",
            "release",
            "end"
        ]
    );
    assert_eq!(sim.stats().idle, 1);
}

#[test]
fn a_kept_tls_connection_carries_the_next_request_without_a_handshake() {
    for server in [pki().tls13.clone(), pki().tls12.clone()] {
        let (mut sim, events) = sim();
        sim.serve(Server::new([Reply::Send(OK.to_vec()), Reply::Send(OK.to_vec())]).tls(server));
        sim.get("https://localhost/one").unwrap();
        let r = sim.get("https://localhost/two").unwrap();
        assert_eq!(r.body, "hi");
        assert_eq!(
            sim.actions,
            [
                "checkout", "write", "read", "head", "data", "release", "end"
            ]
        );
        assert_eq!(handshakes(&events).0, 1, "one handshake for two requests");
        let stats = sim.stats();
        assert_eq!((stats.dials, stats.reuses, stats.idle), (1, 1, 1));
        let wire = String::from_utf8_lossy(&sim.wire[0]).into_owned();
        assert!(wire.contains("GET /two HTTP/1.1\r\n"), "{wire}");
    }
}

#[test]
fn a_second_connection_resumes_the_session() {
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    for (server, version) in [
        (pki().tls13.clone(), "TLSv1_3"),
        (pki().tls12.clone(), "TLSv1_2"),
    ] {
        let (mut sim, events) = sim();
        sim.serve(Server::reply(close).tls(server.clone()));
        sim.serve(Server::reply(OK).tls(server));
        sim.get("https://localhost/").unwrap();
        sim.get("https://localhost/").unwrap();
        let (started, done) = handshakes(&events);
        assert_eq!(started, 2, "{version}");
        let resumed: Vec<(&str, bool)> = done
            .iter()
            .map(|d| d.as_ref().map(|i| (i.version, i.resumed)).unwrap())
            .collect();
        assert_eq!(resumed, [(version, false), (version, true)]);
        assert_eq!(sim.stats().dials, 2);
        assert_eq!(sim.stats().closed.get(CloseReason::ServerClose), 1);
    }
}

#[test]
fn the_handshake_timeout_fires_at_its_deadline_and_closes_the_connection() {
    let (mut config, events) = config();
    config.tls.handshake_timeout = Some(Duration::from_secs(3));
    config.read_timeout = Some(Duration::from_secs(5));
    let mut sim = Sim::new(config.clone());
    // The server never answers the ClientHello.
    sim.serve(tls([Reply::Stall]));
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
    let stats = sim.stats();
    assert_eq!((stats.in_use, stats.idle), (0, 0));
    assert_eq!(stats.closed.get(CloseReason::Timeout), 1);
    assert!(sim.wire[0].is_empty(), "no request was sent");
    let (started, done) = handshakes(&events);
    assert_eq!(started, 1);
    assert!(
        matches!(&done[..], [Err(_)]),
        "the handshake's end is traced: {done:?}"
    );

    // A slow handshake within the timeout is no failure, and its timer
    // ends with it: the wait for the answer is the read timeout's.
    let mut sim = Sim::new(config);
    sim.serve(tls([
        Reply::Delay(Duration::from_secs(2)),
        Reply::Send(Vec::new()),
        Reply::Delay(Duration::from_secs(4)),
        Reply::Early(OK.to_vec()),
    ]));
    let r = sim.get("https://localhost/").unwrap();
    assert_eq!(r.body, "hi");
    assert_eq!(sim.now().since_origin(), Duration::from_secs(6));
}

#[test]
fn the_total_timeout_ends_a_handshake() {
    let (mut config, events) = config();
    config.timeout = Some(Duration::from_millis(1500));
    let mut sim = Sim::new(config);
    sim.serve(tls([Reply::Stall]));
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Total,
                phase: Phase::Handshake,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.now().since_origin(), Duration::from_millis(1500));
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Timeout)]);
    assert_eq!(sim.stats().in_use, 0);
    assert!(matches!(&handshakes(&events).1[..], [Err(_)]));
}

#[test]
fn a_one_byte_window_carries_the_handshake_and_the_request() {
    for server in [pki().tls13.clone(), pki().tls12.clone()] {
        let (mut sim, events) = sim();
        sim.serve(Server::reply(OK).tls(server).window(1));
        let request = http::Request::post("https://localhost/up")
            .body(Body::from("payload"))
            .unwrap();
        let r = sim.send(request).unwrap();
        assert_eq!(r.body, "hi");
        let wire = String::from_utf8_lossy(&sim.wire[0]).into_owned();
        assert!(wire.starts_with("POST /up HTTP/1.1\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\npayload"), "{wire}");
        let writes = sim.actions.iter().filter(|a| *a == "write").count();
        assert!(writes > 200, "one byte per write: {writes}");
        assert!(matches!(&handshakes(&events).1[..], [Ok(_)]));
        assert_eq!(sim.stats().idle, 1);
    }
}

/// `reached_server` follows what the socket took of the request's records,
/// not what was sealed: nothing taken after the handshake is nothing sent.
#[test]
fn a_request_whose_records_the_server_never_took_did_not_reach_it() {
    let (mut config, _) = config();
    config.write_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    let mut sim = Sim::new(config.clone());
    sim.serve(
        tls([Reply::Send(OK.to_vec())])
            .window(1)
            .stop_reading_after(0),
    );
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Write,
                phase: Phase::Write,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.now().since_origin(), Duration::from_secs(2));
    assert!(sim.wire[0].is_empty());
    assert_eq!(sim.stats().in_use, 0);

    // Part of the request's record taken: still writing (a record cut by
    // the socket does not count as written whole).
    for taken in [3, 40] {
        let mut sim = Sim::new(config.clone());
        sim.serve(
            tls([Reply::Send(OK.to_vec())])
                .window(1)
                .stop_reading_after(taken),
        );
        let err = sim.get("https://localhost/").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Timeout {
                    kind: TimeoutKind::Write,
                    phase: Phase::Write,
                    ..
                }
            ),
            "{taken} bytes taken: {err:?}"
        );
        assert_eq!(sim.now().since_origin(), Duration::from_secs(2));
        assert!(sim.wire[0].is_empty(), "no record was whole");
    }

    // Taken whole but never answered: it may have been acted on.
    let mut sim = Sim::new(config);
    sim.serve(tls([Reply::Send(Vec::new()), Reply::Stall]).window(1));
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::ReadIdle,
                phase: Phase::ResponseHead,
                reached_server: true
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.now().since_origin(), Duration::from_secs(5));
}

#[test]
fn a_body_until_close_is_complete_only_with_close_notify() {
    let head = b"HTTP/1.1 200 OK\r\n\r\npartial".to_vec();
    let (mut sim, _) = sim();
    sim.serve(tls([Reply::Send(head.clone()), Reply::Close]));
    let err = sim.get("https://localhost/").unwrap_err();
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
    assert_eq!(sim.actions.last().unwrap(), "fail", "never an end");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);

    let (mut sim, _) = self::sim();
    sim.serve(tls([Reply::Send(head), Reply::CloseNotify]));
    let r = sim.get("https://localhost/").unwrap();
    assert_eq!(r.body, "partial");
    assert_eq!(
        sim.stats().idle,
        0,
        "a body until close ends its connection"
    );
    assert_eq!(sim.stats().closed.get(CloseReason::ReadToClose), 1);
}

/// A body of known length ends at its length: a close without
/// `close_notify` after it cuts nothing (many servers never send one), but
/// the connection is not used again.
#[test]
fn a_sized_body_then_a_close_without_close_notify_is_complete() {
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let (mut sim, _) = sim();
    sim.serve(tls([Reply::Send(close.to_vec()), Reply::Close]));
    let r = sim.get("https://localhost/").unwrap();
    assert_eq!(r.body, "hi");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::ServerClose)]);
    assert_eq!(sim.stats().idle, 0);

    // Kept alive, then closed while idle: the probe finds it closed, and
    // the next request gets a new connection and a new handshake.
    let (mut config, events) = config();
    config.stale_check_after = Duration::from_millis(1);
    let mut sim = Sim::new(config);
    sim.serve(tls([Reply::Send(OK.to_vec()), Reply::Close]));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    assert_eq!(sim.get("https://localhost/").unwrap().body, "hi");
    assert_eq!(sim.stats().idle, 1);
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.get("https://localhost/").unwrap().body, "hi");
    assert_eq!(sim.actions[..3], ["checkout", "probe", "discard"]);
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Stale)]);
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.reuses, stats.idle), (2, 0, 1));
    assert_eq!(handshakes(&events).0, 2);
}

#[test]
fn a_plaintext_http_answer_on_the_tls_port_is_named() {
    let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec();
    // A plain HTTP server on the port, or a TLS server's socket written
    // past its TLS layer.
    for server in [
        Server::new([Reply::Early(answer.clone())]),
        tls([Reply::Raw(answer.clone())]),
    ] {
        let (mut sim, events) = sim();
        sim.serve(server);
        let err = sim.get("https://localhost/").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls {
                    phase: Phase::Handshake,
                    source: TlsError::PlaintextHttp,
                    reached_server: false
                }
            ),
            "{err:?}"
        );
        assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::Error)]);
        assert_eq!(sim.stats().in_use, 0);
        assert!(matches!(&handshakes(&events).1[..], [Err(_)]));
    }
}

#[test]
fn a_fatal_alert_ends_the_exchange_where_it_comes() {
    // Mid-body: the part received is no response.
    let (mut sim, _) = sim();
    sim.serve(tls([
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
        Reply::Alert,
    ]));
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

    // During the handshake: the request was not sent.
    for (server, alert) in [
        (pki().tls13.clone(), "BadRecordMac"),
        (pki().tls12.clone(), "UnexpectedMessage"),
    ] {
        let (mut sim, events) = self::sim();
        sim.serve(Server::new([Reply::Alert]).tls(server));
        let err = sim.get("https://localhost/").unwrap_err();
        match err {
            Error::Tls {
                phase: Phase::Handshake,
                source: TlsError::Alert { alert: got },
                reached_server: false,
            } => assert_eq!(got, alert),
            err => panic!("{err:?}"),
        }
        assert!(sim.wire[0].is_empty());
        assert!(matches!(&handshakes(&events).1[..], [Err(_)]));
    }
}

/// A server that answers early while a large in-memory body is still being
/// written is heard through the TLS layer (the rest is not sealed), and the
/// connection is closed.
#[test]
fn an_early_answer_during_an_in_memory_body_is_heard_over_tls() {
    let (mut sim, _) = sim();
    sim.serve(
        tls([
            Reply::Early(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n".to_vec()),
            Reply::Stall,
        ])
        .window(1000),
    );
    let request = http::Request::post("https://localhost/up")
        .body(Body::from(vec![b'x'; 1 << 20]))
        .unwrap();
    let r = sim.send(request).unwrap();
    assert_eq!(r.status, 413);
    assert!(
        sim.wire[0].len() < 4000,
        "the body went on: {}",
        sim.wire[0].len()
    );
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::BodyNotSent)]);
    assert_eq!(sim.stats().idle, 0);
    // Records wait unsent: no `close_notify` can follow them.
    assert!(sim.goodbyes.is_empty(), "{:?}", sim.goodbyes);
}

#[test]
fn a_cancel_during_the_handshake_closes_the_connection() {
    // Steps 4 to 6 (after the checkout, the lookup of `localhost`, the
    // connect and its wait): the ClientHello written, the server's flight
    // awaited, the client's Finished written.
    for after in 4..=6 {
        let (mut sim, events) = sim();
        sim.serve(tls([Reply::Send(OK.to_vec())]));
        let err = sim
            .send_cancelled(get("https://localhost/"), after)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Cancelled {
                    phase: Phase::Handshake,
                    reached_server: false
                }
            ),
            "after {after}: {err:?}"
        );
        let (started, done) = handshakes(&events);
        assert_eq!(started, 1);
        assert!(matches!(&done[..], [Err(_)]), "after {after}: {done:?}");
        assert_eq!(
            sim.closed,
            [(sim.closed[0].0, CloseReason::Error)],
            "after {after}"
        );
        let stats = sim.stats();
        assert_eq!(
            (stats.in_use, stats.idle, stats.dialing),
            (0, 0, 0),
            "after {after}"
        );
        assert!(sim.wire[0].is_empty(), "after {after}");
    }
}

#[test]
fn a_kept_tls_connection_closed_under_a_get_is_retried_with_a_new_handshake() {
    let (mut sim, events) = sim();
    sim.serve(tls([
        Reply::Send(OK.to_vec()),
        Reply::Send(Vec::new()),
        Reply::Close,
    ]));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    sim.get("https://localhost/").unwrap();
    let r = sim.get("https://localhost/again").unwrap();
    assert_eq!(r.body, "hi");
    assert!(sim.wire[1].starts_with(b"GET /again "));
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::PeerClosed)]);
    assert_eq!(sim.stats().dials, 2);
    let resumed: Vec<bool> = handshakes(&events)
        .1
        .iter()
        .map(|d| d.as_ref().unwrap().resumed)
        .collect();
    assert_eq!(resumed, [false, true], "a new handshake, resumed");

    // A POST is never sent twice.
    let (mut sim, _) = self::sim();
    sim.serve(tls([
        Reply::Send(OK.to_vec()),
        Reply::Send(Vec::new()),
        Reply::Close,
    ]));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    sim.get("https://localhost/").unwrap();
    let post = http::Request::post("https://localhost/")
        .body(Body::from_reader(Cursor::new(b"data".to_vec()), Some(4)))
        .unwrap();
    let err = sim.send(post).unwrap_err();
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
    assert_eq!(sim.stats().dials, 1);
}

#[test]
fn redirects_cross_between_http_and_https() {
    // https -> http: a second server, plain.
    let (mut sim, events) = sim();
    sim.serve(tls([Reply::Send(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/plain\r\nContent-Length: 0\r\n\r\n"
            .to_vec(),
    )]));
    sim.serve(Server::reply(OK));
    let r = sim.get("https://localhost/secure").unwrap();
    assert_eq!(r.body, "hi");
    assert!(sim.wire[1].starts_with(b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    assert_eq!(r.url, "http://127.0.0.1/plain");
    assert_eq!(handshakes(&events).0, 1);
    assert_eq!(sim.stats().dials, 2);

    // http -> https: the second hop dials and shakes hands.
    let (mut sim, events) = self::sim();
    sim.serve(Server::reply(
        b"HTTP/1.1 301 Moved\r\nLocation: https://localhost/secure\r\nContent-Length: 0\r\n\r\n",
    ));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    let r = sim.get("http://127.0.0.1/plain").unwrap();
    assert_eq!(r.body, "hi");
    assert!(sim.wire[1].starts_with(b"GET /secure HTTP/1.1\r\nHost: localhost\r\n"));
    assert_eq!(r.url, "https://localhost/secure");
    assert!(matches!(&handshakes(&events).1[..], [Ok(_)]));
    let stats = sim.stats();
    assert_eq!((stats.dials, stats.idle), (2, 2));
}

#[test]
fn an_idle_tls_connection_gives_back_its_buffers() {
    let body = vec![b'b'; 64 * 1024];
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(&body);
    let (mut sim, _) = sim();
    sim.serve(Server::reply(&response).tls(pki().tls13.clone()));
    let r = sim.get("https://localhost/64k").unwrap();
    assert!(r.body == body);
    let mut links: Vec<_> = sim.links_mut().collect();
    let [link] = &mut links[..] else {
        panic!("one idle connection");
    };
    assert!(link.is_tls());
    assert!(link.out.head.capacity() <= roundtrip_io::buf::WRITE_BUF_IDLE);
    // A buffer read from shows only the unused tail of its allocation as
    // `capacity()`; what an empty one can reclaim without allocating shows
    // the whole of it.
    assert!(link.read_buf.is_empty() && link.wire_in().is_empty());
    let plain_kept = link
        .read_buf
        .try_reclaim(roundtrip_io::buf::READ_BUF_IDLE + 1);
    assert!(
        !plain_kept,
        "the plaintext buffer keeps more than an idle link may"
    );
    let wire_kept = link.wire_in().try_reclaim(4 * 1024 + 1);
    assert!(
        !wire_kept,
        "the ciphertext buffer keeps more than an idle link may"
    );
}

#[test]
fn a_server_that_hangs_up_on_the_client_hello_ends_the_handshake() {
    let (mut sim, events) = sim();
    sim.serve(tls([Reply::Close]));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    let err = sim.get("https://localhost/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::Handshake,
                reached_server: false
            }
        ),
        "{err:?}"
    );
    assert_eq!(sim.stats().dials, 1, "a fresh connection is not retried");
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::PeerClosed)]);
    let (started, done) = handshakes(&events);
    assert_eq!(started, 1);
    assert!(matches!(&done[..], [Err(_)]), "{done:?}");
}

#[test]
fn a_plaintext_answer_in_small_pieces_is_still_named() {
    let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    for cut in 1..=5 {
        let (mut sim, _) = sim();
        let (a, b) = answer.split_at(cut);
        let pieces = a.iter().map(|&byte| Reply::Early(vec![byte]));
        sim.serve(Server::new(pieces.chain([Reply::Early(b.to_vec())])));
        let err = sim.get("https://localhost/").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls {
                    phase: Phase::Handshake,
                    source: TlsError::PlaintextHttp,
                    reached_server: false
                }
            ),
            "cut at {cut}: {err:?}"
        );
    }
}

/// A `101 Switching Protocols` over TLS ends the exchange as over `http`:
/// the head is delivered, the plaintext after it goes with the connection
/// (whose TLS session the driver hands over with it), and the connection
/// leaves the pool.
#[test]
fn a_protocol_switch_over_tls_is_handed_over() {
    let (mut sim, _events) = sim();
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nfirst frame";
    sim.serve(tls([Reply::Send(switch.to_vec()), Reply::Stall]));
    let request = http::Request::get("https://localhost/ws")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .body(Body::empty())
        .unwrap();
    let r = sim.send(request).unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.upgraded.as_deref(), Some(&b"first frame"[..]));
    let stats = sim.stats();
    assert_eq!((stats.idle, stats.in_use), (0, 0), "{stats:?}");
}

/// A TLS connection the client closes ends with its `close_notify` (RFC
/// 8446 section 6.1), whether the response asked for the close or the
/// pool let an idle connection go; not after a TLS error (an alert went
/// instead), nor during a handshake, nor after records the server never
/// took (the alert would follow a cut record).
#[test]
fn a_closed_tls_connection_says_close_notify_when_it_can() {
    const CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let (mut sim, _) = sim();
    sim.serve(tls([Reply::Send(CLOSE.to_vec()), Reply::Stall]));
    sim.get("https://localhost/").unwrap();
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::ServerClose)]);
    assert_eq!(sim.goodbyes, [(sim.closed[0].0, true, false)]);

    // Idle past the pool's timeout: closed at the next checkout.
    let (mut config, _) = config();
    config.pool.idle_timeout = Some(Duration::from_secs(5));
    let mut sim = Sim::new(config);
    sim.serve(tls([Reply::Send(OK.to_vec()), Reply::Stall]));
    sim.serve(tls([Reply::Send(OK.to_vec())]));
    sim.get("https://localhost/a").unwrap();
    assert!(sim.goodbyes.is_empty(), "kept, not closed");
    sim.advance(Duration::from_secs(6));
    sim.get("https://localhost/b").unwrap();
    assert_eq!(sim.closed, [(sim.closed[0].0, CloseReason::IdleTimeout)]);
    assert_eq!(sim.goodbyes, [(sim.closed[0].0, true, false)]);

    // A fatal alert: the session is over, no `close_notify` after it.
    let (mut sim, _) = self::sim();
    sim.serve(tls([
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello".to_vec()),
        Reply::Alert,
    ]));
    sim.get("https://localhost/").unwrap_err();
    assert_eq!(sim.closed[0].1, CloseReason::Error);
    assert!(sim.goodbyes.is_empty(), "{:?}", sim.goodbyes);

    // A handshake cut by its timeout.
    let (mut config, _) = self::config();
    config.tls.handshake_timeout = Some(Duration::from_secs(3));
    let mut sim = Sim::new(config);
    sim.serve(tls([Reply::Stall]));
    sim.get("https://localhost/").unwrap_err();
    assert_eq!(sim.closed[0].1, CloseReason::Timeout);
    assert!(sim.goodbyes.is_empty(), "{:?}", sim.goodbyes);

    // (An early answer while the body's records wait for the socket: see
    // `an_early_answer_during_an_in_memory_body_is_heard_over_tls`.)
}

/// A server whose handshake flight ends with its `close_notify` (or a
/// close right after it): the handshake completes, but nothing can answer
/// a request. It failed as an invalid request (the core refused to start
/// on a closed connection), not as the server's close.
#[test]
fn a_server_that_closes_after_its_handshake_is_a_close() {
    for (server, version) in [
        (tls([Reply::CloseNotify]), "1.3"),
        (
            Server::new([Reply::CloseNotify]).tls(pki().tls12.clone()),
            "1.2",
        ),
    ] {
        let (mut sim, events) = sim();
        sim.serve(server);
        let err = sim.get("https://localhost/").unwrap_err();
        assert!(
            matches!(
                err,
                Error::ClosedEarly {
                    phase: Phase::Handshake,
                    reached_server: false
                }
            ),
            "TLS {version}: {err:?}"
        );
        assert_eq!(sim.stats().dials, 1, "TLS {version}");
        assert!(
            sim.closed
                .iter()
                .all(|(_, r)| *r == CloseReason::PeerClosed),
            "TLS {version}: {:?}",
            sim.closed
        );
        let (started, done) = handshakes(&events);
        assert_eq!((started, done.len()), (1, 1), "TLS {version}: {done:?}");
    }
}
