//! One TLS session and its ciphertext buffers: ciphertext in (from the
//! socket, or from the session it runs inside), plaintext out; plaintext
//! sealed into ciphertext for the socket (or for the session outside).
//! [`TlsLink`](super::TlsLink) stacks one or two of them on a connection.

use std::io::{BufRead, IoSlice, Write};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use roundtrip_proto::trace::TlsInfo;
use rustls::client::ClientConnection;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, HandshakeKind};

use super::{Peer, TlsError};

/// Most plaintext sealed at once: the ciphertext buffer stays bounded
/// whatever the size of an in-memory request body.
const SEAL_MAX: usize = 64 * 1024;
/// What an idle connection's ciphertext buffers may keep.
const IDLE_KEEP: usize = 4 * 1024;

/// One TLS session and its ciphertext buffers.
pub(crate) struct Session {
    conn: ClientConnection,
    /// The name certificates are checked against, for errors.
    host: String,
    /// Whom it is with.
    peer: Peer,
    /// Ciphertext read from the socket, not yet given to rustls.
    pub(crate) wire_in: BytesMut,
    /// Ciphertext for the socket; `wire_sent` of it went out.
    wire_out: Vec<u8>,
    wire_sent: usize,
    /// Plaintext sealed into `wire_out[app_start..app_end]`,
    /// and how much of it was reported written (the socket took its
    /// ciphertext).
    sealed: usize,
    reported: usize,
    app_start: usize,
    app_end: usize,
    /// The server sent `close_notify`.
    closed: bool,
    /// A TLS error ended the session (rustls queued its fatal alert, or
    /// the peer sent one): no `close_notify` follows.
    broken: bool,
    /// `close_notify` was queued.
    said_goodbye: bool,
    /// Some ciphertext went to rustls: what follows is the middle of a
    /// TLS stream, no longer where a plaintext answer would start.
    fed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A client session with `peer` at `host` (an IP address gets no SNI).
    pub(crate) fn new(
        config: Arc<ClientConfig>,
        host: &str,
        peer: Peer,
    ) -> Result<Session, TlsError> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| TlsError::Config {
            detail: format!("{host:?} is not a name a certificate can hold: {e}"),
        })?;
        let conn = ClientConnection::new(config, name).map_err(|e| map_error(e, host))?;
        Ok(Session {
            conn,
            host: host.to_string(),
            peer,
            wire_in: BytesMut::new(),
            wire_out: Vec::new(),
            wire_sent: 0,
            sealed: 0,
            reported: 0,
            app_start: 0,
            app_end: 0,
            closed: false,
            broken: false,
            said_goodbye: false,
            fed: false,
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// What the handshake agreed on.
    pub(crate) fn info(&self) -> TlsInfo {
        let version = self.conn.protocol_version().and_then(|v| v.as_str());
        let cipher = self.conn.negotiated_cipher_suite();
        TlsInfo {
            version: version.unwrap_or("unknown"),
            cipher: cipher.and_then(|c| c.suite().as_str()).unwrap_or("unknown"),
            alpn: match self.conn.alpn_protocol() {
                Some(b"http/1.1") => Some("http/1.1"),
                Some(_) => Some("other"),
                None => None,
            },
            resumed: self.conn.handshake_kind() == Some(HandshakeKind::Resumed),
        }
    }

    /// Whom the session is with.
    pub(crate) fn peer(&self) -> Peer {
        self.peer
    }

    /// Moves what rustls has for the socket into `wire_out`.
    fn flush(&mut self) {
        // Bounded: each round takes bytes out of rustls (a `Vec` takes all).
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.wire_out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Ciphertext waiting for the socket (handshake records, sealed
    /// requests), after sealing the next part of the plaintext `src`
    /// (what is still to write, front first) when the last part went out.
    pub(crate) fn seal(&mut self, src: &[IoSlice<'_>]) {
        self.flush();
        let empty = src.iter().all(|s| s.is_empty());
        if self.sealed > 0 || empty || self.conn.is_handshaking() {
            return;
        }
        self.app_start = self.wire_out.len();
        // The pieces (a head, a body, a chunk's framing) sealed together:
        // records filled across them, not one record (and one AEAD seal)
        // per piece.
        let mut parts = [IoSlice::new(&[]); 3];
        let (mut n, mut budget) = (0, SEAL_MAX);
        for slice in src.iter().filter(|s| !s.is_empty()) {
            if n == parts.len() || budget == 0 {
                break;
            }
            let take = slice.len().min(budget);
            parts[n] = IoSlice::new(&slice[..take]);
            (n, budget) = (n + 1, budget - take);
        }
        // Writes to an established session are accepted whole (up to
        // rustls's buffer limit, which `SEAL_MAX` stays under). A session
        // that refuses (past its record limit, having queued its own
        // `close_notify`) seals nothing more, and says no goodbye of ours.
        match self.conn.writer().write_vectored(&parts[..n]) {
            Ok(sealed) => self.sealed = sealed,
            Err(_) => self.broken = true,
        }
        self.reported = 0;
        self.flush();
        self.app_end = self.wire_out.len();
    }

    /// The server sent `close_notify`.
    pub(crate) fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Plaintext sealed by the last [`seal`](Self::seal) whose ciphertext
    /// has not all gone out yet.
    pub(crate) fn sealed(&self) -> usize {
        self.sealed
    }

    /// True when ciphertext waits for the socket.
    pub(crate) fn has_output(&self) -> bool {
        self.wire_sent < self.wire_out.len()
    }

    /// The ciphertext still to write.
    pub(crate) fn wire_out(&self) -> IoSlice<'_> {
        IoSlice::new(self.wire_out_bytes())
    }

    /// The ciphertext still to write, as bytes.
    pub(crate) fn wire_out_bytes(&self) -> &[u8] {
        &self.wire_out[self.wire_sent..]
    }

    /// The socket took `n` bytes of ciphertext: how many bytes of sealed
    /// plaintext that completes. A record cut by the socket counts in
    /// proportion, never whole, until all of it went out.
    pub(crate) fn written(&mut self, n: usize) -> usize {
        self.wire_sent = (self.wire_sent + n).min(self.wire_out.len());
        let done = if self.wire_sent >= self.app_end {
            self.sealed
        } else if self.wire_sent <= self.app_start {
            0
        } else {
            let part = (self.wire_sent - self.app_start) as u128;
            let whole = (self.app_end - self.app_start) as u128;
            ((self.sealed as u128 * part / whole) as usize).min(self.sealed.saturating_sub(1))
        };
        let plain = done.saturating_sub(self.reported);
        self.reported = self.reported.max(done);
        if self.wire_sent == self.wire_out.len() {
            self.wire_out.clear();
            self.wire_sent = 0;
            self.app_start = 0;
            self.app_end = 0;
            self.sealed = 0;
            self.reported = 0;
        }
        plain
    }

    /// Gives rustls the ciphertext in `wire_in` and appends the plaintext
    /// it yields to `read_buf` (the core's, or the ciphertext buffer of
    /// the session inside); `true` once the server sent `close_notify`
    /// (nothing more will come).
    pub(crate) fn open(&mut self, read_buf: &mut BytesMut) -> Result<bool, TlsError> {
        // Only the first bytes the server sends can be a plaintext answer:
        // later reads start anywhere in a record (Go, too, looks at the
        // first record header only).
        if !self.fed {
            if self.wire_in.starts_with(b"HTTP/") {
                return Err(TlsError::PlaintextHttp);
            }
            // The start of a plaintext answer, cut short: no record starts
            // with `H`, so wait for the five bytes that tell (rustls would
            // call them a corrupt record).
            let cut = self.wire_in.len() < 5 && b"HTTP/".starts_with(&self.wire_in);
            if !self.wire_in.is_empty() && cut {
                return Ok(false);
            }
            self.fed = !self.wire_in.is_empty();
        }
        // Bounded: each round hands rustls at least one byte, or stops.
        while !self.wire_in.is_empty() && !self.closed {
            let mut src: &[u8] = &self.wire_in;
            let took = self
                .conn
                .read_tls(&mut src)
                .map_err(|e| TlsError::Protocol {
                    detail: e.to_string(),
                })?;
            self.wire_in.advance(took);
            if let Err(e) = self.process(read_buf) {
                // rustls queued its alert (unknown_ca, bad_record_mac, ...):
                // it goes out before the connection is closed.
                self.flush();
                self.broken = true;
                return Err(e);
            }
            if took == 0 {
                break;
            }
        }
        self.flush(); // alerts, key updates, the client's handshake flight
        Ok(self.closed)
    }

    /// The socket reached its end: tells rustls, and says whether the
    /// server closed cleanly (with `close_notify`).
    pub(crate) fn eof(&mut self, read_buf: &mut BytesMut) -> Result<bool, TlsError> {
        if !self.closed {
            let mut nothing: &[u8] = &[];
            let _ = self.conn.read_tls(&mut nothing); // marks the end
            self.process(read_buf)?;
        }
        Ok(self.closed)
    }

    /// Queues `close_notify` (RFC 8446 section 6.1: each side sends one
    /// before it closes its write side), once, on a session whose
    /// handshake ended and that no error ended. The caller sees to it that
    /// no record is partly written (the alert must follow whole records).
    pub(crate) fn close_notify(&mut self) {
        if self.broken || self.said_goodbye || self.conn.is_handshaking() {
            return;
        }
        self.said_goodbye = true;
        self.conn.send_close_notify();
        self.flush();
    }

    /// Decrypts what rustls holds, moving the plaintext to `read_buf`.
    fn process(&mut self, read_buf: &mut BytesMut) -> Result<(), TlsError> {
        let state = self.conn.process_new_packets().map_err(|e| {
            self.broken = true;
            map_error(e, &self.host)
        })?;
        let mut reader = self.conn.reader();
        // Bounded by what rustls holds.
        loop {
            match reader.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => {
                    let n = chunk.len();
                    read_buf.extend_from_slice(chunk);
                    reader.consume(n);
                }
                Err(_) => break, // no more now (or an unclean end, judged by the caller)
            }
        }
        self.closed |= state.peer_has_closed();
        Ok(())
    }

    /// Before the connection goes idle: gives back buffer memory.
    pub(crate) fn shrink_for_idle(&mut self) {
        // Read from, the buffer's `capacity()` is only the unused tail of
        // its allocation; what it can reclaim without allocating is all of it.
        // Kept up to the plaintext buffer's idle size, so that keep-alive
        // requests of small responses reuse it instead of allocating.
        if self.wire_in.is_empty() && self.wire_in.try_reclaim(crate::buf::READ_BUF_IDLE + 1) {
            self.wire_in = BytesMut::new();
        }
        if !self.has_output() {
            self.wire_out.clear();
            self.wire_sent = 0;
            self.wire_out.shrink_to(IDLE_KEEP);
        }
        // rustls shrinks its record buffer (grown to 32 KiB by a large
        // body) only when a read finds it empty: a read that gets nothing
        // lets it, without touching the session.
        let _ = self.conn.read_tls(&mut NothingYet);
    }
}

/// A reader with nothing to give yet.
struct NothingYet;

impl std::io::Read for NothingYet {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

/// A name a certificate holds, as webpki gives it (`DnsName("x")`,
/// `IpAddress(..)`, written with `{:?}`), plainly: the name alone, any
/// byte that is not printable ASCII escaped (the name is the server's:
/// it must not write control sequences to a terminal).
fn presented_name(name: &str) -> String {
    let inner = [("DnsName(\"", "\")"), ("IpAddress(", ")")]
        .iter()
        .find_map(|(open, close)| name.strip_prefix(open)?.strip_suffix(close))
        .unwrap_or(name);
    inner.escape_default().to_string()
}

/// What is wrong with a certificate, in words: rustls and webpki write
/// most of their reasons as Rust's debug form (`Other(OtherError(
/// CaUsedAsEndEntity))`).
fn certificate_detail(error: CertificateError) -> String {
    let text = rustls::Error::InvalidCertificate(error).to_string();
    let known = [
        (
            "CaUsedAsEndEntity",
            "the server presented a CA certificate (basicConstraints CA:TRUE) as its own; \
             serve a certificate issued by that CA instead",
        ),
        (
            "EndEntityUsedAsCa",
            "a certificate that is not a CA issued another one in the chain",
        ),
        ("BadSignature", "a signature in the chain does not verify"),
        ("Revoked", "the certificate is revoked"),
        ("BadEncoding", "the certificate is malformed"),
        (
            "UnsupportedSignatureAlgorithm",
            "the chain is signed with an algorithm this client does not accept",
        ),
        (
            "InvalidPurpose",
            "the certificate is not for server authentication (extended key usage)",
        ),
    ];
    match known.iter().find(|(name, _)| text.contains(name)) {
        Some((_, words)) => (*words).to_string(),
        None => text,
    }
}

/// A rustls error as the client reports it.
pub(crate) fn map_error(e: rustls::Error, host: &str) -> TlsError {
    let host = host.to_string();
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsError::NotTrusted { host },
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsError::Expired {
                host,
                detail: rustls::Error::InvalidCertificate(cert).to_string(),
            },
            CertificateError::NotValidForName => TlsError::WrongName {
                host,
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext { presented, .. } => TlsError::WrongName {
                host,
                presented: presented.iter().map(|name| presented_name(name)).collect(),
            },
            other => TlsError::BadCertificate {
                host,
                detail: certificate_detail(other),
            },
        },
        rustls::Error::AlertReceived(alert) => TlsError::Alert {
            alert: format!("{alert:?}"),
        },
        rustls::Error::PeerIncompatible(why) => TlsError::Incompatible {
            detail: format!("{why:?}"),
        },
        other => TlsError::Protocol {
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_plain_and_escaped() {
        assert_eq!(presented_name("DnsName(\"other.test\")"), "other.test");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(presented_name("DnsName(\"a\u{1b}[2Jb\")"), "a\\u{1b}[2Jb");
        assert_eq!(
            presented_name("UniformResourceIdentifier(\"u\")"),
            "UniformResourceIdentifier(\\\"u\\\")"
        );
    }

    /// Only the server's first bytes are sniffed for a plaintext answer:
    /// once ciphertext went to rustls, a read that starts with `HTTP/` or a
    /// prefix of it (anywhere in a record) goes to rustls too, instead of
    /// being named plaintext or held back (which stalled a handshake whose
    /// last read ended so).
    #[test]
    fn only_the_first_bytes_are_sniffed_for_plaintext() {
        let config = crate::tls::settings::client_config(&Default::default()).unwrap();
        let mut read_buf = BytesMut::new();
        let mut first = Session::new(config.clone(), "localhost", Peer::Origin).unwrap();
        first
            .wire_in
            .extend_from_slice(b"HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(first.open(&mut read_buf), Err(TlsError::PlaintextHttp));
        let mut held = Session::new(config.clone(), "localhost", Peer::Origin).unwrap();
        held.wire_in.extend_from_slice(b"HT");
        assert_eq!(held.open(&mut read_buf), Ok(false));
        assert_eq!(
            &held.wire_in[..],
            b"HT",
            "the start of a plaintext answer waits"
        );
        // A handshake record's first bytes, then a read that starts like
        // plaintext: all of it is rustls's now.
        let mut later = Session::new(config, "localhost", Peer::Origin).unwrap();
        later.wire_in.extend_from_slice(&[0x16, 0x03, 0x03]);
        assert_eq!(later.open(&mut read_buf), Ok(false));
        later.wire_in.extend_from_slice(b"H");
        assert_eq!(later.open(&mut read_buf), Ok(false));
        assert!(later.wire_in.is_empty(), "not held back");
    }

    #[test]
    fn certificate_reasons_are_words() {
        let ca = CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
            webpki_error_stub::CaUsedAsEndEntity,
        )));
        let detail = certificate_detail(ca);
        assert!(
            detail.starts_with("the server presented a CA certificate"),
            "{detail}"
        );
    }
}

/// A stand-in for webpki's error in the test above: what rustls prints of
/// it is its debug name.
#[cfg(test)]
mod webpki_error_stub {
    #[derive(Debug)]
    pub struct CaUsedAsEndEntity;
    impl std::fmt::Display for CaUsedAsEndEntity {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }
    impl std::error::Error for CaUsedAsEndEntity {}
}
