//! Differential: our decoder against `httparse::Response` on one response
//! head (answering HEAD). When both accept a complete head, they must agree
//! on version, status code, reason, the header fields and the head length.
//! Deliberate differences are skipped explicitly; each is listed in
//! FUZZING.md ("differential: known differences").
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use roundtrip_proto::{Event, ResponseDecoder, Version};

/// Enough for our default `max_fields` (128); more is `TooManyHeaders` there
/// and `TooManyFields` here: both refuse.
const MAX_HEADERS: usize = 128;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut theirs = httparse::Response::new(&mut headers);
    let their_len = match theirs.parse(data) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return, // nothing to compare
        // httparse refuses: we must not accept the head, but where we
        // deliberately do (FUZZING.md): obs-fold, `HTTP/1.x` with x > 1.
        Err(_) => {
            let head = data
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(data, |end| &data[..end + 4]);
            let folded = head
                .windows(3)
                .any(|w| w[..2] == *b"\r\n" && (w[2] == b' ' || w[2] == b'\t'));
            let minor = head.get(7).copied().unwrap_or(b'0');
            let newer = head.starts_with(b"HTTP/1.") && minor.is_ascii_digit() && minor > b'1';
            let mut dec = ResponseDecoder::default();
            dec.set_request_method(b"HEAD");
            let mut buf = BytesMut::from(data);
            // Bounded: each event consumes bytes or ends the head.
            for _ in 0..=data.len() + MAX_HEADERS + 2 {
                match dec.poll_event(&mut buf) {
                    Ok(Some(Event::HeadEnd(_))) if !folded && !newer => panic!(
                        "httparse refuses {:?}, we accept its head",
                        data.escape_ascii().to_string()
                    ),
                    Ok(Some(Event::HeadEnd(_)) | None) | Err(_) => return,
                    Ok(Some(_)) => {}
                }
            }
            return;
        }
    };

    let mut dec = ResponseDecoder::default();
    dec.set_request_method(b"HEAD");
    let mut buf = BytesMut::from(data);
    let (mut status, mut fields) = (None, Vec::new());
    loop {
        match dec.poll_event(&mut buf) {
            Ok(Some(Event::Status(s))) => status = Some((s.version, s.code, s.reason.to_vec())),
            Ok(Some(Event::Field(f))) => fields.push((f.name().to_vec(), f.value().to_vec())),
            Ok(Some(Event::HeadEnd(_))) => break,
            Ok(Some(other)) => panic!("{other:?} before HeadEnd"),
            Ok(None) => {
                panic!("httparse found a complete head of {their_len} bytes, we want more bytes")
            }
            Err(_) => return, // we refuse: a deliberate strictness, see FUZZING.md
        }
    }
    let (our_version, our_code, our_reason) = status.expect("Status before HeadEnd");
    let our_len = data.len() - buf.len();

    // Known difference 1: a reason with obs-text (0x80-0xFF) is reported by
    // httparse as "" (it returns &str); we pass the bytes through.
    let reason_comparable = our_reason.iter().all(|&b| b < 0x80);

    let their_version = match theirs.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        v => panic!("httparse version {v:?}"),
    };
    let their_fields: Vec<(Vec<u8>, Vec<u8>)> = theirs
        .headers
        .iter()
        .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
        .collect();
    let same = our_version == their_version
        && Some(our_code) == theirs.code
        && (!reason_comparable || Some(&our_reason[..]) == theirs.reason.map(str::as_bytes))
        && fields == their_fields
        && our_len == their_len;
    if !same {
        panic!(
            "divergence on {:?}\nours:     {:?} {} {:?} len {our_len}\n          {:?}\nhttparse: {:?} {:?} {:?} len {their_len}\n          {:?}",
            data.escape_ascii().to_string(),
            our_version,
            our_code,
            our_reason.escape_ascii().to_string(),
            fields
                .iter()
                .map(|(n, v)| (n.escape_ascii().to_string(), v.escape_ascii().to_string()))
                .collect::<Vec<_>>(),
            their_version,
            theirs.code,
            theirs.reason,
            their_fields
                .iter()
                .map(|(n, v)| (n.escape_ascii().to_string(), v.escape_ascii().to_string()))
                .collect::<Vec<_>>(),
        );
    }
});
