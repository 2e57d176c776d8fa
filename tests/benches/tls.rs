//! Loopback TLS benchmark against nginx (TLS 1.3 only, session tickets on,
//! keep-alive on): every roundtrip backend beside a hand-written loop, the
//! Rust peers and two command-line tools, all in the same run, in
//! interleaved rounds; each cell is reported as the median of per-round
//! ratios to hyper-util + hyper-rustls, the reference peer.
//! `bench/tls.sh` starts nginx and drives this binary; `BENCHMARKS.md`
//! (`## TLS`) has results.
//!
//! Servers: two nginx processes with the same configuration (written by
//! `--setup`), one pinned to CPU 0 beside the client (sequential
//! workloads), one pinned to CPU 1 (64 in flight: client and server get a
//! core each). This process pins itself to CPU 0; curl and wrk inherit it.
//!
//! Workloads (bodies read whole, lengths checked):
//! - `small`, `64k`: sequential keep-alive GETs of `/small` (13 B) and
//!   `/64k` (65,536 B) on one client; the first GET (dial and handshake)
//!   is not timed;
//! - `parallel`: 64 in flight over 64 connections for `--secs`: one mio
//!   `Driver` on this thread, roundtrip-tokio and hyper-rustls with 64 tasks
//!   on a current-thread runtime (each task's first GET, the dials, untimed),
//!   `wrk -t1 -c64` (its dials timed); besides requests/s, each run
//!   records the client's CPU time per request (`getrusage`: this process
//!   over the timed part, or wrk as a reaped child, whole run) and how busy
//!   nginx was (utime + stime of its processes from `/proc/PID/stat`, over
//!   the same part, divided by the run's time), which says whether the
//!   origin, not the client, bounds the cell;
//! - `resumed`: one client, `Connection: close` on every request, so every
//!   request dials and resumes (TLS 1.3 ticket) the session of the one
//!   before (curl: its session cache; wrk cannot);
//! - `full`: a new client (hence an empty session cache) for every request,
//!   `Connection: close`, so every request does a full handshake (curl:
//!   `--no-sessionid`; wrk: `-H 'Connection: close'`, it never resumes).
//!
//! Crypto: every Rust client runs rustls 0.23 with aws-lc-rs (one rustls
//! build for all, so the same key exchange preferences); curl and wrk run
//! the system OpenSSL.
//!
//! ```text
//! tls --setup DIR      # PKI, docroot, nginx-pinned.conf and nginx-apart.conf; prints the addresses
//! tls --pinned ADDR --apart ADDR --ca DIR/ca.crt [--rounds 5] [--requests 10000]
//!     [--big-requests 2000] [--conns 500] [--inflight 64] [--secs 1] [--wrk-secs 1]
//!     [--max-secs S] [--clients raw,blocking,...] [--workloads small,64k,...]
//!     [--apart-pid PID]   # nginx on CPU 1 (default: DIR/apart.pid, beside the CA)
//! tls --only blocking-small --origin ADDR --ca FILE --requests N   # for strace
//! tls --memory --origin ADDR --ca FILE   # heap held by an idle pooled connection
//! ```

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use roundtrip_tests::origin::{BIG_LEN, SMALL_BODY};

mod common;
use common::*;
#[path = "tls/memory.rs"]
mod memory;
#[path = "tls/peers.rs"]
mod peers;
use peers::{AsyncPeer, Conns, Peer, RESUMED, Target};

// ---------------------------------------------------------------------------
// Options.

