//! Retry safety: what the connection says about sending a request again.

use super::*;

/// A first exchange, so the connection counts as reused for what follows.
const FIRST: [Step; 3] = [Start(get(b"/")), WrittenAll, ServerSends(OK_HI)];

fn after_first(rest: &[Step]) -> Outcome {
    run(&[&FIRST[..], rest].concat())
}

#[test]
fn retry_safety_table() {
    let post5 = post(b"/", 5);
    let fresh = run(&[Start(get(b"/")), WrittenAll, Eof]);
    let nothing_written_post = after_first(&[Start(post5), Eof]);
    let get_unanswered = after_first(&[Start(get(b"/")), WrittenAll, Eof]);
    let get_partly_written = after_first(&[Start(get(b"/")), Written(3), Eof]);
    let post_unanswered = after_first(&[
        Start(post5),
        SendBody(b"hello"),
        FinishBody(&[]),
        WrittenAll,
        Eof,
    ]);
    let started = after_first(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200"),
        Eof,
    ]);

    let get = is_idempotent(b"GET", false);
    let post = is_idempotent(b"POST", false);
    let cases = [
        (&fresh, false, get, true, RetrySafety::FreshConnection),
        (
            &nothing_written_post,
            true,
            post,
            true,
            RetrySafety::NothingWritten,
        ),
        (
            &get_unanswered,
            true,
            get,
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (
            &get_partly_written,
            true,
            get,
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (
            &post_unanswered,
            true,
            post,
            true,
            RetrySafety::NotIdempotent,
        ),
        (
            &post_unanswered,
            true,
            is_idempotent(b"POST", true),
            true,
            RetrySafety::IdempotentUnanswered,
        ),
        (&started, true, get, true, RetrySafety::ResponseStarted),
        (
            &post_unanswered,
            true,
            post,
            false,
            RetrySafety::BodyNotReplayable,
        ),
    ];
    for (i, (o, reused, idempotent, replayable, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            o.retry(reused, idempotent, replayable),
            expected,
            "case {i}"
        );
        let safe = matches!(
            expected,
            RetrySafety::NothingWritten | RetrySafety::IdempotentUnanswered
        );
        assert_eq!(expected.is_safe(), safe, "case {i}");
        assert!(o.error().is_some(), "case {i}: each case ends in a failure");
    }
    assert!(!nothing_written_post.last().wrote_any);
    assert!(get_partly_written.last().wrote_any);
    assert!(started.last().received_any);
}
