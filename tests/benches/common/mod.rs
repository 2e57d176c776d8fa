//! Scaffolding the loopback benchmarks share: the command line, CPU
//! pinning, the origin process, the order of clients in a round, and the
//! median of per-round ratios. Each benchmark includes it with `mod common;`.

// Each benchmark binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::thread;

use roundtrip_tests::origin;

// ---------------------------------------------------------------------------
// The command line.

/// The command line after the program name, read one flag at a time; the
/// value readers panic naming the flag they belong to.
pub struct Args {
    args: std::iter::Skip<std::env::Args>,
    flag: String,
}

impl Args {
    /// This process's arguments.
    pub fn new() -> Args {
        Args {
            args: std::env::args().skip(1),
            flag: String::new(),
        }
    }

    /// The next flag, skipping `--bench` (passed by `cargo bench`).
    pub fn next_flag(&mut self) -> Option<String> {
        loop {
            let arg = self.args.next()?;
            if arg != "--bench" {
                self.flag.clone_from(&arg);
                return Some(arg);
            }
        }
    }

    /// The value after the current flag; `what` says what it should be.
    pub fn value(&mut self, what: &str) -> String {
        let flag = &self.flag;
        self.args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value ({what})"))
    }

    /// The value after the current flag, as a count.
    pub fn num(&mut self, what: &str) -> usize {
        num(self.value(what))
    }

    /// The value after the current flag, as `host:port`.
    pub fn addr(&mut self) -> Option<SocketAddr> {
        let s = self.value("host:port");
        Some(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }
}

/// `s` as a count; panics with `s` if it is not one.
pub fn num(s: String) -> usize {
    s.parse::<usize>().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Panics on a flag the benchmark does not know.
pub fn unknown(flag: &str) -> ! {
    panic!("unknown argument {flag:?}; see the file's docs")
}

// ---------------------------------------------------------------------------
// CPU pinning of this thread (threads it spawns, runtime workers included,
// inherit the mask).

pub fn set_affinity(cpus: &[usize]) {
    // SAFETY: a zeroed `cpu_set_t` is a valid empty set; `CPU_SET` writes
    // inside it; `sched_setaffinity` reads exactly `size_of` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity({cpus:?}): {}",
        io::Error::last_os_error()
    );
}

pub fn all_cpus() -> Vec<usize> {
    (0..thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `Cpus_allowed_list` of a process, to show the pinning took.
pub fn allowed_cpus(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------
// The origin.

/// An origin process started by this benchmark; killed on drop.
pub struct OriginProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl OriginProcess {
    /// `taskset -c CPUS <this binary> --serve-origin`.
    pub fn start(cpus: &[usize]) -> OriginProcess {
        let exe = std::env::current_exe().expect("path of this benchmark binary");
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu_list(cpus))
            .arg(exe)
            .arg("--serve-origin")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn taskset <bench> --serve-origin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the origin's address");
        let addr = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        OriginProcess { child, addr }
    }

    /// [`start`](Self::start), then says on stderr where it runs.
    pub fn start_logged(cpus: &[usize]) -> OriginProcess {
        let p = OriginProcess::start(cpus);
        eprintln!(
            "origin pid {} on {} (cpus {})",
            p.child.id(),
            p.addr,
            allowed_cpus(p.child.id())
        );
        p
    }
}

impl Drop for OriginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--serve-origin`: binds the origin, prints its address, serves until
/// killed (with one event loop for all connections when `evented`).
pub fn serve_origin(evented: bool) {
    let listener = origin::bind().expect("bind the origin");
    let addr = listener.local_addr().expect("origin address");
    println!("{addr}");
    io::stdout().flush().expect("flush the origin address");
    match evented {
        true => origin::serve_evented(listener).expect("origin event loop"),
        false => origin::serve(listener).expect("origin accept loop"),
    }
}

// ---------------------------------------------------------------------------
// Rounds and statistics.

/// The clients in the order round `round` runs them: `all` rotated by one
/// more each round, so no client always goes first.
pub fn round_order<T: Copy>(all: &[T], round: usize) -> Vec<T> {
    let mut order = all.to_vec();
    order.rotate_left(round % all.len());
    order
}

/// Says on stderr that a round ended, with the load average.
pub fn round_done(round: usize, rounds: usize) {
    eprintln!("round {}/{} done; load {}", round + 1, rounds, loadavg());
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median over rounds of `f(a) / f(b)` within a round; NaN when either
/// client has no samples.
pub fn median_ratio<T>(a: Option<&Vec<T>>, b: Option<&Vec<T>>, f: impl Fn(&T) -> f64) -> f64 {
    let (Some(xa), Some(xb)) = (a, b) else {
        return f64::NAN;
    };
    median(xa.iter().zip(xb).map(|(a, b)| f(a) / f(b)).collect())
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------
// wrk.

/// Requests/s of `taskset -c CPUS wrk -tT -cC -dSECSs http://ADDR PATH`;
/// its warnings (non-2xx answers, socket errors) go to stderr.
pub fn wrk_rps(
    (cpus, t, c): (String, usize, usize),
    secs: u64,
    addr: SocketAddr,
    path: &str,
) -> f64 {
    let out = Command::new("taskset")
        .args(["-c", &cpus, "wrk", &format!("-t{t}"), &format!("-c{c}")])
        .arg(format!("-d{secs}s"))
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run taskset wrk (is wrk installed?)");
    let text = String::from_utf8_lossy(&out.stdout);
    for warn in ["Non-2xx", "Socket errors"] {
        if let Some(line) = text.lines().find(|l| l.contains(warn)) {
            eprintln!("wrk warning ({addr}{path}): {}", line.trim());
        }
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

// ---------------------------------------------------------------------------
// A counting allocator, switched on only around the memory measurements (a
// relaxed load per allocation otherwise).

/// A counting allocator: a benchmark that measures memory makes it its
/// `#[global_allocator]` and switches [`COUNTING`] on around a measurement.
pub struct Counting;

pub static COUNTING: AtomicBool = AtomicBool::new(false);
pub static LIVE: AtomicIsize = AtomicIsize::new(0);
pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
