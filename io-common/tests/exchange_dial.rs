//! The dial on a virtual clock: lookups, Happy Eyeballs v2 (RFC 8305)
//! over the addresses, the connect timeout per attempt and the request's
//! deadline over the whole dial, the failures listed, and `socks5://`
//! resolving the origin at the client. The simulator plays the resolver
//! and each address's connect ([`Sim::dns`], [`Sim::connects`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use roundtrip_io::exchange::sim::{Connect, Reply, Server, Sim};
use roundtrip_io::proxy::{Proxies, Proxy};
use roundtrip_io::{Config, Error, Phase, TimeoutKind};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

const V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(ip: IpAddr) -> SocketAddr {
    (ip, 80).into()
}

/// A simulator whose resolver says `dual.test` is `::1` then
/// `127.0.0.1`, the lookup taking 5 ms.
fn dual(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    sim.dns("dual.test", ms(5), vec![V6, V4]);
    sim
}

/// `err` is the connect timeout, with nothing of the request sent.
fn assert_connect_timeout(err: &Error) {
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: TimeoutKind::Connect,
                phase: Phase::Connect,
                reached_server: false
            }
        ),
        "want the connect timeout, nothing sent; got {err:?}"
    );
}

fn config() -> Config {
    let mut config = Config::default();
    config.connect_timeout = Some(Duration::from_secs(10));
    config
}

/// The attempts as `(ms since start, address, what happened)`.
fn dials(sim: &Sim) -> Vec<(u128, SocketAddr, &'static str)> {
    sim.dials
        .iter()
        .map(|(t, a, what)| (t.as_millis(), *a, *what))
        .collect()
}

#[test]
fn a_black_holed_first_address_loses_to_the_second_after_250_ms() {
    let mut sim = dual(config());
    sim.connects(at(V6), Connect::Never);
    sim.serve(Server::reply(OK));
    let r = sim.get("http://dual.test/").unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hi"[..]));
    assert_eq!(
        dials(&sim),
        [
            (5, at(V6), "started"),
            (255, at(V4), "started"),
            (255, at(V4), "connected"),
            (255, at(V6), "aborted"),
        ]
    );
    assert_eq!(sim.stats().idle, 1);
}

#[test]
fn the_first_to_connect_wins_even_when_it_started_first() {
    let mut sim = dual(config());
    // IPv6 connects after 300 ms, IPv4 (started at 255) would take 200.
    sim.connects(at(V6), Connect::After(ms(300)));
    sim.connects(at(V4), Connect::After(ms(200)));
    sim.serve(Server::reply(OK));
    sim.get("http://dual.test/").unwrap();
    assert_eq!(
        dials(&sim),
        [
            (5, at(V6), "started"),
            (255, at(V4), "started"),
            (305, at(V6), "connected"),
            (305, at(V4), "aborted"),
        ]
    );
}

#[test]
fn a_refused_address_starts_the_next_at_once() {
    let mut sim = dual(config());
    sim.connects(at(V6), Connect::RefusedAfter(ms(20)));
    sim.serve(Server::reply(OK));
    sim.get("http://dual.test/").unwrap();
    assert_eq!(
        dials(&sim),
        [
            (5, at(V6), "started"),
            (25, at(V6), "refused"),
            (25, at(V4), "started"),
            (25, at(V4), "connected"),
        ]
    );
}

#[test]
fn families_are_interleaved() {
    let mut sim = Sim::new(config());
    let (v6b, v4b): (IpAddr, IpAddr) = ("::2".parse().unwrap(), "127.0.0.2".parse().unwrap());
    sim.dns("four.test", ms(0), vec![V6, v6b, V4, v4b]);
    for ip in [V6, v6b, V4] {
        sim.connects(at(ip), Connect::Never);
    }
    sim.serve(Server::reply(OK));
    sim.get("http://four.test/").unwrap();
    let started: Vec<_> = (dials(&sim).into_iter())
        .filter(|d| d.2 == "started")
        .map(|(t, a, _)| (t, a.ip()))
        .collect();
    assert_eq!(started, [(0, V6), (250, V4), (500, v6b), (750, v4b)]);
}

