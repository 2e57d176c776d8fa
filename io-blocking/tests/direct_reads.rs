//! A body read with `Read::read` goes from the socket straight into the
//! caller's slice where the exchange allows it (a plaintext body passed on
//! as it comes, nothing buffered): no read buffer sized to the body, no
//! copy out of it. These cases check that it is used, and that everything
//! around it holds: the bytes, chunked framing and trailers, a cut body,
//! a stalled one, and the connection going back to the pool at the body's
//! last byte.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod common;
use common::allocs;

/// What the origin does after a request head.
#[derive(Clone)]
enum Reply {
    /// Sends these bytes and waits for the next request.
    Send(Vec<u8>),
    /// Sends these bytes and closes.
    SendClose(Vec<u8>),
    /// Sends these bytes and stalls (holding the connection) for a while.
    SendStall(Vec<u8>),
}

/// An origin answering the requests of each connection with `replies` in
/// turn, on loopback; one thread per connection.
fn origin(replies: Vec<Reply>) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let replies = replies.clone();
            thread::spawn(move || serve(stream, &replies));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, replies: &[Reply]) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let mut next = replies.iter();
    while stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
        if !head.ends_with(b"\r\n\r\n") {
            continue;
        }
        head.clear();
        match next.next() {
            Some(Reply::Send(bytes)) => {
                if stream.write_all(bytes).is_err() {
                    return;
                }
            }
            Some(Reply::SendClose(bytes)) => {
                let _ = stream.write_all(bytes);
                return;
            }
            Some(Reply::SendStall(bytes)) => {
                let _ = stream.write_all(bytes);
                thread::sleep(Duration::from_secs(3));
                return;
            }
            None => return,
        }
    }
}

fn sized(len: usize) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    r.extend((0..len).map(|i| (i % 251) as u8));
    r
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Reads `body` to its end with `read` into a `buf`-byte slice: the bytes,
/// the number of reads, and the allocations made meanwhile.
fn read_all(body: &mut impl Read, buf: usize) -> std::io::Result<(Vec<u8>, usize, u64)> {
    let mut out = Vec::with_capacity(4 << 20);
    let mut slice = vec![0u8; buf];
    let (mut reads, before) = (0, allocs());
    // Bounded: each read returns bytes, the end, or an error.
    loop {
        reads += 1;
        match body.read(&mut slice)? {
            0 => break,
            n => out.extend_from_slice(&slice[..n]),
        }
    }
    Ok((out, reads, allocs() - before))
}

#[test]
fn a_long_body_is_read_into_the_callers_slice() {
    const LEN: usize = 4 << 20;
    let replies = vec![
        Reply::Send(sized(13)),
        Reply::Send(sized(LEN)),
        Reply::Send(sized(13)),
    ];
    let addr = origin(replies);
    let client = roundtrip_blocking::Client::new();
    // A first request: the first connection a client pools sets its idle
    // alarm (and the process's first starts the alarm thread), which the
    // count below is not about.
    let mut first = client.get(format!("http://{addr}/")).send().unwrap();
    assert_eq!(first.body_mut().bytes(100).unwrap(), pattern(13));
    drop(first);
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let (body, reads, allocs) = read_all(response.body_mut(), 16 * 1024).unwrap();
    assert!(body == pattern(LEN), "the body's bytes");
    eprintln!("4 MiB in 16 KiB slices: {reads} reads, {allocs} allocations");
    // Through the read buffer, reads were sized to the rest of the body
    // (up to 1 MiB) and each allocated its buffer; here each read is the
    // caller's 16 KiB at most, and nothing is allocated for them.
    assert!(reads > LEN / (16 * 1024), "{reads} reads");
    assert!(allocs <= 2, "{allocs} allocations while reading 4 MiB");
    drop(response);
    // The connection was read to its end and serves the next request.
    let mut next = client.get(format!("http://{addr}/")).send().unwrap();
    assert_eq!(next.body_mut().bytes(100).unwrap(), pattern(13));
    assert_eq!(client.stats().dials, 1);
}

