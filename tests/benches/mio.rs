//! Loopback speed benchmark of the mio backend: one `roundtrip_mio::Driver`
//! on one thread keeping N requests in flight over N connections, beside wrk
//! (`-t1 -cN`) and the tokio backend (current-thread runtime, N tasks), all
//! against the same origin processes in the same run. `bench/mio.sh` drives
//! it; `BENCHMARKS.md` (`## io-mio`) has results.
//!
//! Server: the minimal origin of `roundtrip_tests::origin`, run as separate
//! processes so that wrk can reach it and `strace` sees only the client:
//! one thread per connection (`--serve-origin`) pinned to CPU 0, shared with
//! the client, for 1 in flight; one event loop for all connections
//! (`--serve-origin-evented`) pinned to CPU 1 for 64 and 256 in flight, so
//! that client and server have one core each and the server is not the
//! bottleneck (the thread-per-connection origin was, there: it switches
//! threads for every request). This thread (and wrk, through `taskset -c
//! 0`) always runs on CPU 0.
//!
//! Cells: in flight 1, 64, 256 × body `/small` (13 B) and `/64k` (65536 B).
//! Clients:
//! - `mio`: `Driver::submit_with(.., Receive::stream(..))`, the body counted
//!   and dropped piece by piece, as wrk and the tokio client here do;
//! - `mio-collect`: `Driver::submit`, the body collected in memory;
//! - `tokio`: `roundtrip_tokio::Client` on a current-thread runtime, N tasks
//!   each sending GETs one after the other, body read with `chunk()`;
//! - `raw`: the raw loop of the shared bench module (std + httparse, one
//!   write and one read per request, no pool, no header map): on this
//!   thread for 1 in flight, one thread per connection for more; its CPU
//!   time is the whole process's;
//! - `wrk`: `taskset -c 0 wrk -t1 -cN -dSECS`.
//!
//! Each run lasts `--secs` (connects included, as in wrk); a request is
//! started whenever one finishes until the time is up, then the rest drain.
//! Besides requests/s it records the client's CPU time per request
//! (`getrusage`: this thread, or wrk as a waited-for child), which says how
//! much of its core the client used when the server is the bottleneck.
//!
//! Rounds: every round runs every client once per cell, in an order rotated
//! by one each round; the report gives per-round numbers, medians, and the
//! median of the per-round ratios.
//!
//! ```text
//! mio [--rounds 7] [--secs 1] [--inflight 1,64,256] --origin-shared ADDR --origin-apart ADDR
//! mio --serve-origin                     # prints its address, serves until killed
//! mio --serve-origin-evented             # the same, one event loop for all connections
//! mio --only mio-small-64 --origin ADDR --requests 20000   # fixed count, for strace/perf
//! ```

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
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
    secs: f64,
    inflight: Vec<usize>,
    origin_shared: Option<SocketAddr>,
    origin_apart: Option<SocketAddr>,
    only: Option<String>,
    origin: Option<SocketAddr>,
    requests: usize,
    serve_origin: bool,
    serve_origin_evented: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 7,
        secs: 1.0,
        inflight: vec![1, 64, 256],
        origin_shared: None,
        origin_apart: None,
        only: None,
        origin: None,
        requests: 20_000,
        serve_origin: false,
        serve_origin_evented: false,
    };
    let mut args = Args::new();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--rounds" => o.rounds = args.num("count"),
            "--secs" => {
                let s = args.value("seconds");
                o.secs = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            "--inflight" => {
                o.inflight = args
                    .value("list")
                    .split(',')
                    .map(|s| num(s.into()))
                    .collect()
            }
            "--origin-shared" => o.origin_shared = args.addr(),
            "--origin-apart" => o.origin_apart = args.addr(),
            "--only" => o.only = Some(args.value("client-body-inflight")),
            "--origin" => o.origin = args.addr(),
            "--requests" => o.requests = args.num("count"),
            "--serve-origin" => o.serve_origin = true,
            "--serve-origin-evented" => o.serve_origin_evented = true,
            other => unknown(other),
        }
    }
    o
}

