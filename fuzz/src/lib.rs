//! Shared harness for the fuzz targets: the control header that says how to
//! feed the bytes, a decoder driver that checks the event grammar as it goes,
//! and the normalised outcome compared across splits.
//!
//! # The control header (targets `decode` and `chunked` raw mode)
//!
//! ```text
//! byte 0   bits 0-1 method: 0 GET, 1 HEAD, 2 CONNECT, 3 POST
//!          bit 2    EOF after the last byte
//!          bit 3    small limits from bytes 1-4 (else the defaults)
//!          bits 4-7 max_interim_responses when bit 3 is set
//! byte 1   max_head_bytes      = 1 + 4 * b
//! byte 2   max_fields          = b % 64
//! byte 3   max_chunk_ext_bytes = b
//! byte 4   max_trailer_bytes   = 2 * b
//! byte 5   n: number of explicit pieces, then n little-endian u16 piece
//!          lengths (clamped to what is left); the rest is fed as one piece
//! payload  everything after
//! ```
//!
//! A missing header byte reads as 0, so `[0; 6] ++ bytes` is "GET, no EOF,
//! default limits, fed whole": what `seed.py` writes.

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Framing, HeadEnd, Limits, ResponseDecoder, Reuse, Version};

/// Open findings to tolerate, from `ROUNDTRIP_FUZZ_ALLOW` (comma-separated
/// ids, see FUZZING.md "Findings"): lets a campaign look past a known bug
/// until proto fixes it. Unset (the default, and in `run.sh`) = strict.
pub fn allowed(id: &str) -> bool {
    static ALLOW: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ALLOW
        .get_or_init(|| {
            std::env::var("ROUNDTRIP_FUZZ_ALLOW")
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default()
        })
        .iter()
        .any(|a| a == id)
}

/// The methods the control header can select.
pub const METHODS: [&[u8]; 4] = [b"GET", b"HEAD", b"CONNECT", b"POST"];

/// Length of the fixed part of the control header.
pub const HEADER_LEN: usize = 6;

/// How to feed a payload to the decoder.
#[derive(Clone, Debug)]
pub struct Ctrl {
    pub method: &'static [u8],
    pub eof: bool,
    pub limits: Limits,
    /// Explicit piece lengths; what is left after them is one more piece.
    pub pieces: Vec<usize>,
}

/// Splits `data` into the control header and the payload.
pub fn parse_ctrl(data: &[u8]) -> (Ctrl, &[u8]) {
    let at = |i: usize| data.get(i).copied().unwrap_or(0);
    let flags = at(0);
    let limits = if flags & 8 != 0 {
        Limits::default()
            .max_head_bytes(1 + 4 * at(1) as usize)
            .max_fields(at(2) as usize % 64)
            .max_chunk_ext_bytes(at(3) as usize)
            .max_trailer_bytes(2 * at(4) as usize)
            .max_interim_responses((flags >> 4) as usize)
    } else {
        Limits::default()
    };
    let n = at(5) as usize;
    let mut rest = data.get(HEADER_LEN..).unwrap_or(&[]);
    let mut pieces = Vec::with_capacity(n);
    for _ in 0..n {
        match rest {
            [a, b, tail @ ..] => {
                pieces.push(u16::from_le_bytes([*a, *b]) as usize);
                rest = tail;
            }
            _ => {
                rest = &[];
                break;
            }
        }
    }
    let ctrl = Ctrl {
        method: METHODS[(flags & 3) as usize],
        eof: flags & 4 != 0,
        limits,
        pieces,
    };
    (ctrl, rest)
}

/// Cuts `payload` by the explicit piece lengths; the rest is the last piece.
pub fn cut<'a>(payload: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(lens.len() + 1);
    let mut rest = payload;
    for &n in lens {
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

/// One event with owned bytes; consecutive `Data` are merged, so outcomes of
/// different splits compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Status(Version, u16, Vec<u8>),
    Field(Vec<u8>, Vec<u8>),
    HeadEnd(HeadEnd),
    Data(Vec<u8>),
    Trailer(Vec<u8>, Vec<u8>),
    End,
    Switched,
}

/// What one way of feeding produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub error: Option<Error>,
    /// Bytes left in the read buffer (compared only without an error).
    pub leftover: Vec<u8>,
}

