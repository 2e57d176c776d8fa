//! The dial of a new connection, decided here for every driver: the
//! lookups (the dial's host, and for a `socks5://` proxy the origin's,
//! which the client resolves itself), then Happy Eyeballs v2 over the
//! addresses ([`HappyEyeballs`]): attempts interleaved by family, the next
//! one started [`Config::happy_eyeballs_delay`](crate::Config::happy_eyeballs_delay)
//! after the last or at once when one fails, each bounded by the connect
//! timeout, the first to connect winning and the others closed. The
//! driver only runs lookups and non-blocking connects where it is told.

use std::io;
use std::net::{IpAddr, SocketAddr};

use roundtrip_proto::dial::{DialStep, HappyEyeballs};
use roundtrip_proto::pool::ProxyMode;
use roundtrip_proto::time::Instant;
use roundtrip_proto::trace::TraceEvent;

use super::{Action, Exchange, Link, State, Timer};
use crate::resolve::Lookup;
use crate::{Error, TimeoutKind};

/// What a dial is doing, beside its state.
#[derive(Debug, Default)]
pub(super) struct Dialing {
    /// A lookup the driver runs ([`Action::Resolve`]).
    lookup: Option<LookupFor>,
    /// The origin's address, for a `socks5://` proxy (the client resolves).
    pub socks_target: Option<IpAddr>,
    /// The connection attempts, once the addresses are known; kept after
    /// the dial until the losers are closed.
    attempts: Option<HappyEyeballs>,
    /// The addresses that failed, and why.
    pub failures: Vec<(SocketAddr, String)>,
    /// The last failure's error.
    last: Option<io::Error>,
}

/// Whose name a lookup resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LookupFor {
    /// The origin's, for a `socks5://` proxy.
    SocksTarget,
    /// The host the dial connects to (the origin, or the proxy).
    Dial,
}

impl<R> Exchange<R> {
    /// The dial's state, made at the first use (an exchange on a pooled
    /// connection never dials, and carries none).
    fn dial_state(&mut self) -> &mut Dialing {
        self.dialing.get_or_insert_with(Box::default)
    }

    /// The pool permitted a dial.
    pub fn handle_dial(&mut self, now: Instant) {
        if matches!(self.state, State::Checkout | State::Waiting) {
            self.dialing = Some(Box::default());
            self.state = State::Dial;
            // The lookups are bounded by the connect timeout; each connect
            // attempt then has its own (Go's `Dialer.Timeout` and curl's
            // `--connect-timeout` bound the two together).
            let after = self.config().connect_timeout;
            self.timers.arm(Timer::Connect, now, after);
            self.next_lookup(now);
        }
    }

    /// The name [`Action::Resolve`] asks the driver to look up, with the
    /// port to put in its addresses.
    pub fn lookup_target(&self) -> Option<(&str, u16)> {
        let key = self.key()?;
        match self.dialing.as_ref()?.lookup? {
            LookupFor::SocksTarget => Some((key.host(), key.port())),
            LookupFor::Dial => Some(key.dial_addr()),
        }
    }

    /// The lookup of [`Action::Resolve`] ended.
    pub fn handle_resolved(&mut self, result: io::Result<Vec<SocketAddr>>, now: Instant) {
        if !matches!(self.state, State::Dial) {
            return;
        }
        let Some(what) = self.dialing.as_mut().and_then(|d| d.lookup.take()) else {
            return;
        };
        self.tracing().trace(|| TraceEvent::DnsDone {
            result: result
                .as_deref()
                .map(<[_]>::to_vec)
                .map_err(ToString::to_string),
        });
        self.resolved(what, result, now);
    }