#[derive(Clone, Debug)]
struct Opts {
    rounds: usize,
    max_secs: Option<u64>,
    requests: usize,
    big_requests: usize,
    conns: usize,
    inflight: usize,
    secs: u64,
    wrk_secs: u64,
    pinned: Option<SocketAddr>,
    apart: Option<SocketAddr>,
    /// The `--apart` nginx's process (its workers are found as children).
    apart_pid: Option<u32>,
    /// That process and its children, resolved by `bench`.
    apart_pids: Vec<u32>,
    ca: Option<PathBuf>,
    clients: Vec<Kind>,
    workloads: Vec<Workload>,
    origin: Option<SocketAddr>,
    only: Option<String>,
    memory: bool,
    setup: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 5,
        max_secs: None,
        requests: 10_000,
        big_requests: 2000,
        conns: 500,
        inflight: 64,
        secs: 1,
        wrk_secs: 1,
        pinned: None,
        apart: None,
        apart_pid: None,
        apart_pids: Vec::new(),
        ca: None,
        clients: Kind::ALL.to_vec(),
        workloads: Workload::ALL.to_vec(),
        origin: None,
        only: None,
        memory: false,
        setup: None,
    };
    let mut args = Args::new();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--rounds" => o.rounds = args.num("count"),
            "--max-secs" => o.max_secs = Some(args.num("seconds") as u64),
            "--requests" => o.requests = args.num("count"),
            "--big-requests" => o.big_requests = args.num("count"),
            "--conns" => o.conns = args.num("count"),
            "--inflight" => o.inflight = args.num("count"),
            "--secs" => o.secs = args.num("seconds") as u64,
            "--wrk-secs" => o.wrk_secs = args.num("seconds") as u64,
            "--pinned" => o.pinned = args.addr(),
            "--apart" => o.apart = args.addr(),
            "--apart-pid" => o.apart_pid = Some(args.num("pid") as u32),
            "--origin" => o.origin = args.addr(),
            "--ca" => o.ca = Some(args.value("PEM file").into()),
            "--clients" => o.clients = list(&args.value("client list"), Kind::parse),
            "--workloads" => o.workloads = list(&args.value("workload list"), Workload::parse),
            "--only" => o.only = Some(args.value("client-workload")),
            "--memory" => o.memory = true,
            "--setup" => o.setup = Some(args.value("directory").into()),
            other => unknown(other),
        }
    }
    o
}

fn list<T>(s: &str, parse: fn(&str) -> Option<T>) -> Vec<T> {
    s.split(',')
        .map(|x| parse(x).unwrap_or_else(|| panic!("{x:?}: unknown; see the file's docs")))
        .collect()
}

// ---------------------------------------------------------------------------
// `--setup`: the certificates, the docroot and the nginx configurations.

const NGINX_CONF: &str = "\
# Written by `tls --setup` (tests/benches/tls.rs); started by bench/tls.sh.
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/@NAME@.pid;
error_log @DIR@/@NAME@-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path @DIR@/tmp-@NAME@;
    types { }
    default_type text/plain;
    sendfile off;
    server_tokens off;
    # Keep-alive on, and no server-side close within a run.
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    ssl_protocols TLSv1.3;
    ssl_certificate @DIR@/server.crt;
    ssl_certificate_key @DIR@/server.key;
    ssl_session_cache shared:SSL-@NAME@:10m;
    ssl_session_tickets on;
    ssl_session_timeout 1h;
    server {
        listen 127.0.0.1:@PORT@ ssl;
        server_name localhost;
        root @DIR@/www;
    }
}
";

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

fn setup(dir: &Path) {
    let pki = roundtrip_tests::certs::pki();
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    std::fs::create_dir_all(dir.join("www")).expect("create the docroot");
    write("ca.crt", pki.ca.as_bytes());
    pki.server.write(dir, "server");
    write("www/small", SMALL_BODY);
    write("www/64k", &roundtrip_tests::fixtures::pattern(BIG_LEN));
    let dir_str = dir.to_str().expect("a UTF-8 directory");
    for name in ["pinned", "apart"] {
        let port = free_port();
        let conf = NGINX_CONF
            .replace("@DIR@", dir_str)
            .replace("@NAME@", name)
            .replace("@PORT@", &port.to_string());
        write(&format!("nginx-{name}.conf"), conf.as_bytes());
        println!("{name} 127.0.0.1:{port}");
    }
}

fn target(addr: SocketAddr, o: &Opts) -> Target {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let path =
        o.ca.as_ref()
            .expect("--ca FILE (the test CA, written by --setup)");
    let ca =
        CertificateDer::from_pem_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Target { addr, ca }
}

