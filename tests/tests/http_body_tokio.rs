//! The async response body as other crates consume it (`http_body::Body`,
//! as hyper's `Incoming`): an exact `size_hint` for a sized body, counted
//! down; `is_end_stream` as soon as nothing more comes (at once for a
//! `HEAD` answer); trailers as a frame after the data; and reads after an
//! error that keep failing instead of reading as a clean end.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Body as _;
use roundtrip_tests::server::{ScriptServer, Step, ok, response};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client() -> roundtrip_tokio::Client {
    roundtrip_tokio::Client::builder()
        .timeout(Some(Duration::from_secs(10)))
        .gzip(false)
        .build()
}

#[test]
fn a_sized_body_has_an_exact_size_hint_counted_down() {
    // 200,000 bytes: more than comes with the head, read in pieces.
    let body = vec![b'x'; 200_000];
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(&body)),
        Step::ReadRequest,
        Step::Write(response(200, &[("Content-Length", "5")], b"")),
        Step::ExpectEof,
    ]]);
    let client = client();
    runtime().block_on(async {
        let mut response = client.get(server.url("/big")).send().await.unwrap();
        let body = response.body_mut();
        assert_eq!(body.size_hint().exact(), Some(200_000));
        assert!(!body.is_end_stream());
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(body.size_hint().exact(), Some(200_000 - first.len() as u64));
        let mut total = first.len();
        while total < 200_000 {
            let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
            total += piece.len();
        }
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.is_end_stream(), "nothing left of a sized body");
        assert!(body.frame().await.is_none());

        // HEAD: no body, which the hint says before any poll.
        let head = client.head(server.url("/h")).send().await.unwrap();
        assert!(head.body().is_end_stream());
        assert_eq!(head.body().size_hint().exact(), Some(0));
    });
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
}

#[test]
fn chunked_trailers_come_as_a_frame_after_the_data() {
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n";
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(chunked.to_vec()),
        Step::ExpectEof,
    ]]);
    let client = client();
    runtime().block_on(async {
        let response = client.get(server.url("/t")).send().await.unwrap();
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), None, "chunked: unknown");
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-sum"], "42");
        assert_eq!(&collected.to_bytes()[..], b"abc");
    });
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
}

#[test]
fn reads_after_an_error_keep_failing() {
    // Ten bytes announced, four sent, then the close.
    let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfour".to_vec();
    let big = ok(&vec![b'y'; 5000]);
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Write(cut), Step::Close],
        vec![Step::ReadRequest, Step::Write(big), Step::ExpectEof],
    ]);
    let client = client();
    runtime().block_on(async {
        let mut response = client.get(server.url("/cut")).send().await.unwrap();
        let body = response.body_mut();
        let err = body.bytes(1 << 20).await.unwrap_err();
        assert!(
            matches!(err, roundtrip_tokio::Error::ClosedEarly { .. }),
            "{err:?}"
        );
        assert!(body.chunk().await.is_err(), "a read after the error");
        assert!(body.bytes(1 << 20).await.is_err());
        assert!(
            matches!(body.frame().await, Some(Err(_))),
            "http_body's frames do not end cleanly either"
        );

        // Past the limit of `bytes`: the rest is given up, and a read
        // after does not look like a clean (shorter) end.
        let mut response = client.get(server.url("/big")).send().await.unwrap();
        let body = response.body_mut();
        let err = body.bytes(100).await.unwrap_err();
        assert!(
            matches!(err, roundtrip_tokio::Error::BodyTooLarge { .. }),
            "{err:?}"
        );
        assert!(body.text(1 << 20).await.is_err());
    });
    drop(client);
    assert!(server.wait_idle(Duration::from_secs(10)));
    server.assert_no_errors();
}
