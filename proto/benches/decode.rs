//! Decode benchmarks for `roundtrip-proto`, with `httparse` as the yardstick.
//!
//! Groups (see `BENCHMARKS.md` at the workspace root for method and results):
//!
//! - `head/small/{roundtrip,httparse}`: a ~150-byte API response head.
//! - `head/cdn/{roundtrip,httparse}`: a ~1 KiB CDN response head with 21 fields.
//! - `chunked/{4k,64b}`: a 64 KiB chunked body in 4 KiB or 64-byte chunks,
//!   reported as body bytes per second.
//!
//! What one head iteration includes, on both sides: refilling one reused
//! `BytesMut` with the head (`clear` + `extend_from_slice`, a memcpy of the
//! head), parsing it, and reading every field's name and value through
//! `black_box`. Our side also pays what `httparse` does not do: the framing
//! decision and the reuse verdict, and it polls one reused decoder until
//! `Event::End` (the heads carry `Content-Length: 0`, so the decoder is
//! ready for the next head). `head/*/roundtrip` reads names and values as
//! slices, as `httparse` gives them; `head/*/roundtrip-shared` decodes with
//! `share_heads(true)`, as the adapters do, and takes every value as a
//! `Bytes` (what `http::HeaderValue` keeps); `head/*/httparse-shared` is
//! its yardstick: httparse, then the head split off as `Bytes` and each
//! value sliced from it, as hyper does.
//! `httparse` fills a fresh `[EMPTY_HEADER; 32]` table each iteration (its
//! borrows of the buffer forbid keeping one across refills), as its own
//! benches do.
//!
//! A chunked iteration decodes one whole response (a 47-byte head, then the
//! body) from a buffer prepared outside the timed region, so the 64 KiB copy
//! is not measured; only `Data` events are counted.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use roundtrip_proto::{Event, ResponseDecoder};

#[path = "heads.rs"]
mod heads;
use heads::{
    CDN, SMALL, httparse_head, httparse_head_shared, roundtrip_head, roundtrip_head_shared,
};

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const BODY_LEN: usize = 64 * 1024;

fn heads(c: &mut Criterion) {
    for (name, head) in [("small", SMALL), ("cdn", CDN)] {
        // Both parsers must see the same fields, or the comparison means nothing.
        let mut dec = ResponseDecoder::default();
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(head);
        let ours = roundtrip_head(&mut dec, &mut buf);
        let theirs = httparse_head(head);
        assert_eq!(ours, theirs, "field count differs for {name}");
        eprintln!("head/{name}: {} bytes, {ours} fields", head.len());

        let mut group = c.benchmark_group(format!("head/{name}"));
        group.bench_function("roundtrip", |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(head));
                roundtrip_head(&mut dec, &mut buf)
            })
        });
        let mut shared = ResponseDecoder::default();
        shared.share_heads(true);
        group.bench_function("roundtrip-shared", |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(head));
                roundtrip_head_shared(&mut shared, &mut buf)
            })
        });
        let mut raw = BytesMut::with_capacity(4096);
        group.bench_function("httparse", |b| {
            b.iter(|| {
                raw.clear();
                raw.extend_from_slice(black_box(head));
                httparse_head(&raw)
            })
        });
        group.bench_function("httparse-shared", |b| {
            b.iter(|| {
                raw.clear();
                raw.extend_from_slice(black_box(head));
                httparse_head_shared(&mut raw)
            })
        });
        group.finish();
    }
}

/// A chunked response carrying `BODY_LEN` bytes in chunks of `chunk` bytes.
fn chunked_message(chunk: usize) -> Vec<u8> {
    let mut msg = CHUNKED_HEAD.to_vec();
    let data = vec![b'x'; chunk];
    for _ in 0..BODY_LEN / chunk {
        msg.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        msg.extend_from_slice(&data);
        msg.extend_from_slice(b"\r\n");
    }
    msg.extend_from_slice(b"0\r\n\r\n");
    msg
}

/// Decodes one chunked response; returns the body length.
fn roundtrip_chunked(dec: &mut ResponseDecoder, buf: &mut BytesMut) -> usize {
    let mut body = 0;
    loop {
        // The message is valid and complete: an error or `None` is a bug in the bench.
        match dec.poll_event(buf).expect("the bench message is valid") {
            Some(Event::Data(data)) => body += black_box(data).len(),
            Some(Event::End) => return body,
            Some(_) => {}
            None => panic!("the bench message is complete"),
        }
    }
}

fn chunked(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(BODY_LEN as u64));
    for (name, chunk) in [("4k", 4096), ("64b", 64)] {
        let msg = chunked_message(chunk);
        let mut dec = ResponseDecoder::default();
        assert_eq!(
            roundtrip_chunked(&mut dec, &mut BytesMut::from(&msg[..])),
            BODY_LEN
        );
        // 16 prepared copies (~1.1 MiB) per timed batch stay within the 2 MiB L2.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&msg[..]),
                |buf| roundtrip_chunked(&mut dec, buf),
                BatchSize::NumIterations(16),
            )
        });
    }
    group.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
