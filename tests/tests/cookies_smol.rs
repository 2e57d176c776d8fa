//! Cookies on the smol backend.

use roundtrip_tests::Smol;
roundtrip_tests::cookie_suite!(Smol);
