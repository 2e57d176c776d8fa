//! The Happy Eyeballs cases on the mio backend.

use roundtrip_tests::backend::Mio;

roundtrip_tests::backend_dial!(Mio);