// ---------------------------------------------------------------------------
// Workloads and clients.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BodyKind {
    Small,
    Big,
}

impl BodyKind {
    const ALL: [BodyKind; 2] = [BodyKind::Small, BodyKind::Big];
    fn path(self) -> &'static str {
        match self {
            BodyKind::Small => "/small",
            BodyKind::Big => "/64k",
        }
    }
    fn name(self) -> &'static str {
        match self {
            BodyKind::Small => "small",
            BodyKind::Big => "64k",
        }
    }
    fn len(self) -> u64 {
        match self {
            BodyKind::Small => origin::SMALL_BODY.len() as u64,
            BodyKind::Big => origin::BIG_LEN as u64,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    Mio,
    MioCollect,
    Tokio,
    /// The raw loop (std + httparse): on this thread for 1 in flight,
    /// one thread per connection for more (the physical limit).
    Raw,
    Wrk,
}

impl Client {
    const ALL: [Client; 5] = [
        Client::Mio,
        Client::MioCollect,
        Client::Tokio,
        Client::Raw,
        Client::Wrk,
    ];
    fn name(self) -> &'static str {
        match self {
            Client::Mio => "mio",
            Client::MioCollect => "mio-collect",
            Client::Tokio => "tokio",
            Client::Raw => "raw",
            Client::Wrk => "wrk",
        }
    }
}

/// When a run stops starting requests: at a time, or after a count.
#[derive(Clone, Copy, Debug)]
enum Until {
    Time(Instant),
    Count(usize),
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    requests: u64,
    elapsed: Duration,
    cpu: Duration,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    /// Client CPU time per request, µs.
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }
    /// Share of one core the client used.
    fn util(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }
}

fn uri(addr: SocketAddr, body: BodyKind) -> Uri {
    format!("http://{addr}{}", body.path())
        .parse()
        .expect("a valid URI")
}

/// `inflight` requests at a time on one `Driver`, until `until`.
fn run_mio(addr: SocketAddr, body: BodyKind, n: usize, until: Until, collect: bool) -> Sample {
    let uri = uri(addr, body);
    let bytes = Arc::new(AtomicU64::new(0));
    let mut driver = Driver::builder()
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build()
        .expect("build the driver");
    let (cpu0, start) = (rusage_cpu(libc::RUSAGE_THREAD), Instant::now());
    let mut started = 0usize;
    let submit = |driver: &mut Driver, started: &mut usize| {
        let request = http::Request::get(uri.clone())
            .body(roundtrip_mio::Body::empty())
            .expect("a valid request");
        *started += 1;
        if collect {
            driver.submit(request);
        } else {
            let bytes = Arc::clone(&bytes);
            driver.submit_with(
                request,
                Receive::stream(move |_, data| {
                    bytes.fetch_add(data.len() as u64, Relaxed);
                    Flow::Continue
                }),
            );
        }
    };
    let more = |started: usize| match until {
        Until::Time(end) => Instant::now() < end,
        Until::Count(total) => started < total,
    };
    for _ in 0..n {
        submit(&mut driver, &mut started);
    }
    let mut done = 0u64;
    while !driver.is_idle() {
        driver.run_once(None).expect("driver poll");
        let mut go = more(started);
        while let Some((_, result)) = driver.take_finished() {
            let response = result.expect("mio GET");
            assert_eq!(response.status(), StatusCode::OK, "mio status");
            if collect {
                bytes.fetch_add(response.body().len() as u64, Relaxed);
            }
            done += 1;
            if go {
                submit(&mut driver, &mut started);
                go = more(started);
            }
        }
    }
    let sample = Sample {
        requests: done,
        elapsed: start.elapsed(),
        cpu: rusage_cpu(libc::RUSAGE_THREAD) - cpu0,
    };
    assert_eq!(bytes.load(Relaxed), done * body.len(), "mio body bytes");
    let stats = driver.stats();
    assert!(stats.dials as usize <= n, "mio dials: {stats:?}");
    sample
}

