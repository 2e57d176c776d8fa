//! The response conformance corpus: loading cases and checking one.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Limits, ResponseDecoder};
use serde_json::Value;

use crate::{Outcome, Response, decode_pieces};

/// What a case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Decodes without error to exactly `responses`.
    Ok,
    /// Must fail (after `responses`, when given).
    Error,
    /// Either; if accepted, `responses` must match.
    Either,
}

/// One conformance case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique id.
    pub id: String,
    /// File it came from.
    pub file: PathBuf,
    /// Request method.
    pub method: String,
    /// Bytes the server sends.
    pub input: Vec<u8>,
    /// EOF after `input`.
    pub closed: bool,
    /// Decoder limits.
    pub limits: Limits,
    /// What must happen.
    pub expect: Expect,
    /// Responses, when given.
    pub responses: Option<Vec<Response>>,
}

/// Decodes a corpus string: each char is one Latin-1 byte.
pub fn latin1(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("char {c:?} above U+00FF")))
        .collect()
}

/// Name and value pairs, as bytes.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn fields(v: Option<&Value>) -> Result<Fields, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or("fields: not an array")?;
    arr.iter()
        .map(|pair| {
            let p = pair
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or("field: not a pair")?;
            let s = |i: usize| p[i].as_str().ok_or("field: not a string").map(String::from);
            Ok((latin1(&s(0)?)?, latin1(&s(1)?)?))
        })
        .collect()
}

/// `v` is an object with no key outside `known` (a misspelt key would
/// otherwise be a check silently not made).
fn object<'a>(
    v: &'a Value,
    what: &str,
    known: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, String> {
    let obj = v.as_object().ok_or(format!("{what}: not an object"))?;
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: unknown field {k:?}")),
        None => Ok(obj),
    }
}

/// The optional field `k` of `obj`, which must have the type `as_t` reads.
fn optional<'a, T>(
    obj: &'a serde_json::Map<String, Value>,
    k: &str,
    as_t: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, String> {
    match obj.get(k) {
        None => Ok(None),
        Some(v) => as_t(v).map(Some).ok_or(format!("{k}: wrong type")),
    }
}

fn response(v: &Value) -> Result<Response, String> {
    const KNOWN: [&str; 7] = [
        "version",
        "status",
        "reason",
        "headers",
        "body",
        "trailers",
        "keep_alive",
    ];
    let obj = object(v, "response", &KNOWN)?;
    let s = |k: &str| optional(obj, k, Value::as_str)?.ok_or(format!("response: no {k}"));
    let status = optional(obj, "status", Value::as_u64)?.ok_or("response: no status")?;
    if !(100..=999).contains(&status) {
        return Err(format!("response: status {status} is not three digits"));
    }
    if obj.get("headers").is_none() {
        return Err("response: no headers".into());
    }
    Ok(Response {
        version: s("version")?.to_string(),
        status: status as u16,
        reason: latin1(s("reason")?)?,
        headers: fields(obj.get("headers"))?,
        body: latin1(s("body")?)?,
        trailers: fields(obj.get("trailers"))?,
        keep_alive: optional(obj, "keep_alive", Value::as_bool)?,
    })
}

fn limits(v: Option<&Value>) -> Result<Limits, String> {
    let mut l = Limits::default();
    let Some(v) = v else {
        return Ok(l);
    };
    let obj = v.as_object().ok_or("limits: not an object")?;
    for (k, n) in obj {
        let n = n.as_u64().ok_or(format!("limit {k}: not a number"))? as usize;
        l = match k.as_str() {
            "max_head_bytes" => l.max_head_bytes(n),
            "max_headers" => l.max_fields(n),
            "max_trailer_bytes" => l.max_trailer_bytes(n),
            "max_chunk_ext_bytes" => l.max_chunk_ext_bytes(n),
            other => return Err(format!("unknown limit {other}")),
        };
    }
    Ok(l)
}

/// Reads every case of one corpus file.
pub fn load_file(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    load_str(&text, path)
}

