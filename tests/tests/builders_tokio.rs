//! The request-builder cases on the tokio backend, on both runtime flavours.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::backend_builders!(TokioCurrent);
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::backend_builders!(TokioMulti);
}