/// `n` tasks on a current-thread runtime, each sending GETs one after the
/// other on a client shared by all, until `until`.
fn run_tokio(addr: SocketAddr, body: BodyKind, n: usize, until: Until) -> Sample {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let uri = uri(addr, body);
    let client = roundtrip_tokio::Client::builder()
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build();
    let claimed = Arc::new(AtomicUsize::new(0));
    let (cpu0, start) = (rusage_cpu(libc::RUSAGE_THREAD), Instant::now());
    let (done, bytes) = runtime.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, uri, claimed) = (client.clone(), uri.clone(), Arc::clone(&claimed));
                tokio::spawn(async move {
                    let (mut done, mut bytes) = (0u64, 0u64);
                    loop {
                        let go = match until {
                            Until::Time(end) => Instant::now() < end,
                            Until::Count(total) => claimed.fetch_add(1, Relaxed) < total,
                        };
                        if !go {
                            return (done, bytes);
                        }
                        let request = http::Request::get(uri.clone())
                            .body(roundtrip_tokio::Body::empty())
                            .expect("a valid request");
                        let mut response = client.execute(request).await.expect("tokio GET");
                        assert_eq!(response.status(), StatusCode::OK, "tokio status");
                        while let Some(piece) = response.body_mut().chunk().await.expect("body") {
                            bytes += piece.len() as u64;
                        }
                        done += 1;
                    }
                })
            })
            .collect();
        let (mut done, mut bytes) = (0, 0);
        for task in tasks {
            let (d, b) = task.await.expect("a tokio task panicked");
            done += d;
            bytes += b;
        }
        (done, bytes)
    });
    let sample = Sample {
        requests: done,
        elapsed: start.elapsed(),
        cpu: rusage_cpu(libc::RUSAGE_THREAD) - cpu0,
    };
    assert_eq!(bytes, done * body.len(), "tokio body bytes");
    let stats = client.stats();
    // Time-bound runs may end before a late task's first request.
    assert!(stats.dials as usize <= n, "tokio dials: {stats:?}");
    drop(runtime);
    sample
}

/// The raw loop: `n` connections, each on a thread of its own (this one
/// for `n` = 1), each GETting one request after the other until `until`
/// (a count is shared out); CPU time is the process's (all its threads).
fn run_raw(addr: SocketAddr, body: BodyKind, n: usize, until: Until) -> Sample {
    let claimed = Arc::new(AtomicUsize::new(0));
    let expect = body.len() as usize;
    let work = move |claimed: Arc<AtomicUsize>| -> u64 {
        let mut raw = RawLoop::new(addr, body.path(), expect);
        let mut done = 0;
        // Bounded by `until`.
        loop {
            let go = match until {
                Until::Time(end) => Instant::now() < end,
                Until::Count(total) => claimed.fetch_add(1, Relaxed) < total,
            };
            if !go {
                return done;
            }
            raw.get();
            done += 1;
        }
    };
    let (cpu0, start) = (rusage_cpu(libc::RUSAGE_SELF), Instant::now());
    let requests = if n == 1 {
        work(claimed)
    } else {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let claimed = Arc::clone(&claimed);
                std::thread::spawn(move || work(claimed))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a raw loop thread"))
            .sum()
    };
    Sample {
        requests,
        elapsed: start.elapsed(),
        cpu: rusage_cpu(libc::RUSAGE_SELF) - cpu0,
    }
}

