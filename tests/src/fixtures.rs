//! Real HTTP servers as test fixtures: nginx and Python's `http.server`, each
//! started on a free `127.0.0.1` port in its own temp dir, with a bounded
//! start-up wait (connect polled every 20 ms, up to 5 s).
//!
//! Both serve a docroot holding the same files (see [`docroot_files`]):
//! `/small` (`Hello, world!`, 13 bytes), `/64k` and `/1m` ([`pattern`] of
//! 65536 and 1048576 bytes) and `/chunked` ([`chunked_text`], 65536 bytes).
//! nginx can also listen with `ssl` beside its plain port
//! ([`Nginx::start_tls`]), with the test PKI's server certificate.
//!
//! When the binary is missing, `start` returns [`Skip`]; a test then skips
//! loudly with [`require_nginx!`](crate::require_nginx) or
//! [`require_python!`](crate::require_python), which go through
//! [`skip_loudly`] (a banner on stderr that `cargo test` shows, or a failure
//! when `ROUNDTRIP_REQUIRE_SERVERS=1`). A binary that is present but fails to
//! start is a test failure (the start function panics with its log).
//!
//! What the servers really send (nginx 1.22, Python 3.11, checked by
//! `tests/tests/infra.rs`):
//! - **nginx**: `HTTP/1.1 200 OK`, then `Server: nginx`, `Date`,
//!   `Content-Type: text/plain`, `Content-Length`, `Last-Modified`,
//!   `Connection: keep-alive`, `ETag`, `Accept-Ranges: bytes`, in that order. The 100th response on one
//!   connection carries `Connection: close` and nginx closes
//!   (`keepalive_requests 100`). `/chunked` with `Accept-Encoding: gzip`
//!   answers `Transfer-Encoding: chunked` + `Content-Encoding: gzip`;
//!   `/chunked-plain` (when nginx has `ngx_http_sub_module`) answers the same
//!   text chunked and uncompressed, whatever the request says.
//! - **`http.server`** (`--protocol HTTP/1.0`): `HTTP/1.0 200 OK`, then
//!   `Server: SimpleHTTP/0.6 Python/3.x`, `Date`, `Content-type:
//!   application/octet-stream` (the files have no extension),
//!   `Content-Length`, `Last-Modified`, in that order; no `Connection` header; it closes the connection after
//!   every response, even when the request asks for keep-alive. Bodies are
//!   thus length-delimited, not close-delimited.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How often start-up polls the server's port.
pub const STARTUP_POLL: Duration = Duration::from_millis(20);

/// How long start-up waits for the server's port to accept connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How many ports start-up tries when the chosen one is taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

/// The nginx config template; see `tests/nginx/nginx.conf.in`.
pub const NGINX_CONF_TEMPLATE: &str = include_str!("../nginx/nginx.conf.in");

/// Why a fixture cannot run here (its binary is not installed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The environment variable that turns every skip into a failure: set to
/// `1` (as `.ci/run` does), a real-server test whose server is missing
/// panics with the reason instead of passing.
pub const REQUIRE_SERVERS: &str = "ROUNDTRIP_REQUIRE_SERVERS";