impl Outcome {
    /// The body bytes and trailers of the first response, and whether it ended.
    pub fn body(&self) -> (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, bool) {
        let (mut body, mut trailers, mut ended) = (Vec::new(), Vec::new(), false);
        for ev in &self.events {
            match ev {
                Ev::Data(d) => body.extend_from_slice(d),
                Ev::Trailer(n, v) => trailers.push((n.clone(), v.clone())),
                Ev::End => {
                    ended = true;
                    break;
                }
                _ => {}
            }
        }
        (body, trailers, ended)
    }
}

/// Where the response grammar is; see [`Checker::event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Expecting a status line; `interim` 1xx heads so far; `finals` complete.
    Head { interim: usize },
    /// Inside a head.
    Fields {
        code: u16,
        fields: usize,
        interim: usize,
    },
    /// After the head of a 101 / CONNECT 2xx: `Switched` must come.
    Switch,
    /// Reading a body.
    Body {
        framing: Framing,
        reuse: Reuse,
        data: u64,
        trailers: usize,
    },
    /// Nothing more may be reported (closing, closed, switched).
    Done,
}

/// Checks that the events form valid responses, as they are reported.
#[derive(Debug)]
pub struct Checker {
    limits: Limits,
    method: &'static [u8],
    st: St,
    finals: usize,
    /// A switch ended HTTP on the connection: what follows is another
    /// protocol's.
    switched: bool,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field as the decoder must report it: a token name, a value of
/// field-content bytes with no surrounding SP/HTAB.
pub fn check_field(what: &str, name: &[u8], value: &[u8]) {
    assert!(
        !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
        "{what}: bad name {:?}",
        name.escape_ascii().to_string()
    );
    assert!(
        value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
        "{what}: control byte in value {:?}",
        value.escape_ascii().to_string()
    );
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    assert!(
        !value.first().is_some_and(ws) && !value.last().is_some_and(ws),
        "{what}: untrimmed value {:?}",
        value.escape_ascii().to_string()
    );
}

impl Checker {
    pub fn new(limits: Limits, method: &'static [u8]) -> Self {
        Checker {
            limits,
            method,
            st: St::Head { interim: 0 },
            finals: 0,
            switched: false,
        }
    }

    /// Checks one event against the grammar
    /// `(Status Field* HeadEnd[interim])* Status Field* HeadEnd (Switched | Data* Trailer* End)`.
    pub fn event(&mut self, ev: &Event) {
        let lim = self.limits;
        self.st = match (self.st, ev) {
            (St::Head { interim }, Event::Status(s)) => {
                assert!((100..=999).contains(&s.code), "status code {}", s.code);
                assert!(
                    s.reason
                        .iter()
                        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
                    "control byte in reason"
                );
                St::Fields {
                    code: s.code,
                    fields: 0,
                    interim,
                }
            }
            (
                St::Fields {
                    code,
                    fields,
                    interim,
                },
                Event::Field(f),
            ) => {
                check_field("header", f.name(), f.value());
                assert!(
                    fields < lim.max_fields,
                    "more than max_fields ({}) fields",
                    lim.max_fields
                );
                St::Fields {
                    code,
                    fields: fields + 1,
                    interim,
                }
            }
            (St::Fields { code, interim, .. }, Event::HeadEnd(h)) => {
                self.head_end(code, interim, h)
            }
            (St::Switch, Event::Switched) => {
                self.switched = true;
                St::Done
            }
            (
                St::Body {
                    framing,
                    reuse,
                    data,
                    trailers: 0,
                },
                Event::Data(d),
            ) => {
                assert!(!d.is_empty(), "empty Data event");
                let data = data + d.len() as u64;
                match framing {
                    Framing::Length(n) => {
                        assert!(data <= n, "{data} body bytes for Content-Length {n}")
                    }
                    Framing::Chunked | Framing::UntilClose => {}
                    other => panic!("Data with framing {other:?}"),
                }
                St::Body {
                    framing,
                    reuse,
                    data,
                    trailers: 0,
                }
            }
            (
                St::Body {
                    framing: Framing::Chunked,
                    reuse,
                    data,
                    trailers,
                },
                Event::Trailer(f),
            ) => {
                check_field("trailer", f.name(), f.value());
                assert!(trailers < lim.max_fields, "more than max_fields trailers");
                St::Body {
                    framing: Framing::Chunked,
                    reuse,
                    data,
                    trailers: trailers + 1,
                }
            }
            (
                St::Body {
                    framing,
                    reuse,
                    data,
                    ..
                },
                Event::End,
            ) => {
                self.finals += 1;
                match framing {
                    Framing::Length(n) => assert_eq!(data, n, "End after {data} of {n} body bytes"),
                    Framing::NoBody => assert_eq!(data, 0),
                    _ => {}
                }
                if framing == Framing::UntilClose || !reuse.is_yes() {
                    St::Done
                } else {
                    St::Head { interim: 0 }
                }
            }
            (st, ev) => panic!("event {ev:?} in state {st:?}"),
        };
    }

