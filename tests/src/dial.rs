//! Happy Eyeballs on loopback, written once and stamped into every
//! backend by [`backend_dial!`](crate::backend_dial): a host whose first
//! address is black-holed (a listener whose accept queue is full, so the
//! kernel drops the SYN and the connect hangs) and whose second answers.
//! The second attempt starts 250 ms after the first, wins, and the first is
//! closed unanswered; the connection is pooled as any other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use roundtrip_io::proto::trace::TraceEvent;
use roundtrip_io::resolve::{Resolve, Resolver};
use roundtrip_io::{Error, TimeoutKind, Tracer};
use socket2::{Domain, Socket, Type};

use crate::backend::{Backend, Req, test_config};
use crate::server::{ScriptServer, Step, ok};

/// A listener on `ip` (port chosen by the kernel) whose accept queue is
/// full: a new connect to it gets no answer at all. The listener and the
/// connections filling its queue live as long as the value.
pub struct BlackHole {
    addr: SocketAddr,
    _listener: Socket,
    _fill: Vec<TcpStream>,
}

impl BlackHole {
    /// Binds with a backlog of 0 and connects until a connect hangs (at
    /// most 8 tries of 200 ms); `None` if the kernel never drops a SYN.
    pub fn new(ip: IpAddr) -> Option<BlackHole> {
        BlackHole::at(SocketAddr::new(ip, 0))
    }

    /// [`new`](Self::new) on `addr` (port 0: any); `None` also when the
    /// address is taken.
    pub fn at(addr: SocketAddr) -> Option<BlackHole> {
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).ok()?;
        listener.bind(&addr.into()).ok()?;
        listener.listen(0).ok()?;
        let addr = listener.local_addr().ok()?.as_socket()?;
        let mut fill = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => fill.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Some(BlackHole {
                        addr,
                        _listener: listener,
                        _fill: fill,
                    });
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Where connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A resolver that knows one name, `eyeballs.test`, with fixed addresses
/// (each with its own port).
struct Fixed(Vec<SocketAddr>);

impl Resolve for Fixed {
    fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match host {
            "eyeballs.test" => Ok(self.0.clone()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                host.to_string(),
            )),
        }
    }
}

/// The trace events with the time each came, since `start`.
type Timed = Arc<Mutex<Vec<(Duration, TraceEvent)>>>;

fn client_for<B: Backend>(addrs: Vec<SocketAddr>, events: &Timed) -> B::Client {
    let mut config = test_config();
    config.resolver = Resolver::default().with_resolver(Fixed(addrs));
    config.connect_timeout = Some(Duration::from_secs(5));
    let (events, start) = (Arc::clone(events), Instant::now());
    config.trace = Some(Tracer::new(move |e: &TraceEvent| {
        let mut events = events.lock().unwrap_or_else(PoisonError::into_inner);
        events.push((start.elapsed(), e.clone()));
    }));
    B::client(config)
}

/// The black hole, or a loud skip (a kernel that answers every SYN).
macro_rules! black_hole {
    ($ip:expr) => {
        match BlackHole::new($ip) {
            Some(hole) => hole,
            None => {
                let why = format!(
                    "no black hole on {}: the kernel answered every connect",
                    $ip
                );
                crate::fixtures::skip_loudly(&why);
                return;
            }
        }
    };
}

