//! The mio backend of roundtrip (filled by its own issue).
