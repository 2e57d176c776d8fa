//! Cookies on the blocking backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::cookie_suite!(Blocking);
