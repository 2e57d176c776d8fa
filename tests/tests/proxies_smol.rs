//! The proxy suite (squid, microsocks, scripted proxies) on the smol backend.

use roundtrip_tests::Smol;

roundtrip_tests::proxy_suite!(Smol);
roundtrip_tests::proxy_regressions!(Smol; proxy_closes_during_tunnel_handshake, connect_timeout_says_not_sent);
