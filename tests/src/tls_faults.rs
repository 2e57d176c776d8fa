//! The TLS fault suite, written once over a [`Backend`] and stamped into
//! `tls_faults_{blocking,mio,tokio,smol}.rs` by
//! [`tls_fault_suite!`](crate::tls_fault_suite).
//!
//! Each case puts one TLS fault in front of the client, through the
//! scripted TLS server of [`crate::tls_server`] (a bad certificate, an old
//! or absent TLS, an alert, a cut without `close_notify`, a client
//! certificate asked for), and asserts the exact [`Error::Tls`] with its
//! [`TlsError`], [`Phase`] and `reached_server`; that the failure was not
//! retried (the server accepted one connection); the pool's books; and, for
//! a failed handshake, the alert the client sent the server. The happy
//! paths check reuse and session resumption through the trace.
//!
//! [`Tls`] wraps a backend so the whole fault suite of [`crate::faults`]
//! runs on `https://` too.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use roundtrip_io::http::{Method, StatusCode};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::proto::trace::{TlsInfo, TraceEvent};
use roundtrip_io::tls::{Certificate, Identity, TlsError};
use roundtrip_io::{Config, Error, Phase, TimeoutKind};

use crate::backend::{Backend, Req, ReqBody, Resp, assert_timeout, test_config};
pub use crate::cases::Case;
use crate::certs::{Pem, pki};
use crate::faults::{assert_clean, send_err, send_ok, settle, settle_accepts};
use crate::fixtures::pattern;
use crate::server::{ScriptServer, Step, ok, response};
use crate::tls_server::{
    PROTOCOL_VERSION_ALERT, TlsServer, Versions, plaintext_400, start_tcp, tls10_server_hello,
};
use crate::traces::Recorder;

/// How long a case waits for the server's scripts to end.
const SETTLE: Duration = Duration::from_secs(5);

/// The short handshake timeout of the silent-port case.
const SHORT: Duration = Duration::from_millis(300);

/// Upper bound for a deadline of [`SHORT`] to fire (debug builds, loaded CI).
const LATE: Duration = Duration::from_millis(2000);

/// Both TLS versions, for the cases that run on each.
const VERSIONS: [Versions; 2] = [Versions::Tls12, Versions::Tls13];

/// A backend whose suites' servers speak TLS: `Tls<Blocking>` runs the
/// cases of [`crate::faults`] on `https://`, its clients trusting the
/// test CA only.
#[derive(Debug)]
pub struct Tls<B>(PhantomData<fn() -> B>);

impl<B: Backend> Backend for Tls<B> {
    const NAME: &'static str = B::NAME;
    const DROPS_CLOSED_IDLE: bool = B::DROPS_CLOSED_IDLE;
    const TLS: bool = true;
    type Client = B::Client;

    fn client(config: Config) -> Self::Client {
        B::client(trusting(config))
    }

    fn send(client: &Self::Client, req: Req) -> Result<Resp, Error> {
        B::send(client, req)
    }

    fn send_built(client: &Self::Client, built: crate::builders::Built) -> Result<Resp, Error> {
        B::send_built(client, built)
    }

    fn stats(client: &Self::Client) -> PoolStats {
        B::stats(client)
    }

    fn live_stats(client: &Self::Client) -> PoolStats {
        B::live_stats(client)
    }

    fn close_idle(client: &Self::Client) {
        B::close_idle(client)
    }
}

/// `config` trusting the test CA, and nothing else.
pub fn trusting(mut config: Config) -> Config {
    config.tls.built_in_roots = false;
    config.tls.extra_roots = vec![Certificate::from_pem(pki().ca.as_bytes()).expect("test CA")];
    config
}

/// The suite's config trusting the test CA.
fn tls_config() -> Config {
    trusting(test_config())
}

/// The PKI's client certificate as an [`Identity`].
fn client_identity() -> Identity {
    let client = &pki().client;
    Identity::from_pem(client.cert.as_bytes(), client.key.as_bytes()).expect("test identity")
}

