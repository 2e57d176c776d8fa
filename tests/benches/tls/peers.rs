//! The clients of the TLS benchmark, each made for one URL and one way of
//! using connections, with one `get` that reads the whole body and checks
//! its length. Blocking clients ([`Peer`]) and async ones ([`AsyncPeer`])
//! are apart so that an async loop runs inside one `block_on`, as a user's
//! would.
//!
//! Every rustls client uses aws-lc-rs: roundtrip's own configuration, and
//! [`rustls_config`] (TLS 1.3 and 1.2, the test CA only) for the raw loop,
//! hyper-rustls and reqwest; ureq builds its own configuration from the
//! test CA and the aws-lc-rs provider it is handed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, NamedGroup, StreamOwned};

/// Handshakes seen resumed (roundtrip's trace, the raw loop's session),
/// or tickets taken from the session store (hyper-rustls, reqwest: a
/// resumption offered); read and reset by each run.
pub static RESUMED: AtomicUsize = AtomicUsize::new(0);

/// The server every client talks to, and the CA that signed it.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub ca: CertificateDer<'static>,
}

impl Target {
    /// `https://ADDR/PATH` (an IP literal: no SNI, the name checked is the IP).
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `https://localhost:PORT/PATH`: the same server under another name
    /// (another pool key, another session cache entry).
    pub fn url_by_name(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

/// How a run uses connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conns {
    /// One client, one kept-alive connection.
    KeepAlive,
    /// One client, `Connection: close` on every request: every request
    /// dials and resumes the session of the one before.
    Resumed,
    /// A new client (and a new session cache) for every request, with
    /// `Connection: close`: every request dials and does a full handshake.
    Full,
}

impl Conns {
    fn close(self) -> bool {
        self != Conns::KeepAlive
    }
    /// Whether resumptions are counted (the keep-alive runs stay untraced).
    fn counted(self) -> bool {
        self != Conns::KeepAlive
    }
}

// ---------------------------------------------------------------------------
// rustls configuration of the peers.

/// A session store that counts the TLS 1.3 tickets taken from it (each is
/// one resumption offered), over rustls's default in-memory one.
#[derive(Debug)]
struct CountingStore(ClientSessionMemoryCache);

impl ClientSessionStore for CountingStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(name, group)
    }
    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.kx_hint(name)
    }
    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(name, value)
    }
    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.0.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.remove_tls12_session(name)
    }
    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.0.insert_tls13_ticket(name, value)
    }
    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        let ticket = self.0.take_tls13_ticket(name);
        if ticket.is_some() {
            RESUMED.fetch_add(1, Relaxed);
        }
        ticket
    }
}

/// aws-lc-rs, TLS 1.3 and 1.2, the test CA as the only root; the session
/// cache is rustls's default (256 sessions), counted when `counted`.
pub fn rustls_config(ca: &CertificateDer<'static>, counted: bool) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("the test CA parses");
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("TLS 1.3 and 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if counted {
        config.resumption =
            Resumption::store(Arc::new(CountingStore(ClientSessionMemoryCache::new(256))));
    }
    config
}

/// roundtrip's trace hook for the counted runs: counts resumed handshakes.
fn count_resumed(event: &roundtrip_io::proto::trace::TraceEvent) {
    if let roundtrip_io::proto::trace::TraceEvent::TlsHandshakeDone { result: Ok(info) } = event
        && info.resumed
    {
        RESUMED.fetch_add(1, Relaxed);
    }
}

/// The settings every roundtrip backend gets: the test CA as the only
/// root, `Connection: close` unless kept alive, resumptions counted.
macro_rules! roundtrip_builder {
    ($builder:expr, $target:expr, $conns:expr) => {{
        let cert = roundtrip_io::tls::Certificate::from_der(&$target.ca);
        let b = $builder
            .tls_built_in_roots(false)
            .add_root_certificate(cert)
            .keep_alive(!$conns.close())
            .max_idle_per_host(64);
        if $conns.counted() {
            b.trace(count_resumed)
        } else {
            b
        }
    }};
}

// ---------------------------------------------------------------------------
// The hand-written loop: std `TcpStream`, rustls `StreamOwned`, httparse.

/// One connection at a time; one `write` of canned request bytes, reads
/// until the head (httparse) and `Content-Length` bytes of body are in.
pub struct RawLoop {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    request: Vec<u8>,
    close: bool,
    stream: Option<StreamOwned<ClientConnection, TcpStream>>,
    buf: Vec<u8>,
}

