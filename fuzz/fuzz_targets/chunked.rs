//! The chunked body decoder, two ways; the first input byte picks the mode.
//!
//! - Even: raw. The rest is a control header and payload as for `decode`
//!   (method forced to GET); the payload follows a fixed
//!   `Transfer-Encoding: chunked` head. No panic, and the same outcome fed
//!   whole, in the fuzz-chosen pieces and byte by byte.
//! - Odd: structured. Chunks (sizes with leading zeros and either case,
//!   extensions with BWS, tokens and quoted strings), the last chunk and
//!   trailers are generated with `arbitrary`, serialized, and decoded in
//!   fuzz-chosen pieces: the exact body and trailers must come back.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use roundtrip_fuzz::{Ctrl, Ev, check_split_independence, cut, parse_ctrl, run};
use roundtrip_proto::{Framing, Limits};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A non-empty token.
#[derive(Debug)]
struct Token(Vec<u8>);

impl<'a> Arbitrary<'a> for Token {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = u.int_in_range(1..=8)?;
        let mut t = Vec::with_capacity(len);
        for _ in 0..len {
            t.push(*u.choose(TCHARS)?);
        }
        Ok(Token(t))
    }
}

/// Optional whitespace (BWS): up to two of SP / HTAB.
#[derive(Debug)]
struct Bws(Vec<u8>);

impl<'a> Arbitrary<'a> for Bws {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let n = u.int_in_range(0..=2)?;
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(if u.arbitrary()? { b' ' } else { b'\t' });
        }
        Ok(Bws(v))
    }
}

/// A field value: field-content bytes, no surrounding whitespace.
#[derive(Debug)]
struct Value(Vec<u8>);

impl<'a> Arbitrary<'a> for Value {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let raw: Vec<u8> = u.arbitrary()?;
        let mut v: Vec<u8> = raw
            .into_iter()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect();
        while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.remove(0);
        }
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        Ok(Value(v))
    }
}

#[derive(Arbitrary, Debug)]
enum ExtValue {
    Token(Token),
    /// Raw content; `"` and `\` are escaped when written, other bytes may be
    /// escaped too (`escape_all`).
    Quoted(Value, bool),
}

#[derive(Arbitrary, Debug)]
struct Ext {
    before_semi: Bws,
    after_semi: Bws,
    name: Token,
    /// `(BWS before "=", BWS after "=", value)`.
    value: Option<(Bws, Bws, ExtValue)>,
}

#[derive(Arbitrary, Debug)]
struct Chunk {
    data: Vec<u8>,
    leading_zeros: u8,
    upper: bool,
    exts: Vec<Ext>,
}

#[derive(Arbitrary, Debug)]
struct Body {
    chunks: Vec<Chunk>,
    last_zeros: u8,
    last_exts: Vec<Ext>,
    trailers: Vec<(Token, Value)>,
    pieces: Vec<u16>,
}

fn write_exts(out: &mut Vec<u8>, exts: &[Ext]) {
    for e in exts {
        out.extend_from_slice(&e.before_semi.0);
        out.push(b';');
        out.extend_from_slice(&e.after_semi.0);
        out.extend_from_slice(&e.name.0);
        if let Some((a, b, v)) = &e.value {
            out.extend_from_slice(&a.0);
            out.push(b'=');
            out.extend_from_slice(&b.0);
            match v {
                ExtValue::Token(t) => out.extend_from_slice(&t.0),
                ExtValue::Quoted(v, escape_all) => {
                    out.push(b'"');
                    for &c in &v.0 {
                        if *escape_all || c == b'"' || c == b'\\' {
                            out.push(b'\\');
                        }
                        out.push(c);
                    }
                    out.push(b'"');
                }
            }
        }
    }
}

fn structured(data: &[u8]) {
    let Ok(body) = Body::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut wire = HEAD.to_vec();
    let mut expected = Vec::new();
    for c in body.chunks.iter().filter(|c| !c.data.is_empty()) {
        let zeros = "0".repeat((c.leading_zeros % 4) as usize);
        let size = if c.upper {
            format!("{zeros}{:X}", c.data.len())
        } else {
            format!("{zeros}{:x}", c.data.len())
        };
        wire.extend_from_slice(size.as_bytes());
        write_exts(&mut wire, &c.exts);
        wire.extend_from_slice(b"\r\n");
        wire.extend_from_slice(&c.data);
        wire.extend_from_slice(b"\r\n");
        expected.extend_from_slice(&c.data);
    }
    wire.extend_from_slice("0".repeat(1 + (body.last_zeros % 3) as usize).as_bytes());
    write_exts(&mut wire, &body.last_exts);
    wire.extend_from_slice(b"\r\n");
    let mut want_trailers = Vec::new();
    for (n, v) in &body.trailers {
        wire.extend_from_slice(&n.0);
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(&v.0);
        wire.extend_from_slice(b"\r\n");
        want_trailers.push((n.0.clone(), v.0.clone()));
    }
    wire.extend_from_slice(b"\r\n");

    // Limits out of the way: this checks the codec, not the limits.
    let limits = Limits::default()
        .max_chunk_ext_bytes(usize::MAX)
        .max_trailer_bytes(usize::MAX)
        .max_fields(usize::MAX);
    let ctrl = Ctrl {
        method: b"GET",
        eof: false,
        limits,
        pieces: body.pieces.iter().map(|&n| n as usize).collect(),
    };
    for out in [run(&ctrl, &[&wire]), run(&ctrl, &cut(&wire, &ctrl.pieces))] {
        assert!(
            out.error.is_none(),
            "valid chunked body refused: {:?}\nwire: {:?}",
            out.error,
            wire.escape_ascii().to_string()
        );
        assert!(matches!(out.events.get(2), Some(Ev::HeadEnd(h)) if h.framing == Framing::Chunked));
        let (got, trailers, ended) = out.body();
        assert!(ended, "no End\nwire: {:?}", wire.escape_ascii().to_string());
        assert!(
            got == expected,
            "body differs\nwire: {:?}",
            wire.escape_ascii().to_string()
        );
        assert!(
            trailers == want_trailers,
            "trailers differ: {trailers:?}\nwire: {:?}",
            wire.escape_ascii().to_string()
        );
        assert!(out.leftover.is_empty(), "bytes left after the body");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        structured(rest);
        return;
    }
    let (mut ctrl, payload) = parse_ctrl(rest);
    ctrl.method = b"GET";
    let mut input = HEAD.to_vec();
    input.extend_from_slice(payload);
    // The head is fed as the first piece of every split.
    ctrl.pieces.insert(0, HEAD.len());
    check_split_independence(&ctrl, &input);
});
