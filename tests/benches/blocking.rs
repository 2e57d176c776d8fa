//! Loopback speed benchmark of the blocking backend: `roundtrip_blocking`
//! beside ureq 3, the raw loop (std + httparse: the speed-of-light baseline) and
//! wrk, all against the same servers in the same run. `bench/blocking.sh`
//! drives it and says how to read the output; `BENCHMARKS.md` has results.
//!
//! Servers: the minimal origin of `roundtrip_tests::origin`, run as separate
//! processes (`--serve-origin`) so that wrk can reach it, and the nginx
//! fixture. Each is run twice: pinned to CPU 0 for the sequential workloads
//! (client and server then share one CPU, as `taskset -c 0` does), and on
//! all CPUs for the parallel one.
//!
//! Workloads: `small` (sequential keep-alive GETs of 13 bytes), `64k`
//! (sequential, 65536 bytes), both with this thread and wrk pinned to CPU 0;
//! `parallel` (64 threads × 500 GETs of the small body, nothing pinned).
//!
//! Rounds: every round runs every client once per (server, workload), in an
//! order rotated by one each round; the report gives per-round numbers, the
//! median per client, and the median of the per-round ratios.
//!
//! ```text
//! blocking [--rounds 7] [--requests 20000] [--big-requests 10000] [--threads 64]
//!          [--per-thread 500] [--wrk-secs 1] [--max-secs S]
//!          [--origin ADDR] [--origin-free ADDR] [--no-nginx]
//! blocking --serve-origin            # prints its address, serves until killed
//! blocking --only roundtrip-small --origin ADDR --requests 10000   # for strace
//! blocking --memory --origin ADDR    # idle-connection heap and allocations
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_tests::fixtures::Nginx;
use roundtrip_tests::origin;

mod common;
use common::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// Options.

#[derive(Clone, Debug)]
struct Opts {
    rounds: usize,
    max_secs: Option<u64>,
    requests: usize,
    big_requests: usize,
    threads: usize,
    per_thread: usize,
    wrk_secs: u64,
    origin: Option<SocketAddr>,
    origin_free: Option<SocketAddr>,
    nginx: bool,
    only: Option<String>,
    memory: bool,
    serve_origin: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 7,
        max_secs: None,
        requests: 20_000,
        big_requests: 10_000,
        threads: 64,
        per_thread: 500,
        wrk_secs: 1,
        origin: None,
        origin_free: None,
        nginx: true,
        only: None,
        memory: false,
        serve_origin: false,
    };
    let mut args = Args::new();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--rounds" => o.rounds = args.num("count"),
            "--max-secs" => o.max_secs = Some(args.num("seconds") as u64),
            "--requests" => o.requests = args.num("count"),
            "--big-requests" => o.big_requests = args.num("count"),
            "--threads" => o.threads = args.num("count"),
            "--per-thread" => o.per_thread = args.num("count"),
            "--wrk-secs" => o.wrk_secs = args.num("seconds") as u64,
            "--origin" => o.origin = args.addr(),
            "--origin-free" => o.origin_free = args.addr(),
            "--no-nginx" => o.nginx = false,
            "--only" => o.only = Some(args.value("client-workload")),
            "--memory" => o.memory = true,
            "--serve-origin" => o.serve_origin = true,
            other => unknown(other),
        }
    }
    o
}

// ---------------------------------------------------------------------------
// Servers.

/// The nginx fixture's pid, from the pid file it writes into its dir.
fn nginx_pid(nginx: &Nginx) -> Option<u32> {
    let path = nginx.dir().join("nginx.pid");
    for _ in 0..50 {
        if let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(pid);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// One server, as a pinned instance (sequential runs) and a free one.
struct Server {
    name: &'static str,
    pinned: SocketAddr,
    free: SocketAddr,
}

// ---------------------------------------------------------------------------
// Clients. Each `get` sends one GET and reads the whole body into a reused
// buffer, checking its length.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Workload {
    Small,
    Big,
    Parallel,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Small, Workload::Big, Workload::Parallel];
    fn name(self) -> &'static str {
        match self {
            Workload::Small => "small",
            Workload::Big => "64k",
            Workload::Parallel => "parallel",
        }
    }
    fn path(self) -> &'static str {
        if self == Workload::Big {
            "/64k"
        } else {
            "/small"
        }
    }
    fn body_len(self) -> usize {
        if self == Workload::Big {
            origin::BIG_LEN
        } else {
            origin::SMALL_BODY.len()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Roundtrip,
    Ureq,
    Std,
    Wrk,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Roundtrip, Kind::Ureq, Kind::Std, Kind::Wrk];
    fn name(self) -> &'static str {
        match self {
            Kind::Roundtrip => "roundtrip",
            Kind::Ureq => "ureq",
            Kind::Std => "raw",
            Kind::Wrk => "wrk",
        }
    }
}

