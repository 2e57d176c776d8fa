//! Keep-alive and close: when a connection may carry the next exchange.

use super::*;

#[test]
fn get_keep_alive_then_second_exchange_on_same_connection() {
    let o = run(&[
        Check("fresh"),
        Start(get(b"/a")),
        Check("started"),
        WrittenAll,
        Check("sent"),
        ServerSends(OK_HI),
        Check("first done"),
        Start(get(b"/b")),
        Check("second started"),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye"),
    ]);
    assert_eq!(
        o.written(),
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 2",
            "< head-end Length(2) Yes",
            "< data hi",
            "< end",
            "> start",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 3",
            "< head-end Length(3) Yes",
            "< data bye",
            "< end",
        ]
    );
    let fresh = o.at("fresh");
    assert!(fresh.idle && fresh.reusable && !fresh.complete && !fresh.wrote_any);
    let started = o.at("started");
    assert!(!started.idle && !started.reusable && !started.wrote_any && !started.is_sending);
    assert_eq!(
        started.verdict,
        Reuse::No(CloseReason::Abandoned),
        "mid-exchange a checkin would close"
    );
    let sent = o.at("sent");
    assert!(sent.wrote_any && !sent.received_any && !sent.complete);
    assert_eq!(sent.timeout_ms, None, "no response-head timeout configured");
    let first = o.at("first done");
    assert!(first.complete && first.reusable && first.received_any);
    assert_eq!(first.verdict, Reuse::Yes);
    let second = o.at("second started");
    assert!(
        !second.wrote_any && !second.received_any,
        "per-request facts reset on start"
    );
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn server_connection_close_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
        Check("done"),
        Eof,
        Check("closed"),
        Start(get(b"/again")),
    ]);
    let done = o.at("done");
    assert!(done.complete && !done.reusable);
    assert_eq!(done.reuse, Reuse::No(CloseReason::ServerClose));
    assert_eq!(done.verdict, Reuse::No(CloseReason::ServerClose));
    assert_eq!(
        o.at("closed").verdict,
        Reuse::No(CloseReason::ServerClose),
        "first reason kept"
    );
    assert_eq!(o.log().last().map(String::as_str), Some("> start Misuse"));
    assert_eq!(o.written(), GET_ROOT);
    assert_eq!(o.error(), None);
}

#[test]
fn client_close_is_not_reusable() {
    let o = run(&[
        Start(get(b"/").close()),
        Check("started"),
        WrittenAll,
        ServerSends(OK_HI),
        Check("done"),
    ]);
    assert_eq!(
        o.written(),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(o.at("started").reuse, Reuse::No(CloseReason::ClientClose));
    let done = o.at("done");
    assert!(done.complete && !done.reusable);
    assert_eq!(done.verdict, Reuse::No(CloseReason::ClientClose));
}

#[test]
fn http10_without_keep_alive_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
    ]);
    assert_eq!(o.log()[3], "< head-end Length(2) No(Http10)");
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Http10));
}

#[test]
fn http10_with_keep_alive_is_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"),
        Check("first"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"),
    ]);
    assert!(o.at("first").reusable);
    assert!(o.last().complete && o.last().reusable);
    assert_eq!(o.written(), GET_ROOT.repeat(2));
}

#[test]
fn close_delimited_body_ends_on_eof_and_is_not_reusable() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\n\r\nabc"),
        ServerSends(b"def"),
        Check("open"),
        Eof,
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 200 OK",
            "< head-end UntilClose No(ReadToClose)",
            "< data abcdef",
            "< end"
        ]
    );
    let open = o.at("open");
    assert!(!open.complete && !open.reusable);
    assert_eq!(open.reuse, Reuse::No(CloseReason::ReadToClose));
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ReadToClose));
    assert_eq!(o.error(), None);
}

#[test]
fn keep_alive_timeout_hint_is_reported_per_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n",
        ),
        Check("hinted"),
        Start(get(b"/")),
        Check("restarted"),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.at("hinted").keep_alive, Some(Duration::from_secs(5)));
    assert!(o.at("hinted").reusable);
    assert_eq!(o.at("restarted").keep_alive, None);
    assert_eq!(o.last().keep_alive, None);
}
