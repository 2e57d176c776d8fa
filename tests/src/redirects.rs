//! Redirects and transparent gzip, written once over a [`Backend`];
//! [`redirect_suite!`](crate::redirect_suite) stamps every case into a
//! `#[test]` for one backend (`tests/redirects_{blocking,tokio,mio}.rs`).
//!
//! Each case asserts on what the client returned (status, body, headers,
//! the `RedirectChain` and `Decompressed` extensions), on what the scripted
//! loopback servers read, and where it matters on the pool counters. Two
//! `ScriptServer`s on two loopback ports are two origins.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use roundtrip_io::http::{Method, StatusCode, Uri};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::{Decompressed, Error, FinalUrl, RedirectAction, RedirectChain, RedirectPolicy};

use crate::backend::{Backend, Req, ReqBody, Resp, test_config};
use crate::fixtures::chunked_text;
use crate::server::{Request, ScriptServer, Step, ok, response};

/// How long a case waits for the server's connection threads to finish.
const SETTLE: Duration = Duration::from_secs(5);

/// Sends `req` and panics, naming the backend and the request, if it fails.
fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e}", B::NAME))
}

/// Sends `req` and returns its error; panics if it succeeds.
fn send_err<B: Backend>(client: &B::Client, req: Req) -> Error {
    let what = format!("{} {}", req.method, req.url);
    match B::send(client, req) {
        Ok(resp) => panic!(
            "{}: {what}: expected an error, got {} with {} body bytes",
            B::NAME,
            resp.status,
            resp.body.len()
        ),
        Err(e) => e,
    }
}

/// A server answering every request on every connection with `route`.
fn serve(route: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static) -> ScriptServer {
    ScriptServer::start(vec![vec![Step::Serve(Arc::new(route))]]).repeat_last(true)
}

/// Ends the client (closing its pooled connections, which ends the
/// servers' `Serve` loops), then requires that no script failed.
fn settle<B: Backend>(client: B::Client, servers: &[&ScriptServer]) {
    drop(client);
    for server in servers {
        assert!(server.wait_idle(SETTLE), "server scripts still running");
        server.assert_no_errors();
    }
}

/// A redirect with `status`, `Location: location` and a short body.
fn redirect(status: u16, location: &str) -> Vec<u8> {
    response(
        status,
        &[("Location", location), ("Content-Length", "5")],
        b"moved",
    )
}

/// The chain a response that came through redirects carries, as strings.
fn chain(resp: &Resp) -> Vec<String> {
    let chain = resp
        .extensions
        .get::<RedirectChain>()
        .expect("a redirected response carries its RedirectChain");
    chain.0.iter().map(Uri::to_string).collect()
}

/// A response to the request as sent carries no chain.
fn no_chain(resp: &Resp) -> bool {
    resp.extensions.get::<RedirectChain>().is_none()
}

/// The URL that answered (what `ResponseExt::url` reads: the body's),
/// which every response carries, and as an extension (three allocations)
/// only with an error status.
fn final_url(resp: &Resp) -> String {
    let error = resp.status.is_client_error() || resp.status.is_server_error();
    let kept = resp.extensions.get::<FinalUrl>();
    // Only an error status keeps it in the head too (`error_for_status`).
    assert_eq!(kept.is_some(), error, "{}", resp.status);
    let url = resp.url.as_ref().expect("every response carries its URL");
    url.to_string()
}

/// `data` gzip-compressed.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("in memory");
    enc.finish().expect("in memory")
}

/// `200 OK` with `Content-Encoding: gzip` and `body` as it is.
fn gzip_ok(body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    response(
        200,
        &[("Content-Encoding", "gzip"), ("Content-Length", &len)],
        body,
    )
}