/// The one way a real-server test skips (all of it, or a part): writes an
/// unmissable `SKIPPED: {reason}` banner, naming the test, straight to the
/// process's stderr, where libtest's capture (which only takes the
/// `print!`/`eprint!` family) cannot hide it. The caller then returns from
/// the test, or goes on without the part.
///
/// With [`REQUIRE_SERVERS`]`=1` it panics with the reason instead.
pub fn skip_loudly(reason: &str) {
    use std::io::Write;
    let test = thread::current().name().unwrap_or("?").to_string();
    if std::env::var_os(REQUIRE_SERVERS).is_some_and(|v| v == "1") {
        panic!("{REQUIRE_SERVERS}=1, but {test} would skip: {reason}");
    }
    let bar = "!".repeat(72);
    let text = format!("\n{bar}\n!!! SKIPPED {test}: {reason}\n{bar}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Starts an [`Nginx`](crate::fixtures::Nginx) fixture, or skips the test
/// loudly (and returns from it) when nginx is not installed;
/// `require_nginx!(tls)` starts it with its https listeners
/// ([`Nginx::start_tls`](crate::fixtures::Nginx::start_tls)).
#[macro_export]
macro_rules! require_nginx {
    () => {
        $crate::require_nginx!(@start start)
    };
    (tls) => {
        $crate::require_nginx!(@start start_tls)
    };
    (@start $start:ident) => {
        match $crate::fixtures::Nginx::$start() {
            Ok(server) => server,
            Err(skip) => {
                $crate::fixtures::skip_loudly(&skip.0);
                return;
            }
        }
    };
}

/// Starts a [`PyHttpServer`](crate::fixtures::PyHttpServer) fixture, or skips
/// the test loudly (and returns from it) when python3 is not installed.
#[macro_export]
macro_rules! require_python {
    () => {
        match $crate::fixtures::PyHttpServer::start() {
            Ok(server) => server,
            Err(skip) => {
                $crate::fixtures::skip_loudly(&skip.0);
                return;
            }
        }
    };
}

/// A deterministic, position-dependent byte pattern: byte `i` is `i % 251`
/// (a prime, so a shifted or repeated buffer shows).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The text of `/chunked`: 65536 bytes of numbered lines
/// (`line 00000 of roundtrip test text\n`, ...), truncated to length.
pub fn chunked_text() -> Vec<u8> {
    let mut out = Vec::with_capacity(65536 + 64);
    for i in 0..10_000 {
        if out.len() >= 65536 {
            break;
        }
        out.extend_from_slice(format!("line {i:05} of roundtrip test text\n").as_bytes());
    }
    out.truncate(65536);
    out
}

/// The docroot every fixture serves, as (name, contents).
pub fn docroot_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("small", b"Hello, world!".to_vec()),
        ("64k", pattern(64 * 1024)),
        ("1m", pattern(1024 * 1024)),
        ("chunked", chunked_text()),
    ]
}

/// Finds an executable: `$env_var` if set (`None` if that is not an
/// executable file), else `name` on `PATH`, else the
/// first existing of `fallbacks`.
fn find_binary(env_var: &str, name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A directory removed (with its contents) on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Creates `temp_dir()/roundtrip-{kind}-{pid}-{n}` afresh, with the docroot in
/// `www/`.
fn make_temp_dir(kind: &str) -> TempDir {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("roundtrip-{kind}-{}-{n}", std::process::id()));
    // A leftover from an earlier process with the same pid.
    let _ = fs::remove_dir_all(&dir);
    let guard = TempDir(dir.clone());
    let www = dir.join("www");
    fs::create_dir_all(&www).unwrap_or_else(|e| panic!("create {}: {e}", www.display()));
    for (name, contents) in docroot_files() {
        let path = www.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    guard
}

/// A port that was free a moment ago: bind `127.0.0.1:0`, read, release.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    l.local_addr()
        .expect("local_addr of the probe listener")
        .port()
}

