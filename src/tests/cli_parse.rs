//! `roundtrip parse`, run as a real process on captured response bytes.
//!
//! This integration test belongs to the root package (see the `[[test]]`
//! entry in its `Cargo.toml`) because only a package's own tests get
//! `CARGO_BIN_EXE_roundtrip`, with the binary built before they run; the
//! package's usual `tests/` folder is taken by the `roundtrip-tests` crate.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What a run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `roundtrip` with `args`, `input` on stdin.
fn run(args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the roundtrip binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // A separate writer, so a large input cannot deadlock against a full
    // stdout pipe; the child may exit before reading it all (an error).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("the roundtrip binary runs");
    writer.join().expect("the stdin writer does not panic");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `roundtrip parse` with `args` on `input`.
fn parse(args: &[&str], input: &[u8]) -> Run {
    let mut all = vec!["parse"];
    all.extend_from_slice(args);
    run(&all, input)
}

/// Writes `input` to a file of its own under the target's temp folder.
fn capture_file(name: &str, input: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli_parse-{name}"));
    std::fs::write(&path, input).expect("the capture file is written");
    path
}

/// Decodes each JSON line of `stdout`.
fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn simple_response_as_text() {
    let run = parse(&[], HELLO);
    assert_eq!(
        run.stdout,
        "status HTTP/1.1 200 OK\n\
         field Content-Length: 5\n\
         head-end framing=length(5) reuse=yes\n\
         data 5 bytes \"hello\"\n\
         end\n"
    );
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

#[test]
fn simple_response_as_json_from_a_file() {
    let path = capture_file("hello", HELLO);
    let run = parse(
        &["--json", path.to_str().expect("the temp path is UTF-8")],
        b"",
    );
    assert_eq!(
        run.stdout,
        r#"{"event":"status","version":"HTTP/1.1","code":200,"reason":"OK"}
{"event":"field","name":"Content-Length","value":"5"}
{"event":"head_end","framing":"length","length":5,"reuse":true,"close_reason":null,"interim":false,"keep_alive_timeout_secs":null}
{"event":"data","bytes":"hello"}
{"event":"end"}
"#
    );
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

#[test]
fn two_responses_in_a_row() {
    let input = b"HTTP/1.1 204 No Content\r\n\r\n\
                  HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let run = parse(&[], input);
    assert_eq!(
        run.stdout,
        "status HTTP/1.1 204 No Content\n\
         head-end framing=none reuse=yes\n\
         end\n\
         status HTTP/1.1 200 OK\n\
         field Connection: close\n\
         field Content-Length: 2\n\
         head-end framing=length(2) reuse=no(server sent connection: close)\n\
         data 2 bytes \"hi\"\n\
         end\n"
    );
    assert_eq!(run.code, Some(0));
}

#[test]
fn chunked_with_trailer_and_keep_alive() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n\
                  5\r\nhello\r\n1\r\n\xff\r\n0\r\nX-Sum: \"abc\"\r\n\r\n";
    let run = parse(&[], input);
    assert_eq!(
        run.stdout,
        "status HTTP/1.1 200 OK\n\
         field Transfer-Encoding: chunked\n\
         field Keep-Alive: timeout=5\n\
         head-end framing=chunked reuse=yes keep-alive=5s\n\
         data 5 bytes \"hello\"\n\
         data 1 bytes \"\\xff\"\n\
         trailer X-Sum: \"abc\"\n\
         end\n"
    );
    assert_eq!(run.code, Some(0));

    let lines = json_lines(&parse(&["--json"], input).stdout);
    assert_eq!(lines[3]["framing"], "chunked");
    assert_eq!(lines[3]["keep_alive_timeout_secs"], 5);
    assert_eq!(
        lines[5],
        serde_json::json!({"event": "data", "bytes": "\u{ff}"})
    );
    assert_eq!(
        lines[6],
        serde_json::json!({"event": "trailer", "name": "X-Sum", "value": "\"abc\""})
    );
}

#[test]
fn head_method_means_no_body() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    let run = parse(&["--method", "HEAD"], input);
    assert_eq!(
        run.stdout,
        "status HTTP/1.1 200 OK\n\
         field Content-Length: 5\n\
         head-end framing=none reuse=yes\n\
         end\n"
    );
    assert_eq!(run.code, Some(0));
    // The same bytes answering a GET miss their body.
    assert_eq!(parse(&[], input).code, Some(1));
}

#[test]
fn protocol_error_exits_1() {
    let input = b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n";
    let run = parse(&[], input);
    assert_eq!(run.code, Some(1));
    // The head is checked whole before its first event.
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: invalid byte 0x20 in a header field name at byte 20 (InvalidFieldName)\n"
    );

    let run = parse(&["--json"], input);
    assert_eq!(run.code, Some(1));
    let lines = json_lines(&run.stdout);
    assert_eq!(
        lines.last(),
        Some(&serde_json::json!({
            "event": "error",
            "kind": "InvalidFieldName",
            "message": "invalid byte 0x20 in a header field name at byte 20",
            "offset": 20,
        }))
    );
    assert!(
        run.stderr.starts_with("error: invalid byte 0x20"),
        "{}",
        run.stderr
    );
}