// ---------------------------------------------------------------------------
// Clients and workloads.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Raw,
    Blocking,
    Tokio,
    Mio,
    Smol,
    Hyper,
    Ureq,
    Reqwest,
    Curl,
    Wrk,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Raw,
        Kind::Blocking,
        Kind::Tokio,
        Kind::Mio,
        Kind::Smol,
        Kind::Hyper,
        Kind::Ureq,
        Kind::Reqwest,
        Kind::Curl,
        Kind::Wrk,
    ];
    /// The reference peer of every ratio.
    const REFERENCE: Kind = Kind::Hyper;

    fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Blocking => "blocking",
            Kind::Tokio => "tokio",
            Kind::Mio => "mio",
            Kind::Smol => "smol",
            Kind::Hyper => "hyper",
            Kind::Ureq => "ureq",
            Kind::Reqwest => "reqwest",
            Kind::Curl => "curl",
            Kind::Wrk => "wrk",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
    /// The name in the report, with the TLS stack.
    fn label(self) -> &'static str {
        match self {
            Kind::Raw => "raw loop: std + rustls `StreamOwned` + httparse",
            Kind::Blocking => "roundtrip-blocking",
            Kind::Tokio => "roundtrip-tokio (current-thread)",
            Kind::Mio => "roundtrip-mio (one thread)",
            Kind::Smol => "roundtrip-smol (`smol::block_on`)",
            Kind::Hyper => "hyper-util + hyper-rustls (current-thread)",
            Kind::Ureq => "ureq 3 (rustls)",
            Kind::Reqwest => "reqwest 0.12 (rustls, current-thread)",
            Kind::Curl => "curl, one process (OpenSSL)",
            Kind::Wrk => "wrk -t1 (OpenSSL)",
        }
    }
    fn is_async(self) -> bool {
        matches!(self, Kind::Tokio | Kind::Smol | Kind::Hyper | Kind::Reqwest)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Workload {
    Small,
    Big,
    Parallel,
    Resumed,
    Full,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::Small,
        Workload::Big,
        Workload::Parallel,
        Workload::Resumed,
        Workload::Full,
    ];
    fn name(self) -> &'static str {
        match self {
            Workload::Small => "small",
            Workload::Big => "64k",
            Workload::Parallel => "parallel",
            Workload::Resumed => "resumed",
            Workload::Full => "full",
        }
    }
    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
    fn path(self) -> &'static str {
        if self == Workload::Big {
            "/64k"
        } else {
            "/small"
        }
    }
    fn conns(self) -> Conns {
        match self {
            Workload::Resumed => Conns::Resumed,
            Workload::Full => Conns::Full,
            _ => Conns::KeepAlive,
        }
    }
    /// Who runs it.
    fn has(self, k: Kind) -> bool {
        match self {
            Workload::Parallel => matches!(k, Kind::Mio | Kind::Tokio | Kind::Hyper | Kind::Wrk),
            Workload::Resumed => k != Kind::Wrk,
            _ => true,
        }
    }
    /// Timed requests per sequential run.
    fn requests(self, o: &Opts) -> usize {
        match self {
            Workload::Small => o.requests,
            Workload::Big => o.big_requests,
            _ => o.conns,
        }
    }
    fn describe(self, o: &Opts) -> String {
        match self {
            Workload::Small | Workload::Big => format!(
                "{} sequential keep-alive GETs of `{}` per run, client and nginx on CPU 0",
                self.requests(o),
                self.path()
            ),
            Workload::Parallel => format!(
                "{} in flight over {} connections for {} s, client on CPU 0, nginx on CPU 1",
                o.inflight, o.inflight, o.secs
            ),
            Workload::Resumed => format!(
                "{} GETs of `/small` per run, each on a new connection resuming the session, CPU 0",
                o.conns
            ),
            Workload::Full => format!(
                "{} GETs of `/small` per run, each by a new client (full handshake), CPU 0",
                o.conns
            ),
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    requests: u64,
    elapsed: Duration,
    /// Resumptions seen or offered (see `peers::RESUMED`) in the timed part.
    resumed: Option<usize>,
    /// CPU time of the client and of the origin (`parallel` only).
    cpu: Option<CpuUse>,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    /// The client's CPU time per request, in µs (NaN if not measured).
    fn cpu_us(&self) -> f64 {
        self.cpu.map_or(f64::NAN, |c| {
            c.client.as_secs_f64() * 1e6 / self.requests as f64
        })
    }
    /// The client's CPU time over the run's time, in %.
    fn client_busy(&self) -> f64 {
        self.cpu.map_or(f64::NAN, |c| {
            c.client.as_secs_f64() * 100.0 / self.elapsed.as_secs_f64()
        })
    }
    /// The origin's CPU time over the run's time, in %.
    fn origin_busy(&self) -> f64 {
        self.cpu.and_then(|c| c.origin).map_or(f64::NAN, |o| {
            o.as_secs_f64() * 100.0 / self.elapsed.as_secs_f64()
        })
    }
}

// ---------------------------------------------------------------------------
// CPU time of the client and of nginx.

#[derive(Clone, Copy, Debug)]
struct CpuUse {
    client: Duration,
    /// `None` when nginx's processes could not be read.
    origin: Option<Duration>,
}

/// Fields of `/proc/PID/stat` after the command name: `[0]` is field 3
/// (state), so field `n` is `[n - 3]`.
fn proc_stat(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(
        rest.split_ascii_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime (fields 14 and 15, clock ticks) of `pids`, summed;
/// `None` if there are none or one is gone.
fn procs_cpu(pids: &[u32]) -> Option<Duration> {
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0;
    for &pid in pids {
        let f = proc_stat(pid)?;
        ticks += f.get(11)? + f.get(12)?;
    }
    (!pids.is_empty()).then(|| Duration::from_secs_f64(ticks as f64 / hz))
}

/// `pid` and its children (nginx's workers when it runs a master; the
/// configuration of `--setup` runs none, so `pid` is the worker itself).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for child in entries.filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()) {
        // Field 4: the parent's pid.
        if proc_stat(child).and_then(|f| f.get(1).copied()) == Some(pid as u64) {
            pids.push(child);
        }
    }
    pids
}

/// The `--apart` nginx's processes: `--apart-pid`, or the pid file
/// `apart.pid` its configuration writes beside the CA; empty (and said on
/// stderr) if neither is there.
fn apart_pids(o: &Opts) -> Vec<u32> {
    let from_file = || {
        let path = o.ca.as_ref()?.parent()?.join("apart.pid");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    };
    match o.apart_pid.or_else(from_file) {
        Some(pid) if proc_stat(pid).is_some() => {
            let pids = with_children(pid);
            eprintln!("nginx (apart): pids {pids:?}, cpus {}", allowed_cpus(pid));
            pids
        }
        _ => {
            eprintln!(
                "nginx (apart): no pid (--apart-pid, or apart.pid beside the CA); its CPU use is not measured"
            );
            Vec::new()
        }
    }
}

/// CPU times at the start of a timed part.
struct Meter<'a> {
    who: libc::c_int,
    client: Duration,
    origin: Option<Duration>,
    pids: &'a [u32],
}

