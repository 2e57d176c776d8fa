//! `roundtrip bench` end to end: the embedded loopback origin, every backend,
//! and the report a user reads.

use std::process::Command;

fn bench(backend: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args([
            "bench",
            "--backend",
            backend,
            "-n",
            "300",
            "-c",
            "4",
            "--size",
            "1000",
        ])
        .output()
        .expect("run roundtrip bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{backend}: exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn every_backend_reports_throughput_latency_and_reuse() {
    for backend in ["blocking", "tokio", "mio", "smol"] {
        let out = bench(backend);
        assert!(out.contains("300 of 300 requests in"), "{backend}: {out}");
        assert!(out.contains(" req/s"), "{backend}: {out}");
        assert!(out.contains("latency: p50 "), "{backend}: {out}");
        // Four requests in flight at most: at most four connections, the rest reused.
        let dials: u64 = out
            .split("connections: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{backend}: no connections line in {out}"));
        assert!((1..=4).contains(&dials), "{backend}: {dials} dials\n{out}");
        assert!(
            out.contains(&format!("{} reused", 300 - dials)),
            "{backend}: {out}"
        );
        assert!(!out.contains("errors:"), "{backend}: {out}");
    }
}

#[test]
fn unknown_backend_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["bench", "--backend", "carrier-pigeon"])
        .output()
        .expect("run roundtrip bench");
    assert_eq!(out.status.code(), Some(2));
}

/// Counts and sizes out of range are usage errors, not a value quietly
/// changed (`-n 0` ran one request) nor an allocation that aborts.
#[test]
fn out_of_range_numbers_are_usage_errors() {
    for args in [
        &["bench", "-n", "0"][..],
        &["bench", "-c", "0"],
        &["bench", "--size", "99999999999999"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
            .args(args)
            .output()
            .expect("run roundtrip bench");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not from"), "{args:?}: {err}");
    }
}

/// A reader that goes away (`| head`) ends the run quietly, as for `get`:
/// no panic about printing to stdout.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["bench", "-n", "50", "-c", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run roundtrip bench");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("the bench ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Bodies larger than the mio driver collects by default (64 MiB) are
/// counted as they stream, on every backend, holding none of them.
#[test]
fn bodies_over_64_mib_are_streamed_on_every_backend() {
    for backend in ["mio", "blocking", "tokio", "smol"] {
        let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
            .args(["bench", "--backend", backend, "-n", "1", "-c", "1"])
            .args(["--size", "70000000"])
            .output()
            .expect("run roundtrip bench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{backend}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("1 of 1 requests in"), "{backend}: {stdout}");
    }
}
