//! The tokio and blocking clients of `many --client` and `many --memory`
//! (the mio one is in `many.rs`): N requests in flight over N connections
//! of one client, each body read piece by piece and counted, never
//! collected whole.
//!
//! - tokio: one `roundtrip_tokio::Client` shared by N tasks on a
//!   current-thread runtime (one thread, as the mio driver has);
//! - blocking: one `roundtrip_blocking::Client` shared by N threads of
//!   [`STACK`] bytes of stack, each reading its bodies with `Read` into a
//!   [`READ_BUF`]-byte buffer on its stack. The threads' stacks are counted
//!   apart (issue #16 says "plus the thread's stack"): each thread, as it
//!   ends, counts the pages of its stack that are resident (`mincore`).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roundtrip_mio::http::{StatusCode, Uri};

use super::{
    Backend, Breakdown, COUNTING, Measured, Opts, Run, Snapshot, body_len, check_pool, idle_rss,
    raise_nofile, small_uri, status_kib, trim_heap,
};

/// Stack size of each blocking client thread: 64 KiB, a 32nd of std's
/// 2 MiB default, room for the 8 KiB read buffer beside the client's own
/// frames with a wide margin. 24 KiB of it is resident per thread at the
/// end of a run here (`/small` and `/64k` alike; each run's `stacks_kib`
/// says): the 8 KiB a thread that does nothing has (its TLS and first
/// frames), the buffer, and at most 8 KiB of the client's frames.
pub const STACK: usize = 64 * 1024;

/// The buffer each blocking thread reads bodies into: std's default buffer
/// size (`io::copy`, `BufReader`), what a caller streaming a body to a file
/// or a hasher would most likely use.
pub const READ_BUF: usize = 8 * 1024;

/// The warm-up, as mio's: this many connections (tasks, threads) ...
const WARM_CONNS: usize = 8;
/// ... making this many requests each (200 in all).
const WARM_REQUESTS: u64 = 25;

/// User + system CPU time of this process: every thread, ended ones too.
fn process_cpu() -> Duration {
    super::rusage_cpu(libc::RUSAGE_SELF)
}

// ---------------------------------------------------------------------------
// The moment all N are in flight (`--memory`).

/// Counts the requests in flight and takes the `--memory` snapshot once:
/// the first time all `n` are in flight after `warm * n` have finished. On
/// tokio's one thread the moment is exact; with threads it is "every thread
/// between the start of a request and the end of its body", the others
/// running on meanwhile.
struct Probe {
    n: usize,
    warm: u64,
    in_flight: AtomicUsize,
    done: AtomicU64,
    taken: AtomicBool,
    /// The counts and the RSS (KiB) at that moment.
    snapshot: Mutex<Option<(Snapshot, u64)>>,
}

impl Probe {
    fn new(n: usize, warm: u64) -> Probe {
        Probe {
            n,
            warm,
            in_flight: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            taken: AtomicBool::new(false),
            snapshot: Mutex::new(None),
        }
    }

    fn start(&self) {
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        if now == self.n
            && self.done.load(Relaxed) >= self.warm * self.n as u64
            && !self.taken.swap(true, Relaxed)
        {
            let taken = (Snapshot::take(), status_kib("VmRSS"));
            *self.snapshot.lock().expect("probe lock") = Some(taken);
        }
    }

    fn end(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.done.fetch_add(1, Relaxed);
    }

    fn take(&self) -> Option<(Snapshot, u64)> {
        self.snapshot.lock().expect("probe lock").take()
    }
}

/// What one connection's loop did.
#[derive(Default)]
struct Loop {
    requests: u64,
    bytes: u64,
    /// Resident bytes of the thread's stack as it ended (blocking).
    stack: u64,
}

impl std::iter::Sum for Loop {
    fn sum<I: Iterator<Item = Loop>>(iter: I) -> Loop {
        iter.fold(Loop::default(), |a, b| Loop {
            requests: a.requests + b.requests,
            bytes: a.bytes + b.bytes,
            stack: a.stack + b.stack,
        })
    }
}

// ---------------------------------------------------------------------------
// tokio.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime")
}

/// A client for `n` connections to one host, all kept idle after use.
fn tokio_client(n: usize) -> roundtrip_tokio::Client {
    roundtrip_tokio::Client::builder()
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build()
}

