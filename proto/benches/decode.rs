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
//! decision, the reuse verdict and a zero-copy `Bytes` per field, and it
//! polls one reused decoder until `Event::End` (the heads carry
//! `Content-Length: 0`, so the decoder is ready for the next head).
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

/// A small JSON API response head: 6 fields, 153 bytes.
const SMALL: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: application/json\r\n\
Content-Length: 0\r\n\
Date: Tue, 14 Apr 2026 09:21:07 GMT\r\n\
Server: nginx/1.25.3\r\n\
Connection: keep-alive\r\n\
\r\n";

/// A CDN-style response head: 21 fields, ~1 KiB, with long cookie and CSP values.
const CDN: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Tue, 14 Apr 2026 09:21:07 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 0\r\n\
Connection: keep-alive\r\n\
Cache-Control: public, max-age=3600, s-maxage=86400, stale-while-revalidate=60\r\n\
Age: 1742\r\n\
Via: 1.1 varnish, 1.1 0f3c2a9d4e5b7a1c.cloudfront.net (CloudFront)\r\n\
X-Cache: Hit from cloudfront\r\n\
X-Cache-Hits: 3\r\n\
X-Served-By: cache-fra-eddf8230151-FRA\r\n\
ETag: W/\"5e8f-1a2b3c4d5e6f7a8b9c0d\"\r\n\
Last-Modified: Mon, 13 Apr 2026 22:04:51 GMT\r\n\
Vary: Accept-Encoding, Origin\r\n\
Set-Cookie: __cf_bm=Qm9vZ2xlLWJvdC1tYW5hZ2VtZW50LXRva2VuLXNhbXBsZQ; path=/; expires=Tue, 14-Apr-26 09:51:07 GMT; domain=.example.com; HttpOnly; Secure; SameSite=None\r\n\
CF-RAY: 8a1b2c3d4e5f6789-FRA\r\n\
CF-Cache-Status: HIT\r\n\
X-Amz-Cf-Id: 2uHq5FsP0rX9k3Jd7vL1mN8bQw4eTy6uIo0pAs2dFg3hJk5lZx7cVb==\r\n\
Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n\
Content-Security-Policy: default-src 'self'; script-src 'self' https://cdn.example.com 'nonce-r4nd0m'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; connect-src 'self' https://api.example.com; frame-ancestors 'none'; base-uri 'self'\r\n\
X-Content-Type-Options: nosniff\r\n\
Server: cloudflare\r\n\
\r\n";

const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const BODY_LEN: usize = 64 * 1024;

/// Decodes one bodiless response from `buf`, touching every part of the
/// head; returns the number of fields seen.
fn roundtrip_head(dec: &mut ResponseDecoder, buf: &mut BytesMut) -> usize {
    let mut fields = 0;
    loop {
        // The heads are valid and complete: an error or `None` is a bug in the bench.
        match dec.poll_event(buf).expect("the bench heads are valid") {
            Some(Event::Status(line)) => {
                black_box(line.code);
                black_box(line.reason);
            }
            Some(Event::Field(field)) => {
                black_box(field.name());
                black_box(field.value());
                fields += 1;
            }
            Some(Event::HeadEnd(end)) => {
                black_box(end);
            }
            Some(Event::End) => return fields,
            Some(other) => panic!("unexpected event {other:?}"),
            None => panic!("the bench heads are complete"),
        }
    }
}

/// Parses one head with httparse, touching every part of it; returns the
/// number of fields seen.
fn httparse_head(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let status = res.parse(buf).expect("the bench heads are valid");
    assert!(status.is_complete(), "the bench heads are complete");
    black_box(status);
    black_box(res.code);
    black_box(res.reason);
    for h in res.headers.iter() {
        black_box(h.name);
        black_box(h.value);
    }
    res.headers.len()
}

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
        let mut raw = BytesMut::with_capacity(4096);
        group.bench_function("httparse", |b| {
            b.iter(|| {
                raw.clear();
                raw.extend_from_slice(black_box(head));
                httparse_head(&raw)
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
