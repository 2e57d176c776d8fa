//! 10,000 connections on one CPU: each of roundtrip's clients keeps N
//! requests in flight over N connections (13 B `/small` bodies, or 64 KiB
//! `/64k` ones, read piece by piece and counted, never collected whole),
//! beside `taskset -c 0 wrk -t1 -cN` against the same evented origin, in
//! interleaved rounds. The clients (`--backends`, all three by default):
//! - mio: one `roundtrip_mio::Driver` on one thread, bodies streamed with
//!   `Receive::stream` (as the `mio` client of `benches/mio.rs`);
//! - tokio: one `roundtrip_tokio::Client` shared by N tasks on a
//!   current-thread runtime (one thread, like the mio driver), each looping
//!   over GETs and reading bodies with `chunk()`;
//! - blocking: one `roundtrip_blocking::Client` shared by N threads of
//!   64 KiB stack, each looping over GETs and reading bodies with `Read`
//!   into an 8 KiB buffer on its stack (`many/clients.rs` says why those
//!   sizes).
//!
//! `bench/many.sh` drives it; `BENCHMARKS.md` (`## 10,000 connections on
//! one mio thread`) has results.
//!
//! Each run is a fresh process, so that its memory is its own: a client is
//! this binary again (`--client --backend B`), wrk is wrk; both are waited
//! for with `wait4`, which gives each one's own peak RSS and CPU time.
//!
//! Reported per run: requests/s (connects included, as wrk counts them),
//! CPU time per request (mio: its driver's thread; tokio and blocking: the
//! whole client process, `getrusage(RUSAGE_SELF)`; wrk: its process), and
//! memory per connection:
//! - roundtrip's clients: (peak RSS of the client process, `VmHWM`, minus
//!   its RSS before the first connection) / N, measured inside the client;
//!   "before" comes after a warm-up (8 connections, 200 GETs, on a client
//!   then dropped, and `malloc_trim`), so that the code and the allocator
//!   are warm. Then the same once the N connections are idle in the pool
//!   after the run (`VmRSS`, and again after `malloc_trim(0)` has handed
//!   free heap pages back, so that what freed exchanges left in the
//!   allocator's free lists does not count as held); for blocking, once
//!   its threads have ended. The blocking client's thread stacks are in its
//!   peak, and are also given apart (issue #16 counts "the thread's stack"
//!   on top of the 16 KiB): the pages of each stack resident as its thread
//!   ends, by `mincore`;
//! - wrk: (`ru_maxrss` of `wrk -cN` minus `ru_maxrss` of `wrk -c1`) /
//!   (N - 1): wrk cannot be asked before it connects, so its one-connection
//!   run stands for "before".
//!
//! `--memory` is the byte breakdown of one client (`--backend`): in this
//! process, with a counting allocator that keeps live bytes per allocation
//! size, read when all N requests are in flight (each connection has
//! carried two) and again when the N connections are idle, against the
//! same counts before the client was built.
//!
//! The file limit (`RLIMIT_NOFILE`) is raised inside this process to what
//! N connections need (soft up to hard; as root the hard limit too); the
//! library never touches it. Loopback only; every loop is bounded by a
//! count or a deadline.
//!
//! ```text
//! many --origin ADDR [--conns 10000] [--secs 5] [--rounds 5] [--path /small|/64k]
//!      [--backends mio,tokio,blocking]                         # the rounds (pinned to CPU 0)
//! many --client [--backend mio|tokio|blocking] --origin ADDR [--conns N] [--secs S] [--path P]
//!                                                              # one run; prints a RESULT line
//! many --memory [--backend B] --origin ADDR [--conns N] [--path P]   # the byte breakdown
//! many --serve-origin-evented                                  # the origin: prints its address
//! ```

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use roundtrip_mio::http::{self, StatusCode, Uri};
use roundtrip_mio::{Driver, Flow, Receive};
use roundtrip_tests::origin;