#[test]
fn truncated_body_is_an_error_at_close() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    let run = parse(&[], input);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.ends_with("data 5 bytes \"hello\"\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr,
        "error: connection closed during the body after 5 body bytes of 10 (UnexpectedEof)\n"
    );

    let lines = json_lines(&parse(&["--json"], input).stdout);
    let error = lines.last().expect("an error line");
    assert_eq!(
        (&error["kind"], &error["offset"]),
        (&"UnexpectedEof".into(), &serde_json::Value::Null)
    );
}

#[test]
fn truncated_body_with_open_is_incomplete() {
    let input =
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    let run = parse(&["--open"], input);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.ends_with("data 5 bytes \"hello\"\n"),
        "{}",
        run.stdout
    );
    // Everything after the 204: the 39-byte head and 5 body bytes.
    assert_eq!(
        run.stderr,
        "incomplete: 44 bytes of an unfinished response\n"
    );

    // A complete capture left open has nothing to note.
    let run = parse(&["--open"], HELLO);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

#[test]
fn missing_file_exits_2() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_parse-no-such-file");
    let run = parse(&[path.to_str().expect("the temp path is UTF-8")], b"");
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("error: cannot open "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn switched_reports_the_leftover() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    let run = parse(&[], input);
    assert_eq!(
        run.stdout,
        "status HTTP/1.1 101 Switching Protocols\n\
         field Upgrade: websocket\n\
         head-end framing=switched reuse=no(switched protocols)\n\
         switched (7 bytes left for the new protocol)\n"
    );
    assert_eq!(run.code, Some(0));

    let lines = json_lines(&parse(&["--json"], input).stdout);
    assert_eq!(
        lines.last(),
        Some(&serde_json::json!({"event": "switched", "leftover": "\u{81}\u{5}hello"}))
    );
}

#[test]
fn interim_response_and_long_data() {
    let mut input =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    input.extend_from_slice(&[b'a'; 100]);
    let run = parse(&[], &input);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[1], "head-end interim framing=none reuse=yes");
    assert_eq!(
        lines[5],
        format!("data 100 bytes \"{}\"... (36 more bytes)", "a".repeat(64))
    );
    assert_eq!(run.code, Some(0));
}

#[test]
fn input_larger_than_one_read() {
    // Three responses of 40 KB each cross several 16 KiB reads.
    let mut input = Vec::new();
    for _ in 0..3 {
        input.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n");
        input.extend(std::iter::repeat_n(b'x', 40_000));
    }
    let run = parse(&["--json"], &input);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let body: usize = lines
        .iter()
        .filter(|line| line["event"] == "data")
        .map(|line| line["bytes"].as_str().map_or(0, str::len))
        .sum();
    assert_eq!(body, 120_000);
    assert_eq!(
        lines.iter().filter(|line| line["event"] == "end").count(),
        3
    );
}

#[test]
fn no_arguments_print_help() {
    let run = run(&[], b"");
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("Usage: roundtrip <COMMAND>"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("parse"), "{}", run.stderr);
}

/// Runs `parse` with one limit flag on `input`: exit 1 and the error kind
/// with the flag at `tight`, exit 0 without it.
fn limit_is_enforced(flag: &str, tight: &str, input: &[u8], kind: &str) {
    let run = parse(&[flag, tight], input);
    assert_eq!(run.code, Some(1), "{flag}: {}", run.stderr);
    assert!(
        run.stderr.ends_with(&format!("({kind})\n")),
        "{flag}: {}",
        run.stderr
    );
    let run = parse(&[], input);
    assert_eq!(run.code, Some(0), "{flag} absent: {}", run.stderr);
}

#[test]
fn max_head_bytes_flag() {
    limit_is_enforced(
        "--max-head-bytes",
        "20",
        b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n",
        "HeadTooLarge",
    );
}

#[test]
fn max_fields_flag() {
    limit_is_enforced(
        "--max-fields",
        "1",
        b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n",
        "TooManyFields",
    );
}

#[test]
fn max_trailer_bytes_flag() {
    limit_is_enforced(
        "--max-trailer-bytes",
        "8",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          1\r\nx\r\n0\r\nTrailer-Field: a long value\r\n\r\n",
        "TrailersTooLarge",
    );
}

#[test]
fn max_chunk_ext_bytes_flag() {
    limit_is_enforced(
        "--max-chunk-ext-bytes",
        "8",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          1;name=a-long-extension-value\r\nx\r\n0\r\n\r\n",
        "ChunkExtTooLarge",
    );
}

#[test]
fn max_interim_flag() {
    limit_is_enforced(
        "--max-interim",
        "1",
        b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "TooManyInterimResponses",
    );
}
