//! Property tests (STYLE.md section 8): the request encoder read back by an
//! independent parser, response models serialized here and decoded back under
//! every way of splitting the input, random and mutated bytes that must never
//! panic the decoder, and the head size limit.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use roundtrip_proto::encode::{BodyEncoder, BodyFraming, RequestHead, encode_head};
use roundtrip_proto::{
    CloseReason, Error, Event, Framing, HeadEnd, Limits, RequestKind, ResponseDecoder, Reuse,
    Version,
};
use std::time::Duration;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Shared generators
// ---------------------------------------------------------------------------

const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Names the encoder or the decoder treat specially; plain fields avoid them.
const SPECIAL: [&[u8]; 7] = [
    b"content-length",
    b"transfer-encoding",
    b"host",
    b"expect",
    b"connection",
    b"keep-alive",
    b"te",
];

fn token(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(select(TCHARS), 1..=max)
}

fn plain_name() -> impl Strategy<Value = Vec<u8>> {
    token(12).prop_filter("special field name", |n| {
        !SPECIAL.iter().any(|s| n.eq_ignore_ascii_case(s))
    })
}

/// A field value: VCHAR and obs-text with inner SP / HTAB, never at the ends.
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => 0x21u8..=0x7e,
        2 => 0x80u8..=0xff,
        2 => select(&b" \t"[..]),
    ];
    vec(byte, 0..24).prop_map(|mut v| {
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        let lead = v.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        v.drain(..lead);
        v
    })
}

/// Sorted cut positions in `0..=len` from proptest-chosen indices.
fn cut_points(cuts: &[Index], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// `data` cut at `points` (which may give empty pieces at the ends).
fn pieces<'a>(data: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &p in points {
        out.push(&data[start..p]);
        start = p;
    }
    out.push(&data[start..]);
    out
}

// ---------------------------------------------------------------------------
// 1. Requests: encode, then read back with httparse and a chunk decoder
// ---------------------------------------------------------------------------

type Pair = (Vec<u8>, Vec<u8>);

#[derive(Clone, Debug)]
struct Request {
    method: Vec<u8>,
    target: Vec<u8>,
    host: Option<Vec<u8>>,
    fields: Vec<Pair>,
    /// 0: no body, 1: Content-Length, 2: chunked.
    framing: u8,
    body: Vec<u8>,
    cuts: Vec<Index>,
    trailers: Vec<Pair>,
    expect_continue: bool,
    close: bool,
}

