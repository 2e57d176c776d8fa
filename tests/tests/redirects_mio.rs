//! Redirects and transparent gzip on the mio backend (the driver sends
//! each hop itself).

use roundtrip_tests::backend::Mio;

roundtrip_tests::redirect_suite!(Mio);