/// Panics, naming `context`, unless `err` is [`Error::Tls`] in `phase`
/// with `reached_server` as given and a source `want` accepts.
fn assert_tls(
    err: &Error,
    phase: Phase,
    reached: bool,
    want: impl Fn(&TlsError) -> bool,
    context: &str,
) {
    let ok = matches!(err, Error::Tls { phase: p, source, reached_server: r }
        if *p == phase && *r == reached && want(source));
    assert!(
        ok,
        "{context}: want Tls in {phase:?} (reached_server {reached}), got {err:?}"
    );
}

/// Whether `e` is the alert named `name`.
fn alert(e: &TlsError, name: &str) -> bool {
    matches!(e, TlsError::Alert { alert } if alert == name)
}

/// After a failure that ended connection 0 and must not be retried: one
/// connection accepted, no request read, the pool clean with that
/// connection counted closed.
fn not_retried<B: Backend>(client: &B::Client, server: &ScriptServer, requests: usize) {
    settle_accepts(server, 1);
    assert_eq!(
        server.accepted(),
        1,
        "{}: a TLS failure was retried",
        B::NAME
    );
    assert_eq!(server.requests().len(), requests, "{}", B::NAME);
    let stats = assert_clean::<B>(client, 0);
    assert_eq!(stats.closed.total(), 1, "{}: {stats:?}", B::NAME);
}

/// Waits for the scripts to end (drop the client first), then requires
/// exactly one script error: connection 0's handshake failed, the server's
/// rustls saying `message` (e.g. the alert the client sent, or `""` for
/// any reason).
fn handshake_failed_on_server(server: &ScriptServer, message: &str) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    let errors = server.errors();
    assert!(
        errors.len() == 1
            && errors[0].conn == 0
            && errors[0].step == "open"
            && errors[0].message.contains(message),
        "want the server's handshake to fail with {message:?}, got {errors:?}"
    );
}

/// A server presenting `cert` to a client trusting the test CA: the
/// handshake fails with `want`, not retried. (Which alert the server hears
/// is [`client_alerts_refused_servers`]'s matter.)
fn bad_certificate<B: Backend>(cert: &Pem, want: impl Fn(&TlsError) -> bool) {
    let server = TlsServer::new().cert(cert).start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"no")),
        Step::Close,
    ]]);
    let client = B::client(tls_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert_tls(&err, Phase::Handshake, false, want, B::NAME);
    not_retried::<B>(&client, &server, 0);
    drop(client);
    handshake_failed_on_server(&server, "");
}

/// A server the client refuses in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its certificate is signed by a CA the client does not trust.
    UntrustedCa,
    /// Its certificate expired.
    Expired,
    /// Its certificate names `other.test` only.
    WrongName,
    /// Its certificate is self-signed.
    SelfSigned,
    /// It speaks TLS 1.0 only.
    Tls10Only,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: [Refusal; 5] = [
        Refusal::UntrustedCa,
        Refusal::Expired,
        Refusal::WrongName,
        Refusal::SelfSigned,
        Refusal::Tls10Only,
    ];
}

/// The client tells a server it refuses why, with the fatal alert RFC 8446
/// section 6.2 names (rustls queues it): `unknown_ca`,
/// `certificate_expired`, `bad_certificate`, `unknown_ca`, and for the TLS
/// 1.0 server the exact `protocol_version` alert record.
///
/// Not a case of the suite (it takes the refusals to try): each test file
/// runs it with all of them.
pub fn client_alerts_refused_servers<B: Backend>(refusals: &[Refusal]) {
    let pki = pki();
    for &refusal in refusals {
        let (cert, alert) = match refusal {
            Refusal::UntrustedCa => (&pki.untrusted, "UnknownCA"),
            Refusal::Expired => (&pki.expired, "CertificateExpired"),
            Refusal::WrongName => (&pki.wrong_name, "BadCertificate"),
            Refusal::SelfSigned => (&pki.self_signed, "UnknownCA"),
            Refusal::Tls10Only => {
                let server = start_tcp(vec![vec![
                    Step::Write(tls10_server_hello()),
                    Step::ExpectBytes(PROTOCOL_VERSION_ALERT.to_vec()),
                    Step::ExpectEof,
                ]]);
                let client = B::client(tls_config());
                let _ = send_err::<B>(&client, Req::get(server.url("/")));
                drop(client);
                settle(&server);
                continue;
            }
        };
        let server = TlsServer::new()
            .cert(cert)
            .start(vec![vec![Step::ReadRequest]]);
        let client = B::client(tls_config());
        let _ = send_err::<B>(&client, Req::get(server.url("/")));
        drop(client);
        handshake_failed_on_server(&server, &format!("received fatal alert: {alert}"));
    }
}