#[test]
fn every_failure_is_listed_when_no_address_connects() {
    let mut sim = dual(config());
    sim.connects(at(V6), Connect::RefusedAfter(ms(1)));
    sim.connects(at(V4), Connect::RefusedAfter(ms(1)));
    let err = sim.get("http://dual.test/").unwrap_err();
    let Error::Connect { addr, tried, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(addr, "dual.test:80");
    let tried: Vec<_> = tried.iter().map(|(a, _)| *a).collect();
    assert_eq!(tried, [at(V6), at(V4)]);
    assert!(err.to_string().contains("[::1]:80"), "{err}");
    let stats = sim.stats();
    assert_eq!(
        (stats.dialing, stats.in_use),
        (0, 0),
        "the permit was given back"
    );
}

/// One address refused and the other ran out of time: the error says
/// refused (the more telling of the two), and lists both.
#[test]
fn a_refusal_says_more_than_an_expiry() {
    let mut config = config();
    config.connect_timeout = Some(ms(1000));
    let mut sim = dual(config);
    sim.connects(at(V6), Connect::Never);
    sim.connects(at(V4), Connect::RefusedAfter(ms(1)));
    let err = sim.get("http://dual.test/").unwrap_err();
    let Error::Connect { source, tried, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        source.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{err:?}"
    );
    let tried: Vec<_> = tried.iter().map(|(a, _)| *a).collect();
    assert_eq!(tried, [at(V4), at(V6)]);
    assert!(err.is_connect() && !err.is_timeout(), "{err:?}");
}

#[test]
fn each_attempt_has_the_connect_timeout_and_all_expired_is_a_connect_timeout() {
    let mut config = config();
    config.connect_timeout = Some(ms(1000));
    let mut sim = dual(config);
    sim.connects(at(V6), Connect::Never);
    sim.connects(at(V4), Connect::Never);
    let err = sim.get("http://dual.test/").unwrap_err();
    assert_connect_timeout(&err);
    // IPv6 from 5 to 1005, IPv4 from 255 to 1255.
    assert_eq!(sim.now().since_origin(), ms(1255));
    assert_eq!(
        dials(&sim),
        [
            (5, at(V6), "started"),
            (255, at(V4), "started"),
            (1005, at(V6), "aborted"),
            (1255, at(V4), "aborted"),
        ]
    );
}

#[test]
fn the_request_deadline_bounds_the_whole_dial_and_closes_every_attempt() {
    let mut config = config();
    config.timeout = Some(ms(400));
    let mut sim = dual(config);
    sim.connects(at(V6), Connect::Never);
    sim.connects(at(V4), Connect::Never);
    let err = sim.get("http://dual.test/").unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total), "{err:?}");
    assert_eq!(sim.now().since_origin(), ms(400));
    let mut aborted: Vec<_> = (dials(&sim).into_iter())
        .filter(|d| d.2 == "aborted")
        .map(|(t, a, _)| (t, a))
        .collect();
    aborted.sort();
    assert_eq!(aborted, [(400, at(V4)), (400, at(V6))]);
    assert_eq!((sim.stats().dialing, sim.stats().in_use), (0, 0));
}

#[test]
fn a_slow_lookup_is_bounded_by_the_request_deadline() {
    let mut config = config();
    config.timeout = Some(ms(300));
    let mut sim = Sim::new(config);
    sim.dns("slow.test", Duration::from_secs(2), vec![V4]);
    let err = sim.get("http://slow.test/").unwrap_err();
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total), "{err:?}");
    assert_eq!(sim.now().since_origin(), ms(300));
    assert!(sim.dials.is_empty());
}

