//! Certificates made at test time (rcgen): a test CA and the leaves the
//! TLS tests need (good, expired, for another name, self-signed), and a
//! client CA with a client certificate for mutual TLS. Nothing is read
//! from disk or kept between runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};

/// A certificate and its private key, as PEM text.
#[derive(Clone, Debug)]
pub struct Pem {
    /// The certificate (a leaf: followed by nothing; the CA is separate).
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl Pem {
    /// The certificate as DER.
    pub fn cert_der(&self) -> rustls_pki_types::CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(self.cert.as_bytes()).expect("own PEM")
    }

    /// The key as DER.
    pub fn key_der(&self) -> rustls_pki_types::PrivateKeyDer<'static> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::PrivateKeyDer::from_pem_slice(self.key.as_bytes()).expect("own PEM")
    }

    /// Writes `name.crt` and `name.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&crt, &self.cert).expect("write certificate");
        std::fs::write(&key, &self.key).expect("write key");
        (crt, key)
    }
}

/// Every certificate the TLS tests use, made once per test process.
#[derive(Debug)]
pub struct TestPki {
    /// The CA the client is told to trust (PEM certificate).
    pub ca: String,
    /// Signed by `ca`, for `localhost`, `127.0.0.1` and `::1`.
    pub server: Pem,
    /// Signed by `ca`, for the same names, expired in 2001.
    pub expired: Pem,
    /// Signed by `ca`, for `other.test` only.
    pub wrong_name: Pem,
    /// Self-signed, for `localhost` and `127.0.0.1`, signed by nobody the
    /// client trusts.
    pub self_signed: Pem,
    /// A second CA the client does not trust, which signed `untrusted`.
    pub other_ca: String,
    /// Signed by `other_ca`, for `localhost` and `127.0.0.1`.
    pub untrusted: Pem,
    /// The CA servers check client certificates against.
    pub client_ca: String,
    /// A client certificate signed by `client_ca`.
    pub client: Pem,
}

/// The names a good server certificate holds.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The test PKI, made on first use.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(make)
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key");
    CertifiedIssuer::self_signed(params, key).expect("CA")
}

fn leaf_params(names: &[&str], client: bool) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "roundtrip test");
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    params
}

fn signed(params: CertificateParams, by: &CertifiedIssuer<'static, KeyPair>) -> Pem {
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, by).expect("sign");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn make() -> TestPki {
    let ca_cert = ca("roundtrip test CA");
    let other = ca("roundtrip untrusted CA");
    let client_ca = ca("roundtrip client CA");
    let server = signed(leaf_params(&SERVER_NAMES, false), &ca_cert);
    let mut old = leaf_params(&SERVER_NAMES, false);
    old.not_before = date_time_ymd(2000, 1, 1);
    old.not_after = date_time_ymd(2001, 1, 1);
    let expired = signed(old, &ca_cert);
    let wrong_name = signed(leaf_params(&["other.test"], false), &ca_cert);
    let self_key = KeyPair::generate().expect("key");
    let self_cert = leaf_params(&SERVER_NAMES, false)
        .self_signed(&self_key)
        .expect("self-signed");
    let self_signed = Pem {
        cert: self_cert.pem(),
        key: self_key.serialize_pem(),
    };
    let untrusted = signed(leaf_params(&SERVER_NAMES, false), &other);
    let client = signed(leaf_params(&["roundtrip client"], true), &client_ca);
    TestPki {
        ca: ca_cert.pem(),
        server,
        expired,
        wrong_name,
        self_signed,
        other_ca: other.pem(),
        untrusted,
        client_ca: client_ca.pem(),
        client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pki_is_made_and_parses() {
        let pki = pki();
        assert!(pki.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let _ = pki.server.cert_der();
        let _ = pki.client.key_der();
        assert!(roundtrip_io::tls::Certificate::from_pem(pki.ca.as_bytes()).is_ok());
        assert!(
            roundtrip_io::tls::Identity::from_pem(
                pki.client.cert.as_bytes(),
                pki.client.key.as_bytes()
            )
            .is_ok()
        );
    }
}
