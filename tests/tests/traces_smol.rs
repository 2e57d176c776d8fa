//! The trace cases on the smol backend.

use roundtrip_tests::Smol;
roundtrip_tests::backend_traces!(Smol);