mod common;
use common::*;

#[path = "many/clients.rs"]
mod clients;
#[path = "many/counting.rs"]
mod counting;
use counting::{Breakdown, COUNTING, Snapshot};

// ---------------------------------------------------------------------------
// Options.

#[derive(Clone, Debug)]
struct Opts {
    rounds: usize,
    secs: u64,
    conns: usize,
    origin: Option<SocketAddr>,
    client: bool,
    memory: bool,
    serve_origin: bool,
    /// The client of `--client` and `--memory`.
    backend: Backend,
    /// The clients of the rounds, each beside wrk.
    backends: Vec<Backend>,
}

/// A roundtrip backend the bench runs as a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Backend {
    /// One `roundtrip_mio::Driver` on one thread.
    Mio,
    /// One `roundtrip_tokio::Client`, a task per connection, one thread.
    Tokio,
    /// One `roundtrip_blocking::Client`, a thread per connection.
    Blocking,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Mio, Backend::Tokio, Backend::Blocking];

    fn name(self) -> &'static str {
        match self {
            Backend::Mio => "mio",
            Backend::Tokio => "tokio",
            Backend::Blocking => "blocking",
        }
    }

    fn parse(s: &str) -> Backend {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .unwrap_or_else(|| panic!("backend {s:?}: mio, tokio or blocking"))
    }
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 5,
        secs: 5,
        conns: 10_000,
        origin: None,
        client: false,
        memory: false,
        serve_origin: false,
        backend: Backend::Mio,
        backends: Backend::ALL.to_vec(),
    };
    let mut args = Args::new();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--rounds" => o.rounds = args.num("count"),
            "--secs" => o.secs = args.num("whole seconds") as u64,
            "--conns" => o.conns = args.num("count"),
            "--origin" => o.origin = args.addr(),
            "--client" => o.client = true,
            "--memory" => o.memory = true,
            "--serve-origin-evented" => o.serve_origin = true,
            "--backend" => o.backend = Backend::parse(&args.value("mio, tokio or blocking")),
            "--backends" => {
                let list = args.value("a comma-separated list of mio, tokio, blocking");
                o.backends = list.split(',').map(Backend::parse).collect();
            }
            "--path" => {
                let path = args.value("/small or /64k");
                assert!(
                    matches!(path.as_str(), "/small" | "/64k"),
                    "--path {path}: /small or /64k"
                );
                PATH.set(path).expect("--path given once");
            }
            other => unknown(other),
        }
    }
    assert!(o.conns >= 2, "--conns {}: at least 2", o.conns);
    assert!(o.secs >= 1, "--secs: at least 1 (wrk runs whole seconds)");
    assert!(!o.backends.is_empty(), "--backends: at least one");
    o
}

// ---------------------------------------------------------------------------
// The process: file limit, memory, CPU.

