//! Misuse and request validation: errors that leave the connection usable.

use super::*;

#[test]
fn start_on_a_busy_or_closed_connection_is_misuse() {
    let o = run(&[
        Start(get(b"/a")),
        Start(get(b"/b")),
        WrittenAll,
        Start(get(b"/c")),
        ServerSends(OK_HI),
        Check("first done"),
        Start(post(b"/d", 2)),
        Start(get(b"/e")),
        SendBody(b"ok"),
        FinishBody(&[]),
        WrittenAll,
        Start(get(b"/f")),
        ServerSends(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        Start(get(b"/g")),
    ]);
    let starts: Vec<String> = o
        .log()
        .into_iter()
        .filter(|l| l.starts_with("> start"))
        .collect();
    assert_eq!(
        starts,
        [
            "> start",
            "> start Misuse",
            "> start Misuse",
            "> start",
            "> start Misuse",
            "> start Misuse",
            "> start Misuse"
        ]
    );
    assert_eq!(
        o.written(),
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
    );
    assert!(
        o.at("first done").reusable,
        "a refused start leaves the exchange alone"
    );
    assert_eq!(o.error(), None, "misuse is not a connection error");
    assert_eq!(o.last().verdict, Reuse::No(CloseReason::ServerClose));
}

#[test]
fn request_validation_error_leaves_the_connection_usable() {
    let o = run(&[
        Start(get(b"/a b")),
        Check("after bad target"),
        Start(get(b"/").fields(&[(b"X-Note", b"a\r\nContent-Length: 0")])),
        Start(get(b"/").fields(&[(b"Content-Length", b"0")])),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
        Start(req(b"G T", b"/")),
        Check("after bad method"),
        Start(get(b"/")),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    let starts: Vec<String> = o
        .log()
        .into_iter()
        .filter(|l| l.starts_with("> start"))
        .collect();
    assert_eq!(
        starts,
        [
            "> start InvalidTarget",
            "> start InvalidHeaderValue { index: 0 }",
            "> start FramingHeader { index: 0 }",
            "> start",
            "> start InvalidMethod",
            "> start",
        ]
    );
    assert_eq!(o.written(), GET_ROOT.repeat(2));
    let bad = o.at("after bad target");
    assert!(bad.idle && bad.reusable && !bad.is_sending);
    assert!(o.at("after bad method").reusable);
    assert!(o.last().reusable);
    assert_eq!(o.error(), None);
}

#[test]
fn body_calls_without_a_body_are_misuse() {
    let o = run(&[
        Start(get(b"/")),
        SendBody(b"x"),
        FinishBody(&[]),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(o.log()[1..3], ["> body Misuse", "> finish Misuse"]);
    assert_eq!(o.written(), GET_ROOT);
    assert!(o.last().reusable);
}

#[test]
fn body_length_mismatch_keeps_the_body_open() {
    let o = run(&[
        Start(post(b"/", 5)),
        SendBody(b"toolong"),
        SendBody(b"hel"),
        FinishBody(&[]),
        Check("short"),
        SendBody(b"lo"),
        FinishBody(&[]),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        o.log()[1..7],
        [
            "> body BodyLengthMismatch { declared: 5, supplied: 7 }",
            "> body",
            "> finish BodyLengthMismatch { declared: 5, supplied: 3 }",
            "> body",
            "> finish",
            "< HTTP/1.1 200 OK",
        ]
    );
    assert!(o.at("short").may_send_body);
    assert_eq!(
        o.written(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    );
    assert!(o.last().reusable);
}

/// RFC 9110 section 7.8: a server must send 100 before a 101 to a request
/// with `Expect: 100-continue`. When one does not, the body stays owed:
/// `Continue100` stays armed on the switched connection and, when it fires,
/// `may_send_body` turns true, so the adapter writes HTTP body bytes into the
/// stream that now belongs to the new protocol.
#[test]

fn switching_protocols_ends_a_body_still_owed() {
    let o = run(&[
        Start(
            post(b"/", 5)
                .expect()
                .fields(&[(b"Upgrade", b"h2c"), (b"Connection", b"Upgrade")]),
        ),
        WrittenAll,
        ServerSends(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        ),
        Check("switched"),
        Advance(1000),
        SendBody(b"hello"),
    ]);
    assert!(o.at("switched").switched);
    assert_eq!(
        o.at("switched").timeout_ms,
        None,
        "no deadline left on a switched connection"
    );
    assert!(!o.last().may_send_body && !o.last().is_sending);
    assert_eq!(o.log().last().map(String::as_str), Some("> body Misuse"));
}

#[test]
fn interim_103_does_not_release_an_expect_continue_body() {
    let o = run(&[
        Start(post(b"/", 5).expect()),
        WrittenAll,
        ServerSends(b"HTTP/1.1 103 Early Hints\r\n\r\n"),
        Check("hinted"),
    ]);
    assert!(!o.at("hinted").may_send_body && o.at("hinted").is_sending);
    assert_eq!(o.at("hinted").timeout_ms, ms(1000));
}

#[test]
fn start_while_draining_is_misuse() {
    let o = run(&[
        Start(get(b"/")),
        WrittenAll,
        ServerSends(TEN_PARTIAL),
        Abandon,
        Start(get(b"/")),
        ServerSends(b"lo worl"),
    ]);
    assert_eq!(o.log()[5..7], ["> abandon Drain", "> start Misuse"]);
    assert!(o.last().reusable);
}

#[test]
fn caller_connection_close_and_expect_fields_count_like_the_head_flags() {
    let close = run(&[
        Start(get(b"/").fields(&[(b"Connection", b"keep-alive, Close")])),
        WrittenAll,
        ServerSends(OK_HI),
    ]);
    assert_eq!(
        close.written(),
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n"
    );
    assert_eq!(close.last().verdict, Reuse::No(CloseReason::ClientClose));

    let expect = run(&[
        Start(post(b"/", 5).fields(&[(b"Expect", b"100-continue")])),
        Check("unwritten"),
        WrittenAll,
        Check("waiting"),
        ServerSends(b"HTTP/1.1 100 Continue\r\n\r\n"),
        Check("released"),
    ]);
    assert!(!expect.at("waiting").may_send_body && expect.at("waiting").is_sending);
    assert_eq!(
        expect.at("unwritten").timeout_ms,
        None,
        "the wait starts when the head is out"
    );
    assert_eq!(expect.at("waiting").timeout_ms, ms(1000));
    assert!(expect.at("released").may_send_body);
}

/// A caller that takes bytes from the front of the read buffer while a
/// head is reported (the contract is: only append) gets a sticky
/// `Misuse` error, not a panic or a field pointing at other bytes.
#[test]
fn taking_the_buffer_mid_head_is_misuse() {
    use roundtrip_proto::{Error, Event, ResponseDecoder};
    for share in [false, true] {
        let mut dec = ResponseDecoder::default();
        dec.share_heads(share);
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 2\r\n\r\nhi"[..]);
        assert!(matches!(
            dec.poll_event(&mut buf),
            Ok(Some(Event::Status(_)))
        ));
        buf.clear();
        let next = dec
            .poll_event(&mut buf)
            .map(|e| e.map(|e| format!("{e:?}")));
        if share {
            // The shared head was split off already: the fields are intact.
            assert_eq!(next, Ok(Some(r#"Field(Field("A", "1"))"#.to_string())));
        } else {
            assert!(matches!(next, Err(Error::Misuse(_))), "{next:?}");
            assert!(
                matches!(dec.poll_event(&mut buf), Err(Error::Misuse(_))),
                "sticky"
            );
        }
    }
}

/// What a preset block of fields asks counts as if its fields were passed
/// in turn: its `Connection: close` ends reuse, its `Expect: 100-continue`
/// holds the body back.
#[test]
fn preset_fields_ask_like_fields_in_turn() {
    use roundtrip_proto::encode::FieldBlock;
    let close = FieldBlock::new([(&b"Connection"[..], &b"close"[..])]).unwrap();
    let expect = FieldBlock::new([(&b"Expect"[..], &b"100-continue"[..])]).unwrap();
    let head = |preset| RequestHead {
        method: b"POST",
        target: b"/",
        host: Some(b"x"),
        body: BodyFraming::Length(2),
        preset: Some(preset),
        expect_continue: false,
        close: false,
    };
    let mut conn = Connection::new(ConnConfig::default());
    let mut out = Vec::new();
    conn.start(&head(&close), [], Instant::ZERO, &mut out)
        .unwrap();
    assert_eq!(conn.reuse(), Reuse::No(CloseReason::ClientClose));
    assert!(conn.may_send_body());
    assert_eq!(
        out,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
    );

    let mut conn = Connection::new(ConnConfig::default());
    conn.start(&head(&expect), [], Instant::ZERO, &mut Vec::new())
        .unwrap();
    assert!(conn.reuse().is_yes());
    assert!(!conn.may_send_body(), "the body waits for 100 Continue");
}

/// The server's close seen before the response was polled (its bytes were
/// all read) leaves the connection unusable: a next `start` is misuse,
/// as the doc says, not a request waiting for a head that cannot come.
#[test]
fn start_after_the_servers_close_is_misuse() {
    let head = RequestHead {
        method: b"GET",
        target: b"/",
        host: Some(b"x"),
        body: BodyFraming::None,
        preset: None,
        expect_continue: false,
        close: false,
    };
    let mut conn = Connection::new(ConnConfig::default());
    let (now, mut out) = (Instant::from_origin(Duration::ZERO), Vec::new());
    conn.start(&head, [], now, &mut out).unwrap();
    conn.handle_written(out.len(), now);
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..]);
    conn.handle_eof();
    let mut ended = false;
    for _ in 0..MAX_POLLS {
        match conn.poll_event(&mut buf).unwrap() {
            Some(Event::End) => ended = true,
            Some(_) => {}
            None => break,
        }
    }
    assert!(ended);
    assert!(!conn.is_reusable());
    let again = conn.start(&head, [], now, &mut out);
    assert!(matches!(again, Err(Error::Misuse(_))), "{again:?}");
}
