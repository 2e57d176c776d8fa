//! https against nginx on loopback, on the smol backend.

use roundtrip_tests::Smol;

roundtrip_tests::tls_nginx_suite!(Smol);
