//! Head decode, `roundtrip_proto` against `httparse`, as the minimum over
//! many batches: on a noisy machine the minimum is what the code costs when
//! nothing else interferes (criterion's medians move with the load).
//!
//! `taskset -c 0 cargo run --release -p roundtrip-proto --example head_min`
//!
//! Same heads and same per-iteration work as `benches/decode.rs`.

use bytes::BytesMut;
use roundtrip_proto::ResponseDecoder;

#[path = "../benches/heads.rs"]
mod heads;
use heads::{
    CDN, SMALL, httparse_head, httparse_head_shared, roundtrip_head, roundtrip_head_shared,
};
use std::hint::black_box;
use std::time::Instant;
/// Nanoseconds per call, the minimum over 300 batches of 2000 calls.
fn min_ns(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..300 {
        let t = Instant::now();
        for _ in 0..2000 {
            f();
        }
        let ns = t.elapsed().as_nanos() as f64 / 2000.0;
        if ns < best {
            best = ns;
        }
    }
    best
}
/// Prints one line per head: our time, httparse's, and the ratio; then the
/// same with a `Bytes` per field value (shared heads on our side, as the
/// adapters decode; the head split off and sliced on httparse's, as hyper
/// does).
fn main() {
    const TINY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (name, head) in [("tiny", TINY), ("small", SMALL), ("cdn", CDN)] {
        let mut dec = ResponseDecoder::default();
        let mut buf = BytesMut::with_capacity(4096);
        let ours = min_ns(|| {
            buf.clear();
            buf.extend_from_slice(black_box(head));
            black_box(roundtrip_head(&mut dec, &mut buf));
        });
        let mut raw = BytesMut::with_capacity(4096);
        let theirs = min_ns(|| {
            raw.clear();
            raw.extend_from_slice(black_box(head));
            black_box(httparse_head(&raw));
        });
        let mut dec = ResponseDecoder::default();
        dec.share_heads(true);
        let shared = min_ns(|| {
            buf.clear();
            buf.extend_from_slice(black_box(head));
            black_box(roundtrip_head_shared(&mut dec, &mut buf));
        });
        let theirs_shared = min_ns(|| {
            raw.clear();
            raw.extend_from_slice(black_box(head));
            black_box(httparse_head_shared(&mut raw));
        });
        println!(
            "{name}: ours {ours:.1} ns, httparse {theirs:.1} ns, ratio {:.2}; \
             Bytes per value: ours {shared:.1} ns, httparse {theirs_shared:.1} ns, ratio {:.2}",
            theirs / ours,
            theirs_shared / shared
        );
    }
}
