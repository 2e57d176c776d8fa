//! The backend suite on the blocking backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::backend_suite!(Blocking);
