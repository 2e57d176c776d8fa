//! Unit tests of the request encoder.

use super::*;
use alloc::format;
use alloc::vec;

type Field<'a> = (&'a [u8], &'a [u8]);

fn get(host: Option<&'static [u8]>) -> RequestHead<'static> {
    RequestHead {
        method: b"GET",
        target: b"/",
        host,
        body: BodyFraming::None,
        preset: None,
        expect_continue: false,
        close: false,
    }
}

fn encode(head: &RequestHead<'_>, fields: &[Field<'_>]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_head(head, fields.iter().copied(), &mut out).map(|()| out)
}

/// Encodes into a buffer holding earlier bytes and checks an error leaves
/// them untouched.
fn refused(head: &RequestHead<'_>, fields: &[Field<'_>]) -> Error {
    let mut out = b"earlier".to_vec();
    let err = encode_head(head, fields.iter().copied(), &mut out).unwrap_err();
    assert_eq!(out, b"earlier", "buffer changed on {err:?}");
    err
}

#[test]
fn get_with_host() {
    let out = encode(&get(Some(b"example.com")), &[(b"Accept", b"*/*")]).unwrap();
    assert_eq!(
        out,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    );
}

#[test]
fn post_with_content_length_keeps_case_and_order() {
    let head = RequestHead {
        method: b"POST",
        target: b"http://example.com/form?a=1",
        body: BodyFraming::Length(13),
        ..get(Some(b"example.com"))
    };
    let fields: &[Field<'_>] = &[(b"content-TYPE", b"text/plain"), (b"X-Empty", b"")];
    assert_eq!(
        encode(&head, fields).unwrap(),
        b"POST http://example.com/form?a=1 HTTP/1.1\r\nHost: example.com\r\n\
          content-TYPE: text/plain\r\nX-Empty: \r\nContent-Length: 13\r\n\r\n"
    );
}

#[test]
fn content_length_digits() {
    for (n, text) in [
        (0, &b"0"[..]),
        (10, b"10"),
        (u64::MAX, b"18446744073709551615"),
    ] {
        let head = RequestHead {
            body: BodyFraming::Length(n),
            ..get(None)
        };
        let out = encode(&head, &[]).unwrap();
        let line = [&b"Content-Length: "[..], text, b"\r\n\r\n"].concat();
        assert!(out.ends_with(&line), "{n}");
    }
}

#[test]
fn chunked_with_trailers_exact_bytes() {
    let head = RequestHead {
        method: b"PUT",
        target: b"/x",
        body: BodyFraming::Chunked,
        ..get(Some(b"h"))
    };
    let mut wire = encode(&head, &[(b"Trailer", b"Checksum")]).unwrap();
    let mut body = BodyEncoder::new(head.body);
    for piece in [&b"hello"[..], &[b'z'; 26][..], b""] {
        let frame = body.frame_data(piece.len()).unwrap();
        wire.extend_from_slice(frame.prefix());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(frame.suffix());
    }
    let trailers: [Field<'_>; 2] = [(b"Checksum", b"abc"), (b"X-T", b"1")];
    body.finish(trailers, &mut wire).unwrap();
    let expected = [
        &b"PUT /x HTTP/1.1\r\nHost: h\r\nTrailer: Checksum\r\n"[..],
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n",
        b"1a\r\nzzzzzzzzzzzzzzzzzzzzzzzzzz\r\n",
        b"0\r\nChecksum: abc\r\nX-T: 1\r\n\r\n",
    ]
    .concat();
    assert_eq!(wire, expected);
    assert_eq!(body.bytes_framed(), 31);
}

#[test]
fn expect_continue_and_close() {
    let head = RequestHead {
        method: b"POST",
        body: BodyFraming::Length(1),
        expect_continue: true,
        close: true,
        ..get(Some(b"h"))
    };
    assert_eq!(
        encode(&head, &[]).unwrap(),
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        refused(&head, &[(b"x", b"1"), (b"EXPECT", b"100-continue")]),
        Error::DuplicateField { index: 1 }
    );
}

#[test]
fn caller_connection_replaces_close() {
    let head = RequestHead {
        close: true,
        ..get(None)
    };
    let out = encode(
        &head,
        &[(b"connection", b"close, te"), (b"TE", b"trailers")],
    )
    .unwrap();
    assert_eq!(
        out,
        b"GET / HTTP/1.1\r\nconnection: close, te\r\nTE: trailers\r\n\r\n"
    );
    // Without `close`, a caller Expect is just a field.
    assert!(encode(&get(None), &[(b"Expect", b"100-continue")]).is_ok());
}

#[test]
fn host_from_fields_or_head_but_not_both() {
    let out = encode(&get(None), &[(b"host", b"a.example")]).unwrap();
    assert_eq!(out, b"GET / HTTP/1.1\r\nhost: a.example\r\n\r\n");
    let empty_host = encode(&get(Some(b"")), &[]).unwrap();
    assert_eq!(empty_host, b"GET / HTTP/1.1\r\nHost: \r\n\r\n");

    let twice: &[Field<'_>] = &[(b"Host", b"a")];
    assert_eq!(
        refused(&get(Some(b"a")), twice),
        Error::DuplicateField { index: 0 }
    );
    let two_fields: &[Field<'_>] = &[(b"Host", b"a"), (b"HOST", b"b")];
    assert_eq!(
        refused(&get(None), two_fields),
        Error::DuplicateField { index: 1 }
    );
    let spaced: &[Field<'_>] = &[(b"Host", b"a b")];
    assert_eq!(
        refused(&get(None), spaced),
        Error::InvalidHeaderValue { index: 0 }
    );
    for bad in [&b"a b"[..], b"a\r\nX: y", b"a\0", b"\xc3\xa9"] {
        assert_eq!(refused(&get(Some(bad)), &[]), Error::InvalidHost);
    }
}

#[test]
fn refuses_bad_values() {
    let bad: [&[u8]; 9] = [
        b"a\rb",
        b"a\nb",
        b"a\r\nX-Evil: 1",
        b"a\0b",
        b"a\x7fb",
        b"a\x01b",
        b" a",
        b"a\t",
        b" ",
    ];
    for value in bad {
        let fields: &[Field<'_>] = &[(b"Ok", b"1"), (b"X", value)];
        let err = refused(&get(Some(b"h")), fields);
        assert_eq!(err, Error::InvalidHeaderValue { index: 1 }, "{value:?}");
    }
    // Inner whitespace, tabs and obs-text are field-content.
    assert!(encode(&get(None), &[(b"X", b"a \tb\x80\xff")]).is_ok());
}

#[test]
fn refuses_bad_names() {
    let bad: [&[u8]; 8] = [
        b"",
        b"X Y",
        b"X:",
        b"X\r",
        b"X\n",
        b"X\0",
        b"X\r\nY",
        b"\xc3\xa9",
    ];
    for name in bad {
        let err = refused(&get(None), &[(name, b"v")]);
        assert_eq!(err, Error::InvalidHeaderName { index: 0 }, "{name:?}");
    }
}

#[test]
fn refuses_bad_method_and_target() {
    for method in [&b""[..], b"GE T", b"GET\r\n", b"G\0", b"GET/"] {
        let head = RequestHead {
            method,
            ..get(None)
        };
        assert_eq!(refused(&head, &[]), Error::InvalidMethod, "{method:?}");
    }
    for target in [
        &b""[..],
        b"/a b",
        b"/\r\nX: y",
        b"/\0",
        b"/\x7f",
        b"/\xc3\xa9",
        b"/\t",
    ] {
        let head = RequestHead {
            target,
            ..get(None)
        };
        assert_eq!(refused(&head, &[]), Error::InvalidTarget, "{target:?}");
    }
    for target in [&b"*"[..], b"example.com:443", b"/p?q=%20#"] {
        assert!(
            encode(
                &RequestHead {
                    target,
                    ..get(None)
                },
                &[]
            )
            .is_ok()
        );
    }
}

#[test]
fn refuses_framing_fields() {
    for name in [
        &b"Content-Length"[..],
        b"content-length",
        b"TRANSFER-ENCODING",
    ] {
        let fields: &[Field<'_>] = &[(b"A", b"1"), (b"B", b"2"), (name, b"5")];
        assert_eq!(
            refused(&get(None), fields),
            Error::FramingHeader { index: 2 }
        );
    }
}

#[test]
fn error_display_and_group() {
    let err = Error::FramingHeader { index: 3 };
    assert_eq!(
        format!("{err}"),
        "field 3 is content-length or transfer-encoding, which the encoder sets"
    );
    for err in [
        Error::InvalidHost,
        err,
        Error::DuplicateField { index: 0 },
        Error::ForbiddenTrailer { index: 0 },
    ] {
        assert!(!err.is_peer_error());
    }
}

#[test]
fn length_too_long_is_refused_and_retryable() {
    let mut body = BodyEncoder::new(BodyFraming::Length(5));
    assert_eq!(body.frame_data(3).unwrap(), DataFrame::BARE);
    assert_eq!(
        body.frame_data(3),
        Err(Error::BodyLengthMismatch {
            declared: 5,
            supplied: 6
        })
    );
    assert_eq!(body.bytes_framed(), 3);
    body.frame_data(2).unwrap();
    body.frame_data(0).unwrap();
    let mut out = Vec::new();
    body.finish([], &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn length_too_short_at_finish() {
    let mut body = BodyEncoder::new(BodyFraming::Length(5));
    body.frame_data(4).unwrap();
    let mut out = vec![1, 2];
    assert_eq!(
        body.finish([], &mut out),
        Err(Error::BodyLengthMismatch {
            declared: 5,
            supplied: 4
        })
    );
    assert!(!body.is_finished());
    assert_eq!(out, [1, 2]);
}

#[test]
fn zero_length_chunk_is_empty_frame() {
    let mut body = BodyEncoder::new(BodyFraming::Chunked);
    let frame = body.frame_data(0).unwrap();
    assert_eq!((frame.prefix(), frame.suffix()), (&b""[..], &b""[..]));
    let mut out = Vec::new();
    body.finish([], &mut out).unwrap();
    assert_eq!(out, b"0\r\n\r\n");
}

#[test]
fn chunk_size_hex() {
    for (len, text) in [
        (1, &b"1\r\n"[..]),
        (15, b"f\r\n"),
        (16, b"10\r\n"),
        (0xabc, b"abc\r\n"),
        (u64::MAX, b"ffffffffffffffff\r\n"),
    ] {
        assert_eq!(DataFrame::chunk(len).prefix(), text, "{len}");
    }
    assert_eq!(
        format!("{:?}", DataFrame::chunk(10)),
        r#"DataFrame { prefix: b"a\r\n", suffix: b"\r\n" }"#
    );
}

#[test]
fn no_body_refuses_data() {
    let mut body = BodyEncoder::new(BodyFraming::None);
    assert_eq!(body.frame_data(0).unwrap(), DataFrame::BARE);
    assert!(matches!(body.frame_data(1), Err(Error::Misuse(_))));
    let trailer: [Field<'_>; 1] = [(b"X", b"1")];
    assert!(matches!(
        body.finish(trailer, &mut Vec::new()),
        Err(Error::Misuse(_))
    ));
    assert!(!body.is_finished());
}

#[test]
fn misuse_after_finish() {
    for framing in [
        BodyFraming::None,
        BodyFraming::Length(0),
        BodyFraming::Chunked,
    ] {
        let mut body = BodyEncoder::new(framing);
        let mut out = Vec::new();
        body.finish([], &mut out).unwrap();
        let len = out.len();
        assert!(matches!(body.frame_data(0), Err(Error::Misuse(_))));
        assert!(matches!(body.finish([], &mut out), Err(Error::Misuse(_))));
        assert_eq!(out.len(), len);
        assert!(body.is_finished());
    }
}

#[test]
fn refuses_bad_trailers_and_keeps_buffer() {
    let cases: [(Field<'_>, Error); 5] = [
        ((b"Content-Length", b"1"), Error::FramingHeader { index: 1 }),
        (
            (b"transfer-encoding", b"gzip"),
            Error::FramingHeader { index: 1 },
        ),
        ((b"Host", b"h"), Error::ForbiddenTrailer { index: 1 }),
        ((b"X", b"a\r\nb"), Error::InvalidHeaderValue { index: 1 }),
        ((b"X Y", b"v"), Error::InvalidHeaderName { index: 1 }),
    ];
    for (bad, expected) in cases {
        let mut body = BodyEncoder::new(BodyFraming::Chunked);
        let mut out = b"data".to_vec();
        let trailers: [Field<'_>; 2] = [(b"Ok", b"1"), bad];
        assert_eq!(body.finish(trailers, &mut out), Err(expected));
        assert_eq!(out, b"data");
        assert!(!body.is_finished());
        body.finish([], &mut out).unwrap();
        assert_eq!(out, b"data0\r\n\r\n");
    }
}

/// Cross-check with an independent parser: what we write is one request
/// with exactly the fields we meant.
#[test]
fn httparse_reads_what_we_wrote() {
    let head = RequestHead {
        method: b"PATCH",
        target: b"/a?b=c",
        body: BodyFraming::Length(2),
        expect_continue: true,
        close: true,
        ..get(Some(b"h:1"))
    };
    let out = encode(&head, &[(b"X-A", b"1 2"), (b"x-b", b"")]).unwrap();
    let mut parsed = [httparse::EMPTY_HEADER; 8];
    let mut req = httparse::Request::new(&mut parsed);
    assert_eq!(
        req.parse(&out).unwrap(),
        httparse::Status::Complete(out.len())
    );
    assert_eq!(
        (req.method, req.path, req.version),
        (Some("PATCH"), Some("/a?b=c"), Some(1))
    );
    let got: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
    let want: [(&str, &[u8]); 6] = [
        ("Host", b"h:1"),
        ("X-A", b"1 2"),
        ("x-b", b""),
        ("Content-Length", b"2"),
        ("Expect", b"100-continue"),
        ("Connection", b"close"),
    ];
    assert_eq!(got, want);
}

/// Mostly harmless bytes, with enough line ends, colons, controls and
/// whitespace that refusals and acceptances both occur often.
fn tricky_byte() -> impl proptest::strategy::Strategy<Value = u8> {
    proptest::sample::select(&b"aZ9-_: \t\r\n\0\x7f\x80\xff"[..])
}

proptest::proptest! {
    /// Whatever bytes a caller passes, the encoder either refuses them or
    /// writes exactly one head that a parser reads back field for field:
    /// no request splitting.
    #[test]
    fn never_splits_a_request(
        name in proptest::collection::vec(tricky_byte(), 0..6),
        value in proptest::collection::vec(tricky_byte(), 0..12),
    ) {
        let mut out = Vec::new();
        let fields: [Field<'_>; 1] = [(&name, &value)];
        if encode_head(&get(Some(b"h")), fields, &mut out).is_ok() {
            let mut parsed = [httparse::EMPTY_HEADER; 4];
            let mut req = httparse::Request::new(&mut parsed);
            let status = req.parse(&out);
            proptest::prop_assert_eq!(status, Ok(httparse::Status::Complete(out.len())));
            proptest::prop_assert_eq!(req.headers.len(), 2);
            proptest::prop_assert_eq!(req.headers[1].name.as_bytes(), &name[..]);
            proptest::prop_assert_eq!(req.headers[1].value, &value[..]);
        } else {
            proptest::prop_assert!(out.is_empty());
        }
    }
}

/// A block of the first fields sent as a preset encodes to the same
/// bytes, or the same error, as all the fields passed in turn.
#[test]
fn preset_block_equals_its_fields_in_turn() {
    let candidates: &[Field<'_>] = &[
        (b"User-Agent", b"t/1"),
        (b"Host", b"h"),
        (b"Expect", b"100-continue"),
        (b"Connection", b"close"),
        (b"Content-Length", b"1"),
        (b"X-Bad", b" padded"),
        (b"Bad Name", b"v"),
    ];
    let heads = [
        get(Some(b"h")),
        get(None),
        RequestHead {
            expect_continue: true,
            close: true,
            body: BodyFraming::Length(1),
            ..get(None)
        },
    ];
    let n = candidates.len();
    let mut compared = 0;
    for len in 0..=3u32 {
        for code in 0..n.pow(len) {
            let fields: Vec<Field<'_>> =
                (0..len).map(|i| candidates[code / n.pow(i) % n]).collect();
            for split in 0..=fields.len() {
                let Ok(block) = FieldBlock::new(fields[..split].iter().copied()) else {
                    continue;
                };
                assert_eq!(block.len(), split);
                for head in &heads {
                    let all = encode(head, &fields);
                    let preset = RequestHead {
                        preset: Some(&block),
                        ..*head
                    };
                    let mut out = b"earlier".to_vec();
                    let got = encode_head(&preset, fields[split..].iter().copied(), &mut out);
                    match (&all, got) {
                        (Ok(want), Ok(())) => {
                            assert_eq!(out[7..], want[..], "{fields:?} / {split}")
                        }
                        (Err(want), Err(got)) => {
                            assert_eq!(*want, got, "{fields:?} / {split}");
                            assert_eq!(out, b"earlier");
                        }
                        (want, got) => panic!("{fields:?} / {split}: {want:?} vs {got:?}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000, "{compared}");
}
