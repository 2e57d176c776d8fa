//! The exchange machine (`roundtrip_io::exchange::Exchange`) driven through
//! the simulator by arbitrary servers (bytes, early answers, delays,
//! closes, stalls, partial writes), requests (method, body kind, wrong
//! lengths, 100-continue), config (timeouts, redirects, drain bounds),
//! abandoned bodies and cancellation at any action. Checks after every
//! request: no panic; the machine never misuses itself (the simulator
//! reports an action out of place as an error); the pool's books are
//! balanced (nothing in use or dialing); a delivered head is there to
//! take, at its action or once the run ended; a request reached at most two
//! connections, and a non-idempotent one at most one; a body delivered
//! whole is as long as its single `Content-Length` says; a connection
//! checked in as reusable holds no unread or unsent bytes (checked by
//! the simulator at each release).
#![no_main]

use std::io::Cursor;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use roundtrip_io::exchange::sim::{Reply, Server, Sim};
use roundtrip_io::{Body, Config, Error};

#[derive(Arbitrary, Debug)]
enum Step {
    Send(Vec<u8>),
    Early(Vec<u8>),
    Ok(u8),
    Redirect(u8),
    Continue,
    DelayMs(u16),
    Close,
    Stall,
}

#[derive(Arbitrary, Debug)]
struct Script {
    steps: Vec<Step>,
    window: Option<u8>,
    black_hole: bool,
}

#[derive(Arbitrary, Debug)]
enum BodyKind {
    Empty,
    Bytes(Vec<u8>),
    Sized(Vec<u8>, u8),
    Chunked(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Request {
    post: bool,
    body: BodyKind,
    expect_continue: bool,
    read_limit: Option<u8>,
    cancel_after: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    read_timeout_ms: Option<u16>,
    write_timeout_ms: Option<u16>,
    head_timeout_ms: Option<u16>,
    total_ms: Option<u16>,
    max_redirects: u8,
    drain_ms: u16,
    max_drain: u16,
    stale_check_ms: u16,
    servers: Vec<Script>,
    requests: Vec<Request>,
}

fn reply(step: &Step) -> Reply {
    let ok = |n: u8| {
        let body = vec![b'x'; usize::from(n)];
        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        r.extend_from_slice(&body);
        r
    };
    match step {
        Step::Send(b) => Reply::Send(b.clone()),
        Step::Early(b) => Reply::Early(b.clone()),
        Step::Ok(n) => Reply::Send(ok(*n)),
        Step::Redirect(n) => Reply::Send(
            format!("HTTP/1.1 30{} R\r\nLocation: /r\r\nContent-Length: 0\r\n\r\n", n % 9)
                .into_bytes(),
        ),
        Step::Continue => Reply::Send(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Step::DelayMs(ms) => Reply::Delay(Duration::from_millis(u64::from(*ms))),
        Step::Close => Reply::Close,
        Step::Stall => Reply::Stall,
    }
}

fuzz_target!(|input: Input| {
    let ms = |v: Option<u16>| v.map(|m| Duration::from_millis(u64::from(m) + 1));
    let mut config = Config::default();
    config.gzip = false;
    config.read_timeout = ms(input.read_timeout_ms).or(Some(Duration::from_secs(30)));
    config.write_timeout = ms(input.write_timeout_ms).or(Some(Duration::from_secs(30)));
    config.response_head_timeout = ms(input.head_timeout_ms);
    config.timeout = ms(input.total_ms);
    config.max_redirects = usize::from(input.max_redirects % 4);
    config.stale_check_after = Duration::from_millis(u64::from(input.stale_check_ms));
    config.conn = config.conn.drain_timeout(Duration::from_millis(u64::from(input.drain_ms)));
    config.conn = config.conn.max_drain_bytes(u64::from(input.max_drain));
    let mut sim = Sim::new(config);
    for script in input.servers.iter().take(8) {
        if script.black_hole {
            sim.serve(Server::black_hole());
            continue;
        }
        let mut server = Server::new(script.steps.iter().take(16).map(reply));
        if let Some(w) = script.window {
            server = server.window(usize::from(w));
        }
        sim.serve(server);
    }
    for (i, req) in input.requests.iter().take(6).enumerate() {
        let target = format!("http://127.0.0.1/q{i}");
        let mut builder = if req.post {
            http::Request::post(&target)
        } else {
            http::Request::put(&target)
        };
        if req.expect_continue {
            builder = builder.header("expect", "100-continue");
        }
        let body = match &req.body {
            BodyKind::Empty => Body::empty(),
            BodyKind::Bytes(b) => Body::from(b.clone()),
            BodyKind::Sized(b, n) => Body::from_reader(Cursor::new(b.clone()), Some(u64::from(*n))),
            BodyKind::Chunked(b) => Body::from_reader(Cursor::new(b.clone()), None),
        };
        let Ok(request) = builder.body(body) else { continue };
        sim.read_limit = req.read_limit.map(usize::from);
        // Every other request takes its head only when the run ends, as the
        // async drivers may after a body that came whole (the input's
        // layout is kept: the regression inputs still mean what they did).
        sim.late_heads = i % 2 == 1;
        let before: Vec<usize> = sim.wire.iter().map(Vec::len).collect();
        let result = match req.cancel_after {
            Some(n) => sim.send_cancelled(request, usize::from(n)),
            None => sim.send(request),
        };
        if let Err(Error::InvalidRequest(e)) = &result {
            assert!(!format!("{e}").contains("misuse"), "the machine misused itself: {e}");
        }
        // A body delivered whole is as long as its Content-Length says.
        if let Ok(r) = &result {
            let code = r.status.as_u16();
            let bodied = !(100..200).contains(&code) && code != 204 && code != 304;
            let lengths: Vec<&[u8]> = r
                .headers
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            let chunked = r.headers.contains_key(http::header::TRANSFER_ENCODING);
            let declared = match lengths.as_slice() {
                [one] => std::str::from_utf8(one).ok().and_then(|t| t.parse::<usize>().ok()),
                _ => None,
            };
            let whole = bodied && !chunked && r.upgraded.is_none() && req.read_limit.is_none();
            if let (Some(n), true) = (declared, whole) {
                assert_eq!(r.body.len(), n, "request {i}: a {code} with Content-Length {n}");
            }
        }
        let stats = sim.stats();
        assert_eq!((stats.in_use, stats.dialing), (0, 0), "request {i}: {stats:?} {:?}", sim.actions);
        // Where the request's head went: at most twice, once for a POST.
        let head = format!(" /q{i} HTTP/1.1\r\n");
        let sent = sim
            .wire
            .iter()
            .enumerate()
            .filter(|(c, w)| {
                let from = before.get(*c).copied().unwrap_or(0);
                w[from..].windows(head.len()).any(|x| x == head.as_bytes())
            })
            .count();
        assert!(sent <= if req.post { 1 } else { 2 }, "request {i} sent {sent} times");
    }
});
