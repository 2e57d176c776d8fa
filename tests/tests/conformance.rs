//! Runs the response conformance corpus against `roundtrip_proto::ResponseDecoder`.
//!
//! Reads the repository's copy of the shared corpus,
//! `tests/conformance/shared/*.json` (byte for byte the files of
//! `../shared/conformance/responses`, which `corpus_copy_matches_upstream`
//! checks whenever that folder exists), the project's own
//! `tests/conformance/*.json` and, when `ROUNDTRIP_CONFORMANCE_DIR` is set,
//! every `*.json` below that folder. Each case is fed whole, split at every
//! byte boundary and byte by byte.
//!
//! The run fails when fewer cases are checked than the files' JSON arrays
//! hold, and the other tests here show that each check of the runner
//! rejects what it is meant to reject.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use roundtrip_proto::{Error, Limits};
use roundtrip_tests::conformance::{
    Case, Fed, Report, check, check_with, corpus_dir, feed_decoder, json_files, left_open,
    load_str, local_files, read_all, run, same_corpus, upstream_dir,
};
use roundtrip_tests::decode_pieces;

/// The shared corpus held this many files and cases when it was copied in;
/// the copy may grow, never shrink below this.
const SHARED_FILES_FLOOR: usize = 9;
const SHARED_CASES_FLOOR: usize = 500;

fn run_files(what: &str, files: &[PathBuf], ids: &mut HashSet<String>) -> Report {
    let texts = read_all(files).unwrap_or_else(|e| panic!("{what}: {e}"));
    run(&texts, load_str, check, ids)
}

#[test]
fn conformance_corpus() {
    let shared = corpus_dir();
    let shared_files = json_files(&shared);
    assert!(
        shared_files.len() >= SHARED_FILES_FLOOR,
        "{}: {} corpus files, expected at least {SHARED_FILES_FLOOR}",
        shared.display(),
        shared_files.len()
    );
    let mut ids = HashSet::new();
    let mut reports = vec![run_files("shared corpus", &shared_files, &mut ids)];
    let s = &reports[0];
    assert!(
        s.checked() >= s.in_files && s.checked() >= SHARED_CASES_FLOOR,
        "shared corpus: {} cases checked, its JSON arrays hold {} (floor {SHARED_CASES_FLOOR})",
        s.checked(),
        s.in_files
    );
    if let Ok(dir) = std::env::var("ROUNDTRIP_CONFORMANCE_DIR") {
        let extra = json_files(Path::new(&dir));
        assert!(
            !extra.is_empty(),
            "ROUNDTRIP_CONFORMANCE_DIR={dir} holds no *.json file"
        );
        reports.push(run_files(&dir, &extra, &mut ids));
    }
    let local = local_files();
    assert!(!local.is_empty(), "no tests/conformance/*.json file");
    reports.push(run_files("local cases", &local, &mut ids));

    let (mut passed, mut failed, mut problems) = (0, Vec::new(), Vec::new());
    for r in reports {
        passed += r.passed;
        failed.extend(r.failed);
        problems.extend(r.problems);
    }
    for (id, why) in &failed {
        eprintln!("FAIL {id}: {why}");
    }
    // Straight to the stderr descriptor: libtest's capture only takes the
    // print macros, and the summary is worth seeing in a passing run too.
    let summary = format!("conformance: {passed} passed, {} failed\n", failed.len());
    let _ = std::io::stderr().lock().write_all(summary.as_bytes());
    assert!(
        problems.is_empty(),
        "the conformance run itself is wrong:\n{}",
        problems.join("\n")
    );
    if !failed.is_empty() {
        let ids: Vec<_> = failed.iter().map(|(id, _)| id.as_str()).collect();
        panic!("conformance failures: {}", ids.join(" "));
    }
}

/// The repository's copy is the shared corpus, file for file and byte for
/// byte, whenever `../shared/conformance/responses` is there to compare.
#[test]
fn corpus_copy_matches_upstream() {
    let upstream = upstream_dir();
    if !upstream.is_dir() {
        // Not a skip to fail on: a clone beside no `shared` folder has
        // nothing to compare. Said where a plain `cargo test` shows it
        // (stderr, not the captured output).
        let note = format!(
            "\n!!! {} not found: the in-repo copy of the corpus is not compared (it still runs)\n",
            upstream.display()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), note.as_bytes());
        return;
    }
    if let Err(diff) = same_corpus(&upstream, &corpus_dir()) {
        panic!("tests/conformance/shared is not a copy of the shared corpus:\n{diff}");
    }
}

