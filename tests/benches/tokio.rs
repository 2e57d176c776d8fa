//! Loopback speed benchmark of the tokio backend: `roundtrip_tokio` beside
//! hyper 1 with hyper-util's legacy `Client`, reqwest 0.12 and wrk, all
//! against the same origin process in the same run. `bench/tokio.sh` drives
//! it (and counts syscalls with strace); `BENCHMARKS.md` has results.
//!
//! Server: the minimal origin of `roundtrip_tests::origin`, a separate
//! process (`--serve-origin`, a thread per connection) pinned to CPU 0, so
//! that wrk reaches the same server and `strace -f` sees only the client;
//! for the parallel workloads `bench/tokio.sh` passes the evented one
//! (`--serve-origin-evented`, one event loop for all connections) on CPU 1
//! as `--origin-parallel`: 64 origin threads on the client's CPUs were
//! likely the bottleneck there (mio's bench moved to it for that reason).
//!
//! Workloads; every body is read fully, with each client's own "whole body"
//! call (`ResponseBody::bytes`, `BodyExt::collect`, `Response::bytes`)
//! unless said otherwise, and its length checked:
//! - `small`: sequential keep-alive GETs of `/small` (13 bytes) on a
//!   current-thread runtime, this process pinned to CPU 0 (beside the origin);
//! - `64k`: the same with `/64k` (65536 bytes);
//! - `64k-chunks`: `64k` with the body read piece by piece (`chunk`,
//!   `BodyExt::frame`, `Response::chunk`), lengths summed, nothing copied;
//! - `parallel`: 64 tasks sharing one client, each looping over GETs of
//!   `/small`, on a multi-thread runtime with 2 workers, not pinned. Each
//!   task's first GET (the dials) is made before the clock starts;
//! - `parallel-64k`: the same with `/64k`, a third as many GETs.
//!
//! wrk is the ceiling: `taskset -c 0 wrk -t1 -c1` for the sequential
//! workloads, `wrk -t2 -c64` on all CPUs for the parallel one.
//!
//! Rounds: every round runs every client once per workload, in an order
//! rotated by one each round; the report gives per-round numbers, the median
//! per client, and the median of the per-round ratios.
//!
//! ```text
//! tokio [--rounds 7] [--requests 30000] [--big-requests 10000] [--tasks 64]
//!       [--parallel-requests 38400] [--wrk-secs 1] [--read whole|chunks] [--origin ADDR]
//!       [--origin-parallel ADDR]
//! tokio --serve-origin            # prints its address, serves until killed
//! tokio --serve-origin-evented    # the same, one event loop for all connections
//! tokio --only roundtrip-small --origin ADDR --requests 10000   # for strace, perf
//! ```
//!
//! In `--only CLIENT-WORKLOAD` mode (clients `roundtrip`, `hyper`, `reqwest`)
//! `--requests` counts the timed GETs of the workload (for `parallel`, over
//! all tasks); the untimed dials come on top, so the difference between two
//! runs is the cost of the GETs alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use roundtrip_tests::origin;

mod common;
use common::*;

// ---------------------------------------------------------------------------
// Options.

#[derive(Clone, Debug)]
struct Opts {
    rounds: usize,
    requests: usize,
    big_requests: usize,
    tasks: usize,
    parallel_requests: usize,
    wrk_secs: u64,
    read: Read,
    origin: Option<SocketAddr>,
    /// The origin of the parallel workloads (`bench/tokio.sh`: the evented
    /// one on CPU 1); `origin` when not given.
    origin_parallel: Option<SocketAddr>,
    only: Option<String>,
    serve_origin: bool,
    serve_origin_evented: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 7,
        requests: 30_000,
        big_requests: 10_000,
        tasks: 64,
        parallel_requests: 38_400,
        wrk_secs: 1,
        read: Read::Whole,
        origin: None,
        origin_parallel: None,
        only: None,
        serve_origin: false,
        serve_origin_evented: false,
    };
    let mut args = Args::new();
    while let Some(arg) = args.next_flag() {
        match arg.as_str() {
            "--rounds" => o.rounds = args.num("count"),
            "--requests" => o.requests = args.num("count"),
            "--big-requests" => o.big_requests = args.num("count"),
            "--tasks" => o.tasks = args.num("count"),
            "--parallel-requests" => o.parallel_requests = args.num("count"),
            "--wrk-secs" => o.wrk_secs = args.num("seconds") as u64,
            "--origin" => o.origin = args.addr(),
            "--origin-parallel" => o.origin_parallel = args.addr(),
            "--read" => {
                o.read = match args.value("whole or chunks").as_str() {
                    "whole" => Read::Whole,
                    "chunks" => Read::Chunks,
                    other => panic!("--read {other}: want whole or chunks"),
                }
            }
            "--only" => o.only = Some(args.value("client-workload")),
            "--serve-origin" => o.serve_origin = true,
            "--serve-origin-evented" => o.serve_origin_evented = true,
            other => unknown(other),
        }
    }
    assert!(o.tasks > 0, "--tasks must be at least 1");
    o
}

