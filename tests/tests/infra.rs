//! Self-tests of the test infrastructure: the scripted server and the real
//! server fixtures, driven by a raw `std::net::TcpStream` client (never the
//! roundtrip client, so a client bug cannot hide an infrastructure bug).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roundtrip_tests::fixtures::{chunked_text, pattern, skip_loudly};
use roundtrip_tests::server::{Request, ScriptServer, Step, chunked, ok, response};
use roundtrip_tests::{require_nginx, require_python};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the test server");
    s.set_read_timeout(Some(IO_TIMEOUT))
        .expect("set read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("set write timeout");
    s
}

fn read_to_end(mut s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read until EOF");
    out
}

/// A response as the raw test client read it.
#[derive(Debug)]
struct Resp {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("read a line");
    assert!(
        line.ends_with(b"\r\n"),
        "line not CRLF-terminated: {line:?}"
    );
    line.truncate(line.len() - 2);
    String::from_utf8(line).expect("UTF-8 line")
}

/// Reads one response: head, then a Content-Length, chunked or close-delimited
/// body. Good enough for the servers under test, not a general client.
fn read_response(r: &mut impl BufRead) -> Resp {
    let status_line = read_line(r);
    let mut headers = Vec::new();
    for _ in 0..100 {
        let line = read_line(r);
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').expect("field line with a colon");
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status_line,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        resp.chunked = true;
        for _ in 0..1_000_000 {
            let size = read_line(r);
            let size = usize::from_str_radix(size.split(';').next().expect("size").trim(), 16)
                .expect("hex size");
            if size == 0 {
                while !read_line(r).is_empty() {}
                return resp;
            }
            let start = resp.body.len();
            resp.body.resize(start + size, 0);
            r.read_exact(&mut resp.body[start..]).expect("chunk data");
            assert_eq!(read_line(r), "", "CRLF after chunk data");
        }
        panic!("too many chunks");
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().expect("numeric Content-Length");
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body).expect("Content-Length body");
    } else {
        r.read_to_end(&mut resp.body).expect("close-delimited body");
    }
    resp
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").into_bytes()
}

// ---------------------------------------------------------------------------
// Response helpers

#[test]
fn response_helpers_are_byte_exact() {
    assert_eq!(ok(b"hi"), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(
        chunked(&[b"abc", b"", b"0123456789abcdef"], &[("X-T", "1")]),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n"
    );
    assert_eq!(response(404, &[], b""), b"HTTP/1.1 404 Not Found\r\n\r\n");
    assert_eq!(
        response(299, &[("A", "b")], b"x"),
        b"HTTP/1.1 299 Status\r\nA: b\r\n\r\nx"
    );
}

// ---------------------------------------------------------------------------
// Script server

#[test]
fn read_request_with_content_length() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"done")),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    (&s).write_all(
        b"POST /up?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Sp:  v  \r\n\r\nhello",
    )
    .expect("send");
    assert_eq!(read_to_end(&s), ok(b"done"));
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.conn, &*r.method, &*r.target, &*r.version),
        (0, "POST", "/up?x=1", "HTTP/1.1")
    );
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("x-sp"), Some("v"));
    assert_eq!(r.body, b"hello");
    assert_eq!(
        r.raw_head,
        b"POST /up?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Sp:  v  \r\n\r\n"
    );
    assert_eq!(server.count_method("POST"), 1);
    assert_eq!(server.count_method("GET"), 0);
}

#[test]
fn read_request_chunked_with_trailers() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"")),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    let body =
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Check: yes\r\n\r\n";
    let mut req = b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(body);
    // Sent in two pieces to cross a read boundary inside a chunk.
    (&s).write_all(&req[..60]).expect("send");
    std::thread::sleep(Duration::from_millis(20));
    (&s).write_all(&req[60..]).expect("send");
    assert_eq!(read_to_end(&s), ok(b""));
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
    let r = &server.requests()[0];
    assert_eq!(r.body, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(r.trailers, vec![("X-Check".to_string(), "yes".to_string())]);
    assert_eq!(r.raw_body, body);
}