crate::cases! {
    /// Stamps the Happy Eyeballs cases into a backend's test file.
    stamp backend_dial, list cases, path dial;

/// `eyeballs.test` is `[::1]:hole` then `127.0.0.1:server`: the IPv6
/// connect hangs, the IPv4 one starts 250 ms later and wins, the IPv6
/// attempt is closed without a `ConnectDone`; the next request reuses the
/// connection without dialing.
pub fn happy_eyeballs_second_address_wins_after_250_ms<B: Backend>() {
    let hole = black_hole!(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok(b"fast")),
        Step::ReadRequest,
        Step::Write(ok(b"again")),
    ]]);
    let events = Timed::default();
    let client = client_for::<B>(vec![hole.addr(), server.addr()], &events);
    let started = Instant::now();
    let resp = B::send(&client, Req::get("http://eyeballs.test/a"))
        .unwrap_or_else(|e| panic!("{}: {e:?}", B::NAME));
    let took = started.elapsed();
    assert_eq!((resp.status.as_u16(), &resp.body[..]), (200, &b"fast"[..]), "{}", B::NAME);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{}: {took:?}",
        B::NAME
    );
    let seen = std::mem::take(&mut *events.lock().unwrap_or_else(PoisonError::into_inner));
    let connects: Vec<(Duration, String)> = (seen.iter())
        .filter_map(|(t, e)| match e {
            TraceEvent::ConnectStart { addr } => Some((*t, format!("start {addr}"))),
            TraceEvent::ConnectDone { addr, result } => {
                Some((*t, format!("done {addr} {}", result.is_ok())))
            }
            _ => None,
        })
        .collect();
    let names: Vec<&str> = connects.iter().map(|(_, s)| s.as_str()).collect();
    let (hole_at, server_at) = (hole.addr(), server.addr());
    assert_eq!(
        names,
        [
            format!("start {hole_at}"),
            format!("start {server_at}"),
            format!("done {server_at} true"),
        ],
        "{}",
        B::NAME
    );
    let gap = connects[1].0 - connects[0].0;
    assert!(
        gap >= Duration::from_millis(250) && gap < Duration::from_millis(1500),
        "{}: the second attempt started {gap:?} after the first",
        B::NAME
    );
    let resp = B::send(&client, Req::get("http://eyeballs.test/b"))
        .unwrap_or_else(|e| panic!("{}: {e:?}", B::NAME));
    assert_eq!(&resp.body[..], b"again", "{}", B::NAME);
    let stats = B::stats(&client);
    assert_eq!((stats.dials, stats.reuses), (1, 1), "{}: {stats:?}", B::NAME);
    assert_eq!(server.accepted(), 1, "{}", B::NAME);
}

/// Every address black-holed: each attempt ends at the connect timeout
/// (300 ms; the second started at 250 ms), the request at about 550 ms
/// with a connect timeout, and nothing is left open.
pub fn happy_eyeballs_all_black_holed_is_a_connect_timeout<B: Backend>() {
    let first = black_hole!(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let second = black_hole!(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut config = test_config();
    config.resolver =
        Resolver::default().with_resolver(Fixed(vec![first.addr(), second.addr()]));
    config.connect_timeout = Some(Duration::from_millis(300));
    let client = B::client(config);
    let started = Instant::now();
    let err = B::send(&client, Req::get("http://eyeballs.test/")).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, Error::Timeout { kind: TimeoutKind::Connect, .. }),
        "{}: {err:?}",
        B::NAME
    );
    assert!(
        took >= Duration::from_millis(540) && took < Duration::from_secs(2),
        "{}: {took:?}",
        B::NAME
    );
    let stats = B::stats(&client);
    assert_eq!((stats.dialing, stats.in_use, stats.idle), (0, 0, 0), "{}", B::NAME);
}

/// A plugged-in resolver that panics fails its request with a typed
/// connect error on every backend (smol's blocking pool passed the panic
/// on into the request's future), and the client goes on.
pub fn a_panicking_resolver_is_a_connect_error<B: Backend>() {
    struct Panics;
    impl Resolve for Panics {
        fn resolve(&self, host: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
            panic!("a resolver bug looking up {host}");
        }
    }
    let mut config = test_config();
    config.resolver = Resolver::default().with_resolver(Panics);
    config.connect_timeout = Some(Duration::from_secs(5));
    let client = B::client(config);
    let err = B::send(&client, Req::get("http://panics.test/")).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{}: {err:?}", B::NAME);
    assert!(err.to_string().contains("the resolver panicked"), "{}: {err}", B::NAME);
    let again = B::send(&client, Req::get("http://panics.test/")).unwrap_err();
    assert!(matches!(again, Error::Connect { .. }), "{}: {again:?}", B::NAME);
}

/// Requests for a name whose lookup runs wait for that one lookup, on
/// every backend (Go's `singleflight`): the async backends ran one lookup
/// per request on their runtime's blocking pool (where tokio kept those of
/// requests that gave up queued, to run later), mio one per request on
/// its own threads. The lookup here outlasts the connect timeout, so
/// every request fails, and the lookup runs once.
pub fn requests_share_a_lookup<B: Backend>() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Slow(Arc<AtomicUsize>);
    impl Resolve for Slow {
        fn resolve(&self, _: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1500));
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let mut config = test_config();
    config.resolver = Resolver::default().with_resolver(Slow(Arc::clone(&calls)));
    config.connect_timeout = Some(Duration::from_millis(300));
    let client = B::client(config);
    let start = Arc::new(std::sync::Barrier::new(8));
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (client, start) = (client.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                B::send(&client, Req::get("http://slow.test:9/"))
            })
        })
        .collect();
    for request in requests {
        let err = request.join().expect("no panic").expect_err("no address in time");
        let connect = matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Connect,
                ..
            }
        );
        assert!(connect, "{}: {err:?}", B::NAME);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{}", B::NAME);
}
}