/// `200 OK`, `Content-Encoding: gzip`, chunked: `body` in pieces of `piece`.
fn gzip_chunked(body: &[u8], piece: usize) -> Vec<u8> {
    let mut out = response(
        200,
        &[
            ("Content-Encoding", "gzip"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    for chunk in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Compressible text of `len` bytes.
fn text(len: usize) -> Vec<u8> {
    chunked_text().into_iter().cycle().take(len).collect()
}

crate::cases! {
    /// Stamps every redirect and gzip case into `#[test]` functions for a backend.
    stamp redirect_suite, list cases, path redirects;

/// GET through each redirect status reaches the target; the chain says how.
pub fn every_redirect_status_followed<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/final" => ok(b"done"),
        t => redirect(t[1..].parse().expect("a status"), "/final"),
    });
    let client = B::client(test_config());
    for status in [301, 302, 303, 307, 308] {
        let resp = send_ok::<B>(&client, Req::get(server.url(&format!("/{status}"))));
        assert_eq!(resp.status, StatusCode::OK, "{status}");
        assert_eq!(resp.body, b"done", "{status}");
        assert_eq!(
            chain(&resp),
            [server.url(&format!("/{status}")), server.url("/final")],
            "{status}"
        );
        assert_eq!(final_url(&resp), server.url("/final"), "{status}");
    }
    let methods: Vec<_> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["GET"; 10]);
    settle::<B>(client, &[&server]);
}

/// No redirect: no chain, and the final URL is the one requested; other
/// 3xx statuses (300, 304) are answers, not redirects.
pub fn chain_without_redirect<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/300" => redirect(300, "/x"),
        "/304" => response(304, &[("Location", "/x")], b""),
        _ => ok(b"plain"),
    });
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/p?q=1")));
    assert!(no_chain(&resp));
    assert_eq!(final_url(&resp), server.url("/p?q=1"));
    for status in [300, 304] {
        let url = server.url(&format!("/{status}"));
        let resp = send_ok::<B>(&client, Req::get(&url));
        assert_eq!(resp.status.as_u16(), status);
        assert!(no_chain(&resp), "{status}");
        assert_eq!(final_url(&resp), url, "{status}");
    }
    assert_eq!(server.requests().len(), 3);
    settle::<B>(client, &[&server]);
}

/// 301, 302, 303 turn a POST into a GET without body or body fields; HEAD
/// stays HEAD; PUT through 303 becomes GET.
pub fn post_becomes_get_on_301_302_303<B: Backend>() {
    let server = serve(|r| match (r.method.as_str(), r.target.as_str()) {
        ("HEAD", "/final") => response(200, &[("Content-Length", "4")], b""),
        (_, "/final") => ok(b"done"),
        ("HEAD", t) => {
            let status = t[1..].parse().expect("a status");
            response(
                status,
                &[("Location", "/final"), ("Content-Length", "5")],
                b"",
            )
        }
        (_, t) => redirect(t[1..].parse().expect("a status"), "/final"),
    });
    let client = B::client(test_config());
    for (i, status) in [301, 302, 303].into_iter().enumerate() {
        let req = Req::new(Method::POST, server.url(&format!("/{status}")))
            .header("Content-Type", "text/plain")
            .header("X-Keep", "yes")
            .body(ReqBody::Bytes(b"form=1".to_vec()));
        let resp = send_ok::<B>(&client, req);
        assert_eq!(resp.body, b"done");
        let requests = server.requests();
        let (first, next) = (&requests[2 * i], &requests[2 * i + 1]);
        assert_eq!(
            (first.method.as_str(), first.body.as_slice()),
            ("POST", &b"form=1"[..])
        );
        assert_eq!(
            (next.method.as_str(), next.target.as_str()),
            ("GET", "/final")
        );
        for name in ["content-length", "content-type", "transfer-encoding"] {
            assert!(next.header(name).is_none(), "{status}: {name} kept");
        }
        assert!(next.body.is_empty());
        assert_eq!(next.header("x-keep"), Some("yes"));
    }
    let resp = send_ok::<B>(&client, Req::new(Method::HEAD, server.url("/302")));
    assert_eq!((resp.status, resp.body.len()), (StatusCode::OK, 0));
    let resp = send_ok::<B>(&client, Req::new(Method::HEAD, server.url("/303")));
    assert_eq!(resp.status, StatusCode::OK);
    let req = Req::new(Method::PUT, server.url("/303")).body(ReqBody::Bytes(b"x".to_vec()));
    send_ok::<B>(&client, req);
    let methods: Vec<_> = server.requests()[6..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["HEAD", "HEAD", "HEAD", "HEAD", "PUT", "GET"]);
    settle::<B>(client, &[&server]);
}