impl Meter<'_> {
    /// `who`: `RUSAGE_SELF` (an in-process client) or `RUSAGE_CHILDREN` (a
    /// child reaped before [`stop`](Self::stop)); `pids`: the origin's.
    fn start(who: libc::c_int, pids: &[u32]) -> Meter<'_> {
        Meter {
            who,
            client: rusage_cpu(who),
            origin: procs_cpu(pids),
            pids,
        }
    }
    fn stop(&self) -> CpuUse {
        let origin = match (self.origin, procs_cpu(self.pids)) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        CpuUse {
            client: rusage_cpu(self.who).saturating_sub(self.client),
            origin,
        }
    }
}

// ---------------------------------------------------------------------------
// Sequential runs: `n` GETs after an untimed first one.

fn sequential(kind: Kind, t: &Target, path: &str, n: usize, conns: Conns, o: &Opts) -> Sample {
    let expect = if path == "/64k" {
        BIG_LEN
    } else {
        SMALL_BODY.len()
    };
    let fresh = conns == Conns::Full;
    let mut sample = match kind {
        Kind::Curl => return curl(t, path, n, conns, o),
        Kind::Wrk => return wrk(t, path, 1, o.wrk_secs, conns),
        k if k.is_async() => {
            let make = || AsyncPeer::new(k.name(), t, path, conns);
            if k == Kind::Smol {
                smol::block_on(timed_async(n, fresh, expect, make))
            } else {
                current_thread().block_on(timed_async(n, fresh, expect, make))
            }
        }
        k => {
            let make = || Peer::new(k.name(), t, path, conns);
            let mut peer = make();
            assert_eq!(peer.get(), expect, "{} body length", k.name());
            RESUMED.store(0, Relaxed);
            let start = Instant::now();
            for _ in 0..n {
                if fresh {
                    peer = make();
                }
                assert_eq!(peer.get(), expect, "{} body length", k.name());
            }
            Sample {
                requests: n as u64,
                elapsed: start.elapsed(),
                resumed: None,
                cpu: None,
            }
        }
    };
    // curl, wrk and ureq give no view of their sessions.
    if conns != Conns::KeepAlive && kind != Kind::Ureq {
        sample.resumed = Some(RESUMED.load(Relaxed));
    }
    sample
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime")
}

