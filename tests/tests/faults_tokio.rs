//! The fault-injection suite on the tokio backend, on both runtime flavours:
//! every scenario.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::fault_suite!(TokioCurrent);
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::fault_suite!(TokioMulti);
}