/// Raises `RLIMIT_NOFILE` to at least `want` descriptors: the soft limit,
/// and the hard one where allowed (with `CAP_SYS_RESOURCE`); failing that,
/// the soft limit to the hard one. Panics below `need`.
fn raise_nofile(want: u64, need: u64) {
    // SAFETY: `getrlimit`/`setrlimit` read and write the `rlimit` given.
    let got = unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let raised = libc::rlimit {
            rlim_cur: want.max(lim.rlim_cur),
            rlim_max: want.max(lim.rlim_max),
        };
        let soft = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if lim.rlim_cur >= want || libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            raised.rlim_cur.max(lim.rlim_cur)
        } else if libc::setrlimit(libc::RLIMIT_NOFILE, &soft) == 0 {
            lim.rlim_max
        } else {
            lim.rlim_cur
        }
    };
    assert!(
        got >= need,
        "RLIMIT_NOFILE: need {need} descriptors, can have {got} (raise the hard limit: ulimit -Hn)"
    );
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Hands free heap pages back to the kernel (glibc), so that RSS shows what
/// is held, not what the allocator keeps for later.
fn trim_heap() {
    // SAFETY: `malloc_trim` only releases memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// User + system CPU time of this thread.
fn thread_cpu() -> Duration {
    rusage_cpu(libc::RUSAGE_THREAD)
}

/// What `wait4` says of a child that ended: its own peak RSS and CPU time.
struct Waited {
    max_rss_kib: u64,
    cpu: Duration,
    stdout: String,
}

/// Runs `cmd` (stdout captured, stderr passed on), waits for it with
/// `wait4`; panics if it fails.
// The child is reaped by `wait4` (which `Child::wait` cannot replace: it
// gives no `rusage`).
#[allow(clippy::zombie_processes)]
fn run_waited(cmd: &mut Command, what: &str) -> Waited {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .unwrap_or_else(|e| panic!("read the output of {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our child, not waited for yet (`Child` never waited);
    // `wait4` fills `status` and `usage`.
    let (rc, status, usage) = unsafe {
        let (mut status, mut usage) = (0, std::mem::zeroed::<libc::rusage>());
        let rc = libc::wait4(pid, &mut status, 0, &mut usage);
        (rc, status, usage)
    };
    assert_eq!(rc, pid, "wait4 {what}: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed (wait status {status:#x}); its output:\n{stdout}"
    );
    Waited {
        max_rss_kib: usage.ru_maxrss as u64,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        stdout,
    }
}

// ---------------------------------------------------------------------------
// The mio client.

/// The path every request asks for (`--path`): `/small` (13 B), or `/64k`.
static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn path() -> &'static str {
    PATH.get().map_or("/small", String::as_str)
}

/// The body length of [`path`].
fn body_len() -> u64 {
    match path() {
        "/64k" => origin::BIG_LEN as u64,
        _ => origin::SMALL_BODY.len() as u64,
    }
}

fn small_uri(addr: SocketAddr) -> Uri {
    format!("http://{addr}{}", path())
        .parse()
        .expect("a valid URI")
}

/// A driver for `n` connections to one host, all kept idle after use.
fn driver(n: usize) -> Driver {
    Driver::builder()
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build()
        .expect("build the driver")
}

/// Submits one GET of `/small`, its body counted into `bytes` piece by piece.
fn submit(driver: &mut Driver, uri: &Uri, bytes: &Arc<AtomicU64>) {
    let request = http::Request::get(uri.clone())
        .body(roundtrip_mio::Body::empty())
        .expect("a valid request");
    let bytes = Arc::clone(bytes);
    driver.submit_with(
        request,
        Receive::stream(move |_, data| {
            bytes.fetch_add(data.len() as u64, Relaxed);
            Flow::Continue
        }),
    );
}

/// What one client run did: responses, wall time, CPU time (the mio
/// driver's thread; the whole process for tokio and blocking).
struct Run {
    requests: u64,
    elapsed: Duration,
    cpu: Duration,
}

/// Keeps `n` requests in flight on `driver` (a new one started whenever one
/// finishes) until `deadline`, or until `total` responses; then drains.
/// `at_full` is called once, right after the first time every connection
/// has carried `warm` responses and all `n` requests are in flight again.
fn run_mio(
    driver: &mut Driver,
    addr: SocketAddr,
    n: usize,
    deadline: Instant,
    total: u64,
    warm: u64,
    mut at_full: impl FnMut(&Driver),
) -> Run {
    let uri = small_uri(addr);
    let bytes = Arc::new(AtomicU64::new(0));
    let (cpu0, start) = (thread_cpu(), Instant::now());
    let mut started = 0u64;
    for _ in 0..n {
        submit(driver, &uri, &bytes);
        started += 1;
    }
    let mut done = 0u64;
    let mut seen_full = false;
    // Bounded: after `deadline` (or `total`) nothing new starts, and each
    // request in flight ends within the driver's timeouts.
    while !driver.is_idle() {
        driver.run_once(None).expect("driver poll");
        let mut go = Instant::now() < deadline && started < total;
        while let Some((_, result)) = driver.take_finished() {
            let response = result.expect("mio GET");
            assert_eq!(response.status(), StatusCode::OK, "mio status");
            done += 1;
            if go {
                submit(driver, &uri, &bytes);
                started += 1;
                go = started < total;
            }
        }
        if !seen_full && done >= warm * n as u64 && started - done == n as u64 {
            seen_full = true;
            at_full(driver);
        }
    }
    let run = Run {
        requests: done,
        elapsed: start.elapsed(),
        cpu: thread_cpu() - cpu0,
    };
    assert_eq!(bytes.load(Relaxed), done * body_len(), "mio body bytes");
    run
}

/// A few requests on a small driver, dropped: the code and the allocator
/// are warm before the "before" RSS is read.
fn warm_up(addr: SocketAddr) {
    let mut d = driver(8);
    let end = Instant::now() + Duration::from_secs(5);
    run_mio(&mut d, addr, 8, end, 200, 0, |_| {});
    drop(d);
    trim_heap();
}

/// `--client`: one timed mio run in this (fresh) process; prints a
/// `RESULT key=value ...` line for the rounds.
fn client(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    warm_up(addr);
    let mut d = driver(o.conns);
    let rss_before = status_kib("VmRSS");
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let run = run_mio(&mut d, addr, o.conns, deadline, u64::MAX, 1, |_| {});
    let hwm = status_kib("VmHWM");
    check_pool("mio", d.stats(), o.conns);
    Measured::after(run, rss_before, hwm, None).print();
    drop(d);
}

/// One dial per connection, and every connection idle after the run.
fn check_pool(what: &str, stats: roundtrip_mio::PoolStats, n: usize) {
    assert_eq!(
        stats.dials as usize, n,
        "{what}: one dial per connection: {stats:?}"
    );
    assert_eq!(
        stats.idle, n,
        "{what}: every connection idle after the run: {stats:?}"
    );
}

/// RSS now, and again after `malloc_trim` (KiB).
fn idle_rss() -> (u64, u64) {
    let rss_idle = status_kib("VmRSS");
    trim_heap();
    (rss_idle, status_kib("VmRSS"))
}

/// What one `--client` run measured, in KiB where not said.
struct Measured {
    run: Run,
    /// RSS after the warm-up, before the first connection.
    rss_before: u64,
    /// Peak RSS of the process (`VmHWM`).
    hwm: u64,
    /// RSS with the connections idle after the run, as is and trimmed.
    rss_idle: u64,
    rss_idle_trimmed: u64,
    /// The resident pages of the client threads' stacks, summed (blocking).
    stacks_kib: Option<u64>,
}

impl Measured {
    /// What a run measured, with the RSS of its idle connections read now
    /// (as is, then after `malloc_trim`).
    fn after(run: Run, rss_before: u64, hwm: u64, stacks_kib: Option<u64>) -> Measured {
        let (rss_idle, rss_idle_trimmed) = idle_rss();
        Measured {
            run,
            rss_before,
            hwm,
            rss_idle,
            rss_idle_trimmed,
            stacks_kib,
        }
    }

    /// The `RESULT key=value ...` line the rounds read.
    fn print(&self) {
        let Measured {
            run,
            rss_before,
            hwm,
            rss_idle,
            rss_idle_trimmed,
            ..
        } = self;
        let stacks = self.stacks_kib.map(|s| format!(" stacks_kib={s}"));
        println!(
            "RESULT requests={} elapsed_ns={} cpu_ns={} rss_before_kib={rss_before} hwm_kib={hwm} \
             rss_idle_kib={rss_idle} rss_idle_trimmed_kib={rss_idle_trimmed}{}",
            run.requests,
            run.elapsed.as_nanos(),
            run.cpu.as_nanos(),
            stacks.unwrap_or_default(),
        );
    }
}

/// `--memory`: the byte breakdown (see the file's docs).
fn memory(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    warm_up(addr);
    let n = o.conns;
    COUNTING.store(true, Relaxed);
    let base = Snapshot::take();
    let rss_before = status_kib("VmRSS");
    let mut d = driver(n);
    let mut in_flight = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let total = 4 * n as u64;
    let run = run_mio(&mut d, addr, n, deadline, total, 2, |_| {
        in_flight = Some((Snapshot::take(), status_kib("VmRSS")));
    });
    let hwm = status_kib("VmHWM");
    let idle = Snapshot::take();
    let stats = d.stats();
    assert_eq!(
        stats.idle, n,
        "every connection idle after the run: {stats:?}"
    );
    let (rss_idle, rss_idle_trimmed) = idle_rss();
    COUNTING.store(false, Relaxed);
    drop(d);
    Breakdown {
        requests: run.requests,
        base,
        rss_before,
        in_flight,
        hwm,
        idle,
        rss_idle,
        rss_idle_trimmed,
        stacks: None,
    }
    .print(n);
}

// ---------------------------------------------------------------------------
// wrk.

/// `taskset -c 0 wrk -t1 -cN -dSECS URL`: requests, duration, errors, and
/// what `wait4` says of it.
struct WrkRun {
    requests: u64,
    elapsed: Duration,
    errors: String,
    waited: Waited,
}

fn run_wrk(addr: SocketAddr, conns: usize, secs: u64) -> WrkRun {
    let waited = run_waited(
        Command::new("taskset")
            .args(["-c", "0", "wrk", "-t1", &format!("-c{conns}")])
            .arg(format!("-d{secs}s"))
            .arg(format!("http://{addr}{}", path())),
        "taskset wrk (is wrk installed?)",
    );
    let text = &waited.stdout;
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect();
    let (requests, elapsed) = wrk_requests(text);
    WrkRun {
        requests,
        elapsed,
        errors: errors.join("; "),
        waited,
    }
}

// ---------------------------------------------------------------------------
// The rounds.

/// One run of a client, as the report shows it.
#[derive(Clone, Debug, Default)]
struct Sample {
    rps: f64,
    cpu_us: f64,
    /// Peak memory per connection, bytes.
    peak_per_conn: f64,
    /// Memory per idle connection after the run (roundtrip's clients): as
    /// is, and after `malloc_trim`.
    idle_per_conn: Option<(f64, f64)>,
    /// The client threads' resident stacks per connection (blocking), bytes.
    stack_per_conn: Option<f64>,
    max_rss_kib: u64,
    note: String,
}

/// One `--client --backend B` process and what its `RESULT` line says.
fn client_sample(addr: SocketAddr, o: &Opts, backend: Backend) -> Sample {
    let exe = std::env::current_exe().expect("path of this benchmark binary");
    let waited = run_waited(
        Command::new(exe)
            .arg("--client")
            .args(["--backend", backend.name()])
            .args(["--origin", &addr.to_string()])
            .args(["--conns", &o.conns.to_string()])
            .args(["--secs", &o.secs.to_string()])
            .args(["--path", path()]),
        &format!("the {} client process", backend.name()),
    );
    let line = waited
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line from the client:\n{}", waited.stdout));
    let maybe = |key: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.parse().unwrap_or_else(|e| panic!("{key}={v}: {e}")))
    };
    let field = |key: &str| maybe(key).unwrap_or_else(|| panic!("no {key} in {line:?}"));
    let requests = field("requests");
    let n = o.conns as f64;
    let before = field("rss_before_kib");
    let per = |kib: f64| (kib - before) * 1024.0 / n;
    Sample {
        rps: requests / (field("elapsed_ns") / 1e9),
        cpu_us: field("cpu_ns") / 1e3 / requests,
        peak_per_conn: per(field("hwm_kib")),
        idle_per_conn: Some((
            per(field("rss_idle_kib")),
            per(field("rss_idle_trimmed_kib")),
        )),
        stack_per_conn: maybe("stacks_kib").map(|kib| kib * 1024.0 / n),
        max_rss_kib: waited.max_rss_kib,
        note: String::new(),
    }
}

