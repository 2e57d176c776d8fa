//! The request builders (`client.get(url)...send()`, mio's
//! `driver.get(url)...submit()`), written once and stamped into every
//! backend by [`backend_builders!`](crate::backend_builders). A case
//! describes a request as a list of builder [`Call`]s; each backend plays
//! them on its own `RequestBuilder` ([`apply_built!`](crate::apply_built),
//! [`Backend::send_built`]), and the case asserts the exact head (and
//! body) the [`ScriptServer`] read.
//!
//! The client of these cases sends no header the case does not name but
//! `User-Agent: roundtrip-test` (content codings off), so every head is
//! known to the byte whatever features the build enables.

use std::time::{Duration, Instant};

use roundtrip_io::http::Method;
use roundtrip_io::http::header::{HeaderValue, USER_AGENT};
use roundtrip_io::{Config, Error, InvalidRequest, Phase, TimeoutKind};

use crate::backend::{Backend, Resp, assert_timeout, test_config};
use crate::server::{Request, ScriptServer, Step, ok};

/// How long a case waits for the server's scripts to end.
const SETTLE: Duration = Duration::from_secs(5);

/// One call on a request builder.
#[derive(Clone, Debug)]
pub enum Call {
    /// `header(name, value)`.
    Header(String, String),
    /// `headers(map)`, the map made of these pairs in order (appended).
    Headers(Vec<(String, String)>),
    /// `query(&pairs)`.
    Query(Vec<(String, String)>),
    /// `basic_auth(user, password)`.
    BasicAuth(String, Option<String>),
    /// `bearer_auth(token)`.
    BearerAuth(String),
    /// `body(&'static str)`.
    Text(&'static str),
    /// `body(String)`.
    Owned(String),
    /// `body(Vec<u8>)`.
    Bytes(Vec<u8>),
    /// `body(Body::from_reader(..))` of unknown length, read in pieces of
    /// 3 bytes.
    Stream(Vec<u8>),
    /// `json(&value)`.
    Json(serde_json::Value),
    /// `form(&pairs)`.
    Form(Vec<(String, String)>),
    /// `timeout(d)`.
    Timeout(Duration),
    /// `extension(RequestTimeout(None))`: no total deadline for this
    /// request, whatever the client's.
    NoTimeout,
}

/// A request made with a builder: started with `method`'s verb (`get`,
/// `post`, ...; `request(method, url)` for the others, or when `verb` is
/// false), then the calls in order.
#[derive(Clone, Debug)]
pub struct Built {
    /// The method.
    pub method: Method,
    /// The URL, as given to the verb.
    pub url: String,
    /// Start with the method's own verb rather than `request(method, url)`.
    pub verb: bool,
    /// The builder calls.
    pub calls: Vec<Call>,
}

impl Built {
    /// `method url` through its verb, no call yet.
    pub fn new(method: Method, url: impl Into<String>) -> Built {
        Built {
            method,
            url: url.into(),
            verb: true,
            calls: Vec::new(),
        }
    }

    /// Adds a call.
    pub fn call(mut self, call: Call) -> Built {
        self.calls.push(call);
        self
    }