// ---------------------------------------------------------------------------
// Workloads and clients.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Workload {
    Small,
    Big,
    /// `Big` with the body read piece by piece: shows what the "whole
    /// body" calls add on top of the client (a concatenation, when the
    /// body came in more than one piece).
    BigChunks,
    Parallel,
    /// `Parallel` with 64 KiB bodies (issue #16: at least hyper-util's
    /// rate in every run).
    ParallelBig,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::Small,
        Workload::Big,
        Workload::BigChunks,
        Workload::Parallel,
        Workload::ParallelBig,
    ];
    fn name(self) -> &'static str {
        match self {
            Workload::Small => "small",
            Workload::Big => "64k",
            Workload::BigChunks => "64k-chunks",
            Workload::Parallel => "parallel",
            Workload::ParallelBig => "parallel-64k",
        }
    }
    fn is_big(self) -> bool {
        matches!(
            self,
            Workload::Big | Workload::BigChunks | Workload::ParallelBig
        )
    }
    fn is_parallel(self) -> bool {
        matches!(self, Workload::Parallel | Workload::ParallelBig)
    }
    fn path(self) -> &'static str {
        if self.is_big() { "/64k" } else { "/small" }
    }
    fn body_len(self) -> usize {
        if self.is_big() {
            origin::BIG_LEN
        } else {
            origin::SMALL_BODY.len()
        }
    }
    /// How bodies are read: `--read` (default whole), except for `BigChunks`.
    fn read(self, o: &Opts) -> Read {
        if self == Workload::BigChunks {
            Read::Chunks
        } else {
            o.read
        }
    }
    /// Timed GETs per run.
    fn requests(self, o: &Opts) -> usize {
        match self {
            Workload::Small => o.requests,
            Workload::Big | Workload::BigChunks => o.big_requests,
            Workload::Parallel => o.parallel_requests,
            // A third as many: each moves 64 KiB.
            Workload::ParallelBig => (o.parallel_requests / 3).max(o.tasks),
        }
    }
    /// wrk runs once per round for the same path and concurrency.
    fn has_wrk(self) -> bool {
        self != Workload::BigChunks
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Roundtrip,
    Hyper,
    Reqwest,
    Raw,
    Wrk,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Roundtrip,
        Kind::Hyper,
        Kind::Reqwest,
        Kind::Raw,
        Kind::Wrk,
    ];
    const CLIENTS: [Kind; 3] = [Kind::Roundtrip, Kind::Hyper, Kind::Reqwest];
    /// The name in `--only` specs.
    fn name(self) -> &'static str {
        match self {
            Kind::Roundtrip => "roundtrip",
            Kind::Hyper => "hyper",
            Kind::Reqwest => "reqwest",
            Kind::Raw => "raw",
            Kind::Wrk => "wrk",
        }
    }
    /// The name in the report.
    fn label(self) -> &'static str {
        match self {
            Kind::Roundtrip => "roundtrip-tokio",
            Kind::Hyper => "hyper-util legacy",
            Kind::Reqwest => "reqwest",
            Kind::Raw => "raw loop: std + httparse (no runtime)",
            Kind::Wrk => "wrk",
        }
    }
}

