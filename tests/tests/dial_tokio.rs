//! The Happy Eyeballs cases on the tokio backend, on both runtime flavours.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::backend_dial!(TokioCurrent);
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::backend_dial!(TokioMulti);
}