impl RawLoop {
    pub fn new(target: &Target, path: &str, conns: Conns) -> RawLoop {
        let close = if conns.close() {
            "Connection: close\r\n"
        } else {
            ""
        };
        RawLoop {
            config: Arc::new(rustls_config(&target.ca, false)),
            addr: target.addr,
            request: format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\n{close}\r\n",
                target.addr
            )
            .into_bytes(),
            close: conns.close(),
            stream: None,
            buf: vec![0; BODY_BUF],
        }
    }

    fn try_get(&mut self) -> io::Result<usize> {
        let fresh = self.stream.is_none();
        if fresh {
            let tcp = TcpStream::connect(self.addr)?;
            tcp.set_nodelay(true)?;
            let name = ServerName::IpAddress(self.addr.ip().into());
            let conn =
                ClientConnection::new(Arc::clone(&self.config), name).map_err(io::Error::other)?;
            self.stream = Some(StreamOwned::new(conn, tcp));
        }
        let stream = self.stream.as_mut().expect("connected just above");
        stream.write_all(&self.request)?;
        // (head length, head + body length) once the head is complete.
        let (mut filled, mut lens, mut close) = (0, None::<(usize, usize)>, self.close);
        while lens.is_none_or(|(_, total)| filled < total) {
            if filled == self.buf.len() {
                return Err(io::Error::other("response larger than the buffer"));
            }
            let n = stream.read(&mut self.buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if lens.is_none() {
                let mut fields = [httparse::EMPTY_HEADER; 16];
                let mut head = httparse::Response::new(&mut fields);
                if let httparse::Status::Complete(len) =
                    head.parse(&self.buf[..filled]).map_err(io::Error::other)?
                {
                    let mut body = None;
                    for f in head.headers.iter() {
                        if f.name.eq_ignore_ascii_case("content-length") {
                            body = std::str::from_utf8(f.value)
                                .ok()
                                .and_then(|v| v.parse().ok());
                        } else if f.name.eq_ignore_ascii_case("connection") {
                            close |= f.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    let body: usize = body.ok_or(io::ErrorKind::InvalidData)?;
                    if head.code != Some(200) {
                        return Err(io::Error::other(format!("status {:?}", head.code)));
                    }
                    lens = Some((len, len + body));
                }
            }
        }
        if fresh && stream.conn.handshake_kind() == Some(HandshakeKind::Resumed) {
            RESUMED.fetch_add(1, Relaxed);
        }
        if close && let Some(mut stream) = self.stream.take() {
            // As roundtrip and hyper-rustls do: the close is announced.
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        let (head, total) = lens.expect("the loop ends once the head is known");
        if filled != total {
            return Err(io::Error::other("more bytes than the response"));
        }
        Ok(total - head)
    }

    fn get(&mut self) -> usize {
        // A server may close an idle keep-alive connection: dial once more.
        // Any other failure (a status other than 200, a wrong length) panics.
        let reused = self.stream.is_some();
        match self.try_get() {
            Ok(n) => n,
            Err(e) if reused && crate::common::is_closed(&e) => {
                self.stream = None;
                self.try_get().expect("raw loop GET, dialed again")
            }
            Err(e) => panic!("raw loop GET: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Blocking clients (the mio driver too, one request at a time).

/// Body buffer capacity: a 64 KiB body fits without growing it.
pub const BODY_BUF: usize = 128 * 1024;

/// The blocking clients (the two large ones boxed).
pub enum Client {
    Raw(Box<RawLoop>),
    Blocking(roundtrip_blocking::Client),
    Mio(Box<roundtrip_mio::Driver>),
    Ureq(ureq::Agent),
}

/// A blocking client with what one GET needs.
pub struct Peer {
    pub client: Client,
    pub url: String,
    close: bool,
    buf: Vec<u8>,
}

impl Peer {
    /// `kind` is one of `raw`, `blocking`, `mio`, `ureq`.
    pub fn new(kind: &str, target: &Target, path: &str, conns: Conns) -> Peer {
        let client = match kind {
            "raw" => Client::Raw(Box::new(RawLoop::new(target, path, conns))),
            "blocking" => Client::Blocking(
                roundtrip_builder!(roundtrip_blocking::Client::builder(), target, conns).build(),
            ),
            "mio" => Client::Mio(Box::new(
                roundtrip_builder!(roundtrip_mio::Driver::builder(), target, conns)
                    .build()
                    .expect("build the mio driver"),
            )),
            "ureq" => {
                use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
                let ca = Certificate::from_der(&target.ca).to_owned();
                let tls = TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(RootCerts::new_with_certs(&[ca]))
                    .unversioned_rustls_crypto_provider(Arc::new(
                        rustls::crypto::aws_lc_rs::default_provider(),
                    ))
                    .build();
                Client::Ureq(
                    ureq::Agent::config_builder()
                        .tls_config(tls)
                        .max_idle_connections(64)
                        .max_idle_connections_per_host(64)
                        .build()
                        .into(),
                )
            }
            other => panic!("{other} is not a blocking client"),
        };
        Peer {
            client,
            url: target.url(path),
            close: conns.close(),
            buf: Vec::with_capacity(BODY_BUF),
        }
    }

    /// One GET, the body read whole; its length.
    pub fn get(&mut self) -> usize {
        match &mut self.client {
            Client::Raw(raw) => raw.get(),
            Client::Blocking(client) => {
                let mut response = client.get(&*self.url).send().expect("roundtrip GET");
                assert_eq!(response.status(), 200, "roundtrip status");
                self.buf.clear();
                response
                    .body_mut()
                    .read_to_end(&mut self.buf)
                    .expect("roundtrip body");
                self.buf.len()
            }
            Client::Mio(driver) => mio_get(driver, &self.url),
            Client::Ureq(agent) => {
                let mut request = agent.get(&self.url);
                if self.close {
                    request = request.header("Connection", "close");
                }
                let mut response = request.call().expect("ureq GET");
                self.buf.clear();
                response
                    .body_mut()
                    .as_reader()
                    .read_to_end(&mut self.buf)
                    .expect("ureq body");
                self.buf.len()
            }
        }
    }
}

/// One GET on the mio driver, the body counted piece by piece (as in
/// `bench/mio.sh`), driven until it finished.
fn mio_get(driver: &mut roundtrip_mio::Driver, url: &str) -> usize {
    let bytes = Arc::new(AtomicU64::new(0));
    let request = roundtrip_mio::http::Request::get(url)
        .body(roundtrip_mio::Body::empty())
        .expect("a valid request");
    let counter = Arc::clone(&bytes);
    driver.submit_with(
        request,
        roundtrip_mio::Receive::stream(move |_, data| {
            counter.fetch_add(data.len() as u64, Relaxed);
            roundtrip_mio::Flow::Continue
        }),
    );
    // Bounded by the driver's own timeouts: a request always finishes.
    loop {
        driver.run_once(None).expect("mio poll");
        if let Some((_, result)) = driver.take_finished() {
            let response = result.expect("mio GET");
            assert_eq!(response.status(), 200, "mio status");
            return bytes.load(Relaxed) as usize;
        }
    }
}

// ---------------------------------------------------------------------------
// Async clients.

pub type HyperClient =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Clone)]
pub enum AsyncClient {
    Tokio(roundtrip_tokio::Client),
    Smol(roundtrip_smol::Client),
    Hyper(HyperClient),
    Reqwest(reqwest::Client),
}

/// An async client with what one GET needs; clones share the client.
#[derive(Clone)]
pub struct AsyncPeer {
    pub client: AsyncClient,
    pub url: Arc<str>,
    close: bool,
}

impl AsyncPeer {
    /// `kind` is one of `tokio`, `smol`, `hyper`, `reqwest`.
    pub fn new(kind: &str, target: &Target, path: &str, conns: Conns) -> AsyncPeer {
        let client = match kind {
            "tokio" => AsyncClient::Tokio(
                roundtrip_builder!(roundtrip_tokio::Client::builder(), target, conns).build(),
            ),
            "smol" => AsyncClient::Smol(
                roundtrip_builder!(roundtrip_smol::Client::builder(), target, conns).build(),
            ),
            "hyper" => {
                // hyper-rustls wants no ALPN in the configuration for HTTP/1
                // only, and then offers none.
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(rustls_config(&target.ca, conns.counted()))
                    .https_only()
                    .enable_http1()
                    .build();
                AsyncClient::Hyper(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(https),
                )
            }
            // reqwest sets ALPN `http/1.1` itself for `http1_only`.
            "reqwest" => AsyncClient::Reqwest(
                reqwest::Client::builder()
                    .no_proxy()
                    .http1_only()
                    .use_preconfigured_tls(rustls_config(&target.ca, conns.counted()))
                    .build()
                    .expect("build the reqwest client"),
            ),
            other => panic!("{other} is not an async client"),
        };
        AsyncPeer {
            client,
            url: target.url(path).into(),
            close: conns.close(),
        }
    }

    /// One GET, the body read whole with each client's own call; its length.
    pub async fn get(&self) -> usize {
        match &self.client {
            AsyncClient::Tokio(client) => {
                let mut response = client
                    .get(&*self.url)
                    .send()
                    .await
                    .expect("roundtrip-tokio GET");
                assert_eq!(response.status(), 200, "roundtrip-tokio status");
                let body = response.body_mut().bytes(1 << 20).await;
                body.expect("roundtrip-tokio body").len()
            }
            AsyncClient::Smol(client) => {
                let mut response = client
                    .get(&*self.url)
                    .send()
                    .await
                    .expect("roundtrip-smol GET");
                assert_eq!(response.status(), 200, "roundtrip-smol status");
                let body = response.body_mut().bytes(1 << 20).await;
                body.expect("roundtrip-smol body").len()
            }
            AsyncClient::Hyper(client) => {
                let mut request = hyper::Request::get(&*self.url);
                if self.close {
                    request = request.header("connection", "close");
                }
                let request = request.body(Empty::new()).expect("a valid request");
                let response = client.request(request).await.expect("hyper GET");
                assert_eq!(response.status(), 200, "hyper status");
                let body = response.into_body().collect().await;
                body.expect("hyper body").to_bytes().len()
            }
            AsyncClient::Reqwest(client) => {
                let mut request = client.get(&*self.url);
                if self.close {
                    request = request.header("connection", "close");
                }
                let response = request.send().await.expect("reqwest GET");
                assert_eq!(response.status(), 200, "reqwest status");
                response.bytes().await.expect("reqwest body").len()
            }
        }
    }
}
