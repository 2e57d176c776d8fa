//! Happy Eyeballs v2 (RFC 8305 sections 4 and 5), the connecting part, as a
//! plan with no socket and no clock: which address to try next, when to
//! start it, which attempt to give up, and when the dial failed.
//!
//! The addresses are interleaved by family (the first address's family
//! first, then the other, and so on, RFC 8305 4). The first attempt starts
//! at once; each next one [`delay`](HappyEyeballs::new) after the last
//! started, or as soon as one fails; every attempt is bounded by the
//! connect timeout; the first to connect wins and the others are given up.
//!
//! ```
//! use core::time::Duration;
//! use roundtrip_proto::dial::{DialStep, HappyEyeballs};
//! use roundtrip_proto::time::Instant;
//!
//! let v6 = "[::1]:80".parse().unwrap();
//! let v4 = "127.0.0.1:80".parse().unwrap();
//! let delay = Duration::from_millis(250);
//! let mut dial = HappyEyeballs::new([v6, v4], delay, Some(Duration::from_secs(10)));
//!
//! let t0 = Instant::ZERO;
//! assert_eq!(dial.poll(t0), DialStep::Connect(v6));
//! assert_eq!(dial.poll(t0), DialStep::Wait);
//! // Nothing connected within the delay: the IPv4 attempt starts too.
//! let t1 = dial.poll_timeout().unwrap();
//! assert_eq!(t1, t0 + delay);
//! assert_eq!(dial.poll(t1), DialStep::Connect(v4));
//! // IPv4 wins: the IPv6 attempt is given up.
//! assert!(dial.handle_connected(v4));
//! assert_eq!(dial.poll(t1), DialStep::Abort(v6));
//! assert_eq!(dial.poll(t1), DialStep::Done);
//! ```

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::time::Instant;

/// The Connection Attempt Delay RFC 8305 section 5 recommends.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Most attempts under way at once. The delay keeps a dial far below it
/// (a 30 s connect timeout at 250 ms is 120), but a delay of zero would
/// open a socket per address at once: a resolver's thousands of them
/// would take the process's file descriptors. The next starts when one
/// ends.
pub const MAX_RUNNING: usize = 16;

/// What the driver does next for a [`HappyEyeballs`] dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialStep {
    /// Start an attempt to connect to this address; report its end with
    /// [`handle_connected`](HappyEyeballs::handle_connected) or
    /// [`handle_failed`](HappyEyeballs::handle_failed).
    Connect(SocketAddr),
    /// The attempt to this address ran out of time (its connect timeout
    /// passed): close its socket. It counts as failed.
    Expired(SocketAddr),
    /// Close the attempt to this address: another one won.
    Abort(SocketAddr),
    /// Wait for an attempt to end, or for [`poll_timeout`](HappyEyeballs::poll_timeout).
    Wait,
    /// An attempt connected, and every other one was given up.
    Done,
    /// Every address failed (or there was none).
    Exhausted,
}

/// One dial's attempts. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct HappyEyeballs {
    /// Addresses not tried yet, in the order they will be.
    queue: VecDeque<SocketAddr>,
    /// Attempts under way, each with its deadline.
    running: Vec<(SocketAddr, Option<Instant>)>,
    /// Attempts to close because another won.
    losers: Vec<SocketAddr>,
    /// The next attempt starts then, even if others are under way.
    next_at: Instant,
    delay: Duration,
    timeout: Option<Duration>,
    won: bool,
    /// Attempts that failed, and how many of them by running out of time.
    failed: usize,
    expired: usize,
}

impl HappyEyeballs {
    /// A dial of `addrs` (in the resolver's order, interleaved here by
    /// family), starting the next attempt `delay` after the last, each
    /// bounded by `timeout` (`None`: by nothing but the caller's deadline).
    pub fn new(
        addrs: impl IntoIterator<Item = SocketAddr>,
        delay: Duration,
        timeout: Option<Duration>,
    ) -> HappyEyeballs {
        HappyEyeballs {
            queue: interleave(addrs),
            running: Vec::new(),
            losers: Vec::new(),
            next_at: Instant::ZERO,
            delay,
            timeout,
            won: false,
            failed: 0,
            expired: 0,
        }
    }