#[test]
fn read_head_and_body_around_100_continue() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadHead,
        Step::Write(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
        Step::ReadBody,
        Step::Write(ok(b"got it")),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    (&s).write_all(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    )
    .expect("send head");
    let mut interim = [0u8; 25];
    (&s).read_exact(&mut interim).expect("read 100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // The request is recorded at ReadHead, body still empty.
    assert_eq!(server.requests()[0].body, b"");
    (&s).write_all(b"abc").expect("send body");
    assert_eq!(read_to_end(&s), ok(b"got it"));
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
    assert_eq!(server.requests()[0].body, b"abc");
}

#[test]
fn write_slowly_sends_byte_by_byte() {
    let reply = ok(b"slow");
    let every = Duration::from_millis(3);
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::WriteSlowly {
            bytes: reply.clone(),
            every,
        },
        Step::Close,
    ]]);
    let s = connect(server.addr());
    (&s).write_all(&get("/", "")).expect("send");
    let start = Instant::now();
    let (mut got, mut reads) = (Vec::new(), 0);
    let mut buf = [0u8; 1024];
    for _ in 0..10_000 {
        let n = (&s).read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, reply);
    assert!(
        start.elapsed() >= every * reply.len() as u32,
        "too fast: {:?}",
        start.elapsed()
    );
    assert!(
        reads > reply.len() / 4,
        "bytes came in {reads} reads, not one by one"
    );
    server.assert_no_errors();
}

#[test]
fn close_gives_eof() {
    let server = ScriptServer::start(vec![vec![Step::Close]]);
    let s = connect(server.addr());
    let mut buf = [0u8; 16];
    assert_eq!((&s).read(&mut buf).expect("clean EOF, not an error"), 0);
    // Bytes the client sent before the close do not turn it into a reset.
    let server = ScriptServer::start(vec![vec![
        Step::Sleep(Duration::from_millis(50)),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    (&s).write_all(b"unread bytes").expect("send");
    assert_eq!((&s).read(&mut buf).expect("clean EOF, not a reset"), 0);
}

#[test]
fn reset_gives_econnreset() {
    let server = ScriptServer::start(vec![vec![Step::ReadRequest, Step::Reset]]);
    let s = connect(server.addr());
    (&s).write_all(&get("/", "")).expect("send");
    let mut buf = [0u8; 16];
    let err = (&s).read(&mut buf).expect_err("a reset, not data or EOF");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
}

#[test]
fn expect_eof_passes_on_close_and_flags_extra_bytes() {
    let server = ScriptServer::start(vec![vec![Step::ExpectEof], vec![Step::ExpectEof]]);
    let s = connect(server.addr());
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&s), b"");
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();

    let s = connect(server.addr());
    (&s).write_all(b"junk").expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&s), b"");
    assert!(server.wait_idle(IO_TIMEOUT));
    let errors = server.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].conn, 1);
    assert!(
        errors[0].message.contains("4 unexpected bytes"),
        "{}",
        errors[0]
    );
}

#[test]
fn expect_bytes_matches_exactly() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ExpectBytes(b"GET / HTTP/1.1\r\n".to_vec()),
            Step::Write(b"ok".to_vec()),
            Step::Close,
        ],
        vec![
            Step::ExpectBytes(b"GET / HTTP/1.1\r\n".to_vec()),
            Step::Write(b"ok".to_vec()),
        ],
    ]);
    let s = connect(server.addr());
    (&s).write_all(b"GET / HTTP/1.1\r\n").expect("send");
    assert_eq!(read_to_end(&s), b"ok");
    let s = connect(server.addr());
    (&s).write_all(b"GET /x HTTP/1.1\r\n").expect("send");
    assert_eq!(read_to_end(&s), b"");
    assert!(server.wait_idle(IO_TIMEOUT));
    let errors = server.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].message.contains("expected"), "{}", errors[0]);
}