    /// Addresses (or a failure) for `what`: the next lookup, or the
    /// attempts.
    fn resolved(&mut self, what: LookupFor, result: io::Result<Vec<SocketAddr>>, now: Instant) {
        match (what, result) {
            (LookupFor::SocksTarget, Err(e)) => self.socks_lookup_failed(e),
            (_, Err(e)) => {
                self.dial_state().last = Some(e);
                self.dial_failed(now);
            }
            (LookupFor::SocksTarget, Ok(addrs)) => match addrs.first() {
                Some(addr) => {
                    self.dial_state().socks_target = Some(addr.ip());
                    self.next_lookup(now);
                }
                None => {
                    let e = io::Error::new(io::ErrorKind::NotFound, "no address for host");
                    self.socks_lookup_failed(e);
                }
            },
            (LookupFor::Dial, Ok(addrs)) => {
                self.timers.disarm(Timer::Connect);
                let config = self.config();
                let (delay, timeout) = (config.happy_eyeballs_delay, config.connect_timeout);
                self.dial_state().attempts = Some(HappyEyeballs::new(addrs, delay, timeout));
            }
        }
    }

    /// Looks up what the dial needs next: the origin for `socks5://` (a
    /// name, not yet resolved), then the dial's host. An IP literal or an
    /// override answers at once; a name is the driver's [`Action::Resolve`].
    fn next_lookup(&mut self, now: Instant) {
        let Some(key) = self.key() else {
            return;
        };
        let socks_local = key.via().is_some_and(|v| v.mode() == ProxyMode::Socks5);
        let what = if socks_local
            && self.dialing.as_ref().and_then(|d| d.socks_target).is_none()
            && key.host().parse::<IpAddr>().is_err()
        {
            LookupFor::SocksTarget
        } else {
            LookupFor::Dial
        };
        let (host, port) = match what {
            LookupFor::SocksTarget => (key.host(), key.port()),
            LookupFor::Dial => key.dial_addr(),
        };
        match self.settings.config.resolver.lookup(host, port) {
            Lookup::Ready(addrs) => self.resolved(what, Ok(addrs), now),
            Lookup::Blocking => {
                let host = host.to_string();
                self.tracing().trace(|| TraceEvent::DnsStart { host });
                self.dial_state().lookup = Some(what);
            }
        }
    }

    /// The dial ran out of time: a lookup under way ends with it, traced.
    pub(super) fn dial_timed_out(&mut self) {
        if self
            .dialing
            .as_mut()
            .and_then(|d| d.lookup.take())
            .is_some()
        {
            let result = Err("timed out".to_string());
            self.tracing().trace(|| TraceEvent::DnsDone { result });
        }
    }

    /// The dial's next action, in [`State::Dial`].
    pub(super) fn step_dial(&mut self, now: Instant) -> Option<Action> {
        if self.dialing.as_ref().is_some_and(|d| d.lookup.is_some()) {
            return Some(Action::Resolve);
        }
        let Some(attempts) = self.dialing.as_mut().and_then(|d| d.attempts.as_mut()) else {
            let misuse = roundtrip_proto::Error::Misuse("a dial without addresses");
            self.state = State::Failed(Error::from_proto(misuse, self.phase(None), false));
            return None;
        };
        match attempts.poll(now) {
            DialStep::Connect(addr) => {
                self.tracing().trace(|| TraceEvent::ConnectStart { addr });
                Some(Action::Connect(addr))
            }
            DialStep::Expired(addr) => {
                let e = io::Error::from(io::ErrorKind::TimedOut);
                self.connect_failed(addr, e);
                Some(Action::Abort(addr))
            }
            DialStep::Abort(addr) => Some(Action::Abort(addr)),
            DialStep::Wait => Some(Action::AwaitConnect),
            DialStep::Exhausted | DialStep::Done => {
                self.dial_failed(now);
                None
            }
        }
    }

    /// Attempts still open once the dial is over (another won, or the
    /// exchange failed or was cancelled meanwhile): each is closed first.
    pub(super) fn close_losers(&mut self, now: Instant) -> Option<Action> {
        if matches!(self.state, State::Dial) {
            return None;
        }
        let attempts = self.dialing.as_mut()?.attempts.as_mut()?;
        attempts.give_up();
        match attempts.poll(now) {
            DialStep::Abort(addr) => Some(Action::Abort(addr)),
            _ => {
                if let Some(dialing) = &mut self.dialing {
                    dialing.attempts = None;
                }
                None
            }
        }
    }

