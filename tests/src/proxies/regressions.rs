//! Cases that once found library bugs (a close during the tunnel's
//! handshake that looped; a connect timeout before the request that said it
//! may have reached the server), stamped by
//! [`proxy_regressions!`](crate::proxy_regressions) on every backend.

use super::scripted::{proxy_url, scripted, settle, silent_proxy};
use super::*;
use crate::server::Step;
use roundtrip_io::Phase;

/// Stamps the named cases of [`regressions`](crate::proxies::regressions) for
/// a backend.
#[macro_export]
macro_rules! proxy_regressions {
    ($backend:ty; $($case:ident),* $(,)?) => {
        $($crate::proxy_regressions!(@one $backend; $case);)*
    };
    (@one $backend:ty; proxy_closes_during_tunnel_handshake) => {
        #[test]
        fn proxy_closes_during_tunnel_handshake() {
            $crate::proxies::regressions::proxy_closes_during_tunnel_handshake::<$backend>();
        }
    };
    (@one $backend:ty; connect_timeout_says_not_sent) => {
        #[test]
        fn connect_timeout_says_not_sent() {
            $crate::proxies::regressions::connect_timeout_says_not_sent::<$backend>();
        }
    };
}

crate::cases! {
    /// Stamps the regression cases as plain tests (see the module docs).
    #[doc(hidden)]
    stamp __proxies_regressions, list cases, path proxies::regressions;

/// The proxy answers `200` and closes at once, so the client meets the
/// close while its TLS handshake with the origin has just begun: the
/// request ends with `ClosedEarly` in the handshake phase (not sent), after
/// one `CONNECT`, at once (no handshake or total timeout).
pub fn proxy_closes_during_tunnel_handshake<B: Backend>() {
    let established = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    let proxy_server = scripted(vec![Step::ReadHead, Step::Write(established), Step::Close]);
    let url = proxy_url(&proxy_server, false);
    let client = B::client(config(Proxies::all(proxy(&url)), &Recorder::default()));
    let started = std::time::Instant::now();
    let err = send_err::<B>(&client, Req::get("https://localhost:9/"));
    assert!(
        matches!(
            err,
            Error::ClosedEarly {
                phase: Phase::Handshake,
                reached_server: false
            }
        ),
        "{}: {err:?}",
        B::NAME
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{}: took {took:?}", B::NAME);
    assert_eq!(proxy_server.count_method("CONNECT"), 1, "{}", B::NAME);
    assert_eq!(proxy_server.accepted(), 1, "{}", B::NAME);
    drop(client);
    settle(&[&proxy_server]);
}

/// A connect timeout while the proxy sits on the `CONNECT`: the request
/// itself was never written (only the `CONNECT`, to the proxy), so the
/// error says `reached_server: false`, as every other proxy failure does.
pub fn connect_timeout_says_not_sent<B: Backend>() {
    let (err, _, _proxy) = silent_proxy::<B>();
    assert!(
        matches!(err, Error::Timeout { reached_server: false, .. }),
        "{}: {err:?}",
        B::NAME
    );
    assert!(!err.reached_server(), "{}: {err:?}", B::NAME);
}

}
