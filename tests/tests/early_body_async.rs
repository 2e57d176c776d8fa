//! The async drivers (tokio, smol) decode a sized body that came whole
//! with its head before the caller asks: it ends in the poll that read it,
//! so its connection is back in the pool when `send` returns (as on the
//! blocking backend), with no byte of it copied out of the thread's read
//! buffer. A body that goes on past that read is left alone and read as
//! the caller asks; giving it up still settles its connection before
//! `discard` returns, and dropping it drains it in a task of its own.

use std::time::Duration;

use roundtrip_io::drive::{ResponseBody, Runtime};
use roundtrip_io::http;
use roundtrip_io::proto::pool::PoolStats;
use roundtrip_tests::server::{Script, ScriptServer, Step, response};

const BODY: &[u8] = b"Hello, world!";

/// A 13 B body in two writes 50 ms apart: the head and `Hello, ` first.
fn split_reply() -> Vec<Step> {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, ".to_vec();
    vec![
        Step::ReadRequest,
        Step::Write(head),
        Step::Sleep(Duration::from_millis(50)),
        Step::Write(b"world!".to_vec()),
    ]
}

fn whole_reply() -> Vec<Step> {
    let reply = response(200, &[("Content-Length", "13")], BODY);
    vec![Step::ReadRequest, Step::Write(reply)]
}

fn script(parts: impl IntoIterator<Item = Vec<Step>>) -> Script {
    let mut steps: Vec<Step> = parts.into_iter().flatten().collect();
    steps.push(Step::Sleep(Duration::from_secs(5)));
    steps
}

/// Which connections the pool holds: (idle, in use).
fn held(stats: &PoolStats) -> (usize, usize) {
    (stats.idle, stats.in_use)
}

/// Reads `response`'s body, which must be [`BODY`].
async fn assert_body<R: Runtime>(response: http::Response<ResponseBody<R>>) {
    let body = response.into_body().bytes(1024).await.expect("the body");
    assert_eq!(&body[..], BODY);
}

/// One connection dialed, and used again once.
fn assert_reused(stats: PoolStats) {
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{stats:?}");
}

/// The three cases on one async backend: `$client` makes a client,
/// `$block_on` runs a future to its end.
macro_rules! early_body_cases {
    ($name:ident, $client:expr, $block_on:expr, $sleep:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn a_small_body_frees_its_connection_with_the_head() {
                let server = ScriptServer::start(vec![script([whole_reply(), whole_reply()])]);
                let (client, url) = ($client, server.url("/"));
                $block_on(async {
                    let response = client.get(&url).send().await.expect("a response");
                    // Back in the pool before a byte of the body was asked for.
                    assert_eq!(held(&client.stats()), (1, 0), "{:?}", client.stats());
                    assert_body(response).await;
                    assert_body(client.get(&url).send().await.expect("a response")).await;
                    assert_reused(client.stats());
                });
            }

            #[test]
            fn a_body_that_goes_on_past_the_head_is_read_after_it() {
                let server = ScriptServer::start(vec![script([split_reply()])]);
                let (client, url) = ($client, server.url("/"));
                $block_on(async {
                    let response = client.get(&url).send().await.expect("a response");
                    assert_eq!(held(&client.stats()), (0, 1), "{:?}", client.stats());
                    assert_body(response).await;
                    assert_eq!(held(&client.stats()), (1, 0), "{:?}", client.stats());
                });
            }

            #[test]
            fn discarding_a_body_that_goes_on_past_the_head_settles_its_connection() {
                let server = ScriptServer::start(vec![script([split_reply(), whole_reply()])]);
                let (client, url) = ($client, server.url("/"));
                $block_on(async {
                    let response = client.get(&url).send().await.expect("a response");
                    response.into_body().discard().await;
                    // The 6 bytes left were drained: the connection is idle
                    // once `discard` returns, and serves the next request.
                    assert_eq!(held(&client.stats()), (1, 0), "{:?}", client.stats());
                    assert_body(client.get(&url).send().await.expect("a response")).await;
                    assert_reused(client.stats());
                });
            }

            #[test]
            fn dropping_a_body_that_goes_on_past_the_head_drains_its_connection() {
                let server = ScriptServer::start(vec![script([split_reply(), whole_reply()])]);
                let (client, url) = ($client, server.url("/"));
                $block_on(async {
                    let response = client.get(&url).send().await.expect("a response");
                    drop(response);
                    // Drained by a task of its own once the last 6 bytes
                    // came (50 ms later), not closed.
                    for _ in 0..200 {
                        if held(&client.stats()) == (1, 0) {
                            break;
                        }
                        $sleep(Duration::from_millis(10)).await;
                    }
                    assert_eq!(held(&client.stats()), (1, 0), "{:?}", client.stats());
                    assert_body(client.get(&url).send().await.expect("a response")).await;
                    assert_reused(client.stats());
                });
            }
        }
    };
}

early_body_cases!(
    on_tokio,
    roundtrip_tokio::Client::new(),
    roundtrip_tests::block_on_tokio,
    ::tokio::time::sleep
);

early_body_cases!(
    on_smol,
    roundtrip_smol::Client::new(),
    ::smol::block_on,
    ::smol::Timer::after
);