fn request() -> impl Strategy<Value = Request> {
    let visible = || vec(0x21u8..=0x7e, 1..30);
    (
        (
            token(10),
            visible(),
            option::of(vec(0x21u8..=0x7e, 0..20)),
            vec((plain_name(), field_value()), 0..8),
        ),
        (
            0u8..3,
            vec(any::<u8>(), 0..300),
            vec(any::<Index>(), 0..6),
            vec((plain_name(), field_value()), 0..3),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |((method, target, host, fields), (framing, body, cuts, trailers, expect, close))| {
                Request {
                    method,
                    target,
                    host,
                    fields,
                    framing,
                    body: if framing == 0 { Vec::new() } else { body },
                    cuts,
                    trailers: if framing == 2 { trailers } else { Vec::new() },
                    expect_continue: expect,
                    close,
                }
            },
        )
}

/// Reads a chunked body strictly as the encoder documents it: lowercase hex
/// sizes without leading zeros and no extensions. Returns the chunks and the
/// trailer fields; the whole input must be used.
fn read_chunked(mut rest: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<Pair>), String> {
    fn line<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let at = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("line without CRLF")?;
        let line = &rest[..at];
        *rest = &rest[at + 2..];
        Ok(line)
    }
    let mut chunks = Vec::new();
    loop {
        let size_line = line(&mut rest)?;
        let text = std::str::from_utf8(size_line).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(text, 16).map_err(|e| format!("{text:?}: {e}"))?;
        if format!("{size:x}").as_bytes() != size_line {
            return Err(format!("size line {text:?} is not minimal lowercase hex"));
        }
        if size == 0 {
            break;
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        chunks.push(rest[..size].to_vec());
        rest = &rest[size + 2..];
    }
    let mut trailers = Vec::new();
    loop {
        let field = line(&mut rest)?;
        if field.is_empty() {
            break;
        }
        let colon = field
            .windows(2)
            .position(|w| w == b": ")
            .ok_or("trailer without ': '")?;
        trailers.push((field[..colon].to_vec(), field[colon + 2..].to_vec()));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the body", rest.len()));
    }
    Ok((chunks, trailers))
}

proptest! {
    #![proptest_config(config())]

    /// Whatever valid request is encoded, httparse reads the same method,
    /// target and fields (in order, names as given, then the encoder's own
    /// fields), and the body is framed exactly as declared.
    #[test]
    fn request_round_trips(req in request()) {
        let framing = match req.framing {
            0 => BodyFraming::None,
            1 => BodyFraming::Length(req.body.len() as u64),
            _ => BodyFraming::Chunked,
        };
        let head = RequestHead {
            method: &req.method,
            target: &req.target,
            host: req.host.as_deref(),
            body: framing,
            preset: None,
            expect_continue: req.expect_continue,
            close: req.close,
        };
        let mut wire = Vec::new();
        encode_head(&head, req.fields.iter().map(|(n, v)| (&n[..], &v[..])), &mut wire).unwrap();
        let head_len = wire.len();

        let points = cut_points(&req.cuts, req.body.len());
        let body_pieces = pieces(&req.body, &points);
        let mut body = BodyEncoder::new(framing);
        if framing != BodyFraming::None {
            for piece in &body_pieces {
                let frame = body.frame_data(piece.len()).unwrap();
                wire.extend_from_slice(frame.prefix());
                wire.extend_from_slice(piece);
                wire.extend_from_slice(frame.suffix());
            }
        }
        body.finish(req.trailers.iter().map(|(n, v)| (&n[..], &v[..])), &mut wire).unwrap();
        prop_assert!(body.is_finished());

        // The head, by an independent parser.
        let mut parsed = [httparse::EMPTY_HEADER; 16];
        let mut parser = httparse::Request::new(&mut parsed);
        prop_assert_eq!(parser.parse(&wire), Ok(httparse::Status::Complete(head_len)));
        prop_assert_eq!(parser.method.map(str::as_bytes), Some(&req.method[..]));
        prop_assert_eq!(parser.path.map(str::as_bytes), Some(&req.target[..]));
        prop_assert_eq!(parser.version, Some(1));
        let got: Vec<Pair> = parser
            .headers
            .iter()
            .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
            .collect();
        let mut want: Vec<Pair> = Vec::new();
        if let Some(host) = &req.host {
            want.push((b"Host".to_vec(), host.clone()));
        }
        want.extend(req.fields.iter().cloned());
        match framing {
            BodyFraming::None => {}
            BodyFraming::Length(n) => {
                want.push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
            }
            BodyFraming::Chunked => {
                want.push((b"Transfer-Encoding".to_vec(), b"chunked".to_vec()));
            }
        }
        if req.expect_continue {
            want.push((b"Expect".to_vec(), b"100-continue".to_vec()));
        }
        if req.close {
            want.push((b"Connection".to_vec(), b"close".to_vec()));
        }
        prop_assert_eq!(got, want);

        // The body.
        let rest = &wire[head_len..];
        match framing {
            BodyFraming::None | BodyFraming::Length(_) => prop_assert_eq!(rest, &req.body[..]),
            BodyFraming::Chunked => {
                let (chunks, trailers) = read_chunked(rest).map_err(TestCaseError::fail)?;
                let want: Vec<Vec<u8>> = body_pieces
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| p.to_vec())
                    .collect();
                prop_assert_eq!(chunks, want);
                prop_assert_eq!(trailers, req.trailers.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Responses: a model, a serializer, and the decoder under every split
// ---------------------------------------------------------------------------

/// One field line as sent: whitespace around the value is optional (OWS),
/// and a header (not a trailer) may continue on an obs-fold line.
#[derive(Clone, Debug)]
struct FieldLine {
    name: Vec<u8>,
    value: Vec<u8>,
    pre: &'static str,
    post: &'static str,
    /// Leading whitespace and value of an obs-fold continuation line.
    fold: Option<(&'static str, Vec<u8>)>,
}

impl FieldLine {
    /// The value as decoded: an obs-fold becomes one SP (RFC 9112 section 5.2).
    fn decoded(&self) -> Vec<u8> {
        match &self.fold {
            Some((_, more)) if self.value.is_empty() => more.clone(),
            Some((_, more)) if !more.is_empty() => [&self.value[..], b" ", more].concat(),
            _ => self.value.clone(),
        }
    }
}

const OWS: [&str; 6] = [" ", " ", "", "\t", "  ", " \t"];

fn field_line(name: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = FieldLine> {
    (name, field_value(), select(&OWS[..]), select(&OWS[2..])).prop_map(
        |(name, value, pre, post)| FieldLine {
            name,
            value,
            pre,
            post,
            fold: None,
        },
    )
}

/// A header field line, now and then continued by an obs-fold line.
fn header_line() -> impl Strategy<Value = FieldLine> {
    let fold = option::weighted(0.15, (select(&[" ", "\t", " \t "][..]), field_value()));
    (field_line(plain_name()), fold).prop_map(|(line, fold)| FieldLine { fold, ..line })
}

fn special(name: &str, value: &str) -> FieldLine {
    FieldLine {
        name: name.into(),
        value: value.into(),
        pre: " ",
        post: "",
        fold: None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Length,
    Chunked,
    Close,
}

#[derive(Clone, Debug)]
struct Chunk {
    size: Vec<u8>,
    ext: &'static str,
    data: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Interim {
    code: u16,
    reason: Vec<u8>,
    fields: Vec<FieldLine>,
}

#[derive(Clone, Debug)]
struct Response {
    minor: u8,
    interim: Vec<Interim>,
    code: u16,
    reason: Vec<u8>,
    /// `HTTP/1.1 200\r\n` rather than `HTTP/1.1 200 \r\n` when the reason is empty.
    bare_status: bool,
    /// Field lines in wire order, framing and connection fields included.
    fields: Vec<FieldLine>,
    connection: Option<&'static str>,
    keep_alive: Option<u64>,
    kind: Kind,
    body: Vec<u8>,
    chunks: Vec<Chunk>,
    last_chunk: String,
    trailers: Vec<FieldLine>,
}

const CONNECTION: [&str; 8] = [
    "close",
    "keep-alive",
    "Keep-Alive",
    "CLOSE",
    "keep-alive, close",
    "upgrade",
    "te,\tkeep-alive",
    "x ,close",
];
const CONNECTION_NAMES: [&str; 3] = ["Connection", "connection", "CONNECTION"];
const CL_NAMES: [&str; 3] = ["Content-Length", "content-length", "CONTENT-LENGTH"];
const TE_VALUES: [&str; 4] = ["chunked", "Chunked", "gzip, chunked", "gzip,chunked"];
const EXTS: [&str; 10] = [
    "",
    "",
    "",
    ";a=b",
    ";q=\"x y\"",
    ";name",
    " ;a=b",
    "\t; a = b",
    ";q=\"\\\"esc\\\"\";z",
    ";a=b;c=\"\"",
];

fn reason() -> impl Strategy<Value = Vec<u8>> {
    vec(0x20u8..=0x7e, 0..20)
}

fn interim() -> impl Strategy<Value = Interim> {
    (
        prop_oneof![Just(100u16), 102u16..=199],
        reason(),
        vec(header_line(), 0..3),
    )
        .prop_map(|(code, reason, fields)| Interim {
            code,
            reason,
            fields,
        })
}

fn response() -> impl Strategy<Value = Response> {
    let head = (
        prop_oneof![1 => Just(0u8), 3 => Just(1u8)],
        prop_oneof![3 => Just(Vec::new()), 1 => vec(interim(), 1..3)],
        prop_oneof![8 => 200u16..=999, 1 => select(&[204u16, 304][..])],
        reason(),
        any::<bool>(),
        vec(header_line(), 0..8),
    );
    let framing = (
        select(
            &[
                Kind::Length,
                Kind::Length,
                Kind::Chunked,
                Kind::Chunked,
                Kind::Close,
            ][..],
        ),
        option::weighted(
            0.35,
            (select(&CONNECTION_NAMES[..]), select(&CONNECTION[..])),
        ),
        option::of(0u64..100_000),
        vec(any::<Index>(), 4),
        select(&CL_NAMES[..]),
        select(&TE_VALUES[..]),
    );
    let body = (
        vec(any::<u8>(), 0..200),
        vec(any::<Index>(), 0..6),
        vec(select(&EXTS[..]), 7),
        (any::<bool>(), 0usize..3),
        vec(field_line(token(10)), 0..3),
    );
    (head, framing, body).prop_map(|(head, framing, body)| {
        let (minor, interim, code, reason, bare_status, plain) = head;
        let (kind, connection, keep_alive, at, cl_name, te_value) = framing;
        let (data, cuts, exts, (upper, zeros), trailers) = body;
        // HTTP/1.0 has no transfer codings: a server sending one is refused.
        let kind = if minor == 0 && kind == Kind::Chunked {
            Kind::Length
        } else {
            kind
        };

        let mut fields = plain;
        let mut insert = |line: FieldLine, at: &Index| {
            let i = at.index(fields.len() + 1);
            fields.insert(i, line);
        };
        match kind {
            Kind::Length => insert(special(cl_name, &data.len().to_string()), &at[0]),
            Kind::Chunked => insert(special("Transfer-Encoding", te_value), &at[0]),
            Kind::Close => {}
        }
        if let Some((name, value)) = connection {
            insert(special(name, value), &at[1]);
        }
        if let Some(secs) = keep_alive {
            insert(
                special("Keep-Alive", &format!("timeout={secs}, max=5")),
                &at[2],
            );
        }

        let hex = |n: usize| {
            let digits = if upper {
                format!("{n:X}")
            } else {
                format!("{n:x}")
            };
            format!("{}{digits}", "0".repeat(zeros)).into_bytes()
        };
        let points = cut_points(&cuts, data.len());
        let chunks = pieces(&data, &points)
            .into_iter()
            .filter(|p| !p.is_empty())
            .zip(exts.iter().cycle())
            .map(|(p, ext)| Chunk {
                size: hex(p.len()),
                ext,
                data: p.to_vec(),
            })
            .collect();
        let last_chunk = format!("{}{}", "0".repeat(zeros + 1), exts[6]);
        let trailers = if kind == Kind::Chunked {
            trailers
        } else {
            Vec::new()
        };
        Response {
            minor,
            interim,
            code,
            reason,
            bare_status,
            fields,
            connection: connection.map(|(_, v)| v),
            keep_alive,
            kind,
            body: data,
            chunks,
            last_chunk,
            trailers,
        }
    })
}

impl Response {
    fn no_body(&self) -> bool {
        self.code == 204 || self.code == 304
    }

    fn version(&self) -> Version {
        if self.minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// RFC 9112 section 9.3: persistence as the version and `Connection` say.
    fn persistent(&self) -> Reuse {
        let tokens: Vec<String> = self
            .connection
            .unwrap_or("")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if tokens.iter().any(|t| t == "close") {
            Reuse::No(CloseReason::ServerClose)
        } else if self.minor == 0 && !tokens.iter().any(|t| t == "keep-alive") {
            Reuse::No(CloseReason::Http10)
        } else {
            Reuse::Yes
        }
    }

    /// RFC 9112 section 6.3, for this model.
    fn framing(&self) -> (Framing, Reuse) {
        if self.no_body() {
            return (Framing::NoBody, self.persistent());
        }
        match self.kind {
            Kind::Length => (Framing::Length(self.body.len() as u64), self.persistent()),
            Kind::Chunked => (Framing::Chunked, self.persistent()),
            Kind::Close => (Framing::UntilClose, Reuse::No(CloseReason::ReadToClose)),
        }
    }

    fn reusable(&self) -> bool {
        self.framing().1 == Reuse::Yes
    }

    fn serialize(&self, out: &mut Vec<u8>) {
        let crlf = &mut |out: &mut Vec<u8>| out.extend_from_slice(b"\r\n");
        self.serialize_with(out, crlf, &mut Vec::new());
    }

    /// [`Response::serialize`], with `eol` writing each line end; the offset
    /// in `out` of each status line (where error offsets count from) is
    /// pushed on `starts`.
    fn serialize_with(
        &self,
        out: &mut Vec<u8>,
        eol: &mut dyn FnMut(&mut Vec<u8>),
        starts: &mut Vec<usize>,
    ) {
        let mut status = |out: &mut Vec<u8>,
                          eol: &mut dyn FnMut(&mut Vec<u8>),
                          code: u16,
                          reason: &[u8],
                          bare: bool| {
            starts.push(out.len());
            out.extend_from_slice(format!("HTTP/1.{} {code}", self.minor).as_bytes());
            if !(bare && reason.is_empty()) {
                out.push(b' ');
            }
            out.extend_from_slice(reason);
            eol(out);
        };
        let lines = |out: &mut Vec<u8>, eol: &mut dyn FnMut(&mut Vec<u8>), lines: &[FieldLine]| {
            for f in lines {
                out.extend_from_slice(&f.name);
                out.push(b':');
                out.extend_from_slice(f.pre.as_bytes());
                out.extend_from_slice(&f.value);
                out.extend_from_slice(f.post.as_bytes());
                eol(out);
                if let Some((ws, more)) = &f.fold {
                    out.extend_from_slice(ws.as_bytes());
                    out.extend_from_slice(more);
                    out.extend_from_slice(f.post.as_bytes());
                    eol(out);
                }
            }
            eol(out);
        };
        for i in &self.interim {
            status(out, eol, i.code, &i.reason, false);
            lines(out, eol, &i.fields);
        }
        status(out, eol, self.code, &self.reason, self.bare_status);
        lines(out, eol, &self.fields);
        if self.no_body() {
            return;
        }
        match self.kind {
            Kind::Length | Kind::Close => out.extend_from_slice(&self.body),
            Kind::Chunked => {
                for c in &self.chunks {
                    out.extend_from_slice(&c.size);
                    out.extend_from_slice(c.ext.as_bytes());
                    eol(out);
                    out.extend_from_slice(&c.data);
                    eol(out);
                }
                out.extend_from_slice(self.last_chunk.as_bytes());
                eol(out);
                lines(out, eol, &self.trailers);
            }
        }
    }

    fn expected(&self, out: &mut Vec<Ev>) {
        let fields = |out: &mut Vec<Ev>, lines: &[FieldLine]| {
            out.extend(lines.iter().map(|f| Ev::Field(f.name.clone(), f.decoded())));
        };
        for i in &self.interim {
            out.push(Ev::Status(self.version(), i.code, i.reason.clone()));
            fields(out, &i.fields);
            let reuse = if self.minor == 0 {
                Reuse::No(CloseReason::Http10)
            } else {
                Reuse::Yes
            };
            out.push(Ev::HeadEnd(HeadEnd {
                framing: Framing::NoBody,
                reuse,
                interim: true,
                keep_alive_timeout: None,
            }));
        }
        out.push(Ev::Status(self.version(), self.code, self.reason.clone()));
        fields(out, &self.fields);
        let (framing, reuse) = self.framing();
        out.push(Ev::HeadEnd(HeadEnd {
            framing,
            reuse,
            interim: false,
            keep_alive_timeout: self.keep_alive.map(Duration::from_secs),
        }));
        if !self.no_body() && !self.body.is_empty() {
            out.push(Ev::Data(self.body.clone()));
        }
        if !self.no_body() {
            out.extend(
                self.trailers
                    .iter()
                    .map(|f| Ev::Trailer(f.name.clone(), f.decoded())),
            );
        }
        out.push(Ev::End);
    }
}

/// Responses on one connection: up to and including the first that ends it.
fn responses() -> impl Strategy<Value = Vec<Response>> {
    vec(response(), 1..5).prop_map(|mut all| {
        if let Some(last) = all.iter().position(|r| !r.reusable()) {
            all.truncate(last + 1);
        }
        all
    })
}

fn wire_and_events(all: &[Response]) -> (Vec<u8>, Vec<Ev>) {
    let (mut wire, mut events) = (Vec::new(), Vec::new());
    for r in all {
        r.serialize(&mut wire);
        r.expected(&mut events);
    }
    (wire, events)
}

/// A decoder event with owned bytes, so results of different feeds compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Status(Version, u16, Vec<u8>),
    Field(Vec<u8>, Vec<u8>),
    HeadEnd(HeadEnd),
    Data(Vec<u8>),
    Trailer(Vec<u8>, Vec<u8>),
    End,
    Switched,
}

/// What one feed produced: events (adjacent `Data` merged) and the error that
/// stopped it, if any.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    error: Option<Error>,
}

/// Feeds `input` cut at `points` into a fresh decoder (sharing its heads or
/// not: `share`), then EOF, polling until it wants more. Checks the
/// invariants that hold for any input: no empty `Data`, a bounded number of
/// polls, sticky errors, `Bytes` of a field exactly where heads are shared.
fn feed(input: &[u8], points: &[usize], limits: Limits, kind: RequestKind, share: bool) -> Outcome {
    feed_with(input, points, limits, kind, share, false, false)
}

/// [`feed`], and with `direct`, body bytes are taken straight from the
/// pieces, not through the buffer, wherever the decoder allows it
/// (`direct_body_room`), as a reader of a body into its own slice does
/// (in pieces of odd length, the rest of the piece goes into the buffer
/// in the same step, as a scatter read puts it there);
/// with `whole_heads`, a head's fields are taken at once after its status
/// line (`take_fields`), not polled one by one.
fn feed_with(
    input: &[u8],
    points: &[usize],
    limits: Limits,
    kind: RequestKind,
    share: bool,
    direct: bool,
    whole_heads: bool,
) -> Outcome {
    let mut dec = ResponseDecoder::new(limits);
    dec.set_request_kind(kind);
    dec.share_heads(share);
    let mut buf = BytesMut::new();
    let pieces = pieces(input, points);
    // Every event but `End`/`HeadEnd`/`Switched` needs at least one byte, and
    // those come at most once per head: a livelock exceeds this.
    let mut budget = 3 * input.len() + pieces.len() + 16;
    let mut events: Vec<Ev> = Vec::new();
    let mut drain = |dec: &mut ResponseDecoder,
                     buf: &mut BytesMut,
                     events: &mut Vec<Ev>|
     -> Result<(), Error> {
        loop {
            budget = budget
                .checked_sub(1)
                .expect("decoder livelock: poll budget exhausted");
            let awaits = dec.awaits_input(buf);
            let polled = dec.poll_event(buf);
            assert!(
                !awaits || matches!(polled, Ok(None)),
                "awaits_input, but the poll gave {polled:?}"
            );
            let Some(event) = polled? else {
                return Ok(());
            };
            let ev = match event {
                Event::Status(s) => {
                    assert_eq!(
                        s.is_interim(),
                        (100..200).contains(&s.code) && s.code != 101
                    );
                    Ev::Status(s.version, s.code, s.reason.to_vec())
                }
                Event::Field(f) => {
                    assert!(!whole_heads, "a field polled after take_fields");
                    field_event(&f, share)
                }
                Event::HeadEnd(h) => Ev::HeadEnd(h),
                Event::Data(d) => {
                    assert!(!d.is_empty(), "empty Data event");
                    if let Some(Ev::Data(prev)) = events.last_mut() {
                        prev.extend_from_slice(&d);
                        continue;
                    }
                    Ev::Data(d.to_vec())
                }
                Event::Trailer(f) => {
                    assert_eq!(f.value_bytes().as_deref(), Some(f.value()));
                    Ev::Trailer(f.name().to_vec(), f.value().to_vec())
                }
                Event::End => Ev::End,
                Event::Switched => Ev::Switched,
            };
            let status = matches!(ev, Ev::Status(..));
            events.push(ev);
            if whole_heads && status {
                let fields = dec.take_fields(buf);
                let count = fields.len();
                events.extend(fields.map(|f| field_event(&f, share)));
                // Taken: none is left to take or to poll.
                assert_eq!(dec.take_fields(buf).len(), 0, "after {count}");
            }
        }
    };
    let mut result = Ok(());
    'pieces: for piece in pieces {
        let mut rest = piece;
        while !rest.is_empty() {
            let room = dec.direct_body_room(&buf).filter(|_| direct);
            let Some(room) = room else {
                buf.extend_from_slice(rest);
                result = drain(&mut dec, &mut buf, &mut events);
                if result.is_err() {
                    break 'pieces;
                }
                break;
            };
            let n = (rest.len() as u64).min(room) as usize;
            // A scatter read: what follows the room lands in the buffer
            // in the same read (for pieces split after an odd byte).
            let scatter = rest.len() > n && piece.len() % 2 == 1;
            let appended = if scatter { rest.len() - n } else { 0 };
            buf.extend_from_slice(&rest[n..n + appended]);
            dec.take_body_direct(&buf, n as u64, appended)
                .expect("within the room");
            match events.last_mut() {
                Some(Ev::Data(prev)) => prev.extend_from_slice(&rest[..n]),
                _ => events.push(Ev::Data(rest[..n].to_vec())),
            }
            rest = &rest[n + appended..];
            result = drain(&mut dec, &mut buf, &mut events);
            if result.is_err() {
                break 'pieces;
            }
        }
    }
    if result.is_ok() {
        dec.handle_eof();
        result = drain(&mut dec, &mut buf, &mut events);
    }
    let error = result.err();
    if let Some(e) = &error {
        // Sticky: asking again, with more bytes or after EOF, gives the same.
        assert_eq!(dec.poll_event(&mut buf).as_ref(), Err(e));
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        dec.handle_eof();
        assert_eq!(dec.poll_event(&mut buf).as_ref(), Err(e));
    }
    Outcome { events, error }
}

/// A field as an event, checking that its bytes are shared exactly when
/// heads are.
fn field_event(f: &roundtrip_proto::Field<'_>, share: bool) -> Ev {
    match (f.name_bytes(), f.value_bytes()) {
        (Some(name), Some(value)) if share => {
            assert_eq!((&name[..], &value[..]), (f.name(), f.value()))
        }
        (None, None) if !share => {}
        other => panic!("share_heads({share}) but field bytes {other:?}"),
    }
    Ev::Field(f.name().to_vec(), f.value().to_vec())
}

/// Feeds whole, at `cuts`, and byte by byte, each with and without shared
/// heads, with heads' fields polled or taken at once; all must agree.
fn feed_all_ways(input: &[u8], cuts: &[Index], limits: Limits, kind: RequestKind) -> Outcome {
    let whole = feed(input, &[], limits, kind, false);
    let points = cut_points(cuts, input.len());
    let every: Vec<usize> = (1..input.len()).collect();
    for share in [false, true] {
        if share {
            let shared = feed(input, &[], limits, kind, true);
            assert_eq!(shared, whole, "whole with shared heads differs");
        }
        let split = feed(input, &points, limits, kind, share);
        assert_eq!(
            split, whole,
            "split at {points:?} (share {share}) differs from whole"
        );
        let bytewise = feed(input, &every, limits, kind, share);
        assert_eq!(
            bytewise, whole,
            "byte by byte (share {share}) differs from whole"
        );
    }
    // Body bytes taken past the buffer wherever the decoder allows; heads'
    // fields taken at once.
    for points in [&[][..], &points, &every] {
        let direct = feed_with(input, points, limits, kind, true, true, false);
        assert_eq!(direct, whole, "direct body reads, split at {points:?}");
        for share in [false, true] {
            let taken = feed_with(input, points, limits, kind, share, false, true);
            assert_eq!(taken, whole, "fields taken at once, split at {points:?}");
        }
    }
    whole
}

proptest! {
    #![proptest_config(config())]

    /// A sequence of responses (interim 1xx, reason, fields with OWS and
    /// obs-text, Content-Length / chunked with extensions and trailers /
    /// close-delimited) decodes back to exactly the model, keep-alive verdict
    /// included, however the bytes are split.
    #[test]
    fn responses_round_trip(all in responses(), cuts in vec(any::<Index>(), 0..12)) {
        let (wire, expected) = wire_and_events(&all);
        let got = feed_all_ways(&wire, &cuts, Limits::default(), RequestKind::Other);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.events, expected);
    }
}

// ---------------------------------------------------------------------------
// 3. Random and mutated bytes: no panic, bounded, sticky, split-independent
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), select(&b"\r\n \t:;\"\\0aF"[..]),];
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match *m {
            Mutation::Flip(ref i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Insert(ref i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, b);
            }
            Mutation::Delete(ref i) if !bytes.is_empty() => {
                bytes.remove(i.index(bytes.len()));
            }
            _ => {}
        }
    }
    bytes
}

fn small_limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        any::<bool>().prop_map(|lf| Limits::default().allow_bare_lf(lf)),
        (
            1usize..300,
            0usize..8,
            0usize..16,
            0usize..64,
            0usize..3,
            any::<bool>()
        )
            .prop_map(|(head, fields, ext, trailers, interim, lf)| {
                Limits::default()
                    .max_head_bytes(head)
                    .max_fields(fields)
                    .max_chunk_ext_bytes(ext)
                    .max_trailer_bytes(trailers)
                    .max_interim_responses(interim)
                    .allow_bare_lf(lf)
            }),
    ]
}

