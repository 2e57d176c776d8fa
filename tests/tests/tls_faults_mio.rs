//! The TLS fault suite on the mio backend, and the fault suite over TLS.

use roundtrip_tests::backend::Mio;

roundtrip_tests::tls_fault_suite!(Mio);

#[test]
fn client_alerts_refused_servers() {
    use roundtrip_tests::tls_faults::{Refusal, client_alerts_refused_servers};
    client_alerts_refused_servers::<Mio>(&Refusal::ALL);
}

mod faults_over_tls {
    use roundtrip_tests::backend::Mio;
    use roundtrip_tests::tls_faults::Tls;

    roundtrip_tests::fault_suite!(Tls<Mio>);
}

/// The conformance corpus on the wire over TLS, each response written at
/// once (the byte-by-byte run is the plain suite's).
#[test]
fn conformance_over_tls() {
    use roundtrip_tests::backend::Mio;
    use roundtrip_tests::tls_faults::Tls;
    roundtrip_tests::suite::conformance::conformance_on_the_wire::<Tls<Mio>>();
}
