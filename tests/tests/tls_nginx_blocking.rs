//! https against nginx on loopback, on the blocking backend.

use roundtrip_tests::backend::Blocking;

roundtrip_tests::tls_nginx_suite!(Blocking);
