//! The scripted server over TLS: [`TlsServer`] runs the [`ScriptServer`]'s
//! scripts inside a rustls server session (a certificate of the test PKI,
//! TLS 1.2 and/or 1.3, a client certificate required or not), so every
//! fault script works on `https://` too, and adds the faults only TLS has
//! ([`Step::CloseWithoutNotify`], [`Step::FatalAlert`]). Connection counts
//! and recorded requests are the [`ScriptServer`]'s.
//!
//! Below TLS, [`start_tcp`] serves a TLS port that does not speak TLS: it
//! reads the client's ClientHello record, then plays a plain script (stay
//! silent, answer in plaintext HTTP, send the hand-written TLS 1.0
//! ServerHello of [`tls10_server_hello`]).
//!
//! A failed handshake is a script error of step `open`, whose message
//! names the alert the client sent (`received fatal alert: UnknownCA`), so
//! a test asserts what the client told the server as well as what it
//! reported.
//!
//! ```no_run
//! use roundtrip_tests::server::{Step, ok};
//! use roundtrip_tests::tls_server::{TlsServer, Versions};
//!
//! let server = TlsServer::new()
//!     .versions(Versions::Tls12)
//!     .start(vec![vec![Step::ReadRequest, Step::Write(ok(b"hi")), Step::Close]]);
//! assert!(server.url("/").starts_with("https://127.0.0.1:"));
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::certs::{Pem, pki};
#[cfg(doc)]
use crate::server::Step;
use crate::server::{Plain, Script, ScriptServer, Wire, Wires, escape};

/// Most plaintext sealed per [`Wire::write`]: one full TLS record.
const RECORD: usize = 16 * 1024;

/// The TLS versions a [`TlsServer`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
    /// Both (the client picks 1.3).
    Both,
}

/// A scripted server on `https://127.0.0.1:PORT`, configured, then
/// [started](TlsServer::start).
#[derive(Clone, Debug)]
pub struct TlsServer {
    cert: Pem,
    versions: Versions,
    client_auth: bool,
}

impl Default for TlsServer {
    fn default() -> Self {
        TlsServer::new()
    }
}

impl TlsServer {
    /// The test PKI's good server certificate (for `localhost`,
    /// `127.0.0.1`, `::1`), TLS 1.2 and 1.3, no client certificate asked.
    pub fn new() -> TlsServer {
        TlsServer {
            cert: pki().server.clone(),
            versions: Versions::Both,
            client_auth: false,
        }
    }

    /// Presents `cert` (e.g. `pki().expired`) instead.
    pub fn cert(mut self, cert: &Pem) -> TlsServer {
        self.cert = cert.clone();
        self
    }

    /// Accepts only `versions`.
    pub fn versions(mut self, versions: Versions) -> TlsServer {
        self.versions = versions;
        self
    }

    /// Requires a client certificate signed by the PKI's `client_ca`.
    pub fn require_client_cert(mut self) -> TlsServer {
        self.client_auth = true;
        self
    }

    /// The rustls configuration, shared by every connection of one server
    /// (and so its session cache: a client may resume).
    pub fn config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.versions {
            Versions::Tls12 => &[&rustls::version::TLS12],
            Versions::Tls13 => &[&rustls::version::TLS13],
            Versions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .expect("the provider supports TLS 1.2 and 1.3");
        let builder = if self.client_auth {
            let mut roots = RootCertStore::empty();
            roots
                .add(client_ca_der())
                .expect("the test client CA is a usable root");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("a client verifier over the test client CA");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(vec![self.cert.cert_der()], self.cert.key_der())
            .expect("the test certificate matches its key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Binds `127.0.0.1:0` and serves `conns` as [`ScriptServer::start`]
    /// does, each script after a TLS handshake.
    pub fn start(self, conns: Vec<Script>) -> ScriptServer {
        let config = self.config();
        // Checked once here, so making a session per connection cannot fail.
        drop(ServerConnection::new(Arc::clone(&config)).expect("a rustls server session"));
        let wires: Wires = Arc::new(move || {
            let conn = ServerConnection::new(Arc::clone(&config))
                .expect("a session of a configuration that made one");
            Box::new(TlsWire {
                conn,
                notified: None,
            })
        });
        ScriptServer::start_on(conns, "https", wires)
    }
}

/// The PKI's client CA as DER.
fn client_ca_der() -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pki().client_ca.as_bytes()).expect("own PEM")
}

/// A TLS port that does not speak TLS: `https://127.0.0.1:PORT`; each
/// connection reads the client's first TLS record (its ClientHello: a
/// connection that starts otherwise fails at step `open`), then plays its
/// script over plain TCP.
pub fn start_tcp(conns: Vec<Script>) -> ScriptServer {
    let wires: Wires = Arc::new(|| Box::new(AfterClientHello::default()));
    ScriptServer::start_on(conns, "https", wires)
}

/// A ServerHello of a server that speaks only TLS 1.0, written by hand:
/// one handshake record (version 0x0301) holding a ServerHello whose
/// `server_version` is 0x0301, with no extensions (so no
/// `supported_versions`), choosing TLS_RSA_WITH_AES_128_CBC_SHA.
pub fn tls10_server_hello() -> Vec<u8> {
    let mut hello = vec![
        0x03, 0x01, // server_version: TLS 1.0
    ];
    hello.extend((0u8..32).map(|i| i.wrapping_mul(7).wrapping_add(1))); // random
    hello.extend_from_slice(&[
        0x00, // session_id: empty
        0x00, 0x2f, // cipher_suite: TLS_RSA_WITH_AES_128_CBC_SHA
        0x00, // compression_method: null
    ]);
    let mut handshake = vec![0x02, 0x00, 0x00, hello.len() as u8]; // ServerHello, u24 length
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8]; // handshake, TLS 1.0, u16 length
    record.extend_from_slice(&handshake);
    record
}