/// Reads every case of a corpus file's text; `path` names it in errors and
/// in [`Case::file`].
pub fn load_str(text: &str, path: &Path) -> Result<Vec<Case>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    let cases = json
        .as_array()
        .ok_or(format!("{}: not an array", path.display()))?;
    cases
        .iter()
        .map(|c| {
            const KNOWN: [&str; 9] = [
                "id",
                "source",
                "note",
                "method",
                "input",
                "closed",
                "limits",
                "expect",
                "responses",
            ];
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .ok_or("case without id")?
                .to_string();
            let ctx = |e: String| format!("{id}: {e}");
            let obj = object(c, "case", &KNOWN).map_err(ctx)?;
            optional(obj, "source", Value::as_str)
                .and_then(|s| s.ok_or("no source".into()))
                .map_err(ctx)?;
            optional(obj, "note", Value::as_str).map_err(ctx)?;
            let expect = match obj.get("expect").and_then(Value::as_str) {
                Some("ok") => Expect::Ok,
                Some("error") => Expect::Error,
                Some("either") => Expect::Either,
                other => return Err(ctx(format!("bad expect {other:?}"))),
            };
            let responses = match optional(obj, "responses", Value::as_array).map_err(ctx)? {
                Some(rs) => Some(
                    rs.iter()
                        .map(response)
                        .collect::<Result<_, _>>()
                        .map_err(ctx)?,
                ),
                None if expect != Expect::Error => return Err(ctx("no responses".into())),
                None => None,
            };
            let method = optional(obj, "method", Value::as_str).map_err(ctx)?;
            let input = optional(obj, "input", Value::as_str).map_err(ctx)?;
            Ok(Case {
                file: path.to_path_buf(),
                method: method.unwrap_or("GET").to_string(),
                input: latin1(input.ok_or(ctx("no input".into()))?).map_err(ctx)?,
                closed: optional(obj, "closed", Value::as_bool)
                    .map_err(ctx)?
                    .unwrap_or(false),
                limits: limits(obj.get("limits")).map_err(ctx)?,
                expect,
                responses,
                id,
            })
        })
        .collect()
}

/// Every `*.json` file below `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn same_responses(got: &[Response], want: &[Response]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| {
            let mut g = g.clone();
            if w.keep_alive.is_none() {
                g.keep_alive = None;
            }
            g == *w
        })
}

/// What feeding a case one way gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fed {
    /// The responses completed and the error, if any.
    pub outcome: Outcome,
    /// For a `closed` case that ended without an error: the EOF left a
    /// response unfinished (its status seen, its end not) or a head partly
    /// read. Always false for a case that is not `closed`.
    pub unfinished: bool,
}

/// Feeds `pieces` of a case to [`roundtrip_proto::ResponseDecoder`] (then
/// the EOF when the case is `closed`): what [`check`] holds to the corpus.
pub fn feed_decoder(case: &Case, pieces: &[&[u8]]) -> Fed {
    let m = case.method.as_bytes();
    Fed {
        outcome: decode_pieces(pieces.iter().copied(), m, case.limits, case.closed),
        unfinished: case.closed && left_open(pieces, m, case.limits, true),
    }
}

/// Decodes `pieces` (then the EOF, when `eof`) and tells whether the decoder
/// ended without an error while a response was still open: a status without
/// its end, or bytes of a head left undecoded. False after an error or a
/// `Switched` (the bytes after it belong to another protocol).
pub fn left_open(pieces: &[&[u8]], method: &[u8], limits: Limits, eof: bool) -> bool {
    let mut dec = ResponseDecoder::new(limits);
    dec.set_request_method(method);
    let mut buf = BytesMut::new();
    let mut open = false;
    // Ok(true): switched. Bounded: every event consumes input or advances
    // the state.
    let mut drain = |dec: &mut ResponseDecoder, buf: &mut BytesMut| -> Result<bool, Error> {
        for _ in 0..10_000_000 {
            match dec.poll_event(buf)? {
                None => return Ok(false),
                Some(Event::Status(_)) => open = true,
                Some(Event::HeadEnd(end)) if end.interim => open = false,
                Some(Event::End) => open = false,
                Some(Event::Switched) => return Ok(true),
                Some(_) => {}
            }
        }
        panic!("decoder did not settle");
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        if !matches!(drain(&mut dec, &mut buf), Ok(false)) {
            return false;
        }
    }
    if eof {
        dec.handle_eof();
    }
    match drain(&mut dec, &mut buf) {
        // A head in progress stays in `buf` until it is complete.
        Ok(false) => open || !buf.is_empty(),
        Ok(true) | Err(_) => false,
    }
}