    /// Starts with `request(method, url)`.
    pub fn through_request(mut self) -> Built {
        self.verb = false;
        self
    }
}

/// Plays a [`Built`] on a backend's client, giving its request builder:
/// `apply_built!(client, built, BodyType, wrap)`, where `wrap` makes the
/// backend's body reader of a [`Pieces`](crate::backend::Pieces).
#[macro_export]
macro_rules! apply_built {
    ($client:expr, $built:expr, $body:ty, $wrap:expr) => {{
        use roundtrip_io::http::Method;
        use $crate::builders::Call;
        let built: $crate::builders::Built = $built;
        let url = built.url.as_str();
        let mut builder = match built.method {
            Method::GET if built.verb => $client.get(url),
            Method::POST if built.verb => $client.post(url),
            Method::PUT if built.verb => $client.put(url),
            Method::PATCH if built.verb => $client.patch(url),
            Method::DELETE if built.verb => $client.delete(url),
            Method::HEAD if built.verb => $client.head(url),
            method => $client.request(method, url),
        };
        for call in built.calls {
            builder = match call {
                Call::Header(name, value) => builder.header(name, value),
                Call::Headers(pairs) => builder.headers($crate::builders::header_map(&pairs)),
                Call::Query(pairs) => builder.query(&pairs),
                Call::BasicAuth(user, password) => builder.basic_auth(user, password),
                Call::BearerAuth(token) => builder.bearer_auth(token),
                Call::Text(text) => builder.body(text),
                Call::Owned(text) => builder.body(text),
                Call::Bytes(bytes) => builder.body(bytes),
                Call::Stream(data) => builder.body(<$body>::from_reader(
                    $wrap($crate::backend::Pieces::new(data, 3)),
                    None,
                )),
                Call::Json(value) => builder.json(&value),
                Call::Form(pairs) => builder.form(&pairs),
                Call::Timeout(timeout) => builder.timeout(timeout),
                Call::NoTimeout => builder.extension(roundtrip_io::RequestTimeout(None)),
            };
        }
        builder
    }};
}

/// The header map of `pairs`, each appended in order.
pub fn header_map(pairs: &[(String, String)]) -> roundtrip_io::http::HeaderMap {
    let mut map = roundtrip_io::http::HeaderMap::new();
    for (name, value) in pairs {
        let name = roundtrip_io::http::HeaderName::try_from(name.as_str()).expect("a field name");
        map.append(
            name,
            HeaderValue::try_from(value.as_str()).expect("a value"),
        );
    }
    map
}

/// The config of these cases: [`test_config`], no content coding asked
/// for, and `User-Agent: roundtrip-test` as the one default header.
pub fn builder_config() -> Config {
    let mut config = test_config();
    config.gzip = false;
    config
        .default_headers
        .insert(USER_AGENT, HeaderValue::from_static("roundtrip-test"));
    config
}

/// A server answering every request on one connection with an empty 200.
fn answering() -> ScriptServer {
    ScriptServer::start(vec![vec![Step::Serve(std::sync::Arc::new(|_| ok(b"")))]])
}

/// Sends `built` and panics, naming the backend, if it fails.
fn send_ok<B: Backend>(client: &B::Client, built: Built) -> Resp {
    let what = format!("{} {}", built.method, built.url);
    B::send_built(client, built).unwrap_or_else(|e| panic!("{}: {what}: {e}", B::NAME))
}

/// The head the server read, as text.
fn head(r: &Request) -> String {
    String::from_utf8_lossy(&r.raw_head).into_owned()
}

/// `METHOD target`, `Host` and the default `User-Agent`, then `fields`
/// (`name: value` lines), then the blank line: a head as the client of
/// these cases writes it.
fn want_head(server: &ScriptServer, request_line: &str, fields: &[&str]) -> String {
    let mut out = format!(
        "{request_line} HTTP/1.1\r\nHost: {}\r\nuser-agent: roundtrip-test\r\n",
        server.addr()
    );
    for field in fields {
        out.push_str(field);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// Waits for every script to end, then requires that none failed.
fn settle(server: &ScriptServer) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    server.assert_no_errors();
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

crate::cases! {
    /// Stamps the request-builder cases into a backend's test file.
    stamp backend_builders, list cases, path builders;

/// Each verb sends its own method; `request(method, url)` any other. A
/// POST, PUT or PATCH without a body says `Content-Length: 0`.
pub fn builder_verbs_send_their_method<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let sent = [
        (Method::GET, true),
        (Method::POST, true),
        (Method::PUT, true),
        (Method::PATCH, true),
        (Method::DELETE, true),
        (Method::HEAD, true),
        (Method::OPTIONS, false),
        (Method::GET, false),
    ];
    for (method, verb) in &sent {
        let mut built = Built::new(method.clone(), server.url("/v"));
        built.verb = *verb;
        let resp = send_ok::<B>(&client, built);
        assert_eq!(resp.status, 200, "{}: {method}", B::NAME);
    }
    drop(client);
    let requests = server.requests();
    assert_eq!(requests.len(), sent.len(), "{}", B::NAME);
    for ((method, _), r) in sent.iter().zip(&requests) {
        let fields: &[&str] = match *method {
            Method::POST | Method::PUT | Method::PATCH => &["Content-Length: 0"],
            _ => &[],
        };
        let want = want_head(&server, &format!("{method} /v"), fields);
        assert_eq!(head(r), want, "{}: {method}", B::NAME);
    }
    settle(&server);
}

/// `query` percent-encodes as forms do (space `+`, `&`, `=`, non-ASCII
/// as UTF-8 `%XX`), appends after the URL's own query, adds up over
/// calls, and leaves the URL alone when given nothing.
pub fn builder_query_is_encoded_and_appended<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let base = format!("http://{}", server.addr());
    let cases: [(Built, &str); 5] = [
        (
            Built::new(Method::GET, format!("{base}/search?lang=en")).call(Call::Query(pairs(&[
                ("q", "tom & jerry"),
                ("name", "Zoë ☕"),
                ("eq", "a=b+c"),
                ("empty", ""),
            ]))),
            "/search?lang=en&q=tom+%26+jerry&name=Zo%C3%AB+%E2%98%95&eq=a%3Db%2Bc&empty=",
        ),
        (
            Built::new(Method::GET, format!("{base}/plain")).call(Call::Query(pairs(&[("a", "1")]))),
            "/plain?a=1",
        ),
        (
            Built::new(Method::DELETE, format!("{base}/twice?"))
                .call(Call::Query(pairs(&[("a", "1")])))
                .call(Call::Query(pairs(&[("b", "x/y?")]))),
            "/twice?a=1&b=x%2Fy%3F",
        ),
        (
            Built::new(Method::GET, format!("{base}/same?x=%20")).call(Call::Query(Vec::new())),
            "/same?x=%20",
        ),
        (
            Built::new(Method::GET, base.clone()).call(Call::Query(pairs(&[("k", "v")]))),
            "/?k=v",
        ),
    ];
    let mut want = Vec::new();
    for (built, target) in cases {
        want.push(format!("{} {target}", built.method));
        send_ok::<B>(&client, built);
    }
    drop(client);
    let got: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(got, want, "{}", B::NAME);
    settle(&server);
}

/// `basic_auth` (with and without a password) and `bearer_auth` send one
/// `Authorization` field, the last set winning, and the builder's wins
/// over the URL's user info.
pub fn builder_auth_headers<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let url = server.url("/auth");
    let with_user = format!("http://u:p@{}/auth", server.addr());
    let sent = [
        Built::new(Method::GET, &url).call(Call::BasicAuth(
            "Aladdin".into(),
            Some("open sesame".into()),
        )),
        Built::new(Method::GET, &url).call(Call::BasicAuth("user".into(), None)),
        Built::new(Method::GET, &url).call(Call::BearerAuth("t0k.en~/+=".into())),
        Built::new(Method::GET, &url)
            .call(Call::BasicAuth("a".into(), Some("b".into())))
            .call(Call::BearerAuth("last".into())),
        Built::new(Method::GET, with_user).call(Call::BearerAuth("mine".into())),
    ];
    for built in sent {
        send_ok::<B>(&client, built);
    }
    drop(client);
    let want = [
        "authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "authorization: Basic dXNlcjo=",
        "authorization: Bearer t0k.en~/+=",
        "authorization: Bearer last",
        "authorization: Bearer mine",
    ];
    let requests = server.requests();
    assert_eq!(requests.len(), want.len(), "{}", B::NAME);
    for (r, field) in requests.iter().zip(want) {
        assert_eq!(head(r), want_head(&server, "GET /auth", &[field]), "{}", B::NAME);
    }
    settle(&server);
}

/// `json` serializes the value with `Content-Type: application/json` and
/// its length; a `Content-Type` set before it is kept.
pub fn builder_json_body<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    // One key per object: the text does not depend on serde_json's map order.
    let value = serde_json::json!([{ "name": "roundtrip ☕" }, 1, "two\n", null, true]);
    let text = r#"[{"name":"roundtrip ☕"},1,"two\n",null,true]"#;
    let sent = [
        Built::new(Method::POST, server.url("/items")).call(Call::Json(value.clone())),
        Built::new(Method::PATCH, server.url("/items/1"))
            .call(Call::Header(
                "content-type".into(),
                "application/merge-patch+json".into(),
            ))
            .call(Call::Json(value)),
    ];
    for built in sent {
        send_ok::<B>(&client, built);
    }
    drop(client);
    let requests = server.requests();
    let len = format!("Content-Length: {}", text.len());
    let want = [
        want_head(&server, "POST /items", &["content-type: application/json", &len]),
        want_head(
            &server,
            "PATCH /items/1",
            &["content-type: application/merge-patch+json", &len],
        ),
    ];
    assert_eq!(requests.len(), want.len(), "{}", B::NAME);
    for (r, want) in requests.iter().zip(want) {
        assert_eq!(head(r), want, "{}", B::NAME);
        assert_eq!(String::from_utf8_lossy(&r.body), text, "{}", B::NAME);
    }
    settle(&server);
}

