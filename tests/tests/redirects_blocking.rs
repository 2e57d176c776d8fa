//! Redirects and transparent gzip on the blocking backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::redirect_suite!(Blocking);