    /// The next step at `now`.
    pub fn poll(&mut self, now: Instant) -> DialStep {
        if let Some(addr) = self.losers.pop() {
            return DialStep::Abort(addr);
        }
        if self.won {
            return DialStep::Done;
        }
        if let Some(i) = self
            .running
            .iter()
            .position(|(_, at)| at.is_some_and(|at| at <= now))
        {
            let (addr, _) = self.running.swap_remove(i);
            self.failed += 1;
            self.expired += 1;
            // The next address need not wait out the delay.
            self.next_at = now;
            return DialStep::Expired(addr);
        }
        let room = self.running.len() < MAX_RUNNING;
        if !self.queue.is_empty() && (self.running.is_empty() || (room && self.next_at <= now)) {
            let Some(addr) = self.queue.pop_front() else {
                return DialStep::Wait; // unreachable: not empty
            };
            let deadline = self.timeout.and_then(|t| now.checked_add(t));
            self.running.push((addr, deadline));
            self.next_at = now + self.delay;
            return DialStep::Connect(addr);
        }
        if self.running.is_empty() {
            return DialStep::Exhausted;
        }
        DialStep::Wait
    }

    /// The attempt to `addr` connected. True if it wins (the first);
    /// false for an attempt the plan does not know or no longer wants
    /// (the caller closes its socket).
    pub fn handle_connected(&mut self, addr: SocketAddr) -> bool {
        let Some(i) = self.running.iter().position(|(a, _)| *a == addr) else {
            return false;
        };
        if self.won {
            return false;
        }
        self.running.swap_remove(i);
        self.won = true;
        self.queue.clear();
        self.losers.extend(self.running.drain(..).map(|(a, _)| a));
        true
    }

    /// The attempt to `addr` failed at `now`: the next address is tried at
    /// once (RFC 8305 5).
    pub fn handle_failed(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(i) = self.running.iter().position(|(a, _)| *a == addr) {
            self.running.swap_remove(i);
            self.failed += 1;
            self.next_at = now;
        }
    }

    /// Gives the dial up (the request failed or was cancelled): every
    /// attempt under way is to be closed ([`DialStep::Abort`]), and none
    /// starts.
    pub fn give_up(&mut self) {
        self.queue.clear();
        self.losers.extend(self.running.drain(..).map(|(a, _)| a));
    }

    /// When [`poll`](Self::poll) has something new to say without any
    /// attempt ending: the next attempt's start, or an attempt's deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.won || !self.losers.is_empty() {
            return None;
        }
        let waiting = !self.queue.is_empty() && !self.running.is_empty();
        let next = (waiting && self.running.len() < MAX_RUNNING).then_some(self.next_at);
        let deadlines = self.running.iter().filter_map(|(_, at)| *at);
        next.into_iter().chain(deadlines).min()
    }

    /// Attempts under way.
    pub fn running(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.running.iter().map(|(a, _)| *a)
    }

    /// True when every attempt that failed ran out of time (and at least
    /// one did): the dial failed by its timeout, not by refusals.
    pub fn all_expired(&self) -> bool {
        self.expired > 0 && self.expired == self.failed
    }
}

