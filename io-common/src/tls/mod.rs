//! TLS for `https://`: the settings ([`TlsConfig`], `Certificate`,
//! `Identity`), the error type ([`TlsError`]), and the byte layer a
//! connection's [`Link`](crate::exchange::Link) puts between the socket
//! and the core (rustls's `ClientConnection`, itself sans-IO).
//!
//! The exchange machine runs the handshake and the records; a driver only
//! moves ciphertext ([`Link::wire_out`](crate::exchange::Link::wire_out),
//! [`Link::wire_in`](crate::exchange::Link::wire_in)), so every backend
//! speaks TLS with the same code.
//!
//! Defaults: the Mozilla roots built in (`webpki-roots`), TLS 1.2 and 1.3,
//! ALPN `http/1.1`, SNI from the host (none for an IP address), sessions
//! resumed from an in-memory cache per client (TLS 1.3 tickets, TLS 1.2
//! session ids), crypto by aws-lc-rs.
//!
//! ```
//! use roundtrip_io::tls::{TlsConfig, TlsError};
//! let config = TlsConfig::default();
//! assert!(config.built_in_roots);
//! assert!(!config.danger_accept_invalid_certs);
//! let err = roundtrip_io::tls::Certificate::from_pem(b"not a certificate").unwrap_err();
//! assert!(matches!(err, TlsError::Config { .. }));
//! ```

#[cfg(feature = "tls")]
mod layer;
#[cfg(feature = "tls")]
mod settings;
#[cfg(feature = "tls")]
mod stack;

#[cfg(feature = "tls")]
pub(crate) use settings::client_config;
#[cfg(feature = "tls")]
pub use settings::{Certificate, Identity, TlsConfig};
#[cfg(feature = "tls")]
pub(crate) use stack::{SessionError, TlsLink};

/// Whom a TLS session is with: the origin, or an `https://` proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// The server the request is for.
    Origin,
    /// The proxy (`https://`): its session carries forwarded requests, or
    /// the `CONNECT` and then the origin's session.
    Proxy,
}

/// What went wrong in the TLS layer, for [`Error::Tls`](crate::Error::Tls),
/// or, with an `https://` proxy, for
/// [`ProxyError::Tls`](crate::proxy::ProxyError::Tls).
///
/// ```
/// use roundtrip_io::tls::TlsError;
/// let e = TlsError::WrongName { host: "example.com".into(), presented: vec!["other.test".into()] };
/// assert_eq!(e.to_string(), "the certificate is not valid for example.com: it names other.test");
/// let e = TlsError::WrongName { host: "example.com".into(), presented: vec![] };
/// assert_eq!(e.to_string(), "the certificate is not valid for example.com: it names no host");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate chain does not lead to a trusted root (an unknown
    /// issuer, or a self-signed certificate).
    #[error("the certificate of {host} is not trusted (unknown issuer or self-signed)")]
    NotTrusted {
        /// The name the certificate was checked for.
        host: String,
    },
    /// The certificate has expired (or is not valid yet).
    #[error("the certificate of {host} is out of its validity period: {detail}")]
    Expired {
        /// The name the certificate was checked for.
        host: String,
        /// When, as far as rustls says.
        detail: String,
    },
    /// The certificate does not name the host.
    #[error("the certificate is not valid for {host}: it names {}", match .presented.is_empty() { true => "no host".to_string(), false => .presented.join(", ") })]
    WrongName {
        /// The name asked for.
        host: String,
        /// The names the certificate holds (DNS names and IP addresses,
        /// non-printable bytes escaped).
        presented: Vec<String>,
    },
    /// The certificate is invalid for another reason (bad signature,
    /// wrong purpose, revoked, malformed).
    #[error("the certificate of {host} is invalid: {detail}")]
    BadCertificate {
        /// The name the certificate was checked for.
        host: String,
        /// What rustls found.
        detail: String,
    },
    /// The server ended the handshake or the connection with a fatal
    /// alert (a client certificate it requires, no common cipher, ...).
    #[error("the server sent the alert {alert}")]
    Alert {
        /// The alert's name, e.g. `HandshakeFailure`, `CertificateRequired`.
        alert: String,
    },
    /// The server and the client have no TLS version or cipher suite in
    /// common (a server that speaks only TLS 1.0 or 1.1, say).
    #[error("no TLS version or cipher suite in common with the server: {detail}")]
    Incompatible {
        /// What rustls found.
        detail: String,
    },
    /// The server answered the handshake with plaintext HTTP: the port
    /// serves `http`, not `https`.
    #[error("the server answered in plaintext HTTP on a TLS port (use http:// for it)")]
    PlaintextHttp,
    /// The server closed the connection without `close_notify` while a
    /// body that runs until the close was being read: it may have been cut
    /// (RFC 8446 section 6.1), so it is not reported complete.
    #[error("the connection closed without close_notify, cutting a body that runs until the close")]
    Truncated,
    /// The server broke the TLS protocol (a malformed or unexpected
    /// record, a failed decryption).
    #[error("tls protocol error: {detail}")]
    Protocol {
        /// What rustls found.
        detail: String,
    },
    /// The TLS settings are unusable: a PEM without a certificate, a bad
    /// private key, a client certificate that does not match its key.
    #[error("invalid TLS settings: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// An `https` URL, and the client was built without the `tls` feature.
    #[error("https needs the `tls` feature, which this build does not have")]
    Disabled,
}

/// The TLS settings of a client, when the `tls` feature is off: none.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TlsConfig {}