#[test]
fn a_name_with_no_address_fails_typed() {
    let mut sim = Sim::new(config());
    sim.dns("empty.test", ms(1), vec![]);
    let err = sim.get("http://empty.test/").unwrap_err();
    let Error::Connect { addr, tried, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((addr.as_str(), tried.len()), ("empty.test:80", 0));
}

#[test]
fn the_attempt_delay_is_a_setting() {
    let mut config = config();
    config.happy_eyeballs_delay = ms(100);
    let mut sim = dual(config);
    sim.connects(at(V6), Connect::Never);
    sim.serve(Server::reply(OK));
    sim.get("http://dual.test/").unwrap();
    assert_eq!(dials(&sim)[1], (105, at(V4), "started"));
}

#[test]
fn socks5_resolves_the_origin_at_the_client_then_the_proxy() {
    let mut config = config();
    let proxy = Proxy::parse("socks5://proxy.test:1080").unwrap();
    config.proxies = Proxies::all(proxy);
    let mut sim = Sim::new(config);
    sim.dns("origin.test", ms(3), vec!["192.0.2.7".parse().unwrap()]);
    sim.dns("proxy.test", ms(4), vec![V4]);
    // The proxy: method "no auth", then "succeeded" bound to 0.0.0.0:0,
    // then the origin's answer through the tunnel.
    let socks = [
        Reply::Raw(vec![5, 0]),
        Reply::Raw(vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        Reply::Send(OK.to_vec()),
    ];
    sim.serve(Server::new(socks));
    let r = sim.get("http://origin.test/").unwrap();
    assert_eq!(r.status.as_u16(), 200);
    // Both lookups ran, the origin's first; only the proxy was dialed.
    assert_eq!(
        dials(&sim)[0],
        (7, "127.0.0.1:1080".parse().unwrap(), "started")
    );
    // The greeting, then the CONNECT for the address (never the name),
    // then the request, whose Host names the origin.
    let wire = &sim.wire[0];
    let get = wire.windows(4).position(|w| w == b"GET ").unwrap();
    assert_eq!(wire[..get], [5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 7, 0, 80]);
    assert!(wire[get..].starts_with(b"GET / HTTP/1.1\r\nHost: origin.test\r\n"));
}

#[test]
fn a_callers_connect_through_an_http_proxy_is_sent_to_the_proxy_once() {
    let mut config = config();
    let proxy = Proxy::parse("http://user:pw@proxy.test:3128").unwrap();
    config.proxies = Proxies::all(proxy);
    let mut sim = Sim::new(config);
    sim.dns("proxy.test", ms(1), vec![V4]);
    sim.serve(Server::reply(
        b"HTTP/1.1 200 Connection established\r\n\r\n",
    ));
    let request = http::Request::connect("http://origin.test:443/")
        .body(roundtrip_io::Body::empty())
        .unwrap();
    let r = sim.send(request).unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(
        r.upgraded.as_deref(),
        Some(&b""[..]),
        "the tunnel is the caller's"
    );
    assert_eq!(dials(&sim)[0].1, "127.0.0.1:3128".parse().unwrap());
    let wire = String::from_utf8_lossy(&sim.wire[0]);
    assert!(
        wire.starts_with("CONNECT origin.test:443 HTTP/1.1\r\n"),
        "{wire}"
    );
    assert_eq!(wire.matches("CONNECT").count(), 1, "{wire}");
    assert!(
        wire.contains("\r\nproxy-authorization: Basic dXNlcjpwdw==\r\n"),
        "{wire}"
    );
}

#[test]
fn an_unusable_proxy_setting_fails_the_request_instead_of_going_direct() {
    let mut config = config();
    config.proxies = Proxies::from_vars(|name| {
        (name == "http_proxy").then(|| "socks4a://tor.test:9050".to_string())
    });
    let mut sim = Sim::new(config);
    sim.serve(Server::reply(OK));
    let err = sim.get("http://origin.test/").unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidRequest(roundtrip_io::InvalidRequest::Proxy(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("socks4a://tor.test:9050"), "{err}");
    assert!(sim.dials.is_empty(), "nothing dialed");
}

#[test]
fn a_socks5_origin_without_address_is_named_in_the_error() {
    let mut config = config();
    config.proxies = Proxies::all(Proxy::parse("socks5://proxy.test:1080").unwrap());
    let mut sim = Sim::new(config);
    sim.dns("origin.test", ms(3), vec![]);
    sim.dns("proxy.test", ms(4), vec![V4]);
    let err = sim.get("http://origin.test/").unwrap_err();
    let Error::Connect { addr, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(addr, "origin.test:80", "{err}");
    assert!(sim.dials.is_empty(), "the proxy was not dialed");
}

/// A proxy that accepts the connection and never answers is not waited
/// for without end when the connect timeout is off: the read timeout
/// bounds the wait for its bytes, and with both off Go's minute does.
#[test]
fn a_silent_proxy_is_bounded_without_a_connect_timeout() {
    // An https URL through an HTTP proxy needs its tunnel (`CONNECT`).
    let socks = ("socks5h://proxy.test:1080", "http://origin.test/");
    let connect = ("http://proxy.test:3128", "https://origin.test/");
    for ((proxy, url), read_timeout, waited) in [
        (socks, Some(2), 2),
        (connect, Some(2), 2),
        (socks, None, 60),
        (connect, None, 60),
    ] {
        let mut config = config();
        config.connect_timeout = None;
        config.read_timeout = read_timeout.map(Duration::from_secs);
        config.proxies = Proxies::all(Proxy::parse(proxy).unwrap());
        let mut sim = Sim::new(config);
        sim.serve(Server::new([Reply::Stall]));
        let err = sim.get(url).unwrap_err();
        assert_connect_timeout(&err);
        assert_eq!(
            sim.now().since_origin(),
            Duration::from_secs(waited),
            "{proxy}"
        );
    }
}

/// A failed dial names an IPv6 address in brackets (`[::1]:1`), as the
/// URL writes it: `::1:1` reads as another address.
#[test]
fn a_failed_dial_brackets_an_ipv6_address() {
    let mut sim = Sim::new(config());
    sim.connects("[::1]:1".parse().unwrap(), Connect::RefusedAfter(ms(1)));
    let err = sim.get("http://[::1]:1/").unwrap_err();
    match err {
        Error::Connect { addr, .. } => assert_eq!(addr, "[::1]:1"),
        other => panic!("{other:?}"),
    }
}