/// `taskset -c 0 wrk -t1 -cN -dSECS`: its request count and duration, and
/// its CPU time (a waited-for child).
fn run_wrk(addr: SocketAddr, body: BodyKind, n: usize, secs: f64) -> Sample {
    let cpu0 = rusage_cpu(libc::RUSAGE_CHILDREN);
    let out = Command::new("taskset")
        .args(["-c", "0", "wrk", "-t1", &format!("-c{n}")])
        .arg(format!("-d{}", wrk_duration(secs)))
        .arg(format!("http://{addr}{}", body.path()))
        .output()
        .expect("run taskset wrk (is wrk installed?)");
    let cpu = rusage_cpu(libc::RUSAGE_CHILDREN) - cpu0;
    let text = String::from_utf8_lossy(&out.stdout);
    for warn in ["Non-2xx", "Socket errors"] {
        if let Some(line) = text.lines().find(|l| l.contains(warn)) {
            panic!("wrk ({addr}{}): {}", body.path(), line.trim());
        }
    }
    let (requests, elapsed) = wrk_requests(&text);
    Sample {
        requests,
        elapsed,
        cpu,
    }
}

/// wrk's `-d` argument: whole seconds only (it takes no finer unit).
fn wrk_duration(secs: f64) -> String {
    assert!(
        secs >= 1.0 && secs.fract() == 0.0,
        "--secs {secs}: wrk runs for whole seconds"
    );
    format!("{secs:.0}s")
}

fn run_once(client: Client, addr: SocketAddr, body: BodyKind, n: usize, secs: f64) -> Sample {
    let until = Until::Time(Instant::now() + Duration::from_secs_f64(secs));
    match client {
        Client::Mio => run_mio(addr, body, n, until, false),
        Client::MioCollect => run_mio(addr, body, n, until, true),
        Client::Tokio => run_tokio(addr, body, n, until),
        Client::Raw => run_raw(addr, body, n, until),
        Client::Wrk => run_wrk(addr, body, n, secs),
    }
}

// ---------------------------------------------------------------------------
// Statistics and the report.

type Cell = (BodyKind, usize);
type Results = std::collections::HashMap<(Cell, Client), Vec<Sample>>;

/// Median of the per-round ratios a/b of `f` (requests/s, CPU per request).
fn ratio(r: &Results, cell: Cell, a: Client, b: Client, f: fn(&Sample) -> f64) -> f64 {
    median_ratio(r.get(&(cell, a)), r.get(&(cell, b)), f)
}

fn placement(n: usize) -> &'static str {
    if n == 1 {
        "client and origin on CPU 0"
    } else {
        "client on CPU 0, origin on CPU 1"
    }
}

fn report(results: &Results, cells: &[Cell], o: &Opts) {
    for &(body, n) in cells {
        println!(
            "\n#### `/{}`, {n} in flight ({}): requests/s per round\n",
            body.name(),
            placement(n)
        );
        let rounds: String = (1..=o.rounds).map(|r| format!(" r{r} |")).collect();
        println!("| client |{rounds} median | client CPU µs/req | client CPU use |");
        println!("|---|{}---:|---:|---:|", "---:|".repeat(o.rounds));
        for c in Client::ALL {
            let v = &results[&((body, n), c)];
            let cells: String = v.iter().map(|s| format!(" {:.0} |", s.rps())).collect();
            let med = |f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
            println!(
                "| {} |{cells} **{:.0}** | {:.2} | {:.0}% |",
                c.name(),
                med(Sample::rps),
                med(Sample::cpu_us),
                med(Sample::util) * 100.0
            );
        }
    }
    println!(
        "\n#### Ratios of requests/s (median of the per-round ratios; > 1: the first is faster)\n"
    );
    println!(
        "| body | in flight | mio/raw | mio/wrk | mio/tokio | mio-collect/wrk | mio-collect/tokio | tokio/wrk | tokio/raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &(body, n) in cells {
        let r = |a, b| ratio(results, (body, n), a, b, Sample::rps);
        println!(
            "| {} | {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            body.name(),
            r(Client::Mio, Client::Raw),
            r(Client::Mio, Client::Wrk),
            r(Client::Mio, Client::Tokio),
            r(Client::MioCollect, Client::Wrk),
            r(Client::MioCollect, Client::Tokio),
            r(Client::Tokio, Client::Wrk),
            r(Client::Tokio, Client::Raw),
        );
    }
    println!(
        "\n#### Ratios of client CPU time per request (median of the per-round ratios; < 1: the first needs less)\n"
    );
    println!("| body | in flight | mio/wrk | mio/tokio | mio-collect/mio | tokio/wrk |");
    println!("|---|---:|---:|---:|---:|---:|");
    for &(body, n) in cells {
        let r = |a, b| ratio(results, (body, n), a, b, Sample::cpu_us);
        println!(
            "| {} | {n} | {:.2} | {:.2} | {:.2} | {:.2} |",
            body.name(),
            r(Client::Mio, Client::Wrk),
            r(Client::Mio, Client::Tokio),
            r(Client::MioCollect, Client::Mio),
            r(Client::Tokio, Client::Wrk),
        );
    }
}