/// `n` tasks sharing `client`, each looping over GETs of `uri` until
/// `deadline` or `each` responses, each body counted piece by piece.
async fn run_tokio(
    client: &roundtrip_tokio::Client,
    uri: &Uri,
    n: usize,
    (deadline, each): (Instant, u64),
    probe: Option<&Arc<Probe>>,
) -> (Run, Loop) {
    let (cpu0, start) = (process_cpu(), Instant::now());
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, uri, probe) = (client.clone(), uri.clone(), probe.cloned());
            tokio::spawn(async move {
                let mut done = Loop::default();
                // Bounded by `each` and by `deadline`.
                while done.requests < each && Instant::now() < deadline {
                    if let Some(p) = &probe {
                        p.start();
                    }
                    let mut response = client.get(&uri).send().await.expect("tokio GET");
                    assert_eq!(response.status(), StatusCode::OK, "tokio status");
                    let mut len = 0;
                    // Bounded by the body: each piece is some of it.
                    while let Some(piece) = response.body_mut().chunk().await.expect("tokio body") {
                        len += piece.len() as u64;
                    }
                    assert_eq!(len, body_len(), "tokio body length");
                    drop(response);
                    if let Some(p) = &probe {
                        p.end();
                    }
                    done.requests += 1;
                    done.bytes += len;
                }
                done
            })
        })
        .collect();
    let mut each_done = Vec::with_capacity(n);
    for task in tasks {
        each_done.push(task.await.expect("a tokio client task panicked"));
    }
    let total: Loop = each_done.into_iter().sum();
    assert_eq!(total.bytes, total.requests * body_len(), "tokio body bytes");
    let run = Run {
        requests: total.requests,
        elapsed: start.elapsed(),
        cpu: process_cpu() - cpu0,
    };
    (run, total)
}

/// The warm-up of the tokio client: [`WARM_CONNS`] tasks on a client then
/// dropped, and the free heap handed back.
fn warm_tokio(rt: &tokio::runtime::Runtime, uri: &Uri) {
    let until = (Instant::now() + Duration::from_secs(5), WARM_REQUESTS);
    let client = tokio_client(WARM_CONNS);
    rt.block_on(run_tokio(&client, uri, WARM_CONNS, until, None));
    drop(client);
    trim_heap();
}

/// `--client --backend tokio`: one timed run in this (fresh) process.
fn client_tokio(o: &Opts, addr: SocketAddr) {
    let (rt, uri, n) = (runtime(), small_uri(addr), o.conns);
    let _in_runtime = rt.enter(); // for the drops of clients and their sockets
    warm_tokio(&rt, &uri);
    let client = tokio_client(n);
    let rss_before = status_kib("VmRSS");
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let (run, _) = rt.block_on(run_tokio(&client, &uri, n, (deadline, u64::MAX), None));
    let hwm = status_kib("VmHWM");
    check_pool("tokio", client.stats(), n);
    Measured::after(run, rss_before, hwm, None).print();
}

// ---------------------------------------------------------------------------
// blocking.

/// A client for `n` connections to one host, all kept idle after use.
fn blocking_client(n: usize) -> roundtrip_blocking::Client {
    roundtrip_blocking::Client::builder()
        .max_conns_per_host(Some(n))
        .max_idle_per_host(n)
        .max_idle_total(n)
        .build()
}

/// `n` threads of `stack` bytes sharing `client`, from a common start each
/// looping over GETs of `uri` until `deadline` or `each` responses, each
/// body read with `Read` into a [`READ_BUF`]-byte buffer on the thread's
/// stack and counted.
fn run_blocking(
    client: &roundtrip_blocking::Client,
    uri: &Uri,
    (n, stack): (usize, usize),
    (deadline, each): (Instant, u64),
    probe: Option<&Arc<Probe>>,
) -> (Run, Loop) {
    let (cpu0, start) = (process_cpu(), Instant::now());
    // All start together, as the tasks of a runtime do: the first ones
    // spawned would otherwise be done with short runs (`--memory`) before
    // the last ones start.
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (client, uri, probe) = (client.clone(), uri.clone(), probe.cloned());
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let mut done = Loop::default();
                    let mut buf = [0; READ_BUF];
                    barrier.wait();
                    // Bounded by `each` and by `deadline`.
                    while done.requests < each && Instant::now() < deadline {
                        if let Some(p) = &probe {
                            p.start();
                        }
                        let mut response = client.get(&uri).send().expect("blocking GET");
                        assert_eq!(response.status(), StatusCode::OK, "blocking status");
                        let mut len = 0;
                        // Bounded by the body: each read is some of it, or 0 at its end.
                        loop {
                            match response.body_mut().read(&mut buf).expect("blocking body") {
                                0 => break,
                                got => len += got as u64,
                            }
                        }
                        assert_eq!(len, body_len(), "blocking body length");
                        drop(response);
                        if let Some(p) = &probe {
                            p.end();
                        }
                        done.requests += 1;
                        done.bytes += len;
                    }
                    done.stack = resident_stack();
                    done
                })
                .expect("spawn a blocking client thread")
        })
        .collect();
    let total: Loop = threads
        .into_iter()
        .map(|t| t.join().expect("a blocking client thread panicked"))
        .sum();
    assert_eq!(
        total.bytes,
        total.requests * body_len(),
        "blocking body bytes"
    );
    let run = Run {
        requests: total.requests,
        elapsed: start.elapsed(),
        cpu: process_cpu() - cpu0,
    };
    (run, total)
}