/// 307 and 308 keep the method and send the same body again.
pub fn post_kept_on_307_308<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/final" => ok(&r.body),
        t => redirect(t[1..].parse().expect("a status"), "/final"),
    });
    let client = B::client(test_config());
    for status in [307, 308] {
        let req = Req::new(Method::POST, server.url(&format!("/{status}")))
            .header("Content-Type", "application/json")
            .body(ReqBody::Bytes(b"{\"a\":1}".to_vec()));
        let resp = send_ok::<B>(&client, req);
        assert_eq!(resp.body, b"{\"a\":1}", "{status}: the body was echoed");
        let requests = server.requests();
        let next = requests.last().expect("requests");
        assert_eq!(
            (next.method.as_str(), next.target.as_str()),
            ("POST", "/final")
        );
        assert_eq!(next.header("content-type"), Some("application/json"));
        assert_eq!(next.header("content-length"), Some("7"));
    }
    assert_eq!(server.requests().len(), 4);
    settle::<B>(client, &[&server]);
}

/// A streamed body cannot be sent again: a 307 to it is the answer.
pub fn streamed_body_307_returned<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/final" => ok(b"unexpected"),
        _ => redirect(307, "/final"),
    });
    let client = B::client(test_config());
    for sized in [false, true] {
        let req = Req::new(Method::POST, server.url("/up")).body(ReqBody::Stream {
            data: b"streamed body".to_vec(),
            piece: 4,
            sized,
        });
        let resp = send_ok::<B>(&client, req);
        assert_eq!(resp.status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(resp.headers["location"], "/final");
        assert_eq!(resp.body, b"moved");
        assert!(no_chain(&resp));
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.body == b"streamed body"));
    settle::<B>(client, &[&server]);
}

/// Relative `Location`s resolve against the URL just requested.
pub fn relative_location_resolved<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/a/b/start" => redirect(302, "next?x=1"),
        "/a/b/next?x=1" => redirect(301, "../up#frag"),
        "/a/up" => redirect(307, "/root/./abs"),
        "/root/abs" => ok(b"resolved"),
        _ => response(404, &[("Content-Length", "0")], b""),
    });
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/a/b/start")));
    assert_eq!(resp.body, b"resolved");
    let targets: Vec<_> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        ["/a/b/start", "/a/b/next?x=1", "/a/up", "/root/abs"]
    );
    assert_eq!(
        chain(&resp),
        [
            server.url("/a/b/start"),
            server.url("/a/b/next?x=1"),
            server.url("/a/up"),
            server.url("/root/abs"),
        ]
    );
    settle::<B>(client, &[&server]);
}

/// A hop to another origin (another loopback port) drops `Authorization`,
/// `Cookie` and `Proxy-Authorization`; a hop within the origin keeps them.
pub fn cross_origin_strips_credentials<B: Backend>() {
    let other = serve(|_| ok(b"other origin"));
    let landing = other.url("/landing");
    let server = serve(move |r| match r.target.as_str() {
        "/same" => redirect(302, "/kept"),
        "/kept" => ok(b"same origin"),
        _ => redirect(302, &landing),
    });
    let client = B::client(test_config());
    let with_secrets = |url: String| {
        Req::get(url)
            .header("Authorization", "Bearer secret")
            .header("Cookie", "session=1")
            .header("Proxy-Authorization", "Basic eA==")
            .header("X-Other", "kept")
    };
    let sensitive = ["authorization", "cookie", "proxy-authorization"];
    let resp = send_ok::<B>(&client, with_secrets(server.url("/same")));
    assert_eq!(resp.body, b"same origin");
    let kept = &server.requests()[1];
    assert!(
        sensitive.iter().all(|n| kept.header(n).is_some()),
        "{kept:?}"
    );
    let resp = send_ok::<B>(&client, with_secrets(server.url("/away")));
    assert_eq!(resp.body, b"other origin");
    assert_eq!(chain(&resp), [server.url("/away"), other.url("/landing")]);
    let landed = &other.requests()[0];
    assert!(
        sensitive.iter().all(|n| landed.header(n).is_none()),
        "{landed:?}"
    );
    assert_eq!(landed.header("x-other"), Some("kept"));
    assert_eq!(
        landed.header("host"),
        Some(other.addr().to_string().as_str())
    );
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (2, 2), "{stats:?}");
    settle::<B>(client, &[&server, &other]);
}