    fn head_end(&mut self, code: u16, interim: usize, h: &HeadEnd) -> St {
        let kind = roundtrip_proto::RequestKind::of(self.method);
        let is_interim = (100..200).contains(&code) && code != 101;
        assert_eq!(h.interim, is_interim, "interim flag for {code}");
        // RFC 9110 9.3.6: any 2xx to CONNECT starts the tunnel (204 too).
        let mut switched = code == 101
            || (kind == roundtrip_proto::RequestKind::Connect && (200..300).contains(&code));
        if code == 204 && kind == roundtrip_proto::RequestKind::Connect && allowed("connect-204") {
            switched = h.framing == Framing::Switched;
        }
        assert_eq!(
            h.framing == Framing::Switched,
            switched,
            "Switched framing for {code} to {:?}",
            kind
        );
        if switched {
            assert!(!h.reuse.is_yes(), "switched connection reusable");
            return St::Switch;
        }
        if kind == roundtrip_proto::RequestKind::Head
            || (100..200).contains(&code)
            || code == 204
            || code == 304
        {
            assert_eq!(h.framing, Framing::NoBody, "framing for {code} to {kind:?}");
        } else {
            assert_ne!(h.framing, Framing::NoBody, "NoBody for {code} to {kind:?}");
        }
        if h.framing == Framing::UntilClose {
            assert!(!h.reuse.is_yes(), "read-to-close body but reusable");
        }
        if is_interim {
            assert!(
                interim < self.limits.max_interim_responses,
                "more than max_interim_responses"
            );
            return St::Head {
                interim: interim + 1,
            };
        }
        St::Body {
            framing: h.framing,
            reuse: h.reuse,
            data: 0,
            trailers: 0,
        }
    }

    /// What `ResponseDecoder::remaining_body` must say now.
    pub fn remaining(&self) -> Option<u64> {
        match self.st {
            St::Body {
                framing: Framing::Length(n),
                data,
                ..
            } => Some(n - data),
            St::Body {
                framing: Framing::NoBody,
                ..
            } => Some(0),
            _ => None,
        }
    }

