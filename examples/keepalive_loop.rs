//! N keep-alive GETs of one URL on the blocking client, each body read to
//! its end, and the time per request: the loop `bench/callgrind.sh` counts
//! the instructions of. Without a URL it starts the built-in loopback
//! origin (13 B bodies).
//!
//! ```text
//! cargo run --release --example keepalive_loop                      # 10,000 GETs of the built-in origin
//! cargo run --release --example keepalive_loop -- http://127.0.0.1:8080/ 1000
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = match args.next() {
        Some(url) => url,
        None => format!("http://{}/", roundtrip::origin::spawn(13)?),
    };
    let n: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let client = roundtrip::blocking::Client::new();
    let start = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        let mut response = client.get(url.as_str()).send()?;
        bytes += response.body_mut().bytes(1 << 20)?.len();
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{n} requests, {bytes} body bytes, {:.1} µs per request",
        elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
    );
    Ok(())
}
