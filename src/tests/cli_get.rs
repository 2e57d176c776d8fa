//! `roundtrip get`, run as a real process against loopback servers started
//! here: [`roundtrip::origin`] where any answer does, and a small scripted
//! server ([`Script`]) that records each request and answers as the test
//! says (redirects, stalls, broken responses). Loopback only.
//!
//! Like `cli_parse`, this is a `[[test]]` of the root package so that it gets
//! `CARGO_BIN_EXE_roundtrip`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What a run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `roundtrip get` with `args`.
fn get(args: &[&str]) -> Run {
    get_with_stdin(args, b"")
}

/// Runs `roundtrip get` with `args`, `input` on stdin.
fn get_with_stdin(args: &[&str], input: &[u8]) -> Run {
    get_in(None, args, input)
}

/// Runs `roundtrip get` with `args`, `input` on stdin, in `dir` (or this
/// process's directory).
fn get_in(dir: Option<&std::path::Path>, args: &[&str], input: &[u8]) -> Run {
    let mut command = roundtrip();
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command
        .arg("get")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the roundtrip binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("the roundtrip binary runs");
    writer.join().expect("the stdin writer does not panic");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// The environment variables that choose proxies.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The binary, without the machine's proxy settings (they are not the
/// test's).
fn roundtrip() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roundtrip"));
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    command
}