#[test]
fn the_last_direct_read_gives_the_connection_back() {
    let addr = origin(vec![Reply::Send(sized(100_000)), Reply::Send(sized(5))]);
    let client = roundtrip_blocking::Client::new();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let mut got = vec![0u8; 100_000];
    response.body_mut().read_exact(&mut got).unwrap();
    assert!(got == pattern(100_000));
    // Not a byte more was asked for, and the body is complete: the
    // connection is in the pool already, before the response is dropped.
    assert_eq!(client.stats().idle, 1, "{:?}", client.stats());
    assert_eq!(response.body_mut().read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_chunked_body_reads_its_data_directly_and_keeps_its_trailers() {
    let mut reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut want = Vec::new();
    for (i, len) in [1usize, 70_000, 3, 16 * 1024, 200_000, 9]
        .into_iter()
        .enumerate()
    {
        let piece: Vec<u8> = (0..len).map(|j| ((i * 7 + j) % 256) as u8).collect();
        reply.extend_from_slice(format!("{len:x};ext=1\r\n").as_bytes());
        reply.extend_from_slice(&piece);
        reply.extend_from_slice(b"\r\n");
        want.extend_from_slice(&piece);
    }
    reply.extend_from_slice(b"0\r\nx-sum: 42\r\n\r\n");
    let addr = origin(vec![Reply::Send(reply), Reply::Send(sized(3))]);
    let client = roundtrip_blocking::Client::new();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let (body, reads, _) = read_all(response.body_mut(), 8 * 1024).unwrap();
    assert!(
        body == want,
        "the body's bytes ({} of {})",
        body.len(),
        want.len()
    );
    assert!(reads > want.len() / (8 * 1024), "{reads} reads");
    assert_eq!(response.body().trailers().unwrap()["x-sum"], "42");
    drop(response);
    let mut next = client.get(format!("http://{addr}/")).send().unwrap();
    assert_eq!(next.body_mut().bytes(10).unwrap(), pattern(3));
    assert_eq!(client.stats().dials, 1);
}

#[test]
fn a_body_cut_short_is_an_error_not_an_end() {
    let mut reply = sized(100_000);
    reply.truncate(reply.len() - 40_000);
    let addr = origin(vec![Reply::SendClose(reply)]);
    let client = roundtrip_blocking::Client::new();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let err = read_all(response.body_mut(), 16 * 1024).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert!(
        err.to_string().contains("during the response body"),
        "{err}"
    );
}

#[test]
fn a_stalled_body_times_out() {
    let mut reply = sized(100_000);
    reply.truncate(reply.len() - 40_000);
    let addr = origin(vec![Reply::SendStall(reply)]);
    let client = roundtrip_blocking::Client::builder()
        .read_timeout(Some(Duration::from_millis(200)))
        .build();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let start = Instant::now();
    let err = read_all(response.body_mut(), 16 * 1024).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn read_to_end_appends_a_long_body_in_place() {
    const LEN: usize = 3 << 20;
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in pattern(LEN).chunks(300_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let replies = vec![
        Reply::Send(sized(LEN)),
        Reply::Send(chunked),
        Reply::Send(sized(64 * 1024)),
        Reply::Send(sized(64 * 1024)),
    ];
    let addr = origin(replies);
    let client = roundtrip_blocking::Client::new();
    let mut all = Vec::new();
    for want in [LEN, LEN, 64 * 1024, 64 * 1024] {
        let mut response = client.get(format!("http://{addr}/")).send().unwrap();
        all.clear();
        all.extend_from_slice(b"kept");
        let n = response.body_mut().read_to_end(&mut all).unwrap();
        assert_eq!(n, want);
        assert!(all[..4] == *b"kept" && all[4..] == pattern(want)[..]);
        // Read to its end: the connection is back before the drop.
        assert_eq!(client.stats().idle, 1, "{:?}", client.stats());
    }
    assert_eq!(client.stats().dials, 1);
}

/// A body given up halfway after direct reads: the rest is drained when
/// little remains (the connection serves the next request) and the
/// connection closed when much does; either way the next request is
/// answered whole.
#[test]
fn a_body_given_up_after_direct_reads_is_drained_or_closed() {
    for (len, reused) in [(40_000, true), (2_000_000, false)] {
        let addr = origin(vec![Reply::Send(sized(len)), Reply::Send(sized(7))]);
        let client = roundtrip_blocking::Client::new();
        let mut response = client.get(format!("http://{addr}/")).send().unwrap();
        let mut slice = [0u8; 4096];
        let mut got = 0;
        while got < 20_000 {
            got += response.body_mut().read(&mut slice).unwrap();
        }
        drop(response);
        let mut next = client.get(format!("http://{addr}/")).send().unwrap();
        if reused {
            assert_eq!(next.body_mut().bytes(100).unwrap(), pattern(7));
            assert_eq!(client.stats().dials, 1, "{len}: drained and reused");
        } else {
            // A new connection: the origin's script starts again.
            let body = next.body_mut().bytes(4 << 20).unwrap();
            assert!(body == pattern(len), "{len}: the new connection's answer");
            assert_eq!(client.stats().dials, 2, "{len}: closed, not drained");
        }
    }
}

/// A body that runs until the close, read with `read_to_end`: the vector
/// grows with what comes (8 KiB at least), not by the megabyte a read may
/// be given.
#[test]
fn read_to_end_of_a_close_delimited_body_grows_with_it() {
    let mut head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    head.extend_from_slice(b"ab");
    let addr = origin(vec![Reply::SendClose(head)]);
    let client = roundtrip_blocking::Client::new();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let mut all = Vec::new();
    response.body_mut().read_to_end(&mut all).unwrap();
    assert_eq!(all, b"ab");
    assert!(
        all.capacity() <= 64 * 1024,
        "{} bytes reserved",
        all.capacity()
    );
}

/// Bytes a server sends after a body read into the caller's slice (here a
/// response nobody asked for) are not taken as the next request's answer.
/// The last read of the body, which may reach its end, is a scatter read:
/// it takes them into the connection's buffer with the body's end, and the
/// connection is closed then (`UnsolicitedBytes`), not found stale by a
/// probe before its reuse.
#[test]
fn bytes_after_a_directly_read_body_are_not_the_next_answer() {
    use roundtrip_blocking::TraceEvent;
    use roundtrip_blocking::proto::CloseReason;
    use std::sync::{Arc, Mutex};
    let mut reply = sized(100_000);
    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!");
    let addr = origin(vec![Reply::Send(reply), Reply::Send(sized(7))]);
    let closed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&closed);
    // Only the rules under test close: an idle connection is otherwise
    // reused unprobed for a minute.
    let client = roundtrip_blocking::Client::builder()
        .stale_check_after(Duration::from_secs(60))
        .trace(move |event: &TraceEvent| {
            if let TraceEvent::ConnClosed { reason, .. } = event {
                seen.lock().unwrap().push(*reason);
            }
        })
        .build();
    let mut response = client.get(format!("http://{addr}/")).send().unwrap();
    let (body, _, _) = read_all(response.body_mut(), 16 * 1024).unwrap();
    assert!(body == pattern(100_000));
    assert_eq!(*closed.lock().unwrap(), [CloseReason::UnsolicitedBytes]);
    drop(response);
    // A new connection answers (its script starts again), not the old one's
    // extra bytes.
    let mut next = client.get(format!("http://{addr}/")).send().unwrap();
    let body = next.body_mut().bytes(1 << 20).unwrap();
    assert!(
        body == pattern(100_000),
        "{} bytes: {:?}",
        body.len(),
        &body[..body.len().min(8)]
    );
    assert_eq!(client.stats().dials, 2);
}
