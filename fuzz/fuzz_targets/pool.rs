//! `Pool<u32>` driven by an arbitrary sequence of operations under a small
//! random config, against the model of `roundtrip_proto::pool::model` (the
//! one the crate's property test uses) that predicts every answer: which
//! idle connection a checkout gets (most recently used, not expired), when
//! it may dial or must wait, which waiter a grant goes to (FIFO, same key),
//! which idle connections expire or are evicted and why, `remove_idle`,
//! a clock that goes back, and `poll_timeout`. After every operation:
//! `Pool::check_invariants`, per-key gauges and counters equal to the
//! model's, never over `max_conns_per_host`, no waiter while a slot or an
//! idle connection is free, idle counts within their limits.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use roundtrip_proto::pool::PoolConfig;
use roundtrip_proto::pool::model::{Harness, Op};

#[derive(Arbitrary, Debug)]
struct Config {
    max_idle_per_host: u8,
    max_idle_total: u8,
    max_conns_per_host: Option<u8>,
    idle_timeout_ms: Option<u16>,
    keep_alive_margin_ms: u16,
}

/// [`Op`] with fuzzer-made fields; the model takes every index modulo what
/// it picks from.
#[derive(Arbitrary, Debug)]
enum FuzzOp {
    Checkout(u8),
    DialSucceeded(u8),
    DialFailed(u8),
    /// In-use connection (index), reuse verdict (None = Yes, Some(reason
    /// index) = No), Keep-Alive hint in seconds.
    Checkin(u8, Option<u8>, Option<u8>),
    /// As `Checkin`, idle since this many milliseconds ago (a grant
    /// given back).
    CheckinSince(u8, Option<u8>, Option<u8>, u16),
    Discard(u8, u8),
    CancelWait(u8),
    RemoveIdle(u8, u8, bool),
    AdvanceMs(u16),
    RewindMs(u16),
    HandleTimeout,
    TakeClosed,
}

impl FuzzOp {
    fn op(&self) -> Op {
        let u = |n: u8| usize::from(n);
        match *self {
            FuzzOp::Checkout(k) => Op::Checkout(u(k)),
            FuzzOp::DialSucceeded(i) => Op::DialSucceeded(u(i)),
            FuzzOp::DialFailed(i) => Op::DialFailed(u(i)),
            FuzzOp::Checkin(i, verdict, hint) => {
                Op::Checkin(u(i), verdict.map(u), hint.map(u64::from))
            }
            FuzzOp::CheckinSince(i, verdict, hint, back) => Op::CheckinSince(
                u(i),
                verdict.map(u),
                hint.map(u64::from),
                u64::from(back),
            ),
            FuzzOp::Discard(i, r) => Op::Discard(u(i), u(r)),
            FuzzOp::CancelWait(i) => Op::CancelWait(u(i)),
            FuzzOp::RemoveIdle(k, i, wrong) => Op::RemoveIdle(u(k), u(i), wrong),
            FuzzOp::AdvanceMs(ms) => Op::AdvanceMs(u64::from(ms)),
            FuzzOp::RewindMs(ms) => Op::RewindMs(u64::from(ms)),
            FuzzOp::HandleTimeout => Op::HandleTimeout,
            FuzzOp::TakeClosed => Op::TakeClosed,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<FuzzOp>,
}

fuzz_target!(|input: Input| {
    let c = &input.config;
    let config = PoolConfig::default()
        .max_idle_per_host(usize::from(c.max_idle_per_host) % 5)
        .max_idle_total(usize::from(c.max_idle_total) % 7)
        .max_conns_per_host(c.max_conns_per_host.map(|n| usize::from(n) % 4))
        .idle_timeout(
            c.idle_timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        )
        .keep_alive_margin(Duration::from_millis(
            u64::from(c.keep_alive_margin_ms) % 3000,
        ));
    let mut h = Harness::new(config);
    for op in input.ops.iter().take(256) {
        h.op(&op.op());
        h.check();
    }
    h.drain();
});
