//! The fault-injection suite on the blocking backend: every scenario.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::fault_suite!(Blocking);
