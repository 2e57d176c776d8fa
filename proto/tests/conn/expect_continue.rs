//! `Expect: 100-continue` and final responses that arrive before the body is sent.

use super::*;

const POST5_EXPECT: &str =
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";

#[test]
fn continue_100_releases_the_body() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            Check("waiting"),
            SendBody(b"early"),
            ServerSends(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Check("released"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Check("finished"),
            WrittenAll,
            Check("written"),
            ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ],
    );
    assert_eq!(o.written(), format!("{POST5_EXPECT}hello"));
    assert_eq!(
        o.log(),
        [
            "> start",
            "> body Misuse",
            "< HTTP/1.1 100 Continue",
            "< interim-end",
            "> body",
            "> finish",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 0",
            "< head-end Length(0) Yes",
            "< end",
        ]
    );
    let waiting = o.at("waiting");
    assert!(!waiting.may_send_body && waiting.is_sending);
    assert_eq!(
        waiting.timeout_ms,
        ms(1000),
        "continue deadline, not the head timeout"
    );
    let released = o.at("released");
    assert!(released.may_send_body);
    assert_eq!(
        released.timeout_ms, None,
        "continue deadline disarmed, head timeout not yet armed"
    );
    assert_eq!(
        o.at("finished").timeout_ms,
        None,
        "the head timeout waits for the socket to take the body's end"
    );
    assert_eq!(o.at("written").timeout_ms, ms(5000));
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.last().timeout_ms, None);
}

#[test]
fn continue_100_timeout_sends_the_body_anyway() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            Check("t=0"),
            Advance(999),
            Check("t=999"),
            Advance(1),
            Check("t=1000"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Check("finished"),
            WrittenAll,
            Check("written"),
            // A 100 after the timeout is only an interim response.
            ServerSends(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
        ],
    );
    assert_eq!(o.written(), format!("{POST5_EXPECT}hello"));
    assert_eq!(o.at("t=0").timeout_ms, ms(1000));
    let early = o.at("t=999");
    assert!(!early.may_send_body && early.is_sending);
    assert_eq!(
        early.timeout_ms,
        ms(1000),
        "an early handle_timeout changes nothing"
    );
    let fired = o.at("t=1000");
    assert!(fired.may_send_body);
    assert_eq!(fired.timeout_ms, None);
    assert_eq!(o.at("finished").timeout_ms, None);
    assert_eq!(
        o.at("written").timeout_ms,
        ms(6000),
        "head timeout counts from the body's end"
    );
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn final_status_before_continue_skips_the_body() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            WrittenAll,
            ServerSends(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
            Check("answered"),
            SendBody(b"hello"),
            FinishBody(&[]),
            Advance(2000),
        ],
    );
    assert_eq!(o.written(), POST5_EXPECT, "the body is never written");
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["> body Misuse", "> finish Misuse"]
    );
    let answered = o.at("answered");
    assert!(
        answered.complete && !answered.may_send_body && !answered.is_sending && !answered.reusable
    );
    assert_eq!(answered.timeout_ms, None, "continue deadline disarmed");
    assert_eq!(answered.verdict, Reuse::No(CloseReason::BodyNotSent));
    assert!(
        !o.last().may_send_body,
        "the continue timer must not release a skipped body"
    );
    assert_eq!(o.error(), None);
}

#[test]
fn final_413_with_body_before_continue_skips_the_body() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        ServerSends(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope"),
        SendBody(b"hello"),
    ]);
    assert_eq!(o.written(), POST5_EXPECT);
    assert!(o.log().contains(&"< data nope".to_string()));
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::BodyNotSent));
}

#[test]
fn early_413_while_sending_a_body_stops_it() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 10)),
            Check("started"),
            SendBody(b"hello"),
            WrittenAll,
            Check("half sent"),
            ServerSends(
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            Check("answered"),
            SendBody(b"world"),
            FinishBody(&[]),
        ],
    );
    assert_eq!(
        o.written(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"
    );
    let started = o.at("started");
    assert!(started.may_send_body);
    assert_eq!(
        started.timeout_ms, None,
        "no head timeout while the body is owed"
    );
    assert_eq!(o.at("half sent").timeout_ms, None);
    let answered = o.at("answered");
    assert!(answered.complete && !answered.may_send_body && !answered.reusable);
    assert_eq!(answered.verdict, Reuse::No(CloseReason::BodyNotSent));
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["> body Misuse", "> finish Misuse"]
    );
}

/// A sized body whose every byte went out before the answer, but whose
/// end (the caller's reader saying so) had not come yet: the request is
/// whole, so the answer leaves the connection reusable (it was closed as
/// "body not sent"), and the end, coming later, is refused as there is
/// nothing left to send.
#[test]
fn an_answer_after_the_last_byte_of_a_sized_body_keeps_the_connection() {
    let o = run(&[
        Start(post(b"/", 5)),
        SendBody(b"hello"),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Check("answered"),
        FinishBody(&[]),
    ]);
    assert_eq!(
        o.written(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    );
    let answered = o.at("answered");
    assert!(answered.complete && answered.reusable, "{answered:?}");
    assert_eq!(answered.verdict, Reuse::Yes);
    assert_eq!(o.log().last().map(String::as_str), Some("> finish Misuse"));
}

#[test]
fn abandon_while_waiting_for_continue_closes() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        Abandon,
        Check("abandoned"),
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("> abandon Close"));
    assert_eq!(o.at("abandoned").reuse, Reuse::No(CloseReason::Abandoned));
}

/// The wait for `100 Continue` starts when the socket took the head (as
/// Go's `ExpectContinueTimeout` does), not when the request was started:
/// a head that took a while to write does not shorten it.
#[test]
fn continue_wait_starts_when_the_head_is_written() {
    let o = run_with(
        head_timeout(5),
        &[
            Start(post(b"/", 5).expect()),
            Advance(3000),
            Check("slow head"),
            Written(10),
            Check("part"),
            WrittenAll,
            Check("written"),
            Advance(999),
            Check("t=3999"),
            Advance(1),
            Check("t=4000"),
        ],
    );
    assert_eq!(o.at("slow head").timeout_ms, None);
    assert_eq!(o.at("part").timeout_ms, None);
    assert_eq!(o.at("written").timeout_ms, ms(4000));
    assert!(!o.at("t=3999").may_send_body);
    assert!(
        o.at("t=4000").may_send_body,
        "released at the continue timeout"
    );
}

/// A complete answer that comes while the end of the request is still
/// unwritten (an adapter that reads before it has written all): the
/// connection is not reusable, since the rest would reach the server as
/// the start of the next request.
#[test]
fn an_answer_before_the_request_is_all_out_leaves_the_connection_unusable() {
    let o = run(&[
        Start(post(b"/", 5)),
        SendBody(b"hello"),
        FinishBody(&[]),
        Written(10),
        ServerSends(OK_HI),
        Check("answered"),
        Start(get(b"/next")),
        WrittenAll,
        Check("written"),
    ]);
    let answered = o.at("answered");
    assert!(answered.complete && !answered.reusable, "{answered:?}");
    assert_eq!(answered.verdict, Reuse::No(CloseReason::BodyNotSent));
    assert!(
        o.log().iter().any(|line| line == "> start Misuse"),
        "no next request before the tail: {:?}",
        o.log()
    );
    // Once the rest went out the exchange is whole again.
    assert!(o.at("written").reusable);
}