/// The trace's `TlsHandshakeDone` results, in order.
fn handshakes(events: &[TraceEvent]) -> Vec<Result<TlsInfo, String>> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::TlsHandshakeDone { result } => Some(result.clone()),
            _ => None,
        })
        .collect()
}

/// What rustls names `versions` (a server of both gives 1.3).
fn version_name(versions: Versions) -> &'static str {
    match versions {
        Versions::Tls12 => "TLSv1_2",
        Versions::Tls13 | Versions::Both => "TLSv1_3",
    }
}

/// Panics unless `done` is one successful handshake of `versions` with
/// ALPN `http/1.1`, `resumed` as given.
fn assert_handshake(done: &Result<TlsInfo, String>, versions: Versions, resumed: bool, what: &str) {
    let info = done
        .as_ref()
        .unwrap_or_else(|e| panic!("{what}: handshake failed: {e}"));
    assert_eq!(
        (info.version, info.alpn, info.resumed),
        (version_name(versions), Some("http/1.1"), resumed),
        "{what}: {info:?}"
    );
    assert_ne!(info.cipher, "unknown", "{what}: {info:?}");
}

/// A second connection that answers `/next` with `next`, then waits for
/// the client to close.
fn next_conn() -> Vec<Step> {
    vec![Step::ReadRequest, Step::Write(ok(b"next")), Step::ExpectEof]
}

