//! The trace cases on the mio backend (one driver thread per client).

use roundtrip_tests::backend::Mio;

roundtrip_tests::backend_traces!(Mio);
