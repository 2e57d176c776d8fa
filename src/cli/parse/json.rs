//! JSON output of `roundtrip parse`: one object per line, for tools.
//!
//! Every object has an `event` key (`status`, `field`, `head_end`, `data`,
//! `trailer`, `end`, `switched`, `error`) and always the same keys for a given
//! event, `null` when a value is absent. Bytes are strings in which each char
//! U+0000..U+00FF stands for the byte 0x00..0xFF (Latin-1), as in the
//! conformance corpus (`shared/conformance/README.md`).
//!
//! ```text
//! {"event":"status","version":"HTTP/1.1","code":200,"reason":"OK"}
//! {"event":"head_end","framing":"length","length":5,"reuse":true,"close_reason":null,"interim":false,"keep_alive_timeout_secs":null}
//! {"event":"error","kind":"InvalidFieldName","message":"invalid byte 0x20 in a header field name at byte 20","offset":20}
//! ```

use std::io::{self, Write};

use roundtrip_proto::{Error, Event, Framing, HeadEnd};
use serde::Serialize;

use super::{Report, error_kind, error_offset};

/// One output object; the variant name is the `event` key.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    Status {
        version: &'static str,
        code: u16,
        reason: String,
    },
    Field {
        name: String,
        value: String,
    },
    HeadEnd {
        /// `none`, `length`, `chunked`, `until_close` or `switched`.
        framing: &'static str,
        /// The `Content-Length` when `framing` is `length`.
        length: Option<u64>,
        reuse: bool,
        close_reason: Option<String>,
        interim: bool,
        keep_alive_timeout_secs: Option<u64>,
    },
    Data {
        bytes: String,
    },
    Trailer {
        name: String,
        value: String,
    },
    End,
    Switched {
        leftover: String,
    },
    Error {
        kind: String,
        message: String,
        offset: Option<usize>,
    },
}

/// Writes one report as one line.
pub(super) fn write(out: &mut impl Write, report: &Report<'_>) -> io::Result<()> {
    let line = match report {
        Report::Event(event) => match event_line(event) {
            Some(line) => line,
            None => return Ok(()),
        },
        Report::Switched { bytes, .. } => Line::Switched {
            leftover: latin1(bytes),
        },
    };
    write_line(out, &line)
}

/// Writes the `error` object of a protocol error.
pub(super) fn write_error(out: &mut impl Write, error: &Error) -> io::Result<()> {
    let line = Line::Error {
        kind: error_kind(error),
        message: error.to_string(),
        offset: error_offset(error),
    };
    write_line(out, &line)
}

fn write_line(out: &mut impl Write, line: &Line) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

fn event_line(event: &Event) -> Option<Line> {
    Some(match event {
        Event::Status(status) => Line::Status {
            version: status.version.as_str(),
            code: status.code,
            reason: latin1(status.reason),
        },
        Event::Field(field) => Line::Field {
            name: latin1(field.name()),
            value: latin1(field.value()),
        },
        Event::HeadEnd(end) => head_end(end),
        Event::Data(data) => Line::Data {
            bytes: latin1(data),
        },
        Event::Trailer(field) => Line::Trailer {
            name: latin1(field.name()),
            value: latin1(field.value()),
        },
        Event::End => Line::End,
        // Reported as `Report::Switched` once the leftover was read.
        Event::Switched => return None,
    })
}

fn head_end(end: &HeadEnd) -> Line {
    let (framing, length) = match end.framing {
        Framing::NoBody => ("none", None),
        Framing::Length(len) => ("length", Some(len)),
        Framing::Chunked => ("chunked", None),
        Framing::UntilClose => ("until_close", None),
        Framing::Switched => ("switched", None),
    };
    Line::HeadEnd {
        framing,
        length,
        reuse: end.reuse.is_yes(),
        close_reason: end.reuse.reason().map(|reason| reason.to_string()),
        interim: end.interim,
        keep_alive_timeout_secs: end.keep_alive_timeout.map(|timeout| timeout.as_secs()),
    }
}

/// Byte 0xNN as char U+00NN.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}