fn request_kind() -> impl Strategy<Value = RequestKind> {
    prop_oneof![
        4 => Just(RequestKind::Other),
        1 => Just(RequestKind::Head),
        1 => Just(RequestKind::Connect),
    ]
}

const STATUS_LINES: [&[u8]; 6] = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.1 101 \r\n",
    b"HTTP/1.1 204\r\n",
    b"",
];

/// Bytes that look enough like HTTP to get past the status line often.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let status = select(&STATUS_LINES[..]);
    let atom = prop_oneof![
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Transfer-Encoding: gzip\r\n".to_vec()),
        Just(b"Content-Length: 3\r\n".to_vec()),
        Just(b"Content-Length: 0\r\n\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b"Keep-Alive: timeout=5\r\n".to_vec()),
        Just(b"X: \x80\xff\t.\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"5;a=\"b\"\r\nhello\r\n".to_vec()),
        Just(b"0\r\nX: y\r\n\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        vec(any::<u8>(), 0..8),
        vec(select(&b"\r\n :;=\"\\\t0f"[..]), 0..8),
    ];
    (status, vec(atom, 0..24))
        .prop_map(|(status, atoms)| [status.to_vec(), atoms.concat()].concat())
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes: no panic, no livelock, sticky errors, and whole,
    /// split and byte-by-byte feeding agree (`feed_all_ways` asserts it).
    #[test]
    fn random_bytes_never_panic(
        input in prop_oneof![vec(any::<u8>(), 0..300), http_ish()],
        cuts in vec(any::<Index>(), 0..12),
        limits in small_limits(),
        kind in request_kind(),
    ) {
        feed_all_ways(&input, &cuts, limits, kind);
    }

    /// Valid responses with bytes flipped, inserted or deleted: the same.
    #[test]
    fn mutated_responses_never_panic(
        all in responses(),
        mutations in vec(mutation(), 1..5),
        cuts in vec(any::<Index>(), 0..12),
        limits in small_limits(),
        kind in request_kind(),
    ) {
        let (wire, _) = wire_and_events(&all);
        feed_all_ways(&mutate(wire, &mutations), &cuts, limits, kind);
    }
}

// ---------------------------------------------------------------------------
// 4. Limits: a head longer than max_head_bytes is refused, never more
// ---------------------------------------------------------------------------

/// A valid head (status line, `fields`, a filler field, blank line) of
/// exactly `len` bytes, if the filler fits.
fn head_of_len(fields: &[FieldLine], len: usize) -> Option<Vec<u8>> {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for f in fields {
        head.extend_from_slice(&f.name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(&f.value);
        head.extend_from_slice(b"\r\n");
    }
    let fill = len.checked_sub(head.len() + b"X-Fill:\r\n\r\n".len())?;
    head.extend_from_slice(b"X-Fill:");
    head.resize(head.len() + fill, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(head.len(), len);
    Some(head)
}

proptest! {
    #![proptest_config(config())]

    /// With small random limits, a valid head of exactly `max_head_bytes` is
    /// accepted and one a little longer fails with `HeadTooLarge` and no
    /// event, in every split.
    #[test]
    fn head_over_limit_is_head_too_large(
        fields in vec(field_line(plain_name()), 0..12),
        slack in 0usize..64,
        over in 1usize..64,
        body in vec(any::<u8>(), 0..16),
        others in (0usize..16, 0usize..64, 0usize..3),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        // Smallest possible length: status line, fields, empty filler, CRLF.
        let min = 17 + fields.iter().map(|f| f.name.len() + f.value.len() + 4).sum::<usize>() + 11;
        let max = min + slack;
        let limits = Limits::default()
            .max_head_bytes(max)
            .max_fields(fields.len() + 1)
            .max_chunk_ext_bytes(others.0)
            .max_trailer_bytes(others.1)
            .max_interim_responses(others.2);

        let mut exact = head_of_len(&fields, max).unwrap();
        exact.extend_from_slice(&body);
        let got = feed_all_ways(&exact, &cuts, limits, RequestKind::Other);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.events.len(), fields.len() + 3 + usize::from(!body.is_empty()) + 1);

        let mut long = head_of_len(&fields, max + over).unwrap();
        long.extend_from_slice(&body);
        let got = feed_all_ways(&long, &cuts, limits, RequestKind::Other);
        prop_assert_eq!(got.events, Vec::<Ev>::new());
        prop_assert_eq!(got.error, Some(Error::HeadTooLarge { limit: max }));
    }
}

// ---------------------------------------------------------------------------
// 5. Bare LF line ends: accepted with `Limits::allow_bare_lf`, else refused
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Responses with some line ends a bare LF (`lfs`, one flag per line end,
    /// CRLF past its end): with `allow_bare_lf` they decode to exactly the
    /// model in every split; without it, the decoder stops with
    /// `BareLineFeed` at the first bare LF, having reported what came before.
    #[test]
    fn bare_lf_line_ends(
        all in responses(),
        lfs in vec(any::<bool>(), 0..48),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let (mut wire, mut expected, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        let mut starts = Vec::new();
        let mut line = 0;
        let mut eol = |out: &mut Vec<u8>| {
            if lfs.get(line).copied().unwrap_or(false) {
                bare.push(out.len());
                out.push(b'\n');
            } else {
                out.extend_from_slice(b"\r\n");
            }
            line += 1;
        };
        for r in &all {
            r.serialize_with(&mut wire, &mut eol, &mut starts);
            r.expected(&mut expected);
        }
        let lenient = Limits::default().allow_bare_lf(true);
        let got = feed_all_ways(&wire, &cuts, lenient, RequestKind::Other);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(&got.events, &expected);

        let got = feed_all_ways(&wire, &cuts, Limits::default(), RequestKind::Other);
        match bare.first() {
            None => {
                prop_assert_eq!(got.error, None);
                prop_assert_eq!(&got.events, &expected);
            }
            Some(&at) => {
                // Error offsets count from the start of the message.
                let start = starts.iter().rev().find(|&&s| s <= at).copied().unwrap_or(0);
                let offset = at - start;
                prop_assert_eq!(got.error, Some(Error::BareLineFeed { offset }));
                prop_assert!(is_prefix(&got.events, &expected), "{:?}", got.events);
            }
        }
    }
}

/// True when `events` (adjacent `Data` merged) are what `all` starts with,
/// the last `Data` of `events` possibly cut short.
fn is_prefix(events: &[Ev], all: &[Ev]) -> bool {
    match events.split_last() {
        None => true,
        Some((Ev::Data(last), rest)) => {
            all.starts_with(rest)
                && matches!(all.get(rest.len()), Some(Ev::Data(d)) if d.starts_with(last))
        }
        Some(_) => all.starts_with(events),
    }
}

/// A chunked response with a field, chunk extensions and a trailer.
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b \r\nX-E:\r\n\r\n\
    5;e=1\r\nhello\r\n3;q=\"a b\"\r\nabc\r\n1\r\n\n\r\n0\r\nT: v\r\n\r\n";

/// `CHUNKED`'s line ends, one per construct: (what, offset of its CR).
fn chunked_line_ends() -> Vec<(&'static str, usize)> {
    let find = |from: usize| {
        let at = from
            + CHUNKED[from..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap();
        (at, at + 2)
    };
    let names = [
        "status line",
        "field line",
        "field line, trailing whitespace",
        "field line, empty value",
        "blank line ending the head",
        "chunk-size line with a token extension",
        "chunk data end",
        "chunk-size line with a quoted extension",
        "chunk data end",
        "chunk-size line",
        "chunk data end after data ending in LF",
        "last-chunk line",
        "trailer field line",
        "blank line ending the trailers",
    ];
    let mut from = 0;
    let mut out = Vec::new();
    for name in names {
        // The chunk "1" carries a lone LF as its data: skip over it.
        if name == "chunk data end after data ending in LF" {
            from += 1;
        }
        let (cr, next) = find(from);
        out.push((name, cr));
        from = next;
    }
    assert_eq!(from, CHUNKED.len());
    out
}

/// `input` with the CR at each of `crs` removed; the offsets of the bare
/// LFs that leaves, in order.
fn drop_crs(input: &[u8], crs: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let (mut out, mut lfs) = (Vec::new(), Vec::new());
    for (i, &b) in input.iter().enumerate() {
        if crs.contains(&i) {
            lfs.push(out.len());
        } else {
            out.push(b);
        }
    }
    (out, lfs)
}

/// Each construct alone, every pair, and all at once with a bare LF: the
/// same events as with CRLF when allowed, `BareLineFeed` at the first one
/// (and the events before it) when not; in every split.
#[test]
fn bare_lf_each_construct_pairs_and_all() {
    let ends = chunked_line_ends();
    let crlf = feed_all_ways(CHUNKED, &[], Limits::default(), RequestKind::Other);
    assert_eq!(crlf.error, None);
    assert_eq!(crlf.events.last(), Some(&Ev::End));
    let lenient = Limits::default().allow_bare_lf(true);
    assert_eq!(
        feed_all_ways(CHUNKED, &[], lenient, RequestKind::Other),
        crlf
    );

    let mut sets: Vec<Vec<usize>> = Vec::new();
    for (i, a) in ends.iter().enumerate() {
        sets.push(vec![a.1]);
        for b in &ends[i + 1..] {
            sets.push(vec![a.1, b.1]);
        }
    }
    sets.push(ends.iter().map(|e| e.1).collect());
    for crs in sets {
        let what: Vec<_> = ends
            .iter()
            .filter(|e| crs.contains(&e.1))
            .map(|e| e.0)
            .collect();
        let (input, lfs) = drop_crs(CHUNKED, &crs);
        let got = feed_all_ways(&input, &[], lenient, RequestKind::Other);
        assert_eq!(got, crlf, "allowed: {what:?}");
        let got = feed_all_ways(&input, &[], Limits::default(), RequestKind::Other);
        assert_eq!(
            got.error,
            Some(Error::BareLineFeed { offset: lfs[0] }),
            "refused: {what:?}"
        );
        assert!(is_prefix(&got.events, &crlf.events), "refused: {what:?}");
    }
}

/// The status line without a reason, and a Content-Length body, with bare
/// LFs; an obs-fold continued after a bare LF.
#[test]
fn bare_lf_status_without_reason_and_fold() {
    let lenient = Limits::default().allow_bare_lf(true);
    let cases: [(&[u8], &[u8]); 3] = [
        (b"HTTP/1.1 204\r\nX: y\r\n\r\n", b"HTTP/1.1 204\nX: y\n\n"),
        (
            b"HTTP/1.0 200 \r\nContent-Length: 2\r\n\r\nhi",
            b"HTTP/1.0 200 \nContent-Length: 2\r\n\nhi",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\nX: a\n  b\nContent-Length: 0\n\n",
        ),
    ];
    for (crlf, lf) in cases {
        let want = feed_all_ways(crlf, &[], Limits::default(), RequestKind::Other);
        assert_eq!(want.error, None);
        assert_eq!(feed_all_ways(lf, &[], lenient, RequestKind::Other), want);
        let first = lf.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(
            feed_all_ways(lf, &[], Limits::default(), RequestKind::Other).error,
            Some(Error::BareLineFeed { offset: first })
        );
    }
}

/// A bare CR (not followed by LF) stays an error with `allow_bare_lf`: the
/// same error as without it, in every split.
#[test]
fn bare_cr_is_refused_even_with_bare_lf_allowed() {
    let lenient = Limits::default().allow_bare_lf(true);
    let ends = chunked_line_ends();
    for &(what, cr) in &ends {
        for follow in [b'X', b'\r', b' '] {
            // The CR's LF replaced by another byte.
            let mut input = CHUNKED.to_vec();
            input[cr + 1] = follow;
            let strict = feed_all_ways(&input, &[], Limits::default(), RequestKind::Other);
            let got = feed_all_ways(&input, &[], lenient, RequestKind::Other);
            assert_eq!(got, strict, "{what} {follow:#x}");
            assert!(
                matches!(got.error, Some(Error::BareCarriageReturn { .. })),
                "{what} {follow:#x}: {got:?}"
            );
        }
        // CR CR LF: the first CR is bare.
        let mut input = CHUNKED.to_vec();
        input.insert(cr, b'\r');
        let strict = feed_all_ways(&input, &[], Limits::default(), RequestKind::Other);
        let got = feed_all_ways(&input, &[], lenient, RequestKind::Other);
        assert_eq!(got, strict, "{what} CR CR LF");
        assert!(
            matches!(got.error, Some(Error::BareCarriageReturn { offset }) if offset == cr),
            "{what} CR CR LF: {got:?}"
        );
    }
}