/// The client's default `Authorization` and `Cookie` stay behind on a
/// hop to another origin, as the request's own do (its default
/// `Proxy-Authorization` never reaches an origin at all), and on every hop after it, back to the first origin
/// too (Go after CVE-2024-45336); a hop within the origin keeps them, and
/// other defaults always follow. Both ways a head is written: a request
/// with no fields of its own (the client's preset block) and one with.
pub fn cross_origin_drops_default_credentials<B: Backend>() {
    let back = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let back_there = back.clone();
    // It sets a cookie of its own: with a jar, its hop then carries a
    // `Cookie` field, which must hold the jar's cookie and not the default.
    let other = serve(move |_| {
        let location = back_there.get().expect("set below");
        let fields = [("Location", location.as_str()), ("Set-Cookie", "o=1"), ("Content-Length", "0")];
        response(302, &fields, b"")
    });
    let away = other.url("/away");
    let server = serve(move |r| match r.target.as_str() {
        "/same" => redirect(302, "/kept"),
        "/kept" | "/back" => ok(b"here"),
        _ => redirect(302, &away),
    });
    back.set(server.url("/back")).unwrap();
    let mut config = test_config();
    for (name, value) in [
        ("authorization", "Bearer default-secret"),
        ("cookie", "session=default"),
        ("proxy-authorization", "Basic eA=="),
        ("x-default", "follows"),
    ] {
        config.default_headers.insert(name, value.parse().unwrap());
    }
    // A default the caller marked sensitive stays with its origin too.
    let mut key = roundtrip_io::http::HeaderValue::from_static("k-123");
    key.set_sensitive(true);
    config.default_headers.insert("x-api-key", key);
    let sensitive = ["authorization", "cookie", "proxy-authorization", "x-api-key"];
    // Without a cookie jar, and with one (the default `Cookie` is then
    // merged with the jar's cookies into one field).
    for jar in [None, Some(roundtrip_io::CookieJar::new())] {
        config.cookie_jar = jar;
        let client = B::client(config.clone());
        for own_field in [false, true] {
        let req = |url: String| match own_field {
            true => Req::get(url).header("X-Own", "1"),
            false => Req::get(url),
        };
        let seen = server.requests().len();
        let resp = send_ok::<B>(&client, req(server.url("/same")));
        assert_eq!(resp.body, b"here");
        let kept = &server.requests()[seen + 1];
        // A default `Proxy-Authorization` is for proxies: never sent to an
        // origin reached directly, redirected or not.
        let origin_fields = sensitive.iter().filter(|n| **n != "proxy-authorization");
        assert!(origin_fields.clone().all(|n| kept.header(n).is_some()), "{kept:?}");
        assert_eq!(kept.header("proxy-authorization"), None, "{kept:?}");
        let resp = send_ok::<B>(&client, req(server.url("/start")));
        assert_eq!(resp.body, b"here");
        let hops = [other.requests().last().cloned().unwrap(), server.requests().last().cloned().unwrap()];
        for hop in &hops {
            let leaked = |n: &&str| match *n {
                "cookie" => hop.header(n).is_some_and(|c| c.contains("default")),
                _ => hop.header(n).is_some(),
            };
            assert!(!sensitive.iter().any(leaked), "{}: {hop:?}", B::NAME);
            assert_eq!(hop.header("x-default"), Some("follows"), "{hop:?}");
        }
        assert_eq!(hops[1].target, "/back");
        }
        settle::<B>(client, &[&server, &other]);
    }
}