// ---- each check of the runner can fail ----

fn one_case(json: &str) -> Case {
    let mut cases = load_str(json, Path::new("in-memory.json")).expect("a valid case");
    assert_eq!(cases.len(), 1);
    cases.pop().unwrap()
}

/// A loader that drops a case (here the last; in real life one it cannot
/// parse and skips) is caught by the count of the file's JSON array.
#[test]
fn run_rejects_fewer_cases_than_the_file_holds() {
    let text = r#"[
        {"id": "a", "source": "test", "method": "HEAD",
         "input": "HTTP/1.1 200 OK\r\n\r\n", "expect": "ok",
         "responses": [{"version": "HTTP/1.1", "status": 200, "reason": "OK", "headers": [], "body": ""}]},
        {"id": "b", "source": "test", "method": "HEAD",
         "input": "HTTP/1.1 204 No Content\r\n\r\n", "expect": "ok",
         "responses": [{"version": "HTTP/1.1", "status": 204, "reason": "No Content", "headers": [], "body": ""}]}
    ]"#;
    let files = [(PathBuf::from("in-memory.json"), text.to_string())];

    let good = run(&files, load_str, check, &mut HashSet::new());
    assert_eq!((good.passed, good.failed.len()), (2, 0));
    assert!(good.problems.is_empty(), "{:?}", good.problems);

    let dropping = |t: &str, p: &Path| {
        load_str(t, p).map(|mut cases| {
            cases.pop();
            cases
        })
    };
    let bad = run(&files, dropping, check, &mut HashSet::new());
    assert_eq!(bad.passed, 1);
    assert_eq!(
        bad.problems,
        ["in-memory.json: 1 cases checked, but its JSON array holds 2"]
    );
}

/// Two feeds that both fail, but with different error variants, are
/// rejected; a different offset in the same variant is not.
#[test]
fn check_rejects_a_different_error_kind_across_feeds() {
    let case = one_case(
        r#"[{"id": "bad-name", "source": "test", "method": "HEAD",
             "input": "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "expect": "error"}]"#,
    );
    check(&case).expect("the real decoder passes");

    // Whole: the real error (InvalidFieldName). Split: another variant.
    let other_kind = |c: &Case, pieces: &[&[u8]]| {
        let mut fed = feed_decoder(c, pieces);
        if pieces.len() > 1 {
            fed.outcome.error = Some(Error::BareLineFeed { offset: 20 });
        }
        fed
    };
    let why = check_with(&case, other_kind).expect_err("a different variant is rejected");
    assert!(
        why.contains("BareLineFeed") && why.contains("InvalidFieldName"),
        "{why}"
    );

    // Same variant, another offset: the kind is what must agree.
    let other_offset = |c: &Case, pieces: &[&[u8]]| {
        let mut fed = feed_decoder(c, pieces);
        if pieces.len() > 1 {
            fed.outcome.error = Some(Error::InvalidFieldName {
                offset: 99,
                byte: b' ',
            });
        }
        fed
    };
    check_with(&case, other_offset).expect("same variant");
}

/// A decoder that ignores the EOF: a `closed` case it leaves with a
/// response cut short, and no error, is rejected (even as `either` with no
/// responses listed, which the check accepted before).
#[test]
fn check_rejects_a_response_cut_by_the_eof_without_an_error() {
    let deaf_to_eof = |c: &Case, pieces: &[&[u8]]| {
        let m = c.method.as_bytes();
        Fed {
            outcome: decode_pieces(pieces.iter().copied(), m, c.limits, false),
            unfinished: c.closed && left_open(pieces, m, c.limits, false),
        }
    };
    for input in [
        // A body shorter than its Content-Length.
        r"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        // A chunked body without its last chunk.
        r"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        // A head without its blank line.
        r"HTTP/1.1 200 OK\r\nContent-Le",
    ] {
        let case = one_case(&format!(
            r#"[{{"id": "cut", "source": "test", "input": "{input}",
                 "closed": true, "expect": "either", "responses": []}}]"#
        ));
        check(&case).expect("the real decoder fails at the EOF");
        let why = check_with(&case, deaf_to_eof).expect_err("an unfinished response is rejected");
        assert!(why.contains("unfinished"), "{input}: {why}");
    }

    // A body delimited by the close ends at the EOF: not unfinished.
    let case = one_case(
        r#"[{"id": "close-delimited", "source": "test",
             "input": "HTTP/1.1 200 OK\r\n\r\nabc", "closed": true, "expect": "ok",
             "responses": [{"version": "HTTP/1.1", "status": 200, "reason": "OK",
                            "headers": [], "body": "abc", "keep_alive": false}]}]"#,
    );
    check(&case).expect("close-delimited");
    assert!(!left_open(
        &[&case.input[..]],
        b"GET",
        Limits::default(),
        true
    ));
}

