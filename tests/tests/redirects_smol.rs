//! Redirects and transparent gzip on the smol backend.

use roundtrip_tests::Smol;
roundtrip_tests::redirect_suite!(Smol);