/// The `error` cases without `responses` whose error comes after complete
/// responses, and how many (every other such case must fail before its
/// first response): the case's id, the count, and why.
pub const RESPONSES_BEFORE_ERROR: [(&str, usize, &str); 4] = [
    (
        "llhttp/connection/http-1-1-with-keep-alive-disabled-and-204-status",
        1,
        "bytes after a `Connection: close` response",
    ),
    (
        "llhttp/connection/http-1-1-with-keep-alive-disabled-content-length",
        1,
        "bytes after a `Connection: close` response",
    ),
    (
        "curl/test1480",
        1,
        "a `100 Continue`, then bytes that are no status line",
    ),
    (
        "hyper/client/head-ignores-body",
        1,
        "an answer to HEAD, then body bytes that start no response",
    ),
];

/// How many responses the `error` case `id` completes before its error.
fn before_error(id: &str) -> usize {
    RESPONSES_BEFORE_ERROR
        .iter()
        .find(|(case, ..)| *case == id)
        .map_or(0, |(_, n, _)| *n)
}

/// The variant of an error, without its fields (`InvalidVersion`, not
/// `InvalidVersion { offset: 5 }`), for messages.
fn kind(e: &Error) -> String {
    let debug = format!("{e:?}");
    let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
    debug[..end].to_string()
}

/// Checks one case with the real decoder: whole, split at every byte
/// boundary, and byte by byte. Returns why it failed.
pub fn check(case: &Case) -> Result<(), String> {
    check_with(case, feed_decoder)
}

/// Checks one case as [`check`] does, with `feed` in place of the decoder
/// (so a test can show that a wrong decoder's answer is rejected).
///
/// Every way of feeding must give the same responses, the same error
/// variant (its fields, such as an offset, may differ) or none, and the
/// same verdict on an unfinished response; a `closed` case must not end
/// with a response cut short by the EOF unless it is an error.
pub fn check_with(case: &Case, feed: impl Fn(&Case, &[&[u8]]) -> Fed) -> Result<(), String> {
    let input = &case.input[..];
    let whole = feed(case, &[input]);
    let verdict = |f: &Fed| -> Result<(), String> {
        let o = &f.outcome;
        match (case.expect, &o.error, &case.responses) {
            (_, None, _) if f.unfinished => Err(format!(
                "closed: the EOF left a response unfinished without an error (completed: {:?})",
                o.responses
            )),
            (Expect::Ok, Some(e), _) => Err(format!("expected ok, got error: {e}")),
            (Expect::Error, None, _) => Err(format!(
                "expected an error, got {} responses",
                o.responses.len()
            )),
            (Expect::Error, Some(_), Some(want)) if !same_responses(&o.responses, want) => Err(
                format!("responses before the error differ: got {:?}", o.responses),
            ),
            // Stricter than the format (which allows any responses before
            // an error): a decoder that delivers a response and only then
            // fails (say on the second of two differing Content-Lengths)
            // must not pass a case that expects the error first.
            (Expect::Error, Some(_), None) if o.responses.len() != before_error(&case.id) => {
                Err(format!(
                    "{} responses completed before the error, {} expected (the \
                     project's rule: tests/src/conformance.rs, RESPONSES_BEFORE_ERROR)",
                    o.responses.len(),
                    before_error(&case.id)
                ))
            }
            (Expect::Ok | Expect::Either, None, Some(want))
                if !same_responses(&o.responses, want) =>
            {
                Err(format!(
                    "responses differ: got {:?}\nwant {want:?}",
                    o.responses
                ))
            }
            _ => Ok(()),
        }
    };
    verdict(&whole)?;
    let whole_kind = whole.outcome.error.as_ref().map(std::mem::discriminant);
    let consistent = |how: &str, f: Fed| -> Result<(), String> {
        let same_kind = f.outcome.error.as_ref().map(std::mem::discriminant) == whole_kind;
        if f.outcome.responses != whole.outcome.responses
            || !same_kind
            || f.unfinished != whole.unfinished
        {
            let k = |f: &Fed| f.outcome.error.as_ref().map(kind);
            return Err(format!(
                "fed {how}: error {:?}, {f:?}\nbut whole: error {:?}, {whole:?}",
                k(&f),
                k(&whole)
            ));
        }
        Ok(())
    };
    for k in 1..input.len() {
        consistent(
            &format!("split at {k}"),
            feed(case, &[&input[..k], &input[k..]]),
        )?;
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    consistent("byte by byte", feed(case, &bytes))
}

/// The cases in a corpus file's text, counted without the loader: the
/// length of its top-level JSON array.
pub fn count_cases(text: &str) -> Result<usize, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    json.as_array()
        .map(Vec::len)
        .ok_or_else(|| "not a JSON array".to_string())
}

