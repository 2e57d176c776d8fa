//! `roundtrip parse`: decode a captured response stream and print its events.
//!
//! The input (a file, or stdin when no file or `-` is given) holds the bytes a
//! server sent on one connection: one response, or several in a row. They go
//! to a [`ResponseDecoder`] the way an adapter feeds it from a socket: read a
//! chunk into one `BytesMut`, poll events until `Ok(None)`, repeat. At the end
//! of input the decoder is told the server closed the connection
//! (`handle_eof`), so a response cut short is an error; with `--open` the
//! capture just stops there, and an unfinished trailing response is noted on
//! stderr as `incomplete: N bytes of an unfinished response` (exit 0), N
//! counting every byte after the last complete response.
//!
//! Output is one line per event, as text ([`text`]) or as JSON objects
//! ([`json`]). After a `101` (or a 2xx to `CONNECT`) the rest of the input
//! belongs to the new protocol: it is read to the end and reported once, with
//! its length, as the `switched` line.
//!
//! Exit codes: 0 decoded without error; 1 protocol error (`error: <message>
//! (<kind>)` on stderr, and in JSON mode an `error` object on stdout too);
//! 2 input or output I/O error (one line on stderr). A closed stdout (`| head`)
//! ends the run silently with 0.

mod json;
mod text;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Limits, ResponseDecoder};

/// How much is read from the input at a time.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Arguments of `roundtrip parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Method of the request(s) the responses answer: HEAD means no body,
    /// a 2xx to CONNECT ends HTTP on the connection.
    #[arg(long, value_name = "M", default_value = "GET")]
    method: String,
    /// Print one JSON object per event; bytes are Latin-1 strings (byte 0xNN
    /// is char U+00NN).
    #[arg(long)]
    json: bool,
    /// The capture stops mid-connection: the end of input is not the server
    /// closing it, and an unfinished last response is only noted on stderr.
    #[arg(long)]
    open: bool,
    /// Most bytes of a response head (status line and fields)
    /// [default: the decoder's, 65536].
    #[arg(long, value_name = "N")]
    max_head_bytes: Option<usize>,
    /// Most fields in one head [default: the decoder's, 128].
    #[arg(long, value_name = "N")]
    max_fields: Option<usize>,
    /// Most bytes of the trailer section of a chunked body
    /// [default: the decoder's, 16384].
    #[arg(long, value_name = "N")]
    max_trailer_bytes: Option<usize>,
    /// Most bytes of the extensions of one chunk-size line
    /// [default: the decoder's, 4096].
    #[arg(long, value_name = "N")]
    max_chunk_ext_bytes: Option<usize>,
    /// Most interim (1xx) responses before a final one
    /// [default: the decoder's, 32].
    #[arg(long, value_name = "N")]
    max_interim: Option<usize>,
    /// The captured response bytes; stdin when absent or `-`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// One line of output.
pub(crate) enum Report<'a> {
    /// A decoder event (`Switched` prints nothing: see [`Report::Switched`]).
    Event(&'a Event<'a>),
    /// HTTP ended; `len` bytes followed for the new protocol. `bytes` holds
    /// them in JSON mode and is empty in text mode, which prints the count only.
    Switched { len: u64, bytes: &'a [u8] },
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// Why a run stopped early.
enum Failure {
    /// The server's bytes are not a valid response stream.
    Protocol(Error),
    /// Reading the input failed.
    Read(io::Error),
    /// Writing stdout failed.
    Write(io::Error),
}

/// How a run ended without failure.
enum Outcome {
    Complete,
    /// `--open`: this many bytes after the last complete response.
    Incomplete(u64),
}

/// Runs `roundtrip parse`.
pub fn run(args: &Args) -> ExitCode {
    let path = args.file.as_deref().filter(|path| *path != Path::new("-"));
    let source = path.map_or_else(|| "stdin".to_owned(), |path| path.display().to_string());
    let input: Box<dyn Read> = match path {
        Some(path) => match File::open(path) {
            Ok(file) => Box::new(file),
            Err(e) => {
                super::warn(&format!("error: cannot open {source}: {e}"));
                return ExitCode::from(2);
            }
        },
        None => Box::new(io::stdin().lock()),
    };
    let format = if args.json {
        Format::Json
    } else {
        Format::Text
    };
    let mut out = Output {
        format,
        out: BufWriter::new(io::stdout().lock()),
    };

    let result = decode(args, input, &mut out);
    let result = result.and_then(|outcome| out.flush().map(|()| outcome));
    match result {
        Ok(Outcome::Complete) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete(len)) => {
            super::warn(&format!(
                "incomplete: {len} bytes of an unfinished response"
            ));
            ExitCode::SUCCESS
        }
        Err(Failure::Protocol(e)) => {
            if format == Format::Json {
                // Best effort: the error line on stderr below says it anyway.
                let _ = json::write_error(&mut out.out, &e).and_then(|()| out.out.flush());
            } else {
                let _ = out.out.flush();
            }
            super::warn(&format!("error: {e} ({})", error_kind(&e)));
            ExitCode::from(1)
        }
        Err(Failure::Read(e)) => {
            super::warn(&format!("error: cannot read {source}: {e}"));
            ExitCode::from(2)
        }
        Err(Failure::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Write(e)) => {
            super::warn(&format!("error: cannot write the output: {e}"));
            ExitCode::from(2)
        }
    }
}

/// Where reports go.
struct Output<W: Write> {
    format: Format,
    out: W,
}

