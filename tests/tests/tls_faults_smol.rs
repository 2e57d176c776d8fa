//! The TLS fault suite on the smol backend, and the fault suite over TLS.

use roundtrip_tests::Smol;

roundtrip_tests::tls_fault_suite!(Smol);

#[test]
fn client_alerts_refused_servers() {
    use roundtrip_tests::tls_faults::{Refusal, client_alerts_refused_servers};
    client_alerts_refused_servers::<Smol>(&Refusal::ALL);
}

mod faults_over_tls {
    use roundtrip_tests::Smol;
    use roundtrip_tests::tls_faults::Tls;

    roundtrip_tests::fault_suite!(Tls<Smol>);
}

/// The conformance corpus on the wire over TLS, each response written at
/// once (the byte-by-byte run is the plain suite's).
#[test]
fn conformance_over_tls() {
    use roundtrip_tests::Smol;
    use roundtrip_tests::tls_faults::Tls;
    roundtrip_tests::suite::conformance::conformance_on_the_wire::<Tls<Smol>>();
}
