//! Cookies (feature `cookies`), written once over a [`Backend`];
//! [`cookie_suite!`](crate::cookie_suite) stamps every case into a `#[test]`
//! for one backend (`tests/cookies_{blocking,mio,smol,tokio}.rs`).
//!
//! Each case gives the client a [`CookieJar`] through its `Config` and
//! asserts the exact `Cookie` fields the scripted loopback servers read,
//! and what the jar holds afterwards. `127.0.0.1` and `localhost` are two
//! hosts; two ports of one host are one host to cookies (RFC 6265 section
//! 8.5).

use std::sync::Arc;
use std::time::Duration;

use roundtrip_io::http::{Method, StatusCode, Uri};
use roundtrip_io::{Config, CookieJar};

use crate::backend::{Backend, Req, Resp, test_config};
use crate::server::{Request, ScriptServer, Step, ok, response};

/// How long a case waits for the server's connection threads to finish.
const SETTLE: Duration = Duration::from_secs(5);

/// Sends `req` and panics, naming the backend and the request, if it fails.
fn send_ok<B: Backend>(client: &B::Client, req: Req) -> Resp {
    let what = format!("{} {}", req.method, req.url);
    B::send(client, req).unwrap_or_else(|e| panic!("{}: {what}: {e}", B::NAME))
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

/// A config for tests whose client keeps cookies in `jar`.
fn with_jar(jar: &CookieJar) -> Config {
    let mut config = test_config();
    config.cookie_jar = Some(jar.clone());
    config
}

/// `200 OK` with these `Set-Cookie` fields and a short body.
fn setting(cookies: &[&str]) -> Vec<u8> {
    let mut headers: Vec<(&str, &str)> = cookies.iter().map(|c| ("Set-Cookie", *c)).collect();
    headers.push(("Content-Length", "2"));
    response(200, &headers, b"ok")
}

/// The `Cookie` fields of every request `server` read, in order.
fn cookies_read(server: &ScriptServer) -> Vec<Vec<String>> {
    let requests = server.requests();
    let fields = |r: &Request| {
        r.header_all("cookie")
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    requests.iter().map(fields).collect()
}

/// `url` of `server` under the name `localhost`: another host than
/// `127.0.0.1` to cookies and to the pool.
fn localhost(server: &ScriptServer, path: &str) -> String {
    format!("http://localhost:{}{path}", server.addr().port())
}

fn uri(url: &str) -> Uri {
    url.parse().expect("a valid url")
}

crate::cases! {
    /// Stamps every cookie case into `#[test]` functions for a backend.
    stamp cookie_suite, list cases, path cookies;

/// A login that sets a cookie and redirects: the next hop carries it, the
/// login itself carried none, and later requests carry it unasked.
pub fn login_cookie_follows_redirect<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/login" => response(
            303,
            &[
                ("Location", "/home"),
                ("Set-Cookie", "sid=abc123; Path=/; HttpOnly"),
                ("Content-Length", "0"),
            ],
            b"",
        ),
        _ => ok(b"home"),
    });
    let jar = CookieJar::new();
    let client = B::client(with_jar(&jar));
    let login = Req::new(Method::POST, server.url("/login"));
    let resp = send_ok::<B>(&client, login.body(crate::backend::ReqBody::Bytes(b"u=1".to_vec())));
    assert_eq!((resp.status, resp.body.as_slice()), (StatusCode::OK, &b"home"[..]));
    send_ok::<B>(&client, Req::get(server.url("/later")));
    assert_eq!(
        cookies_read(&server),
        [vec![], vec!["sid=abc123"], vec!["sid=abc123"]],
        "{}",
        B::NAME
    );
    assert_eq!(jar.cookies(&uri(&server.url("/"))).unwrap(), "sid=abc123");
    settle::<B>(client, &[&server]);
}

/// The caller's own `Cookie` and the jar's go out in one field, the
/// caller's first; a redirect that sets a cookie of a name the caller
/// sent replaces it (golang/go#17494), the rest of the caller's stays.
pub fn own_cookie_merged_and_replaced<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/start" => response(
            302,
            &[
                ("Location", "/next"),
                ("Set-Cookie", "sid=fresh"),
                ("Content-Length", "0"),
            ],
            b"",
        ),
        _ => ok(b"next"),
    });
    let jar = CookieJar::new();
    jar.add_cookie_str("pre=0", &uri(&server.url("/"))).unwrap();
    let client = B::client(with_jar(&jar));
    let req = Req::get(server.url("/start")).header("Cookie", "lang=en; sid=stale");
    send_ok::<B>(&client, req);
    assert_eq!(
        cookies_read(&server),
        [vec!["lang=en; sid=stale; pre=0"], vec!["lang=en; pre=0; sid=fresh"]],
        "{}",
        B::NAME
    );
    settle::<B>(client, &[&server]);
}

