//! The proxy suite (squid, microsocks, scripted proxies) on the blocking
//! backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::proxy_suite!(Blocking);
roundtrip_tests::proxy_regressions!(Blocking; proxy_closes_during_tunnel_handshake, connect_timeout_says_not_sent);
