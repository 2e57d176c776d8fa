//! The backend test suite, written once. Each case is a generic function over
//! a [`Backend`]; [`backend_suite!`](crate::backend_suite) stamps every case
//! into a `#[test]` for one backend.
//!
//! Cases assert on three views of the same exchange: what the client returned,
//! what the scripted server read and accepted ([`ScriptServer::requests`],
//! [`ScriptServer::accepted`]), and the pool counters ([`Backend::stats`]).
//! Every wait is bounded; timing-based cases only assert lower bounds from
//! deadlines the client itself keeps, plus a generous upper bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_io::http::{Method, StatusCode, Version};
use roundtrip_io::proto::CloseReason;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_io::{Error, Phase, TimeoutKind};

use crate::backend::{
    Backend, ReadMode, Req, ReqBody, Resp, assert_head_timeout, assert_timeout, test_config,
    wait_no_idle,
};
use crate::fixtures::{chunked_text, pattern};
use crate::server::{ScriptServer, Step, chunked, ok, response};

/// How long a case waits for the server's connection threads to finish
/// their scripts before asserting on script errors.
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

/// Connections closed for `reason` so far.
fn closed(stats: &PoolStats, reason: CloseReason) -> u64 {
    stats.closed.get(reason)
}

/// Waits for every script to end, then requires that none failed.
fn settle(server: &ScriptServer) {
    assert!(server.wait_idle(SETTLE), "server scripts still running");
    server.assert_no_errors();
}

/// Ends a script like a keep-alive server: the connection stays open until
/// the client closes it. A script that just ended would close it, and the mio
/// loop, which watches idle connections, drops one the moment its server
/// closes it (or does not pool it when the close came with the response):
/// an idle count or a reuse checked after the script would race that close.
fn held(mut steps: Vec<Step>) -> Vec<Step> {
    steps.push(Step::ExpectEof);
    steps
}

/// Drops the client (closing its idle connections, which ends [`held`]
/// scripts), then [`settle`]s.
fn settle_held<C>(client: C, server: &ScriptServer) {
    drop(client);
    settle(server);
}

/// Waits until the accept loop (which polls) has seen every connection the
/// client opened, so an `accepted()` upper bound is not read too early.
fn settle_accepts(server: &ScriptServer, at_least: usize) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while server.accepted() < at_least && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    // One more accept-poll period for connections beyond `at_least`.
    thread::sleep(Duration::from_millis(20));
}

/// A request of `method` on `url` with an in-memory body.
fn with_body(method: Method, url: String, body: &[u8]) -> Req {
    Req::new(method, url).body(ReqBody::Bytes(body.to_vec()))
}

/// Raw response bytes: `head` (status line and fields, CRLF-separated, no
/// final blank line), the blank line, then `body`.
fn raw(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// The script of a server that answers one request, then reads the next and
/// closes without answering (it closes exactly when the client reuses).
fn close_on_reuse() -> Vec<Step> {
    vec![
        Step::ReadRequest,
        Step::Write(ok(b"one")),
        Step::ReadRequest,
        Step::Close,
    ]
}

pub mod bodies;
pub mod conformance;
pub mod errors;
pub mod pool;
pub mod requests;
pub mod responses;
pub mod retries;
pub mod servers;
pub mod switching;

pub use bodies::*;
pub use errors::*;
pub use pool::*;
pub use requests::*;
pub use responses::*;
pub use retries::*;
pub use servers::*;
pub use switching::*;

crate::cases! {
    /// Stamps every case of the suite into `#[test]` functions for a backend.
    stamp backend_suite, list cases, groups;
    responses => __suite_responses,
    bodies => __suite_bodies,
    retries => __suite_retries,
    pool => __suite_pool,
    requests => __suite_requests,
    errors => __suite_errors,
    servers => __suite_servers,
    switching => __suite_switching,
    conformance => __suite_conformance,
}
