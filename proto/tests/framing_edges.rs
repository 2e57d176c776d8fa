//! Framing edges found by a review of the decoder: each response is fed
//! whole and byte by byte, and both must give the same verdict.

use bytes::BytesMut;
use roundtrip_proto::{CloseReason, Error, Event, Framing, ResponseDecoder, Reuse};

/// The framing and reuse of `input`'s head, or the error, fed in pieces
/// of `step` bytes; with the body's bytes when it ends.
fn decode(
    input: &[u8],
    step: usize,
    dec: &mut ResponseDecoder,
) -> Result<(Framing, Reuse, Vec<u8>), Error> {
    let mut buf = BytesMut::new();
    let mut head = None;
    let mut body = Vec::new();
    for piece in input.chunks(step) {
        buf.extend_from_slice(piece);
        for _ in 0..10_000 {
            match dec.poll_event(&mut buf)? {
                None => break,
                Some(Event::HeadEnd(h)) => head = Some((h.framing, h.reuse)),
                Some(Event::Data(d)) => body.extend_from_slice(&d),
                Some(Event::End) => {
                    let (framing, reuse) = head.expect("a head before the end");
                    return Ok((framing, reuse, body));
                }
                Some(_) => {}
            }
        }
    }
    panic!("no end in {:?}", String::from_utf8_lossy(input))
}

fn both(input: &[u8]) -> Result<(Framing, Reuse, Vec<u8>), Error> {
    let whole = decode(input, input.len(), &mut ResponseDecoder::default());
    let bytewise = decode(input, 1, &mut ResponseDecoder::default());
    assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(input));
    whole
}

/// `chunked` applied twice is refused however far apart the two are
/// (RFC 9112 section 6.1); it was caught only when adjacent.
#[test]
fn chunked_twice_is_refused_apart_too() {
    for te in [
        "chunked, chunked",
        "chunked, gzip, chunked",
        "chunked\r\nTransfer-Encoding: gzip, chunked",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        let got = both(input.as_bytes());
        assert!(
            matches!(got, Err(Error::InvalidTransferEncoding { .. })),
            "{te}: {got:?}"
        );
    }
}

/// A `close` in a folded `Connection` value (`keep-alive close`) closes.
#[test]
fn folded_connection_close_closes() {
    let input = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n close\r\nContent-Length: 0\r\n\r\n";
    let (_, reuse, _) = both(input).expect("decoded");
    assert_eq!(reuse, Reuse::No(CloseReason::ServerClose));
}

/// A chunk size's run of digits is bounded, leading zeros included.
#[test]
fn endless_leading_zeros_are_refused() {
    let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'0', 64));
    input.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
    assert!(matches!(both(&input), Err(Error::ChunkSizeOverflow { .. })));
    let fine = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n";
    assert_eq!(both(fine).expect("decoded").2, b"hello");
}

/// `reset` forgets the request's method: after a HEAD, a decoder reset
/// for another request reads a body again.
#[test]
fn reset_forgets_a_head_request() {
    let mut dec = ResponseDecoder::default();
    dec.set_request_method(b"HEAD");
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(
        decode(head, head.len(), &mut dec).expect("decoded").0,
        Framing::NoBody
    );
    dec.reset();
    let get = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(
        decode(get, get.len(), &mut dec).expect("decoded").0,
        Framing::Length(5)
    );
}

/// A `Transfer-Encoding` in an HTTP/1.0 response, or beside a
/// `Content-Length`, makes the connection unusable after the response
/// even when the response has no body (304, 204, an answer to HEAD): RFC
/// 9112 sections 6.1 and 6.3, 3. Only bodied responses closed it.
#[test]
fn faulty_framing_closes_bodiless_responses_too() {
    for (head, to_head) in [
        (
            "HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked",
            false,
        ),
        (
            "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked",
            false,
        ),
        (
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked",
            true,
        ),
        (
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
            false,
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5",
            true,
        ),
    ] {
        let input = format!("{head}\r\n\r\n");
        let dec = || {
            let mut dec = ResponseDecoder::default();
            if to_head {
                dec.set_request_method(b"HEAD");
            }
            dec
        };
        let whole = decode(input.as_bytes(), input.len(), &mut dec());
        let bytewise = decode(input.as_bytes(), 1, &mut dec());
        assert_eq!(whole, bytewise, "{head}");
        let (framing, reuse, _) = whole.expect("a response");
        assert_eq!(framing, Framing::NoBody, "{head}");
        assert_eq!(reuse, Reuse::No(CloseReason::AmbiguousFraming), "{head}");
    }
    // Without the fault a bodiless keep-alive response keeps it.
    let ok = both(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").unwrap();
    assert_eq!(ok.1, Reuse::Yes);
}

/// A 2xx to CONNECT ignores its Content-Length and Transfer-Encoding,
/// malformed ones too (RFC 9110 section 9.3.6: a client MUST): the head
/// ends the exchange and the connection is a tunnel. Another status keeps
/// refusing them.
#[test]
fn a_tunnel_ignores_malformed_framing_fields() {
    for fields in [
        "Content-Length: 0, 5",
        "Content-Length: x",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: nope",
    ] {
        let cases = [
            ("CONNECT", "200 Connection established", true),
            ("CONNECT", "407 No", false),
            ("GET", "200 OK", false),
        ];
        for (method, status, tunnel) in cases {
            let input = format!("HTTP/1.1 {status}\r\n{fields}\r\n\r\n");
            for step in [input.len(), 1] {
                let mut dec = ResponseDecoder::default();
                dec.set_request_method(method.as_bytes());
                let mut buf = BytesMut::new();
                let mut got = None;
                'feed: for piece in input.as_bytes().chunks(step) {
                    buf.extend_from_slice(piece);
                    // Bounded: a head has a few events.
                    for _ in 0..100 {
                        match dec.poll_event(&mut buf) {
                            Ok(Some(Event::HeadEnd(h))) => got = Some(Ok(h.framing)),
                            Err(e) => got = Some(Err(e)),
                            Ok(Some(_)) => continue,
                            Ok(None) => break,
                        }
                        break 'feed;
                    }
                }
                match (tunnel, &got) {
                    (true, Some(Ok(Framing::Switched))) | (false, Some(Err(_))) => {}
                    _ => panic!("{method} {status} {fields:?} by {step}: {got:?}"),
                }
            }
        }
    }
}
