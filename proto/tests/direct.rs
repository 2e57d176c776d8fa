//! The decoder's calls beside `poll_event`: body bytes taken past the
//! buffer (`take_body_direct`, with a scatter read's tail), a head's
//! fields at once (`take_fields`), and `awaits_input`, each where it is
//! misused or the decoder failed.

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Limits, ResponseDecoder};

/// A decoder in the middle of `head`'s body, with the buffer emptied.
fn reading(head: &[u8]) -> (ResponseDecoder, BytesMut) {
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(head);
    // Bounded: the head's events, then its first data.
    for _ in 0..16 {
        let last = matches!(
            dec.poll_event(&mut buf).unwrap(),
            None | Some(Event::Data(_))
        );
        if last && buf.is_empty() {
            break;
        }
    }
    assert!(buf.is_empty());
    (dec, buf)
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nh";

#[test]
fn a_scatter_tail_is_decoded_after_the_direct_bytes() {
    let (mut dec, mut buf) = reading(CHUNKED);
    assert_eq!(dec.direct_body_room(&buf), Some(4));
    buf.extend_from_slice(b"\r\n3\r\nabc\r\n0\r\n\r\n");
    dec.take_body_direct(&buf, 4, buf.len()).unwrap();
    let mut data = Vec::new();
    // Bounded: the tail's events.
    for _ in 0..8 {
        match dec.poll_event(&mut buf).unwrap() {
            Some(Event::Data(d)) => data.extend_from_slice(&d),
            Some(Event::End) => break,
            other => assert!(other.is_some(), "more was buffered"),
        }
    }
    assert_eq!(data, b"abc");
}

#[test]
fn a_scatter_tail_is_misuse_past_the_room_or_beside_older_bytes() {
    let misuse = |r: Result<(), Error>| matches!(r, Err(Error::Misuse(_)));
    // More than the room, with a tail.
    let (mut dec, mut buf) = reading(CHUNKED);
    buf.extend_from_slice(b"\r\n0\r\n\r\n");
    assert!(misuse(dec.take_body_direct(&buf, 5, buf.len())));
    // More appended than the buffer holds.
    let (mut dec, mut buf) = reading(CHUNKED);
    buf.extend_from_slice(b"\r\n");
    assert!(misuse(dec.take_body_direct(&buf, 4, 3)));
    // The buffer held a byte before the read: the direct bytes would come
    // after it, out of order.
    let (mut dec, mut buf) = reading(CHUNKED);
    buf.extend_from_slice(b"xy");
    assert!(misuse(dec.take_body_direct(&buf, 1, 1)));
    // Refused, nothing taken: the buffered bytes are the body's next.
    assert!(matches!(dec.poll_event(&mut buf), Ok(Some(Event::Data(d))) if d == "xy"));
}

#[test]
fn no_fields_are_taken_or_polled_after_an_error() {
    let head = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n";
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(&head[..]);
    assert!(matches!(
        dec.poll_event(&mut buf),
        Ok(Some(Event::Status(_)))
    ));
    // The unshared head lies in the buffer: cutting it is misuse...
    buf.truncate(3);
    assert!(matches!(dec.poll_event(&mut buf), Err(Error::Misuse(_))));
    // ...and bytes put back in its place are no fields of it.
    buf.resize(head.len(), b'Z');
    assert_eq!(dec.take_fields(&buf).len(), 0);
    assert!(matches!(dec.poll_event(&mut buf), Err(Error::Misuse(_))));
}

#[test]
fn a_decoder_with_no_room_for_a_head_awaits_nothing() {
    let mut dec = ResponseDecoder::new(Limits::default().max_head_bytes(0));
    let mut buf = BytesMut::new();
    assert!(!dec.awaits_input(&buf));
    assert!(matches!(
        dec.poll_event(&mut buf),
        Err(Error::HeadTooLarge { limit: 0 })
    ));
}

/// A body until the close offers `u64::MAX` bytes of room: taking all of
/// it, twice, does not overflow the decoder's counts (a panic in a debug
/// build before).
#[test]
fn the_room_of_a_body_until_the_close_cannot_overflow() {
    let mut dec = ResponseDecoder::default();
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\n"[..]);
    while !matches!(
        dec.poll_event(&mut buf).unwrap(),
        Some(Event::HeadEnd(_)) | None
    ) {}
    assert_eq!(dec.direct_body_room(&buf), Some(u64::MAX));
    dec.take_body_direct(&buf, u64::MAX, 0).unwrap();
    dec.take_body_direct(&buf, 1 << 63, 0).unwrap();
    dec.handle_eof();
    assert!(matches!(
        dec.poll_event(&mut buf).unwrap(),
        Some(Event::End)
    ));
}