fn wrk_sample(addr: SocketAddr, o: &Opts, base_kib: u64) -> Sample {
    let run = run_wrk(addr, o.conns, o.secs);
    Sample {
        rps: run.requests as f64 / run.elapsed.as_secs_f64(),
        cpu_us: run.waited.cpu.as_secs_f64() * 1e6 / run.requests as f64,
        peak_per_conn: (run.waited.max_rss_kib as f64 - base_kib as f64) * 1024.0
            / (o.conns - 1) as f64,
        idle_per_conn: None,
        stack_per_conn: None,
        max_rss_kib: run.waited.max_rss_kib,
        note: run.errors,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    Roundtrip(Backend),
    Wrk,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Roundtrip(b) => b.name(),
            Client::Wrk => "wrk",
        }
    }
}

type Results = std::collections::HashMap<Client, Vec<Sample>>;

fn bench(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    set_affinity(&[0]);
    eprintln!("load before: {}", loadavg());
    // wrk's memory without connections, near enough: one connection, 1 s.
    let base = run_wrk(addr, 1, 1);
    let base_kib = base.waited.max_rss_kib;
    eprintln!("wrk -c1: max RSS {base_kib} KiB");
    let clients: Vec<Client> = (o.backends.iter().map(|&b| Client::Roundtrip(b)))
        .chain([Client::Wrk])
        .collect();
    let mut results = Results::default();
    for round in 0..o.rounds {
        for c in round_order(&clients, round) {
            let sample = match c {
                Client::Roundtrip(b) => client_sample(addr, o, b),
                Client::Wrk => wrk_sample(addr, o, base_kib),
            };
            eprintln!("round {} {}: {sample:?}", round + 1, c.name());
            results.entry(c).or_default().push(sample);
            // Let the origin see the closes before the next run connects,
            // and every run start without the last one's TIME_WAIT sockets
            // (see `drain_time_wait`).
            std::thread::sleep(Duration::from_millis(500));
            let (waited, left) = common::drain_time_wait(1000, Duration::from_secs(75));
            eprintln!("  waited {waited:.0?} for TIME_WAIT sockets to drain ({left} left)");
        }
        round_done(round, o.rounds);
    }
    report_speed(&results, &clients, o);
    report_memory(&results, &clients, o, base_kib);
    eprintln!("load after: {}", loadavg());
}