fn bench(o: &Opts) {
    let shared = o
        .origin_shared
        .expect("--origin-shared ADDR (an origin pinned to CPU 0; see bench/mio.sh)");
    let apart = o
        .origin_apart
        .expect("--origin-apart ADDR (an origin pinned to CPU 1; see bench/mio.sh)");
    set_affinity(&[0]);
    let cells: Vec<Cell> = BodyKind::ALL
        .into_iter()
        .flat_map(|b| o.inflight.iter().map(move |&n| (b, n)))
        .collect();
    let addr = |n: usize| if n == 1 { shared } else { apart };
    eprintln!("load before: {}", loadavg());
    // Warm-up: code paths, allocator, the origins' threads; not recorded
    // (wrk, a fresh process each run, needs none).
    for &(body, n) in &cells {
        for c in [Client::Mio, Client::MioCollect, Client::Tokio] {
            run_once(c, addr(n), body, n, o.secs / 5.0);
        }
    }
    let mut results = Results::new();
    for round in 0..o.rounds {
        let order = round_order(&Client::ALL, round);
        for &(body, n) in &cells {
            for &c in &order {
                let sample = run_once(c, addr(n), body, n, o.secs);
                results.entry(((body, n), c)).or_default().push(sample);
            }
        }
        round_done(round, o.rounds);
    }
    report(&results, &cells, o);
    eprintln!("load after: {}", loadavg());
}

/// `--only CLIENT-BODY-N`: one client, a fixed request count, nothing else.
fn only(spec: &str, o: &Opts) {
    let parts: Vec<&str> = spec.rsplitn(3, '-').collect();
    let parsed = match parts.as_slice() {
        [n, body, client] => {
            let client = [Client::Mio, Client::MioCollect, Client::Tokio, Client::Raw]
                .into_iter()
                .find(|c| c.name() == *client);
            let body = BodyKind::ALL.into_iter().find(|b| b.name() == *body);
            client.zip(body).zip(n.parse::<usize>().ok())
        }
        _ => None,
    };
    let Some(((client, body), n)) = parsed else {
        panic!("--only {spec}: want {{mio,mio-collect,tokio}}-{{small,64k}}-N");
    };
    let addr = o
        .origin
        .expect("--only needs --origin ADDR (a server outside this process)");
    let total = o.requests.max(n);
    let sample = match client {
        Client::Mio => run_mio(addr, body, n, Until::Count(total), false),
        Client::MioCollect => run_mio(addr, body, n, Until::Count(total), true),
        Client::Tokio => run_tokio(addr, body, n, Until::Count(total)),
        Client::Raw => run_raw(addr, body, n, Until::Count(total)),
        Client::Wrk => unreachable!("not parsed"),
    };
    println!(
        "{spec}: {} requests, {:.0} requests/s, {:.2} µs CPU/request",
        sample.requests,
        sample.rps(),
        sample.cpu_us()
    );
}

fn main() {
    let o = parse_opts();
    if o.serve_origin || o.serve_origin_evented {
        serve_origin(o.serve_origin_evented);
    } else if let Some(spec) = &o.only {
        only(spec, &o);
    } else {
        bench(&o);
    }
}
