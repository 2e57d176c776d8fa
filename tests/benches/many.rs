//! 10,000 connections on one mio thread: one `roundtrip_mio::Driver` keeps
//! N requests in flight over N connections (13 B `/small` bodies streamed
//! with `Receive::stream`, as the `mio` client of `benches/mio.rs` does),
//! beside `taskset -c 0 wrk -t1 -cN` against the same evented origin, in
//! interleaved rounds. `bench/many.sh` drives it; `BENCHMARKS.md`
//! (`## 10,000 connections on one mio thread`) has results.
//!
//! Each run is a fresh process, so that its memory is its own: the mio
//! client is this binary again (`--client`), wrk is wrk; both are waited
//! for with `wait4`, which gives each one's own peak RSS and CPU time.
//!
//! Reported per run: requests/s (connects included, as wrk counts them),
//! CPU time per request, and memory per connection:
//! - mio: (peak RSS of the client process, `VmHWM`, minus its RSS before
//!   the first connection) / N, measured inside the client; then the same
//!   once the N connections are idle in the pool after the run (`VmRSS`,
//!   and again after `malloc_trim(0)` has handed free heap pages back, so
//!   that what freed exchanges left in the allocator's free lists does not
//!   count as held);
//! - wrk: (`ru_maxrss` of `wrk -cN` minus `ru_maxrss` of `wrk -c1`) /
//!   (N - 1): wrk cannot be asked before it connects, so its one-connection
//!   run stands for "before".
//!
//! `--memory` is the byte breakdown: one client in this process with a
//! counting allocator that keeps live bytes per allocation size, read when
//! all N requests are in flight (each connection has carried a few) and
//! again when the N connections are idle, against the same counts before
//! the driver was built.
//!
//! The file limit (`RLIMIT_NOFILE`) is raised inside this process to what
//! N connections need (soft up to hard; as root the hard limit too); the
//! library never touches it. Loopback only; every loop is bounded by a
//! count or a deadline.
//!
//! ```text
//! many --origin ADDR [--conns 10000] [--secs 5] [--rounds 5] [--path /small|/64k]   # the rounds (pinned to CPU 0)
//! many --client --origin ADDR [--conns N] [--secs S]           # one mio run; prints a RESULT line
//! many --memory --origin ADDR [--conns N]                      # the byte breakdown
//! many --serve-origin-evented                                  # the origin: prints its address
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use roundtrip_mio::http::{self, StatusCode, Uri};
use roundtrip_mio::{Driver, Flow, Receive};
use roundtrip_tests::origin;

mod common;
use common::*;

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
    // SAFETY: a zeroed `rusage` is valid; `getrusage` fills it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tv(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
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
// A counting allocator that keeps live allocations by size: exact sizes up
// to `EXACT`, powers of two above. Counts only while `COUNTING` is on (the
// `--memory` run); a relaxed load per allocation otherwise.

const EXACT: usize = 16 * 1024;
const BIG_CLASSES: usize = 64;

static COUNTING: AtomicBool = AtomicBool::new(false);
static BY_SIZE: [AtomicIsize; EXACT + 1] = [const { AtomicIsize::new(0) }; EXACT + 1];
static BIG_COUNT: [AtomicIsize; BIG_CLASSES] = [const { AtomicIsize::new(0) }; BIG_CLASSES];
static BIG_BYTES: [AtomicIsize; BIG_CLASSES] = [const { AtomicIsize::new(0) }; BIG_CLASSES];

struct BySize;