fn report_speed(r: &Results, clients: &[Client], o: &Opts) {
    let n = o.conns;
    println!(
        "\n#### `{}`, {n} connections, {n} in flight, {} s per run (client on CPU 0, origin on CPU 1): requests/s per round\n",
        path(),
        o.secs
    );
    let rounds: String = (1..=o.rounds).map(|r| format!(" r{r} |")).collect();
    println!("| client |{rounds} median | CPU µs/request |");
    println!("|---|{}---:|---:|", "---:|".repeat(o.rounds));
    for &c in clients {
        let v = &r[&c];
        let cells: String = v.iter().map(|s| format!(" {:.0} |", s.rps)).collect();
        let med = |f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
        println!(
            "| {} |{cells} **{:.0}** | {:.2} |",
            c.name(),
            med(|s| s.rps),
            med(|s| s.cpu_us)
        );
    }
    let wrk = &r[&Client::Wrk];
    for &c in clients.iter().filter(|&&c| c != Client::Wrk) {
        let v = &r[&c];
        let ratios: String = (v.iter().zip(wrk))
            .map(|(m, w)| format!(" {:.2} |", m.rps / w.rps))
            .collect();
        println!(
            "| {}/wrk |{ratios} **{:.2}** (median of the per-round ratios) | {:.2} |",
            c.name(),
            median_ratio(Some(v), Some(wrk), |s| s.rps),
            median_ratio(Some(v), Some(wrk), |s| s.cpu_us),
        );
    }
    println!(
        "\nCPU time: mio its driver's thread; tokio (one thread) and blocking the whole \
         client process, from `getrusage`; wrk its process, from `wait4`."
    );
    for s in wrk.iter().filter(|s| !s.note.is_empty()) {
        println!("\nwrk said: {}", s.note);
    }
}

