//! The tokio backend of roundtrip (filled by its own issue).