impl<W: Write> Output<W> {
    fn report(&mut self, report: &Report<'_>) -> Result<(), Failure> {
        match self.format {
            Format::Text => text::write(&mut self.out, report),
            Format::Json => json::write(&mut self.out, report),
        }
        .map_err(Failure::Write)
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.out.flush().map_err(Failure::Write)
    }
}

/// Byte counts that locate the unfinished part of the input.
#[derive(Default)]
struct Progress {
    /// Bytes read from the input.
    read: u64,
    /// Bytes of input up to the end of the last complete response.
    complete: u64,
}

/// Feeds the whole input to a decoder, reporting every event.
fn decode<W: Write>(
    args: &Args,
    mut input: impl Read,
    out: &mut Output<W>,
) -> Result<Outcome, Failure> {
    let mut decoder = ResponseDecoder::new(limits(args));
    decoder.set_request_method(args.method.as_bytes());
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut progress = Progress::default();
    loop {
        if drain(&mut decoder, &mut buf, out, &mut progress)? {
            return read_leftover(input, buf, out);
        }
        // Show what is decoded before blocking on a slow input (a live pipe).
        out.flush()?;
        let len = read_chunk(&mut input, &mut buf).map_err(Failure::Read)?;
        if len == 0 {
            break;
        }
        progress.read += len as u64;
    }
    if args.open {
        let unfinished = progress.read - progress.complete;
        return Ok(if unfinished > 0 {
            Outcome::Incomplete(unfinished)
        } else {
            Outcome::Complete
        });
    }
    decoder.handle_eof();
    if drain(&mut decoder, &mut buf, out, &mut progress)? {
        return read_leftover(input, buf, out);
    }
    Ok(Outcome::Complete)
}

/// Polls events until the decoder needs more input; true once it reported
/// `Switched` (the bytes left in `buf` are then no longer HTTP).
fn drain<W: Write>(
    decoder: &mut ResponseDecoder,
    buf: &mut BytesMut,
    out: &mut Output<W>,
    progress: &mut Progress,
) -> Result<bool, Failure> {
    loop {
        match decoder.poll_event(buf).map_err(Failure::Protocol)? {
            None => return Ok(false),
            Some(Event::Switched) => return Ok(true),
            Some(event) => {
                let end = event == Event::End;
                // The event is dropped here, so its `Bytes` no longer pin the
                // buffer when the next read reserves space.
                out.report(&Report::Event(&event))?;
                if end {
                    progress.complete = progress.read - buf.len() as u64;
                }
            }
        }
    }
}

/// The decoder's limits: its defaults, with each one the command line sets.
fn limits(args: &Args) -> Limits {
    let mut limits = Limits::default();
    if let Some(n) = args.max_head_bytes {
        limits = limits.max_head_bytes(n);
    }
    if let Some(n) = args.max_fields {
        limits = limits.max_fields(n);
    }
    if let Some(n) = args.max_trailer_bytes {
        limits = limits.max_trailer_bytes(n);
    }
    if let Some(n) = args.max_chunk_ext_bytes {
        limits = limits.max_chunk_ext_bytes(n);
    }
    if let Some(n) = args.max_interim {
        limits = limits.max_interim_responses(n);
    }
    limits
}

/// Reads the rest of the input after a protocol switch and reports it.
fn read_leftover<W: Write>(
    mut input: impl Read,
    mut buf: BytesMut,
    out: &mut Output<W>,
) -> Result<Outcome, Failure> {
    // Text mode prints only the count, so it need not keep a long stream.
    let keep = out.format == Format::Json;
    let mut len = buf.len() as u64;
    loop {
        if !keep {
            buf.clear();
        }
        let read = read_chunk(&mut input, &mut buf).map_err(Failure::Read)?;
        if read == 0 {
            break;
        }
        len += read as u64;
    }
    out.report(&Report::Switched { len, bytes: &buf })?;
    Ok(Outcome::Complete)
}

/// Appends up to [`READ_CHUNK_BYTES`] from `input` to `buf`; 0 at the end.
fn read_chunk(input: &mut impl Read, buf: &mut BytesMut) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK_BYTES, 0);
    let result = loop {
        match input.read(&mut buf[start..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => break result,
        }
    };
    buf.truncate(start + result.as_ref().map_or(0, |&len| len));
    result
}

/// The name of the error's variant, e.g. `InvalidFieldName`.
pub(crate) fn error_kind(error: &Error) -> String {
    // `Error` is `non_exhaustive`: its `Debug` output starts with the variant
    // name, which names variants added later too.
    format!("{error:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The byte offset in the response message where the error was found, for
/// the variants that carry one.
pub(crate) fn error_offset(error: &Error) -> Option<usize> {
    match *error {
        Error::InvalidVersion { offset }
        | Error::InvalidStatus { offset }
        | Error::InvalidReason { offset, .. }
        | Error::InvalidFieldName { offset, .. }
        | Error::InvalidFieldValue { offset, .. }
        | Error::BareCarriageReturn { offset }
        | Error::BareLineFeed { offset }
        | Error::UnexpectedWhitespace { offset }
        | Error::InvalidContentLength { offset }
        | Error::InvalidTransferEncoding { offset }
        | Error::InvalidChunkSize { offset, .. }
        | Error::ChunkSizeOverflow { offset }
        | Error::InvalidChunkEnd { offset } => Some(offset),
        _ => None,
    }
}