crate::cases! {
    /// Stamps every TLS fault case into `#[test]` functions for a backend:
    /// `tls_fault_suite!(Blocking)`, or
    /// `tls_fault_suite!(@cases Blocking; case, ...)` for a chosen list.
    stamp tls_fault_suite, list cases, path tls_faults;

/// A certificate signed by a CA the client does not trust: `NotTrusted`
/// in the handshake.
pub fn untrusted_ca_not_trusted<B: Backend>() {
    bad_certificate::<B>(
        &pki().untrusted,
        |e| matches!(e, TlsError::NotTrusted { host } if host == "127.0.0.1"),
    );
}

/// A certificate of the trusted CA that expired in 2001: `Expired`.
pub fn expired_certificate<B: Backend>() {
    bad_certificate::<B>(
        &pki().expired,
        |e| matches!(e, TlsError::Expired { host, .. } if host == "127.0.0.1"),
    );
}

/// A certificate of the trusted CA for `other.test` only: `WrongName`
/// naming what it presents.
pub fn wrong_host_name<B: Backend>() {
    bad_certificate::<B>(
        &pki().wrong_name,
        |e| {
            matches!(e, TlsError::WrongName { host, presented }
                if host == "127.0.0.1" && presented.iter().any(|n| n.contains("other.test")))
        },
    );
}

/// A self-signed certificate: `NotTrusted` (no trusted issuer).
pub fn self_signed_not_trusted<B: Backend>() {
    bad_certificate::<B>(
        &pki().self_signed,
        |e| matches!(e, TlsError::NotTrusted { host } if host == "127.0.0.1"),
    );
}

/// A server that speaks only TLS 1.0 answers the ClientHello with a
/// ServerHello of version 0x0301 and no `supported_versions`: the client
/// refuses it itself, before any alert from the server, so the error is
/// `Incompatible` (rustls: `ServerDoesNotSupportTls12Or13`), not `Alert`.
/// Not retried; the client closes the connection.
pub fn tls10_only_server_incompatible<B: Backend>() {
    let server = start_tcp(vec![vec![
        Step::Write(tls10_server_hello()),
        // Until the client closes, whatever it sends (its alert: see
        // `client_alerts_refused_servers`).
        Step::DiscardSlowly {
            chunk: 1024,
            every: Duration::from_millis(1),
            for_at_most: SETTLE,
        },
    ]]);
    let client = B::client(tls_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert_tls(
        &err,
        Phase::Handshake,
        false,
        |e| matches!(e, TlsError::Incompatible { detail } if detail == "ServerDoesNotSupportTls12Or13"),
        B::NAME,
    );
    not_retried::<B>(&client, &server, 0);
    drop(client);
    settle(&server);
}

/// A plain HTTP server on the TLS port answers the ClientHello with
/// `HTTP/1.1 400 Bad Request`: `PlaintextHttp`.
pub fn plaintext_http_on_tls_port<B: Backend>() {
    let server = start_tcp(vec![vec![Step::Write(plaintext_400()), Step::ExpectEof]]);
    let client = B::client(tls_config());
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    assert_tls(
        &err,
        Phase::Handshake,
        false,
        |e| matches!(e, TlsError::PlaintextHttp),
        B::NAME,
    );
    not_retried::<B>(&client, &server, 0);
    drop(client);
    settle(&server);
}

/// A server that accepts TCP, reads the ClientHello and never answers: the
/// `tls_handshake_timeout` (300 ms) fires, `Timeout` in the handshake
/// phase, not retried; the client closes the connection.
pub fn silent_tls_port_handshake_timeout<B: Backend>() {
    let server = start_tcp(vec![vec![Step::ExpectEof]]);
    let mut config = tls_config();
    config.tls.handshake_timeout = Some(SHORT);
    let client = B::client(config);
    let started = Instant::now();
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    let took = started.elapsed();
    assert_timeout(
        &err,
        TimeoutKind::TlsHandshake,
        Phase::Handshake,
        false,
        B::NAME,
    );
    assert!(took >= SHORT - Duration::from_millis(10), "early: {took:?}");
    assert!(took < LATE, "late: {took:?}");
    settle_accepts(&server, 1);
    assert_eq!(server.accepted(), 1, "{}: retried after a timeout", B::NAME);
    let stats = assert_clean::<B>(&client, 0);
    assert_eq!(
        (stats.closed.get(CloseReason::Timeout), stats.closed.total()),
        (1, 1),
        "{stats:?}"
    );
    // The client closed the connection (the script's ExpectEof ended).
    settle(&server);
}

/// A server that requires a client certificate, and the client has none.
/// TLS 1.2: the server refuses in the handshake, `Alert` in the handshake
/// phase. TLS 1.3: the client's handshake is over when it sends its
/// Finished, so it sends the request and meets the server's alert while
/// waiting for the head: `Alert` in the response-head phase, and the
/// request may have reached the server (it was written; the server never
/// read it). The alert is `certificate_required` on both.
pub fn client_cert_required_missing<B: Backend>() {
    for versions in VERSIONS {
        let server = TlsServer::new()
            .versions(versions)
            .require_client_cert()
            .start(vec![vec![Step::ReadRequest, Step::Write(ok(b"no")), Step::Close]]);
        let client = B::client(tls_config());
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        let (phase, reached) = match versions {
            Versions::Tls12 => (Phase::Handshake, false),
            _ => (Phase::ResponseHead, true),
        };
        let context = format!("{} {versions:?}", B::NAME);
        assert_tls(
            &err,
            phase,
            reached,
            |e| alert(e, "CertificateRequired"),
            &context,
        );
        not_retried::<B>(&client, &server, 0);
        drop(client);
        handshake_failed_on_server(&server, "no certificates");
    }
}

/// The same server, and the client presents the PKI's client certificate:
/// 200, on TLS 1.2 and 1.3.
pub fn client_cert_presented<B: Backend>() {
    for versions in VERSIONS {
        let server = TlsServer::new()
            .versions(versions)
            .require_client_cert()
            .start(vec![vec![
                Step::ReadRequest,
                Step::Write(ok(b"hello client")),
                Step::ExpectEof,
            ]]);
        let mut config = tls_config();
        config.tls.identity = Some(client_identity());
        let client = B::client(config);
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (StatusCode::OK, &b"hello client"[..]),
            "{} {versions:?}",
            B::NAME
        );
        drop(client);
        settle(&server);
    }
}

/// `danger_accept_invalid_certs(true)` takes every bad certificate of the
/// PKI (self-signed, expired, another name, an untrusted CA): 200.
pub fn danger_accept_invalid_certs_accepts<B: Backend>() {
    let pki = pki();
    for (name, cert) in [
        ("self-signed", &pki.self_signed),
        ("expired", &pki.expired),
        ("wrong name", &pki.wrong_name),
        ("untrusted", &pki.untrusted),
    ] {
        let server = TlsServer::new().cert(cert).start(vec![vec![
            Step::ReadRequest,
            Step::Write(ok(b"anyway")),
            Step::ExpectEof,
        ]]);
        let mut config = test_config();
        config.tls.danger_accept_invalid_certs = true;
        let client = B::client(config);
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(resp.body, b"anyway", "{} {name}", B::NAME);
        drop(client);
        settle(&server);
    }
}

/// The server sends 400 of 1000 `Content-Length` bytes, then a fatal alert
/// (`bad_record_mac`): `Alert` in the body phase, reached the server, not
/// retried, on TLS 1.2 and 1.3.
pub fn fatal_alert_mid_body<B: Backend>() {
    for versions in VERSIONS {
        let answer = response(200, &[("Content-Length", "1000")], &pattern(400));
        let server = TlsServer::new().versions(versions).start(vec![vec![
            Step::ReadRequest,
            Step::Write(answer),
            Step::Sleep(Duration::from_millis(30)),
            Step::FatalAlert,
        ]]);
        let client = B::client(tls_config());
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        let context = format!("{} {versions:?}", B::NAME);
        assert_tls(&err, Phase::Body, true, |e| alert(e, "BadRecordMac"), &context);
        not_retried::<B>(&client, &server, 1);
        drop(client);
        settle(&server);
    }
}

/// The server answers one GET, then meets the next one on the reused
/// connection with a fatal alert instead of a response. A close there is
/// retried (`faults::close_on_reuse_get_retried`); a TLS error never is:
/// `Alert` in the response-head phase, one connection accepted.
pub fn fatal_alert_on_reuse_not_retried<B: Backend>() {
    let server = TlsServer::new().start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok(b"one")),
            Step::ReadRequest,
            Step::FatalAlert,
        ],
        next_conn(),
    ]);
    let client = B::client(tls_config());
    assert_eq!(
        send_ok::<B>(&client, Req::get(server.url("/one"))).body,
        b"one"
    );
    let err = send_err::<B>(&client, Req::get(server.url("/two")));
    assert_tls(
        &err,
        Phase::ResponseHead,
        true,
        |e| alert(e, "BadRecordMac"),
        B::NAME,
    );
    not_retried::<B>(&client, &server, 2);
    drop(client);
    settle(&server);
}

