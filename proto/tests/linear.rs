//! The largest heads: a head just under the default `max_head_bytes` fed one
//! byte at a time gives the same events as fed whole (the scanner resumes
//! where it stopped, so this stays cheap; the work itself is counted
//! elsewhere, nothing here is timed), and the limit is exact: 65,536 bytes
//! pass, 65,537 do not.

use bytes::BytesMut;
use roundtrip_proto::{Error, Event, Framing, Limits, ResponseDecoder};

const MAX: usize = 65_536;
const BODY: &[u8] = b"hello";

/// A valid head of exactly `len` bytes (status line, `Content-Length: 5`,
/// long `X-Fill-n` fields, blank line), followed by a 5-byte body.
fn response_with_head_of(len: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n".to_vec();
    let mut n = 0;
    // Lines of about 1,000 bytes keep the field count well under 128.
    while len - out.len() - 2 > 2_000 {
        push_field(&mut out, n, 1_000);
        n += 1;
    }
    let last = len - out.len() - 2;
    push_field(&mut out, n, last);
    out.extend_from_slice(b"\r\n");
    assert_eq!(out.len(), len);
    out.extend_from_slice(BODY);
    out
}

/// Appends a field line of exactly `line_len` bytes, CRLF included.
fn push_field(out: &mut Vec<u8>, n: usize, line_len: usize) {
    let name = format!("X-Fill-{n}: ");
    let value_len = line_len - name.len() - 2;
    out.extend_from_slice(name.as_bytes());
    // A value with inner spaces and obs-text, but none at the ends.
    out.extend((0..value_len).map(|i| match i % 7 {
        _ if i == 0 || i + 1 == value_len => b'v',
        3 => b' ',
        5 => 0xe9,
        _ => b'a' + (i % 26) as u8,
    }));
    out.extend_from_slice(b"\r\n");
}

/// Events as owned, comparable values; consecutive `Data` merged.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Status(u16, Vec<u8>),
    Field(Vec<u8>, Vec<u8>),
    HeadEnd(Framing),
    Data(Vec<u8>),
    End,
    Other(String),
}

/// Feeds `input` in pieces of `step` bytes, then EOF; returns the events
/// and the error, if any. Every poll counts against a bound.
fn feed(input: &[u8], step: usize, limits: Limits) -> (Vec<Ev>, Option<Error>) {
    let mut dec = ResponseDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut budget = 3 * input.len() + 64;
    let mut pieces = input.chunks(step).peekable();
    loop {
        let last = pieces.peek().is_none();
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None => dec.handle_eof(),
        }
        loop {
            budget = budget.checked_sub(1).expect("decoder livelock");
            let event = match dec.poll_event(&mut buf) {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(dec.poll_event(&mut buf), Err(e.clone()), "sticky");
                    return (events, Some(e));
                }
            };
            let ev = match event {
                Event::Status(s) => Ev::Status(s.code, s.reason.to_vec()),
                Event::Field(f) => Ev::Field(f.name().to_vec(), f.value().to_vec()),
                Event::HeadEnd(h) => Ev::HeadEnd(h.framing),
                Event::Data(d) => {
                    if let Some(Ev::Data(prev)) = events.last_mut() {
                        prev.extend_from_slice(&d);
                        continue;
                    }
                    Ev::Data(d.to_vec())
                }
                Event::End => Ev::End,
                other => Ev::Other(format!("{other:?}")),
            };
            events.push(ev);
        }
        if last {
            return (events, None);
        }
    }
}

/// Checks the events of a complete `response_with_head_of` response.
fn assert_complete(input: &[u8], events: &[Ev]) {
    let fields = events.len() - 5; // Status, HeadEnd, Data, End, Content-Length
    assert!(fields < 128, "{fields} fields");
    assert_eq!(events[0], Ev::Status(200, b"OK".to_vec()));
    assert_eq!(
        events[1],
        Ev::Field(b"Content-Length".to_vec(), b"5".to_vec())
    );
    let value_bytes: usize = events[2..2 + fields]
        .iter()
        .map(|e| match e {
            Ev::Field(name, value) => {
                assert!(name.starts_with(b"X-Fill-"));
                name.len() + 4 + value.len()
            }
            other => panic!("expected a field, got {other:?}"),
        })
        .sum();
    // Every field byte reported: status line, CL line, fields, blank line.
    assert_eq!(17 + 19 + value_bytes + 2 + BODY.len(), input.len());
    assert_eq!(
        &events[2 + fields..],
        [
            Ev::HeadEnd(Framing::Length(5)),
            Ev::Data(BODY.to_vec()),
            Ev::End
        ]
    );
}

#[test]
fn head_just_under_the_limit_byte_by_byte_equals_whole() {
    let input = response_with_head_of(MAX - 100);
    let whole = feed(&input, input.len(), Limits::default());
    assert_eq!(whole.1, None);
    assert_complete(&input, &whole.0);
    let bytewise = feed(&input, 1, Limits::default());
    assert_eq!(bytewise, whole);
}

#[test]
fn head_of_exactly_the_limit_is_accepted() {
    let input = response_with_head_of(MAX);
    assert_eq!(Limits::default().max_head_bytes, MAX);
    for step in [input.len(), 1, 4096, 65_535] {
        let (events, error) = feed(&input, step, Limits::default());
        assert_eq!(error, None, "step {step}");
        assert_complete(&input, &events);
    }
}

#[test]
fn head_one_byte_over_the_limit_is_refused() {
    let input = response_with_head_of(MAX + 1);
    for step in [input.len(), 1, 4096, 65_535, 65_536] {
        let (events, error) = feed(&input, step, Limits::default());
        assert_eq!(events, [], "step {step}");
        assert_eq!(
            error,
            Some(Error::HeadTooLarge { limit: MAX }),
            "step {step}"
        );
    }
    // Explicitly set, the same limit gives the same verdicts.
    let limits = Limits::default().max_head_bytes(MAX);
    assert_eq!(
        feed(&input, 1, limits).1,
        Some(Error::HeadTooLarge { limit: MAX })
    );
    let exact = response_with_head_of(MAX);
    assert_eq!(feed(&exact, 1, limits).1, None);
}

/// A head of obs-fold continuation lines costs work linear in its length:
/// each line is looked at by itself, never with the rest of the window
/// after it (a search for a colon that a continuation has not made each
/// line scan the head to its end: 350,000 lines of a 1 MiB head, about
/// 10^11 byte reads, minutes where this takes milliseconds). The test
/// runs on a thread with a deadline, far above the linear cost, so that
/// the quadratic cost fails it instead of hanging.
#[test]
fn obs_fold_lines_cost_linear_work() {
    const HEAD: usize = 1 << 20;
    let mut input = b"HTTP/1.1 200 OK\r\nA: b\r\n".to_vec();
    while input.len() + 3 + 21 <= HEAD - 64 {
        input.extend_from_slice(b" \r\n");
    }
    input.extend_from_slice(b"Content-Length: 5\r\n\r\nhello");
    let limits = Limits::default().max_head_bytes(HEAD);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(feed(&input, input.len(), limits));
    });
    let (events, error) = result
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a 1 MiB head of continuation lines decoded within 30 s");
    assert_eq!(error, None);
    assert_eq!(events[1], Ev::Field(b"A".to_vec(), b"b".to_vec()));
    assert_eq!(events.last(), Some(&Ev::End));
}
