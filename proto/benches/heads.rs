//! The heads both head benchmarks decode, and how each side decodes them
//! (`benches/decode.rs` with criterion, `examples/head_min.rs` as the
//! minimum of batches). Included by `#[path]` from both.

use std::hint::black_box;

use bytes::BytesMut;
use roundtrip_proto::{Event, ResponseDecoder};

/// A small JSON API response head: 6 fields, 153 bytes.
pub const SMALL: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: application/json\r\n\
Content-Length: 0\r\n\
Date: Tue, 14 Apr 2026 09:21:07 GMT\r\n\
Server: nginx/1.25.3\r\n\
Connection: keep-alive\r\n\
\r\n";

/// A CDN-style response head: 21 fields, ~1 KiB, with long cookie and CSP values.
pub const CDN: &[u8] = b"HTTP/1.1 200 OK\r\n\
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

/// Decodes one bodiless response from `buf`, touching every part of the
/// head; returns the number of fields seen.
pub fn roundtrip_head(dec: &mut ResponseDecoder, buf: &mut BytesMut) -> usize {
    decode_head::<false>(dec, buf)
}

/// [`roundtrip_head`] for a decoder that shares its heads, taking each
/// value as a `Bytes` as the adapters do (for `http::HeaderValue`).
pub fn roundtrip_head_shared(dec: &mut ResponseDecoder, buf: &mut BytesMut) -> usize {
    decode_head::<true>(dec, buf)
}

/// Both of the above: each value as a slice, or with `SHARED` as a `Bytes`.
#[inline(always)]
fn decode_head<const SHARED: bool>(dec: &mut ResponseDecoder, buf: &mut BytesMut) -> usize {
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
                if SHARED {
                    black_box(field.value_bytes().expect("shared heads"));
                } else {
                    black_box(field.value());
                }
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
pub fn httparse_head(buf: &[u8]) -> usize {
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

/// [`httparse_head`] as hyper uses it: the head split off the buffer as
/// `Bytes`, and each value taken as a `Bytes` of it (`slice_ref`), the
/// like-for-like yardstick of [`roundtrip_head_shared`].
pub fn httparse_head_shared(buf: &mut BytesMut) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let status = res.parse(buf).expect("the bench heads are valid");
    let httparse::Status::Complete(len) = status else {
        panic!("the bench heads are complete");
    };
    black_box(res.code);
    black_box(res.reason);
    let mut values = [(0usize, 0usize); 32];
    let n = res.headers.len();
    for (h, at) in res.headers.iter().zip(values.iter_mut()) {
        black_box(h.name);
        let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
        *at = (start, start + h.value.len());
    }
    let head = buf.split_to(len).freeze();
    for &(start, end) in &values[..n] {
        black_box(head.slice(start..end));
    }
    n
}
