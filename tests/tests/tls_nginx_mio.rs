//! https against nginx on loopback, on the mio backend.

use roundtrip_tests::backend::Mio;

roundtrip_tests::tls_nginx_suite!(Mio);
