//! The fault-injection suite on the mio backend: every scenario.

use roundtrip_tests::backend::Mio;

roundtrip_tests::fault_suite!(Mio);
