//! Cookies on the mio backend.

use roundtrip_tests::backend::Mio;

roundtrip_tests::cookie_suite!(Mio);