/// A client-wide `Host` (a virtual host behind an address) is sent in
/// place of the URL's, once, on every hop within the origin; a hop to
/// another origin sends that origin's own.
pub fn default_host_stays_within_the_origin<B: Backend>() {
    let other = serve(|_| ok(b"there"));
    let away = other.url("/away");
    let location = away.clone();
    let server = serve(move |r| match r.target.as_str() {
        "/same" => redirect(302, "/kept"),
        "/kept" => ok(b"here"),
        _ => redirect(302, &location),
    });
    let mut config = test_config();
    config
        .default_headers
        .insert("host", "virtual.test".parse().unwrap());
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(server.url("/same")));
    assert_eq!(resp.body, b"here");
    for hop in server.requests() {
        assert_eq!(hop.header("host"), Some("virtual.test"), "{}: {hop:?}", B::NAME);
        let hosts = hop.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("host"));
        assert_eq!(hosts.count(), 1, "{}: {hop:?}", B::NAME);
    }
    let resp = send_ok::<B>(&client, Req::get(server.url("/start")));
    assert_eq!(resp.body, b"there");
    let hop = other.requests().last().cloned().unwrap();
    let authority = away.trim_start_matches("http://").trim_end_matches("/away");
    assert_eq!(hop.header("host"), Some(authority), "{}: {hop:?}", B::NAME);
    settle::<B>(client, &[&server, &other]);
}

/// Each hop names the URL it comes from in `Referer`, without user info
/// (the second hop its own, not the first's); `referer: false` sends none.
pub fn hops_send_referer<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/final" => ok(b"done"),
        "/mid" => redirect(302, "/final"),
        _ => redirect(302, "/mid"),
    });
    for on in [true, false] {
        let mut config = test_config();
        config.referer = on;
        let client = B::client(config);
        let start = server.url("/start?q=1");
        let with_user = start.replacen("http://", "http://user:pw@", 1);
        let resp = send_ok::<B>(&client, Req::get(with_user));
        assert_eq!(resp.body, b"done");
        let hops = server.requests();
        let [.., mid, last] = &hops[..] else {
            panic!("two hops")
        };
        assert_eq!((mid.target.as_str(), last.target.as_str()), ("/mid", "/final"));
        let want = on.then_some(start.as_str());
        assert_eq!(mid.header("referer"), want, "{}: {mid:?}", B::NAME);
        let want = on.then(|| server.url("/mid"));
        assert_eq!(last.header("referer"), want.as_deref(), "{}: {last:?}", B::NAME);
        settle::<B>(client, &[&server]);
    }
}

/// One redirect past `max_redirects` is an error naming every URL tried.
pub fn too_many_redirects<B: Backend>() {
    let server = serve(|r| {
        let n: u32 = r.target[1..].parse().expect("a number");
        redirect(302, &format!("/{}", n + 1))
    });
    let mut config = test_config();
    config.max_redirects = 3;
    let client = B::client(config);
    let err = send_err::<B>(&client, Req::get(server.url("/0")));
    assert!(err.is_redirect() && !err.is_connect() && err.status().is_none(), "{err:?}");
    let Error::TooManyRedirects { max, chain } = err else {
        panic!("{}: expected TooManyRedirects, got {err:?}", B::NAME);
    };
    assert_eq!(max, 3);
    let want: Vec<_> = (0..4).map(|n| server.url(&format!("/{n}"))).collect();
    assert_eq!(chain.iter().map(Uri::to_string).collect::<Vec<_>>(), want);
    assert_eq!(server.requests().len(), 4);
    // The default follows 10.
    let client2 = B::client(test_config());
    let err = send_err::<B>(&client2, Req::get(server.url("/0")));
    assert!(matches!(err, Error::TooManyRedirects { max: 10, ref chain } if chain.len() == 11));
    settle::<B>(client, &[]);
    settle::<B>(client2, &[&server]);
}

