//! Request encoder round trip. An arbitrary request (method, target, host,
//! fields, body framing and pieces, trailers) goes through `encode_head` and
//! `BodyEncoder`. Every call must either succeed exactly when a model of the
//! documented rules says so, or refuse with the model's error and leave the
//! buffer and the encoder as they were. What is written must parse back with
//! `httparse::Request` to the same method, target and fields (plus the ones
//! the encoder adds), and the body must decode back to the same bytes and
//! trailers (a tiny strict chunked decoder below).
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use roundtrip_proto::Error;
use roundtrip_proto::encode::{BodyEncoder, BodyFraming, FieldBlock, RequestHead, encode_head};

const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Bytes biased towards the interesting: a list of known values, a
/// well-formed random value of the class, or anything.
#[derive(Debug)]
struct B(Vec<u8>);

fn pick(u: &mut Unstructured<'_>, known: &[&[u8]], valid: impl Fn(u8) -> bool) -> Result<B> {
    Ok(B(match u.int_in_range(0..=3)? {
        0 | 1 => u.choose(known)?.to_vec(),
        2 => {
            let raw: Vec<u8> = u.arbitrary()?;
            raw.into_iter().filter(|&b| valid(b)).collect()
        }
        _ => u.arbitrary()?,
    }))
}

fn is_tchar(b: u8) -> bool {
    TCHARS.contains(&b)
}
fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

struct Method(B);
struct Target(B);
struct Name(B);
struct Value(B);

impl<'a> Arbitrary<'a> for Method {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let known: &[&[u8]] = &[
            b"GET",
            b"POST",
            b"HEAD",
            b"PUT",
            b"CONNECT",
            b"M-SEARCH",
            b"get",
            b"",
            b"G T",
            b"GET\r\n",
        ];
        pick(u, known, is_tchar).map(Method)
    }
}
impl<'a> Arbitrary<'a> for Target {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let known: &[&[u8]] = &[
            b"/",
            b"*",
            b"/a?b=c#d",
            b"http://x.example/p",
            b"x.example:443",
            b"/ x",
            b"",
            b"/\r\nX: y",
            b"/\x7f",
            b"/\x80",
        ];
        pick(u, known, is_vchar).map(Target)
    }
}
impl<'a> Arbitrary<'a> for Name {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let known: &[&[u8]] = &[
            b"Host",
            b"host",
            b"Content-Length",
            b"transfer-encoding",
            b"Expect",
            b"Connection",
            b"connection",
            b"X-A",
            b"Accept",
            b"Bad Name",
            b"",
            b"X:Y",
            b"Trailer",
        ];
        pick(u, known, is_tchar).map(Name)
    }
}
impl<'a> Arbitrary<'a> for Value {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let known: &[&[u8]] = &[
            b"",
            b"a",
            b" a",
            b"a ",
            b"a\tb",
            b"\ta",
            b"close",
            b"100-continue",
            b"\x80\xff",
            b"a\r\nb: c",
            b"x\0",
            b"a\x7f",
            b"example.com",
            b"a b",
        ];
        pick(u, known, is_value_byte).map(Value)
    }
}
impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.0.escape_ascii().to_string())
    }
}
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.0.escape_ascii().to_string())
    }
}
impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.0.escape_ascii().to_string())
    }
}
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.0.escape_ascii().to_string())
    }
}

#[derive(Arbitrary, Debug)]
enum Framing {
    None,
    /// Declared length = sum of the pieces + `delta` (may be negative).
    Length {
        delta: i8,
    },
    LengthRaw(u64),
    Chunked,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// How many of the first fields are sent again as a preset block.
    preset_split: u8,
    method: Method,
    target: Target,
    host: Option<Value>,
    fields: Vec<(Name, Value)>,
    framing: Framing,
    expect_continue: bool,
    close: bool,
    pieces: Vec<Vec<u8>>,
    trailers: Vec<(Name, Value)>,
    /// Bytes already in the output buffer.
    earlier: Vec<u8>,
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// `check_field` of the encoder, as its docs state it.
fn field_error(index: usize, name: &[u8], value: &[u8]) -> Option<Error> {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Some(Error::InvalidHeaderName { index });
    }
    if !value.iter().all(|&b| is_value_byte(b))
        || value.first().is_some_and(ws)
        || value.last().is_some_and(ws)
    {
        return Some(Error::InvalidHeaderValue { index });
    }
    None
}