/// Starts `roundtrip get` with `args` in `dir`, its standard streams
/// closed, for a test that watches or kills it while it runs.
fn spawn_get_in(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut command = roundtrip();
    command.current_dir(dir).arg("get").args(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().expect("the roundtrip binary starts")
}

/// Every backend's name for `--backend`.
const BACKENDS: [&str; 4] = ["blocking", "mio", "tokio", "smol"];

/// One request as the scripted server received it.
#[derive(Clone, Debug)]
struct Seen {
    /// The head, with CRLFs, through the blank line.
    head: String,
    body: Vec<u8>,
}

impl Seen {
    /// The request line, e.g. `GET / HTTP/1.1`.
    fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    /// The path of the request line.
    fn path(&self) -> &str {
        self.line().split(' ').nth(1).unwrap_or("")
    }

    /// The value of field `name` (case-insensitive), if sent.
    fn field(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// How the scripted server answers one request.
enum Reply {
    /// These bytes; the connection stays open for the next request.
    Send(Vec<u8>),
    /// Nothing, until the client gives up and closes.
    Stall,
    /// These bytes after a pause.
    Later(Duration, Vec<u8>),
    /// These bytes, then the connection closed.
    Close(Vec<u8>),
}

/// A reply with status line `status`, extra `fields` (`Name: value\r\n`
/// each) and `body`, framed by `Content-Length`.
fn reply(status: &str, fields: &str, body: &str) -> Reply {
    Reply::Send(
        format!(
            "HTTP/1.1 {status}\r\n{fields}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

type Answer = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A loopback server that answers each request with what the test's
/// function returns for it, keeping connections open between requests.
struct Script {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    conns: Arc<AtomicUsize>,
}

impl Script {
    fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Script {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        Script::on(listener, answer)
    }

    fn on(
        listener: TcpListener,
        answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Script {
        let addr = listener.local_addr().expect("a bound address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        let (seen2, conns2) = (Arc::clone(&seen), Arc::clone(&conns));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                conns2.fetch_add(1, Ordering::SeqCst);
                let (seen, answer) = (Arc::clone(&seen2), Arc::clone(&answer));
                thread::spawn(move || serve(stream, &seen, &*answer));
            }
        });
        Script { addr, seen, conns }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

/// Reads requests (head, then a `Content-Length` body) and answers each.
fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, answer: &Answer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded by the client: each pass reads or returns.
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        let mut request = Seen {
            head,
            body: Vec::new(),
        };
        let len: usize = request
            .field("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        request.body = buf[end + 4..end + 4 + len].to_vec();
        buf.drain(..end + 4 + len);
        seen.lock().expect("not poisoned").push(request.clone());
        match answer(&request) {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Later(pause, bytes) => {
                thread::sleep(pause);
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Reply::Stall => {
                // Hold the connection until the client closes it.
                while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

/// A loopback port with nothing listening (bound, then released).
fn refused_url() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    drop(listener);
    format!("http://{addr}/")
}

/// `hello, world` in two chunks, whatever the request.
fn hello() -> Script {
    Script::start(|_| {
        Reply::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
                .to_vec(),
        )
    })
}

#[test]
fn body_to_stdout_exactly_on_every_backend() {
    let server = hello();
    for backend in BACKENDS {
        let run = get(&["--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (Some(0), "hello, world", ""),
            "{backend}"
        );
    }
}

#[test]
fn output_file_gets_every_body() {
    let server = hello();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_get-output");
    let path_arg = path.to_str().expect("the temp path is UTF-8");
    let run = get(&["-o", path_arg, &server.url("/1"), &server.url("/2")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), ""),
        "{}",
        run.stderr
    );
    let written = std::fs::read_to_string(&path).expect("the output file exists");
    assert_eq!(written, "hello, worldhello, world");
}

/// `-O`: each body to a file named as its URL's last path segment, in
/// the current directory; a URL that names no file is refused before any
/// request; `-O` with `-o` is refused.
#[test]
fn remote_name_writes_each_body_to_its_own_file() {
    let server = hello();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_get-remote-name");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let urls = [server.url("/a/first.txt?x=1"), server.url("/second")];
    let run = get_in(Some(&dir), &["-O", &urls[0], &urls[1]], b"");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), ""),
        "{}",
        run.stderr
    );
    for name in ["first.txt", "second"] {
        let written = std::fs::read_to_string(dir.join(name)).expect(name);
        assert_eq!(written, "hello, world", "{name}");
    }
    for url in [server.url("/dir/"), server.url("/a/.."), server.url("")] {
        let run = get_in(Some(&dir), &["-O", &urls[1], &url], b"");
        assert_eq!(run.code, Some(2), "{url}: {}", run.stderr);
        assert!(run.stderr.contains("names no file"), "{}", run.stderr);
    }
    let run = get_in(Some(&dir), &["-O", "-o", "x", &urls[1]], b"");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    // The two runs above that fetched: none of the refused ones sent a request.
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn unwritable_output_exits_2_before_any_request() {
    let server = hello();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_get-no-such-dir/out");
    let run = get(&[
        "-o",
        path.to_str().expect("the temp path is UTF-8"),
        &server.url("/"),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.starts_with("roundtrip: cannot create "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(server.conns(), 0);
}

#[test]
fn two_urls_reuse_one_connection_on_every_backend() {
    for backend in BACKENDS {
        let server = Script::start(|seen| reply("200 OK", "", seen.path()));
        let run = get(&[
            "-v",
            "--backend",
            backend,
            &server.url("/one"),
            &server.url("/two"),
        ]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "/one/two"),
            "{backend}: {}",
            run.stderr
        );
        assert_eq!(server.conns(), 1, "{backend}");
        let trace = |text: &str| run.stderr.lines().filter(|l| l.contains(text)).count();
        assert_eq!(trace("ms got new conn#1"), 1, "{backend}: {}", run.stderr);
        assert_eq!(trace("ms got idle conn#1"), 1, "{backend}: {}", run.stderr);
        assert!(
            run.stderr.ends_with("* pool: 1 dialed, 1 reused, 1 idle\n"),
            "{backend}: {}",
            run.stderr
        );
    }
}

#[test]
fn verbose_shows_both_heads_and_the_trace_on_every_backend() {
    for backend in BACKENDS {
        let server = Script::start(|_| reply("200 OK", "X-Served: yes\r\n", "hello"));
        let run = get(&["-v", "--backend", backend, &server.url("/path?q=1")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "hello"),
            "{backend}"
        );
        let lines: Vec<&str> = run.stderr.lines().collect();
        let at = |want: &str| {
            lines
                .iter()
                .position(|l| *l == want)
                .unwrap_or_else(|| panic!("{backend}: no line {want:?} in\n{}", run.stderr))
        };
        let request = at("> GET /path?q=1 HTTP/1.1");
        assert_eq!(lines[request + 1], format!("> Host: {}", server.addr));
        let response = at("< HTTP/1.1 200 OK");
        assert!(request < response, "{backend}");
        at("< x-served: yes");
        at("< content-length: 5");
        // What the server received is what `>` showed.
        let seen = &server.seen()[0];
        let shown: Vec<String> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("> "))
            .map(str::to_string)
            .collect();
        let sent: Vec<&str> = seen.head.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(shown, sent, "{backend}");
        // Trace lines carry their time since the request started.
        for event in [
            "get connection to",
            "connected to",
            "got new conn#1",
            "wrote request",
            "got first response byte",
            "put conn#1 back, kept",
            "done: 5 body bytes",
        ] {
            let line = lines
                .iter()
                .find(|l| l.contains(event))
                .unwrap_or_else(|| panic!("{backend}: no {event:?} in\n{}", run.stderr));
            let time = line
                .strip_prefix("* +")
                .and_then(|rest| rest.split_once("ms "))
                .map(|(ms, _)| ms);
            assert!(
                time.is_some_and(|ms| ms.parse::<f64>().is_ok()),
                "{backend}: {line}"
            );
        }
    }
}

#[test]
fn method_data_and_headers_reach_the_server() {
    let server = Script::start(|_| reply("201 Created", "", "made"));
    let run = get(&[
        "-X",
        "PUT",
        "-d",
        "hello",
        "-H",
        "X-Test: 1",
        "-H",
        "Content-Type:text/plain",
        &server.url("/item"),
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "made"),
        "{}",
        run.stderr
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.line(), "PUT /item HTTP/1.1");
    assert_eq!(seen.field("x-test"), Some("1"));
    assert_eq!(seen.field("content-type"), Some("text/plain"));
    assert_eq!(seen.field("content-length"), Some("5"));
    assert_eq!(seen.body, b"hello");

    // -d alone means POST, as in curl.
    let run = get(&["-d", "a=1", &server.url("/form")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let seen = &server.seen()[1];
    assert_eq!(seen.line(), "POST /form HTTP/1.1");
    assert_eq!(seen.body, b"a=1");
}

#[test]
fn bad_arguments_exit_2_without_a_request() {
    let server = hello();
    for args in [
        &["-H", "no colon here"][..],
        &["-H", "Bad Name: x"],
        &["-X", "GE T"],
        &["-H", "Content-Length: 9"],
    ] {
        let mut all = args.to_vec();
        let url = server.url("/");
        all.push(&url);
        let run = get(&all);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("roundtrip: "),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
    }
    // clap checks the timeout, with its own usage message.
    let run = get(&["--timeout=-1", &server.url("/")]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("the timeout must be 0 or more seconds"),
        "{}",
        run.stderr
    );
    let run = get(&["ftp://127.0.0.1/"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "roundtrip: ftp://127.0.0.1/: invalid request: unsupported uri scheme \"ftp\"\n"
    );
    assert_eq!(server.conns(), 0);
}

/// `/a` and `/loop` redirect (302, to `/b` and to itself), `/see` answers a
/// 303 to `/b`, `/b` says `done`.
fn redirects() -> Script {
    Script::start(|seen| match seen.path() {
        "/a" => reply("302 Found", "Location: /b\r\n", "moved"),
        "/see" => reply("303 See Other", "Location: /b\r\n", ""),
        "/loop" => reply("302 Found", "Location: /loop\r\n", ""),
        _ => reply("200 OK", "", "done"),
    })
}

#[test]
fn redirect_is_followed_and_shown() {
    for backend in BACKENDS {
        let server = redirects();
        let run = get(&["-v", "--backend", backend, &server.url("/a")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "done"),
            "{backend}: {}",
            run.stderr
        );
        let paths: Vec<String> = server.seen().iter().map(|s| s.path().to_string()).collect();
        assert_eq!(paths, ["/a", "/b"], "{backend}");
        // The small redirect body was drained: one connection served both.
        assert_eq!(server.conns(), 1, "{backend}");
        for want in [
            format!("ms redirect 302 Found to {} (GET)", server.url("/b")),
            "> GET /b HTTP/1.1".to_string(),
            format!("ms redirects: {} -> {}", server.url("/a"), server.url("/b")),
        ] {
            assert!(
                run.stderr.lines().any(|l| l.contains(&want)),
                "{backend}: no {want:?} in\n{}",
                run.stderr
            );
        }
    }
}

/// A password in the URL shows as `***` in error lines and in `-v`'s
/// redirect log (the `Authorization` it makes is shown as sent).
#[test]
fn passwords_in_urls_are_not_printed() {
    let run = get(&["http://user:secret@127.0.0.1:99999/"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("user:***@127.0.0.1:99999"),
        "{}",
        run.stderr
    );
    let server = redirects();
    let url = server
        .url("/loop")
        .replace("http://", "http://user:secret@");
    let run = get(&["-v", "--max-redirects", "2", &url]);
    assert_eq!(run.code, Some(47), "{}", run.stderr);
    let shown = run.stderr.replace("Basic dXNlcjpzZWNyZXQ=", "");
    assert!(!shown.contains("secret"), "{}", run.stderr);
    assert!(shown.contains("user:***@"), "{}", run.stderr);
}

#[test]
fn post_through_303_becomes_get_without_body() {
    let server = redirects();
    let run = get(&["-v", "-d", "x=1", &server.url("/see")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "done"),
        "{}",
        run.stderr
    );
    let seen = server.seen();
    assert_eq!(seen[0].line(), "POST /see HTTP/1.1");
    assert_eq!(seen[1].line(), "GET /b HTTP/1.1");
    assert_eq!(seen[1].field("content-length"), None);
    // The `>` lines of the second hop are what was sent.
    let second_hop: Vec<&str> = run
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("> GET /b"))
        .take_while(|l| l.starts_with("> "))
        .collect();
    let sent: Vec<String> = seen[1]
        .head
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("> {l}"))
        .collect();
    assert_eq!(second_hop, sent);
}

#[test]
fn max_redirects_0_returns_the_redirect_itself() {
    let server = redirects();
    let run = get(&["--max-redirects", "0", &server.url("/a")]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "moved", "")
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn too_many_redirects_exit_47() {
    let server = redirects();
    let run = get(&["--max-redirects", "2", &server.url("/loop")]);
    assert_eq!(run.code, Some(47));
    assert_eq!(
        run.stderr,
        format!(
            "roundtrip: stopped after 2 redirects (last {})\n",
            server.url("/loop")
        )
    );
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn non_2xx_is_an_answer_not_an_error() {
    let server = Script::start(|_| reply("404 Not Found", "", "nope"));
    let run = get(&[&server.url("/missing")]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "nope", "")
    );
}

#[test]
fn connection_refused_is_one_line_and_exit_7_on_every_backend() {
    let server = hello();
    for backend in BACKENDS {
        let refused = refused_url();
        let addr = refused.trim_start_matches("http://").trim_end_matches('/');
        // The run stops at the first failure: the last URL is never asked.
        let run = get(&[
            "--backend",
            backend,
            &server.url("/"),
            &refused,
            &server.url("/"),
        ]);
        assert_eq!(run.code, Some(7), "{backend}");
        assert_eq!(run.stdout, "hello, world", "{backend}");
        let prefix = format!("roundtrip: connecting to {addr} failed: ");
        assert!(run.stderr.starts_with(&prefix), "{backend}: {}", run.stderr);
        assert!(
            run.stderr.to_lowercase().contains("refused"),
            "{backend}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{backend}: {}", run.stderr);
    }
    assert_eq!(server.seen().len(), BACKENDS.len());
}

#[test]
fn timeout_names_the_phase_on_every_backend() {
    let server = Script::start(|_| Reply::Stall);
    for backend in BACKENDS {
        let started = std::time::Instant::now();
        let run = get(&["--backend", backend, "--timeout", "0.3", &server.url("/")]);
        assert_eq!(run.code, Some(28), "{backend}");
        assert_eq!(
            run.stderr,
            "roundtrip: response head timed out: the request's timeout passed (the request may have reached the server)\n",
            "{backend}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{backend}");
    }
}

/// A server that closes without an answer is curl's 52 ("empty reply"),
/// one that cuts its body 18 ("partial file").
#[test]
fn a_close_exits_as_curl_does() {
    let empty = Script::start(|_| Reply::Close(Vec::new()));
    let cut = Script::start(|_| {
        Reply::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc".to_vec())
    });
    for backend in BACKENDS {
        let run = get(&["--backend", backend, &empty.url("/")]);
        assert_eq!(run.code, Some(52), "{backend}: {}", run.stderr);
        let run = get(&["--backend", backend, &cut.url("/")]);
        assert_eq!(run.code, Some(18), "{backend}: {}", run.stderr);
        assert_eq!(run.stdout, "abc", "{backend}");
    }
}

#[test]
fn protocol_error_says_where() {
    let server = Script::start(|_| Reply::Send(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n".to_vec()));
    for backend in BACKENDS {
        let run = get(&["--backend", backend, &server.url("/")]);
        assert_eq!(run.code, Some(8), "{backend}");
        assert_eq!(
            run.stderr,
            "roundtrip: invalid response (response head): invalid byte 0x20 in a header \
             field name at byte 20 (the request may have reached the server)\n",
            "{backend}"
        );
    }
}

#[test]
fn large_body_streams_whole_from_the_origin() {
    // 1 MB crosses many reads on every backend.
    let origin = roundtrip::origin::spawn(1_000_000).expect("the origin starts");
    for backend in BACKENDS {
        let run = get(&["--backend", backend, &format!("http://{origin}/")]);
        assert_eq!(run.code, Some(0), "{backend}: {}", run.stderr);
        assert_eq!(run.stdout.len(), 1_000_000, "{backend}");
        assert!(run.stdout.bytes().all(|b| b == b'x'), "{backend}");
    }
}

/// `data` as a gzip member with one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let crc = data.iter().fold(!0u32, |mut crc, &byte| {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
        crc
    });
    let len = u16::try_from(data.len()).expect("one stored block holds it");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.push(1); // BFINAL, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

#[test]
fn gzip_body_is_decoded_on_every_backend() {
    let server = Script::start(|seen| {
        if seen.field("accept-encoding") != Some("gzip") {
            return reply("400 Bad Request", "", "no gzip asked");
        }
        let body = gzip_stored(b"unzipped text\n");
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&body);
        Reply::Send(bytes)
    });
    for backend in BACKENDS {
        let run = get(&["-v", "--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "unzipped text\n"),
            "{backend}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("ms done: 14 body bytes (gzip decoded)\n"),
            "{backend}: {}",
            run.stderr
        );
    }
}

/// A temp file path of this test binary, as a `String`.
fn temp_path(name: &str) -> String {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_get-{name}"))
        .to_str()
        .expect("the temp path is UTF-8")
        .to_owned()
}

#[test]
fn fail_exits_22_without_the_body_on_every_backend() {
    let server = Script::start(|seen| match seen.path() {
        "/ok" => reply("200 OK", "", "fine"),
        _ => reply("404 Not Found", "", "nope"),
    });
    for backend in BACKENDS {
        let run = get(&["-f", "--backend", backend, &server.url("/missing")]);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (
                Some(22),
                "",
                "roundtrip: the requested URL returned error: 404 Not Found\n"
            ),
            "{backend}"
        );
        let run = get(&["-f", "--backend", backend, &server.url("/ok")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "fine"),
            "{backend}"
        );
    }
}

#[test]
fn include_writes_the_head_before_the_body_on_every_backend() {
    let server = Script::start(|_| reply("200 OK", "X-Thing: yes\r\n", "body"));
    for backend in BACKENDS {
        let run = get(&["-i", "--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (
                Some(0),
                "HTTP/1.1 200 OK\r\nx-thing: yes\r\ncontent-length: 4\r\n\r\nbody"
            ),
            "{backend}: {}",
            run.stderr
        );
    }
}

#[test]
fn head_sends_head_and_writes_the_head() {
    let server =
        Script::start(|_| Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n".to_vec()));
    for backend in BACKENDS {
        let run = get(&["-I", "--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"),
            "{backend}: {}",
            run.stderr
        );
    }
    assert!(server.seen().iter().all(|s| s.line() == "HEAD / HTTP/1.1"));
}

#[test]
fn dump_header_writes_the_head_to_a_file() {
    let server = Script::start(|_| reply("201 Created", "X-Thing: yes\r\n", "body"));
    let path = temp_path("dump-header");
    let run = get(&["-D", &path, &server.url("/")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "body"),
        "{}",
        run.stderr
    );
    let dumped = std::fs::read_to_string(&path).expect("the dump file exists");
    assert_eq!(
        dumped,
        "HTTP/1.1 201 Created\r\nx-thing: yes\r\ncontent-length: 4\r\n\r\n"
    );
}

#[test]
fn write_out_after_the_body_on_every_backend() {
    let server = redirects();
    let format = "\\n%{http_code} %{url_effective} %{num_connects} %{size_download} \
                  %{num_redirects} %{time_total}\\n";
    for backend in BACKENDS {
        let run = get(&["-w", format, "--backend", backend, &server.url("/a")]);
        assert_eq!(run.code, Some(0), "{backend}: {}", run.stderr);
        let (body, line) = run.stdout.split_once('\n').expect("a -w line");
        assert_eq!(body, "done", "{backend}");
        let words: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
        assert_eq!(
            words[..5],
            ["200", server.url("/b").as_str(), "1", "4", "1"],
            "{backend}"
        );
        let (secs, micros) = words[5].split_once('.').expect("seconds with a point");
        assert!(
            secs.parse::<u64>().is_ok() && micros.len() == 6,
            "{}",
            words[5]
        );
        assert!(run.stdout.ends_with('\n'), "{backend}");
    }
}

#[test]
fn user_sends_basic_auth() {
    let server = Script::start(|_| reply("200 OK", "", ""));
    // RFC 7617's own example.
    let run = get(&["-u", "Aladdin:open sesame", &server.url("/")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        server.seen()[0].field("authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

#[test]
fn data_from_a_file_or_stdin() {
    let server = Script::start(|_| reply("200 OK", "", ""));
    let path = temp_path("data");
    std::fs::write(&path, "a=1\r\nb=2\n").expect("the data file is written");
    let at_path = format!("@{path}");
    let run = get(&["-d", &at_path, &server.url("/")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = get(&["--data-binary", &at_path, &server.url("/")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = get_with_stdin(&["-d", "@-", &server.url("/")], b"x=1\ny=2\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = get_with_stdin(&["--data-binary", "@-", &server.url("/")], b"x=1\n");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let bodies: Vec<Vec<u8>> = server.seen().into_iter().map(|s| s.body).collect();
    let want: [&[u8]; 4] = [b"a=1b=2", b"a=1\r\nb=2\n", b"x=1y=2", b"x=1\n"];
    assert_eq!(bodies, want);
    assert!(server.seen().iter().all(|s| s.line().starts_with("POST ")));
}

#[test]
fn silent_hides_the_error_line_and_show_error_keeps_it() {
    let url = refused_url();
    let run = get(&["-s", &url]);
    assert_eq!((run.code, run.stderr.as_str()), (Some(7), ""));
    let run = get(&["-s", "-S", &url]);
    assert_eq!(run.code, Some(7));
    assert!(
        run.stderr.starts_with("roundtrip: connecting to "),
        "{}",
        run.stderr
    );
}

#[test]
fn connect_timeout_is_a_number_of_seconds() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let run = get(&["--connect-timeout", "2", &server.url("/")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "ok"),
        "{}",
        run.stderr
    );
    let run = get(&["--connect-timeout", "soon", &server.url("/")]);
    assert_eq!(run.code, Some(2));
    // 0 is curl's "no limit" for -m, "the default" for the others.
    for flag in ["-m", "--connect-timeout", "--read-timeout"] {
        let run = get(&[flag, "0", &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "ok"),
            "{flag}: {}",
            run.stderr
        );
    }
}

#[test]
fn timeout_is_not_cut_short_by_the_read_timeout_on_every_backend() {
    let server = Script::start(|_| {
        Reply::Later(
            Duration::from_millis(1500),
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow".to_vec(),
        )
    });
    for backend in BACKENDS {
        // The read timeout alone ends the wait...
        let run = get(&[
            "--read-timeout",
            "0.5",
            "--backend",
            backend,
            &server.url("/"),
        ]);
        assert_eq!(run.code, Some(28), "{backend}");
        assert!(
            run.stderr.contains("timed out"),
            "{backend}: {}",
            run.stderr
        );
        // ...but not under a longer whole-request deadline.
        let run = get(&[
            "--read-timeout",
            "0.5",
            "-m",
            "5",
            "--backend",
            backend,
            &server.url("/"),
        ]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "slow"),
            "{backend}: {}",
            run.stderr
        );
    }
}

#[test]
fn one_redirect_too_many_is_singular() {
    let server = redirects();
    let run = get(&["--max-redirects", "1", &server.url("/loop")]);
    assert_eq!(run.code, Some(47));
    assert_eq!(
        run.stderr,
        format!(
            "roundtrip: stopped after 1 redirect (last {})\n",
            server.url("/loop")
        )
    );
}

#[test]
fn ipv6_addresses_are_in_brackets() {
    let Ok(listener) = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)) else {
        return roundtrip_tests::fixtures::skip_loudly("no IPv6 loopback here");
    };
    let server = Script::on(listener, |_| reply("200 OK", "", "six"));
    let url = server.url("/");
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let run = get(&["-v", &url]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "six"),
        "{}",
        run.stderr
    );
    let port = server.addr.port();
    assert!(
        run.stderr.contains(&format!("[::1]:{port}")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&format!(" ::1:{port}")),
        "{}",
        run.stderr
    );
}

#[test]
fn binary_body_goes_to_a_pipe_unchanged() {
    let server = Script::start(|_| reply("200 OK", "", "a\0b"));
    let run = get(&[&server.url("/")]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "a\0b", "")
    );
}

#[test]
fn binary_body_is_not_written_to_a_terminal() {
    // `script` gives the command a pseudo-terminal for stdout.
    let server = Script::start(|_| reply("200 OK", "", "a\0b"));
    let command = format!(
        "{} get {}",
        env!("CARGO_BIN_EXE_roundtrip"),
        server.url("/")
    );
    let Ok(output) = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
    else {
        return roundtrip_tests::fixtures::skip_loudly("no `script` (util-linux) here");
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Binary output can mess up your terminal"),
        "{text}"
    );
    assert!(!text.contains('\0'), "{text:?}");
    assert_eq!(output.status.code(), Some(23), "{text}");
    // `-o -` asks for stdout by name: written there all the same (curl).
    let command = format!(
        "{} get -o - {}",
        env!("CARGO_BIN_EXE_roundtrip"),
        server.url("/")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script ran above");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("a\0b"), "{text:?}");
    assert_eq!(output.status.code(), Some(0), "{text}");
}

/// `-v` shows each head as the server sent it: the 103's fields and its
/// own reason phrase, a `<` line after it, then the final head with its
/// unusual reason phrase, and the trailers after the body.
#[test]
fn verbose_shows_interim_heads_reason_phrases_and_trailers_on_every_backend() {
    let server = Script::start(|_| {
        Reply::Send(
            b"HTTP/1.1 103 Hints For You\r\nLink: </s.css>; rel=preload\r\n\r\n\
              HTTP/1.1 200 Fine Thanks\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
              2\r\nhi\r\n0\r\nX-Sum: 42\r\n\r\n"
                .to_vec(),
        )
    });
    for backend in BACKENDS {
        let run = get(&["-v", "--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "hi"),
            "{backend}: {}",
            run.stderr
        );
        let lines: Vec<&str> = run.stderr.lines().collect();
        let Some(first) = lines
            .iter()
            .position(|l| *l == "< HTTP/1.1 103 Hints For You")
        else {
            panic!("{backend}: no 103 head:\n{}", run.stderr)
        };
        assert_eq!(
            lines[first..(first + 6).min(lines.len())],
            [
                "< HTTP/1.1 103 Hints For You",
                "< link: </s.css>; rel=preload",
                "<",
                "< HTTP/1.1 200 Fine Thanks",
                "< transfer-encoding: chunked",
                "< trailer: X-Sum",
            ],
            "{backend}:\n{}",
            run.stderr
        );
        let trailer = lines.iter().position(|l| *l == "< x-sum: 42");
        assert!(trailer > Some(first + 5), "{backend}:\n{}", run.stderr);
        let got_103 = lines.iter().position(|l| l.ends_with(" got 103"));
        assert!(
            got_103.is_some_and(|g| g < first),
            "{backend}:\n{}",
            run.stderr
        );
    }
}

/// `-i` writes the status line as sent: an unusual reason phrase, or none.
#[test]
fn include_keeps_the_servers_reason_phrase_on_every_backend() {
    let server = Script::start(|seen| match seen.path() {
        "/none" => reply("200 ", "", "ok"),
        _ => reply("404 Nothing Here", "", "no"),
    });
    for backend in BACKENDS {
        let run = get(&["-i", "--backend", backend, &server.url("/gone")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (
                Some(0),
                "HTTP/1.1 404 Nothing Here\r\ncontent-length: 2\r\n\r\nno"
            ),
            "{backend}: {}",
            run.stderr
        );
        let run = get(&["-i", "--backend", backend, &server.url("/none")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok"),
            "{backend}: {}",
            run.stderr
        );
    }
}

/// `--resolve host:port:addr` answers a name without a lookup (the server
/// sees the name in `Host`), on every backend; a malformed entry is a usage
/// error before any request.
#[test]
fn resolve_overrides_a_name_on_every_backend() {
    let server = hello();
    let port = server
        .url("/")
        .rsplit(':')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let entry = format!("never.invalid:{port}:127.0.0.1");
    let url = format!("http://never.invalid:{port}/");
    for backend in BACKENDS {
        let run = get(&["--backend", backend, "--resolve", &entry, "-v", &url]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "hello, world"),
            "{backend}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("resolve never.invalid"),
            "{backend}: looked up: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("connect to 127.0.0.1:{port}")),
            "{}",
            run.stderr
        );
    }
    let hosts: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|s| s.field("host").map(str::to_string))
        .collect();
    assert_eq!(hosts, vec![format!("never.invalid:{port}"); 4]);
    let run = get(&["--resolve", "never.invalid:notaport:127.0.0.1", &url]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.starts_with("roundtrip: --resolve: "),
        "{}",
        run.stderr
    );
}

/// `--happy-eyeballs-timeout-ms`: `dual.test` is `[::1]:P` (a listener
/// whose accept queue is full: the connect hangs) then `127.0.0.1:P`; the
/// second attempt starts 100 ms after the first (not the default 250), wins,
/// and the answer comes; `-v` shows both attempts, on every backend.
#[test]
fn happy_eyeballs_timeout_sets_the_attempt_delay_on_every_backend() {
    use roundtrip_tests::dial::BlackHole;
    // A port free on both loopbacks: the server on IPv4, the hole on IPv6.
    let Some((listener, hole)) = (0..20).find_map(|_| {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
        let port = listener.local_addr().ok()?.port();
        let hole = BlackHole::at(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)))?;
        Some((listener, hole))
    }) else {
        roundtrip_tests::fixtures::skip_loudly("no black hole on ::1 beside a free IPv4 port");
        return;
    };
    let port = hole.addr().port();
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let server = thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut served = 0;
        // Bounded: four answers, or 20 s.
        while served < BACKENDS.len() && std::time::Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            served += 1;
        }
    });
    let resolve = format!("dual.test:{port}:[::1],127.0.0.1");
    let url = format!("http://dual.test:{port}/");
    for backend in BACKENDS {
        let args = [
            "--backend",
            backend,
            "-v",
            "--happy-eyeballs-timeout-ms",
            "100",
            "--resolve",
            &resolve,
            &url,
        ];
        let run = get(&args);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(0), "ok"),
            "{backend}: {}",
            run.stderr
        );
        // `* +12.345ms connect to ADDR`
        let started = |addr: &str| -> f64 {
            let needle = format!("ms connect to {addr}");
            let line = (run.stderr.lines())
                .find(|l| l.ends_with(&needle))
                .unwrap_or_else(|| panic!("{backend}: no attempt to {addr}: {}", run.stderr));
            let ms = line
                .trim_start_matches("* +")
                .split("ms")
                .next()
                .unwrap_or("");
            ms.parse().unwrap_or_else(|_| panic!("{backend}: {line}"))
        };
        let gap = started(&format!("127.0.0.1:{port}")) - started(&format!("[::1]:{port}"));
        // The trace stamps each line when it is printed; the machine counts
        // the delay from the time its driver read for that poll, earlier by
        // the poll's work (drivers read the clock once per poll), which a
        // loaded machine can stretch to milliseconds (95.4 ms seen at load
        // 7): the bounds tell 100 ms from the default 250 with room for it.
        assert!(
            (80.0..240.0).contains(&gap),
            "{backend}: {gap} ms apart: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("connected to 127.0.0.1:{port}")),
            "{backend}: {}",
            run.stderr
        );
    }
    drop(hole);
    server.join().expect("the server thread ends");
}

/// `-f` stops at the head of a refused answer: a 500 whose long body
/// stalls after three bytes ends at once with 22, on every backend (it
/// used to read on until the read timeout, then exit 1).
#[test]
fn fail_stops_at_the_head_of_a_stalling_error_on_every_backend() {
    let server = Script::start(|_| {
        Reply::Send(b"HTTP/1.1 500 Broken\r\nContent-Length: 1000000\r\n\r\nabc".to_vec())
    });
    for backend in BACKENDS {
        let started = std::time::Instant::now();
        let run = get(&["-f", "-m", "20", "--backend", backend, &server.url("/")]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(22), ""),
            "{backend}: {}",
            run.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{backend}: took {:?}",
            started.elapsed()
        );
    }
}

/// `-o FILE` and `-D FILE` are emptied only when a response arrives: a run
/// that gets none (connection refused), or whose only answer `-f` refuses,
/// leaves an existing file as it was and makes no new one.
#[test]
fn output_files_are_kept_until_a_response_arrives() {
    let server = Script::start(|_| reply("404 Not Found", "", "nope"));
    let (kept, dump, fresh) = (
        temp_path("kept"),
        temp_path("kept-dump"),
        temp_path("never-made"),
    );
    for path in [&kept, &dump] {
        std::fs::write(path, "precious").expect("a temp file");
    }
    let _ = std::fs::remove_file(&fresh);
    let run = get(&["-o", &kept, "-D", &dump, &refused_url()]);
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    for path in [&kept, &dump] {
        assert_eq!(std::fs::read_to_string(path).unwrap(), "precious", "{path}");
    }
    let run = get(&["-f", "-o", &kept, &server.url("/")]);
    assert_eq!(run.code, Some(22), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "precious");
    let run = get(&["-o", &fresh, &refused_url()]);
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert!(
        !PathBuf::from(&fresh).exists(),
        "a file made for nothing stays"
    );
    // A response that arrives replaces the file's content.
    let run = get(&["-o", &kept, &server.url("/")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "nope");
}

/// `-D -` writes the head to stdout, before the body (curl's idiom).
#[test]
fn dump_header_dash_is_stdout() {
    let server = Script::start(|_| reply("200 OK", "", "body"));
    let run = get(&["-D", "-", &server.url("/")]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"),
        "{}",
        run.stderr
    );
    assert!(!PathBuf::from("-").exists());
}

/// `-H 'Name:'` removes a field the client would send (its own
/// `User-Agent` and `Accept-Encoding`, the `Authorization` of -u), and
/// `-H 'Name;'` sends one empty, as curl reads them; `Host` cannot go.
#[test]
fn header_without_a_value_removes_it_and_a_semicolon_sends_it_empty() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let run = get(&[
        "-u",
        "user:pw",
        "-H",
        "User-Agent:",
        "-H",
        "Accept-Encoding:",
        "-H",
        "Authorization:",
        "-H",
        "X-Empty;",
        &server.url("/"),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let seen = &server.seen()[0];
    for gone in ["user-agent", "accept-encoding", "authorization"] {
        assert_eq!(seen.field(gone), None, "{gone}: {}", seen.head);
    }
    assert_eq!(seen.field("x-empty"), Some(""), "{}", seen.head);
    let run = get(&["-H", "Host:", &server.url("/")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

/// `-I` with `-d` is refused before anything is sent (curl: one method).
#[test]
fn head_with_data_is_a_usage_error() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let run = get(&["-I", "-d", "x", &server.url("/")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(server.conns(), 0);
}

/// curl's -L, --compressed and -A are accepted, a URL without a scheme is
/// `http://`, and repeated -d pieces are joined with `&`.
#[test]
fn curl_flags_and_a_url_without_a_scheme() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let bare = server.url("/form").replace("http://", "");
    let run = get(&[
        "-L",
        "--compressed",
        "-A",
        "agent/1",
        "-d",
        "a=1",
        "-d",
        "b=2",
        &bare,
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "ok"),
        "{}",
        run.stderr
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.line(), "POST /form HTTP/1.1");
    assert_eq!(seen.field("user-agent"), Some("agent/1"));
    assert_eq!(seen.body, b"a=1&b=2");
    // `-A ""` sends no User-Agent at all, as curl.
    let run = get(&["-A", "", &server.url("/none")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(server.seen()[1].field("user-agent"), None);
}

/// `-w` is written after a failed request too: `000` with no answer.
#[test]
fn write_out_after_a_failure_on_every_backend() {
    for backend in BACKENDS {
        let run = get(&[
            "-w",
            "%{http_code}\\n",
            "--backend",
            backend,
            &refused_url(),
        ]);
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(7), "000\n"),
            "{backend}: {}",
            run.stderr
        );
    }
}

/// A closed stderr is not the run's failure: `-v` into a closed pipe
/// neither panics nor changes the exit code.
#[test]
fn a_closed_stderr_does_not_end_the_run() {
    let server = hello();
    for backend in BACKENDS {
        let mut child = roundtrip()
            .args(["get", "-v", "--backend", backend, &server.url("/")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the roundtrip binary starts");
        drop(child.stderr.take());
        let output = child.wait_with_output().expect("the roundtrip binary runs");
        assert_eq!(
            (output.status.code(), output.stdout.as_slice()),
            (Some(0), &b"hello, world"[..]),
            "{backend}"
        );
    }
}

/// `-o /dev/null` (a device: it cannot be truncated, and need not be)
/// and a URL without a scheme whose query holds one.
#[test]
fn output_to_a_device_and_a_query_that_holds_a_url() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let run = get(&["-o", "/dev/null", &server.url("/")]);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    let bare = server.url("/go?next=http://x/").replacen("http://", "", 1);
    let run = get(&[&bare]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "ok"),
        "{}",
        run.stderr
    );
    assert_eq!(server.seen()[1].path(), "/go?next=http://x/");
}

/// `-O` opens each URL's file when its turn comes: a run killed while the
/// first URL stalls leaves no empty file for the second, never fetched;
/// and a URL whose last segment is `-` writes a file named `-`, not stdout.
#[test]
fn remote_names_are_opened_one_at_a_time() {
    let server = Script::start(|seen| match seen.path() {
        "/stall" => Reply::Stall,
        _ => reply("200 OK", "", "dash"),
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_get-remote-one-at-a-time");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut child = spawn_get_in(&dir, &["-O", &server.url("/stall"), &server.url("/later")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.seen().is_empty() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.seen().len(), 1, "the first request never came");
    child.kill().expect("the run is killed");
    child.wait().expect("the run ends");
    assert!(
        !dir.join("later").exists(),
        "a file for a URL never fetched"
    );

    let run = get_in(Some(&dir), &["-O", &server.url("/x/-")], b"");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), ""),
        "{}",
        run.stderr
    );
    let written = std::fs::read_to_string(dir.join("-")).expect("a file named -");
    assert_eq!(written, "dash");
}

/// `-x ""` turns every proxy off, the environment's too (curl); a proxy
/// nothing listens on is named in the error.
#[test]
fn an_empty_proxy_is_none_and_a_dead_one_is_named() {
    let server = hello();
    let refused = refused_url();
    let dead = refused.trim_end_matches('/');
    let run = roundtrip()
        .args(["get", "-x", "", &server.url("/")])
        .env("http_proxy", dead)
        .env("HTTP_PROXY", dead)
        .output()
        .expect("the roundtrip binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        (run.status.code(), run.stdout.as_slice()),
        (Some(0), &b"hello, world"[..]),
        "{stderr}"
    );
    let run = get(&["-x", dead, &server.url("/")]);
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    let addr = dead.trim_start_matches("http://");
    assert!(
        run.stderr
            .starts_with(&format!("roundtrip: connecting to proxy {addr} failed")),
        "{}",
        run.stderr
    );
}

/// `-H` and `-A` values may hold UTF-8 (obs-text), sent as given, as curl
/// does; a control character is still refused, and said so.
#[test]
fn header_values_may_hold_utf8() {
    let server = Script::start(|_| reply("200 OK", "", "ok"));
    let run = get(&["-H", "X-Name: café", "-A", "bot ü", &server.url("/")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen[0].field("x-name"), Some("café"), "{}", seen[0].head);
    assert_eq!(
        seen[0].field("user-agent"),
        Some("bot ü"),
        "{}",
        seen[0].head
    );
    let run = get(&["-H", "X-Bad: a\u{1}b", &server.url("/")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("control character"), "{}", run.stderr);
}

/// The TLS handshake is bounded by `--connect-timeout` (curl's covers it),
/// and a server that accepts and never speaks TLS fails in about that time,
/// with curl's 28.
#[test]
fn connect_timeout_bounds_the_tls_handshake() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().expect("not poisoned").push(stream); // silent
        }
    });
    let started = std::time::Instant::now();
    let run = get(&["--connect-timeout", "1", &format!("https://{addr}/")]);
    let took = started.elapsed();
    assert_eq!(run.code, Some(28), "{}", run.stderr);
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: {}",
        run.stderr
    );
}

/// `-O` checks its files before any request without opening one that
/// exists: a FIFO's reader gets the body whole (an open and close for the
/// check would have ended its read before it), and a directory is a usage
/// error before anything is sent.
#[test]
fn remote_names_are_checked_without_opening() {
    let server = hello();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_get-remote-fifo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).expect("a temp dir");
    let run = get_in(Some(&dir), &["-O", &server.url("/sub")], b"");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("Is a directory"), "{}", run.stderr);
    assert_eq!(server.conns(), 0);

    let fifo = dir.join("f");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let path = fifo.clone();
    let reader = thread::spawn(move || {
        let mut body = Vec::new();
        // Opening blocks until the writer opens; the read ends at its close.
        let mut f = std::fs::File::open(&path).expect("the fifo opens");
        f.read_to_end(&mut body).expect("the fifo reads");
        body
    });
    let mut child = spawn_get_in(&dir, &["-O", &server.url("/f")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Bounded by the deadline.
    let status = loop {
        if let Some(status) = child.try_wait().expect("the run") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    // A run that ended without opening the FIFO leaves the reader in its
    // open: a writer that opens without waiting (O_NONBLOCK, Linux's
    // 0o4000; it fails when no reader waits) and closes lets it go.
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(0o4000)
        .open(&fifo);
    let body = reader.join().expect("the reader");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the run hung or failed"
    );
    assert_eq!(body, b"hello, world");
}
