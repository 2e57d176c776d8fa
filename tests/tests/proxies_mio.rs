//! The proxy suite (squid, microsocks, scripted proxies) on the mio backend.

use roundtrip_tests::backend::Mio;

roundtrip_tests::proxy_suite!(Mio);
roundtrip_tests::proxy_regressions!(Mio; proxy_closes_during_tunnel_handshake, connect_timeout_says_not_sent);
