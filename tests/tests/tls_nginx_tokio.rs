//! https against nginx on loopback, on the tokio backend, on both runtime
//! flavours.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::tls_nginx_suite!(TokioCurrent);
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::tls_nginx_suite!(TokioMulti);
}