/// How a body is read: with each client's "whole body" call (which may
/// concatenate pieces into one buffer), or piece by piece, counting lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Whole,
    Chunks,
}

type HyperClient = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

/// One client (its pool); clones share it.
#[derive(Clone)]
enum Peer {
    Roundtrip(roundtrip_tokio::Client),
    Hyper(HyperClient),
    Reqwest(reqwest::Client),
}

impl Peer {
    /// Default settings, except room for 64 idle connections per host where
    /// the default is smaller (roundtrip keeps 32; hyper-util and reqwest
    /// keep any number) and no proxy from the environment for reqwest.
    fn new(kind: Kind) -> Peer {
        match kind {
            Kind::Roundtrip => Peer::Roundtrip(
                roundtrip_tokio::Client::builder()
                    .max_idle_per_host(64)
                    .build(),
            ),
            Kind::Hyper => Peer::Hyper(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http(),
            ),
            Kind::Reqwest => Peer::Reqwest(
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("build the reqwest client"),
            ),
            Kind::Wrk => unreachable!("wrk is a process, see run_wrk"),
            Kind::Raw => unreachable!("the raw loop needs no runtime, see run_raw"),
        }
    }

    /// `GET url`, the whole body read; panics unless it is a 200 of
    /// `expect` bytes. Every client is handed the URL as a string.
    async fn get(&self, url: &str, expect: usize, read: Read) {
        let len = match self {
            Peer::Roundtrip(client) => {
                let mut response = client.get(url).send().await.expect("roundtrip GET");
                assert_eq!(response.status(), 200, "roundtrip status");
                let body = response.body_mut();
                match read {
                    Read::Whole => body.bytes(1 << 20).await.expect("roundtrip body").len(),
                    Read::Chunks => {
                        let mut len = 0;
                        while let Some(chunk) = body.chunk().await.expect("roundtrip body") {
                            len += chunk.len();
                        }
                        len
                    }
                }
            }
            Peer::Hyper(client) => {
                let uri = url.parse().expect("a valid URI");
                let response = client.get(uri).await.expect("hyper GET");
                assert_eq!(response.status(), 200, "hyper status");
                let mut body = response.into_body();
                match read {
                    Read::Whole => body.collect().await.expect("hyper body").to_bytes().len(),
                    Read::Chunks => {
                        let mut len = 0;
                        while let Some(frame) = body.frame().await {
                            let frame = frame.expect("hyper body");
                            len += frame.data_ref().map_or(0, |d| d.len());
                        }
                        len
                    }
                }
            }
            Peer::Reqwest(client) => {
                let mut response = client.get(url).send().await.expect("reqwest GET");
                assert_eq!(response.status(), 200, "reqwest status");
                match read {
                    Read::Whole => response.bytes().await.expect("reqwest body").len(),
                    Read::Chunks => {
                        let mut len = 0;
                        while let Some(chunk) = response.chunk().await.expect("reqwest body") {
                            len += chunk.len();
                        }
                        len
                    }
                }
            }
        };
        assert_eq!(len, expect, "body length");
    }
}

fn url(addr: SocketAddr, w: Workload) -> String {
    format!("http://{addr}{}", w.path())
}

/// Requests per second of `requests` sequential GETs on a current-thread
/// runtime on this thread (pinned by the caller); the dial is not timed.
fn run_sequential(kind: Kind, addr: SocketAddr, w: Workload, requests: usize, read: Read) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    let (url, expect) = (url(addr, w), w.body_len());
    rt.block_on(async {
        let peer = Peer::new(kind);
        peer.get(&url, expect, read).await; // the dial
        let start = Instant::now();
        for _ in 0..requests {
            peer.get(&url, expect, read).await;
        }
        requests as f64 / start.elapsed().as_secs_f64()
    })
}

