//! Allocations: decoding a response costs none once the decoder and the read
//! buffer exist and have served one response.
//!
//! A counting global allocator wraps `System` and counts, per thread, the
//! allocations made while a flag is on. The one allowed cost is the `bytes`
//! crate's: the first `split_to`/`freeze` of a fresh `BytesMut` (a plain
//! vector) promotes it to shared storage, one allocation per buffer lifetime.
//! Once every `Bytes` cut from it is dropped, `extend_from_slice` reclaims
//! the space in place, so the next responses allocate nothing.
//!
//! The pool (module `pool` below): once its slabs and maps have grown,
//! checkout, check-in, eviction and expiry allocate nothing, also while keys
//! come and go.
// The counting allocator is the only unsafe code: the package lint is at
// `deny` (proto/Cargo.toml), so that this file may allow it; lib.rs still
// forbids unsafe code in the library itself.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use bytes::BytesMut;
use roundtrip_proto::{Event, Framing, ResponseDecoder};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator may run while the thread's locals are gone.
    let on = ON.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` came from `System` (every allocation here does).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    ON.with(|on| on.set(true));
    let out = f();
    ON.with(|on| on.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

/// A response with 20 header fields and a chunked body of four chunks (one
/// with an extension) and two trailer fields.
fn response() -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..19 {
        r.extend_from_slice(format!("X-Header-{i}: value number {i}, ").as_bytes());
        r.extend_from_slice(b"obs-text \x80\xff\r\n");
    }
    r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    r.extend_from_slice(b"5\r\nhello\r\n");
    r.extend_from_slice(b"1a;name=\"v w\"\r\nabcdefghijklmnopqrstuvwxyz\r\n");
    r.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
    r.extend_from_slice(b"3\r\nend\r\n");
    r.extend_from_slice(b"0\r\nX-Checksum: abc\r\nX-Trailer-2: 2\r\n\r\n");
    r
}

/// What was seen, as plain numbers (so keeping it allocates nothing).
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    fields: usize,
    trailers: usize,
    data: usize,
    ends: usize,
    /// Sum of every byte of every name, value, reason and data.
    sum: u64,
    /// Field values also taken as `Bytes` (shared heads only).
    shared: usize,
}

/// Polls until the decoder wants more bytes, touching every event.
fn decode(dec: &mut ResponseDecoder, buf: &mut BytesMut, tally: &mut Tally) {
    let sum = |bytes: &[u8]| black_box(bytes).iter().map(|&b| u64::from(b)).sum::<u64>();
    while let Some(event) = dec.poll_event(buf).expect("valid response") {
        match event {
            Event::Status(s) => tally.sum += u64::from(s.code) + sum(s.reason),
            Event::Field(f) => {
                tally.fields += 1;
                tally.sum += sum(f.name()) + sum(f.value());
                // With shared heads, each value also as a `Bytes` (dropped here).
                if let Some(value) = f.value_bytes() {
                    assert_eq!(&value[..], f.value());
                    tally.shared += 1;
                }
            }
            Event::HeadEnd(end) => assert_eq!(end.framing, Framing::Chunked),
            Event::Data(d) => {
                tally.data += d.len();
                tally.sum += sum(&d);
            }
            Event::Trailer(f) => {
                tally.trailers += 1;
                tally.sum += sum(f.name()) + sum(f.value());
            }
            Event::End => tally.ends += 1,
            Event::Switched => panic!("unexpected Switched"),
        }
    }
}

/// The decoder and a buffer, after one warm-up response (at most one
/// allocation: the buffer's promotion to shared storage).
fn warmed_up(input: &[u8]) -> (ResponseDecoder, BytesMut, Tally) {
    warmed_up_sharing(input, false)
}

/// [`warmed_up`] with a decoder that shares its heads or not.
fn warmed_up_sharing(input: &[u8], share: bool) -> (ResponseDecoder, BytesMut, Tally) {
    let mut dec = ResponseDecoder::default();
    dec.share_heads(share);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    buf.extend_from_slice(input);
    let mut tally = Tally::default();
    let ((), warm_up) = allocations(|| decode(&mut dec, &mut buf, &mut tally));
    println!("warm-up response: {warm_up} allocation(s)");
    assert!(warm_up <= 1, "warm-up made {warm_up} allocations");
    assert_eq!(
        (tally.fields, tally.trailers, tally.data, tally.ends),
        (20, 2, 50, 1)
    );
    assert!(buf.is_empty() && dec.is_between_messages());
    (dec, buf, tally)
}

#[test]
fn decoding_a_response_allocates_nothing() {
    let input = response();
    let (mut dec, mut buf, warm) = warmed_up(&input);
    // Enough rounds that the buffer's end is reached and `reserve` reclaims
    // the consumed front.
    let rounds = 3 * buf.capacity() / input.len();
    assert!(rounds >= 20);
    for round in 0..rounds {
        let ((), refill) = allocations(|| buf.extend_from_slice(&input));
        let mut tally = Tally::default();
        let ((), decoding) = allocations(|| decode(&mut dec, &mut buf, &mut tally));
        if round == 0 {
            println!("refill: {refill} allocation(s), decoding: {decoding} allocation(s)");
        }
        assert_eq!((refill, decoding), (0, 0), "round {round}");
        assert_eq!(tally, warm, "round {round}");
    }
}

#[test]
fn decoding_a_response_in_three_pieces_allocates_nothing() {
    let input = response();
    // Inside the 10th header field, and inside the 26-byte chunk.
    let head_cut = input.windows(11).position(|w| w == b"X-Header-9:").unwrap() + 5;
    let body_cut = input.windows(5).position(|w| w == b"klmno").unwrap();
    let pieces = [
        &input[..head_cut],
        &input[head_cut..body_cut],
        &input[body_cut..],
    ];
    let (mut dec, mut buf, warm) = warmed_up(&input);
    let rounds = 3 * buf.capacity() / input.len();
    for round in 0..rounds {
        let mut tally = Tally::default();
        let ((), n) = allocations(|| {
            for piece in pieces {
                buf.extend_from_slice(piece);
                decode(&mut dec, &mut buf, &mut tally);
            }
        });
        if round == 0 {
            println!("three pieces: {n} allocation(s)");
        }
        assert_eq!(n, 0, "round {round}");
        assert_eq!(tally, warm, "round {round}");
    }
}

/// Shared heads (what the adapters decode with): the head is split off the
/// buffer and every value taken as a `Bytes` of it, still with no
/// allocation once the buffer is shared.
#[test]
fn decoding_with_shared_heads_allocates_nothing() {
    let input = response();
    let (mut dec, mut buf, warm) = warmed_up_sharing(&input, true);
    assert_eq!(warm.shared, 20, "every field came as Bytes");
    let rounds = 3 * buf.capacity() / input.len();
    for round in 0..rounds {
        let mut tally = Tally::default();
        let ((), n) = allocations(|| {
            buf.extend_from_slice(&input);
            decode(&mut dec, &mut buf, &mut tally);
        });
        assert_eq!(n, 0, "round {round}");
        assert_eq!(tally, warm, "round {round}");
    }
}

/// Decodes a head with shared heads and keeps its values; then the body's
/// data, dropped. Returns the values and the allocations the head cost.
fn keep_head_values(buf: &mut BytesMut) -> (Vec<bytes::Bytes>, usize) {
    let mut dec = ResponseDecoder::default();
    dec.share_heads(true);
    let mut kept = Vec::with_capacity(8);
    let ((), n) = allocations(|| {
        while let Some(event) = dec.poll_event(buf).expect("valid response") {
            match event {
                Event::Field(f) => kept.push(f.value_bytes().expect("shared heads")),
                Event::HeadEnd(_) => break,
                _ => {}
            }
        }
    });
    while let Some(event) = dec.poll_event(buf).expect("valid response") {
        drop(event);
    }
    (kept, n)
}

/// A shared head whose body streams on through later reads, or is longer
/// than 16 KiB, or of an interim (1xx) response, is copied out (one
/// allocation), so the values kept from it
/// do not pin the read buffer: the buffer can be reused from its start
/// while they live. A small response whole in the buffer shares it (no
/// allocation), and pins it.
#[test]
fn a_streamed_body_s_head_does_not_pin_the_read_buffer() {
    let streamed = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nServer: s\r\n\r\nfirst bytes";
    let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: s\r\n\r\nhello";
    let chunked_whole =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let chunked_streamed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    let interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n";
    let mut long = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\nServer: s\r\n\r\n".to_vec();
    long.resize(long.len() + 20_000, b'x');
    for (input, pinned) in [
        // Kept beside the final response (`InterimResponses`): copied.
        (&interim[..], false),
        (&long[..], false),
        (&streamed[..], false),
        (&whole[..], true),
        (&chunked_whole[..], true),
        (&chunked_streamed[..], false),
    ] {
        let mut buf = BytesMut::with_capacity(32 * 1024);
        buf.extend_from_slice(input);
        // The buffer is shared storage already (as after a first response).
        drop(buf.split_to(0).freeze());
        let (kept, copies) = keep_head_values(&mut buf);
        assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(input));
        let what = String::from_utf8_lossy(&input[17..40]);
        assert_eq!(
            buf.try_reclaim(32 * 1024),
            !pinned,
            "{what}: pinned {pinned}"
        );
        assert_eq!(copies, usize::from(!pinned), "{what}: allocations");
        assert!(kept.iter().any(|v| !v.is_empty()));
    }
}

/// The counter is not vacuous: it sees an allocation made inside, and none
/// made outside.
#[test]
fn the_counter_counts() {
    let (v, n) = allocations(|| black_box(vec![1u8; 10]));
    assert_eq!(n, 1);
    let (w, n) = allocations(|| black_box(v.len()));
    assert_eq!((n, w), (0, 10));
    let (dec, n) = allocations(ResponseDecoder::default);
    assert!(n >= 1, "a decoder's field table is allocated");
    drop(dec);
}

// ---------------------------------------------------------------------------
// The pool: no allocation per checkout and check-in once it has grown
// ---------------------------------------------------------------------------

mod pool {
    use super::allocations;
    use roundtrip_proto::pool::{Checkout, ConnId, Key, Pool, PoolConfig, Reuse, Scheme};
    use roundtrip_proto::time::Instant;
    use std::time::Duration;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_origin(Duration::from_millis(ms))
    }

    fn keys(n: usize) -> Vec<Key> {
        (0..n)
            .map(|i| Key::new(Scheme::Http, &format!("h{i}.example"), 80))
            .collect()
    }

    fn dial(pool: &mut Pool<u32>, key: &Key) -> ConnId {
        match pool.checkout(key, at_ms(0)) {
            Checkout::Dial(permit) => {
                let id = permit.id();
                pool.dial_succeeded(permit);
                id
            }
            other => panic!("expected a dial, got {other:?}"),
        }
    }

    /// A pool with one idle connection per key (`per_key` of them on one key
    /// when `keys` has one), checked in 1 ms apart.
    fn filled(keys: &[Key], per_key: usize, hint: Option<Duration>, cap: usize) -> Pool<u32> {
        let config = PoolConfig::default()
            .max_idle_per_host(cap)
            .max_idle_total(cap);
        let mut pool = Pool::new(config);
        let mut conns = Vec::new();
        for key in keys {
            conns.extend((0..per_key).map(|_| (dial(&mut pool, key), key)));
        }
        for (i, (id, key)) in conns.into_iter().enumerate() {
            let now = at_ms(1 + i as u64);
            assert!(pool.checkin(id, key, 0, Reuse::Yes, hint, now).is_none());
        }
        pool
    }

    /// Checkout + checkin `rounds` times over `keys` in turn.
    fn reuse(pool: &mut Pool<u32>, keys: &[Key], hint: Option<Duration>, rounds: usize) {
        let now = at_ms(1_000);
        for i in 0..rounds {
            let key = &keys[i % keys.len()];
            let Checkout::Idle(idle) = pool.checkout(key, now) else {
                panic!("expected an idle connection")
            };
            let grant = pool.checkin(idle.id, key, idle.handle, Reuse::Yes, hint, now);
            assert!(grant.is_none() && pool.take_closed().is_none());
        }
    }

    #[test]
    fn reuse_allocates_nothing() {
        let hint = Some(Duration::from_secs(30));
        for (keys, per_key) in [(keys(1), 100), (keys(100), 1)] {
            for hint in [None, hint] {
                let mut pool = filled(&keys, per_key, hint, 1_000);
                reuse(&mut pool, &keys, hint, 1_000); // warm-up
                let ((), n) = allocations(|| reuse(&mut pool, &keys, hint, 10_000));
                assert_eq!(n, 0, "{} keys, hint {hint:?}", keys.len());
            }
        }
    }

    /// At the idle cap, a connection of a new key is dialed and checked in,
    /// and the least recently used (another key's, whose entry goes) is
    /// closed: keys come and go, their slots and map entries are reused.
    #[test]
    fn eviction_with_new_keys_allocates_nothing() {
        let keys = keys(600);
        let (idle, cap) = (&keys[..100], 100);
        let mut pool = filled(idle, 1, None, cap);
        let churn = |pool: &mut Pool<u32>, range: std::ops::Range<usize>| {
            for i in range {
                let key = &keys[i % keys.len()];
                let id = dial(pool, key);
                let now = at_ms(1_000 + i as u64);
                assert!(pool.checkin(id, key, 0, Reuse::Yes, None, now).is_none());
                assert!(pool.take_closed().is_some(), "one evicted");
            }
        };
        churn(&mut pool, 100..2_000); // warm-up: the tables reach their size
        let ((), n) = allocations(|| churn(&mut pool, 2_000..12_000));
        assert_eq!(n, 0);
        assert_eq!(pool.stats().idle, cap);
    }

    /// An idle connection expires and another is checked in, on one key and
    /// on a new key each time, with and without Keep-Alive hints.
    #[test]
    fn expiry_allocates_nothing() {
        let keys = keys(300);
        let mut pool = filled(&keys[..100], 1, None, 1_000);
        let churn = |pool: &mut Pool<u32>, range: std::ops::Range<usize>| {
            for i in range {
                let at = pool.poll_timeout().expect("a deadline");
                pool.handle_timeout(at);
                assert!(pool.take_closed().is_some(), "one expired");
                let key = &keys[i % keys.len()];
                let id = dial(pool, key);
                let hint = (i % 2 == 0).then(|| Duration::from_secs(100));
                let now = at + Duration::from_millis(1);
                assert!(pool.checkin(id, key, 0, Reuse::Yes, hint, now).is_none());
            }
        };
        churn(&mut pool, 100..2_000);
        let ((), n) = allocations(|| churn(&mut pool, 2_000..12_000));
        assert_eq!(n, 0);
    }
}