/// The record a client sends when it refuses the server's TLS version: a
/// plaintext fatal `protocol_version` alert (RFC 8446 section 6.2; record
/// version 0x0303 as RFC 8446 section 5.1 has it for all but the
/// ClientHello).
pub const PROTOCOL_VERSION_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];

/// `HTTP/1.1 400 Bad Request` as a plain HTTP server answers a ClientHello
/// (nginx's answer, shortened).
pub fn plaintext_400() -> Vec<u8> {
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request"
        .to_vec()
}

/// A rustls server session over the connection's socket.
struct TlsWire {
    conn: ServerConnection,
    /// How the client's end came: with `close_notify` or without.
    notified: Option<bool>,
}

impl TlsWire {
    /// Hands rustls what it read; on a TLS error its alert is sent (as far
    /// as the socket takes it now) and the error returned.
    fn process(&mut self, tcp: &TcpStream) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.flush(tcp);
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("tls: {e}"),
                ))
            }
        }
    }
}

impl Wire for TlsWire {
    fn open(&mut self, mut tcp: &TcpStream) -> io::Result<bool> {
        self.flush(tcp)?;
        if !self.conn.is_handshaking() {
            return Ok(true);
        }
        if self.conn.read_tls(&mut tcp)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed during the handshake",
            ));
        }
        self.process(tcp)?;
        Ok(false)
    }

    fn read(&mut self, mut tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        // Bounded: each turn reads the socket once.
        for _ in 0..16 {
            match self.conn.reader().read(buf) {
                Ok(0) => {
                    self.notified = Some(true);
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The client closed without close_notify: its end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.notified = Some(false);
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut tcp)? > 0 {
                self.process(tcp)?;
                // Session tickets, key updates: best effort, the reply's
                // flush sends what is left.
                let _ = self.flush(tcp);
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn write(&mut self, tcp: &TcpStream, buf: &[u8]) -> io::Result<usize> {
        // What waits goes first: nothing is taken while the socket is full.
        self.flush(tcp)?;
        let n = self.conn.writer().write(&buf[..buf.len().min(RECORD)])?;
        match self.flush(tcp) {
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(e)
            }
            _ => Ok(n),
        }
    }

    fn flush(&mut self, mut tcp: &TcpStream) -> io::Result<()> {
        // Bounded: each round moves ciphertext to the socket, or returns.
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    fn peer_notified(&self) -> Option<bool> {
        self.notified
    }

    fn fatal_alert(&mut self) -> Result<(), String> {
        // rustls sends fatal alerts only on errors, so it is given one: an
        // application-data record that cannot be decrypted, which it
        // answers with an encrypted `bad_record_mac` (RFC 8446 section 5.2).
        let mut forged: &[u8] = &[
            0x17, 0x03, 0x03, 0x00, 0x20, // application data, 32 bytes
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        self.conn
            .read_tls(&mut forged)
            .map_err(|e| format!("the session refused the forged record: {e}"))?;
        match self.conn.process_new_packets() {
            Err(rustls::Error::DecryptError) => Ok(()),
            Err(e) => Err(format!("the forged record gave {e}, not a decrypt error")),
            Ok(_) => Err("the session took the forged record".into()),
        }
    }
}

/// Plain TCP after the client's first TLS record, which it reads whole.
#[derive(Default)]
struct AfterClientHello {
    /// What was read: the record until it is whole, then only the bytes
    /// that came after it.
    got: Vec<u8>,
}

impl Wire for AfterClientHello {
    fn open(&mut self, mut tcp: &TcpStream) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF inside the ClientHello: {}", escape(&self.got)),
            ));
        }
        self.got.extend_from_slice(&chunk[..n]);
        if self.got.len() < 5 {
            return Ok(false);
        }
        // A handshake record (RFC 8446 section 5.1): type 22, version
        // 0x03xx, a length.
        if self.got[0] != 0x16 || self.got[1] != 0x03 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a TLS handshake record: {}", escape(&self.got)),
            ));
        }
        let end = 5 + usize::from(u16::from_be_bytes([self.got[3], self.got[4]]));
        if self.got.len() < end {
            return Ok(false);
        }
        self.got.drain(..end);
        Ok(true)
    }

    fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        if self.got.is_empty() {
            return Plain.read(tcp, buf);
        }
        let n = buf.len().min(self.got.len());
        buf[..n].copy_from_slice(&self.got[..n]);
        self.got.drain(..n);
        Ok(n)
    }

    fn write(&mut self, tcp: &TcpStream, buf: &[u8]) -> io::Result<usize> {
        Plain.write(tcp, buf)
    }

    fn flush(&mut self, _tcp: &TcpStream) -> io::Result<()> {
        Ok(())
    }
}