/// A body that runs until the close (no `Content-Length`, `Connection:
/// close`) and a close without `close_notify`: the client cannot tell the
/// end from a cut, so it reports `Truncated` in the body phase and never a
/// complete body; on TLS 1.2 and 1.3.
pub fn close_delimited_cut_without_close_notify<B: Backend>() {
    for versions in VERSIONS {
        let answer = response(200, &[("Connection", "close")], &pattern(400));
        let server = TlsServer::new().versions(versions).start(vec![vec![
            Step::ReadRequest,
            Step::Write(answer),
            Step::Sleep(Duration::from_millis(30)),
            Step::CloseWithoutNotify,
        ]]);
        let client = B::client(tls_config());
        let err = send_err::<B>(&client, Req::get(server.url("/")));
        let context = format!("{} {versions:?}", B::NAME);
        assert_tls(
            &err,
            Phase::Body,
            true,
            |e| matches!(e, TlsError::Truncated),
            &context,
        );
        not_retried::<B>(&client, &server, 1);
        drop(client);
        settle(&server);
    }
}

/// The same body ended with `close_notify`: complete, every byte.
pub fn close_delimited_ended_with_close_notify<B: Backend>() {
    for versions in VERSIONS {
        let answer = response(200, &[("Connection", "close")], &pattern(400));
        let server = TlsServer::new().versions(versions).start(vec![vec![
            Step::ReadRequest,
            Step::Write(answer),
            Step::Sleep(Duration::from_millis(30)),
            Step::Close,
        ]]);
        let client = B::client(tls_config());
        let resp = send_ok::<B>(&client, Req::get(server.url("/")));
        assert_eq!(resp.body, pattern(400), "{} {versions:?}", B::NAME);
        assert_clean::<B>(&client, 0);
        drop(client);
        settle(&server);
    }
}

