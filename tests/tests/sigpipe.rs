//! No backend's write raises `SIGPIPE`: a host that left the signal at
//! its default (a C program embedding the library; Rust's own `main`
//! ignores it, so a plain test cannot tell) must get an error from a
//! write to a connection the server reset, not die.
//!
//! Each case runs in a child process (this test binary again, one test
//! named, an environment variable set) that restores `SIGPIPE`'s default
//! first; the parent checks that the child was not killed by it. The
//! writes are the backends' own, called directly with two slices (a
//! vectored write): `roundtrip_io::sys::try_send` (the blocking and
//! mio backends'), the tokio and smol `Runtime::poll_write`, and their
//! upgraded connections' `write_vectored` (the caller's own). The peer
//! closed; a first write goes out and its kernel answers with a reset; the
//! second write meets `EPIPE`. (Through a whole request the drivers read
//! before they write again and mostly see the close first, so only a
//! race reaches that write there.)

use std::future::poll_fn;
use std::io::IoSlice;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use roundtrip_io::drive::Runtime;

const CHILD: &str = "ROUNDTRIP_SIGPIPE_CHILD";
/// Two slices: a vectored write.
fn two() -> [IoSlice<'static>; 2] {
    [IoSlice::new(b"a"), IoSlice::new(b"b")]
}

/// A listener whose one connection, once accepted, is closed at once.
fn closing_peer() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || drop(listener.accept().unwrap()));
    (addr, peer)
}

/// In the child: restores `SIGPIPE`, then writes twice with `write` to a
/// connection whose peer closed, and says it survived.
fn child(name: &str, write: impl FnOnce(SocketAddr, &dyn Fn())) {
    if std::env::var_os(CHILD).is_none() {
        return; // run by the parent only
    }
    // SAFETY: setting a signal's disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let (addr, peer) = closing_peer();
    let settle = || std::thread::sleep(Duration::from_millis(50));
    write(addr, &|| {
        peer_done(&peer);
        settle();
    });
    println!("{name}: survived");
}

fn peer_done(peer: &std::thread::JoinHandle<()>) {
    // Bounded: the peer thread only accepts and closes.
    for _ in 0..200 {
        if peer.is_finished() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// In the parent: runs `test` of this binary in a child process and
/// checks it ended normally.
fn parent(test: &str) {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child died ({:?}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("survived"), "{text}");
}

#[test]
fn sys_child() {
    child("sys", |addr, settle| {
        let stream = TcpStream::connect(addr).unwrap();
        settle();
        assert_eq!(roundtrip_io::sys::try_send(&stream, &two()).unwrap(), 2);
        settle();
        let second = roundtrip_io::sys::try_send(&stream, &two());
        assert!(second.is_err(), "{second:?}");
    });
}

#[test]
fn tokio_child() {
    child("tokio", |addr, settle| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            settle();
            let first =
                poll_fn(|cx| roundtrip_tokio::Tokio::poll_write(&mut stream, cx, &two())).await;
            assert_eq!(first.unwrap(), 2);
            settle();
            let second =
                poll_fn(|cx| roundtrip_tokio::Tokio::poll_write(&mut stream, cx, &two())).await;
            assert!(second.is_err(), "{second:?}");
        });
    });
}

#[test]
fn smol_child() {
    child("smol", |addr, settle| {
        smol::block_on(async {
            let mut stream = smol::Async::<TcpStream>::connect(addr).await.unwrap();
            settle();
            let first =
                poll_fn(|cx| roundtrip_smol::Smol::poll_write(&mut stream, cx, &two())).await;
            assert_eq!(first.unwrap(), 2);
            settle();
            let second =
                poll_fn(|cx| roundtrip_smol::Smol::poll_write(&mut stream, cx, &two())).await;
            assert!(second.is_err(), "{second:?}");
        });
    });
}

/// A connection switched to another protocol, as the caller writes to it
/// (`write_vectored`, as `copy_bidirectional` does).
#[test]
fn tokio_upgraded_child() {
    use tokio::io::AsyncWriteExt;
    child("tokio upgraded", |addr, settle| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut up = roundtrip_tokio::Upgraded::from(roundtrip_io::drive::Upgraded::new(
                stream,
                bytes::Bytes::new(),
            ));
            settle();
            assert!(up.write_vectored(&two()).await.unwrap() > 0);
            settle();
            let second = up.write_vectored(&two()).await;
            assert!(second.is_err(), "{second:?}");
        });
    });
}

#[test]
fn smol_upgraded_child() {
    use smol::io::AsyncWriteExt;
    child("smol upgraded", |addr, settle| {
        smol::block_on(async {
            let stream = smol::Async::<TcpStream>::connect(addr).await.unwrap();
            let mut up: roundtrip_smol::Upgraded =
                roundtrip_io::drive::Upgraded::new(stream, bytes::Bytes::new());
            settle();
            assert!(up.write_vectored(&two()).await.unwrap() > 0);
            settle();
            let second = up.write_vectored(&two()).await;
            assert!(second.is_err(), "{second:?}");
        });
    });
}

#[test]
fn tokio_upgraded_raises_no_sigpipe() {
    parent("tokio_upgraded_child");
}

#[test]
fn smol_upgraded_raises_no_sigpipe() {
    parent("smol_upgraded_child");
}

#[test]
fn sys_try_send_raises_no_sigpipe() {
    parent("sys_child");
}

#[test]
fn tokio_poll_write_raises_no_sigpipe() {
    parent("tokio_child");
}

#[test]
fn smol_poll_write_raises_no_sigpipe() {
    parent("smol_child");
}
