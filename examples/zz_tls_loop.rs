fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = &args[1];
    let n: usize = args[2].parse().unwrap();
    let pem = std::fs::read("/tmp/tlst/ca.pem").unwrap();
    let ca = roundtrip_blocking::tls::Certificate::from_pem(&pem).unwrap();
    let client = roundtrip_blocking::Client::builder()
        .add_root_certificate(ca)
        .build();
    let t = std::time::Instant::now();
    let mut total = 0;
    for _ in 0..n {
        let mut r = client.get(url).unwrap();
        total += r.body_mut().bytes(1 << 20).unwrap().len();
    }
    let el = t.elapsed();
    eprintln!(
        "{n} requests, {total} bytes, {:.1} us/req",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