/// Sends GETs of one path and reads each body fully.
trait Driver: Send {
    fn get(&mut self);
}

/// Body buffer capacity: a 64 KiB body fits without growing it.
const BODY_BUF: usize = 128 * 1024;

struct RoundtripDriver {
    client: roundtrip_blocking::Client,
    url: String,
    expect: usize,
    buf: Vec<u8>,
}

impl Driver for RoundtripDriver {
    fn get(&mut self) {
        let mut response = self.client.get(&self.url).send().expect("roundtrip GET");
        self.buf.clear();
        response
            .body_mut()
            .read_to_end(&mut self.buf)
            .expect("roundtrip body");
        assert_eq!(self.buf.len(), self.expect, "roundtrip body length");
    }
}

struct UreqDriver {
    agent: ureq::Agent,
    url: String,
    expect: usize,
    buf: Vec<u8>,
}

impl Driver for UreqDriver {
    fn get(&mut self) {
        let mut response = self.agent.get(&self.url).call().expect("ureq GET");
        self.buf.clear();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut self.buf)
            .expect("ureq body");
        assert_eq!(self.buf.len(), self.expect, "ureq body length");
    }
}

impl Driver for RawLoop {
    fn get(&mut self) {
        RawLoop::get(self);
    }
}

/// One client (its pool), from which drivers for any path are made.
enum Shared {
    Roundtrip(roundtrip_blocking::Client),
    Ureq(ureq::Agent),
    Std,
}

impl Shared {
    fn new(kind: Kind) -> Shared {
        match kind {
            // 64 idle per host so that the parallel run keeps its
            // connections; otherwise both are in their default configuration.
            Kind::Roundtrip => Shared::Roundtrip(
                roundtrip_blocking::Client::builder()
                    .max_idle_per_host(64)
                    .build(),
            ),
            Kind::Ureq => Shared::Ureq(
                ureq::Agent::config_builder()
                    .max_idle_connections(64)
                    .max_idle_connections_per_host(64)
                    .build()
                    .into(),
            ),
            Kind::Std => Shared::Std,
            Kind::Wrk => unreachable!("wrk is a process, see run_wrk"),
        }
    }

    /// A driver on this client for `w`'s path; the std loop has its own socket.
    fn driver(&self, addr: SocketAddr, w: Workload) -> Box<dyn Driver> {
        let url = format!("http://{addr}{}", w.path());
        let (expect, buf) = (w.body_len(), Vec::with_capacity(BODY_BUF));
        match self {
            Shared::Roundtrip(client) => Box::new(RoundtripDriver {
                client: client.clone(),
                url,
                expect,
                buf,
            }),
            Shared::Ureq(agent) => Box::new(UreqDriver {
                agent: agent.clone(),
                url,
                expect,
                buf,
            }),
            Shared::Std => Box::new(RawLoop::new(addr, w.path(), expect)),
        }
    }
}

/// `n` drivers of one kind sharing one client, for one path.
fn drivers(kind: Kind, addr: SocketAddr, w: Workload, n: usize) -> Vec<Box<dyn Driver>> {
    let shared = Shared::new(kind);
    (0..n).map(|_| shared.driver(addr, w)).collect()
}

/// Requests per second of `requests` sequential GETs on this thread.
fn run_sequential(kind: Kind, addr: SocketAddr, w: Workload, requests: usize) -> f64 {
    let mut driver = drivers(kind, addr, w, 1).pop().expect("one driver");
    let start = Instant::now();
    for _ in 0..requests {
        driver.get();
    }
    requests as f64 / start.elapsed().as_secs_f64()
}