/// A copy that lacks a file, has an extra one, or differs in one byte is
/// named.
#[test]
fn same_corpus_names_the_differing_file() {
    let root = std::env::temp_dir().join(format!("roundtrip-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (up, copy) = (root.join("up"), root.join("copy"));
    for d in [&up, &copy] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("a.json"), "[]").unwrap();
        std::fs::write(d.join("b.json"), "[1]").unwrap();
    }
    same_corpus(&up, &copy).expect("identical");

    std::fs::write(copy.join("b.json"), "[2]").unwrap();
    let why = same_corpus(&up, &copy).unwrap_err();
    assert!(why.contains("b.json differs"), "{why}");

    std::fs::write(copy.join("b.json"), "[1]").unwrap();
    std::fs::remove_file(copy.join("a.json")).unwrap();
    std::fs::write(copy.join("c.json"), "[]").unwrap();
    let why = same_corpus(&up, &copy).unwrap_err();
    assert!(why.contains("a.json is missing"), "{why}");
    assert!(why.contains("c.json is not in"), "{why}");
    let _ = std::fs::remove_dir_all(&root);
}

/// The loader holds a case to the corpus format: a misspelt field, a
/// field of the wrong type or an `ok` case without `responses` would be a
/// check silently not made, so each is an error naming the case.
#[test]
fn load_rejects_what_the_format_does_not_allow() {
    let ok = r#""responses": [{"version": "HTTP/1.1", "status": 204, "reason": "No Content", "headers": [], "body": ""}]"#;
    let case = |extra: &str| {
        format!(
            r#"[{{"id": "x", "source": "test", "method": "HEAD",
                 "input": "HTTP/1.1 204 No Content\r\n\r\n", "expect": "ok", {extra}}}]"#
        )
    };
    let path = Path::new("in-memory.json");
    assert!(load_str(&case(ok), path).is_ok());
    let with_ok = |extra: &str| format!("{ok}, {extra}");
    for (extra, why) in [
        (with_ok(r#""respones": []"#), "unknown field \"respones\""),
        (with_ok(r#""closed": 1"#), "closed: wrong type"),
        (with_ok(r#""limits": [1]"#), "limits: not an object"),
        (r#""note": "n""#.to_string(), "no responses"),
        (
            r#""responses": [{"version": "HTTP/1.1", "status": 65736, "reason": "", "headers": [], "body": ""}]"#.to_string(),
            "status 65736 is not three digits",
        ),
        (
            r#""responses": [{"version": "HTTP/1.1", "status": 204, "reason": "", "headers": [], "body": "", "keep_alive": "false"}]"#.to_string(),
            "keep_alive: wrong type",
        ),
        (
            r#""responses": [{"version": "HTTP/1.1", "status": 204, "reason": "", "headers": [], "body": "", "keepalive": false}]"#.to_string(),
            "unknown field \"keepalive\"",
        ),
    ] {
        let text = case(&extra);
        let err = load_str(&text, path).expect_err(&extra);
        assert!(
            err.starts_with("x: ") && err.contains(why),
            "{extra}: {err}"
        );
    }
}

/// A decoder that delivers a response and only then fails (here: taking
/// the first of two differing `Content-Length`s, then choking on the
/// rest) does not pass an `error` case that lists no responses, though
/// the format allows responses before an error; the project's listed
/// exceptions keep their counts.
#[test]
fn check_rejects_a_response_before_the_expected_error() {
    let case = one_case(
        r#"[{"id": "two-lengths", "source": "test",
             "input": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\nokok", "expect": "error"}]"#,
    );
    check(&case).expect("the real decoder passes: it refuses the head");
    let first_length = |c: &Case, pieces: &[&[u8]]| {
        let mut fed = feed_decoder(c, pieces);
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let first = decode_pieces([&ok[..]], b"GET", Limits::default(), false);
        fed.outcome.responses = first.responses;
        fed
    };
    let why = check_with(&case, first_length).expect_err("a response before the error");
    assert!(
        why.contains("1 responses completed before the error, 0 expected"),
        "{why}"
    );
    let listed = roundtrip_tests::conformance::RESPONSES_BEFORE_ERROR;
    assert!(listed.iter().all(|(_, n, why)| *n > 0 && !why.is_empty()));
}