/// `form` encodes the pairs as `application/x-www-form-urlencoded`, with
/// that `Content-Type` and the body's length.
pub fn builder_form_body<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let built = Built::new(Method::POST, server.url("/login")).call(Call::Form(pairs(&[
        ("user", "J Doe"),
        ("pass", "a&b=c%"),
        ("note", "ünï"),
    ])));
    send_ok::<B>(&client, built);
    drop(client);
    let body = "user=J+Doe&pass=a%26b%3Dc%25&note=%C3%BCn%C3%AF";
    let r = &server.requests()[0];
    let len = format!("Content-Length: {}", body.len());
    let want = want_head(
        &server,
        "POST /login",
        &["content-type: application/x-www-form-urlencoded", &len],
    );
    assert_eq!(head(r), want, "{}", B::NAME);
    assert_eq!(String::from_utf8_lossy(&r.body), body, "{}", B::NAME);
    settle(&server);
}

/// A header the request sets replaces the client's default of that name;
/// `header` adds a second value, `headers` replaces those of its names.
pub fn builder_headers_override_defaults<B: Backend>() {
    let server = answering();
    let mut config = builder_config();
    config
        .default_headers
        .insert("accept", HeaderValue::from_static("*/*"));
    let client = B::client(config);
    let url = server.url("/h");
    let sent = [
        Built::new(Method::GET, &url),
        Built::new(Method::GET, &url)
            .call(Call::Header("user-agent".into(), "mine/1.0".into()))
            .call(Call::Header("x-multi".into(), "1".into()))
            .call(Call::Header("x-multi".into(), "2".into())),
        Built::new(Method::GET, &url)
            .call(Call::Header("x-multi".into(), "old".into()))
            .call(Call::Header("x-keep".into(), "k".into()))
            .call(Call::Headers(pairs(&[
                ("accept", "text/plain"),
                ("x-multi", "a"),
                ("x-multi", "b"),
            ]))),
    ];
    for built in sent {
        send_ok::<B>(&client, built);
    }
    drop(client);
    let host = server.addr();
    let want = [
        format!("GET /h HTTP/1.1\r\nHost: {host}\r\nuser-agent: roundtrip-test\r\naccept: */*\r\n\r\n"),
        format!(
            "GET /h HTTP/1.1\r\nHost: {host}\r\naccept: */*\r\nuser-agent: mine/1.0\r\nx-multi: 1\r\nx-multi: 2\r\n\r\n"
        ),
        format!(
            "GET /h HTTP/1.1\r\nHost: {host}\r\nuser-agent: roundtrip-test\r\nx-multi: a\r\nx-multi: b\r\nx-keep: k\r\naccept: text/plain\r\n\r\n"
        ),
    ];
    let got: Vec<String> = server.requests().iter().map(head).collect();
    assert_eq!(got, want, "{}", B::NAME);
    settle(&server);
}