/// Requests per second of `threads` threads doing `per_thread` GETs each,
/// from a common start (connects included: each thread's first request dials).
fn run_parallel(kind: Kind, addr: SocketAddr, threads: usize, per_thread: usize) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = drivers(kind, addr, Workload::Parallel, threads)
        .into_iter()
        .map(|mut driver| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..per_thread {
                    driver.get();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("a client thread panicked");
    }
    (threads * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// wrk's `Requests/sec`: `-t1 -c1` pinned to CPU 0 for the sequential
/// workloads, `-t<cpus> -c<threads>` on all CPUs for the parallel one.
fn run_wrk(addr: SocketAddr, w: Workload, o: &Opts) -> f64 {
    let (cpus, t, c) = match w {
        Workload::Parallel => (cpu_list(&all_cpus()), all_cpus().len(), o.threads),
        _ => ("0".to_string(), 1, 1),
    };
    wrk_rps((cpus, t, c), o.wrk_secs, addr, w.path())
}

/// Sequential requests per run: `--big-requests` for `/64k`.
fn requests_for(w: Workload, o: &Opts) -> usize {
    if w == Workload::Big {
        o.big_requests
    } else {
        o.requests
    }
}

fn run_once(kind: Kind, server: &Server, w: Workload, o: &Opts, requests: usize) -> f64 {
    match (kind, w) {
        (Kind::Wrk, _) => run_wrk(
            if w == Workload::Parallel {
                server.free
            } else {
                server.pinned
            },
            w,
            o,
        ),
        (_, Workload::Parallel) => {
            set_affinity(&all_cpus());
            let rps = run_parallel(kind, server.free, o.threads, o.per_thread);
            set_affinity(&[0]);
            rps
        }
        _ => run_sequential(kind, server.pinned, w, requests),
    }
}

// ---------------------------------------------------------------------------
// Statistics and the report.

type Results = HashMap<(&'static str, Workload, Kind), Vec<f64>>;

fn ratio(r: &Results, key: (&'static str, Workload), a: Kind, b: Kind) -> f64 {
    median_ratio(r.get(&(key.0, key.1, a)), r.get(&(key.0, key.1, b)), |x| *x)
}

fn report(results: &Results, servers: &[Server], o: &Opts, rounds_done: usize) {
    for s in servers {
        for w in Workload::ALL {
            let how = match w {
                Workload::Parallel => {
                    format!("{} threads × {} GETs, all CPUs", o.threads, o.per_thread)
                }
                _ => format!("{} sequential GETs, pinned to CPU 0", requests_for(w, o)),
            };
            println!(
                "\n#### {} `/{}` ({}): requests/s\n",
                s.name,
                w.path().trim_start_matches('/'),
                how
            );
            let rounds = (1..=rounds_done)
                .map(|r| format!(" r{r} |"))
                .collect::<String>();
            println!("| client |{rounds} median |");
            println!("|---|{}---:|", "---:|".repeat(rounds_done));
            for k in Kind::ALL {
                let v = &results[&(s.name, w, k)];
                let cells: String = v.iter().map(|x| format!(" {x:.0} |")).collect();
                println!("| {} |{cells} **{:.0}** |", k.name(), median(v.clone()));
            }
        }
    }
    println!("\n#### Ratios (median of the per-round ratios)\n");
    println!(
        "| server | workload | roundtrip/ureq | roundtrip/wrk | ureq/wrk | raw/wrk | roundtrip/raw |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for s in servers {
        for w in Workload::ALL {
            let r = |a, b| ratio(results, (s.name, w), a, b);
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                s.name,
                w.name(),
                r(Kind::Roundtrip, Kind::Ureq),
                r(Kind::Roundtrip, Kind::Wrk),
                r(Kind::Ureq, Kind::Wrk),
                r(Kind::Std, Kind::Wrk),
                r(Kind::Roundtrip, Kind::Std),
            );
        }
    }
}

fn bench(o: &Opts) {
    let pinned_cpu = [0];
    let free_cpus = all_cpus();
    let mut keep = Vec::new();
    let mut origin_at = |given: Option<SocketAddr>, cpus: &[usize]| {
        given.unwrap_or_else(|| {
            let p = OriginProcess::start_logged(cpus);
            let addr = p.addr;
            keep.push(p);
            addr
        })
    };
    let mut servers = vec![Server {
        name: "origin",
        pinned: origin_at(o.origin, &pinned_cpu),
        free: origin_at(o.origin_free, &free_cpus),
    }];
    // nginx inherits the affinity of the thread that starts it.
    let mut nginxes = Vec::new();
    if o.nginx {
        let mut start = |cpus: &[usize]| {
            set_affinity(cpus);
            let n = Nginx::start_for_bench()
                .unwrap_or_else(|skip| panic!("nginx: {skip} (or pass --no-nginx)"));
            let pid = nginx_pid(&n);
            let allowed = pid.map_or("?".into(), allowed_cpus);
            eprintln!("nginx pid {pid:?} on {} (cpus {allowed})", n.addr());
            let addr = n.addr();
            nginxes.push(n);
            addr
        };
        let pinned = start(&pinned_cpu);
        let free = start(&free_cpus);
        servers.push(Server {
            name: "nginx",
            pinned,
            free,
        });
    }
    set_affinity(&pinned_cpu);
    eprintln!("load before: {}", loadavg());
    // Warm-up: code paths, allocator, the servers' caches; not recorded.
    for s in &servers {
        for w in Workload::ALL {
            for k in [Kind::Roundtrip, Kind::Ureq, Kind::Std] {
                let _ = run_once(k, s, w, o, requests_for(w, o) / 10);
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
        let order = round_order(&Kind::ALL, round);
        for s in &servers {
            for w in Workload::ALL {
                for &k in &order {
                    let rps = run_once(k, s, w, o, requests_for(w, o));
                    results.entry((s.name, w, k)).or_default().push(rps);
                }
            }
        }
        slowest = slowest.max(round_start.elapsed());
        rounds_done += 1;
        round_done(round, o.rounds);
    }
    report(&results, &servers, o, rounds_done);
    eprintln!("load after: {}", loadavg());
}

// ---------------------------------------------------------------------------
// `--only`: one client, one workload, nothing else (for strace and perf).

fn only(spec: &str, o: &Opts) {
    let (kind, w) = spec
        .split_once('-')
        .and_then(|(k, w)| {
            let kind = [Kind::Roundtrip, Kind::Ureq, Kind::Std]
                .into_iter()
                .find(|x| x.name() == k)?;
            let w = Workload::ALL.into_iter().find(|x| x.name() == w)?;
            Some((kind, w))
        })
        .unwrap_or_else(|| {
            panic!("--only {spec}: want {{roundtrip,ureq,raw}}-{{small,64k,parallel}}")
        });
    let addr = o
        .origin
        .expect("--only needs --origin ADDR (a server outside this process)");
    let rps = match w {
        Workload::Parallel => run_parallel(kind, addr, o.threads, o.per_thread),
        _ => run_sequential(kind, addr, w, o.requests),
    };
    let n = if w == Workload::Parallel {
        o.threads * o.per_thread
    } else {
        o.requests
    };
    println!("{spec}: {n} requests, {rps:.0} requests/s");
}

// ---------------------------------------------------------------------------
// `--memory`: heap held by an idle pooled connection, allocations per request.

fn memory(o: &Opts) {
    let addr = o
        .origin
        .expect("--memory needs --origin ADDR (a server outside this process)");
    println!(
        "| client | idle conn after one 13 B response | after one 64 KiB response | after 64 KiB then 10 × 13 B | allocations per 13 B GET | per 64 KiB GET |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in [Kind::Roundtrip, Kind::Ureq, Kind::Std] {
        // Warm-up with a throwaway client: one-time statics are not the
        // connection's.
        for w in [Workload::Small, Workload::Big] {
            drivers(kind, addr, w, 1).pop().expect("one driver").get();
        }
        // Heap held after `gets` on a fresh client (one connection, idle in
        // its pool), the drivers' own body buffers excluded.
        let idle = |gets: &[(Workload, usize)]| {
            let shared = Shared::new(kind);
            let mut small = shared.driver(addr, Workload::Small);
            let mut big = shared.driver(addr, Workload::Big);
            LIVE.store(0, Relaxed);
            COUNTING.store(true, Relaxed);
            for &(w, n) in gets {
                let driver = if w == Workload::Big {
                    &mut big
                } else {
                    &mut small
                };
                (0..n).for_each(|_| driver.get());
            }
            COUNTING.store(false, Relaxed);
            LIVE.load(Relaxed)
        };
        let after_small = idle(&[(Workload::Small, 1)]);
        let after_big = idle(&[(Workload::Big, 1)]);
        let after_both = idle(&[(Workload::Big, 1), (Workload::Small, 10)]);
        let per_get = |w: Workload| {
            let mut driver = drivers(kind, addr, w, 1).pop().expect("one driver");
            driver.get(); // the dial is not counted
            ALLOCS.store(0, Relaxed);
            COUNTING.store(true, Relaxed);
            let n = 1000;
            (0..n).for_each(|_| driver.get());
            COUNTING.store(false, Relaxed);
            ALLOCS.load(Relaxed) as f64 / n as f64
        };
        let (small, big) = (per_get(Workload::Small), per_get(Workload::Big));
        println!(
            "| {} | {after_small} B | {after_big} B | {after_both} B | {small:.1} | {big:.1} |",
            kind.name()
        );
    }
    println!();
    println!(
        "The raw loop's one buffer (the largest body + 16 KiB) is its read buffer and its body's at once; \
         it is made with the driver, before the count starts, so its idle columns show 0 B (roundtrip's and \
         ureq's read buffers are counted, their callers' body buffers are not)."
    );
}

fn main() {
    let o = parse_opts();
    if o.serve_origin {
        serve_origin(false);
    } else if let Some(spec) = &o.only {
        only(spec, &o);
    } else if o.memory {
        memory(&o);
    } else {
        bench(&o);
    }
}
