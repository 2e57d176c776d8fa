//! Many threads sharing one host capped at few connections
//! (`max_conns_per_host`): each request waits in the pool's queue for the
//! one connection, so the time per request is mostly how a grant reaches
//! its waiter. Prints the time per request; the figure in BENCHMARKS.md
//! ("A grant wakes its waiter alone").
//!
//! ```text
//! cargo run --release --example contention              # 256 threads, cap 1, 20 GETs each
//! taskset -c 0 target/release/examples/contention 64 2  # 64 threads, cap 2
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map_or(Ok(256), |n| n.parse())?;
    let cap: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let url = format!("http://{}/", roundtrip::origin::spawn(13)?);
    let client = roundtrip::blocking::Client::builder()
        .max_conns_per_host(Some(cap))
        .build();
    const EACH: usize = 20;
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (client, url) = (client.clone(), url.as_str());
            s.spawn(move || {
                for _ in 0..EACH {
                    let mut response = client.get(url).send().expect("a response");
                    response.body_mut().bytes(100).expect("its body");
                }
            });
        }
    });
    let n = threads * EACH;
    println!(
        "{n} requests from {threads} threads, cap {cap}: {:.1} µs per request",
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}