    /// The earliest deadline of the dial's attempts.
    pub(super) fn dial_timeout(&self) -> Option<Instant> {
        let attempts = self.dialing.as_ref()?.attempts.as_ref()?;
        matches!(self.state, State::Dial)
            .then(|| attempts.poll_timeout())
            .flatten()
    }

    /// The attempt to `addr` ([`Action::Connect`]) failed.
    pub fn handle_connect_failed(&mut self, addr: SocketAddr, e: io::Error, now: Instant) {
        if !matches!(self.state, State::Dial) {
            return;
        }
        if let Some(attempts) = self.dialing.as_mut().and_then(|d| d.attempts.as_mut()) {
            attempts.handle_failed(addr, now);
        }
        self.connect_failed(addr, e);
    }

    fn connect_failed(&mut self, addr: SocketAddr, e: io::Error) {
        let why = crate::trace::connect_failure(&e);
        let dialing = self.dial_state();
        dialing.failures.push((addr, why.clone()));
        // The error to show: the last, but an attempt that ran out of time
        // says less than a refusal met before it (a black-holed IPv6
        // beside a refused IPv4: the server is down). An expiry still
        // outranks an unreachable network (no IPv6 route beside a
        // firewalled IPv4: a timeout).
        let refused = |l: &io::Error| {
            matches!(
                l.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
            )
        };
        let expired = e.kind() == io::ErrorKind::TimedOut;
        if !(expired && dialing.last.as_ref().is_some_and(refused)) {
            dialing.last = Some(e);
        }
        self.tracing().trace(|| TraceEvent::ConnectDone {
            addr,
            result: Err(why),
        });
    }

    /// The attempt to `addr` connected; `link` is the new connection's.
    /// True if the exchange takes it (the first to connect); false if the
    /// driver must close it (the dial is over).
    pub fn handle_connected(&mut self, addr: SocketAddr, link: &mut Link, now: Instant) -> bool {
        if !matches!(self.state, State::Dial) {
            return false;
        }
        let won = self
            .dialing
            .as_mut()
            .and_then(|d| d.attempts.as_mut())
            .is_some_and(|a| a.handle_connected(addr));
        if !won {
            return false;
        }
        self.tracing().trace(|| TraceEvent::ConnectDone {
            addr,
            result: Ok(()),
        });
        self.conn = Some(link.id);
        self.begun = false;
        self.connected(link, now);
        true
    }

    /// The lookup of the origin for `socks5://` failed: the error names
    /// the origin, not the proxy nobody dialed yet (curl: "Failed to
    /// resolve "origin.test" for SOCKS5 connect").
    fn socks_lookup_failed(&mut self, source: io::Error) {
        let addr = self.key().map(|k| host_port(k.host(), k.port()));
        self.state = State::Failed(Error::Connect {
            addr: addr.unwrap_or_default(),
            proxy: false,
            source,
            tried: Vec::new(),
        });
    }

    /// No address connected (or none was found): the dial failed, by its
    /// timeout when every attempt ran out of time.
    fn dial_failed(&mut self, now: Instant) {
        let expired = self
            .dialing
            .as_ref()
            .and_then(|d| d.attempts.as_ref())
            .is_some_and(HappyEyeballs::all_expired);
        if expired {
            self.state = State::Failed(self.timed_out(TimeoutKind::Connect, None, now));
            return;
        }
        let addr = self.key().map(|k| {
            let (host, port) = k.dial_addr();
            host_port(host, port)
        });
        let proxy = self.key().is_some_and(|k| k.via().is_some());
        let source = self
            .dialing
            .as_mut()
            .and_then(|d| d.last.take())
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"));
        self.state = State::Failed(Error::Connect {
            addr: addr.unwrap_or_default(),
            proxy,
            source,
            tried: self
                .dialing
                .as_mut()
                .map(|d| std::mem::take(&mut d.failures))
                .unwrap_or_default(),
        });
    }
}

/// `host:port`, an IPv6 address in brackets (`[::1]:443`, not `::1:443`).
fn host_port(host: &str, port: u16) -> String {
    match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}
