//! `roundtrip bench`: starts the embedded loopback origin and measures the
//! whole stack against it: requests per second, latency percentiles, and
//! connections dialed versus reused. No server of your own needed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use roundtrip::proto::pool::PoolStats;

/// Which backend to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// `roundtrip::blocking`, one thread per concurrent request.
    Blocking,
    /// `roundtrip::mio`, every request on one event-loop thread.
    Mio,
    /// `roundtrip::tokio`, a multi-thread runtime with one task per concurrent request.
    Tokio,
    /// `roundtrip::smol`, one task per concurrent request on smol's executor.
    Smol,
}

/// Arguments of `roundtrip bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backend to measure.
    #[arg(long, value_enum, default_value_t = Backend::Blocking)]
    backend: Backend,
    /// Requests in flight at once (also the connection limit; 1 to 10000).
    #[arg(short = 'c', long, default_value_t = 8, value_parser = in_range::<1, 10_000>)]
    concurrency: usize,
    /// Requests in all (1 to 100,000,000: each one's latency is kept).
    #[arg(short = 'n', long, default_value_t = 20_000, value_parser = in_range::<1, 100_000_000>)]
    requests: usize,
    /// Response body size in bytes (at most 1 GiB: the origin holds it in
    /// memory; the clients count each body as it streams, holding none).
    #[arg(long, default_value_t = 13, value_parser = in_range::<0, { 1 << 30 }>)]
    size: usize,
}

/// A whole number from `MIN` to `MAX`, or a usage error saying so (not a
/// value quietly changed, nor an allocation that aborts).
fn in_range<const MIN: usize, const MAX: usize>(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if !(MIN..=MAX).contains(&n) {
        return Err(format!("{n} is not from {MIN} to {MAX}"));
    }
    Ok(n)
}

/// What a run measured.
struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    stats: PoolStats,
}

/// Runs the benchmark; returns the exit code (1 if any request failed).
pub fn run(args: &Args) -> std::process::ExitCode {
    let (c, n) = (args.concurrency, args.requests);
    let origin = match roundtrip::origin::spawn(args.size) {
        Ok(addr) => addr,
        Err(e) => {
            super::warn(&format!(
                "roundtrip bench: cannot start the loopback origin: {e}"
            ));
            return std::process::ExitCode::from(2);
        }
    };
    let url = format!("http://{origin}/");
    let name = format!("{:?}", args.backend).to_lowercase();
    let header = format!(
        "roundtrip bench: backend={name} concurrency={c} requests={n} body={} bytes origin={origin}",
        args.size
    );
    if let Err(e) = say(&header) {
        return written(&e);
    }
    let result = match args.backend {
        Backend::Blocking => blocking(&url, c, n, args.size),
        Backend::Tokio => tokio(&url, c, n, args.size),
        Backend::Smol => smol(&url, c, n, args.size),
        Backend::Mio => mio(&url, c, n, args.size),
    };
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            super::warn(&format!("roundtrip bench: {e}"));
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = say(&report(&run, n)) {
        return written(&e);
    }
    if !all_answered(&run, n) {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// Every one of the `n` requests got its whole answer: no error, and none
/// unaccounted for (a worker that stopped early).
fn all_answered(run: &Run, n: usize) -> bool {
    run.errors == 0 && run.latencies.len() == n
}

/// Writes `text` and a newline to stdout.
fn say(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// The exit code after stdout failed: a reader that went away (`| head`)
/// ends the run quietly, as `get` does; another failure is said.
fn written(e: &std::io::Error) -> std::process::ExitCode {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return std::process::ExitCode::SUCCESS;
    }
    super::warn(&format!("roundtrip bench: writing the report failed: {e}"));
    std::process::ExitCode::from(2)
}

/// The report's lines.
fn report(run: &Run, n: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let secs = run.elapsed.as_secs_f64();
    let ok = run.latencies.len();
    let _ = write!(
        out,
        "  {ok} of {n} requests in {secs:.3} s: {:.0} req/s",
        ok as f64 / secs.max(1e-9)
    );
    let mut lat = run.latencies.clone();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let _ = write!(
        out,
        "\n  latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(lat.last())
    );
    let s = &run.stats;
    let _ = write!(
        out,
        "\n  connections: {} dialed, {} reused; pool now {} idle, {} in use",
        s.dials, s.reuses, s.idle, s.in_use
    );
    if run.errors > 0 {
        let _ = write!(
            out,
            "\n  errors: {} (first: {})",
            run.errors,
            run.first_error.as_deref().unwrap_or("?")
        );
    }
    out
}

/// Collects the outcome of each request from several workers.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: Result<usize, String>, size: usize) {
        match outcome {
            Ok(len) if len == size => self.latencies.push(started.elapsed()),
            Ok(len) => self.fail(format!("body of {len} bytes, expected {size}")),
            Err(e) => self.fail(e),
        }
    }
    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Reads an async body (tokio's or smol's) to its end, counting its bytes.
macro_rules! count {
    ($body:expr) => {{
        let body = $body;
        let mut len = 0usize;
        // Bounded by the body: each piece is more of it.
        loop {
            match body.chunk().await {
                Ok(Some(piece)) => len += piece.len(),
                Ok(None) => break Ok(len),
                Err(e) => break Err(e),
            }
        }
    }};
}

fn config(c: usize) -> roundtrip::Config {
    let mut config = roundtrip::Config::default();
    config.pool = config.pool.max_conns_per_host(Some(c)).max_idle_per_host(c);
    config
}

fn blocking(url: &str, c: usize, n: usize, size: usize) -> Result<Run, String> {
    let client = roundtrip::blocking::Client::builder()
        .config(config(c))
        .build();
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..c {
            scope.spawn(|| {
                let mut mine = Tally::default();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let outcome = client
                        .get(url)
                        .send()
                        .map_err(|e| e.to_string())
                        .and_then(|mut r| {
                            let body = r.body_mut();
                            std::io::copy(body, &mut std::io::sink()).map_err(|e| e.to_string())
                        })
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                    mine.record(t, outcome, size);
                }
                merge(&tally, mine);
            });
        }
    });
    finish(started, tally, client.stats())
}

