//! The request-builder cases on the blocking backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::backend_builders!(Blocking);
