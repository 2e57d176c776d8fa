//! Bodiless responses, chunked bodies, interim responses, switching protocols.

use super::*;

#[test]
fn head_response_with_content_length_has_no_body() {
    let o = run(&[
        Start(req(b"HEAD", b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        Check("head done"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.written(),
        format!("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n{GET_ROOT}")
    );
    assert_eq!(
        o.log()[1..5],
        [
            "< HTTP/1.1 200 OK",
            "< Content-Length: 10",
            "< head-end NoBody Yes",
            "< end"
        ]
    );
    assert!(o.at("head done").complete && o.at("head done").reusable);
    assert!(o.last().reusable);
    assert_eq!(
        o.log()[9],
        "< data hi",
        "the GET after HEAD reads its own body"
    );
}

#[test]
fn status_204_and_304_have_no_body() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Check("204"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 204 No Content",
            "< head-end NoBody Yes",
            "< end",
            "> start",
            "< HTTP/1.1 304 Not Modified",
            "< Content-Length: 5",
            "< head-end NoBody Yes",
            "< end",
        ]
    );
    assert!(o.at("204").reusable);
    assert!(o.last().reusable);
}

#[test]
fn chunked_request_and_response_with_trailers() {
    let o = run(&[
        Start(post(b"/up", 0).body(BodyFraming::Chunked)),
        Check("started"),
        SendBody(b"hello"),
        SendBody(b""),
        SendBody(b"!"),
        FinishBody(&[(b"Digest", b"sha-256=:x:")]),
        Check("finished"),
        SendBody(b"late"),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n\
              3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nExpires: never\r\n\r\n",
        ),
    ]);
    assert_eq!(
        o.written(),
        "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n1\r\n!\r\n0\r\nDigest: sha-256=:x:\r\n\r\n"
    );
    assert_eq!(
        o.log(),
        [
            "> start",
            "> body",
            "> body",
            "> body",
            "> finish",
            "> body Misuse",
            "< HTTP/1.1 200 OK",
            "< Transfer-Encoding: chunked",
            "< Trailer: Expires",
            "< head-end Chunked Yes",
            "< data abcde",
            "< trailer Expires: never",
            "< end",
        ]
    );
    assert!(o.at("started").may_send_body);
    assert!(!o.at("finished").may_send_body && !o.at("finished").is_sending);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn interim_103_before_final_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"),
        Check("hinted"),
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log(),
        [
            "> start",
            "< HTTP/1.1 103 Early Hints",
            "< Link: </a.css>; rel=preload",
            "< interim-end",
            "< HTTP/1.1 200 OK",
            "< Content-Length: 2",
            "< head-end Length(2) Yes",
            "< data hi",
            "< end",
        ]
    );
    assert!(!o.at("hinted").complete && o.at("hinted").received_any);
    assert!(o.last().complete && o.last().reusable);
}

#[test]
fn switching_protocols_leaves_leftover_bytes_to_the_caller() {
    let o = run(&[
        Start(get(b"/chat").fields(&[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])),
        WrittenAll,
        ServerSends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"),
        Check("switched"),
        ServerSends(b"more"),
    ]);
    assert_eq!(
        o.written(),
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    );
    assert_eq!(o.log()[4], "< head-end Switched No(Switched)");
    assert_eq!(o.obs.leftover, b"\x81\x02himore");
    assert!(o.conn.is_switched());
    let s = o.at("switched");
    assert!(s.switched && !s.complete && !s.reusable && !s.is_sending);
    assert_eq!(s.verdict, Reuse::No(CloseReason::Switched));
    assert_eq!(s.timeout_ms, None);
    assert_eq!(
        o.error(),
        None,
        "bytes after the switch are not HTTP's business"
    );
}

#[test]
fn connect_2xx_switches_too() {
    let o = run(&[
        Start(req(b"CONNECT", b"example.com:443")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01"),
    ]);
    assert_eq!(
        o.written(),
        "CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    assert!(o.last().switched && !o.last().reusable);
    assert_eq!(o.obs.leftover, b"\x16\x03\x01");
}

/// `ResponseDecoder` documents `Switched` as the event that follows the head
/// of a 101; `Connection::poll_event` returns `Ok(None)` in `Recv::Switched`
/// before asking the decoder, so a caller of the connection never sees it.
#[test]

fn switching_protocols_reports_switched_event() {
    let o = run(&[
        Start(get(b"/chat").fields(&[(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])),
        WrittenAll,
        ServerSends(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    ]);
    assert_eq!(o.log().last().map(String::as_str), Some("< switched"));
}
