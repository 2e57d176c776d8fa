//! Text output of `roundtrip parse`: one line per event, for people.
//!
//! ```text
//! status HTTP/1.1 200 OK
//! field Content-Length: 5
//! head-end framing=length(5) reuse=yes
//! data 5 bytes "hello"
//! end
//! ```
//!
//! Bytes outside printable ASCII are escaped (`\r`, `\xff`, and `\\` for a
//! backslash), so every line is ASCII and one event is one line. Data is shown
//! up to [`DATA_PREVIEW_CHARS`] escaped characters, then how much was cut.

use std::io::{self, Write};

use roundtrip_proto::{Event, Framing, HeadEnd, Reuse};

use super::Report;

/// Longest escaped data preview, in characters.
const DATA_PREVIEW_CHARS: usize = 64;

/// Writes one report as one line.
pub(super) fn write(out: &mut impl Write, report: &Report<'_>) -> io::Result<()> {
    match report {
        Report::Event(event) => write_event(out, event),
        Report::Switched { len, .. } => {
            writeln!(out, "switched ({len} bytes left for the new protocol)")
        }
    }
}

fn write_event(out: &mut impl Write, event: &Event) -> io::Result<()> {
    match event {
        Event::Status(status) if status.reason.is_empty() => {
            writeln!(out, "status {} {}", status.version.as_str(), status.code)
        }
        Event::Status(status) => writeln!(
            out,
            "status {} {} {}",
            status.version.as_str(),
            status.code,
            escape(status.reason, false)
        ),
        Event::Field(field) => writeln!(
            out,
            "field {}: {}",
            escape(field.name(), false),
            escape(field.value(), false)
        ),
        Event::HeadEnd(end) => writeln!(out, "{}", head_end(end)),
        Event::Data(data) => writeln!(out, "{}", data_line(data)),
        Event::Trailer(field) => {
            writeln!(
                out,
                "trailer {}: {}",
                escape(field.name(), false),
                escape(field.value(), false)
            )
        }
        Event::End => writeln!(out, "end"),
        // Reported as `Report::Switched` once the leftover was counted.
        Event::Switched => Ok(()),
    }
}

/// `head-end [interim] framing=.. reuse=..[ keep-alive=..]`
fn head_end(end: &HeadEnd) -> String {
    let mut line = String::from("head-end");
    if end.interim {
        line.push_str(" interim");
    }
    line.push_str(" framing=");
    match end.framing {
        Framing::NoBody => line.push_str("none"),
        Framing::Length(len) => line.push_str(&format!("length({len})")),
        Framing::Chunked => line.push_str("chunked"),
        Framing::UntilClose => line.push_str("until-close"),
        Framing::Switched => line.push_str("switched"),
    }
    match end.reuse {
        Reuse::Yes => line.push_str(" reuse=yes"),
        Reuse::No(reason) => line.push_str(&format!(" reuse=no({reason})")),
    }
    if let Some(timeout) = end.keep_alive_timeout {
        line.push_str(&format!(" keep-alive={timeout:?}"));
    }
    line
}

/// `data N bytes "preview"`, with `... (M more bytes)` when cut.
fn data_line(data: &[u8]) -> String {
    let mut preview = String::new();
    let mut shown = 0;
    for &byte in data {
        let escaped = escape(&[byte], true);
        if preview.len() + escaped.len() > DATA_PREVIEW_CHARS {
            break;
        }
        preview.push_str(&escaped);
        shown += 1;
    }
    let mut line = format!("data {} bytes \"{preview}\"", data.len());
    if shown < data.len() {
        line.push_str(&format!("... ({} more bytes)", data.len() - shown));
    }
    line
}

/// `bytes` as printable ASCII. Quotes are escaped only inside a quoted string
/// (`quoted`), so field values such as `ETag: "x"` read as sent.
fn escape(bytes: &[u8], quoted: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if !quoted && (byte == b'"' || byte == b'\'') {
            out.push(char::from(byte));
        } else {
            out.extend(byte.escape_ascii().map(char::from));
        }
    }
    out
}
