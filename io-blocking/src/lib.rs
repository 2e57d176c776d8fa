//! The blocking backend of roundtrip (filled by its own issue).