/// Resident bytes of this thread's stack (its whole mapping as
/// `pthread_getattr_np` gives it, the thread's TLS included), by `mincore`.
fn resident_stack() -> u64 {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` and destroyed
    // once read; `mincore` gets a page-aligned range of this thread's stack,
    // mapped while the thread runs, and one byte per page of it in `pages`.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let (mut addr, mut size) = (std::ptr::null_mut(), 0);
        assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let low = addr as usize / page * page;
        let len = (addr as usize + size).div_ceil(page) * page - low;
        let mut pages = vec![0u8; len / page];
        let rc = libc::mincore(low as *mut libc::c_void, len, pages.as_mut_ptr());
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        (pages.iter().filter(|&&p| p & 1 == 1).count() * page) as u64
    }
}

/// The warm-up of the blocking client: [`WARM_CONNS`] threads on a client
/// then dropped, and the free heap handed back. The threads have std's
/// default stack size (2 MiB), which glibc's stack cache does not hand on
/// to the measured threads (it reuses a cached stack only for a thread
/// asking at least a quarter of its size), so that no measured stack is
/// resident before.
fn warm_blocking(uri: &Uri) {
    let until = (Instant::now() + Duration::from_secs(5), WARM_REQUESTS);
    let client = blocking_client(WARM_CONNS);
    run_blocking(&client, uri, (WARM_CONNS, 2 << 20), until, None);
    drop(client);
    trim_heap();
}

/// `--client --backend blocking`: one timed run in this (fresh) process.
fn client_blocking(o: &Opts, addr: SocketAddr) {
    let (uri, n) = (small_uri(addr), o.conns);
    warm_blocking(&uri);
    let client = blocking_client(n);
    let rss_before = status_kib("VmRSS");
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let (run, done) = run_blocking(&client, &uri, (n, STACK), (deadline, u64::MAX), None);
    let hwm = status_kib("VmHWM");
    check_pool("blocking", client.stats(), n);
    Measured::after(run, rss_before, hwm, Some(done.stack / 1024)).print();
}

// ---------------------------------------------------------------------------
// Both.

/// `--client` for tokio and blocking.
pub fn client(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    match o.backend {
        Backend::Tokio => client_tokio(o, addr),
        Backend::Blocking => client_blocking(o, addr),
        Backend::Mio => unreachable!("the mio client is many.rs's"),
    }
}

/// `--memory` for tokio and blocking: the byte breakdown as for mio, with
/// all N requests in flight after each connection has carried two.
pub fn memory(o: &Opts, addr: SocketAddr) {
    raise_nofile(o.conns as u64 + 1024, o.conns as u64 + 64);
    let (uri, n) = (small_uri(addr), o.conns);
    let breakdown = match o.backend {
        Backend::Tokio => memory_tokio(&uri, n),
        Backend::Blocking => memory_blocking(&uri, n),
        Backend::Mio => unreachable!("the mio breakdown is many.rs's"),
    };
    breakdown.print(n);
}

fn memory_tokio(uri: &Uri, n: usize) -> Breakdown {
    let rt = runtime();
    let _in_runtime = rt.enter();
    warm_tokio(&rt, uri);
    let probe = Arc::new(Probe::new(n, 2));
    let before = start_counting();
    // Four requests per connection (as mio's), within a minute.
    let until = (Instant::now() + Duration::from_secs(60), 4);
    let client = tokio_client(n);
    let (run, _) = rt.block_on(run_tokio(&client, uri, n, until, Some(&probe)));
    after_memory_run(run, before, &probe, || client.stats(), None, n)
}

fn memory_blocking(uri: &Uri, n: usize) -> Breakdown {
    warm_blocking(uri);
    let probe = Arc::new(Probe::new(n, 2));
    let before = start_counting();
    // Three seconds: with threads on one CPU, the first ones woken carry a
    // few requests each before the last ones start, so a count per thread
    // would end before all N are ever in flight together.
    let until = (Instant::now() + Duration::from_secs(3), u64::MAX);
    let client = blocking_client(n);
    let (run, done) = run_blocking(&client, uri, (n, STACK), until, Some(&probe));
    after_memory_run(run, before, &probe, || client.stats(), Some(done.stack), n)
}

/// Counting starts: the counts and the RSS (KiB) before the first
/// connection.
fn start_counting() -> (Snapshot, u64) {
    COUNTING.store(true, Relaxed);
    (Snapshot::take(), status_kib("VmRSS"))
}

/// The measurements after a `--memory` run, its client still alive (idle
/// connections in its pool): peak, idle counts and RSS; counting ends.
fn after_memory_run(
    run: Run,
    (base, rss_before): (Snapshot, u64),
    probe: &Probe,
    stats: impl Fn() -> roundtrip_tokio::PoolStats,
    stacks: Option<u64>,
    n: usize,
) -> Breakdown {
    let hwm = status_kib("VmHWM");
    let idle = Snapshot::take();
    let stats = stats();
    assert_eq!(
        stats.idle, n,
        "every connection idle after the run: {stats:?}"
    );
    let (rss_idle, rss_idle_trimmed) = idle_rss();
    COUNTING.store(false, Relaxed);
    Breakdown {
        requests: run.requests,
        base,
        rss_before,
        in_flight: probe.take(),
        hwm,
        idle,
        rss_idle,
        rss_idle_trimmed,
        stacks,
    }
}