#[test]
fn serve_answers_three_keep_alive_requests() {
    let handler = Arc::new(|r: &Request| ok(format!("{} {}", r.method, r.target).as_bytes()));
    let server = ScriptServer::start(vec![vec![Step::Serve(handler)]]);
    let s = connect(server.addr());
    let mut reader = BufReader::new(&s);
    for i in 0..3 {
        (&s).write_all(&get(&format!("/r{i}"), "")).expect("send");
        let resp = read_response(&mut reader);
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        assert_eq!(resp.body, format!("GET /r{i}").as_bytes());
    }
    s.shutdown(Shutdown::Write).expect("shutdown");
    assert!(
        server.wait_idle(IO_TIMEOUT),
        "Serve did not end when the client closed"
    );
    server.assert_no_errors();
    let reqs = server.requests();
    assert_eq!(
        reqs.iter()
            .map(|r| (r.conn, r.target.as_str()))
            .collect::<Vec<_>>(),
        [(0, "/r0"), (0, "/r1"), (0, "/r2")]
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn repeat_plays_steps_n_times_pipelined() {
    let server = ScriptServer::start(vec![vec![
        Step::Repeat(3, vec![Step::ReadRequest, Step::Write(ok(b"r"))]),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    let mut pipelined = get("/a", "");
    pipelined.extend(get("/b", ""));
    pipelined.extend(b"POST /c HTTP/1.1\r\nContent-Length: 1\r\n\r\nz");
    (&s).write_all(&pipelined).expect("send");
    assert_eq!(read_to_end(&s), [ok(b"r"), ok(b"r"), ok(b"r")].concat());
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.count_method("POST"), 1);
}

#[test]
fn accepted_counts_and_extra_connections_close_at_once() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"1")),
        Step::Close,
    ]]);
    let s = connect(server.addr());
    (&s).write_all(&get("/", "")).expect("send");
    assert_eq!(read_to_end(&s), ok(b"1"));
    for _ in 0..2 {
        let s = connect(server.addr());
        assert_eq!(
            read_to_end(&s),
            b"",
            "an unscripted connection is closed at once"
        );
    }
    assert_eq!(server.accepted(), 3);
    assert_eq!(server.unscripted(), 2);
}

#[test]
fn repeat_last_reuses_the_last_script() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"x")),
        Step::Close,
    ]])
    .repeat_last(true);
    for _ in 0..3 {
        let s = connect(server.addr());
        (&s).write_all(&get("/", "")).expect("send");
        assert_eq!(read_to_end(&s), ok(b"x"));
    }
    assert!(server.wait_idle(IO_TIMEOUT));
    server.assert_no_errors();
    assert_eq!(server.accepted(), 3);
    assert_eq!(server.unscripted(), 0);
    assert_eq!(
        server.requests().iter().map(|r| r.conn).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn garbage_and_silence_are_recorded_errors() {
    let server = ScriptServer::start(vec![vec![Step::ReadRequest], vec![Step::ReadRequest]])
        .read_timeout(Duration::from_millis(100));
    let s = connect(server.addr());
    (&s).write_all(b"NOT AN HTTP REQUEST LINE\r\n\r\n")
        .expect("send");
    assert_eq!(read_to_end(&s), b"");
    let silent = connect(server.addr());
    assert_eq!(
        read_to_end(&silent),
        b"",
        "the server gives up after its read timeout"
    );
    assert!(server.wait_idle(IO_TIMEOUT));
    let errors = server.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].message.contains("bad request line"),
        "{}",
        errors[0]
    );
    assert!(errors[1].message.contains("read timeout"), "{}", errors[1]);
    assert!(server.requests().is_empty());
}