async fn timed_async(n: usize, fresh: bool, expect: usize, make: impl Fn() -> AsyncPeer) -> Sample {
    let mut peer = make();
    assert_eq!(peer.get().await, expect, "body length");
    RESUMED.store(0, Relaxed);
    let start = Instant::now();
    for _ in 0..n {
        if fresh {
            peer = make();
        }
        assert_eq!(peer.get().await, expect, "body length");
    }
    Sample {
        requests: n as u64,
        elapsed: start.elapsed(),
        resumed: None,
        cpu: None,
    }
}

/// curl, one process for all GETs (a URL glob `?[1-N]`, so it keeps the
/// connection or, with `Connection: close`, its TLS session cache):
/// the time of N + 1 GETs minus that of 1, so start-up is not counted.
fn curl(t: &Target, path: &str, n: usize, conns: Conns, o: &Opts) -> Sample {
    let ca = o.ca.as_ref().expect("--ca");
    let run = |count: usize| {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--fail", "--cacert"]).arg(ca);
        if conns == Conns::Full {
            cmd.arg("--no-sessionid");
        }
        if conns != Conns::KeepAlive {
            cmd.args(["-H", "Connection: close"]);
        }
        cmd.arg(format!("https://{}{path}?[1-{count}]", t.addr))
            .stdout(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run curl (is it installed?)");
        assert!(status.success(), "curl: {status}");
        start.elapsed()
    };
    let one = run(1);
    let all = run(n + 1);
    Sample {
        requests: n as u64,
        elapsed: all.saturating_sub(one),
        resumed: None,
        cpu: None,
    }
}

/// `wrk -t1 -cC -dSECS https://ADDR/PATH` (with `Connection: close` for
/// new connections per request); its count and duration.
fn wrk(t: &Target, path: &str, c: usize, secs: u64, conns: Conns) -> Sample {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{c}"), &format!("-d{secs}s")]);
    if conns != Conns::KeepAlive {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(t.url(path))
        .output()
        .expect("run wrk (is it installed?)");
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        eprintln!("wrk warning ({path}, -c{c}, {conns:?}): {}", line.trim());
    }
    // "  123456 requests in 1.00s, 12.34MB read"
    let (requests, elapsed) = text
        .lines()
        .find_map(|l| {
            let (count, rest) = l.trim().split_once(" requests in ")?;
            let time = rest.split_once(',')?.0;
            let (num, unit) = time.split_at(time.find(|c: char| c.is_ascii_alphabetic())?);
            let scale = match unit {
                "us" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                _ => return None,
            };
            Some((count.parse().ok()?, num.parse::<f64>().ok()? * scale))
        })
        .unwrap_or_else(|| panic!("no 'requests in' line in wrk output:\n{text}"));
    Sample {
        requests,
        elapsed: Duration::from_secs_f64(elapsed),
        resumed: None,
        cpu: None,
    }
}

// ---------------------------------------------------------------------------
// 64 in flight.

fn parallel(kind: Kind, t: &Target, n: usize, o: &Opts) -> Sample {
    let secs = Duration::from_secs(o.secs);
    let pids = &o.apart_pids[..];
    match kind {
        Kind::Mio => parallel_mio(t, n, secs, pids),
        Kind::Tokio | Kind::Hyper => parallel_async(kind, t, n, secs, pids),
        Kind::Wrk => {
            // wrk's whole process (start-up and dials included), reaped by
            // `output()`; nginx over the same span, divided by wrk's time.
            let meter = Meter::start(libc::RUSAGE_CHILDREN, pids);
            let mut sample = wrk(t, "/small", n, o.secs, Conns::KeepAlive);
            sample.cpu = Some(meter.stop());
            sample
        }
        other => panic!("{} has no 64-in-flight run", other.name()),
    }
}

/// One mio `Driver`, `n` requests in flight, bodies counted piece by piece;
/// a first wave of `n` (the dials) is not timed.
fn parallel_mio(t: &Target, n: usize, secs: Duration, pids: &[u32]) -> Sample {
    let cert = roundtrip_io::tls::Certificate::from_der(&t.ca);
    let mut driver = roundtrip_mio::Driver::builder()
        .tls_built_in_roots(false)
        .add_root_certificate(cert)
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build()
        .expect("build the mio driver");
    let url = t.url("/small");
    let bytes = Arc::new(AtomicU64::new(0));
    let submit = |driver: &mut roundtrip_mio::Driver| {
        let request = roundtrip_mio::http::Request::get(&url)
            .body(roundtrip_mio::Body::empty())
            .expect("a valid request");
        let bytes = Arc::clone(&bytes);
        driver.submit_with(
            request,
            roundtrip_mio::Receive::stream(move |_, data| {
                bytes.fetch_add(data.len() as u64, Relaxed);
                roundtrip_mio::Flow::Continue
            }),
        );
    };
    let drain = |driver: &mut roundtrip_mio::Driver, end: Option<Instant>| {
        let mut done = 0u64;
        // Bounded: after `end` nothing new is submitted, and every request
        // ends (the driver's timeouts).
        while !driver.is_idle() {
            driver.run_once(None).expect("mio poll");
            while let Some((_, result)) = driver.take_finished() {
                let response = result.expect("mio GET");
                assert_eq!(response.status(), 200, "mio status");
                done += 1;
                if end.is_some_and(|end| Instant::now() < end) {
                    submit(driver);
                }
            }
        }
        done
    };
    (0..n).for_each(|_| submit(&mut driver));
    drain(&mut driver, None);
    bytes.store(0, Relaxed);
    let meter = Meter::start(libc::RUSAGE_SELF, pids);
    let start = Instant::now();
    (0..n).for_each(|_| submit(&mut driver));
    let done = drain(&mut driver, Some(start + secs));
    let elapsed = start.elapsed();
    let cpu = meter.stop();
    assert_eq!(
        bytes.load(Relaxed),
        done * SMALL_BODY.len() as u64,
        "mio bytes"
    );
    let stats = driver.stats();
    assert!(stats.dials as usize <= n, "mio dials: {stats:?}");
    Sample {
        requests: done,
        elapsed,
        resumed: None,
        cpu: Some(cpu),
    }
}

/// `n` tasks on a current-thread runtime sharing one client, each sending
/// GETs one after the other; each task's first GET is not timed.
fn parallel_async(kind: Kind, t: &Target, n: usize, secs: Duration, pids: &[u32]) -> Sample {
    let rt = current_thread();
    let peer = {
        let _in_rt = rt.enter();
        AsyncPeer::new(kind.name(), t, "/small", Conns::KeepAlive)
    };
    rt.block_on(async {
        let warm = Arc::new(tokio::sync::Barrier::new(n + 1));
        let go = Arc::new(tokio::sync::Barrier::new(n + 1));
        let end = Arc::new(std::sync::OnceLock::<Instant>::new());
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (peer, warm, go, end) = (peer.clone(), warm.clone(), go.clone(), end.clone());
                tokio::spawn(async move {
                    peer.get().await;
                    warm.wait().await;
                    go.wait().await;
                    let end = *end.get().expect("set before the start");
                    let mut done = 0u64;
                    while Instant::now() < end {
                        assert_eq!(peer.get().await, SMALL_BODY.len(), "body length");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        warm.wait().await;
        let meter = Meter::start(libc::RUSAGE_SELF, pids);
        let start = Instant::now();
        end.set(start + secs).expect("set once");
        go.wait().await;
        let mut done = 0;
        for task in tasks {
            done += task.await.expect("a client task panicked");
        }
        let elapsed = start.elapsed();
        Sample {
            requests: done,
            elapsed,
            resumed: None,
            cpu: Some(meter.stop()),
        }
    })
}

// ---------------------------------------------------------------------------
// Rounds and the report.

type Results = HashMap<(Workload, Kind), Vec<Sample>>;

fn run_once(kind: Kind, w: Workload, pinned: &Target, apart: &Target, o: &Opts) -> Sample {
    match w {
        Workload::Parallel => parallel(kind, apart, o.inflight, o),
        _ => sequential(kind, pinned, w.path(), w.requests(o), w.conns(), o),
    }
}

fn bench(o: &Opts) {
    let pinned = target(o.pinned.expect("--pinned ADDR (nginx on CPU 0)"), o);
    let apart = target(o.apart.expect("--apart ADDR (nginx on CPU 1)"), o);
    let o = &Opts {
        apart_pids: apart_pids(o),
        ..o.clone()
    };
    set_affinity(&[0]);
    eprintln!("load before: {}", loadavg());
    let cells: Vec<(Workload, Vec<Kind>)> = o
        .workloads
        .iter()
        .map(|&w| (w, o.clients.iter().copied().filter(|&k| w.has(k)).collect()))
        .collect();
    // Warm-up: code paths, allocator, nginx; not recorded (curl and wrk,
    // fresh processes, need none).
    let small = Opts {
        requests: o.requests / 10,
        big_requests: o.big_requests / 10,
        conns: o.conns / 10,
        ..o.clone()
    };
    for (w, kinds) in &cells {
        for &k in kinds
            .iter()
            .filter(|k| !matches!(k, Kind::Curl | Kind::Wrk))
        {
            if *w != Workload::Parallel {
                run_once(k, *w, &pinned, &apart, &small);
            }
        }
    }
    let mut results = Results::new();
    // With --max-secs, no round starts that would end past the budget (at
    // the pace of the slowest round so far); at least one round runs.
    let (start, mut slowest, mut rounds_done) = (Instant::now(), Duration::ZERO, 0);
    for round in 0..o.rounds {
        let budget = o.max_secs.map(Duration::from_secs);
        if round > 0 && budget.is_some_and(|b| start.elapsed() + slowest > b) {
            eprintln!("time budget reached: stopping after {round} rounds");
            break;
        }
        let round_start = Instant::now();
        for (w, kinds) in &cells {
            for k in round_order(kinds, round) {
                let sample = run_once(k, *w, &pinned, &apart, o);
                results.entry((*w, k)).or_default().push(sample);
            }
        }
        slowest = slowest.max(round_start.elapsed());
        rounds_done += 1;
        round_done(round, o.rounds);
    }
    report(&results, &cells, o, rounds_done);
    eprintln!("load after: {}", loadavg());
}

fn report(results: &Results, cells: &[(Workload, Vec<Kind>)], o: &Opts, rounds: usize) {
    let cell = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.2}")
        }
    };
    let ratio = |w: Workload, k: Kind| {
        median_ratio(
            results.get(&(w, k)),
            results.get(&(w, Kind::REFERENCE)),
            Sample::rps,
        )
    };
    for (w, kinds) in cells {
        println!("\n#### `{}`: {}; requests/s\n", w.name(), w.describe(o));
        let heads: String = (1..=rounds).map(|r| format!(" r{r} |")).collect();
        // 64 in flight: whether nginx, not the client, was the bottleneck.
        let cpu = *w == Workload::Parallel;
        let (cpu_heads, cpu_align) = match cpu {
            true => (
                " client CPU µs/request | CPU / hyper-rustls's | client CPU busy % | nginx CPU busy % |",
                "---:|".repeat(4),
            ),
            false => ("", String::new()),
        };
        println!("| client |{heads} median | / hyper-rustls |{cpu_heads}");
        println!("|---|{}---:|---:|{cpu_align}", "---:|".repeat(rounds));
        for &k in kinds {
            let v = &results[&(*w, k)];
            let per: String = v.iter().map(|s| format!(" {:.0} |", s.rps())).collect();
            let med = median(v.iter().map(Sample::rps).collect());
            let cpu_cells = match cpu {
                true => {
                    let med = |f: fn(&Sample) -> f64, digits: usize| {
                        let x = median(v.iter().map(f).collect());
                        if x.is_nan() {
                            " – |".to_string()
                        } else {
                            format!(" {x:.digits$} |")
                        }
                    };
                    let cpu_ratio = median_ratio(
                        results.get(&(*w, k)),
                        results.get(&(*w, Kind::REFERENCE)),
                        Sample::cpu_us,
                    );
                    format!(
                        "{} {} |{}{}",
                        med(Sample::cpu_us, 2),
                        cell(cpu_ratio),
                        med(Sample::client_busy, 0),
                        med(Sample::origin_busy, 0)
                    )
                }
                false => String::new(),
            };
            println!(
                "| {} |{per} **{med:.0}** | {} |{cpu_cells}",
                k.label(),
                cell(ratio(*w, k))
            );
        }
        if cpu {
            println!(
                "\nCPU columns, medians over rounds: the client's CPU time (getrusage: this \
                 process over the timed part; wrk: its whole process, dials and start-up \
                 included) per request, and its median per-round ratio to hyper-rustls's \
                 (< 1: less CPU per request); client and nginx CPU time over the run's time \
                 (nginx: utime + stime of its one worker from /proc/PID/stat, 10 ms ticks). \
                 nginx near 100 %: the origin bounds the cell, and requests/s say little of \
                 the client."
            );
        }
    }
    println!(
        "\n#### Ratios to hyper-util + hyper-rustls (median of the per-round ratios; > 1: faster)\n"
    );
    let names: String = cells
        .iter()
        .map(|(w, _)| format!(" {} |", w.name()))
        .collect();
    println!("| client |{names}");
    println!("|---|{}", "---:|".repeat(cells.len()));
    for k in Kind::ALL.into_iter().filter(|k| o.clients.contains(k)) {
        let row: String = cells
            .iter()
            .map(|(w, kinds)| match kinds.contains(&k) {
                true => format!(" {} |", cell(ratio(*w, k))),
                false => " |".to_string(),
            })
            .collect();
        println!("| {} |{row}", k.label());
    }
    let counted: Vec<_> = cells
        .iter()
        .filter(|(w, _)| w.conns() != Conns::KeepAlive)
        .collect();
    if counted.is_empty() {
        return;
    }
    println!(
        "\n#### Resumptions per timed connection, last round (roundtrip: resumed in its \
         trace; raw loop: rustls's handshake kind; hyper-rustls, reqwest: tickets taken from \
         the session store, i.e. resumptions offered)\n"
    );
    println!(
        "| client |{}",
        counted
            .iter()
            .map(|(w, _)| format!(" {} |", w.name()))
            .collect::<String>()
    );
    println!("|---|{}", "---:|".repeat(counted.len()));
    for k in Kind::ALL.into_iter().filter(|k| o.clients.contains(k)) {
        let row: String = counted
            .iter()
            .map(|(w, _)| {
                let last = results.get(&(*w, k)).and_then(|v| v.last());
                match last.and_then(|s| s.resumed.map(|r| (r, s.requests))) {
                    Some((r, n)) => format!(" {r} / {n} |"),
                    None => " n/a |".to_string(),
                }
            })
            .collect();
        println!("| {} |{row}", k.label());
    }
}

// ---------------------------------------------------------------------------
// `--only CLIENT-WORKLOAD`: one client, keep-alive GETs, nothing else.

fn only(spec: &str, o: &Opts) {
    let (kind, w) = spec
        .split_once('-')
        .and_then(|(k, w)| Some((Kind::parse(k)?, Workload::parse(w)?)))
        .filter(|(k, w)| !matches!(k, Kind::Curl | Kind::Wrk) && !matches!(w, Workload::Parallel))
        .unwrap_or_else(|| panic!("--only {spec}: want CLIENT-{{small,64k,resumed,full}}"));
    let t = target(o.origin.expect("--only needs --origin ADDR"), o);
    set_affinity(&[0]);
    let sample = sequential(kind, &t, w.path(), o.requests, w.conns(), o);
    let resumed = sample
        .resumed
        .map_or(String::new(), |r| format!(", {r} resumed"));
    println!(
        "{spec}: {} requests, {:.0} requests/s{resumed}",
        sample.requests,
        sample.rps()
    );
}

fn main() {
    let o = parse_opts();
    if let Some(dir) = &o.setup {
        setup(dir);
    } else if let Some(spec) = &o.only {
        only(spec, &o);
    } else if o.memory {
        memory::memory(&o);
    } else {
        bench(&o);
    }
}
