//! Abandoning a body: drain or close.

use super::*;

#[test]
fn abandon_with_small_remainder_drains_and_reuses() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Advance(10),
        Abandon,
        Check("draining"),
        ServerSends(b"lo worl"),
        Check("drained"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log()[5..8],
        ["> abandon Drain", "< data lo worl", "< end"]
    );
    let draining = o.at("draining");
    assert!(draining.draining && !draining.reusable && !draining.complete);
    assert_eq!(draining.reuse, Reuse::Yes);
    assert_eq!(draining.timeout_ms, ms(110));
    let drained = o.at("drained");
    assert!(drained.complete && drained.reusable && !drained.draining);
    assert_eq!(drained.timeout_ms, None);
    assert!(o.last().reusable);
}

#[test]
fn abandon_with_large_remainder_closes() {
    let config = ConnConfig::default().max_drain_bytes(4);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(TEN_PARTIAL),
            Abandon,
        ],
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert!(!o.last().draining && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
    assert_eq!(o.last().timeout_ms, None);

    // Exactly the budget left: drain.
    let config = ConnConfig::default().max_drain_bytes(7);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(TEN_PARTIAL),
            Abandon,
        ],
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Drain"));
}

#[test]
fn abandon_drain_budget_exceeded_is_not_reusable() {
    let config = ConnConfig::default().max_drain_bytes(4);
    let o = run_with(
        config,
        &[
            Start(get(b"/")),
            WrittenAll,
            ServerSends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"),
            Abandon,
            Check("draining"),
            ServerSends(b"5\r\nabcde\r\n0\r\n\r\n"),
        ],
    );
    assert!(o.at("draining").draining);
    assert!(o.last().complete && !o.last().draining && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
    assert_eq!(o.error(), None);
}

#[test]
fn abandon_drain_timeout_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Abandon,
        Advance(99),
        Check("t=99"),
        Advance(1),
        Check("t=100"),
        ServerSends(b"lo worl"),
    ]);
    assert!(o.at("t=99").draining);
    let expired = o.at("t=100");
    assert!(!expired.draining && !expired.reusable);
    assert_eq!(expired.reuse, Reuse::No(CloseReason::Abandoned));
    assert_eq!(expired.timeout_ms, None);
    assert_eq!(o.error(), None, "the drain deadline is not an error");
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
}

#[test]
fn abandon_before_the_head_closes() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n"),
        Abandon,
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Abandoned));
}

#[test]
fn abandon_after_completion_changes_nothing() {
    let o = run(&[Start(get(b"/")), WrittenAll, ServerSends(OK_HI), Abandon]);
    assert_eq!(
        o.log().last().map(String::as_str),
        Some("> abandon Complete")
    );
    assert!(o.last().reusable);
}

#[test]
fn abandon_a_close_delimited_body_closes() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n\r\nabc"),
        Abandon,
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ReadToClose));
}
