//! The idle alarms of the pools (idle connections closed when they expire,
//! not at the next request): the blocking clients' one thread goes on
//! after a client's tracer panicked on it, and the async clients' alarm
//! tasks end with their client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use roundtrip_blocking::{Client, TraceEvent};

/// Waits (bounded by 5 s) until `client` holds no idle connection.
fn idle_goes(client: &Client) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if client.stats().idle == 0 {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A second client's idle connection still closes on time after a first
/// client's tracer panicked on the process's alarm thread.
#[test]
fn a_panicking_tracer_does_not_stop_the_alarms() {
    static PANICKED: AtomicBool = AtomicBool::new(false);
    let url = format!("http://{}/small", roundtrip_tests::origin::spawn().unwrap());
    let idle = Some(Duration::from_millis(300));
    let panicking = Client::builder()
        .idle_timeout(idle)
        .trace(|event: &TraceEvent| {
            if let TraceEvent::ConnClosed { .. } = event {
                PANICKED.store(true, Ordering::SeqCst);
                panic!("the tracer panics (as this test wants)");
            }
        })
        .build();
    let mut response = panicking.get(url.as_str()).send().unwrap();
    assert_eq!(response.body_mut().bytes(100).unwrap(), "Hello, world!");
    drop(response);
    assert!(idle_goes(&panicking), "{:?}", panicking.stats());
    assert!(PANICKED.load(Ordering::SeqCst), "the tracer was called");
    let client = Client::builder().idle_timeout(idle).build();
    let mut response = client.get(url.as_str()).send().unwrap();
    assert_eq!(response.body_mut().bytes(100).unwrap(), "Hello, world!");
    drop(response);
    assert_eq!(client.stats().idle, 1);
    assert!(idle_goes(&client), "{:?}", client.stats());
}

/// A program that makes and drops async clients keeps no alarm task of
/// theirs waiting for its timer (90 s each with the default idle timeout).
#[test]
fn dropped_clients_leave_no_alarm_task() {
    let url = format!("http://{}/small", roundtrip_tests::origin::spawn().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        for _ in 0..20 {
            let client = roundtrip_tokio::Client::new();
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(
                response.into_body().bytes(100).await.unwrap(),
                "Hello, world!"
            );
            // Its connection went idle: an alarm task waits for it.
            assert!(alive() >= 1);
            drop(client);
        }
        // Bounded: the woken tasks end on their next poll.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(alive(), 0, "alarm tasks of dropped clients still pending");
    });
}