/// Whether process `pid` holds the socket listening on loopback `port`:
/// `None` where `/proc` cannot tell (not Linux).
fn listens_on(pid: u32, port: u16) -> Option<bool> {
    // /proc/net/tcp{,6}: `local_address` `0100007F:1F90`, state `0A`
    // (LISTEN), the socket's inode in the tenth column.
    let mut inodes = Vec::new();
    let mut read_any = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        read_any = true;
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some((_, hex_port)) = cols.get(1).and_then(|a| a.rsplit_once(':')) else {
                continue;
            };
            if cols.get(3) == Some(&"0A") && u16::from_str_radix(hex_port, 16) == Ok(port) {
                inodes.extend(cols.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    if !read_any {
        return None;
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    if inodes.is_empty() {
        return Some(false);
    }
    Some(fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    }))
}

fn read_lossy(path: &Path) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// A spawned server process with its temp dir; killed, then the dir
/// removed, on drop.
struct Running {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL; the fixtures run single-process, so nothing is left over.
        // The dir goes after this, when the fields drop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a start attempt ended.
enum Attempt {
    Up(Child),
    PortTaken,
}

/// Spawns `cmd` (stdout and stderr to `log`) and waits until `addr` accepts
/// connections. Panics with the log when the process dies or stays silent.
fn spawn_and_wait(mut cmd: Command, addr: SocketAddr, log: &Path, what: &str) -> Attempt {
    let out = fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().expect("clone the log file handle");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    // When a listener not the child's was first seen on the port.
    let mut foreign: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let text = read_lossy(log);
                if text.contains("Address already in use") {
                    return Attempt::PortTaken;
                }
                panic!("{what} exited during start-up ({status}); its output:\n{text}");
            }
            Ok(None) => {}
            Err(e) => panic!("waiting on {what}: {e}"),
        }
        if TcpStream::connect_timeout(&addr, STARTUP_POLL).is_ok() {
            // Connected; make sure it is our process that answered: alive,
            // and not retrying a bind that another process's listener on
            // the same port refused (nginx retries for 2 s, logging it).
            thread::sleep(Duration::from_millis(20));
            if read_lossy(log).contains("Address already in use") {
                let _ = child.kill();
                let _ = child.wait();
                return Attempt::PortTaken;
            }
            // The listening socket is the child's own (where /proc tells):
            // another listener that took the port meanwhile answers the
            // connect too, before the child fails its bind.
            match listens_on(child.id(), addr.port()) {
                // Someone else's listener, for a second now: the port is
                // taken (a child that never binds would wait out the
                // deadline otherwise).
                Some(false) => {
                    let since = *foreign.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Attempt::PortTaken;
                    }
                }
                Some(true) | None => {
                    if let Ok(None) = child.try_wait() {
                        return Attempt::Up(child);
                    }
                }
            }
            if Instant::now() < deadline {
                thread::sleep(STARTUP_POLL);
                continue;
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not accept on {addr} within {STARTUP_TIMEOUT:?}; its output:\n{}",
                read_lossy(log)
            );
        }
        thread::sleep(STARTUP_POLL);
    }
}

/// nginx on a free loopback port, serving the fixture docroot (see the
/// module docs and `tests/nginx/nginx.conf.in`). Dropping it kills nginx and
/// removes its temp dir.
///
/// Started with [`Nginx::start_tls`] it also listens with `ssl` on two more
/// loopback ports (see `tests/nginx/tls-server.conf.in`): [`https_url`]
/// (TLS 1.2 and 1.3) and [`https12_url`] (TLS 1.2 only), with the test
/// PKI's `server` certificate ([`crate::certs::pki`]), session tickets and
/// a session cache, the docroot, `/chunked` (gzip when asked),
/// `/chunked-plain` (chunked, never compressed), `/echo` (answers `200`
/// with the request body) and `/sni` (answers the SNI name received). The
/// plain listener then redirects `/to-https/PATH` (`301`) to
/// `https://127.0.0.1:TLS_PORT/PATH`, and serves nginx's counters at
/// `/status` when nginx has `ngx_http_stub_status_module`.
///
/// [`https_url`]: Nginx::https_url
/// [`https12_url`]: Nginx::https12_url
pub struct Nginx {
    run: Running,
    sub_filter: bool,
    tls: Option<TlsPorts>,
}

/// The https listeners of an [`Nginx`] started with TLS.
#[derive(Clone, Copy, Debug)]
struct TlsPorts {
    /// TLS 1.2 and 1.3.
    both: SocketAddr,
    /// TLS 1.2 only.
    v12: SocketAddr,
    /// Whether the plain listener serves `/status` (`stub_status`).
    status: bool,
}

/// The https server block, written once per TLS listener.
const NGINX_TLS_SERVER_TEMPLATE: &str = include_str!("../nginx/tls-server.conf.in");

impl Nginx {
    /// Finds nginx (`$ROUNDTRIP_NGINX`, `PATH`, `/usr/sbin/nginx`), writes its
    /// config and docroot to a fresh temp dir and starts it in the foreground.
    /// Returns [`Skip`] when nginx is not installed; panics (with nginx's
    /// output) when it is but does not come up within [`STARTUP_TIMEOUT`].
    pub fn start() -> Result<Nginx, Skip> {
        Nginx::launch(false, false)
    }

    /// [`Nginx::start`] for a benchmark: connections kept for a million
    /// requests (not 100, so no client redials inside a timed run), no
    /// access log, warnings only in the error log (less of nginx's work on
    /// the CPU it shares with the client).
    pub fn start_for_bench() -> Result<Nginx, Skip> {
        Nginx::launch(false, true)
    }

