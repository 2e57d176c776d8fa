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
use std::time::{Duration, Instant};

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

/// TCP sockets in TIME_WAIT on this machine (`/proc/net/sockstat`).
pub fn time_wait_sockets() -> u64 {
    let stat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let tcp = stat.lines().find(|l| l.starts_with("TCP:")).unwrap_or("");
    let mut words = tcp.split_whitespace();
    // Bounded: one pass over the line's words.
    while let Some(word) = words.next() {
        if word == "tw" {
            return words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    0
}

/// Waits, at most `max`, until at most `below` TCP sockets are in
/// TIME_WAIT; returns how long it waited and how many were left. A run
/// that opens and closes thousands of loopback connections leaves as
/// many in TIME_WAIT for a minute, and the next run's connects search a
/// port space that many of them hold: at 10,000 connections a run right
/// after another was 30-60% slower here, whichever client it was.
pub fn drain_time_wait(below: u64, max: Duration) -> (Duration, u64) {
    let start = Instant::now();
    // Bounded by `max`.
    loop {
        let left = time_wait_sockets();
        if left <= below || start.elapsed() >= max {
            return (start.elapsed(), left);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
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

/// The timed requests and the time of a wrk run, from its `  123456
/// requests in 1.00s, 12.34MB read` line.
pub fn wrk_requests(text: &str) -> (u64, std::time::Duration) {
    text.lines()
        .find_map(|l| {
            let (count, rest) = l.trim().split_once(" requests in ")?;
            let secs = rest.split_once(',')?.0;
            Some((count.parse().ok()?, parse_wrk_time(secs)?))
        })
        .unwrap_or_else(|| panic!("no 'requests in' line in wrk output:\n{text}"))
}

/// wrk's duration format: `1.00s`, `999.87ms`, `1.00m`.
fn parse_wrk_time(s: &str) -> Option<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let num: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => num / 1e6,
        "ms" => num / 1e3,
        "s" => num,
        "m" => num * 60.0,
        _ => return None,
    };
    Some(std::time::Duration::from_secs_f64(secs))
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

// ---------------------------------------------------------------------------
// The raw loop: the physical limit the clients are measured against.

/// "raw": a hand loop on one `std` `TcpStream` with `httparse`, one
/// `write` of canned request bytes and (for a small body) one `read` per
/// request, into one reusable buffer; no pool, no header map, no
/// allocation per request. What any client does at the least.
pub struct RawLoop {
    addr: SocketAddr,
    request: Vec<u8>,
    expect: usize,
    stream: Option<std::net::TcpStream>,
    buf: Vec<u8>,
}

impl RawLoop {
    /// GETs of `path` at `addr`, each body `expect` bytes long (the buffer
    /// holds `expect` plus 16 KiB of head).
    pub fn new(addr: SocketAddr, path: &str, expect: usize) -> RawLoop {
        RawLoop {
            addr,
            request: format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes(),
            expect,
            stream: None,
            buf: vec![0; expect + 16 * 1024],
        }
    }

    /// One GET, its body read whole; a kept connection the server closed
    /// (an end or a reset, before the answer) is dialed again once. Any
    /// other failure (a status other than 200, a wrong length) panics.
    pub fn get(&mut self) {
        let reused = self.stream.is_some();
        match self.try_get() {
            Ok(()) => {}
            Err(e) if reused && is_closed(&e) => {
                self.stream = None;
                self.try_get().expect("raw loop GET, dialed again");
            }
            Err(e) => panic!("raw loop GET: {e}"),
        }
    }

    fn try_get(&mut self) -> io::Result<()> {
        use std::io::Read;
        if self.stream.is_none() {
            let stream = std::net::TcpStream::connect(self.addr)?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected just above");
        stream.write_all(&self.request)?;
        let mut filled = 0;
        // (head length, content length, close) once the head parsed.
        let mut parsed: Option<(usize, usize, bool)> = None;
        // Bounded by the buffer: every read fills some of it.
        loop {
            if let Some((head, len, _)) = parsed
                && filled >= head + len
            {
                break;
            }
            if filled == self.buf.len() {
                return Err(io::Error::other("response larger than the buffer"));
            }
            let n = stream.read(&mut self.buf[filled..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if parsed.is_none() {
                let mut fields = [httparse::EMPTY_HEADER; 16];
                let mut response = httparse::Response::new(&mut fields);
                if let httparse::Status::Complete(head) = response
                    .parse(&self.buf[..filled])
                    .map_err(|_| io::ErrorKind::InvalidData)?
                {
                    let (mut len, mut close) = (None, false);
                    for f in response.headers.iter() {
                        if f.name.eq_ignore_ascii_case("content-length") {
                            let text = std::str::from_utf8(f.value).ok();
                            len = text.and_then(|t| t.trim().parse().ok());
                        } else if f.name.eq_ignore_ascii_case("connection") {
                            close = f.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    let len = len.ok_or(io::ErrorKind::InvalidData)?;
                    if response.code != Some(200) {
                        return Err(io::Error::other(format!("status {:?}", response.code)));
                    }
                    parsed = Some((head, len, close));
                }
            }
        }
        let (head, len, close) = parsed.expect("the loop ends once parsed");
        if close {
            self.stream = None; // nginx's last response on a connection
        }
        if len != self.expect || filled != head + len {
            return Err(io::Error::other("unexpected body length"));
        }
        Ok(())
    }
}

/// A kept connection's end: the server closed it (nginx after its
/// `keepalive_requests`, or an idle timeout).
pub fn is_closed(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// User + system CPU time of `who` (`RUSAGE_SELF`, `RUSAGE_THREAD` or
/// `RUSAGE_CHILDREN`).
pub fn rusage_cpu(who: libc::c_int) -> std::time::Duration {
    // SAFETY: a zeroed `rusage` is valid; `getrusage` fills it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut usage), 0, "getrusage");
        usage
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A `timeval` as a `Duration`.
pub fn tv(t: libc::timeval) -> std::time::Duration {
    std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
}
