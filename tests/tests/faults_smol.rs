//! The fault-injection suite on the smol backend.

use roundtrip_tests::Smol;
roundtrip_tests::fault_suite!(Smol);
