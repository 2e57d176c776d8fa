//! The response conformance corpus: loading cases and checking one.

use std::path::{Path, PathBuf};

use roundtrip_proto::Limits;
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

fn response(v: &Value) -> Result<Response, String> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or(format!("response: no {k}"))
    };
    Ok(Response {
        version: s("version")?.to_string(),
        status: v
            .get("status")
            .and_then(Value::as_u64)
            .ok_or("response: no status")? as u16,
        reason: latin1(s("reason")?)?,
        headers: fields(v.get("headers"))?,
        body: latin1(s("body")?)?,
        trailers: fields(v.get("trailers"))?,
        keep_alive: v.get("keep_alive").and_then(Value::as_bool),
    })
}

fn limits(v: Option<&Value>) -> Result<Limits, String> {
    let mut l = Limits::default();
    let Some(obj) = v.and_then(Value::as_object) else {
        return Ok(l);
    };
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
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let cases = json
        .as_array()
        .ok_or(format!("{}: not an array", path.display()))?;
    cases
        .iter()
        .map(|c| {
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .ok_or("case without id")?
                .to_string();
            let ctx = |e: String| format!("{id}: {e}");
            let expect = match c.get("expect").and_then(Value::as_str) {
                Some("ok") => Expect::Ok,
                Some("error") => Expect::Error,
                Some("either") => Expect::Either,
                other => return Err(ctx(format!("bad expect {other:?}"))),
            };
            let responses = match c.get("responses").and_then(Value::as_array) {
                Some(rs) => Some(
                    rs.iter()
                        .map(response)
                        .collect::<Result<_, _>>()
                        .map_err(ctx)?,
                ),
                None => None,
            };
            Ok(Case {
                file: path.to_path_buf(),
                method: c
                    .get("method")
                    .and_then(Value::as_str)
                    .unwrap_or("GET")
                    .to_string(),
                input: latin1(
                    c.get("input")
                        .and_then(Value::as_str)
                        .ok_or(ctx("no input".into()))?,
                )
                .map_err(ctx)?,
                closed: c.get("closed").and_then(Value::as_bool).unwrap_or(false),
                limits: limits(c.get("limits")).map_err(ctx)?,
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

/// Checks one case: whole, split at every byte boundary, and byte by byte.
/// Returns why it failed.
pub fn check(case: &Case) -> Result<(), String> {
    let m = case.method.as_bytes();
    let input = &case.input[..];
    let whole = decode_pieces([input], m, case.limits, case.closed);
    let verdict = |o: &Outcome| -> Result<(), String> {
        match (case.expect, &o.error, &case.responses) {
            (Expect::Ok, Some(e), _) => Err(format!("expected ok, got error: {e}")),
            (Expect::Error, None, _) => Err(format!(
                "expected an error, got {} responses",
                o.responses.len()
            )),
            (Expect::Error, Some(_), Some(want)) if !same_responses(&o.responses, want) => Err(
                format!("responses before the error differ: got {:?}", o.responses),
            ),
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
    let consistent = |how: &str, o: Outcome| -> Result<(), String> {
        if o.responses != whole.responses || o.error.is_some() != whole.error.is_some() {
            return Err(format!("fed {how}: {o:?}\nbut whole: {whole:?}"));
        }
        Ok(())
    };
    for k in 1..input.len() {
        consistent(
            &format!("split at {k}"),
            decode_pieces([&input[..k], &input[k..]], m, case.limits, case.closed),
        )?;
    }
    consistent(
        "byte by byte",
        decode_pieces(input.chunks(1), m, case.limits, case.closed),
    )
}

/// Where the shared corpus is: `../shared/conformance/responses` beside the
/// repository root.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/responses")
}