/// `body` takes a `&'static str`, a `String`, a `Vec<u8>` (each sent with
/// its length) or a reader of unknown length (sent chunked); no
/// `Content-Type` is added.
pub fn builder_bodies<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let url = server.url("/b");
    let sent = [
        (Call::Text("static text"), "static text"),
        (Call::Owned("owned text".into()), "owned text"),
        (Call::Bytes(b"\x00\x01bytes".to_vec()), "\0\u{1}bytes"),
        (Call::Stream(b"streamed body".to_vec()), "streamed body"),
    ];
    for (call, _) in &sent {
        send_ok::<B>(&client, Built::new(Method::PUT, &url).call(call.clone()));
    }
    drop(client);
    let requests = server.requests();
    assert_eq!(requests.len(), sent.len(), "{}", B::NAME);
    for ((call, body), r) in sent.iter().zip(&requests) {
        let framing = match call {
            Call::Stream(_) => "Transfer-Encoding: chunked".to_string(),
            _ => format!("Content-Length: {}", body.len()),
        };
        let want = want_head(&server, "PUT /b", &[&framing]);
        assert_eq!(head(r), want, "{}: {call:?}", B::NAME);
        assert_eq!(r.body, body.as_bytes(), "{}: {call:?}", B::NAME);
    }
    // The stream went out in chunks of the reader's pieces, then the last chunk.
    let raw = String::from_utf8_lossy(&requests[3].raw_body).into_owned();
    assert!(raw.ends_with("\r\n0\r\n\r\n"), "{}: {raw:?}", B::NAME);
    settle(&server);
}