/// `max_redirects = 0` returns the redirect; the policy can stop (returning
/// the redirect with its body) or refuse (an error); a missing `Location`
/// is the answer, as in Go.
pub fn policy_limit_and_bad_location<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/nowhere" => response(302, &[("Content-Length", "0")], b""),
        "/stop" | "/deny" | "/fine" => ok(r.target.as_bytes()),
        t => redirect(302, &t.replace("/to", "")),
    });
    let mut config = test_config();
    config.max_redirects = 0;
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(server.url("/to/fine")));
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (StatusCode::FOUND, &b"moved"[..])
    );
    settle::<B>(client, &[]);

    let mut config = test_config();
    config.redirect_policy = Some(RedirectPolicy::new(|attempt| {
        assert_eq!(attempt.status, StatusCode::FOUND);
        assert_eq!(attempt.chain.len(), 1);
        match attempt.next.path() {
            "/stop" => RedirectAction::Stop,
            "/deny" => RedirectAction::Error("no thanks".into()),
            _ => RedirectAction::Follow,
        }
    }));
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(server.url("/to/fine")));
    assert_eq!(resp.body, b"/fine");
    let resp = send_ok::<B>(&client, Req::get(server.url("/to/stop")));
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (StatusCode::FOUND, &b"moved"[..])
    );
    let err = send_err::<B>(&client, Req::get(server.url("/to/deny")));
    assert!(
        matches!(&err, Error::RedirectRefused { next, .. } if *next == *server.url("/deny")),
        "{err:?}"
    );
    // A 302 without a `Location` is the answer, as in Go (golang/go#17773).
    let resp = send_ok::<B>(&client, Req::get(server.url("/nowhere")));
    assert_eq!((resp.status, resp.body.as_slice()), (StatusCode::FOUND, &b""[..]));
    let targets: Vec<_> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        [
            "/to/fine", "/to/fine", "/fine", "/to/stop", "/to/deny", "/nowhere"
        ]
    );
    settle::<B>(client, &[&server]);
}

/// Redirect bodies (sized, chunked, arriving late) are drained, so every
/// hop reuses the one connection.
pub fn connection_reused_across_hops<B: Backend>() {
    let late = response(302, &[("Location", "/3"), ("Content-Length", "9")], b"");
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(redirect(301, "/2")),
        Step::ReadRequest,
        Step::Write(late),
        Step::Sleep(Duration::from_millis(30)),
        Step::Write(b"late body".to_vec()),
        Step::ReadRequest,
        Step::Write(
            [
                response(
                    303,
                    &[("Location", "/4"), ("Transfer-Encoding", "chunked")],
                    b"",
                ),
                b"4\r\nbody\r\n0\r\n\r\n".to_vec(),
            ]
            .concat(),
        ),
        Step::ReadRequest,
        Step::Write(ok(b"landed")),
        // Held until the client closes: the mio loop would drop a connection
        // the server closed before the idle count is read.
        Step::ExpectEof,
    ]]);
    let client = B::client(test_config());
    let resp = send_ok::<B>(&client, Req::get(server.url("/1")));
    assert_eq!(resp.body, b"landed");
    assert_eq!(chain(&resp).len(), 4);
    assert_eq!(server.accepted(), 1);
    let stats = B::stats(&client);
    assert_eq!(
        (stats.dials, stats.reuses, stats.idle, stats.in_use),
        (1, 3, 1, 0),
        "{stats:?}"
    );
    settle::<B>(client, &[&server]);
}

/// A redirect body too large to drain (past `max_drain_bytes`) closes its
/// connection, as the core decides; the next hop dials anew.
pub fn large_redirect_body_closes<B: Backend>() {
    let head = response(
        302,
        &[("Location", "/next"), ("Content-Length", "65536")],
        b"",
    );
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(head),
            Step::Sleep(Duration::from_millis(200)),
            Step::Close,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.conn = config.conn.max_drain_bytes(1024);
    let client = B::client(config);
    let resp = send_ok::<B>(&client, Req::get(server.url("/big")));
    assert_eq!(resp.body, b"next");
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (2, 0), "{stats:?}");
    assert_eq!(stats.closed.get(CloseReason::Abandoned), 1, "{stats:?}");
    settle::<B>(client, &[&server]);
}