/// The error `encode_head` must return, if any.
fn head_model(head: &RequestHead<'_>, fields: &[(&[u8], &[u8])]) -> Option<Error> {
    if head.method.is_empty() || !head.method.iter().all(|&b| is_tchar(b)) {
        return Some(Error::InvalidMethod);
    }
    if head.target.is_empty() || !head.target.iter().all(|&b| is_vchar(b)) {
        return Some(Error::InvalidTarget);
    }
    if head.host.is_some_and(|h| !h.iter().all(|&b| is_vchar(b))) {
        return Some(Error::InvalidHost);
    }
    let mut host = head.host.is_some();
    for (index, (n, v)) in fields.iter().enumerate() {
        if let Some(e) = field_error(index, n, v) {
            return Some(e);
        }
        if eq(n, "content-length") || eq(n, "transfer-encoding") {
            return Some(Error::FramingHeader { index });
        }
        if eq(n, "host") {
            if host {
                return Some(Error::DuplicateField { index });
            }
            if !v.iter().all(|&b| is_vchar(b)) {
                return Some(Error::InvalidHeaderValue { index });
            }
            host = true;
        }
        if eq(n, "expect") && head.expect_continue {
            return Some(Error::DuplicateField { index });
        }
    }
    None
}

/// The error `finish` must return, if any (before any other call succeeded).
fn trailer_model(trailers: &[(&[u8], &[u8])]) -> Option<Error> {
    for (index, (n, v)) in trailers.iter().enumerate() {
        if let Some(e) = field_error(index, n, v) {
            return Some(e);
        }
        if eq(n, "content-length") || eq(n, "transfer-encoding") {
            return Some(Error::FramingHeader { index });
        }
        if eq(n, "host") {
            return Some(Error::ForbiddenTrailer { index });
        }
    }
    None
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A strict chunked decoder for what the encoder writes: lowercase hex
/// without leading zeros, no extensions, `name: value` trailers. Returns the
/// body, the trailers and the bytes after the body.
fn dechunk(mut s: &[u8]) -> (Vec<u8>, Fields, &[u8]) {
    let mut body = Vec::new();
    loop {
        let line_end = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk-size line without CRLF");
        let hex = &s[..line_end];
        assert!(
            !hex.is_empty() && hex.iter().all(|b| b"0123456789abcdef".contains(b)),
            "chunk size {:?}",
            hex.escape_ascii().to_string()
        );
        assert!(hex == b"0" || hex[0] != b'0', "leading zero in chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
        s = &s[line_end + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&s[..size]);
        assert_eq!(
            &s[size..size + 2],
            b"\r\n",
            "chunk data not followed by CRLF"
        );
        s = &s[size + 2..];
    }
    let mut trailers = Vec::new();
    loop {
        let line_end = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("trailer line without CRLF");
        if line_end == 0 {
            return (body, trailers, &s[2..]);
        }
        let line = &s[..line_end];
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .expect("trailer without colon");
        assert_eq!(
            line.get(colon + 1),
            Some(&b' '),
            "trailer without the single SP"
        );
        trailers.push((line[..colon].to_vec(), line[colon + 2..].to_vec()));
        s = &s[line_end + 2..];
    }
}

/// The index of the field an error names, if it names one.
fn field_index(e: &Error) -> Option<usize> {
    match *e {
        Error::InvalidHeaderName { index }
        | Error::InvalidHeaderValue { index }
        | Error::FramingHeader { index }
        | Error::DuplicateField { index } => Some(index),
        _ => None,
    }
}

fuzz_target!(|input: Input| {
    let fields: Vec<(&[u8], &[u8])> = input
        .fields
        .iter()
        .map(|(n, v)| (&n.0.0[..], &v.0.0[..]))
        .collect();
    let trailers: Vec<(&[u8], &[u8])> = input
        .trailers
        .iter()
        .map(|(n, v)| (&n.0.0[..], &v.0.0[..]))
        .collect();
    let total: u64 = input.pieces.iter().map(|p| p.len() as u64).sum();
    let body = match input.framing {
        Framing::None => BodyFraming::None,
        Framing::Length { delta } => BodyFraming::Length(total.saturating_add_signed(delta as i64)),
        Framing::LengthRaw(n) => BodyFraming::Length(n),
        Framing::Chunked => BodyFraming::Chunked,
    };
    let host = input.host.as_ref().map(|h| &h.0.0[..]);
    let head = RequestHead {
        method: &input.method.0.0,
        target: &input.target.0.0,
        host,
        body,
        preset: None,
        expect_continue: input.expect_continue,
        close: input.close,
    };

    // ---- the head ----
    let mut out = input.earlier.clone();
    let got = encode_head(&head, fields.iter().copied(), &mut out);
    let want = head_model(&head, &fields);
    assert_eq!(
        got.as_ref().err(),
        want.as_ref(),
        "encode_head verdict for {input:#?}"
    );
    // The first fields as a preset block: the same bytes or the same error.
    let split = usize::from(input.preset_split) % (fields.len() + 1);
    match FieldBlock::new(fields[..split].iter().copied()) {
        Ok(block) => {
            let preset = RequestHead {
                preset: Some(&block),
                ..head
            };
            let mut again = input.earlier.clone();
            let got_preset = encode_head(&preset, fields[split..].iter().copied(), &mut again);
            assert_eq!(got_preset, got, "preset verdict for {input:#?}");
            assert_eq!(again, out, "preset bytes for {input:#?}");
        }
        // A field the block refuses is refused in the head too, at the
        // latest at its index (an earlier field may clash with the head).
        Err(refused) => match (field_index(&refused), got.as_ref().err()) {
            (Some(at), Some(e)) => {
                if let Some(head_at) = field_index(e) {
                    assert!(head_at <= at, "{e:?} after {refused:?} for {input:#?}");
                }
            }
            (at, e) => panic!("block refused {refused:?} ({at:?}), head gave {e:?} for {input:#?}"),
        },
    }
    if got.is_err() {
        assert_eq!(out, input.earlier, "a refused head changed the buffer");
        return;
    }
    assert_eq!(
        &out[..input.earlier.len()],
        &input.earlier[..],
        "earlier bytes changed"
    );
    let head_len = out.len() - input.earlier.len();

    let mut expected: Fields = Vec::new();
    if let Some(h) = host {
        expected.push((b"Host".to_vec(), h.to_vec()));
    }
    expected.extend(fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
    match body {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            expected.push((b"Content-Length".to_vec(), n.to_string().into_bytes()))
        }
        BodyFraming::Chunked => expected.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec())),
    }
    if input.expect_continue {
        expected.push((b"Expect".to_vec(), b"100-continue".to_vec()));
    }
    if input.close && !fields.iter().any(|(n, _)| eq(n, "connection")) {
        expected.push((b"Connection".to_vec(), b"close".to_vec()));
    }
    {
        let mut headers = vec![httparse::EMPTY_HEADER; expected.len() + 1];
        let mut req = httparse::Request::new(&mut headers);
        let wire = &out[input.earlier.len()..];
        match req.parse(wire) {
            Ok(httparse::Status::Complete(n)) => assert_eq!(n, head_len, "httparse head length"),
            other => panic!(
                "httparse: {other:?} on {:?}",
                wire.escape_ascii().to_string()
            ),
        }
        assert_eq!(req.method.map(str::as_bytes), Some(head.method));
        assert_eq!(req.path.map(str::as_bytes), Some(head.target));
        assert_eq!(req.version, Some(1));
        let parsed: Fields = req
            .headers
            .iter()
            .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
            .collect();
        assert_eq!(parsed, expected, "fields read back");
    }

    // ---- the body ----
    let mut enc = BodyEncoder::new(body);
    let mut sent = Vec::new();
    for p in &input.pieces {
        let before = enc.clone();
        let framed = enc.bytes_framed() + p.len() as u64;
        let want = match body {
            BodyFraming::None if !p.is_empty() => {
                Some(Error::Misuse("body data for a request without a body"))
            }
            BodyFraming::Length(declared) if framed > declared => Some(Error::BodyLengthMismatch {
                declared,
                supplied: framed,
            }),
            _ => None,
        };
        match enc.frame_data(p.len()) {
            Ok(frame) => {
                assert_eq!(want, None, "frame_data({}) accepted", p.len());
                assert_eq!(enc.bytes_framed(), framed);
                if p.is_empty() {
                    assert!(
                        frame.prefix().is_empty() && frame.suffix().is_empty(),
                        "empty piece framed"
                    );
                }
                out.extend_from_slice(frame.prefix());
                out.extend_from_slice(p);
                out.extend_from_slice(frame.suffix());
                sent.extend_from_slice(p);
            }
            Err(e) => {
                assert_eq!(Some(e), want, "frame_data({}) refusal", p.len());
                assert_eq!(enc, before, "a refused frame_data changed the encoder");
            }
        }
    }
    let before = (enc.clone(), out.clone());
    let want = match body {
        BodyFraming::Chunked => trailer_model(&trailers),
        BodyFraming::Length(declared) if enc.bytes_framed() < declared => {
            Some(Error::BodyLengthMismatch {
                declared,
                supplied: enc.bytes_framed(),
            })
        }
        _ if !trailers.is_empty() => Some(Error::Misuse("trailers need chunked framing")),
        _ => None,
    };
    let got = enc.finish(trailers.iter().copied(), &mut out);
    assert_eq!(got.as_ref().err(), want.as_ref(), "finish verdict");
    if got.is_err() {
        assert_eq!(
            (enc, out),
            before,
            "a refused finish changed the encoder or the buffer"
        );
        return;
    }
    assert!(enc.is_finished());
    assert!(
        enc.frame_data(0).is_err() && enc.finish([], &mut Vec::new()).is_err(),
        "calls after finish accepted"
    );

    let wire_body = &out[input.earlier.len() + head_len..];
    match body {
        BodyFraming::None => assert!(wire_body.is_empty()),
        BodyFraming::Length(n) => {
            assert_eq!(wire_body.len() as u64, n);
            assert_eq!(wire_body, &sent[..]);
        }
        BodyFraming::Chunked => {
            let (got, got_trailers, rest) = dechunk(wire_body);
            assert_eq!(got, sent, "chunked body read back");
            let want: Fields = trailers
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(got_trailers, want, "trailers read back");
            assert!(rest.is_empty(), "bytes after the chunked body");
        }
    }
});
