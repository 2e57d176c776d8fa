//! `roundtrip get` over https, run as a real process against the tests'
//! scripted TLS server (certificates made at run time): `--cacert`, `-k`,
//! `--cert`/`--key`, the handshake in `-v`, an `https://` proxy (`-x`), on
//! every backend. Loopback only.

use std::path::Path;
use std::process::Command;

use roundtrip_tests::certs::pki;
use roundtrip_tests::proxy_peers::RelayProxy;
use roundtrip_tests::server::{ScriptServer, Step, ok};
use roundtrip_tests::tls_server::TlsServer;

/// Every backend's name for `--backend`.
const BACKENDS: [&str; 4] = ["blocking", "mio", "tokio", "smol"];

/// What a run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn get(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .arg("get")
        .args(args)
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("the roundtrip binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A TLS server answering every connection's one request with `body`.
fn serving(server: TlsServer, body: &'static [u8]) -> ScriptServer {
    server
        .start(vec![vec![
            Step::ReadRequest,
            Step::Write(ok(body)),
            Step::Close,
        ]])
        .repeat_last(true)
}

/// The test PKI's files in a fresh temp dir: `ca.pem`, `client.crt`,
/// `client.key`, `client.pem` (both in one).
fn pki_files() -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    let pki = pki();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca).expect("write the CA");
    pki.client.write(dir.path(), "client");
    let both = format!("{}{}", pki.client.cert, pki.client.key);
    std::fs::write(dir.path().join("client.pem"), both).expect("write the client PEM");
    dir
}

mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory removed on drop.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("roundtrip-cli-tls-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).expect("make a temp dir");
            Dir(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn https_with_cacert_on_every_backend() {
    let dir = pki_files();
    let server = serving(TlsServer::new(), b"over tls\n");
    let ca = path(dir.path(), "ca.pem");
    for backend in BACKENDS {
        let run = get(&["--backend", backend, "--cacert", &ca, &server.url("/a")]);
        assert_eq!(run.code, Some(0), "{backend}: {}", run.stderr);
        assert_eq!(run.stdout, "over tls\n", "{backend}");
    }
    assert_eq!(server.requests().len(), 4);
    server.assert_no_errors();
}

#[test]
fn untrusted_without_cacert_and_accepted_with_insecure() {
    let server = serving(TlsServer::new().cert(&pki().self_signed), b"insecure\n");
    for backend in BACKENDS {
        let run = get(&["--backend", backend, &server.url("/")]);
        assert_eq!(run.code, Some(60), "{backend}: {}", run.stderr);
        assert!(
            run.stderr.contains("tls failed during the tls handshake")
                && run.stderr.contains("is not trusted"),
            "{backend}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
        let run = get(&["--backend", backend, "-k", &server.url("/")]);
        assert_eq!(run.code, Some(0), "{backend}: {}", run.stderr);
        assert_eq!(run.stdout, "insecure\n");
    }
    // Only the -k runs sent a request; the others ended the handshake
    // with the alert.
    assert_eq!(server.requests().len(), 4);
    for e in server.errors() {
        let alert = e
            .to_string()
            .ends_with("at open: tls: received fatal alert: UnknownCA");
        assert!(alert, "{e}");
    }
    assert_eq!(server.errors().len(), 4);
}

#[test]
fn verbose_shows_the_handshake() {
    let dir = pki_files();
    let server = serving(TlsServer::new(), b"v\n");
    let ca = path(dir.path(), "ca.pem");
    let url = server.url("/").replace("127.0.0.1", "localhost");
    let run = get(&["-v", "--cacert", &ca, &url]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("tls handshake with localhost"),
        "{}",
        run.stderr
    );
    let done = run
        .stderr
        .lines()
        .find(|l| l.contains("tls handshake done"))
        .unwrap_or_else(|| panic!("no handshake line: {}", run.stderr));
    assert!(
        done.contains("TLSv1_3")
            && done.contains("alpn http/1.1")
            && done.contains("full handshake"),
        "{done}"
    );
}

#[test]
fn client_certificate_with_cert_and_key() {
    let dir = pki_files();
    let server = serving(TlsServer::new().require_client_cert(), b"mtls\n");
    let ca = path(dir.path(), "ca.pem");
    let (crt, key, both) = (
        path(dir.path(), "client.crt"),
        path(dir.path(), "client.key"),
        path(dir.path(), "client.pem"),
    );
    for backend in BACKENDS {
        let run = get(&[
            "--backend",
            backend,
            "--cacert",
            &ca,
            "--cert",
            &crt,
            "--key",
            &key,
            &server.url("/"),
        ]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "mtls\n"),
            "{backend}: {}",
            run.stderr
        );
    }
    // One file holding both, as curl's `-E`.
    let run = get(&["--cacert", &ca, "-E", &both, &server.url("/")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "mtls\n"),
        "{}",
        run.stderr
    );
    // Without one the server refuses: a typed TLS error, exit 35 (curl's).
    let run = get(&["--cacert", &ca, &server.url("/")]);
    assert_eq!(run.code, Some(35), "{}", run.stderr);
    assert!(run.stderr.contains("CertificateRequired"), "{}", run.stderr);
    // The server's side of it, and nothing else.
    let errors: Vec<String> = server.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(errors, ["conn 5 at open: tls: peer sent no certificates"]);
}

/// `-x https://...`: TLS to the proxy (checked with `--cacert`), the
/// `CONNECT` with the credentials inside it, the origin's TLS inside the
/// tunnel; `-v` shows both handshakes.
#[test]
fn https_through_an_https_proxy_with_x() {
    let dir = pki_files();
    let server = serving(TlsServer::new(), b"tunneled\n");
    let relay = RelayProxy::start_tls(&pki().server);
    let ca = path(dir.path(), "ca.pem");
    let proxy = format!("https://user:pw@{}", relay.addr());
    let url = server.url("/t").replace("127.0.0.1", "localhost");
    for backend in BACKENDS {
        let run = get(&["--backend", backend, "-x", &proxy, "--cacert", &ca, &url]);
        assert_eq!(run.code, Some(0), "{backend}: {}", run.stderr);
        assert_eq!(run.stdout, "tunneled\n", "{backend}");
    }
    let run = get(&["-v", "-x", &proxy, "--cacert", &ca, &url]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for name in ["127.0.0.1", "localhost"] {
        let line = format!("tls handshake with {name}");
        assert!(run.stderr.contains(&line), "{line}: {}", run.stderr);
    }
    let connects = relay.requests();
    assert_eq!(connects.len(), 5);
    for c in &connects {
        assert_eq!(c.method, "CONNECT");
        assert_eq!(c.header("proxy-authorization"), Some("Basic dXNlcjpwdw=="));
    }
    assert_eq!(server.requests().len(), 5);
    // Without --cacert the proxy's certificate is refused, naming the proxy.
    let run = get(&["-x", &proxy, &url]);
    assert_eq!(run.code, Some(60), "{}", run.stderr);
    let name = format!("proxy https://{}", relay.addr());
    assert!(
        run.stderr.contains(&name) && run.stderr.contains("is not trusted"),
        "{}",
        run.stderr
    );
    assert_eq!(relay.requests().len(), 5, "no CONNECT without trust");
}

#[test]
fn unreadable_tls_files_are_usage_errors() {
    let dir = pki_files();
    let missing = path(dir.path(), "missing.pem");
    let run = get(&["--cacert", &missing, "https://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.starts_with("roundtrip: cannot read "),
        "{}",
        run.stderr
    );
    let key_only = path(dir.path(), "client.key");
    let run = get(&["--cacert", &key_only, "https://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("no certificate"), "{}", run.stderr);
    // A --cert without a certificate: the error names that file.
    let run = get(&["--cert", &key_only, "https://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let named = format!("roundtrip: {key_only}: no certificate");
    assert!(run.stderr.starts_with(&named), "{}", run.stderr);
    // So with a good --key beside it (it named the key file before).
    let empty = path(dir.path(), "empty.pem");
    std::fs::write(&empty, "").expect("write an empty PEM");
    let run = get(&["--cert", &empty, "--key", &key_only, "https://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let named = format!("roundtrip: {empty}: no certificate");
    assert!(run.stderr.starts_with(&named), "{}", run.stderr);
    let crt = path(dir.path(), "client.crt");
    let run = get(&["--cert", &crt, "--key", &crt, "https://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!("roundtrip: {crt}: ")) && run.stderr.contains("key"),
        "the key's fault names the --key file: {}",
        run.stderr
    );
}
