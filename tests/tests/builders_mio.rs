//! The request-builder cases on the mio backend.

use roundtrip_tests::backend::Mio;

roundtrip_tests::backend_builders!(Mio);