    /// [`Nginx::start`] with the https listeners too (see [`Nginx`]).
    /// Returns [`Skip`] when nginx is not installed or lacks
    /// `ngx_http_ssl_module`.
    pub fn start_tls() -> Result<Nginx, Skip> {
        Nginx::launch(true, false)
    }

    fn launch(tls: bool, bench: bool) -> Result<Nginx, Skip> {
        let bin = find_binary(
            "ROUNDTRIP_NGINX",
            "nginx",
            &[
                "/usr/sbin/nginx",
                "/usr/local/sbin/nginx",
                "/usr/local/nginx/sbin/nginx",
            ],
        )
        .ok_or_else(|| Skip("nginx not installed (apt-get install nginx)".into()))?;
        let modules = Command::new(&bin)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        let sub_filter = modules.contains("http_sub_module");
        if tls && !modules.contains("http_ssl_module") {
            return Err(Skip("nginx was built without ngx_http_ssl_module".into()));
        }
        let status = tls && modules.contains("http_stub_status_module");
        let temp = make_temp_dir("nginx");
        let dir = temp.0.clone();
        fs::create_dir_all(dir.join("tmp")).expect("create the nginx tmp dir");
        if tls {
            crate::certs::pki().server.write(&dir, "server");
        }
        let dir_str = dir.to_str().expect("temp dir path is UTF-8");
        let sub_location = if sub_filter {
            "        # The /chunked text through a no-op sub_filter: nginx drops\n\
             \x20       # Content-Length and answers chunked, uncompressed.\n\
             \x20       location = /chunked-plain {\n\
             \x20           alias @DIR@/www/chunked;\n\
             \x20           sub_filter 'roundtrip-no-match' 'roundtrip-no-match';\n\
             \x20           sub_filter_once off;\n\
             \x20           sub_filter_types text/plain;\n\
             \x20       }\n"
        } else {
            ""
        };
        let status_location = if status {
            "        location = /status {\n            stub_status;\n        }\n"
        } else {
            ""
        };
        let (plain_tls, tls_servers) = if tls {
            let server = |port: &str, protocols: &str| {
                NGINX_TLS_SERVER_TEMPLATE
                    .replace("@TLS_PORT@", port)
                    .replace("@TLS_PROTOCOLS@", protocols)
            };
            (
                "        # To the https listener, path kept.\n\
                 \x20       location /to-https/ {\n\
                 \x20           rewrite ^/to-https(/.*)$ https://127.0.0.1:@TLS_PORT@$1 permanent;\n\
                 \x20       }\n"
                    .to_string(),
                server("@TLS_PORT@", "TLSv1.2 TLSv1.3") + &server("@TLS12_PORT@", "TLSv1.2"),
            )
        } else {
            (String::new(), String::new())
        };
        for _ in 0..PORT_ATTEMPTS {
            let [port, tls_port, tls12_port] = free_ports();
            let template = match bench {
                true => NGINX_CONF_TEMPLATE
                    .replace("keepalive_requests 100;", "keepalive_requests 1000000;")
                    .replace("access_log @DIR@/access.log;", "access_log off;")
                    .replace("error.log info;", "error.log warn;"),
                false => NGINX_CONF_TEMPLATE.to_string(),
            };
            assert!(
                !bench
                    || (template.contains("requests 1000000;")
                        && template.contains("log off;")
                        && template.contains("error.log warn;")),
                "the bench's nginx settings no longer match nginx.conf.in"
            );
            let conf = template
                .replace("@SUB_FILTER_LOCATION@", sub_location)
                .replace("@STATUS_LOCATION@", status_location)
                .replace("@PLAIN_TLS_LOCATIONS@", &plain_tls)
                .replace("@TLS_SERVERS@", &tls_servers)
                .replace("@DIR@", dir_str)
                .replace("@PORT@", &port.to_string())
                .replace("@TLS_PORT@", &tls_port.to_string())
                .replace("@TLS12_PORT@", &tls12_port.to_string());
            let conf_path = dir.join("nginx.conf");
            fs::write(&conf_path, conf).expect("write nginx.conf");
            let mut cmd = Command::new(&bin);
            // -p: prefix; -e: the error log before the config is read (1.19.5+).
            cmd.arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.join("error.log"));
            let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
            let addr = loopback(port);
            // nginx binds every listener before it accepts on any: once the
            // plain one answers, the https ones are up too.
            match spawn_and_wait(cmd, addr, &dir.join("output.log"), "nginx") {
                Attempt::Up(child) => {
                    return Ok(Nginx {
                        run: Running {
                            child,
                            dir: temp,
                            addr,
                        },
                        sub_filter,
                        tls: tls.then(|| TlsPorts {
                            both: loopback(tls_port),
                            v12: loopback(tls12_port),
                            status,
                        }),
                    });
                }
                Attempt::PortTaken => continue,
            }
        }
        panic!("nginx: every port tried was taken ({PORT_ATTEMPTS} attempts)");
    }

    /// The address nginx listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        url(self.run.addr, path)
    }

    fn tls_ports(&self) -> TlsPorts {
        self.tls
            .expect("an https listener: start the fixture with Nginx::start_tls")
    }

    /// The https listener (TLS 1.2 and 1.3): `127.0.0.1:TLS_PORT`. Panics
    /// unless started with [`Nginx::start_tls`].
    pub fn https_addr(&self) -> SocketAddr {
        self.tls_ports().both
    }

    /// `https://127.0.0.1:TLS_PORT` followed by `path` (TLS 1.2 and 1.3).
    /// Panics unless started with [`Nginx::start_tls`].
    pub fn https_url(&self, path: &str) -> String {
        url(self.tls_ports().both, path).replacen("http:", "https:", 1)
    }

    /// `https://127.0.0.1:TLS12_PORT` followed by `path`: the listener that
    /// speaks TLS 1.2 only. Panics unless started with [`Nginx::start_tls`].
    pub fn https12_url(&self, path: &str) -> String {
        url(self.tls_ports().v12, path).replacen("http:", "https:", 1)
    }

    /// nginx's `stub_status` counters, read over a plain connection of
    /// its own (counted in them): `None` without TLS or without the
    /// module. Panics if nginx does not answer.
    pub fn status(&self) -> Option<NginxStatus> {
        if !self.tls.is_some_and(|t| t.status) {
            return None;
        }
        Some(NginxStatus::parse(&raw_get(self.run.addr, "/status")))
    }

    /// The fixture's temp dir (config, logs, `www/` docroot).
    pub fn dir(&self) -> &Path {
        &self.run.dir.0
    }

    /// Whether `/chunked-plain` exists on the plain listener (nginx has
    /// `ngx_http_sub_module`; on the https ones it always does).
    pub fn has_chunked_plain(&self) -> bool {
        self.sub_filter
    }

    /// nginx's error log so far, for failure messages.
    pub fn error_log(&self) -> String {
        read_lossy(&self.run.dir.0.join("error.log"))
    }
}

