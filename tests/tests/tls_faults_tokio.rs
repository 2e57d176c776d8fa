//! The TLS fault suite on the tokio backend, on both runtime flavours, and
//! the fault suite over TLS.

mod current_thread {
    use roundtrip_tests::backend::TokioCurrent;
    roundtrip_tests::tls_fault_suite!(TokioCurrent);

    #[test]
    fn client_alerts_refused_servers() {
        use roundtrip_tests::tls_faults::{Refusal, client_alerts_refused_servers};
        client_alerts_refused_servers::<TokioCurrent>(&Refusal::ALL);
    }

    mod faults_over_tls {
        use roundtrip_tests::backend::TokioCurrent;
        use roundtrip_tests::tls_faults::Tls;
        roundtrip_tests::fault_suite!(Tls<TokioCurrent>);
    }
}

mod multi_thread {
    use roundtrip_tests::backend::TokioMulti;
    roundtrip_tests::tls_fault_suite!(TokioMulti);

    #[test]
    fn client_alerts_refused_servers() {
        use roundtrip_tests::tls_faults::{Refusal, client_alerts_refused_servers};
        client_alerts_refused_servers::<TokioMulti>(&Refusal::ALL);
    }

    mod faults_over_tls {
        use roundtrip_tests::backend::TokioMulti;
        use roundtrip_tests::tls_faults::Tls;
        roundtrip_tests::fault_suite!(Tls<TokioMulti>);
    }

    /// The conformance corpus on the wire over TLS, each response written at
    /// once (the byte-by-byte run is the plain suite's).
    #[test]
    fn conformance_over_tls() {
        use roundtrip_tests::backend::TokioMulti;
        use roundtrip_tests::tls_faults::Tls;
        roundtrip_tests::suite::conformance::conformance_on_the_wire::<Tls<TokioMulti>>();
    }
}