/// What running a set of corpus files gave.
#[derive(Debug, Default)]
pub struct Report {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed, with why.
    pub failed: Vec<(String, String)>,
    /// What is wrong with the run itself: a file that cannot be read or
    /// loaded, a file of which fewer cases were checked than its JSON array
    /// holds, a duplicate id. Any of these fails the run.
    pub problems: Vec<String>,
    /// Cases the files' JSON arrays hold, counted without the loader.
    pub in_files: usize,
}

impl Report {
    /// Cases checked (passed or failed).
    pub fn checked(&self) -> usize {
        self.passed + self.failed.len()
    }
}

/// Loads the cases of each `(file, text)` with `load`, checks each with
/// `check`, and compares, file by file, how many cases were checked with how
/// many its JSON array holds (counted by [`count_cases`], not by `load`).
pub fn run(
    files: &[(PathBuf, String)],
    load: impl Fn(&str, &Path) -> Result<Vec<Case>, String>,
    check: impl Fn(&Case) -> Result<(), String>,
    ids: &mut std::collections::HashSet<String>,
) -> Report {
    let mut report = Report::default();
    for (path, text) in files {
        let want = match count_cases(text) {
            Ok(n) => n,
            Err(e) => {
                report.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        report.in_files += want;
        let cases = match load(text, path) {
            Ok(cases) => cases,
            Err(e) => {
                report.problems.push(format!("corpus error: {e}"));
                continue;
            }
        };
        let mut checked = 0;
        for case in cases {
            if !ids.insert(case.id.clone()) {
                report
                    .problems
                    .push(format!("duplicate case id {}", case.id));
            }
            checked += 1;
            match check(&case) {
                Ok(()) => report.passed += 1,
                Err(why) => report.failed.push((case.id.clone(), why)),
            }
        }
        if checked != want {
            report.problems.push(format!(
                "{}: {checked} cases checked, but its JSON array holds {want}",
                path.display()
            ));
        }
    }
    report
}

/// Reads each file's text.
pub fn read_all(files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, String> {
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|t| (p.clone(), t))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// The repository's copy of the shared corpus, `tests/conformance/shared`:
/// what the runner reads, so that a clone without `../shared` runs it all.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/shared")
}

/// The project's own cases: the `*.json` files directly in
/// `tests/conformance` (not below it: `shared/` is [`corpus_dir`]).
pub fn local_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Where the shared corpus comes from: `../shared/conformance/responses`
/// beside the repository root (absent in a plain clone).
pub fn upstream_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/responses")
}

/// Compares two corpus folders: the same `*.json` files (by path below
/// each) with the same bytes. Returns what differs, naming the file.
pub fn same_corpus(upstream: &Path, copy: &Path) -> Result<(), String> {
    let rel = |dir: &Path| -> Vec<PathBuf> {
        json_files(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).expect("below dir").to_path_buf())
            .collect()
    };
    let (up, cp) = (rel(upstream), rel(copy));
    let mut diffs = Vec::new();
    for f in &up {
        if !cp.contains(f) {
            diffs.push(format!(
                "{} is missing from {}",
                f.display(),
                copy.display()
            ));
        }
    }
    for f in &cp {
        if !up.contains(f) {
            diffs.push(format!("{} is not in {}", f.display(), upstream.display()));
        }
    }
    for f in up.iter().filter(|f| cp.contains(f)) {
        let read = |d: &Path| std::fs::read(d.join(f)).map_err(|e| format!("{}: {e}", f.display()));
        if read(upstream)? != read(copy)? {
            diffs.push(format!(
                "{} differs between {} and {}",
                f.display(),
                upstream.display(),
                copy.display()
            ));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}