/// nginx's `stub_status` counters ([`Nginx::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NginxStatus {
    /// Connections open now, the one that asked included.
    pub active: u64,
    /// Connections accepted since start-up, the one that asked included.
    pub accepts: u64,
    /// Requests served since start-up, this one included.
    pub requests: u64,
}

impl NginxStatus {
    /// Parses the body of `stub_status`:
    /// `Active connections: 1 \nserver accepts handled requests\n 3 3 7 \n...`.
    fn parse(text: &str) -> NginxStatus {
        let bad = || -> ! { panic!("unexpected stub_status answer: {text:?}") };
        let active = text
            .split("Active connections:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| bad());
        let counts: Vec<u64> = text
            .split("server accepts handled requests")
            .nth(1)
            .map(|rest| {
                rest.split_whitespace()
                    .take(3)
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let [accepts, _handled, requests] = counts[..] else {
            bad()
        };
        NginxStatus {
            active,
            accepts,
            requests,
        }
    }
}

/// `GET path` over a new plain connection with `Connection: close`; the
/// response as text (head and body). Panics on any failure.
fn raw_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect_timeout(&addr, STARTUP_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(STARTUP_TIMEOUT))
        .expect("set read timeout");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    String::from_utf8_lossy(&out).into_owned()
}

/// Three distinct ports that were free a moment ago.
fn free_ports() -> [u16; 3] {
    let mut ports = [free_port(), 0, 0];
    // Bounded: the kernel hands out a port in use by nobody, and two probes
    // seldom get the same one.
    for i in 1..3 {
        for _ in 0..100 {
            ports[i] = free_port();
            if !ports[..i].contains(&ports[i]) {
                break;
            }
        }
    }
    ports
}

/// `python3 -m http.server --protocol HTTP/1.0` on a free loopback port,
/// serving the fixture docroot. Dropping it kills Python and removes its temp
/// dir.
pub struct PyHttpServer {
    run: Running,
}

impl PyHttpServer {
    /// Finds python3 (`$ROUNDTRIP_PYTHON`, `PATH`, `/usr/bin/python3`) and
    /// starts `http.server` bound to 127.0.0.1. Returns [`Skip`] when python3
    /// is not installed; panics (with its output) when it does not come up
    /// within [`STARTUP_TIMEOUT`].
    pub fn start() -> Result<PyHttpServer, Skip> {
        let bin = find_binary(
            "ROUNDTRIP_PYTHON",
            "python3",
            &["/usr/bin/python3", "/usr/local/bin/python3"],
        )
        .ok_or_else(|| Skip("python3 not installed (apt-get install python3)".into()))?;
        let temp = make_temp_dir("python");
        let dir = temp.0.clone();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--protocol",
                "HTTP/1.0",
                "--directory",
            ])
            .arg(dir.join("www"))
            .arg(port.to_string());
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match spawn_and_wait(cmd, addr, &dir.join("output.log"), "python3 -m http.server") {
                Attempt::Up(child) => {
                    return Ok(PyHttpServer {
                        run: Running {
                            child,
                            dir: temp,
                            addr,
                        },
                    });
                }
                Attempt::PortTaken => continue,
            }
        }
        panic!("python3 http.server: every port tried was taken ({PORT_ATTEMPTS} attempts)");
    }

    /// The address the server listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        url(self.run.addr, path)
    }

    /// The fixture's temp dir (log, `www/` docroot).
    pub fn dir(&self) -> &Path {
        &self.run.dir.0
    }

    /// The server's output so far (one log line per request).
    pub fn log(&self) -> String {
        read_lossy(&self.run.dir.0.join("output.log"))
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{path}")
}