fn report_memory(r: &Results, clients: &[Client], o: &Opts, base_kib: u64) {
    let n = o.conns;
    let wrk = &r[&Client::Wrk];
    println!("\n#### Memory per connection, bytes (median over the rounds)\n");
    println!(
        "| client | peak, in flight | of it, thread stacks | peak / wrk's peak | idle in the pool after the run | idle, after malloc_trim | max RSS of the process, KiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let med = |v: &[Sample], f: &dyn Fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let or_dash = |x: f64| match x.is_nan() {
        true => "–".to_string(),
        false => format!("{x:.0}"),
    };
    for &c in clients.iter().filter(|&&c| c != Client::Wrk) {
        let v = &r[&c];
        println!(
            "| {} (VmHWM − RSS before the first connect) / {n} | {:.0} | {} | {:.2} | {:.0} | {:.0} | {:.0} |",
            c.name(),
            med(v, &|s| s.peak_per_conn),
            or_dash(med(v, &|s| s.stack_per_conn.unwrap_or(f64::NAN))),
            median_ratio(Some(v), Some(wrk), |s| s.peak_per_conn),
            med(v, &|s| s.idle_per_conn.map_or(f64::NAN, |i| i.0)),
            med(v, &|s| s.idle_per_conn.map_or(f64::NAN, |i| i.1)),
            med(v, &|s| s.max_rss_kib as f64),
        );
    }
    println!(
        "| wrk (max RSS − max RSS of `wrk -c1`, {base_kib} KiB) / {} | {:.0} | – | 1 | – | – | {:.0} |",
        n - 1,
        med(wrk, &|s| s.peak_per_conn),
        med(wrk, &|s| s.max_rss_kib as f64),
    );
    let per_round: Vec<String> = (clients.iter())
        .map(|c| {
            let peaks: Vec<String> = (r[c].iter())
                .map(|s| format!("{:.0}", s.peak_per_conn))
                .collect();
            format!("{} {}", c.name(), peaks.join(", "))
        })
        .collect();
    println!("\nPeak per connection by round: {}.", per_round.join("; "));
    if o.backends.contains(&Backend::Blocking) {
        println!(
            "\nblocking: {n} threads of {} KiB stack, each reading bodies into a buffer of {} KiB \
             on its stack. Its thread stacks (the pages resident as each thread ended, by \
             `mincore`) are in its peak; its idle columns hold what of them glibc's cache of \
             ended threads' stacks keeps resident.",
            clients::STACK / 1024,
            clients::READ_BUF / 1024
        );
    }
}

fn main() {
    let o = parse_opts();
    if o.serve_origin {
        // Room for one run's connections while the last run's still close.
        raise_nofile(o.conns as u64 * 2 + 1024, o.conns as u64 + 64);
        serve_origin(true);
        return;
    }
    let addr = o
        .origin
        .expect("--origin ADDR (an evented origin on CPU 1; see bench/many.sh)");
    if o.client && o.backend == Backend::Mio {
        client(&o, addr);
    } else if o.client {
        clients::client(&o, addr);
    } else if o.memory && o.backend == Backend::Mio {
        memory(&o, addr);
    } else if o.memory {
        clients::memory(&o, addr);
    } else {
        bench(&o, addr);
    }
}