/// `timeout` bounds the whole request: a server that sits on the request
/// fails it with `TimeoutKind::Total` well before the client's own
/// `timeout`; `extension(RequestTimeout(None))` lifts a client's short
/// one for a slow answer.
pub fn builder_timeout_is_total<B: Backend>() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Sleep(Duration::from_secs(3)),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::Sleep(Duration::from_millis(400)),
            Step::Write(ok(b"late")),
            Step::Close,
        ],
    ]);
    let mut config = builder_config();
    let client = B::client(config.clone());
    let started = Instant::now();
    let built = Built::new(Method::GET, server.url("/slow"))
        .call(Call::Timeout(Duration::from_millis(300)));
    let err = match B::send_built(&client, built) {
        Ok(resp) => panic!("{}: expected a timeout, got {}", B::NAME, resp.status),
        Err(err) => err,
    };
    let took = started.elapsed();
    assert_timeout(&err, TimeoutKind::Total, Phase::ResponseHead, true, B::NAME);
    assert!(took >= Duration::from_millis(300), "{}: fired early: {took:?}", B::NAME);
    assert!(took < Duration::from_millis(2500), "{}: fired late: {took:?}", B::NAME);
    // A client whose own timeout is shorter than the answer's delay.
    config.timeout = Some(Duration::from_millis(150));
    let short = B::client(config);
    let built = Built::new(Method::GET, server.url("/late")).call(Call::NoTimeout);
    let resp = send_ok::<B>(&short, built);
    assert_eq!(resp.body, b"late", "{}", B::NAME);
    drop((client, short));
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/slow", "/late"], "{}", B::NAME);
    // The first script still sleeps; dropping the server cuts it short.
    server.assert_no_errors();
}

/// A URL, header name or value that does not parse is an
/// `InvalidRequest` from `send()` (no panic, nothing sent, not reached),
/// and the client goes on working.
pub fn builder_errors_come_from_send<B: Backend>() {
    let server = answering();
    let client = B::client(builder_config());
    let url = server.url("/e");
    let refused = [
        Built::new(Method::GET, &url).call(Call::Header("x-bad".into(), "a\nb".into())),
        Built::new(Method::GET, &url).call(Call::Header("bad name".into(), "v".into())),
        Built::new(Method::POST, &url)
            .call(Call::BearerAuth("x\r\ninjected: 1".into()))
            .call(Call::Text("body")),
        Built::new(Method::GET, format!("http://exa mple:{}/", server.addr().port())),
        Built::new(Method::GET, "not a url"),
        Built::new(Method::PUT, &url)
            .call(Call::Header("x-bad".into(), "nul\0".into()))
            .call(Call::Timeout(Duration::from_secs(1)))
            .through_request(),
    ];
    for built in refused {
        let what = format!("{built:?}");
        match B::send_built(&client, built) {
            // A header value the builder refuses names its header.
            Err(
                err @ Error::InvalidRequest(
                    InvalidRequest::Http(_) | InvalidRequest::HeaderValue { .. },
                ),
            ) => {
                assert!(!err.reached_server(), "{}: {what}", B::NAME)
            }
            Err(other) => panic!(
                "{}: {what}: want InvalidRequest::Http or ::HeaderValue, got {other:?}",
                B::NAME
            ),
            Ok(resp) => panic!("{}: {what}: want an error, got {}", B::NAME, resp.status),
        }
    }
    assert_eq!(server.accepted(), 0, "{}: a refused request was sent", B::NAME);
    let resp = send_ok::<B>(&client, Built::new(Method::GET, &url));
    assert_eq!(resp.status, 200, "{}", B::NAME);
    drop(client);
    let got: Vec<String> = server.requests().iter().map(head).collect();
    assert_eq!(got, [want_head(&server, "GET /e", &[])], "{}", B::NAME);
    settle(&server);
}
}