/// Requests per second of `tasks` tasks sharing one client, each looping
/// over GETs of `w`'s path (`requests` in all), on a 2-worker multi-thread
/// runtime on all CPUs. Each task's first GET (its dial) is not timed.
fn run_parallel(kind: Kind, addr: SocketAddr, w: Workload, o: &Opts, requests: usize) -> f64 {
    let (tasks, read) = (o.tasks, w.read(o));
    set_affinity(&all_cpus());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let (url, expect) = (Arc::<str>::from(url(addr, w)), w.body_len());
    let rps = rt.block_on(async {
        let peer = Peer::new(kind);
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (peer, barrier, url) = (peer.clone(), barrier.clone(), url.clone());
                // The remainder of `requests / tasks` goes to the first tasks.
                let mine = requests / tasks + usize::from(i < requests % tasks);
                tokio::spawn(async move {
                    peer.get(&url, expect, read).await;
                    barrier.wait().await;
                    for _ in 0..mine {
                        peer.get(&url, expect, read).await;
                    }
                })
            })
            .collect();
        barrier.wait().await;
        let start = Instant::now();
        for h in handles {
            h.await.expect("a client task panicked");
        }
        requests as f64 / start.elapsed().as_secs_f64()
    });
    drop(rt);
    set_affinity(&[0]);
    rps
}

/// wrk's `Requests/sec`: `-t1 -c1` pinned to CPU 0 for the sequential
/// workloads, `-t<cpus> -c<tasks>` on all CPUs for the parallel one.
fn run_wrk(addr: SocketAddr, w: Workload, o: &Opts) -> f64 {
    let (cpus, t, c) = match w {
        Workload::Parallel | Workload::ParallelBig => {
            (cpu_list(&all_cpus()), all_cpus().len(), o.tasks)
        }
        _ => ("0".to_string(), 1, 1),
    };
    wrk_rps((cpus, t, c), o.wrk_secs, addr, w.path())
}

