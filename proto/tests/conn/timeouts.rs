//! Timeouts: the response-head deadline, and harmless early timeout calls.

use super::*;

#[test]
fn response_head_timeout_fires_and_is_sticky() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(get(b"/")),
            WrittenAll,
            Check("t=0"),
            Advance(4999),
            Check("t=4999"),
            Advance(1),
            Check("t=5000"),
            ServerSends(OK_HI),
            Advance(10_000),
            Start(get(b"/")),
        ],
    );
    assert_eq!(o.at("t=0").timeout_ms, ms(5000));
    assert_eq!(o.at("t=4999").timeout_ms, ms(5000));
    assert!(
        o.at("t=4999").verdict == Reuse::No(CloseReason::Abandoned)
            && o.at("t=4999").reuse == Reuse::Yes
    );
    assert_eq!(
        o.error(),
        Some(&Error::TimedOut {
            timer: Timer::ResponseHead
        })
    );
    let fired = o.at("t=5000");
    assert_eq!(fired.timeout_ms, None);
    assert_eq!(fired.verdict, Reuse::No(CloseReason::Timeout));
    assert!(!fired.reusable);
    assert_eq!(
        o.log(),
        [
            "> start",
            "! TimedOut { timer: ResponseHead }",
            "> start Misuse"
        ],
        "the late response is not decoded"
    );
    assert_eq!(o.last(), fired, "nothing changes after the error");
}

#[test]
fn response_head_timeout_is_armed_when_the_request_is_written_and_disarmed_by_the_final_head() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5)),
            Advance(10_000),
            SendBody(b"hello"),
            Check("body written"),
            Advance(1000),
            FinishBody(&[]),
            Check("finished"),
            Advance(2000),
            WrittenAll,
            Check("written"),
            ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
            Check("interim"),
            Advance(4999),
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"),
            Check("head"),
            Advance(60_000),
            ServerSends(b"body"),
        ],
    );
    assert_eq!(
        o.at("body written").timeout_ms,
        None,
        "not armed while the body is being sent"
    );
    assert_eq!(
        o.at("finished").timeout_ms,
        None,
        "not armed while the body's end waits for the socket"
    );
    assert_eq!(
        o.at("written").timeout_ms,
        ms(18_000),
        "from the moment the socket took the last byte"
    );
    assert_eq!(
        o.at("interim").timeout_ms,
        ms(18_000),
        "a 1xx does not disarm it"
    );
    assert_eq!(o.at("head").timeout_ms, None, "the final head disarms it");
    assert_eq!(o.error(), None);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn response_head_timeout_counts_through_interim_responses() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(get(b"/")),
            WrittenAll,
            Advance(3000),
            ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
            Advance(2000),
        ],
    );
    assert_eq!(
        o.error(),
        Some(&Error::TimedOut {
            timer: Timer::ResponseHead
        })
    );
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Timeout));
}

#[test]
fn spurious_early_timeouts_are_harmless() {
    let o = run_with(
        head_timeout(5),
        &[
            Advance(0),
            Advance(7),
            Start(get(b"/")),
            Advance(0),
            WrittenAll,
            Advance(4992),
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"),
            Advance(0),
            ServerSends(b"\r\nab"),
            Advance(100_000),
            ServerSends(b"cd"),
            Advance(0),
            Advance(1),
        ],
    );
    assert_eq!(o.error(), None);
    assert!(o.last().complete && o.last().reusable);
    assert!(o.obs.trace.iter().all(|s| s.reuse == Reuse::Yes));
}
