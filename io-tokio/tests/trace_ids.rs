//! Trace events name their request: two requests in flight at once on one
//! client get distinct ids, every event (the pool's check-in included) is
//! attributed to the request it belongs to, and a redirect's hops share one.

use std::sync::{Arc, Mutex};

use roundtrip_tokio::{Client, RequestId, TraceEvent, Traced, Tracer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Log = Arc<Mutex<Vec<(Option<RequestId>, TraceEvent)>>>;

fn recording_client() -> (Client, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let tracer = Tracer::with_ids(move |t: &Traced| {
        sink.lock().unwrap().push((t.request, t.event.clone()));
    });
    (Client::builder().trace(tracer).build(), log)
}

async fn read_head(socket: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before its head");
        head.extend_from_slice(&buf[..n]);
    }
    head
}

#[tokio::test]
async fn concurrent_requests_events_are_attributed_to_their_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Both requests are in flight (each on its own connection) before either
    // is answered, so their events interleave.
    let server = tokio::spawn(async move {
        let (mut a, _) = listener.accept().await.unwrap();
        read_head(&mut a).await;
        let (mut b, _) = listener.accept().await.unwrap();
        read_head(&mut b).await;
        for socket in [&mut b, &mut a] {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        }
        (a, b)
    });
    let (client, log) = recording_client();
    let url = format!("http://127.0.0.1:{port}/");
    let one = async {
        let mut response = client.get(&url).send().await.unwrap();
        response.body_mut().bytes(64).await.unwrap()
    };
    let two = async {
        let mut response = client.get(&url).send().await.unwrap();
        response.body_mut().bytes(64).await.unwrap()
    };
    let (one, two) = tokio::join!(one, two);
    assert_eq!((&one[..], &two[..]), (&b"ok"[..], &b"ok"[..]));
    let _sockets = server.await.unwrap();

    let log = log.lock().unwrap().clone();
    let ids: Vec<RequestId> = log.iter().filter_map(|(id, _)| *id).collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "two requests: {log:?}");
    assert!(log.iter().all(|(id, _)| id.is_some()), "{log:?}");
    // Interleaved: the second request's first event comes before the first
    // request's last.
    let first_of_second = ids.iter().position(|&id| id == distinct[1]).unwrap();
    let last_of_first = ids.iter().rposition(|&id| id == distinct[0]).unwrap();
    assert!(first_of_second < last_of_first, "not interleaved: {log:?}");
    // Each request's own events, in the documented order, on its own
    // connection: GotConn and PutIdleConn name the same connection.
    for id in distinct {
        let own: Vec<&TraceEvent> = log
            .iter()
            .filter(|(r, _)| *r == Some(id))
            .map(|(_, e)| e)
            .collect();
        assert!(matches!(own[0], TraceEvent::GetConn { .. }), "{own:?}");
        let got = own.iter().find_map(|e| match e {
            TraceEvent::GotConn { id, .. } => Some(*id),
            _ => None,
        });
        let put = own.iter().find_map(|e| match e {
            TraceEvent::PutIdleConn { id, kept: true, .. } => Some(*id),
            _ => None,
        });
        assert!(got.is_some() && got == put, "{own:?}");
        assert!(own.contains(&&TraceEvent::GotFirstResponseByte), "{own:?}");
    }
}

#[tokio::test]
async fn a_redirects_hops_share_one_id() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 302 Found\r\nLocation: /there\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ];
        for answer in answers {
            read_head(&mut socket).await;
            socket.write_all(answer).await.unwrap();
        }
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    let (client, log) = recording_client();
    let mut response = client
        .get(format!("http://127.0.0.1:{port}/here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.body_mut().bytes(64).await.unwrap(), "ok");
    // The next request, on the same connection, has an id of its own.
    let next = client
        .get(format!("http://127.0.0.1:{port}/there"))
        .send()
        .await;
    assert_eq!(next.unwrap().status(), 204);

    let log = log.lock().unwrap().clone();
    let first = log[0].0.expect("the first event names its request");
    let hops: Vec<_> = log
        .iter()
        .take_while(|(id, _)| *id == Some(first))
        .collect();
    let checkouts = hops
        .iter()
        .filter(|(_, e)| matches!(e, TraceEvent::GetConn { .. }))
        .count();
    let check_ins = hops
        .iter()
        .filter(|(_, e)| matches!(e, TraceEvent::PutIdleConn { .. }))
        .count();
    assert_eq!((checkouts, check_ins), (2, 2), "{log:?}");
    assert!(
        log.iter()
            .skip(hops.len())
            .all(|(id, _)| *id != Some(first)),
        "{log:?}"
    );
    assert!(
        log.iter().skip(hops.len()).any(|(id, _)| id.is_some()),
        "the next request has its own id: {log:?}"
    );
}
