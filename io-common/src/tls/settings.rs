//! The TLS settings and the rustls client configuration built from them.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::TlsError;

/// A root certificate to trust, beside (or instead of) the built-in ones.
///
/// ```
/// use roundtrip_io::tls::Certificate;
/// assert!(Certificate::from_pem(b"no PEM here").is_err());
/// assert!(Certificate::from_pem_bundle(b"").unwrap().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate(pub(crate) CertificateDer<'static>);

impl Certificate {
    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, TlsError> {
        Certificate::from_pem_bundle(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| config_error("the PEM holds no certificate"))
    }

    /// Every certificate of a PEM text (a CA bundle); none is an empty list.
    pub fn from_pem_bundle(pem: &[u8]) -> Result<Vec<Certificate>, TlsError> {
        CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(Certificate))
            .collect::<Result<_, _>>()
            .map_err(|e| config_error(format!("a certificate in the PEM is unreadable: {e}")))
    }

    /// A DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Certificate {
        Certificate(CertificateDer::from(der.to_vec()))
    }
}

/// A client certificate chain and its private key, for servers that ask
/// for one (mutual TLS).
///
/// ```
/// use roundtrip_io::tls::Identity;
/// assert!(Identity::from_pem(b"", b"").is_err());
/// ```
#[derive(Clone)]
pub struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Identity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The certificate chain (leaf first) and the private key (PKCS#8,
    /// PKCS#1 or SEC1), each as PEM text; both may be the same text.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Identity, TlsError> {
        let chain: Vec<_> = Certificate::from_pem_bundle(chain)?
            .into_iter()
            .map(|c| c.0)
            .collect();
        if chain.is_empty() {
            return Err(config_error(
                "the client certificate PEM holds no certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| config_error(format!("the client key PEM holds no usable key: {e}")))?;
        Ok(Identity {
            chain,
            key: Arc::new(key),
        })
    }
}

/// How a client speaks TLS. Defaults: the built-in Mozilla roots, no
/// extra root, no client certificate, certificates verified, a 10 s
/// handshake timeout.
///
/// ```
/// use std::time::Duration;
/// use roundtrip_io::tls::TlsConfig;
/// let tls = TlsConfig::default();
/// assert_eq!(tls.handshake_timeout, Some(Duration::from_secs(10)));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Trust the Mozilla roots compiled in (`webpki-roots`).
    pub built_in_roots: bool,
    /// Trust the operating system's roots too (feature `tls-native-roots`).
    pub native_roots: bool,
    /// Roots trusted besides those (a corporate CA, a test CA).
    pub extra_roots: Vec<Certificate>,
    /// The client certificate, for servers that require one.
    pub identity: Option<Identity>,
    /// Accept any certificate, for any name, expired or not. For tests
    /// against throwaway certificates only: anyone on the path can read
    /// and change the traffic.
    pub danger_accept_invalid_certs: bool,
    /// Longest TLS handshake (`None`: the read timeout, if set, bounds the
    /// whole handshake instead; and the request's timeout).
    pub handshake_timeout: Option<Duration>,
}

impl TlsConfig {
    /// Builds what a client would from these settings and says what is
    /// wrong, if anything (a root certificate rustls refuses, a client
    /// certificate that does not match its key, no root at all): a client
    /// reports it only at its first `https` request.
    ///
    /// ```
    /// use roundtrip_io::tls::TlsConfig;
    /// assert!(TlsConfig::default().check().is_ok());
    /// let mut none = TlsConfig::default();
    /// none.built_in_roots = false;
    /// assert!(none.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), TlsError> {
        client_config(self).map(drop)
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            built_in_roots: true,
            native_roots: false,
            extra_roots: Vec::new(),
            identity: None,
            danger_accept_invalid_certs: false,
            handshake_timeout: Some(Duration::from_secs(10)),
        }
    }
}

pub(crate) fn config_error(detail: impl Into<String>) -> TlsError {
    TlsError::Config {
        detail: detail.into(),
    }
}

/// The rustls configuration for `tls`: built once per client, and shared
/// by its connections (the session cache with it).
pub(crate) fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(e.to_string()))?;
    let builder = if tls.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    } else {
        builder.with_root_certificates(roots(tls)?)
    };
    let mut config = match &tls.identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| config_error(format!("the client certificate is unusable: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn roots(tls: &TlsConfig) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if tls.built_in_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    #[cfg(feature = "tls-native-roots")]
    if tls.native_roots {
        // Unreadable system certificates are skipped, as curl does; none
        // found and errors met is the store's failure, said (reqwest too).
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() && !found.errors.is_empty() {
            let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(config_error(format!(
                "the operating system's root certificates could not be read: {}",
                why.join("; ")
            )));
        }
        roots.add_parsable_certificates(found.certs);
    }
    // Asked for and not built in: said, not ignored (a corporate CA in
    // the system's store would otherwise show as an untrusted server).
    #[cfg(not(feature = "tls-native-roots"))]
    if tls.native_roots {
        return Err(config_error(
            "native_roots needs the feature `tls-native-roots`, which this build does not have",
        ));
    }
    for cert in &tls.extra_roots {
        roots
            .add(cert.0.clone())
            .map_err(|e| config_error(format!("a root certificate is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(config_error("no root certificate to trust"));
    }
    Ok(roots)
}

/// `danger_accept_invalid_certs`: any certificate passes; the handshake's
/// signatures are still checked, so the session keys are the server's.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(all(test, not(feature = "tls-native-roots")))]
mod tests {
    use super::*;

    #[test]
    fn native_roots_without_their_feature_are_an_error() {
        let tls = TlsConfig {
            native_roots: true,
            ..TlsConfig::default()
        };
        let err = tls.check().unwrap_err().to_string();
        assert!(err.contains("tls-native-roots"), "{err}");
    }
}
