//! The async drivers (tokio, smol) keep a connection's timer between its
//! requests and move it only to an earlier deadline: a later one waits
//! until the armed instant passes, when the timer fires early and is armed
//! again for the deadline due. These cases show that a deadline still ends
//! its wait on time when the timer was armed for an earlier one (an
//! async-io timer that fired never fires again unless it is reset, so a
//! missed re-arm would hang the request).

use std::time::{Duration, Instant};

use roundtrip_io::{Error, TimeoutKind};
use roundtrip_tests::server::{ScriptServer, Step, response};

/// The read timeout of these clients.
const IDLE: Duration = Duration::from_millis(300);

/// A connection that answers one request, then reads the next and stalls.
fn answer_then_stall() -> Vec<Step> {
    let reply = response(200, &[("Content-Length", "2")], b"hi");
    vec![
        Step::ReadRequest,
        Step::Write(reply),
        Step::ReadRequest,
        Step::Sleep(Duration::from_secs(10)),
    ]
}

macro_rules! timer_cases {
    ($name:ident, $builder:expr, $block_on:expr, $sleep:expr) => {
        mod $name {
            use super::*;

            /// The second request's read deadline is later than the first
            /// one's, which the kept timer is armed for: it fires there,
            /// early, and the wait goes on until the second deadline.
            #[test]
            fn a_later_deadline_on_a_kept_timer_still_ends_the_wait() {
                let server = ScriptServer::start(vec![answer_then_stall()]);
                let client = $builder.read_timeout(Some(IDLE)).build();
                let url = server.url("/");
                $block_on(async {
                    let first = client.get(&url).send().await.expect("a response");
                    let body = first.into_body().bytes(1024).await.expect("the body");
                    assert_eq!(&body[..], b"hi");
                    // Half the read timeout later, the same connection.
                    $sleep(IDLE / 2).await;
                    let start = Instant::now();
                    let err = client.get(&url).send().await.expect_err("a timeout");
                    let waited = start.elapsed();
                    assert!(
                        matches!(
                            err,
                            Error::Timeout {
                                kind: TimeoutKind::ReadIdle,
                                ..
                            }
                        ),
                        "{err:?}"
                    );
                    // Not at the first deadline (IDLE / 2 after the start),
                    // and not much after its own.
                    assert!(waited >= IDLE - Duration::from_millis(20), "{waited:?}");
                    assert!(waited < IDLE * 5, "{waited:?}");
                    assert_eq!(client.stats().reuses, 1, "{:?}", client.stats());
                });
            }
        }
    };
}

timer_cases!(
    on_tokio,
    roundtrip_tokio::Client::builder(),
    roundtrip_tests::block_on_tokio,
    ::tokio::time::sleep
);

timer_cases!(
    on_smol,
    roundtrip_smol::Client::builder(),
    ::smol::block_on,
    ::smol::Timer::after
);