/// The raw loop: sequential on this thread (pinned by the caller), or for
/// the parallel workload one thread per task, not pinned; each loop's dial
/// is not timed.
fn run_raw(addr: SocketAddr, w: Workload, o: &Opts, requests: usize) -> f64 {
    let (path, expect) = (w.path(), w.body_len());
    if !w.is_parallel() {
        let mut raw = RawLoop::new(addr, path, expect);
        raw.get();
        let start = Instant::now();
        (0..requests).for_each(|_| raw.get());
        return requests as f64 / start.elapsed().as_secs_f64();
    }
    set_affinity(&all_cpus());
    let tasks = o.tasks;
    let barrier = Arc::new(std::sync::Barrier::new(tasks + 1));
    let threads: Vec<_> = (0..tasks)
        .map(|i| {
            let barrier = barrier.clone();
            let mine = requests / tasks + usize::from(i < requests % tasks);
            std::thread::spawn(move || {
                let mut raw = RawLoop::new(addr, path, expect);
                raw.get();
                barrier.wait();
                (0..mine).for_each(|_| raw.get());
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().expect("a raw loop thread panicked");
    }
    let rps = requests as f64 / start.elapsed().as_secs_f64();
    set_affinity(&[0]);
    rps
}

fn run_once(kind: Kind, addr: SocketAddr, w: Workload, o: &Opts, requests: usize) -> f64 {
    match (kind, w) {
        (Kind::Wrk, _) => run_wrk(addr, w, o),
        (Kind::Raw, _) => run_raw(addr, w, o, requests),
        (_, Workload::Parallel | Workload::ParallelBig) => run_parallel(kind, addr, w, o, requests),
        _ => run_sequential(kind, addr, w, requests, w.read(o)),
    }
}

// ---------------------------------------------------------------------------
// Statistics and the report.

type Results = HashMap<(Workload, Kind), Vec<f64>>;

/// Median over rounds of `a / b` within a round.
fn ratio(r: &Results, w: Workload, a: Kind, b: Kind) -> f64 {
    median_ratio(r.get(&(w, a)), r.get(&(w, b)), |x| *x)
}

fn report(results: &Results, o: &Opts) {
    for w in Workload::ALL {
        let how = match w {
            Workload::Parallel | Workload::ParallelBig => format!(
                "{} tasks, {} GETs of {} in all, 2-worker multi-thread runtime, all CPUs, the parallel origin; wrk -t2 -c{}",
                o.tasks,
                w.requests(o),
                w.path(),
                o.tasks
            ),
            Workload::BigChunks => format!(
                "{} sequential GETs of /64k, bodies read piece by piece, pinned to CPU 0",
                w.requests(o)
            ),
            _ => format!(
                "{} sequential GETs of {}, current-thread runtime, pinned to CPU 0; wrk -t1 -c1",
                w.requests(o),
                w.path()
            ),
        };
        println!("\n#### `{}` ({how}): requests/s\n", w.name());
        let rounds = (1..=o.rounds)
            .map(|r| format!(" r{r} |"))
            .collect::<String>();
        println!("| client |{rounds} median |");
        println!("|---|{}---:|", "---:|".repeat(o.rounds));
        for k in Kind::ALL {
            let Some(v) = results.get(&(w, k)) else {
                continue;
            };
            let cells: String = v.iter().map(|x| format!(" {x:.0} |")).collect();
            println!("| {} |{cells} **{:.0}** |", k.label(), median(v.clone()));
        }
    }
    println!("\n#### Ratios (median of the per-round ratios; > 1 means the first is faster)\n");
    println!(
        "| workload | roundtrip/hyper-util | roundtrip/reqwest | roundtrip/raw | roundtrip/wrk | hyper-util/wrk | reqwest/wrk |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for w in Workload::ALL {
        let r = |a, b| {
            let x = ratio(results, w, a, b);
            if x.is_nan() {
                "–".to_string()
            } else {
                format!("{x:.2}")
            }
        };
        println!(
            "| {} | **{}** | {} | {} | {} | {} | {} |",
            w.name(),
            r(Kind::Roundtrip, Kind::Hyper),
            r(Kind::Roundtrip, Kind::Reqwest),
            r(Kind::Roundtrip, Kind::Raw),
            r(Kind::Roundtrip, Kind::Wrk),
            r(Kind::Hyper, Kind::Wrk),
            r(Kind::Reqwest, Kind::Wrk),
        );
    }
}

fn bench(o: &Opts) {
    let mut keep = None;
    let addr = o.origin.unwrap_or_else(|| {
        let p = OriginProcess::start_logged(&[0]);
        let addr = p.addr;
        keep = Some(p);
        addr
    });
    let parallel_addr = o.origin_parallel.unwrap_or(addr);
    let at = |w: Workload| if w.is_parallel() { parallel_addr } else { addr };
    set_affinity(&[0]);
    eprintln!("load before: {}", loadavg());
    // Warm-up: code paths, allocator, the origin's threads; not recorded.
    for w in Workload::ALL {
        for k in Kind::CLIENTS {
            run_once(k, at(w), w, o, w.requests(o) / 10);
        }
    }
    let mut results = Results::new();
    for round in 0..o.rounds {
        let order = round_order(&Kind::ALL, round);
        for w in Workload::ALL {
            for &k in order.iter().filter(|&&k| k != Kind::Wrk || w.has_wrk()) {
                let rps = run_once(k, at(w), w, o, w.requests(o));
                results.entry((w, k)).or_default().push(rps);
            }
        }
        round_done(round, o.rounds);
    }
    report(&results, o);
    eprintln!("load after: {}", loadavg());
    drop(keep);
}

/// `--only CLIENT-WORKLOAD`: one client, one workload, nothing else.
fn only(spec: &str, o: &Opts) {
    let (kind, w) = spec
        .split_once('-')
        .and_then(|(k, w)| {
            let kind = Kind::CLIENTS.into_iter().find(|x| x.name() == k)?;
            let w = Workload::ALL.into_iter().find(|x| x.name() == w)?;
            Some((kind, w))
        })
        .unwrap_or_else(|| {
            panic!("--only {spec}: want {{roundtrip,hyper,reqwest}}-{{small,64k,parallel}}")
        });
    let addr = o
        .origin
        .expect("--only needs --origin ADDR (a server outside this process)");
    let addr = match w.is_parallel() {
        true => o.origin_parallel.unwrap_or(addr),
        false => addr,
    };
    set_affinity(&[0]);
    let rps = run_once(kind, addr, w, o, o.requests);
    println!("{spec}: {} requests, {rps:.0} requests/s", o.requests);
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
