//! The proxy suite (squid, microsocks, scripted proxies) on the tokio
//! backend, on both runtime flavours.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::proxy_suite!(TokioCurrent);
    roundtrip_tests::proxy_regressions!(TokioCurrent; proxy_closes_during_tunnel_handshake, connect_timeout_says_not_sent);
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::proxy_suite!(TokioMulti);
    roundtrip_tests::proxy_regressions!(TokioMulti; proxy_closes_during_tunnel_handshake, connect_timeout_says_not_sent);
}
