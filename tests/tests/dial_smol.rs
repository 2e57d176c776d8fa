//! The Happy Eyeballs cases on the smol backend.

use roundtrip_tests::Smol;

roundtrip_tests::backend_dial!(Smol);