// ---------------------------------------------------------------------------
// Proxies: squid (HTTP forward proxy and CONNECT tunnels, with or without
// Basic authentication) and microsocks (SOCKS5, with or without a user
// name and password), for `crate::proxies`.
// ---------------------------------------------------------------------------

/// Starts a [`Squid`] fixture (`$auth`: `None` or `Some((user, password))`),
/// or skips the test loudly (and returns from it) when squid is not
/// installed.
#[macro_export]
macro_rules! require_squid {
    ($auth:expr) => {
        match $crate::fixtures::Squid::start($auth) {
            Ok(proxy) => proxy,
            Err(skip) => {
                $crate::fixtures::skip_loudly(&skip.0);
                return;
            }
        }
    };
}

/// Starts a [`Microsocks`] fixture (`$auth`: `None` or `Some((user,
/// password))`), or skips the test loudly (and returns from it) when
/// microsocks is not installed.
#[macro_export]
macro_rules! require_microsocks {
    ($auth:expr) => {
        match $crate::fixtures::Microsocks::start($auth) {
            Ok(proxy) => proxy,
            Err(skip) => {
                $crate::fixtures::skip_loudly(&skip.0);
                return;
            }
        }
    };
}

/// The squid config; `@DIR@`, `@PORT@`, `@AUTH@` and `@ALLOW@` are filled
/// in at start-up. No cache, no pinger, no netdb; an access log (one line
/// per transaction, written when it ends: a tunnel's `CONNECT` line comes
/// when the tunnel closes) that the tests read.
const SQUID_CONF_TEMPLATE: &str = "\
http_port 127.0.0.1:@PORT@
pid_filename @DIR@/squid.pid
cache_log @DIR@/cache.log
access_log stdio:@DIR@/access.log
cache deny all
cache_mem 8 MB
coredump_dir @DIR@
netdb_filename none
pinger_enable off
shutdown_lifetime 0 seconds
strip_query_terms off
@AUTH@
http_access allow @ALLOW@
http_access deny all
";