fn tokio(url: &str, c: usize, n: usize, size: usize) -> Result<Run, String> {
    let runtime = tokio_rt::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let client = roundtrip::tokio::Client::builder()
        .config(config(c))
        .build();
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (client, next, tally, url) =
                (client.clone(), next.clone(), tally.clone(), url.to_string());
            tasks.push(tokio_rt::spawn(async move {
                let mut mine = Tally::default();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let outcome = match client.get(&url).send().await {
                        Ok(mut r) => count!(r.body_mut()),
                        Err(e) => Err(e),
                    };
                    mine.record(t, outcome.map_err(|e| e.to_string()), size);
                }
                merge(&tally, mine);
            }));
        }
        for task in tasks {
            // A worker that panicked counts as an error, not as nothing.
            if let Err(e) = task.await {
                let mut all = tally.lock().unwrap_or_else(|p| p.into_inner());
                all.fail(format!("a worker failed: {e}"));
            }
        }
    });
    let tally = Arc::try_unwrap(tally).map_err(|_| "tasks still running".to_string())?;
    finish(started, tally, client.stats())
}

fn smol(url: &str, c: usize, n: usize, size: usize) -> Result<Run, String> {
    let client = roundtrip::smol::Client::builder().config(config(c)).build();
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    smol_rt::block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (client, next, tally, url) =
                (client.clone(), next.clone(), tally.clone(), url.to_string());
            tasks.push(smol_rt::spawn(async move {
                let mut mine = Tally::default();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let outcome = match client.get(&url).send().await {
                        Ok(mut r) => count!(r.body_mut()),
                        Err(e) => Err(e),
                    };
                    mine.record(t, outcome.map_err(|e| e.to_string()), size);
                }
                merge(&tally, mine);
            }));
        }
        for task in tasks {
            task.await;
        }
    });
    let tally = Arc::try_unwrap(tally).map_err(|_| "tasks still running".to_string())?;
    finish(started, tally, client.stats())
}

fn mio(url: &str, c: usize, n: usize, size: usize) -> Result<Run, String> {
    let mut driver = roundtrip::mio::Driver::builder()
        .config(config(c))
        .build()
        .map_err(|e| format!("cannot start the mio driver: {e}"))?;
    let mut started_at = std::collections::HashMap::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    let (mut submitted, mut done) = (0, 0);
    // Each body counted as it streams, under the request's id.
    let submit = |driver: &mut roundtrip::mio::Driver| {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let receive = roundtrip::mio::Receive::stream(move |_, data| {
            counter.fetch_add(data.len(), Ordering::Relaxed);
            roundtrip::mio::Flow::Continue
        });
        (driver.get(url).submit_with(receive), (Instant::now(), seen))
    };
    while submitted < n.min(c) {
        let (id, started) = submit(&mut driver);
        started_at.insert(id, started);
        submitted += 1;
    }
    // Bounded: every pass waits at most a second, and each request ends
    // (answered, failed or timed out by the driver's own timeouts).
    while done < n {
        driver
            .run_once(Some(Duration::from_secs(1)))
            .map_err(|e| format!("event loop failed: {e}"))?;
        while let Some((id, result)) = driver.take_finished() {
            done += 1;
            let (t, seen) = started_at
                .remove(&id)
                .unwrap_or_else(|| (Instant::now(), Arc::default()));
            let len = seen.load(Ordering::Relaxed);
            tally.record(t, result.map(|_| len).map_err(|e| e.to_string()), size);
            if submitted < n {
                let (id, started) = submit(&mut driver);
                started_at.insert(id, started);
                submitted += 1;
            }
        }
    }
    finish(started, Mutex::new(tally), driver.stats())
}

fn merge(into: &Mutex<Tally>, mine: Tally) {
    let mut all = into.lock().unwrap_or_else(|p| p.into_inner());
    all.latencies.extend(mine.latencies);
    all.errors += mine.errors;
    if all.first_error.is_none() {
        all.first_error = mine.first_error;
    }
}

fn finish(started: Instant, tally: Mutex<Tally>, stats: PoolStats) -> Result<Run, String> {
    let elapsed = started.elapsed();
    let tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Run {
        elapsed,
        latencies: tally.latencies,
        errors: tally.errors,
        first_error: tally.first_error,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run is whole only when every request got its answer: a worker
    /// that stopped early (its task panicked) leaves some unaccounted for.
    #[test]
    fn every_request_must_be_answered() {
        let run = |answered: usize, errors: usize| Run {
            elapsed: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(1); answered],
            errors,
            first_error: None,
            stats: PoolStats::default(),
        };
        assert!(all_answered(&run(10, 0), 10));
        assert!(!all_answered(&run(9, 0), 10));
        assert!(!all_answered(&run(9, 1), 10));
    }
}