/// A redirect to another host carries none of the first host's cookies
/// (the jar decides per URL); a cookie set by that host goes back to it
/// alone. Another port of the first host is the same host to cookies.
pub fn cookies_stay_with_their_host<B: Backend>() {
    let other = serve(|r| match r.target.as_str() {
        "/land" => setting(&["theirs=2"]),
        _ => ok(b"ok"),
    });
    let landing = localhost(&other, "/land");
    let server = serve(move |r| match r.target.as_str() {
        "/go" => response(
            302,
            &[
                ("Location", &landing),
                ("Set-Cookie", "mine=1"),
                ("Content-Length", "0"),
            ],
            b"",
        ),
        _ => ok(b"first"),
    });
    let jar = CookieJar::new();
    let client = B::client(with_jar(&jar));
    let resp = send_ok::<B>(&client, Req::get(server.url("/go")));
    assert_eq!(resp.body, b"ok");
    send_ok::<B>(&client, Req::get(server.url("/back")));
    send_ok::<B>(&client, Req::get(localhost(&other, "/again")));
    // `other` under its IP address: the host of `mine`, not of `theirs`.
    send_ok::<B>(&client, Req::get(other.url("/by-ip")));
    assert_eq!(
        cookies_read(&server),
        [vec![], vec!["mine=1"]],
        "{}",
        B::NAME
    );
    assert_eq!(
        cookies_read(&other),
        [vec![], vec!["theirs=2"], vec!["mine=1"]],
        "{}",
        B::NAME
    );
    settle::<B>(client, &[&server, &other]);
}

/// `Path` scoping: a cookie goes to its path and below it (whole
/// segments), longer paths first.
pub fn cookies_scoped_by_path<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/set" => setting(&["root=1; Path=/", "app=2; Path=/app", "deep=3; Path=/app/deep"]),
        _ => ok(b"ok"),
    });
    let jar = CookieJar::new();
    let client = B::client(with_jar(&jar));
    for path in ["/set", "/other", "/app", "/app/deep/x", "/application"] {
        send_ok::<B>(&client, Req::get(server.url(path)));
    }
    assert_eq!(
        cookies_read(&server),
        [
            vec![],
            vec!["root=1"],
            vec!["app=2; root=1"],
            vec!["deep=3; app=2; root=1"],
            vec!["root=1"],
        ],
        "{}",
        B::NAME
    );
    settle::<B>(client, &[&server]);
}

/// `Max-Age=0` deletes a cookie, and so does an `Expires` in the past;
/// with none left, no `Cookie` field is sent at all.
pub fn expired_cookies_are_deleted<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/set" => setting(&["a=1", "b=2"]),
        "/drop-a" => setting(&["a=gone; Max-Age=0"]),
        "/drop-b" => setting(&["b=gone; Expires=Thu, 01 Jan 1970 00:00:01 GMT"]),
        _ => ok(b"ok"),
    });
    let jar = CookieJar::new();
    let client = B::client(with_jar(&jar));
    for path in ["/set", "/drop-a", "/drop-b", "/after"] {
        send_ok::<B>(&client, Req::get(server.url(path)));
    }
    assert_eq!(
        cookies_read(&server),
        [vec![], vec!["a=1; b=2"], vec!["b=2"], vec![]],
        "{}",
        B::NAME
    );
    assert_eq!(jar.cookies(&uri(&server.url("/"))), None);
    settle::<B>(client, &[&server]);
}

/// A jar preloaded by the caller and shared by two clients: each sends
/// what the other's answers stored, and the caller reads it all back.
pub fn preloaded_jar_shared_between_clients<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/set" => setting(&["s=2; Path=/"]),
        _ => ok(b"ok"),
    });
    let jar = CookieJar::new();
    jar.add_cookie_str("pre=1; Path=/", &uri(&server.url("/")))
        .expect("the jar takes it");
    let first = B::client(with_jar(&jar));
    let second = B::client(with_jar(&jar));
    send_ok::<B>(&first, Req::get(server.url("/set")));
    send_ok::<B>(&second, Req::get(server.url("/read")));
    assert_eq!(
        cookies_read(&server),
        [vec!["pre=1"], vec!["pre=1; s=2"]],
        "{}",
        B::NAME
    );
    assert_eq!(jar.cookies(&uri(&server.url("/x"))).unwrap(), "pre=1; s=2");
    drop(first);
    settle::<B>(second, &[&server]);
}

/// A `Secure` cookie goes over https only: not to plain http on
/// loopback either (Go's jar; browsers would send it there). Nor does
/// plain http set one (RFC 6265bis section 5.7).
pub fn secure_cookie_not_sent_over_http<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/set" => setting(&["sec=1; Secure", "plain=2"]),
        _ => ok(b"ok"),
    });
    let jar = CookieJar::new();
    let https = format!("https://{}/", server.addr());
    jar.add_cookie_str("kept=0; Secure", &uri(&https)).unwrap();
    let client = B::client(with_jar(&jar));
    send_ok::<B>(&client, Req::get(server.url("/set")));
    send_ok::<B>(&client, Req::get(server.url("/next")));
    assert_eq!(cookies_read(&server), [vec![], vec!["plain=2"]], "{}", B::NAME);
    assert_eq!(jar.cookies(&uri(&https)).unwrap(), "kept=0; plain=2");
    settle::<B>(client, &[&server]);
}

/// Without a jar (the default), `Set-Cookie` is ignored and nothing is
/// added: the caller's own `Cookie` goes out as it is.
pub fn no_jar_no_cookies<B: Backend>() {
    let server = serve(|r| match r.target.as_str() {
        "/set" => setting(&["a=1"]),
        _ => ok(b"ok"),
    });
    let client = B::client(test_config());
    send_ok::<B>(&client, Req::get(server.url("/set")));
    send_ok::<B>(&client, Req::get(server.url("/next")));
    send_ok::<B>(&client, Req::get(server.url("/own")).header("Cookie", "mine=1"));
    assert_eq!(
        cookies_read(&server),
        [vec![], vec![], vec!["mine=1"]],
        "{}",
        B::NAME
    );
    settle::<B>(client, &[&server]);
}
}