/// squid on a free loopback port, forwarding `http://` requests and
/// tunnelling `CONNECT` to any port, optionally requiring Basic
/// credentials (answered `407` without them). Its temp dir is writable by
/// everyone (squid run by root drops to user `proxy`), and it runs under a
/// service name of its own (`-n`), so that concurrent instances do not
/// share shared-memory segments. Dropping it kills squid, removes those
/// segments and the temp dir.
pub struct Squid {
    run: Running,
    service: String,
}

impl Squid {
    /// Finds squid (`$ROUNDTRIP_SQUID`, `PATH`, `/usr/sbin/squid`), writes its
    /// config (and, with `auth`, a password file made by `openssl passwd
    /// -apr1` for squid's `basic_ncsa_auth`) to a fresh temp dir and starts
    /// it in the foreground (`-N`). Returns [`Skip`] when squid, its
    /// `basic_ncsa_auth` helper or (with `auth`) openssl is missing; panics
    /// (with squid's output) when it does not come up within
    /// [`STARTUP_TIMEOUT`].
    pub fn start(auth: Option<(&str, &str)>) -> Result<Squid, Skip> {
        use std::os::unix::fs::PermissionsExt;
        let install = "squid not installed (apt-get install squid)";
        let bin = find_binary("ROUNDTRIP_SQUID", "squid", &["/usr/sbin/squid"])
            .ok_or_else(|| Skip(install.into()))?;
        static SERVICE: AtomicUsize = AtomicUsize::new(0);
        let service = format!(
            "roundtrip{}x{}",
            std::process::id(),
            SERVICE.fetch_add(1, Ordering::SeqCst)
        );
        let temp = make_temp_dir("squid");
        let dir = temp.0.clone();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
            .expect("make the squid dir writable by squid's user");
        let dir_str = dir.to_str().expect("temp dir path is UTF-8");
        let (auth_lines, allow) = match auth {
            None => (String::new(), "all"),
            Some((user, password)) => {
                let helper = find_binary(
                    "ROUNDTRIP_SQUID_NCSA",
                    "basic_ncsa_auth",
                    &[
                        "/usr/lib/squid/basic_ncsa_auth",
                        "/usr/lib64/squid/basic_ncsa_auth",
                    ],
                )
                .ok_or_else(|| Skip(format!("{install}: no basic_ncsa_auth")))?;
                let openssl = find_binary("ROUNDTRIP_OPENSSL", "openssl", &["/usr/bin/openssl"])
                    .ok_or_else(|| {
                        Skip("openssl not installed (apt-get install openssl)".into())
                    })?;
                let out = Command::new(openssl)
                    .args(["passwd", "-apr1", password])
                    .output()
                    .expect("run openssl passwd");
                assert!(out.status.success(), "openssl passwd: {out:?}");
                let hash = String::from_utf8(out.stdout).expect("a UTF-8 hash");
                let passwd = dir.join("passwd");
                fs::write(&passwd, format!("{user}:{}\n", hash.trim())).expect("write passwd");
                let lines = format!(
                    "auth_param basic program {} {}\n\
                     auth_param basic children 1\n\
                     auth_param basic realm roundtrip\n\
                     acl authed proxy_auth REQUIRED",
                    helper.display(),
                    passwd.display()
                );
                (lines, "authed")
            }
        };
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let conf = SQUID_CONF_TEMPLATE
                .replace("@DIR@", dir_str)
                .replace("@PORT@", &port.to_string())
                .replace("@AUTH@", &auth_lines)
                .replace("@ALLOW@", allow);
            let conf_path = dir.join("squid.conf");
            fs::write(&conf_path, conf).expect("write squid.conf");
            let mut cmd = Command::new(&bin);
            cmd.arg("-N")
                .arg("-n")
                .arg(&service)
                .arg("-f")
                .arg(&conf_path);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match spawn_and_wait(cmd, addr, &dir.join("output.log"), "squid") {
                Attempt::Up(child) => {
                    let run = Running {
                        child,
                        dir: temp,
                        addr,
                    };
                    return Ok(Squid { run, service });
                }
                Attempt::PortTaken => continue,
            }
        }
        panic!("squid: every port tried was taken ({PORT_ATTEMPTS} attempts)");
    }

    /// The address squid listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// The proxy URL, `http://127.0.0.1:PORT`, with `user:password@` when
    /// given.
    pub fn url(&self, auth: Option<(&str, &str)>) -> String {
        match auth {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.run.addr),
            None => format!("http://{}", self.run.addr),
        }
    }

    /// The access log so far: one line per finished transaction, e.g.
    /// `... TCP_MISS/200 371 GET http://127.0.0.1:PORT/small - HIER_DIRECT/...`
    /// or `... TCP_TUNNEL/200 4470 CONNECT 127.0.0.1:PORT - ...`.
    pub fn access_log(&self) -> String {
        read_lossy(&self.run.dir.0.join("access.log"))
    }

    /// The access log's lines holding `needle`, once there are at least
    /// `count` of them; waits up to `bound` (polling every 20 ms) and
    /// returns whatever lines match then.
    pub fn wait_log(&self, needle: &str, count: usize, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        // Bounded by the deadline.
        loop {
            let lines: Vec<String> = self
                .access_log()
                .lines()
                .filter(|line| line.contains(needle))
                .map(str::to_string)
                .collect();
            if lines.len() >= count || Instant::now() >= deadline {
                return lines;
            }
            thread::sleep(STARTUP_POLL);
        }
    }

    /// squid's own log, for failure messages.
    pub fn cache_log(&self) -> String {
        read_lossy(&self.run.dir.0.join("cache.log"))
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        // Killed here, before `Running` drops, so that its shared-memory
        // segments (`/dev/shm/{service}-*`, left behind by SIGKILL) can go.
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
        let prefix = format!("{}-", self.service);
        if let Ok(entries) = fs::read_dir("/dev/shm") {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// microsocks (a SOCKS5 server) on a free loopback port, optionally
/// requiring a user name and password (RFC 1929). Its log names each
/// target it connected to (`client[N] 127.0.0.1: connected to HOST:PORT`,
/// HOST as the client sent it). Dropping it kills microsocks and removes
/// its temp dir.
pub struct Microsocks {
    run: Running,
}

impl Microsocks {
    /// Finds microsocks (`$ROUNDTRIP_MICROSOCKS`, `PATH`,
    /// `/usr/bin/microsocks`) and starts it bound to 127.0.0.1. Returns
    /// [`Skip`] when it is not installed; panics (with its output) when it
    /// does not come up within [`STARTUP_TIMEOUT`].
    pub fn start(auth: Option<(&str, &str)>) -> Result<Microsocks, Skip> {
        let bin = find_binary(
            "ROUNDTRIP_MICROSOCKS",
            "microsocks",
            &["/usr/bin/microsocks", "/usr/local/bin/microsocks"],
        )
        .ok_or_else(|| Skip("microsocks not installed (apt-get install microsocks)".into()))?;
        let temp = make_temp_dir("microsocks");
        let dir = temp.0.clone();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-i", "127.0.0.1", "-p"]).arg(port.to_string());
            if let Some((user, password)) = auth {
                cmd.args(["-u", user, "-P", password]);
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match spawn_and_wait(cmd, addr, &dir.join("output.log"), "microsocks") {
                Attempt::Up(child) => {
                    return Ok(Microsocks {
                        run: Running {
                            child,
                            dir: temp,
                            addr,
                        },
                    });
                }
                Attempt::PortTaken => continue,
            }
        }
        panic!("microsocks: every port tried was taken ({PORT_ATTEMPTS} attempts)");
    }

    /// The address microsocks listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.run.addr
    }

    /// microsocks's output so far (a line per connection it made, and its
    /// errors).
    pub fn log(&self) -> String {
        read_lossy(&self.run.dir.0.join("output.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc` names the process that listens on a port, and no other.
    #[test]
    fn listens_on_finds_the_listener_and_only_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if listens_on(std::process::id(), port).is_none() {
            skip_loudly("no /proc here to tell which process listens");
            return;
        }
        assert_eq!(listens_on(std::process::id(), port), Some(true));
        // A child of ours (whose fds we may read) does not hold it.
        let mut child = Command::new("sleep").arg("5").spawn().expect("sleep");
        let other = listens_on(child.id(), port);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(other, Some(false));
        drop(listener);
        assert_eq!(listens_on(std::process::id(), port), Some(false));
    }
}