/// A `Content-Length` body, then a close without `close_notify`: the body
/// is complete by its length, so the missing `close_notify` harms nothing.
/// With `Connection: close`, and without it (the connection went idle and
/// then died: the next request gets its answer on a new connection).
pub fn sized_body_then_close_without_close_notify<B: Backend>() {
    for close in [true, false] {
        let body = pattern(400);
        let len = body.len().to_string();
        let mut fields = vec![("Content-Length", len.as_str())];
        if close {
            fields.push(("Connection", "close"));
        }
        let server = TlsServer::new().start(vec![
            vec![
                Step::ReadRequest,
                Step::Write(response(200, &fields, &body)),
                Step::Sleep(Duration::from_millis(30)),
                Step::CloseWithoutNotify,
            ],
            next_conn(),
        ]);
        let client = B::client(tls_config());
        let resp = send_ok::<B>(&client, Req::get(server.url("/a")));
        assert_eq!(resp.body, body, "{} close={close}", B::NAME);
        // Let the close arrive before the next request.
        std::thread::sleep(Duration::from_millis(60));
        let next = send_ok::<B>(&client, Req::get(server.url("/next")));
        assert_eq!(next.body, b"next", "{} close={close}", B::NAME);
        assert_eq!(server.accepted(), 2, "{} close={close}", B::NAME);
        let last = server.requests().pop().expect("the next request");
        assert_eq!((last.conn, last.target.as_str()), (1, "/next"));
        let stats = assert_clean::<B>(&client, 1);
        assert_eq!((stats.dials, stats.closed.total()), (2, 1), "{stats:?}");
        drop(client);
        settle(&server);
    }
}

/// Keep-alive over TLS: two requests (a GET, a POST) on one connection,
/// one handshake in the trace, on TLS 1.2 and 1.3.
pub fn keep_alive_reuse<B: Backend>() {
    for versions in VERSIONS {
        let server = TlsServer::new().versions(versions).start(vec![vec![
            Step::ReadRequest,
            Step::Write(ok(b"one")),
            Step::ReadRequest,
            Step::Write(ok(b"two")),
            Step::ExpectEof,
        ]]);
        let recorder = Recorder::default();
        let client = B::client(recorder.install(tls_config()));
        let context = format!("{} {versions:?}", B::NAME);
        assert_eq!(
            send_ok::<B>(&client, Req::get(server.url("/one"))).body,
            b"one"
        );
        let post = Req::new(Method::POST, server.url("/two"))
            .body(ReqBody::Bytes(b"post-body".to_vec()));
        assert_eq!(send_ok::<B>(&client, post).body, b"two");
        assert_eq!(server.accepted(), 1, "{context}");
        let seen: Vec<(usize, String, Vec<u8>)> = server
            .requests()
            .into_iter()
            .map(|r| (r.conn, r.target, r.body))
            .collect();
        assert_eq!(
            seen,
            [
                (0, "/one".into(), Vec::new()),
                (0, "/two".into(), b"post-body".to_vec())
            ],
            "{context}"
        );
        let done = handshakes(&recorder.take());
        assert_eq!(done.len(), 1, "{context}: {done:?}");
        assert_handshake(&done[0], versions, false, &context);
        assert_clean::<B>(&client, 1);
        drop(client);
        settle(&server);
    }
}