    /// At a clean end of input (no error): with EOF, no response may be cut
    /// short, and no byte may be left over (the start of a next response
    /// the EOF cut is an error), but after a switch to another protocol.
    pub fn finish(&self, eof: bool, leftover: usize) {
        if eof && leftover > 0 && !self.switched && !matches!(self.st, St::Switch) {
            panic!("EOF accepted with {leftover} bytes left in state {:?}", self.st);
        }
        if eof {
            match self.st {
                St::Done => {}
                St::Head { interim: 0 } if self.finals > 0 => {}
                st => panic!(
                    "EOF accepted in state {st:?} after {} responses",
                    self.finals
                ),
            }
        }
    }
}

fn own(ev: &Event) -> Ev {
    match ev {
        Event::Status(s) => Ev::Status(s.version, s.code, s.reason.to_vec()),
        Event::Field(f) => Ev::Field(f.name().to_vec(), f.value().to_vec()),
        Event::HeadEnd(h) => Ev::HeadEnd(*h),
        Event::Data(d) => Ev::Data(d.to_vec()),
        Event::Trailer(f) => Ev::Trailer(f.name().to_vec(), f.value().to_vec()),
        Event::End => Ev::End,
        Event::Switched => Ev::Switched,
    }
}

/// Feeds `pieces` one after the other (polling to `Ok(None)` after each),
/// then the EOF if `ctrl.eof`; checks the grammar, the step bound and that
/// errors are sticky.
pub fn run(ctrl: &Ctrl, pieces: &[&[u8]]) -> Outcome {
    run_sharing(ctrl, pieces, false)
}

/// [`run`] with the decoder sharing its heads or not (`share`): the events
/// must not depend on it, and with it every field also comes as `Bytes`
/// equal to its slice.
pub fn run_sharing(ctrl: &Ctrl, pieces: &[&[u8]], share: bool) -> Outcome {
    let mut dec = ResponseDecoder::new(ctrl.limits);
    dec.set_request_method(ctrl.method);
    dec.share_heads(share);
    let mut checker = Checker::new(ctrl.limits, ctrl.method);
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let bound = 2 * total + 16;
    let mut buf = BytesMut::new();
    let mut events: Vec<Ev> = Vec::new();
    let mut steps = 0usize;
    let mut head_bytes = 0usize;
    let mut error = None;
    let n = pieces.len();
    'feed: for i in 0..=n {
        if i < n {
            buf.extend_from_slice(pieces[i]);
        } else if ctrl.eof {
            dec.handle_eof();
        } else {
            break;
        }
        loop {
            steps += 1;
            assert!(
                steps <= bound + n + 1,
                "more than {bound} events for {total} bytes: livelock?"
            );
            let before = buf.len();
            // Own the event at once: head events borrow the decoder.
            let polled = match dec.poll_event(&mut buf) {
                Ok(Some(ev)) => {
                    checker.event(&ev);
                    if let Event::Field(f) = &ev {
                        let bytes = f.value_bytes();
                        assert_eq!(
                            bytes.is_some(),
                            share,
                            "value_bytes with share_heads({share})"
                        );
                        assert!(bytes.is_none_or(|b| b == f.value()), "value_bytes differs");
                    }
                    Ok(Some(own(&ev)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            match polled {
                Ok(Some(ev)) => {
                    // Bytes consumed from a Status to its HeadEnd: the head.
                    let used = before - buf.len();
                    match ev {
                        Ev::Status(..) => head_bytes = used,
                        Ev::Field(..) => head_bytes += used,
                        Ev::HeadEnd(_) => {
                            head_bytes += used;
                            assert!(
                                head_bytes <= ctrl.limits.max_head_bytes,
                                "head of {head_bytes} bytes over max_head_bytes"
                            );
                        }
                        _ => {}
                    }
                    assert_eq!(
                        dec.remaining_body(),
                        checker.remaining(),
                        "remaining_body after {ev:?}"
                    );
                    match (events.last_mut(), ev) {
                        (Some(Ev::Data(prev)), Ev::Data(more)) => prev.extend_from_slice(&more),
                        (_, ev) => events.push(ev),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Sticky: the same error again, whatever comes next.
                    assert_eq!(
                        dec.poll_event(&mut buf).as_ref().err(),
                        Some(&e),
                        "error not sticky"
                    );
                    buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
                    dec.handle_eof();
                    assert_eq!(
                        dec.poll_event(&mut buf).as_ref().err(),
                        Some(&e),
                        "error not sticky"
                    );
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if error.is_none() {
        checker.finish(ctrl.eof, buf.len());
        // Once drained, the decoder stays quiet.
        assert!(
            matches!(dec.poll_event(&mut buf), Ok(None)),
            "event after Ok(None) with no new input"
        );
    }
    let leftover = if error.is_none() {
        buf.to_vec()
    } else {
        Vec::new()
    };
    Outcome {
        events,
        error,
        leftover,
    }
}

/// Runs `payload` whole, in the `ctrl` pieces and byte by byte; all three
/// must agree. Returns the whole-feed outcome.
pub fn check_split_independence(ctrl: &Ctrl, payload: &[u8]) -> Outcome {
    let whole = run(ctrl, &[payload]);
    // The split run shares its heads: events must not depend on that either.
    let split = run_sharing(ctrl, &cut(payload, &ctrl.pieces), true);
    assert_outcomes_eq("whole", &whole, "split", &split);
    let bytes: Vec<&[u8]> = payload.chunks(1).collect();
    let bytewise = run(ctrl, &bytes);
    assert_outcomes_eq("whole", &whole, "byte by byte", &bytewise);
    whole
}

/// Panics with both outcomes when they differ.
pub fn assert_outcomes_eq(an: &str, a: &Outcome, bn: &str, b: &Outcome) {
    if a != b {
        panic!("split dependence:\n{an}: {a:#?}\n{bn}: {b:#?}");
    }
}
