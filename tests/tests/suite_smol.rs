//! The backend suite on the smol backend.

use roundtrip_tests::Smol;
roundtrip_tests::backend_suite!(Smol);