/// The client ends a TLS connection it closes with `close_notify` (RFC
/// 8446 section 6.1): when the response said `Connection: close`, when
/// the pool lets an idle connection go (its idle timeout, seen at the
/// next checkout), at `close_idle`, and when the client is dropped with
/// a connection idle. The server fails its script on a close without it.
pub fn client_closes_with_close_notify<B: Backend>() {
    for versions in VERSIONS {
        let fields = [("Connection", "close"), ("Content-Length", "3")];
        let close = response(200, &fields, b"bye");
        let server = TlsServer::new().versions(versions).start(vec![
            vec![
                Step::ReadRequest,
                Step::Write(close),
                Step::ExpectCloseNotify,
            ],
            vec![
                Step::ReadRequest,
                Step::Write(ok(b"idle")),
                Step::ExpectCloseNotify,
            ],
            vec![
                Step::ReadRequest,
                Step::Write(ok(b"next")),
                Step::ExpectCloseNotify,
            ],
            vec![
                Step::ReadRequest,
                Step::Write(ok(b"last")),
                Step::ExpectCloseNotify,
            ],
        ]);
        let mut config = tls_config();
        // Long enough that the connection of `/next` is still idle when
        // `close_idle` comes, on a loaded machine too (idle connections
        // expire in the background).
        config.pool.idle_timeout = Some(Duration::from_millis(400));
        let client = B::client(config);
        let context = format!("{} {versions:?}", B::NAME);
        let bye = send_ok::<B>(&client, Req::get(server.url("/close")));
        assert_eq!(bye.body, b"bye", "{context}");
        let idle = send_ok::<B>(&client, Req::get(server.url("/idle")));
        assert_eq!(idle.body, b"idle", "{context}");
        B::pass_time(&client, Duration::from_millis(600));
        // The idle connection expired (closed by the pool's alarm, or by
        // this checkout).
        let next = send_ok::<B>(&client, Req::get(server.url("/next")));
        assert_eq!(next.body, b"next", "{context}");
        assert_eq!(server.accepted(), 3, "{context}");
        let stats = assert_clean::<B>(&client, 1);
        assert_eq!(stats.closed.get(CloseReason::ServerClose), 1, "{stats:?}");
        assert_eq!(stats.closed.get(CloseReason::IdleTimeout), 1, "{stats:?}");
        // `close_idle` closes the idle one.
        B::close_idle(&client);
        let stats = B::live_stats(&client);
        assert_eq!(stats.idle, 0, "{context}: {stats:?}");
        assert_eq!(stats.closed.get(CloseReason::ClientClose), 1, "{stats:?}");
        // Dropping the client closes what is idle then.
        let last = send_ok::<B>(&client, Req::get(server.url("/last")));
        assert_eq!(last.body, b"last", "{context}");
        assert_eq!(server.accepted(), 4, "{context}");
        drop(client);
        settle(&server);
    }
}

/// Two requests on two connections (`keep_alive` off): the second
/// handshake resumes the first's session (a TLS 1.3 ticket, a TLS 1.2
/// session id), as the trace's `TlsHandshakeDone` says.
pub fn session_resumed<B: Backend>() {
    for versions in VERSIONS {
        let conn = vec![Step::ReadRequest, Step::Write(ok(b"hi")), Step::Close];
        let server = TlsServer::new()
            .versions(versions)
            .start(vec![conn.clone(), conn]);
        let recorder = Recorder::default();
        let mut config = recorder.install(tls_config());
        config.keep_alive = false;
        let client = B::client(config);
        let context = format!("{} {versions:?}", B::NAME);
        for _ in 0..2 {
            assert_eq!(send_ok::<B>(&client, Req::get(server.url("/"))).body, b"hi");
        }
        assert_eq!(server.accepted(), 2, "{context}");
        let done = handshakes(&recorder.take());
        assert_eq!(done.len(), 2, "{context}: {done:?}");
        assert_handshake(&done[0], versions, false, &format!("{context} first"));
        assert_handshake(&done[1], versions, true, &format!("{context} second"));
        drop(client);
        settle(&server);
    }
}

/// A server that resets the connection on the ClientHello: the request
/// fails in the handshake phase, is not retried, and the trace ends the
/// handshake it started (`TlsHandshakeDone` with the error), as it does
/// for a timeout or a close: a reset left it without an end.
pub fn reset_on_the_client_hello_ends_the_traced_handshake<B: Backend>() {
    let server = start_tcp(vec![vec![Step::Sleep(Duration::from_millis(50)), Step::Reset]]);
    let recorder = Recorder::default();
    let client = B::client(recorder.install(tls_config()));
    let err = send_err::<B>(&client, Req::get(server.url("/")));
    let in_handshake = matches!(
        err,
        Error::Io {
            phase: Phase::Handshake,
            reached_server: false,
            ..
        } | Error::ClosedEarly {
            phase: Phase::Handshake,
            reached_server: false
        }
    );
    assert!(in_handshake, "{}: {err:?}", B::NAME);
    not_retried::<B>(&client, &server, 0);
    let events = recorder.take();
    let started = (events.iter())
        .filter(|e| matches!(e, TraceEvent::TlsHandshakeStart { .. }))
        .count();
    let done = handshakes(&events);
    assert_eq!(started, 1, "{}: {events:?}", B::NAME);
    assert!(matches!(&done[..], [Err(_)]), "{}: {done:?}", B::NAME);
    drop(client);
    settle(&server);
}
}