#[test]
fn drop_is_bounded_with_a_stuck_connection() {
    let server = ScriptServer::start(vec![
        vec![Step::Sleep(Duration::from_secs(60))],
        vec![Step::ReadRequest],
    ]);
    let a = connect(server.addr());
    let b = connect(server.addr());
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.accepted() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        start.elapsed()
    );
    assert_eq!(read_to_end(&a), b"");
    assert_eq!(read_to_end(&b), b"");
}

// ---------------------------------------------------------------------------
// nginx

#[test]
fn nginx_serves_docroot_files() {
    let nginx = require_nginx!();
    let s = connect(nginx.addr());
    let mut reader = BufReader::new(&s);
    for (path, want) in [
        ("/small", b"Hello, world!".to_vec()),
        ("/64k", pattern(65536)),
        ("/1m", pattern(1 << 20)),
    ] {
        (&s).write_all(&get(path, "")).expect("send");
        let resp = read_response(&mut reader);
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK", "{path}");
        assert_eq!(
            resp.header("content-length"),
            Some(want.len().to_string().as_str()),
            "{path}"
        );
        assert_eq!(resp.header("connection"), Some("keep-alive"), "{path}");
        assert!(resp.body == want, "{path}: body differs");
    }
    // gzip makes /chunked chunked; without Accept-Encoding it has a length.
    (&s).write_all(&get("/chunked", "Accept-Encoding: gzip\r\n"))
        .expect("send");
    let resp = read_response(&mut reader);
    assert!(resp.chunked, "{resp:?}");
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert_eq!(&resp.body[..2], b"\x1f\x8b", "gzip magic");
    (&s).write_all(&get("/chunked", "")).expect("send");
    let resp = read_response(&mut reader);
    assert!(!resp.chunked && resp.body == chunked_text());
    if nginx.has_chunked_plain() {
        (&s).write_all(&get("/chunked-plain", "")).expect("send");
        let resp = read_response(&mut reader);
        assert!(resp.chunked, "{:?}", resp.headers);
        assert!(resp.body == chunked_text(), "/chunked-plain body differs");
    } else {
        skip_loudly("nginx has no ngx_http_sub_module: /chunked-plain not tested");
    }
}

#[test]
fn nginx_closes_after_100_requests_on_one_connection() {
    let nginx = require_nginx!();
    let s = connect(nginx.addr());
    let mut reader = BufReader::new(&s);
    for i in 1..=100 {
        (&s).write_all(&get("/small", "")).expect("send");
        let resp = read_response(&mut reader);
        assert_eq!(resp.body, b"Hello, world!");
        let want = if i == 100 { "close" } else { "keep-alive" };
        assert_eq!(resp.header("connection"), Some(want), "response {i}");
    }
    // The 101st request gets no answer: nginx closed after the 100th.
    let _ = (&s).write_all(&get("/small", ""));
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => assert_eq!(rest, b"", "no 101st response"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

// ---------------------------------------------------------------------------
// python3 -m http.server

#[test]
fn python_http_server_answers_http_1_0_and_closes() {
    let py = require_python!();
    for (path, want) in [
        ("/small", b"Hello, world!".to_vec()),
        ("/64k", pattern(65536)),
    ] {
        let s = connect(py.addr());
        (&s).write_all(&get(path, "Connection: keep-alive\r\n"))
            .expect("send");
        let mut reader = BufReader::new(&s);
        let resp = read_response(&mut reader);
        assert_eq!(resp.status_line, "HTTP/1.0 200 OK", "{path}");
        assert_eq!(
            resp.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        assert_eq!(resp.header("connection"), None, "{:?}", resp.headers);
        assert!(resp.body == want, "{path}: body differs");
        let mut rest = Vec::new();
        reader
            .read_to_end(&mut rest)
            .expect("EOF after the response");
        assert_eq!(rest, b"", "HTTP/1.0: connection closed after one response");
    }
}
