//! Unsolicited bytes and EOF, while idle and inside a response.

use super::*;

#[test]
fn unsolicited_byte_after_a_complete_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiX"),
    ]);
    assert_eq!(
        o.log()[o.log().len() - 2..],
        ["< end", "! UnsolicitedBytes { byte: 88 }"]
    );
    assert!(o.last().complete && !o.last().reusable);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::UnsolicitedBytes));
}

/// Whole, the response and `XYZ` arrive together; byte by byte, `X` alone
/// is seen first. The error names the first unsolicited byte either way.
#[test]
fn unsolicited_bytes_error_is_split_independent() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXYZ"),
    ]);
    assert_eq!(o.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
}

#[test]
fn unsolicited_byte_after_a_closing_response() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
        ServerSends(b"X"),
    ]);
    assert_eq!(o.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        o.last().verdict,
        Reuse::No(CloseReason::ServerClose),
        "first reason kept"
    );
}

#[test]
fn bytes_while_idle_are_unsolicited() {
    let fresh = run(&[ServerSends(b"X")]);
    assert_eq!(fresh.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        fresh.last().verdict,
        Reuse::No(CloseReason::UnsolicitedBytes)
    );
    assert!(
        !fresh.last().received_any,
        "no request, so no response byte"
    );

    let used = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
        Check("done"),
        ServerSends(b"X"),
    ]);
    assert!(used.at("done").reusable);
    assert_eq!(used.error(), Some(&Error::UnsolicitedBytes { byte: b'X' }));
    assert_eq!(
        used.last().verdict,
        Reuse::No(CloseReason::UnsolicitedBytes)
    );
    assert!(!used.last().reusable);
}

#[test]
fn eof_while_idle_means_peer_closed() {
    for script in [
        &[Eof][..],
        &[Start(get(b"/")), WrittenAll, ServerSends(OK_HI), Eof],
    ] {
        let o = run(script);
        assert_eq!(o.error(), None);
        assert!(!o.last().reusable);
        assert_eq!(o.last().verdict, Reuse::No(CloseReason::PeerClosed));
        assert_eq!(o.last().reuse, Reuse::No(CloseReason::PeerClosed));
    }
}

#[test]
fn eof_before_any_response_byte() {
    let o = run(&[Start(get(b"/")), WrittenAll, Eof]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Head,
            received: 0,
            expected: None
        })
    );
    assert!(o.last().wrote_any && !o.last().received_any);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert_eq!(o.retry(true, true, true), RetrySafety::IdempotentUnanswered);
}

#[test]
fn eof_inside_a_body() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe"),
        Eof,
    ]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Body,
            received: 2,
            expected: Some(5)
        })
    );
    assert!(!o.last().complete);
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert_eq!(o.retry(true, true, true), RetrySafety::ResponseStarted);
}

#[test]
fn bytes_after_eof_are_not_decoded() {
    // EOF with nothing buffered is an error, and it is sticky: bytes that
    // (impossibly) follow it are not decoded.
    let o = run(&[Start(get(b"/")), WrittenAll, Eof, ServerSends(OK_HI)]);
    assert_eq!(
        o.error(),
        Some(&Error::UnexpectedEof {
            phase: Phase::Head,
            received: 0,
            expected: None
        })
    );
    assert!(!o.last().reusable);
}

#[test]
fn invalid_response_is_a_sticky_error() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
        ServerSends(b"more"),
    ]);
    assert_eq!(
        o.error(),
        Some(&Error::InvalidFieldName {
            offset: 20,
            byte: b' '
        })
    );
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::Error));
    assert!(o.last().received_any);
}