fn count(size: usize, sign: isize) {
    if size <= EXACT {
        BY_SIZE[size].fetch_add(sign, Relaxed);
    } else {
        let class = (usize::BITS - (size - 1).leading_zeros()) as usize; // ceil(log2)
        BIG_COUNT[class].fetch_add(sign, Relaxed);
        BIG_BYTES[class].fetch_add(sign * size as isize, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes.
unsafe impl GlobalAlloc for BySize {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            count(layout.size(), 1);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            count(layout.size(), -1);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            count(layout.size(), -1);
            count(new_size, 1);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: BySize = BySize;

/// The live allocations at one moment: count by exact size, and (count,
/// bytes) by power-of-two class above `EXACT`.
struct Snapshot {
    by_size: Vec<isize>,
    big: Vec<(isize, isize)>,
}

impl Snapshot {
    /// The counts now (the snapshot's own allocations not counted).
    fn take() -> Snapshot {
        let was = COUNTING.swap(false, Relaxed);
        let snapshot = Snapshot {
            by_size: BY_SIZE.iter().map(|n| n.load(Relaxed)).collect(),
            big: (0..BIG_CLASSES)
                .map(|c| (BIG_COUNT[c].load(Relaxed), BIG_BYTES[c].load(Relaxed)))
                .collect(),
        };
        COUNTING.store(was, Relaxed);
        snapshot
    }

    fn bytes(&self) -> isize {
        let exact: isize = (self.by_size.iter().enumerate())
            .map(|(size, n)| size as isize * n)
            .sum();
        exact + self.big.iter().map(|(_, b)| b).sum::<isize>()
    }

    /// Prints, per connection, what `self` holds beyond `base`: the sizes
    /// with the most bytes, then the rest together.
    fn report_since(&self, base: &Snapshot, conns: usize, title: &str) {
        let n = conns as f64;
        let mut rows: Vec<(String, isize, isize)> = Vec::new();
        for size in 0..=EXACT {
            let d = self.by_size[size] - base.by_size[size];
            if d != 0 {
                rows.push((format!("{size}"), d, d * size as isize));
            }
        }
        for c in 0..BIG_CLASSES {
            let (dn, db) = (self.big[c].0 - base.big[c].0, self.big[c].1 - base.big[c].1);
            if dn != 0 || db != 0 {
                let low = (1usize << c.saturating_sub(1)) + 1;
                rows.push((format!("{low}..={} (together)", 1usize << c), dn, db));
            }
        }
        rows.sort_by_key(|r| -r.2.abs());
        let total = self.bytes() - base.bytes();
        println!("\n#### {title}: live heap bytes by allocation size, per connection\n");
        println!(
            "Live heap beyond the start: {total} bytes, {:.0} per connection.\n",
            total as f64 / n
        );
        println!(
            "| allocation size (bytes) | live allocations | per connection | bytes per connection |"
        );
        println!("|---:|---:|---:|---:|");
        let shown = 14;
        for (size, count, bytes) in rows.iter().take(shown) {
            println!(
                "| {size} | {count} | {:.2} | {:.0} |",
                *count as f64 / n,
                *bytes as f64 / n
            );
        }
        let (rest_n, rest_b) = rows
            .iter()
            .skip(shown)
            .fold((0, 0), |(a, b), r| (a + r.1, b + r.2));
        if rows.len() > shown {
            println!(
                "| {} other sizes | {rest_n} | {:.2} | {:.0} |",
                rows.len() - shown,
                rest_n as f64 / n,
                rest_b as f64 / n
            );
        }
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

/// What one mio run did.
struct MioRun {
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
) -> MioRun {
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
    let run = MioRun {
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
    let stats = d.stats();
    assert_eq!(
        stats.dials as usize, o.conns,
        "one dial per connection: {stats:?}"
    );
    assert_eq!(
        stats.idle, o.conns,
        "every connection idle after the run: {stats:?}"
    );
    let rss_idle = status_kib("VmRSS");
    trim_heap();
    let rss_idle_trimmed = status_kib("VmRSS");
    println!(
        "RESULT requests={} elapsed_ns={} cpu_ns={} rss_before_kib={rss_before} hwm_kib={hwm} \
         rss_idle_kib={rss_idle} rss_idle_trimmed_kib={rss_idle_trimmed}",
        run.requests,
        run.elapsed.as_nanos(),
        run.cpu.as_nanos(),
    );
    drop(d);
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
    let rss_idle = status_kib("VmRSS");
    trim_heap();
    let rss_idle_trimmed = status_kib("VmRSS");
    COUNTING.store(false, Relaxed);
    let (full, rss_full) = in_flight.expect("a moment with every request in flight");
    let per = |kib: u64| (kib as f64 - rss_before as f64) * 1024.0 / n as f64;
    println!(
        "{n} connections, {} requests; RSS beyond the start, per connection: {:.0} B with all \
         {n} in flight (sampled), {:.0} B at the peak (VmHWM), {:.0} B idle, {:.0} B idle after \
         malloc_trim",
        run.requests,
        per(rss_full),
        per(hwm),
        per(rss_idle),
        per(rss_idle_trimmed)
    );
    full.report_since(&base, n, &format!("All {n} requests in flight"));
    idle.report_since(&base, n, &format!("All {n} connections idle in the pool"));
    drop(d);
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

/// One run of either client, as the report shows it.
#[derive(Clone, Debug, Default)]
struct Sample {
    rps: f64,
    cpu_us: f64,
    /// Peak memory per connection, bytes.
    peak_per_conn: f64,
    /// Memory per idle connection after the run (mio only): as is, and
    /// after `malloc_trim`.
    idle_per_conn: Option<(f64, f64)>,
    max_rss_kib: u64,
    note: String,
}

fn mio_sample(addr: SocketAddr, o: &Opts) -> Sample {
    let exe = std::env::current_exe().expect("path of this benchmark binary");
    let waited = run_waited(
        Command::new(exe)
            .arg("--client")
            .args(["--origin", &addr.to_string()])
            .args(["--conns", &o.conns.to_string()])
            .args(["--secs", &o.secs.to_string()])
            .args(["--path", path()]),
        "the mio client process",
    );
    let line = waited
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line from the client:\n{}", waited.stdout));
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
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
        max_rss_kib: run.waited.max_rss_kib,
        note: run.errors,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    Mio,
    Wrk,
}

fn bench(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    set_affinity(&[0]);
    eprintln!("load before: {}", loadavg());
    // wrk's memory without connections, near enough: one connection, 1 s.
    let base = run_wrk(addr, 1, 1);
    let base_kib = base.waited.max_rss_kib;
    eprintln!("wrk -c1: max RSS {base_kib} KiB");
    let mut results: std::collections::HashMap<Client, Vec<Sample>> = Default::default();
    for round in 0..o.rounds {
        for c in round_order(&[Client::Mio, Client::Wrk], round) {
            let sample = match c {
                Client::Mio => mio_sample(addr, o),
                Client::Wrk => wrk_sample(addr, o, base_kib),
            };
            eprintln!("round {} {c:?}: {sample:?}", round + 1);
            results.entry(c).or_default().push(sample);
            // Let the origin see the closes before the next run connects.
            std::thread::sleep(Duration::from_millis(500));
        }
        round_done(round, o.rounds);
    }
    report(&results, o, base_kib);
    eprintln!("load after: {}", loadavg());
}

fn report(r: &std::collections::HashMap<Client, Vec<Sample>>, o: &Opts, base_kib: u64) {
    let (mio, wrk) = (&r[&Client::Mio], &r[&Client::Wrk]);
    let n = o.conns;
    println!(
        "\n#### `{}`, {n} connections, {n} in flight, {} s per run (client on CPU 0, origin on CPU 1): requests/s per round\n",
        path(),
        o.secs
    );
    let rounds: String = (1..=o.rounds).map(|r| format!(" r{r} |")).collect();
    println!("| client |{rounds} median | CPU µs/request |");
    println!("|---|{}---:|---:|", "---:|".repeat(o.rounds));
    for (name, v) in [("mio", mio), ("wrk", wrk)] {
        let cells: String = v.iter().map(|s| format!(" {:.0} |", s.rps)).collect();
        let med = |f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
        println!(
            "| {name} |{cells} **{:.0}** | {:.2} |",
            med(|s| s.rps),
            med(|s| s.cpu_us)
        );
    }
    let ratios: String = mio
        .iter()
        .zip(wrk)
        .map(|(m, w)| format!(" {:.2} |", m.rps / w.rps))
        .collect();
    println!(
        "| mio/wrk |{ratios} **{:.2}** (median of the per-round ratios) | {:.2} |",
        median_ratio(Some(mio), Some(wrk), |s| s.rps),
        median_ratio(Some(mio), Some(wrk), |s| s.cpu_us),
    );
    for s in wrk.iter().filter(|s| !s.note.is_empty()) {
        println!("\nwrk said: {}", s.note);
    }
    println!("\n#### Memory per connection, bytes (median over the rounds)\n");
    println!(
        "| client | peak, in flight | idle in the pool after the run | idle, after malloc_trim | max RSS of the process, KiB |"
    );
    println!("|---|---:|---:|---:|---:|");
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    println!(
        "| mio (VmHWM − RSS before the first connect) / {n} | {:.0} | {:.0} | {:.0} | {:.0} |",
        med(mio, |s| s.peak_per_conn),
        med(mio, |s| s.idle_per_conn.map_or(f64::NAN, |i| i.0)),
        med(mio, |s| s.idle_per_conn.map_or(f64::NAN, |i| i.1)),
        med(mio, |s| s.max_rss_kib as f64),
    );
    println!(
        "| wrk (max RSS − max RSS of `wrk -c1`, {base_kib} KiB) / {} | {:.0} | – | – | {:.0} |",
        n - 1,
        med(wrk, |s| s.peak_per_conn),
        med(wrk, |s| s.max_rss_kib as f64),
    );
    let per_round = |v: &[Sample]| -> String {
        v.iter()
            .map(|s| format!("{:.0}", s.peak_per_conn))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\nPeak per connection by round: mio {}; wrk {}.",
        per_round(mio),
        per_round(wrk)
    );
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
    if o.client {
        client(&o, addr);
    } else if o.memory {
        memory(&o, addr);
    } else {
        bench(&o, addr);
    }
}