/// The request's total deadline covers the whole chain: it passing while a
/// redirect's body trickles in fails the request, it does not restart.
pub fn deadline_covers_the_chain<B: Backend>() {
    let head = response(302, &[("Location", "/next"), ("Content-Length", "10")], b"");
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(head),
            Step::Sleep(Duration::from_millis(600)),
            Step::Close,
        ],
        vec![Step::ReadRequest, Step::Write(ok(b"next"))],
    ]);
    let mut config = test_config();
    config.conn = config.conn.drain_timeout(Duration::from_millis(300));
    let client = B::client(config);
    let started = std::time::Instant::now();
    let req = Req::get(server.url("/slow")).timeout(Some(Duration::from_millis(100)));
    let err = send_err::<B>(&client, req);
    let took = started.elapsed();
    assert!(err.is_timeout(), "{}: {err:?}", B::NAME);
    assert!(
        took < Duration::from_millis(550),
        "{}: took {took:?}",
        B::NAME
    );
    assert_eq!(
        server.requests().len(),
        1,
        "{}: the next hop was sent",
        B::NAME
    );
    drop(client);
}

/// `Accept-Encoding: gzip` is added only when the caller set no
/// `Accept-Encoding`, sent no `Range`, the method is not HEAD and gzip is on.
pub fn accept_encoding_added_only_when_free<B: Backend>() {
    let server = serve(|_| ok(b""));
    let client = B::client(test_config());
    send_ok::<B>(&client, Req::get(server.url("/plain")));
    send_ok::<B>(
        &client,
        Req::get(server.url("/own")).header("Accept-Encoding", "br"),
    );
    send_ok::<B>(
        &client,
        Req::get(server.url("/range")).header("Range", "bytes=0-1"),
    );
    send_ok::<B>(&client, Req::new(Method::HEAD, server.url("/head")));
    send_ok::<B>(&client, Req::new(Method::POST, server.url("/post")));
    let mut off = test_config();
    off.gzip = false;
    let client_off = B::client(off);
    send_ok::<B>(&client_off, Req::get(server.url("/off")));
    let seen: Vec<_> = server
        .requests()
        .iter()
        .map(|r| (r.target.clone(), r.header_all("accept-encoding").join(",")))
        .collect();
    let want = [
        ("/plain", "gzip"),
        ("/own", "br"),
        ("/range", ""),
        ("/head", ""),
        ("/post", "gzip"),
        ("/off", ""),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .collect();
    assert_eq!(seen, want);
    settle::<B>(client, &[]);
    settle::<B>(client_off, &[&server]);
}

/// A gzip answer to our asking is decoded (sized, chunked in small pieces,
/// and large); `Content-Encoding` and `Content-Length` are gone and the
/// response is marked `Decompressed`, also after a redirect.
pub fn gzip_decoded<B: Backend>() {
    let big = text(300_000);
    let big_gz = gz(&big);
    let server = serve(move |r| match r.target.as_str() {
        "/sized" => gzip_ok(&gz(b"hello, gzip")),
        "/chunked" => gzip_chunked(&gz(&text(5000)), 7),
        "/big" => gzip_chunked(&big_gz, 16 * 1024),
        "/empty" => response(
            200,
            &[("Content-Encoding", "gzip"), ("Content-Length", "0")],
            b"",
        ),
        "/moved" => redirect(302, "/sized"),
        _ => ok(b"?"),
    });
    let client = B::client(test_config());
    let decompressed = |resp: &Resp| resp.extensions.get::<Decompressed>().is_some();
    let resp = send_ok::<B>(&client, Req::get(server.url("/sized")));
    assert_eq!(resp.body, b"hello, gzip");
    assert!(resp.headers.get("content-encoding").is_none());
    assert!(resp.headers.get("content-length").is_none());
    assert!(decompressed(&resp));
    let resp = send_ok::<B>(&client, Req::get(server.url("/chunked")));
    assert!(resp.body == text(5000), "chunked gzip body differs");
    assert_eq!(resp.headers["transfer-encoding"], "chunked");
    assert!(decompressed(&resp));
    let resp = send_ok::<B>(&client, Req::get(server.url("/big")));
    assert!(resp.body == text(300_000), "large gzip body differs");
    let resp = send_ok::<B>(&client, Req::get(server.url("/empty")));
    assert!(resp.body.is_empty() && !decompressed(&resp));
    assert_eq!(resp.headers["content-encoding"], "gzip");
    let resp = send_ok::<B>(&client, Req::get(server.url("/moved")));
    assert_eq!(resp.body, b"hello, gzip");
    assert!(decompressed(&resp));
    assert_eq!(chain(&resp).len(), 2);
    let stats = B::stats(&client);
    assert_eq!(stats.dials, 1, "{stats:?}");
    settle::<B>(client, &[&server]);
}

/// A gzip answer the client did not ask for (the caller set
/// `Accept-Encoding`, or gzip is off) comes as it is.
pub fn gzip_not_asked_not_decoded<B: Backend>() {
    let compressed = gz(b"left alone");
    let body = compressed.clone();
    let server = serve(move |_| gzip_ok(&body));
    let client = B::client(test_config());
    let req = Req::get(server.url("/own")).header("Accept-Encoding", "gzip");
    let resp = send_ok::<B>(&client, req);
    assert_eq!(resp.body, compressed);
    assert_eq!(resp.headers["content-encoding"], "gzip");
    assert_eq!(resp.headers["content-length"], compressed.len().to_string());
    assert!(resp.extensions.get::<Decompressed>().is_none());
    let mut off = test_config();
    off.gzip = false;
    let client_off = B::client(off);
    let resp = send_ok::<B>(&client_off, Req::get(server.url("/off")));
    assert_eq!(resp.body, compressed);
    settle::<B>(client, &[]);
    settle::<B>(client_off, &[&server]);
}

/// Corrupt and truncated gzip bodies are errors, never short bodies.
pub fn gzip_corrupt_or_truncated_is_error<B: Backend>() {
    let data = text(20_000);
    let good = gz(&data);
    let mut corrupt = good.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let mut bad_crc = good.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 1;
    let no_trailer = good[..good.len() - 8].to_vec();
    let half = good[..middle].to_vec();
    let mut junk_after = good.clone();
    junk_after.extend_from_slice(b"junk");
    let server = serve(move |r| match r.target.as_str() {
        "/corrupt" => gzip_ok(&corrupt),
        "/crc" => gzip_chunked(&bad_crc, 1000),
        "/no-trailer" => gzip_ok(&no_trailer),
        "/half-chunked" => gzip_chunked(&half, 1000),
        "/junk-after" => gzip_ok(&junk_after),
        _ => gzip_ok(&good),
    });
    let client = B::client(test_config());
    for path in [
        "/corrupt",
        "/crc",
        "/no-trailer",
        "/half-chunked",
        "/junk-after",
    ] {
        let err = send_err::<B>(&client, Req::get(server.url(path)));
        assert!(
            matches!(err, Error::Decode { .. }),
            "{}: {path}: {err:?}",
            B::NAME
        );
    }
    let resp = send_ok::<B>(&client, Req::get(server.url("/good")));
    assert!(resp.body == data, "the good body differs");
    settle::<B>(client, &[&server]);
}

/// nginx: `/chunked` (gzip on) comes compressed and chunked because we ask,
/// and reads back as the plain text.
pub fn nginx_chunked_gzip<B: Backend>() {
    let nginx = crate::require_nginx!();
    let client = B::client(test_config());
    let resp = B::send(&client, Req::get(nginx.url("/chunked")))
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", B::NAME, nginx.error_log()));
    assert_eq!(resp.status, StatusCode::OK);
    assert!(
        resp.extensions.get::<Decompressed>().is_some(),
        "{:?}",
        resp.headers
    );
    assert_eq!(resp.headers["transfer-encoding"], "chunked");
    assert!(resp.headers.get("content-encoding").is_none());
    assert!(resp.body == chunked_text(), "/chunked differs");
    let resp = send_ok::<B>(
        &client,
        Req::get(nginx.url("/chunked")).header("Accept-Encoding", "gzip"),
    );
    assert_eq!(resp.headers["content-encoding"], "gzip");
    assert!(resp.body != chunked_text() && resp.body.starts_with(&[0x1f, 0x8b]));
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
}
}