/// `addrs` with families alternating, the first address's family first
/// (RFC 8305 4, "First Address Family Count" 1); each family keeps its
/// order.
fn interleave(addrs: impl IntoIterator<Item = SocketAddr>) -> VecDeque<SocketAddr> {
    // An address listed twice (a resolver may) is tried once: attempts are
    // known by their address. (A set, not a scan of those kept: a resolver
    // plugged in may answer with thousands.)
    let mut seen = BTreeSet::new();
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| seen.insert(*a)).collect();
    let Some(first) = addrs.first() else {
        return VecDeque::new();
    };
    let first_v6 = first.is_ipv6();
    let mut same = addrs.iter().filter(|a| a.is_ipv6() == first_v6);
    let mut other = addrs.iter().filter(|a| a.is_ipv6() != first_v6);
    let mut out = VecDeque::with_capacity(addrs.len());
    loop {
        match (same.next(), other.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b).copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(n: u64) -> Instant {
        Instant::ZERO + ms(n)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_first() {
        let (a6, b6, c6) = (addr("[::1]:1"), addr("[::1]:2"), addr("[::1]:3"));
        let (a4, b4) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        let order: Vec<_> = interleave([a6, b6, c6, a4, b4]).into_iter().collect();
        assert_eq!(order, [a6, a4, b6, b4, c6]);
        let order: Vec<_> = interleave([a4, a6, b6, b4]).into_iter().collect();
        assert_eq!(order, [a4, a6, b4, b6]);
        assert!(interleave([]).is_empty());
        // Duplicates are tried once, at their first place.
        let order: Vec<_> = interleave([a4, a6, a4, b4, a6]).into_iter().collect();
        assert_eq!(order, [a4, a6, b4]);
    }

    /// With no delay between attempts, at most `MAX_RUNNING` run at once:
    /// the next starts when one ends (a thousand addresses opened a
    /// thousand sockets at once).
    #[test]
    fn attempts_under_way_are_capped() {
        let v4 = |n: u32| SocketAddr::from((core::net::Ipv4Addr::from(0x7f00_0000 + n), 80));
        let mut dial = HappyEyeballs::new((0..1000).map(v4), Duration::ZERO, Some(ms(1000)));
        let mut started = Vec::new();
        while let DialStep::Connect(addr) = dial.poll(at(0)) {
            started.push(addr);
        }
        assert_eq!(started.len(), MAX_RUNNING);
        assert_eq!(dial.poll(at(0)), DialStep::Wait);
        assert_eq!(dial.poll_timeout(), Some(at(1000)), "only the deadlines");
        dial.handle_failed(started[0], at(5));
        assert_eq!(dial.poll(at(5)), DialStep::Connect(v4(MAX_RUNNING as u32)));
        assert_eq!(dial.poll(at(5)), DialStep::Wait);
    }

    /// A resolver plugged in may answer with very many addresses: each is
    /// kept once, in order, without comparing every pair (50,000 of them,
    /// each twice, took 5 billion compares before).
    #[test]
    fn many_addresses_are_deduplicated_in_order() {
        let v4 = |n: u32| SocketAddr::from((core::net::Ipv4Addr::from(0x7f00_0000 + n), 80));
        let all = (0..50_000).map(v4).chain((0..50_000).rev().map(v4));
        let order: Vec<_> = interleave(all).into_iter().collect();
        assert_eq!(order.len(), 50_000);
        assert!(order.iter().copied().eq((0..50_000).map(v4)));
    }

    #[test]
    fn no_address_is_exhausted_at_once() {
        let mut dial = HappyEyeballs::new([], ATTEMPT_DELAY, None);
        assert_eq!(dial.poll(at(0)), DialStep::Exhausted);
        assert!(!dial.all_expired());
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once() {
        let (a, b, c) = (addr("[::1]:1"), addr("127.0.0.1:1"), addr("[::1]:2"));
        let mut dial = HappyEyeballs::new([a, b, c], ATTEMPT_DELAY, Some(ms(1000)));
        assert_eq!(dial.poll(at(0)), DialStep::Connect(a));
        assert_eq!(dial.poll_timeout(), Some(at(250)));
        dial.handle_failed(a, at(10));
        assert_eq!(dial.poll(at(10)), DialStep::Connect(b));
        dial.handle_failed(b, at(20));
        assert_eq!(dial.poll(at(20)), DialStep::Connect(c));
        // The last one: only its deadline is left.
        assert_eq!(dial.poll(at(20)), DialStep::Wait);
        assert_eq!(dial.poll_timeout(), Some(at(1020)));
        dial.handle_failed(c, at(30));
        assert_eq!(dial.poll(at(30)), DialStep::Exhausted);
        assert!(!dial.all_expired());
    }

    #[test]
    fn attempts_overlap_every_delay_and_the_first_to_connect_wins() {
        let addrs = [addr("[::1]:1"), addr("127.0.0.1:1"), addr("[::1]:2")];
        let mut dial = HappyEyeballs::new(addrs, ATTEMPT_DELAY, Some(ms(10_000)));
        assert_eq!(dial.poll(at(0)), DialStep::Connect(addrs[0]));
        assert_eq!(dial.poll(at(249)), DialStep::Wait);
        assert_eq!(dial.poll(at(250)), DialStep::Connect(addrs[1]));
        assert_eq!(dial.poll_timeout(), Some(at(500)));
        assert_eq!(dial.poll(at(500)), DialStep::Connect(addrs[2]));
        assert_eq!(dial.running().count(), 3);
        assert!(dial.handle_connected(addrs[2]));
        // A second winner is refused.
        assert!(!dial.handle_connected(addrs[0]));
        let aborted = [dial.poll(at(501)), dial.poll(at(501))];
        assert!(aborted.contains(&DialStep::Abort(addrs[0])));
        assert!(aborted.contains(&DialStep::Abort(addrs[1])));
        assert_eq!(dial.poll(at(501)), DialStep::Done);
        assert_eq!(dial.poll_timeout(), None);
    }

    #[test]
    fn each_attempt_is_bounded_by_the_connect_timeout() {
        let (a, b) = (addr("[::1]:1"), addr("127.0.0.1:1"));
        let mut dial = HappyEyeballs::new([a, b], ATTEMPT_DELAY, Some(ms(400)));
        assert_eq!(dial.poll(at(0)), DialStep::Connect(a));
        assert_eq!(dial.poll(at(250)), DialStep::Connect(b));
        assert_eq!(dial.poll_timeout(), Some(at(400)));
        assert_eq!(dial.poll(at(400)), DialStep::Expired(a));
        assert_eq!(dial.poll(at(400)), DialStep::Wait);
        assert_eq!(dial.poll_timeout(), Some(at(650)));
        assert_eq!(dial.poll(at(650)), DialStep::Expired(b));
        assert_eq!(dial.poll(at(650)), DialStep::Exhausted);
        assert!(dial.all_expired());
    }

    #[test]
    fn an_expiry_starts_the_next_attempt_without_the_delay() {
        let (a, b) = (addr("[::1]:1"), addr("127.0.0.1:1"));
        // A connect timeout shorter than the delay.
        let mut dial = HappyEyeballs::new([a, b], ATTEMPT_DELAY, Some(ms(100)));
        assert_eq!(dial.poll(at(0)), DialStep::Connect(a));
        assert_eq!(dial.poll_timeout(), Some(at(100)));
        assert_eq!(dial.poll(at(100)), DialStep::Expired(a));
        assert_eq!(dial.poll(at(100)), DialStep::Connect(b));
        dial.handle_failed(b, at(120));
        assert_eq!(dial.poll(at(120)), DialStep::Exhausted);
        assert!(!dial.all_expired());
    }

    #[test]
    fn unknown_attempts_change_nothing() {
        let (a, b) = (addr("[::1]:1"), addr("127.0.0.1:1"));
        let mut dial = HappyEyeballs::new([a], ATTEMPT_DELAY, None);
        assert!(!dial.handle_connected(a)); // not started yet
        dial.handle_failed(b, at(0));
        assert_eq!(dial.poll(at(0)), DialStep::Connect(a));
        assert_eq!(dial.poll_timeout(), None); // no deadline without a timeout
        assert!(dial.handle_connected(a));
        assert_eq!(dial.poll(at(0)), DialStep::Done);
    }

    #[test]
    fn giving_up_closes_every_attempt() {
        let (a, b, c) = (addr("[::1]:1"), addr("127.0.0.1:1"), addr("[::1]:2"));
        let mut dial = HappyEyeballs::new([a, b, c], ATTEMPT_DELAY, None);
        assert_eq!(dial.poll(at(0)), DialStep::Connect(a));
        assert_eq!(dial.poll(at(250)), DialStep::Connect(b));
        dial.give_up();
        dial.give_up(); // twice changes nothing
        assert_eq!(dial.poll(at(300)), DialStep::Abort(b));
        assert_eq!(dial.poll(at(300)), DialStep::Abort(a));
        assert_eq!(dial.poll(at(300)), DialStep::Exhausted);
        assert!(!dial.handle_connected(a));
    }

    /// How a simulated connect to one address ends: after this many ms,
    /// connected or refused; `None`: never.
    type Outcome = Option<(u64, bool)>;

    /// An attempt under way in the simulated driver: address, started at,
    /// ends at (and how).
    type Running = (SocketAddr, Instant, Option<(Instant, bool)>);

    fn outcome() -> impl proptest::strategy::Strategy<Value = Outcome> {
        proptest::option::of((0u64..1500, proptest::bool::ANY))
    }

    proptest::proptest! {
        /// A driver on a virtual clock against random addresses (of both
        /// families) whose connects end at random times, or never: every
        /// attempt started ends exactly once (connected, failed, expired
        /// or aborted); at most one wins, and then nothing runs; attempts
        /// start in the interleaved order, no sooner than the delay after
        /// the last unless one ended; no attempt outlives its timeout; the
        /// dial is over by the last start plus the timeout.
        #[test]
        fn every_attempt_ends_once_and_at_most_one_wins(
            plan in proptest::collection::vec((proptest::bool::ANY, outcome()), 0..6),
            timeout in proptest::option::of(100u64..2000),
        ) {
            let addrs: Vec<SocketAddr> = (plan.iter().enumerate())
                .map(|(i, (v6, _))| {
                    let port = 1 + i as u16;
                    if *v6 { SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)) }
                    else { SocketAddr::from(([127, 0, 0, 1], port)) }
                })
                .collect();
            let outcome_of = |a: SocketAddr| plan[usize::from(a.port()) - 1].1;
            let order: Vec<SocketAddr> = interleave(addrs.iter().copied()).into_iter().collect();
            let timeout = timeout.map(ms);
            let mut dial = HappyEyeballs::new(addrs.clone(), ATTEMPT_DELAY, timeout);
            let mut now = at(0);
            // Attempts under way: address, started at, ends at (and how).
            let mut running: Vec<Running> = Vec::new();
            let mut started: Vec<SocketAddr> = Vec::new();
            let mut ended: Vec<SocketAddr> = Vec::new();
            let mut won = None;
            let mut last_start: Option<Instant> = None;
            let mut last_end: Option<Instant> = None;
            let mut given_up = false;
            // Bounded: each round starts, ends or aborts an attempt, or
            // moves the clock to the next event; 6 addresses at most.
            for _ in 0..200 {
                match dial.poll(now) {
                    DialStep::Connect(a) => {
                        proptest::prop_assert_eq!(Some(&a), order.get(started.len()));
                        if let (Some(prev), false) = (last_start, running.is_empty()) {
                            let early = now < prev + ATTEMPT_DELAY;
                            proptest::prop_assert!(!early || last_end == Some(now));
                        }
                        started.push(a);
                        last_start = Some(now);
                        let ends = outcome_of(a).map(|(after, ok)| (now + ms(after), ok));
                        running.push((a, now, ends));
                    }
                    DialStep::Expired(a) | DialStep::Abort(a) => {
                        let i = running.iter().position(|r| r.0 == a);
                        proptest::prop_assert!(i.is_some(), "closed an attempt not running");
                        let (_, since, _) = running.swap_remove(i.unwrap_or(0));
                        if let (Some(t), true) = (timeout, won.is_none()) {
                            proptest::prop_assert!(now <= since + t);
                        }
                        ended.push(a);
                        last_end = Some(now);
                    }
                    DialStep::Wait => {
                        let next_end = running.iter().filter_map(|r| r.2.map(|(t, _)| t)).min();
                        let wake = match (next_end, dial.poll_timeout()) {
                            (Some(a), Some(b)) => a.min(b),
                            (a, b) => match a.or(b) {
                                Some(t) => t,
                                None => {
                                    // Only attempts that never end, and no
                                    // timeout: the caller's deadline ends it.
                                    proptest::prop_assert!(timeout.is_none());
                                    proptest::prop_assert!(running.iter().all(|r| r.2.is_none()));
                                    dial.give_up();
                                    given_up = true;
                                    continue;
                                }
                            },
                        };
                        proptest::prop_assert!(wake >= now);
                        now = wake;
                        if let Some(i) = running.iter().position(|r| r.2.is_some_and(|(t, _)| t <= now)) {
                            let (a, _, end) = running.swap_remove(i);
                            ended.push(a);
                            last_end = Some(now);
                            if end.is_some_and(|(_, ok)| ok) {
                                proptest::prop_assert!(dial.handle_connected(a));
                                won = Some(a);
                            } else {
                                dial.handle_failed(a, now);
                            }
                        }
                    }
                    DialStep::Done => {
                        proptest::prop_assert!(won.is_some());
                        break;
                    }
                    DialStep::Exhausted => {
                        proptest::prop_assert!(won.is_none());
                        break;
                    }
                }
            }

            proptest::prop_assert!(running.is_empty(), "attempts left open: {:?}", running);
            let mut s = started.clone();
            let mut e = ended.clone();
            s.sort();
            e.sort();
            proptest::prop_assert_eq!(s, e, "every attempt ends exactly once");
            if won.is_none() && !given_up {
                proptest::prop_assert_eq!(started.len(), addrs.len(), "every address tried");
            }
            if let (Some(t), Some(last)) = (timeout, last_start) {
                proptest::prop_assert!(now <= last + t);
            }
        }
    }
}
